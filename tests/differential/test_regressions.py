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


def _grouped(group: Row, coverage: Row, **tables: list[Row]) -> dict[str, list[Row]]:
    """A one-SKU model (A at W1) of coverage group ``G`` = ``group``."""
    return _model(
        coverage_groups=[{"group_id": "G", **group}],
        item_coverage=[
            {"item_id": "A", "warehouse_id": "W1", "coverage_group_id": "G", **coverage}
        ],
        **tables,
    )


def _planned(inp: dict[str, list[Row]]) -> list[tuple[str, float]]:
    """The engine's planned orders as (due date, quantity), after checking
    that the reference plans the same."""
    _check(inp)
    rows = engine_plan(inp, T0, None)["planned_orders"]
    return sorted((row["due_date"], round(row["qty"], 9)) for row in rows)


def _sale(qty: float, day: str = T0) -> list[Row]:
    return [
        {
            "order_id": "S",
            "line_no": 1,
            "item_id": "A",
            "warehouse_id": "W1",
            "qty": qty,
            "requested_date": day,
        }
    ]


def test_a_negative_positive_days_is_a_limit_not_unlimited() -> None:
    """§5.5: a set ``positive_days`` bounds ``r - a``, a negative one too
    (only NULL is unlimited, §4). With -1 the on-hand of T0 is not worth
    taking for a sale of T0 (0 > -1): the sale is short and gets an order;
    the engine read every negative number as unlimited and took the on-hand."""
    inp = _grouped(
        {"coverage_code": "requirement", "positive_days": -1},
        {},
        on_hand=[{"item_id": "A", "warehouse_id": "W1", "qty": 10}],
        sales_lines=_sale(5),
    )
    assert _planned(inp) == [(T0, 5.0)]
    unlimited = _grouped(
        {"coverage_code": "requirement", "positive_days": None},
        {},
        on_hand=[{"item_id": "A", "warehouse_id": "W1", "qty": 10}],
        sales_lines=_sale(5),
    )
    assert _planned(unlimited) == []


def test_min_max_projects_only_the_orders_within_negative_days() -> None:
    """§5.5: ``min_max``'s projected quantity counts the receipts, planned
    orders included, dated up to ``max(r, T0 + lead time) + negative_days``.
    With -1 the check before the first requirement orders 10 (p = 0 below
    min 5, up to max 10), dated T0, which the sale of 1 at T0 cannot count:
    p = 0 - 1, so it orders 11 more. The engine counted every planned order
    (p = 9) and ordered 1."""
    inp = _grouped(
        {"coverage_code": "min_max", "negative_days": -1},
        {"min_qty": 5, "max_qty": 10},
        sales_lines=_sale(1),
    )
    assert _planned(inp) == [(T0, 10.0), (T0, 11.0)]


def test_min_max_multiple_stays_within_max_by_the_absolute_tolerance() -> None:
    """§5.5: ``q`` is the largest multiple of ``m`` with ``p + q <= max_qty``,
    quantities compared within 1e-9 (§5). With p = 1.000000005, m = 10 and
    max 21, 20 would bring p + q to 21.000000005: the order is 10. Both the
    engine and the reference allowed 1e-9 of a multiple (1e-8 here) and
    ordered 20."""
    inp = _grouped(
        {"coverage_code": "min_max"},
        {"min_qty": 5, "max_qty": 21, "multiple_qty": 10},
        on_hand=[{"item_id": "A", "warehouse_id": "W1", "qty": 1.000000005}],
    )
    assert _planned(inp) == [(T0, 10.0)]


def test_a_default_group_whose_row_is_left_out_serves_as_none() -> None:
    """§5.2, §5.9: a run fails only when it cannot make a meaningful plan. A
    default group that its row names but the checks leave out (a coverage
    code no rule knows) is no group, as an unknown group an item names is:
    the row's INVALID_ROW says why, and the SKUs take §5.2's defaults. The
    engine failed the run."""
    inp = _model(
        coverage_groups=[{"group_id": "G", "coverage_code": "bogus"}],
        sales_lines=_sale(5),
    )
    _check(inp, default_group="G")
    result = engine_plan(inp, T0, "G")
    [message] = result["plan_messages"]
    assert message["code"] == "INVALID_ROW"
    assert "coverage_groups: group_id='G'" in message["text"]
    assert [row["qty"] for row in result["planned_orders"]] == [5.0]


def test_a_bom_line_with_no_bom_id_is_invalid_beside_a_bom_row_with_none() -> None:
    """§5.9: a NULL or empty key is INVALID_ROW. Lines of a BOM that was
    left out go silently, but a blank id names no BOM: where a `boms` row
    was left out for a blank id too, the engine matched the line to it and
    dropped the line without a message."""
    for blank in (None, ""):
        inp = _model(
            boms=[{"bom_id": blank, "item_id": "A"}],
            bom_lines=[{"bom_id": blank, "line_no": 1, "component_item_id": "A", "qty_per": 1}],
        )
        _check(inp)
        codes = [m["code"] for m in engine_plan(inp, T0, None)["plan_messages"]]
        assert codes == ["INVALID_ROW", "INVALID_ROW"], blank
