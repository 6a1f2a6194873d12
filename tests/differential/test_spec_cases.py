"""Worked cases of §5's planning rules, each computed by hand from the SPEC
text and asserted on the engine's output.

The differential tests only compare the engine with the reference planner,
which could share a misreading of the SPEC; these cases pin the values the
SPEC itself gives for rules that no worked example checks: min_max rounding
up to the next multiple, forecast periods at their boundaries, the postpone
tolerance, delays of forecasts, the sales priority in the walk order, and a
production order with its component lines. Each case also checks that the
reference plans the same."""

from __future__ import annotations

from typing import Any

import pytest

from tests.differential.engine_adapter import engine_plan
from tests.reference import reference_plan
from tests.reference.compare import diff_results

Row = dict[str, Any]
Tables = dict[str, list[Row]]
T0 = "2024-01-01"


def _model(group: Row | None = None, coverage: Row | None = None, **tables: list[Row]) -> Tables:
    """A one-SKU model, item A at warehouse W1, of coverage group ``G`` =
    ``group`` (the §5.2 defaults when None) with the ``item_coverage``
    overrides ``coverage``; ``tables`` adds or replaces tables."""
    inp: Tables = {
        "warehouses": [{"warehouse_id": "W1", "site_id": "S", "calendar_id": None}],
        "items": [{"item_id": "A", "default_order_type": "purchase"}],
    }
    if group is not None:
        inp["coverage_groups"] = [{"group_id": "G", **group}]
        inp["item_coverage"] = [
            {"item_id": "A", "warehouse_id": "W1", "coverage_group_id": "G", **(coverage or {})}
        ]
    elif coverage is not None:
        inp["item_coverage"] = [{"item_id": "A", "warehouse_id": "W1", **coverage}]
    return {**inp, **tables}


def _plan(inp: Tables) -> Tables:
    """The engine's plan, after checking that the reference plans the same,
    so that each hand-computed case also pins the reference."""
    engine = engine_plan(inp, T0, None)
    problems = diff_results(engine, reference_plan(inp, T0, None))
    assert not problems, "\n".join(problems)
    return engine


def _sale(order_id: str, qty: float, day: str, priority: int | None = None, item: str = "A") -> Row:
    """A one-line sales order at W1, so that its ref is ``SO:{order_id}/1``."""
    return {
        "order_id": order_id,
        "line_no": 1,
        "item_id": item,
        "warehouse_id": "W1",
        "qty": qty,
        "requested_date": day,
        "priority": priority,
    }


def _on_hand(qty: float, item: str = "A") -> Row:
    """On-hand at W1, the receipt ``OH:{item}/W1`` at T0."""
    return {"item_id": item, "warehouse_id": "W1", "qty": qty}


def _orders(result: Tables) -> list[tuple[str, str, str, str, float]]:
    """Planned orders as (id, order date, due date, requirement date, qty):
    the values §5.6 decides."""
    return sorted(
        (
            row["planned_order_id"],
            row["order_date"],
            row["due_date"],
            row["requirement_date"],
            round(row["qty"], 9),
        )
        for row in result["planned_orders"]
    )


def _pegs(result: Tables) -> list[tuple[str, str, str, str, float]]:
    """Pegging rows as (supply ref, supply date, demand ref, demand date, qty)."""
    return sorted(
        (
            row["supply_ref"],
            row["supply_date"],
            row["demand_ref"],
            row["demand_date"],
            round(row["qty"], 9),
        )
        for row in result["pegging"]
    )


# --------------------------------------------------------------- 1. §5.5 min_max


@pytest.mark.parametrize(
    ("on_hand", "expected_qty"),
    [(1.0, 12.0), (3.0, 6.0)],
    ids=["rounded-down-short-of-min-takes-next-multiple", "rounded-down-reaches-min"],
)
def test_min_max_multiple_rounds_up_when_rounding_down_stays_below_min(
    on_hand: float, expected_qty: float
) -> None:
    """§5.5 min_max: "q is the largest multiple of m with p + q <= max_qty,
    or, if p + q < min_qty, the next larger multiple". min 8, max 10, m 6,
    no requirements: the check before the first requirement runs (r = T0).
    On-hand 1: p = 1 < 8; the largest multiple with 1 + q <= 10 is 6, and
    1 + 6 = 7 < 8, so q = 12 (p + q = 13, above max). On-hand 3: p = 3 < 8;
    6 gives 9 >= 8, so q = 6. §5.6 makes q one order (12 and 6 are already
    multiples of 6), due T0, order date T0 (lead time 0)."""
    result = _plan(
        _model(
            {"coverage_code": "min_max"},
            {"min_qty": 8, "max_qty": 10, "multiple_qty": 6},
            on_hand=[_on_hand(on_hand)],
        )
    )
    assert _orders(result) == [("A/W1/1", T0, T0, T0, expected_qty)]
    assert result["pegging"] == []


# ------------------------------------------------- 2. §5.4 forecast periods

_REDUCING = {"include_forecast": 1, "forecast_reduction": "transactions_period"}


def _forecast(day: str, qty: float) -> Row:
    """A forecast line of A at W1, the requirement ``FC:A/W1/{day}``."""
    return {"item_id": "A", "warehouse_id": "W1", "forecast_date": day, "qty": qty}


def test_sale_on_the_next_forecast_date_reduces_the_next_line() -> None:
    """§5.4: a line's period runs "from its date up to, not including, the
    next later forecast line's date". Forecasts 10 on 01-10 and 10 on 01-20:
    periods [01-10, 01-20) and [01-20, 02-19). A sale of 4 on 01-19 (the
    first period's last day) reduces the 01-10 line to 6; a sale of 3 on
    01-20 (exactly the next line's date) reduces the 01-20 line to 7, not
    the 01-10 one. Coverage `requirement`, no stock: every requirement gets
    an order for itself, due on its date; on 01-20 the sale walks before the
    forecast (`so` < `fc`), so it is planned first."""
    result = _plan(
        _model(
            _REDUCING,
            forecasts=[_forecast("2024-01-10", 10), _forecast("2024-01-20", 10)],
            sales_lines=[_sale("S1", 4, "2024-01-19"), _sale("S2", 3, "2024-01-20")],
        )
    )
    assert _pegs(result) == [
        ("PL:A/W1/1", "2024-01-10", "FC:A/W1/2024-01-10", "2024-01-10", 6.0),
        ("PL:A/W1/2", "2024-01-19", "SO:S1/1", "2024-01-19", 4.0),
        ("PL:A/W1/3", "2024-01-20", "SO:S2/1", "2024-01-20", 3.0),
        ("PL:A/W1/4", "2024-01-20", "FC:A/W1/2024-01-20", "2024-01-20", 7.0),
    ]
    assert _orders(result) == [
        ("A/W1/1", "2024-01-10", "2024-01-10", "2024-01-10", 6.0),
        ("A/W1/2", "2024-01-19", "2024-01-19", "2024-01-19", 4.0),
        ("A/W1/3", "2024-01-20", "2024-01-20", "2024-01-20", 3.0),
        ("A/W1/4", "2024-01-20", "2024-01-20", "2024-01-20", 7.0),
    ]


def test_last_forecast_period_is_thirty_days_end_excluded() -> None:
    """§5.4: "the last line's period is 30 days", read like the other
    periods as [date, date + 30): for a single line of 10 on 01-10 that is
    01-10 up to, not including, 02-09. A sale of 2 on 02-08 (its 30th day)
    reduces the line to 8; a sale of 3 on 02-09 (where the period ends)
    does not. Coverage `requirement`, no stock: one order per requirement,
    due on its date."""
    result = _plan(
        _model(
            _REDUCING,
            forecasts=[_forecast("2024-01-10", 10)],
            sales_lines=[_sale("S1", 2, "2024-02-08"), _sale("S2", 3, "2024-02-09")],
        )
    )
    assert _pegs(result) == [
        ("PL:A/W1/1", "2024-01-10", "FC:A/W1/2024-01-10", "2024-01-10", 8.0),
        ("PL:A/W1/2", "2024-02-08", "SO:S1/1", "2024-02-08", 2.0),
        ("PL:A/W1/3", "2024-02-09", "SO:S2/1", "2024-02-09", 3.0),
    ]


# ------------------------------------------------- 3. §5.8 postpone tolerance


@pytest.mark.parametrize(
    ("sale_day", "postponed"),
    [("2024-01-08", False), ("2024-01-09", True)],
    ids=["exactly-at-tolerance", "one-day-beyond"],
)
def test_postpone_only_beyond_the_tolerance(sale_day: str, postponed: bool) -> None:
    """§5.8: "e more than postpone_tolerance_days after it -> postpone to
    e". Tolerance 3, a purchase of 5 due 01-05 taken whole by a sale of 5:
    on 01-08 e is exactly 3 days after, not more, so no message; on 01-09 it
    is 4 days after, so `postpone` to 01-09 with `suggested_qty` NULL and
    the receipt's own date and quantity. Nothing is short, so no orders."""
    result = _plan(
        _model(
            {"coverage_code": "requirement", "postpone_tolerance_days": 3},
            purchase_lines=[
                {
                    "order_id": "P",
                    "line_no": 1,
                    "item_id": "A",
                    "warehouse_id": "W1",
                    "qty": 5,
                    "delivery_date": "2024-01-05",
                }
            ],
            sales_lines=[_sale("S", 5, sale_day)],
        )
    )
    assert _pegs(result) == [("PO:P/1", "2024-01-05", "SO:S/1", sale_day, 5.0)]
    assert result["planned_orders"] == []
    expected = [
        {
            "supply_kind": "po",
            "supply_ref": "PO:P/1",
            "item_id": "A",
            "warehouse_id": "W1",
            "action": "postpone",
            "receipt_date": "2024-01-05",
            "receipt_qty": 5.0,
            "suggested_date": sale_day,
            "suggested_qty": None,
        }
    ]
    assert result["action_messages"] == (expected if postponed else [])


# ------------------------------------------------------ 4. §5.7 fc delays


def test_forecast_covered_by_a_late_planned_order_is_delayed() -> None:
    """§5.7 writes delay messages for delayed `fc` requirements. Lead time
    5, a forecast of 10 on 01-02, no stock: §5.6 plans 10 due 01-02; its
    order date 12-28 is before T0 + freeze fence (0), so it becomes 01-01
    and the due date 01-06 (not firmed: 01-01 is not before T0 + 0). The
    order nets at its requirement date 01-02 (the pegging's supply date);
    a planned purchase is available on its due date, 01-06, so the
    forecast's futures date is 01-06, after 01-02: delay_days 4."""
    result = _plan(
        _model(
            coverage={"lead_time_days": 5},
            forecasts=[_forecast("2024-01-02", 10)],
        )
    )
    assert _orders(result) == [("A/W1/1", "2024-01-01", "2024-01-06", "2024-01-02", 10.0)]
    assert result["planned_orders"][0]["firmed"] == 0
    assert _pegs(result) == [("PL:A/W1/1", "2024-01-02", "FC:A/W1/2024-01-02", "2024-01-02", 10.0)]
    assert result["delay_messages"] == [
        {
            "demand_kind": "fc",
            "demand_ref": "FC:A/W1/2024-01-02",
            "item_id": "A",
            "warehouse_id": "W1",
            "requirement_date": "2024-01-02",
            "futures_date": "2024-01-06",
            "delay_days": 4,
        }
    ]


def test_short_forecast_is_never_covered() -> None:
    """§5.7: a requirement with a shortfall has no futures date ("never"),
    so it is delayed, and its message has NULL `futures_date` and
    `delay_days`. Coverage `manual` (no orders), on-hand 1, a forecast of 4
    on 01-05: the forecast takes the 1 and stays 3 short."""
    result = _plan(
        _model(
            {"coverage_code": "manual"},
            on_hand=[_on_hand(1)],
            forecasts=[_forecast("2024-01-05", 4)],
        )
    )
    assert result["planned_orders"] == []
    assert _pegs(result) == [("OH:A/W1", T0, "FC:A/W1/2024-01-05", "2024-01-05", 1.0)]
    assert result["delay_messages"] == [
        {
            "demand_kind": "fc",
            "demand_ref": "FC:A/W1/2024-01-05",
            "item_id": "A",
            "warehouse_id": "W1",
            "requirement_date": "2024-01-05",
            "futures_date": None,
            "delay_days": None,
        }
    ]


# ------------------------------------------------ 5. §5.5 sales priority


def test_sales_priority_decides_before_the_ref() -> None:
    """§5.5 walks requirements in the order (date, kind, sales `priority`,
    ref), lower priority first (§4). Two sales of 5 on 01-03, on-hand 5,
    coverage `manual`: SO:S1/1 has priority 2 and the smaller ref, SO:S2/1
    priority 1. S2 walks first and takes the whole on-hand; S1 stays 5 short,
    never covered (a delay message with NULL futures date)."""
    result = _plan(
        _model(
            {"coverage_code": "manual"},
            on_hand=[_on_hand(5)],
            sales_lines=[
                _sale("S1", 5, "2024-01-03", priority=2),
                _sale("S2", 5, "2024-01-03", priority=1),
            ],
        )
    )
    assert _pegs(result) == [("OH:A/W1", T0, "SO:S2/1", "2024-01-03", 5.0)]
    assert [(m["demand_ref"], m["futures_date"]) for m in result["delay_messages"]] == [
        ("SO:S1/1", None)
    ]


# ------------------------------------- 6. §5.4 production orders and lines


def test_production_order_receipt_and_component_lines() -> None:
    """§5.4: a production order is a `prd` receipt on its `end_date`; its
    lines are `prdl` requirements of the component on `required_date`.
    PRD:P1 makes 4 FG, ends 01-08; its line needs 8 C on 01-03. FG: the sale
    of 4 on 01-08 takes PRD:P1 whole; e = 01-08 is the receipt date, so no
    action message (§5.8). C (lead time 5, on-hand 3): PRDL:P1/1 takes the 3
    and is 5 short, so §5.6 plans 5 due 01-03, order date 12-29 moved to T0
    by the freeze fence and due 01-06; it nets at 01-03. §5.7: the prdl's
    futures date is 01-06, after 01-03, but `prdl` gets no delay message;
    an existing `prd` is available on its own date, whatever its
    components, so the sale is not delayed either: no delay messages."""
    inp: Tables = {
        "warehouses": [{"warehouse_id": "W1", "site_id": "S", "calendar_id": None}],
        "items": [
            {"item_id": "FG", "default_order_type": "production"},
            {"item_id": "C", "default_order_type": "purchase", "lead_time_days": 5},
        ],
        "on_hand": [_on_hand(3, item="C")],
        "production_orders": [
            {
                "order_id": "P1",
                "item_id": "FG",
                "warehouse_id": "W1",
                "qty": 4,
                "start_date": "2024-01-03",
                "end_date": "2024-01-08",
            }
        ],
        "production_lines": [
            {
                "order_id": "P1",
                "line_no": 1,
                "component_item_id": "C",
                "warehouse_id": "W1",
                "qty": 8,
                "required_date": "2024-01-03",
            }
        ],
        "sales_lines": [_sale("S", 4, "2024-01-08", item="FG")],
    }
    result = _plan(inp)
    assert _orders(result) == [("C/W1/1", "2024-01-01", "2024-01-06", "2024-01-03", 5.0)]
    assert _pegs(result) == [
        ("OH:C/W1", T0, "PRDL:P1/1", "2024-01-03", 3.0),
        ("PL:C/W1/1", "2024-01-03", "PRDL:P1/1", "2024-01-03", 5.0),
        ("PRD:P1", "2024-01-08", "SO:S/1", "2024-01-08", 4.0),
    ]
    kinds = sorted((row["supply_kind"], row["demand_kind"]) for row in result["pegging"])
    assert kinds == [("oh", "prdl"), ("pl", "prdl"), ("prd", "so")]
    assert result["action_messages"] == []
    assert result["delay_messages"] == []
    assert result["plan_messages"] == []
