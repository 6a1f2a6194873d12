"""Pegging trees: from a sales order down the bill of materials, and back."""

from __future__ import annotations

import datetime as dt

import pytest

from masterplan.contract.rows import from_rows
from masterplan.contract.tables import INPUT_TABLES
from masterplan.server.engine import PlanParams, plan
from masterplan.server.errors import NotFound
from masterplan.server.pegging import PeggingIndex, PegNode

ROWS = {
    "warehouses": [{"warehouse_id": "W1", "site_id": "S"}],
    "items": [
        {"item_id": "BIKE", "default_order_type": "production", "lead_time_days": 2},
        {"item_id": "FRAME", "default_order_type": "production", "lead_time_days": 3},
        {"item_id": "TUBE", "default_order_type": "purchase", "lead_time_days": 5},
    ],
    "boms": [
        {"bom_id": "B-BIKE", "item_id": "BIKE", "batch_qty": 1},
        {"bom_id": "B-FRAME", "item_id": "FRAME", "batch_qty": 1},
    ],
    "bom_lines": [
        {"bom_id": "B-BIKE", "line_no": 10, "component_item_id": "FRAME", "qty_per": 1},
        {"bom_id": "B-FRAME", "line_no": 10, "component_item_id": "TUBE", "qty_per": 3},
    ],
    "on_hand": [{"item_id": "TUBE", "warehouse_id": "W1", "qty": 2}],
    # eleven orders of BIKE: ids BIKE/W1/1 ... BIKE/W1/11 (1 is a prefix of 10 and 11)
    "sales_lines": [
        {
            "order_id": f"SO{i}",
            "line_no": 1,
            "item_id": "BIKE",
            "warehouse_id": "W1",
            "qty": 1,
            "requested_date": f"2026-02-{i + 1:02d}",
        }
        for i in range(1, 12)
    ],
}


@pytest.fixture(scope="module")
def index() -> PeggingIndex:
    data = {n: from_rows(INPUT_TABLES[n], ROWS.get(n, [])) for n in INPUT_TABLES}
    return PeggingIndex(plan(data, PlanParams(dt.date(2026, 1, 5))).tables["pegging"])


def refs(node: PegNode) -> list:
    return [node.ref, [refs(c) for c in node.children]]


def test_tree_from_a_sales_order_to_the_purchased_part(index: PeggingIndex) -> None:
    tree = index.tree("SO:SO1/1")
    assert refs(tree) == [
        "SO:SO1/1",
        [
            [
                "PL:BIKE/W1/1",
                [
                    [
                        "PL:BIKE/W1/1/10",
                        [
                            [
                                "PL:FRAME/W1/1",
                                [["PL:FRAME/W1/1/10", [["OH:TUBE/W1", []], ["PL:TUBE/W1/1", []]]]],
                            ]
                        ],
                    ]
                ],
            ]
        ],
    ]
    tube = tree.children[0].children[0].children[0].children[0]
    assert (tube.kind, tube.item_id, tube.qty) == ("pl", "TUBE", 3.0)
    assert [(c.ref, c.qty) for c in tube.children] == [("OH:TUBE/W1", 2.0), ("PL:TUBE/W1/1", 1.0)]


def test_an_order_id_that_prefixes_another_gets_only_its_own_lines(index: PeggingIndex) -> None:
    tree = index.tree("PL:BIKE/W1/1")
    assert [c.ref for c in tree.children] == ["PL:BIKE/W1/1/10"]
    assert [c.ref for c in index.tree("PL:BIKE/W1/11").children] == ["PL:BIKE/W1/11/10"]


def test_depth_limit_and_unknown_refs(index: PeggingIndex) -> None:
    assert refs(index.tree("SO:SO1/1", max_depth=2)) == [
        "SO:SO1/1",
        [["PL:BIKE/W1/1", [["PL:BIKE/W1/1/10", []]]]],
    ]
    with pytest.raises(NotFound):
        index.tree("SO:NOPE/1")
