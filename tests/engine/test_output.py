"""The output tables (server/engine/output.py): ids, refs, kinds and NULLs as
the result tables of SPEC §4 spell them."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from masterplan.contract.coded import as_array
from masterplan.server.engine.actions import action_messages
from masterplan.server.engine.messages import Messages
from masterplan.server.engine.output import Handed, output_tables
from tests.engine.phases import T0, Input, iso, run, sales

MODEL: Input = {
    "warehouses": [{"warehouse_id": w, "site_id": "S"} for w in ("W1", "W2")],
    "coverage_groups": [{"group_id": "MAN", "coverage_code": "manual"}],
    "items": [
        # Only purchase orders carry a vendor, whatever the SKU names.
        {"item_id": "A", "default_order_type": "production", "default_vendor_id": "VA"},
        {"item_id": "B", "default_vendor_id": "V1"},
        {"item_id": "M", "coverage_group_id": "MAN"},
        {"item_id": "T"},
    ],
    "item_coverage": [
        {
            "item_id": "T",
            "warehouse_id": "W1",
            "order_type": "transfer",
            "refill_warehouse_id": "W2",
        }
    ],
    "boms": [{"bom_id": "BA", "item_id": "A", "batch_qty": 1}],
    "bom_lines": [{"bom_id": "BA", "line_no": 10, "component_item_id": "B", "qty_per": 2}],
    "sales_lines": [sales("A", 3, 5, line=1), sales("T", 2, 4, line=2), sales("M", 1, 6, line=3)],
    "purchase_lines": [
        {
            "order_id": "P",
            "line_no": 1,
            "item_id": "B",
            "warehouse_id": "W1",
            "qty": 100,
            "delivery_date": iso(20),
        }
    ],
}


@pytest.fixture(scope="module")
def out() -> dict[str, list[dict[str, Any]]]:
    r = run(MODEL)
    actions = action_messages(r.net.receipts, r.net.requirements, r.net.pegging, r.settings, T0)
    msgs = Messages.of(
        "warning",
        "NO_BOM",
        np.array(["A"], dtype=object),
        np.array(["W1"], dtype=object),
        np.array(["x"], dtype=object),
    )
    tables, _ = output_tables(r.masters, r.settings, r.refs, Handed(r.net, r.late), actions, msgs)
    rows: dict[str, list[dict[str, Any]]] = {}
    for name, table in tables.items():
        cols = {k: as_array(v).tolist() for k, v in table.items()}
        n = len(next(iter(cols.values())))
        rows[name] = [{k: v[i] for k, v in cols.items()} for i in range(n)]
    return rows


def _nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def test_planned_orders(out: dict[str, list[dict[str, Any]]]) -> None:
    got = {
        r["planned_order_id"]: (
            r["item_id"],
            r["warehouse_id"],
            r["order_type"],
            r["qty"],
            r["vendor_id"],
            r["from_warehouse_id"],
            r["bom_id"],
        )
        for r in out["planned_orders"]
    }
    assert got == {
        "A/W1/1": ("A", "W1", "production", 3.0, None, None, "BA"),
        "T/W1/1": ("T", "W1", "transfer", 2.0, None, "W2", None),
        "T/W2/1": ("T", "W2", "purchase", 2.0, None, None, None),
        "B/W1/1": ("B", "W1", "purchase", 6.0, "V1", None, None),
    }
    assert all(r["firmed"] == 0.0 for r in out["planned_orders"])


def test_pegging_names_planned_orders_and_dependent_refs(
    out: dict[str, list[dict[str, Any]]],
) -> None:
    got = {
        (r["demand_kind"], r["demand_ref"]): (r["supply_kind"], r["supply_ref"], r["qty"])
        for r in out["pegging"]
    }
    assert got[("so", "SO:S-A-1/1")] == ("pl", "PL:A/W1/1", 3.0)
    assert got[("pl", "PL:A/W1/1/10")] == ("pl", "PL:B/W1/1", 6.0)
    assert got[("pl", "PL:T/W1/1")] == ("pl", "PL:T/W2/1", 2.0)


def test_action_messages(out: dict[str, list[dict[str, Any]]]) -> None:
    (row,) = out["action_messages"]
    assert (row["supply_kind"], row["supply_ref"], row["action"]) == ("po", "PO:P/1", "cancel")
    assert (row["item_id"], row["warehouse_id"], row["receipt_qty"]) == ("B", "W1", 100.0)
    assert row["suggested_qty"] == 0.0
    assert row["suggested_date"] is None


def test_delay_messages(out: dict[str, list[dict[str, Any]]]) -> None:
    (row,) = out["delay_messages"]
    # The manual SKU's sale is never covered: no futures date, no delay days.
    assert (row["demand_kind"], row["demand_ref"], row["item_id"]) == ("so", "SO:S-M-3/3", "M")
    assert row["futures_date"] is None
    assert _nan(row["delay_days"])


def test_plan_messages_are_passed_through(out: dict[str, list[dict[str, Any]]]) -> None:
    assert out["plan_messages"] == [
        {"severity": "warning", "code": "NO_BOM", "item_id": "A", "warehouse_id": "W1", "text": "x"}
    ]


def test_output_takes_what_it_is_handed_and_the_tables_match_a_kept_netting() -> None:
    # A run that keeps no basis hands its netting over, and the output drops
    # each array as it reads it; a run that keeps its basis holds the same
    # netting after its output is made, and must find it unchanged: a second
    # output from it gives the same tables.
    r = run(MODEL)
    actions = action_messages(r.net.receipts, r.net.requirements, r.net.pegging, r.settings, T0)
    msgs = Messages.concat([])
    handed = Handed(r.net, r.late)
    first, _ = output_tables(r.masters, r.settings, r.refs, handed, actions, msgs)
    assert handed.net is None and handed.late is None
    with pytest.raises(ValueError, match="already handed"):
        output_tables(r.masters, r.settings, r.refs, handed, actions, msgs)
    again, _ = output_tables(r.masters, r.settings, r.refs, Handed(r.net, r.late), actions, msgs)
    assert list(first) == list(again)
    for name, table in first.items():
        assert list(table) == list(again[name])
        for column, values in table.items():
            got, kept = as_array(values), as_array(again[name][column])
            assert got.dtype == kept.dtype, column
            if got.dtype.kind == "f":
                np.testing.assert_array_equal(got, kept, err_msg=column)  # NaN equals NaN
            else:
                assert got.tolist() == kept.tolist(), column


def test_coded_columns_hold_their_codes_in_the_narrowest_type_of_their_dictionary() -> None:
    # A plan is held while it is current, and the previous one while the
    # next run builds its own: a warehouse or kind code takes one byte a
    # row, not four. A dictionary of more values than a byte counts (the
    # items below) takes two; NULL (-1) stays NULL in any of them.
    many: Input = {
        **MODEL,
        "items": [*MODEL["items"], *({"item_id": f"X{i}"} for i in range(200))],
    }
    r = run(many)
    actions = action_messages(r.net.receipts, r.net.requirements, r.net.pegging, r.settings, T0)
    tables, _ = output_tables(
        r.masters, r.settings, r.refs, Handed(r.net, r.late), actions, Messages.concat([])
    )
    orders, pegging = tables["planned_orders"], tables["pegging"]
    for column in ("warehouse_id", "order_type", "from_warehouse_id"):
        assert orders[column].codes.dtype == np.int8, column  # type: ignore[union-attr]
    for column in ("warehouse_id", "supply_kind", "demand_kind"):
        assert pegging[column].codes.dtype == np.int8, column  # type: ignore[union-attr]
    assert orders["item_id"].codes.dtype == np.int16  # type: ignore[union-attr]
    assert pegging["item_id"].codes.dtype == np.int16  # type: ignore[union-attr]
    by_id = dict(
        zip(
            as_array(orders["planned_order_id"]).tolist(),
            as_array(orders["from_warehouse_id"]).tolist(),
            strict=True,
        )
    )
    assert by_id == {"A/W1/1": None, "T/W1/1": "W2", "T/W2/1": None, "B/W1/1": None}
