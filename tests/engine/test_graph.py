"""§5.3 SKU graph, low-level codes and cycles (server/engine/graph.py)."""

from __future__ import annotations

import numpy as np
import pytest

from masterplan.server.engine.graph import close_skus, levels, levels_and_cycles, sku_edges
from tests.engine.phases import Input, run, sales


@pytest.mark.parametrize(
    ("n", "edges", "llc", "in_cycle"),
    [
        (3, [(0, 1), (1, 2)], [0, 1, 2], [False] * 3),
        # The longest path counts: 3 is reached in one step and in two.
        (4, [(0, 1), (1, 2), (0, 2), (0, 3), (2, 3)], [0, 1, 2, 3], [False] * 4),
        # Duplicate edges change nothing.
        (2, [(0, 1), (0, 1)], [0, 1], [False, False]),
        # A cycle 1 <-> 2 under 0: its edges are left out of the levels, so 2
        # has no parent left and 3 hangs under 2 alone.
        (4, [(0, 1), (1, 2), (2, 1), (2, 3)], [0, 1, 0, 1], [False, True, True, False]),
        # A SKU with an edge to itself is a cycle of one.
        (2, [(0, 0), (0, 1)], [0, 1], [True, False]),
        (0, [], [], []),
    ],
)
def test_low_level_codes_and_cycles(
    n: int, edges: list[tuple[int, int]], llc: list[int], in_cycle: list[bool]
) -> None:
    src = np.array([e[0] for e in edges], dtype=np.int64)
    dst = np.array([e[1] for e in edges], dtype=np.int64)
    got_llc, comp, got_cycle = levels_and_cycles(n, src, dst)
    assert got_llc.tolist() == llc
    assert got_cycle.tolist() == in_cycle
    cyc = np.flatnonzero(got_cycle)
    if len(cyc) > 1:
        assert len(set(comp[cyc].tolist())) == 1  # one component


def _bom(parent: str, *components: str) -> Input:
    return {
        "boms": [{"bom_id": f"B-{parent}", "item_id": parent, "batch_qty": 1}],
        "bom_lines": [
            {"bom_id": f"B-{parent}", "line_no": i, "component_item_id": c, "qty_per": 1}
            for i, c in enumerate(components, start=1)
        ],
    }


def _model(*boms: Input, items: str = "ABCD") -> Input:
    inp: Input = {
        "items": [{"item_id": i, "default_order_type": "production"} for i in items],
        "boms": [],
        "bom_lines": [],
        "sales_lines": [sales("A", 1, 3)],
    }
    for b in boms:
        inp["boms"] += b["boms"]
        inp["bom_lines"] += b["bom_lines"]
    return inp


def test_components_no_row_names_join_the_sku_set() -> None:
    # Only A is named (by a sales line); B and C join through the BOMs.
    r = run(_model(_bom("A", "B"), _bom("B", "C")))
    graph = close_skus(r.index, r.firmed, None)
    m = r.masters
    names = [f"{m.item_ids[k // m.n_wh]}" for k in graph.settings.sku.tolist()]
    assert names == ["A", "B", "C"]
    assert sorted(zip(graph.src.tolist(), graph.dst.tolist(), strict=True)) == [(0, 1), (1, 2)]


def test_levels_of_the_run_and_a_cycle_message() -> None:
    r = run(_model(_bom("A", "B", "D"), _bom("B", "C"), _bom("C", "B")))
    lv = levels(r.graph, r.masters)
    llc = {i: int(lv.llc[r.sidx(i)]) for i in "ABCD"}
    # C's only parent is B, of its own cycle: that edge is no edge for the levels.
    assert llc == {"A": 0, "B": 1, "C": 0, "D": 1}
    assert lv.n_levels == 2
    assert lv.in_cycle.tolist() == [False, True, True, False]
    assert lv.messages.code.tolist() == ["BOM_CYCLE"]
    assert lv.messages.severity.tolist() == ["error"]
    assert lv.messages.text.tolist() == ["B@W1,C@W1"]


def test_edges_of_transfer_skus_and_firmed_orders() -> None:
    inp: Input = {
        "warehouses": [{"warehouse_id": w, "site_id": "S"} for w in ("W1", "W2", "W3")],
        "items": [{"item_id": "A"}],
        "item_coverage": [
            {
                "item_id": "A",
                "warehouse_id": "W1",
                "order_type": "transfer",
                "refill_warehouse_id": "W2",
            }
        ],
        "firmed_planned_orders": [
            {
                "planned_order_id": "F",
                "item_id": "A",
                "warehouse_id": "W2",
                "order_type": "transfer",
                "from_warehouse_id": "W3",
                "qty": 4,
                "order_date": "2024-03-04",
                "due_date": "2024-03-05",
            }
        ],
    }
    r = run(inp)
    src, dst = sku_edges(r.masters, r.settings, r.firmed)
    m = r.masters
    pairs = sorted(
        (m.warehouse_ids[a % m.n_wh], m.warehouse_ids[b % m.n_wh])
        for a, b in zip(src.tolist(), dst.tolist(), strict=True)
    )
    assert pairs == [("W1", "W2"), ("W2", "W3")]
    assert r.levels.llc.tolist() == [0, 1, 2]
