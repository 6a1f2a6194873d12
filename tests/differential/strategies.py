"""Hypothesis strategies for small random SCM models (SPEC §4 input rows)
using every rule of §5: all coverage codes (NULL means `requirement`, an
unknown one leaves the group out), working-day calendars with weekday patterns, exceptions,
empty and unknown calendars, multi-level BOMs with versions, batch and scrap, transfers with refill
warehouses (so cycles), firmed planned orders, on-hand (negative too), order
lines of every kind, forecasts with `transactions_period` reduction, safety
stock, fences, negative/positive days, order quantity modifiers and a few bad
rows (unknown items/warehouses, negative and NULL quantities, duplicate keys,
NULL or empty ids and keys, bad line numbers, NULL dates, quantities within
the tolerance of zero, negative lead times, and quantities and days past the
validation bounds).

Small, fixed universes of ids keep collisions (duplicates, shared SKUs,
cycles) frequent and counterexamples readable.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import strategies as st

Row = dict[str, Any]
Model = tuple[dict[str, list[Row]], str, str | None]

INPUT_TABLE_NAMES = (
    "warehouses",
    "calendars",
    "calendar_exceptions",
    "coverage_groups",
    "items",
    "item_coverage",
    "boms",
    "bom_lines",
    "on_hand",
    "sales_lines",
    "purchase_lines",
    "production_orders",
    "production_lines",
    "transfer_lines",
    "forecasts",
    "firmed_planned_orders",
)

ITEMS = ("A", "B", "C", "D", "E")
WAREHOUSES = ("W1", "W2", "W3")
GROUPS = ("G0", "G1", "G2")
PLAN_DATES = (dt.date(2024, 1, 1), dt.date(2024, 1, 4))


def rarely(common: st.SearchStrategy[Any], extremes: tuple[Any, ...]) -> st.SearchStrategy[Any]:
    """``common`` mostly; one of ``extremes`` about one draw in twenty."""
    return st.integers(0, 19).flatmap(lambda n: st.sampled_from(extremes) if n == 0 else common)


# ids rows may name: mostly known, sometimes not, now and then NULL or empty
# (§5.9: UNKNOWN_ITEM / UNKNOWN_WAREHOUSE, or INVALID_ROW)
item_ref = rarely(st.sampled_from(ITEMS) | st.just("NOITEM"), (None, ""))
wh_ref = rarely(
    st.sampled_from(WAREHOUSES[:2]) | st.sampled_from((*WAREHOUSES, "NOWH")), (None, "")
)

# Values past the validation bounds (docs/planning-rules.md, §5.9): a quantity
# beyond ±1e12 (infinite included) is INVALID_QTY, days beyond ±36,500 INVALID_ROW.
BEYOND_QTY = (2e12, -3e12, float("inf"))
BEYOND_DAYS = (36_501, -40_000)

qty = st.sampled_from((0, 1, 2, 3, 5, 7.5, 10, 12))
# NULL is INVALID_QTY; within 1e-9 of zero is zero (what ordered minus
# received gives in floating point).
maybe_neg_qty = rarely(qty | st.just(-1), (*BEYOND_QTY, None, 5.55e-17, -1e-13))
offset = st.integers(-6, 40)  # days from T0


def _small(elements: st.SearchStrategy[Any], max_size: int) -> st.SearchStrategy[list[Any]]:
    return st.lists(elements, max_size=max_size)


@st.composite
def models(draw: st.DrawFn) -> Model:
    t0 = draw(st.sampled_from(PLAN_DATES))

    def day(lo: int = -6, hi: int = 40) -> str:
        return (t0 + dt.timedelta(days=draw(st.integers(lo, hi)))).isoformat()

    def maybe_day(lo: int = -6, hi: int = 40) -> str | None:
        return None if draw(st.booleans()) else day(lo, hi)

    inp: dict[str, list[Row]] = {t: [] for t in INPUT_TABLE_NAMES}

    # warehouses and their working-day calendars (weekday patterns, exceptions)
    n_wh = draw(st.integers(2, 3))
    for w in WAREHOUSES[:n_wh]:
        inp["warehouses"].append(
            {
                "warehouse_id": w,
                "site_id": "S",
                "calendar_id": draw(st.sampled_from((None, "C5", "C3", "NOCAL"))),
            }
        )
    inp["calendars"].append({"calendar_id": "C5", "working_weekdays": "1111100"})
    inp["calendars"].append(
        {
            "calendar_id": "C3",
            "working_weekdays": draw(st.sampled_from(("1010100", "0000000", None, "11"))),
        }
    )
    for _ in range(draw(st.integers(0, 4))):
        inp["calendar_exceptions"].append(
            {
                "calendar_id": draw(st.sampled_from(("C5", "C3"))),
                "day": day(-2, 30),
                "is_working": draw(st.sampled_from((0, 1, None))),
            }
        )

    groups = GROUPS[: draw(st.integers(1, len(GROUPS)))]
    for g in groups:
        inp["coverage_groups"].append(
            {
                "group_id": g,
                "coverage_code": draw(
                    st.sampled_from(("requirement", "period", "min_max", "manual", None, "bogus"))
                ),
                "coverage_period_days": draw(rarely(st.sampled_from((None, 0, 3)), BEYOND_DAYS)),
                "coverage_time_fence_days": draw(
                    rarely(st.sampled_from((None, 10, 30)), BEYOND_DAYS)
                ),
                "freeze_time_fence_days": draw(st.sampled_from((None, 0, 2))),
                "firming_time_fence_days": draw(st.sampled_from((None, 0, 5))),
                "negative_days": draw(rarely(st.sampled_from((None, 0, 3, -2)), BEYOND_DAYS)),
                "positive_days": draw(rarely(st.sampled_from((None, 0, 5, -1, -3)), BEYOND_DAYS)),
                "use_working_days": draw(st.sampled_from((None, 0, 1))),
                "safety_stock_fulfillment": draw(st.sampled_from((None, "today", "lead_time"))),
                "forecast_reduction": draw(st.sampled_from((None, "none", "transactions_period"))),
                "include_forecast": draw(st.sampled_from((None, 0, 1))),
                "postpone_tolerance_days": draw(rarely(st.sampled_from((None, 0, 2)), BEYOND_DAYS)),
            }
        )
    group_ref = st.sampled_from((None, *groups)) | st.just("NOGROUP")

    n_items = draw(st.integers(1, len(ITEMS)))
    items = ITEMS[:n_items]
    item_rows = list(items)
    if draw(st.integers(0, 9)) == 0:  # a duplicated item
        item_rows.append(draw(st.sampled_from(items)))
    for it in item_rows:
        inp["items"].append(
            {
                "item_id": it,
                "default_order_type": draw(
                    st.sampled_from(("production", "purchase", "transfer", None))
                ),
                "coverage_group_id": draw(group_ref),
                "lead_time_days": draw(
                    rarely(st.sampled_from((None, 0, 1, 3)), (*BEYOND_DAYS, -2))
                ),
                "min_order_qty": draw(st.sampled_from((None, 0, 4))),
                "max_order_qty": draw(rarely(st.sampled_from((None, 0, 0, 6)), BEYOND_QTY)),
                "multiple_qty": draw(st.sampled_from((None, 0, 0, 2.5, 4))),
                "default_vendor_id": draw(st.sampled_from((None, "V1"))),
            }
        )

    # BOMs: components mostly of later items (acyclic), sometimes any item
    for n in range(draw(st.integers(0, 4))):
        parent_idx = draw(st.integers(0, n_items - 1))
        # now and then a blank id, on the BOM and its lines alike (INVALID_ROW)
        bid = draw(rarely(st.just(f"B{n}"), (None, "")))
        inp["boms"].append(
            {
                "bom_id": bid,
                "item_id": items[parent_idx] if draw(st.integers(0, 9)) else "NOITEM",
                "warehouse_id": draw(st.sampled_from((None, None, *WAREHOUSES[:n_wh]))),
                "valid_from": maybe_day(-3, 10),
                "valid_to": maybe_day(5, 30),
                "batch_qty": draw(rarely(st.sampled_from((None, 1, 2, 0)), BEYOND_QTY)),
            }
        )
        for ln in range(1, draw(st.integers(1, 3)) + 1):
            if parent_idx + 1 < n_items and draw(st.integers(0, 9)):
                comp = items[draw(st.integers(parent_idx + 1, n_items - 1))]
            else:
                comp = draw(item_ref)
            inp["bom_lines"].append(
                {
                    "bom_id": bid if draw(st.integers(0, 14)) else "NOBOM",
                    "line_no": ln,
                    "component_item_id": comp,
                    "qty_per": draw(rarely(st.sampled_from((1, 2, 0.5, 0, -1)), BEYOND_QTY)),
                    "scrap_pct": draw(st.sampled_from((None, 0, 10))),
                    "scrap_const": draw(rarely(st.sampled_from((None, 0, 1)), BEYOND_QTY)),
                    "warehouse_id": draw(st.sampled_from((None, None, *WAREHOUSES[:n_wh]))),
                }
            )

    for _ in range(draw(st.integers(0, 5))):
        inp["item_coverage"].append(
            {
                "item_id": draw(item_ref),
                "warehouse_id": draw(wh_ref),
                "coverage_group_id": draw(group_ref),
                "min_qty": draw(st.sampled_from((None, 0, 5))),
                "max_qty": draw(st.sampled_from((None, 10))),
                "safety_stock_qty": draw(rarely(st.sampled_from((None, 0, 3)), BEYOND_QTY)),
                "order_type": draw(
                    st.sampled_from((None, None, "transfer", "purchase", "production"))
                ),
                "lead_time_days": draw(
                    rarely(st.sampled_from((None, None, 1, 4)), (*BEYOND_DAYS, -1))
                ),
                "refill_warehouse_id": draw(st.sampled_from((None, *WAREHOUSES, "NOWH"))),
                "vendor_id": draw(st.sampled_from((None, "V2"))),
                "min_order_qty": draw(st.sampled_from((None, None, 3))),
                "max_order_qty": draw(st.sampled_from((None, None, 0, 5))),
                "multiple_qty": draw(st.sampled_from((None, None, 0, 2))),
            }
        )

    for _ in range(draw(st.integers(0, 4))):
        inp["on_hand"].append(
            {
                "item_id": draw(item_ref),
                "warehouse_id": draw(wh_ref),
                "qty": draw(rarely(st.integers(-5, 12), BEYOND_QTY)),
            }
        )

    def order_id(prefix: str) -> str | None:
        return draw(rarely(st.integers(0, 5).map(lambda n: f"{prefix}{n}"), (None, "")))

    def line_no() -> float | None:
        # not a whole number from 0 to 2**53 - 1: INVALID_ROW
        return draw(rarely(st.integers(1, 2), (None, 1.5, -1, 1e19, 2e19)))

    def needed_day(lo: int = -6, hi: int = 40) -> str | None:
        """A date the plan reads: NULL now and then (INVALID_ROW)."""
        return None if draw(st.integers(0, 24)) == 0 else day(lo, hi)

    for _ in range(draw(st.integers(0, 6))):
        inp["sales_lines"].append(
            {
                "order_id": order_id("S"),
                "line_no": line_no(),
                "item_id": draw(item_ref),
                "warehouse_id": draw(wh_ref),
                "qty": draw(maybe_neg_qty),
                "requested_date": needed_day(),
                "priority": draw(st.sampled_from((None, 0, 1))),
            }
        )
    for _ in range(draw(st.integers(0, 4))):
        inp["purchase_lines"].append(
            {
                "order_id": order_id("P"),
                "line_no": line_no(),
                "item_id": draw(item_ref),
                "warehouse_id": draw(wh_ref),
                "qty": draw(maybe_neg_qty),
                "delivery_date": needed_day(),
                "vendor_id": None,
            }
        )
    for _ in range(draw(st.integers(0, 2))):
        inp["production_orders"].append(
            {
                "order_id": order_id("MO"),
                "item_id": draw(item_ref),
                "warehouse_id": draw(wh_ref),
                "qty": draw(maybe_neg_qty),
                "start_date": day(-3, 5),
                "end_date": needed_day(0, 20),
            }
        )
    for _ in range(draw(st.integers(0, 2))):
        inp["production_lines"].append(
            {
                "order_id": order_id("MO"),
                "line_no": line_no(),
                "component_item_id": draw(item_ref),
                "warehouse_id": draw(wh_ref),
                "qty": draw(maybe_neg_qty),
                "required_date": needed_day(-3, 10),
            }
        )
    for _ in range(draw(st.integers(0, 3))):
        inp["transfer_lines"].append(
            {
                "order_id": order_id("T"),
                "line_no": line_no(),
                "item_id": draw(item_ref),
                "from_warehouse_id": draw(wh_ref),
                "to_warehouse_id": draw(wh_ref),
                "qty": draw(maybe_neg_qty),
                "ship_date": needed_day(-3, 10),
                "receive_date": needed_day(0, 15),
            }
        )
    for _ in range(draw(st.integers(0, 5))):
        inp["forecasts"].append(
            {
                "item_id": draw(item_ref),
                "warehouse_id": draw(wh_ref),
                "forecast_date": needed_day(-10, 45),
                "qty": draw(maybe_neg_qty),
            }
        )
    for n in range(draw(st.integers(0, 3))):
        inp["firmed_planned_orders"].append(
            {
                "planned_order_id": f"F{draw(st.integers(0, 3)) if n else 0}",
                "item_id": draw(item_ref),
                "warehouse_id": draw(wh_ref),
                "order_type": draw(st.sampled_from(("purchase", "production", "transfer", None))),
                "qty": draw(maybe_neg_qty),
                "order_date": needed_day(-3, 10),
                "due_date": needed_day(0, 15),
                "from_warehouse_id": draw(st.sampled_from((None, *WAREHOUSES, "NOWH"))),
            }
        )

    # A default group that no row names fails the run (InvalidPlanInput); one
    # whose row the checks leave out serves as none (§5.2, §5.9).
    named = [g["group_id"] for g in inp["coverage_groups"]]
    default_group = draw(st.sampled_from((None, *named)))
    return inp, t0.isoformat(), default_group
