"""The basis of a plan made over partitions (:mod:`server.engine.partbasis`).

The property test of ``test_net_change`` runs random change sequences from a
first plan made over partitions; these cases pin what it cannot see: the
basis is made once, only when a net change reuses the plan, and it numbers
the result's rows by the whole data set's SKUs, not a partition's.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from unittest import mock

import numpy as np
import pytest

from bench.generate import DEFAULT_PLAN_DATE, generate_clusters
from masterplan.contract.coded import Coded, as_array
from masterplan.contract.columns import Table
from masterplan.server.engine import PartitionedBasis, PlanParams, net_change, plan, regenerate
from masterplan.server.engine.partition import split
from masterplan.server.engine.partitioned import regenerate_cut
from masterplan.server.engine.plan import Clock
from masterplan.server.engine.stitch import row_skus
from tests.engine.test_partitioned import _canonical, _Pickling

PARAMS = PlanParams(DEFAULT_PLAN_DATE)


@pytest.fixture(scope="module")
def families() -> dict[str, Table]:
    return generate_clusters(3000, 3, seed=5)


def _partitioned(data: dict[str, Table]) -> PartitionedBasis:
    result, basis = regenerate_cut(split(data, 3), data, PARAMS, _Pickling())
    assert _canonical(result.tables) == _canonical(plan(data, PARAMS).tables)
    return basis


def _sku_rows(tables: dict[str, dict[str, np.ndarray | Coded]]) -> dict[str, Counter[tuple]]:
    """Per table, how many rows name each (item, warehouse)."""
    return {
        name: Counter(
            zip(as_array(t["item_id"]).tolist(), as_array(t["warehouse_id"]).tolist(), strict=True)
        )
        for name, t in tables.items()
        if "item_id" in t
    }


def test_the_basis_is_an_inline_runs_basis(families: dict[str, Table]) -> None:
    """SKU numbers, edges, delayed dependent requirements and netting
    messages are the whole data set's; the result's rows read as the SKUs
    of the whole data set's masters, whatever the partitions numbered."""
    made = _partitioned(families).plan_basis(Clock(None))
    _, inline = regenerate(families, PARAMS)
    np.testing.assert_array_equal(made.sku, inline.sku)
    np.testing.assert_array_equal(made.edge_src, inline.edge_src)
    assert Counter(zip(made.edge_src.tolist(), made.edge_dst.tolist(), strict=True)) == Counter(
        zip(inline.edge_src.tolist(), inline.edge_dst.tolist(), strict=True)
    )
    m = made.front.index.masters
    for name in ("planned_orders", "pegging", "delay_messages"):
        got, want = made.tables[name], inline.tables[name]
        assert Counter(row_skus(m, got).tolist()) == Counter(row_skus(m, want).tolist()), name
        # The codes say the same SKUs as the ids they decode to.
        ids = m.known_sku(as_array(got["item_id"]), as_array(got["warehouse_id"]))
        np.testing.assert_array_equal(row_skus(m, got), ids)
    assert _sku_rows(dict(made.tables)) == _sku_rows(dict(inline.tables))
    late, want_late = made.late.table(), inline.late.table()
    assert len(want_late["sku"]) > 0
    assert Counter(
        zip(late["parent"].tolist(), late["sku"].tolist(), late["ref"].tolist(), strict=True)
    ) == Counter(
        zip(
            want_late["parent"].tolist(),
            want_late["sku"].tolist(),
            want_late["ref"].tolist(),
            strict=True,
        )
    )
    assert Counter(made.net_message_sku.tolist()) == Counter(inline.net_message_sku.tolist())


def test_the_basis_is_made_once_by_the_first_net_change(families: dict[str, Table]) -> None:
    basis = _partitioned(families)
    sales = dict(families["sales_lines"])
    sales["qty"] = sales["qty"] * 1.5
    changed = {**families, "sales_lines": sales}
    with mock.patch.object(
        PartitionedBasis, "_make", autospec=True, side_effect=PartitionedBasis._make
    ) as make:
        first = net_change(basis, changed, PARAMS, max_share=1.0)
        again = net_change(basis, changed, PARAMS, max_share=1.0, keep=False)
    assert make.call_count == 1
    assert first.fallback_reason == "" and again.fallback_reason == ""
    assert basis.plan_basis(Clock(None)) is again.basis


def test_a_net_change_that_cannot_reuse_the_plan_does_not_make_its_basis(
    families: dict[str, Table],
) -> None:
    basis = _partitioned(families)
    later = PlanParams(DEFAULT_PLAN_DATE + dt.timedelta(days=7))
    with mock.patch.object(PartitionedBasis, "_make") as make:
        got = net_change(basis, families, later, max_share=1.0)
    assert got.fallback_reason.startswith("the plan date changed")
    make.assert_not_called()
