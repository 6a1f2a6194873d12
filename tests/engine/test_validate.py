"""§5.9 Plan messages: the input checks (server/engine/validate.py)."""

from __future__ import annotations

from typing import Any

import pytest

from masterplan.server.engine.validate import validate
from tests.engine.phases import Input, iso, sales, tables

BASE: Input = {
    "warehouses": [{"warehouse_id": "W1", "site_id": "S"}],
    "coverage_groups": [{"group_id": "G"}],
    "items": [{"item_id": "A"}, {"item_id": "B"}],
    "boms": [{"bom_id": "BA", "item_id": "A"}],
    "bom_lines": [{"bom_id": "BA", "line_no": 1, "component_item_id": "B", "qty_per": 1}],
}

Message = tuple[str, Any, Any]


@pytest.mark.parametrize(
    ("extra", "messages", "table", "survivors"),
    [
        (
            {"sales_lines": [sales("A", 1, 0), sales("A", 2, 1)]},
            [("DUPLICATE_KEY", "A", "W1")] * 2,
            "sales_lines",
            0,
        ),
        # The first check that applies, only: duplicates of an unknown item.
        (
            {"sales_lines": [sales("Z", 1, 0), sales("Z", 2, 1)]},
            [("DUPLICATE_KEY", "Z", "W1")] * 2,
            "sales_lines",
            0,
        ),
        ({"sales_lines": [sales("Z", 1, 0)]}, [("UNKNOWN_ITEM", "Z", "W1")], "sales_lines", 0),
        (
            {"sales_lines": [{**sales("A", 1, 0), "warehouse_id": "W9"}]},
            [("UNKNOWN_WAREHOUSE", "A", "W9")],
            "sales_lines",
            0,
        ),
        ({"sales_lines": [sales("A", -1, 0)]}, [("INVALID_QTY", "A", "W1")], "sales_lines", 0),
        ({"sales_lines": [sales("A", 0, 0)]}, [], "sales_lines", 1),  # zero is nothing, silently
        (
            {"on_hand": [{"item_id": "A", "warehouse_id": "W1", "qty": -4}]},
            [],  # a negative on-hand is a requirement, not an error
            "on_hand",
            1,
        ),
        (
            {
                "bom_lines": [
                    {"bom_id": "NOPE", "line_no": 1, "component_item_id": "B", "qty_per": 1}
                ]
            },
            [("UNKNOWN_BOM", "B", None)],
            "bom_lines",
            0,
        ),
        (
            # A BOM with batch_qty 0 is left out, and its lines go silently.
            {"boms": [{"bom_id": "BA", "item_id": "A", "batch_qty": 0}]},
            [("INVALID_QTY", "A", None)],
            "bom_lines",
            0,
        ),
        (
            {"items": [{"item_id": "A", "coverage_group_id": "NG"}, {"item_id": "B"}]},
            [("UNKNOWN_COVERAGE_GROUP", "A", None)],
            "items",
            2,  # kept, with the group treated as none
        ),
        (
            {
                "item_coverage": [
                    {"item_id": "A", "warehouse_id": "W1", "refill_warehouse_id": "W9"}
                ]
            },
            [("UNKNOWN_WAREHOUSE", "A", "W9")],
            "item_coverage",
            1,  # kept, with the refill warehouse treated as none
        ),
        (
            {
                "purchase_lines": [
                    {
                        "order_id": "P",
                        "line_no": 1,
                        "item_id": "A",
                        "warehouse_id": "W1",
                        "qty": 3,
                        "delivery_date": iso(2),
                    }
                ]
            },
            [],
            "purchase_lines",
            1,
        ),
    ],
)
def test_checks(extra: Input, messages: list[Message], table: str, survivors: int) -> None:
    v = validate(tables({**BASE, **extra}))
    got = list(
        zip(
            v.messages.code.tolist(),
            v.messages.item_id.tolist(),
            v.messages.warehouse_id.tolist(),
            strict=True,
        )
    )
    assert got == messages
    assert all(s == "warning" for s in v.messages.severity.tolist())
    kept = v.tables[table]
    assert len(next(iter(kept.values()))) == survivors


def test_treated_as_none_references_become_null() -> None:
    v = validate(
        tables(
            {
                **BASE,
                "items": [{"item_id": "A", "coverage_group_id": "NG"}],
                "item_coverage": [
                    {"item_id": "A", "warehouse_id": "W1", "refill_warehouse_id": "W9"}
                ],
            }
        )
    )
    assert v.tables["items"]["coverage_group_id"].tolist() == [None]
    assert v.tables["item_coverage"]["refill_warehouse_id"].tolist() == [None]


def test_messages_name_the_row() -> None:
    v = validate(tables({**BASE, "sales_lines": [sales("Z", 1, 0)]}))
    assert v.messages.text.tolist() == [
        "sales line (sales_lines: order_id='S-Z-1', line_no=1): item_id is not in items"
    ]


def test_masters_are_sorted_by_id_and_their_positions_kept() -> None:
    v = validate(tables({**BASE, "items": [{"item_id": i} for i in ("b", "B", "a", "A")]}))
    assert v.tables["items"]["item_id"].tolist() == ["A", "B", "a", "b"]
    assert v.id_positions["items"] == {"A": 0, "B": 1, "a": 2, "b": 3}
