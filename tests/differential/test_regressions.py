"""Minimised discrepancies between the fast engine and the reference planner,
found by test_engine_vs_reference.py and fixed in the engine; each stays as a
regular test so that the bug cannot come back."""

from __future__ import annotations

from typing import Any

from tests.differential.engine_adapter import engine_plan
from tests.reference import reference_plan
from tests.reference.compare import diff_results

Row = dict[str, Any]
T0 = "2024-01-01"


def _model(**tables: list[Row]) -> dict[str, list[Row]]:
    base: dict[str, list[Row]] = {
        "warehouses": [{"warehouse_id": "W1", "site_id": "S", "calendar_id": None}],
        "items": [{"item_id": "A", "default_order_type": "purchase"}],
    }
    return {**base, **tables}


def _check(inp: dict[str, list[Row]], default_group: str | None = None) -> None:
    problems = diff_results(
        engine_plan(inp, T0, default_group), reference_plan(inp, T0, default_group)
    )
    assert not problems, "\n".join(problems)


def test_unknown_refill_warehouse_message_warehouse() -> None:
    _check(
        _model(
            item_coverage=[{"item_id": "A", "warehouse_id": "W1", "refill_warehouse_id": "NOWH"}]
        )
    )


def test_unknown_firmed_from_warehouse_message_warehouse() -> None:
    _check(
        _model(
            firmed_planned_orders=[
                {
                    "planned_order_id": "F0",
                    "item_id": "A",
                    "warehouse_id": "W1",
                    "order_type": "transfer",
                    "qty": 1,
                    "order_date": T0,
                    "due_date": T0,
                    "from_warehouse_id": "NOWH",
                }
            ]
        )
    )


def test_zero_qty_firmed_transfer_without_source() -> None:
    _check(
        _model(
            firmed_planned_orders=[
                {
                    "planned_order_id": "F0",
                    "item_id": "A",
                    "warehouse_id": "W1",
                    "order_type": "transfer",
                    "qty": 0,
                    "order_date": T0,
                    "due_date": T0,
                }
            ]
        )
    )


def test_zero_qty_firmed_transfer_self_loop() -> None:
    _check(
        _model(
            firmed_planned_orders=[
                {
                    "planned_order_id": "F0",
                    "item_id": "A",
                    "warehouse_id": "W1",
                    "order_type": "transfer",
                    "qty": 0,
                    "order_date": T0,
                    "due_date": T0,
                    "from_warehouse_id": "W1",
                }
            ]
        )
    )
