"""Bounded work: validation bounds (§5.9, the project's choice), the plan's
size limits, and no non-finite value out of the engine."""

from __future__ import annotations

import itertools
import time
from typing import Any

import numpy as np
import pytest

from masterplan.server.engine import InvalidPlanInput, PlanParams, PlanTooLarge, plan
from masterplan.server.engine.orders import split_quantity
from masterplan.server.engine.validate import MAX_DAYS, MAX_QTY, validate
from tests.engine.phases import PLAN_DATE, WAREHOUSE, Input, sales, tables

Message = tuple[str, Any, Any]


def _messages(inp: Input) -> list[Message]:
    msgs = validate(tables({**WAREHOUSE, **inp})).messages.table()
    cols = (msgs["code"].tolist(), msgs["item_id"].tolist(), msgs["warehouse_id"].tolist())
    return list(zip(*cols, strict=True))


def _texts(inp: Input) -> list[str]:
    return list(validate(tables({**WAREHOUSE, **inp})).messages.table()["text"].tolist())


ITEMS: Input = {"items": [{"item_id": "A"}]}


@pytest.mark.parametrize("qty", [MAX_QTY * 1.5, -MAX_QTY * 2, float("inf"), 1e17, 1e308])
def test_a_quantity_beyond_the_bound_is_invalid_qty(qty: float) -> None:
    inp = {**ITEMS, "sales_lines": [sales("A", qty, 1)]}
    assert _messages(inp) == [("INVALID_QTY", "A", "W1")]
    text = _texts(inp)[0]
    assert "sales_lines" in text and "S-A-1" in text and "qty" in text


def test_a_quantity_at_the_bound_is_kept() -> None:
    assert _messages({**ITEMS, "sales_lines": [sales("A", MAX_QTY, 1)]}) == []


@pytest.mark.parametrize(
    ("table", "row", "code", "sku"),
    [
        (
            "on_hand",
            {"item_id": "A", "warehouse_id": "W1", "qty": -2e12},
            "INVALID_QTY",
            ("A", "W1"),
        ),
        ("items", {"item_id": "B", "max_order_qty": 2e12}, "INVALID_QTY", ("B", None)),
        ("items", {"item_id": "B", "lead_time_days": 1e8}, "INVALID_ROW", ("B", None)),
        (
            "item_coverage",
            {"item_id": "A", "warehouse_id": "W1", "lead_time_days": -MAX_DAYS - 1},
            "INVALID_ROW",
            ("A", "W1"),
        ),
        (
            "item_coverage",
            {"item_id": "A", "warehouse_id": "W1", "safety_stock_qty": 1e13},
            "INVALID_QTY",
            ("A", "W1"),
        ),
        ("coverage_groups", {"group_id": "G", "negative_days": 1e15}, "INVALID_ROW", (None, None)),
    ],
)
def test_bounds_of_masters_and_on_hand(
    table: str, row: dict[str, Any], code: str, sku: tuple[Any, Any]
) -> None:
    inp: Input = {**ITEMS}
    inp[table] = [*inp.get(table, []), row]
    assert _messages(inp) == [(code, *sku)]
    assert table in _texts(inp)[0]


def test_invalid_row_comes_first_and_its_twin_is_still_a_duplicate() -> None:
    inp: Input = {"items": [{"item_id": "A", "lead_time_days": 40_000}, {"item_id": "A"}]}
    assert _messages(inp) == [("INVALID_ROW", "A", None), ("DUPLICATE_KEY", "A", None)]


def test_a_huge_need_with_a_tiny_maximum_is_counted_not_looped() -> None:
    start = time.perf_counter()
    with pytest.raises(PlanTooLarge) as caught:
        split_quantity(1e17, 0.0, 1.0, 0.0)
    assert caught.value.resource == "planned_orders"
    assert caught.value.requested >= 10**17 - 10**3
    with pytest.raises(PlanTooLarge):
        split_quantity(1e12, 0.0, 1e-300, 0.0)
    assert time.perf_counter() - start < 5
    assert split_quantity(12.0, 0.0, 5.0, 0.0, room=3).tolist() == [5.0, 5.0, 2.0]
    with pytest.raises(PlanTooLarge):
        split_quantity(12.0, 0.0, 5.0, 0.0, room=2)


def _split_input(qty: float, max_oq: float) -> Input:
    return {
        "items": [{"item_id": "A", "max_order_qty": max_oq}],
        "sales_lines": [sales("A", qty, 1)],
    }


def test_a_plan_over_its_order_limit_fails_before_making_the_orders() -> None:
    data = tables({**WAREHOUSE, **_split_input(2e6, 1.0)})
    start = time.perf_counter()
    with pytest.raises(PlanTooLarge) as caught:
        plan(data, PlanParams(PLAN_DATE, max_planned_orders=1000))
    assert time.perf_counter() - start < 5
    assert (caught.value.resource, caught.value.limit) == ("planned_orders", 1000)
    assert caught.value.requested >= 2_000_000
    # At the limit exactly, the plan is made.
    ok = plan(tables({**WAREHOUSE, **_split_input(1000, 1.0)}), PlanParams(PLAN_DATE, None, 1000))
    assert ok.row_counts()["planned_orders"] == 1000


def test_a_plan_over_its_result_rows_fails() -> None:
    data = tables({**WAREHOUSE, **_split_input(100, 1.0)})
    with pytest.raises(PlanTooLarge) as caught:
        plan(data, PlanParams(PLAN_DATE, max_result_rows=150))
    assert caught.value.resource == "result_rows"
    assert caught.value.requested > 150


def test_a_lead_time_of_a_hundred_million_working_days_is_refused_quickly() -> None:
    inp: Input = {
        "items": [{"item_id": "A", "lead_time_days": 1e8, "coverage_group_id": "G"}],
        "coverage_groups": [{"group_id": "G", "use_working_days": 1}],
        "sales_lines": [sales("A", 5, 1)],
    }
    start = time.perf_counter()
    result = plan(tables({**WAREHOUSE, **inp}), PlanParams(PLAN_DATE))
    assert time.perf_counter() - start < 5
    codes = result.arrays()["plan_messages"]["code"].tolist()
    assert codes == ["INVALID_ROW", "UNKNOWN_ITEM"]


def _chain(levels: int, qty_per: float) -> Input:
    """Item L0 is made of L1, which is made of L2, ... each ``qty_per`` times."""
    names = [f"L{i:02d}" for i in range(levels + 1)]
    return {
        "items": [
            {"item_id": n, "default_order_type": "production" if i < levels else "purchase"}
            for i, n in enumerate(names)
        ],
        "boms": [{"bom_id": f"B{n}", "item_id": n} for n in names[:-1]],
        "bom_lines": [
            {"bom_id": f"B{n}", "line_no": 1, "component_item_id": c, "qty_per": qty_per}
            for n, c in itertools.pairwise(names)
        ],
        "sales_lines": [sales(names[0], MAX_QTY, 1)],
    }


def test_an_explosion_that_overflows_fails_the_run_naming_the_sku() -> None:
    with pytest.raises(InvalidPlanInput, match="overflows") as caught:
        plan(tables({**WAREHOUSE, **_chain(30, MAX_QTY)}), PlanParams(PLAN_DATE))
    assert "'L" in str(caught.value) and "'W1'" in str(caught.value)


def test_an_explosion_within_range_gives_finite_values_only() -> None:
    result = plan(tables({**WAREHOUSE, **_chain(5, MAX_QTY)}), PlanParams(PLAN_DATE))
    for table in result.arrays().values():
        for values in table.values():
            if values.dtype.kind == "f":
                assert not np.isinf(values).any()
