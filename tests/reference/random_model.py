"""A seeded generator of small random SCM models (examples' input format) for
smoke, invariant and differential tests of §5 planners.

The models deliberately mix every feature of §5: calendars with exceptions,
all coverage codes, fences, negative/positive days, multi-level BOMs with
validity dates, warehouse-specific BOMs, scrap, batch quantities, transfers
between warehouses (and so possible cycles), firmed planned orders of every
type, forecasts, and a sprinkle of bad rows (§5.9): unknown ids, negative and
out-of-bound quantities and days, and now and then the INVALID_ROW cases (NULL
or empty keys and names, bad line_no, NULL dates, codes outside their lists,
bad weekday patterns), NULL quantities, quantities within 1e-9 of zero
(5.55e-17, -1e-13, 1e-12) and negative lead times.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from typing import Any

Row = dict[str, Any]


def random_model(
    seed: int, n_items: int = 12, n_warehouses: int = 3
) -> tuple[dict[str, list[Row]], str, str | None]:
    """Returns (input tables, plan_date, default_group) for one random model.

    With the defaults this gives about 30-60 SKUs."""
    rnd = random.Random(seed)

    def rare(p: float = 0.04) -> bool:
        return rnd.random() < p

    def tiny() -> float:
        """A quantity within 1e-9 of zero: it is exactly zero (§5)."""
        return rnd.choice([5.55e-17, -1e-13, 1e-12, -1e-12, 6e-10])

    t0 = dt.date(2024, 1, 1) + dt.timedelta(days=rnd.randrange(0, 7))

    def day(lo: int, hi: int) -> str:
        return (t0 + dt.timedelta(days=rnd.randint(lo, hi))).isoformat()

    whs = [f"W{i}" for i in range(1, n_warehouses + 1)]
    items = [f"I{i:02d}" for i in range(n_items)]
    inp: dict[str, list[Row]] = {
        k: []
        for k in (
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
    }

    inp["calendars"].append({"calendar_id": "C5", "working_weekdays": "1111100"})
    inp["calendars"].append({"calendar_id": "C6", "working_weekdays": "1111110"})
    for _ in range(3):
        inp["calendar_exceptions"].append(
            {
                "calendar_id": rnd.choice(["C5", "C6"]),
                "day": day(0, 30),
                "is_working": rnd.randint(0, 1),
            }
        )
    # (calendar_id, day) may repeat by chance: DUPLICATE_KEY, as intended
    for w in whs:
        inp["warehouses"].append(
            {"warehouse_id": w, "site_id": "S", "calendar_id": rnd.choice([None, "C5", "C6"])}
        )

    codes = ["requirement", "requirement", "period", "min_max", "manual"]
    groups = []
    for gi in range(5):
        gid = f"G{gi}"
        groups.append(gid)
        inp["coverage_groups"].append(
            {
                "group_id": gid,
                "coverage_code": codes[gi],
                "coverage_period_days": rnd.choice([None, 0, 3, 7]),
                "coverage_time_fence_days": rnd.choice([None, 20, 60]),
                "freeze_time_fence_days": rnd.choice([None, 0, 2]),
                "firming_time_fence_days": rnd.choice([None, 0, 5]),
                "negative_days": rnd.choice([None, 0, 3]),
                "positive_days": rnd.choice([None, None, 5, 20]),
                "use_working_days": rnd.choice([None, 0, 1]),
                "safety_stock_fulfillment": rnd.choice([None, "today", "lead_time"]),
                "forecast_reduction": rnd.choice([None, "none", "transactions_period"]),
                "include_forecast": rnd.choice([None, 0, 1]),
                "postpone_tolerance_days": rnd.choice([None, 0, 2]),
            }
        )

    # items: the first third are finished goods / subassemblies (production),
    # BOMs only point to higher-numbered items (plus an occasional back edge)
    for idx, it in enumerate(items):
        kind = "production" if idx < n_items // 2 else rnd.choice(["purchase", "transfer"])
        inp["items"].append(
            {
                "item_id": it,
                "default_order_type": kind,
                "coverage_group_id": rnd.choice([*groups, None, "NOGROUP"]),
                # Now and then past the validation bound (INVALID_ROW).
                "lead_time_days": (
                    rnd.choice([None, 0, 1, 2, 5])
                    if rnd.random() > 0.03
                    else rnd.choice([36_501, -2])  # INVALID_ROW; counts as 0
                ),
                "min_order_qty": rnd.choice([None, 0, 5]),
                "max_order_qty": rnd.choice([None, 0, 0, 20]),
                "multiple_qty": rnd.choice([None, 0, 0, 4]),
                "default_vendor_id": rnd.choice([None, "V1"]),
            }
        )
        if kind == "production":
            for b in range(rnd.randint(1, 2)):
                bid = f"B{it}_{b}"
                inp["boms"].append(
                    {
                        "bom_id": bid,
                        "item_id": it,
                        "warehouse_id": rnd.choice([None, None, rnd.choice(whs)]),
                        "valid_from": rnd.choice([None, day(0, 15)]),
                        "valid_to": rnd.choice([None, None, day(10, 40)]),
                        "batch_qty": rnd.choice([None, 1, 2]),
                    }
                )
                for ln in range(1, rnd.randint(1, 3) + 1):
                    if rnd.random() < 0.04:
                        comp = items[rnd.randrange(0, idx + 1)]  # possible cycle
                    else:
                        comp = (
                            items[rnd.randrange(idx + 1, n_items)]
                            if idx + 1 < n_items
                            else items[-1]
                        )
                    inp["bom_lines"].append(
                        {
                            "bom_id": bid,
                            "line_no": ln * 10,
                            "component_item_id": comp,
                            "qty_per": (
                                rnd.choice([1, 2, 0.5])
                                if not rare()
                                else rnd.choice([None, 1e-12, -1e-12])
                            ),
                            "scrap_pct": rnd.choice([None, 0, 10]),
                            "scrap_const": rnd.choice([None, 0, 1]),
                            "warehouse_id": rnd.choice([None, None, rnd.choice(whs)]),
                        }
                    )

    for it in items:
        for w in whs:
            if rnd.random() < 0.5:
                inp["item_coverage"].append(
                    {
                        "item_id": it,
                        "warehouse_id": w,
                        "coverage_group_id": rnd.choice([None, None, *groups]),
                        "min_qty": rnd.choice([None, 0, 5]),
                        "max_qty": rnd.choice([None, 10, 30]),
                        "safety_stock_qty": rnd.choice([None, 0, 0, 3]),
                        "order_type": rnd.choice([None, None, "transfer", "purchase"]),
                        "lead_time_days": rnd.choice([None, None, 1, 3]) if not rare() else -1,
                        "refill_warehouse_id": rnd.choice([None, *whs, "NOWH"]),
                        "vendor_id": rnd.choice([None, "V2"]),
                    }
                )

    def sku() -> tuple[str, str]:
        return rnd.choice(items), rnd.choice(whs)

    for _ in range(rnd.randint(5, 12)):
        i, w = sku()
        q: Any = rnd.randint(-5, 20) if not rare(0.08) else rnd.choice([None, tiny()])
        inp["on_hand"].append({"item_id": i, "warehouse_id": w, "qty": q})
    for n in range(rnd.randint(10, 25)):
        i, w = sku()
        inp["sales_lines"].append(
            {
                "order_id": f"S{n // 3}",
                "line_no": n % 3 + 1,
                "item_id": i,
                "warehouse_id": w,
                # Now and then past the validation bound (INVALID_QTY).
                "qty": (
                    rnd.choice([0, 1, 3, 7, 12.5])
                    if rnd.random() > 0.03
                    else rnd.choice([2e12, None, tiny()])
                ),
                "requested_date": day(-5, 45),
                "priority": rnd.choice([None, 0, 1]),
            }
        )
    for n in range(rnd.randint(3, 10)):
        i, w = sku()
        inp["purchase_lines"].append(
            {
                "order_id": f"P{n}",
                "line_no": 1,
                "item_id": i,
                "warehouse_id": w,
                "qty": rnd.choice([2, 5, 10]) if not rare(0.06) else tiny(),
                "delivery_date": day(-3, 40),
            }
        )
    for n in range(rnd.randint(0, 3)):
        i, w = rnd.choice(items[: n_items // 2]), rnd.choice(whs)
        inp["production_orders"].append(
            {
                "order_id": f"MO{n}",
                "item_id": i,
                "warehouse_id": w,
                "qty": rnd.choice([2, 4]),
                "start_date": day(0, 5),
                "end_date": day(3, 15),
            }
        )
        inp["production_lines"].append(
            {
                "order_id": f"MO{n}",
                "line_no": 1,
                "component_item_id": rnd.choice(items),
                "warehouse_id": w,
                "qty": 2,
                "required_date": day(-2, 5),
            }
        )
    for n in range(rnd.randint(0, 4)):
        item = rnd.choice(items)
        src, dst = rnd.sample(whs, 2)
        inp["transfer_lines"].append(
            {
                "order_id": f"T{n}",
                "line_no": 1,
                "item_id": item,
                "from_warehouse_id": src,
                "to_warehouse_id": dst,
                "qty": rnd.choice([1, 3]),
                "ship_date": day(-2, 10),
                "receive_date": day(0, 14),
            }
        )
    for _ in range(rnd.randint(0, 8)):
        i, w = sku()
        inp["forecasts"].append(
            {
                "item_id": i,
                "warehouse_id": w,
                "forecast_date": day(-10, 50),
                "qty": rnd.choice([0, 5, 10]) if not rare(0.06) else tiny(),
            }
        )
    for n in range(rnd.randint(0, 4)):
        i, w = sku()
        inp["firmed_planned_orders"].append(
            {
                "planned_order_id": f"F{n}",
                "item_id": i,
                "warehouse_id": w,
                "order_type": rnd.choice(["purchase", "production", "transfer"]),
                "qty": rnd.choice([1, 4]),
                "order_date": day(-3, 10),
                "due_date": day(0, 15),
                "from_warehouse_id": rnd.choice([None, *whs]),
            }
        )

    # a little bad data (§5.9)
    if rnd.random() < 0.5:
        inp["sales_lines"].append(
            {
                "order_id": "BAD",
                "line_no": 1,
                "item_id": "NOITEM",
                "warehouse_id": whs[0],
                "qty": 1,
                "requested_date": day(0, 5),
            }
        )
    if rnd.random() < 0.5:
        inp["purchase_lines"].append(
            {
                "order_id": "BAD",
                "line_no": 1,
                "item_id": items[0],
                "warehouse_id": whs[0],
                "qty": -1,
                "delivery_date": day(0, 5),
            }
        )

    add_invalid_rows(inp, rnd, whs, items, day)

    default_group = rnd.choice([None, "G0", "G3"])
    return inp, t0.isoformat(), default_group


def add_invalid_rows(
    inp: dict[str, list[Row]],
    rnd: random.Random,
    whs: list[str],
    items: list[str],
    day: Callable[[int, int], str],
) -> None:
    """Now and then, one of the §5.9 INVALID_ROW cases or a NULL quantity (each
    case in about one model in sixteen)."""

    def sometimes() -> bool:
        return rnd.random() < 0.06

    def sale(**changes: Any) -> Row:
        row: Row = {
            "order_id": f"X{len(inp['sales_lines'])}",
            "line_no": 1,
            "item_id": rnd.choice(items),
            "warehouse_id": rnd.choice(whs),
            "qty": rnd.choice([1, 4]),
            "requested_date": day(0, 20),
        }
        row.update(changes)
        return row

    blank = rnd.choice([None, ""])
    # NULL or empty keys
    if sometimes():
        inp["sales_lines"].append(sale(order_id=blank))
    if sometimes():
        inp["sales_lines"].append(sale(line_no=blank))
    if sometimes():
        inp["warehouses"].append({"warehouse_id": blank, "site_id": "S"})
    if sometimes():
        inp["items"].append({"item_id": blank, "default_order_type": "purchase"})
    if sometimes():
        inp["coverage_groups"].append({"group_id": blank, "coverage_code": "manual"})
    if sometimes():
        inp["item_coverage"].append(
            {"item_id": rnd.choice(items), "warehouse_id": blank, "safety_stock_qty": 5}
        )
    # NULL or empty item / warehouse names
    if sometimes():
        inp["sales_lines"].append(sale(**{rnd.choice(["item_id", "warehouse_id"]): blank}))
    if sometimes():
        src, dst = rnd.sample(whs, 2)
        row: Row = {
            "order_id": "XT",
            "line_no": 1,
            "item_id": rnd.choice(items),
            "from_warehouse_id": src,
            "to_warehouse_id": dst,
            "qty": 2,
            "ship_date": day(0, 5),
            "receive_date": day(3, 9),
        }
        row[rnd.choice(["item_id", "from_warehouse_id", "to_warehouse_id"])] = blank
        inp["transfer_lines"].append(row)
    if sometimes() and inp["bom_lines"]:
        line = dict(rnd.choice(inp["bom_lines"]))
        line.update(line_no=99, component_item_id=blank)
        inp["bom_lines"].append(line)
    # a line_no that is not a whole number from 0 to 2^53 - 1
    if sometimes():
        inp["sales_lines"].append(sale(line_no=rnd.choice([1.5, -1, 1e19, 2**53])))
    if sometimes():
        inp["sales_lines"].append(sale(order_id="XL", line_no=rnd.choice([0, 2**53 - 1, 2.0])))
    # NULL dates the plan reads
    if sometimes():
        inp["sales_lines"].append(sale(requested_date=None))
    if sometimes():
        inp["forecasts"].append(
            {
                "item_id": rnd.choice(items),
                "warehouse_id": rnd.choice(whs),
                "forecast_date": None,
                "qty": 5,
            }
        )
    if sometimes():
        inp["purchase_lines"].append(
            {
                "order_id": "XP",
                "line_no": 1,
                "item_id": rnd.choice(items),
                "warehouse_id": rnd.choice(whs),
                "qty": 3,
                "delivery_date": None,
            }
        )
    # codes outside their lists (a firmed order's NULL order_type included)
    if sometimes():
        inp["coverage_groups"].append(
            {
                "group_id": "GBAD",
                rnd.choice(
                    ["coverage_code", "safety_stock_fulfillment", "forecast_reduction"]
                ): rnd.choice(["Period", "now", "", "MIN_MAX"]),
            }
        )
        inp["items"][rnd.randrange(len(inp["items"]))]["coverage_group_id"] = "GBAD"
    if sometimes():
        inp["items"].append({"item_id": "IBAD", "default_order_type": rnd.choice(["make", ""])})
        inp["sales_lines"].append(sale(item_id="IBAD"))
    if sometimes():
        inp["item_coverage"].append(
            {"item_id": rnd.choice(items), "warehouse_id": rnd.choice(whs), "order_type": "Buy"}
        )
    if sometimes():
        inp["firmed_planned_orders"].append(
            {
                "planned_order_id": "FBAD",
                "item_id": rnd.choice(items),
                "warehouse_id": rnd.choice(whs),
                "order_type": rnd.choice([None, "Transfer"]),
                "qty": 2,
                "order_date": day(0, 3),
                "due_date": day(3, 6),
            }
        )
    # a working_weekdays that is not seven 0/1 characters with a 1: the
    # calendar is left out, and the warehouse naming it has none
    if sometimes():
        inp["calendars"].append(
            {
                "calendar_id": "C7",
                "working_weekdays": rnd.choice([None, "0000000", "111110", "11111x0"]),
            }
        )
        inp["calendar_exceptions"].append({"calendar_id": "C7", "day": day(0, 9), "is_working": 1})
        inp["warehouses"][rnd.randrange(len(whs))]["calendar_id"] = "C7"
    # NULL quantities
    if sometimes():
        inp["sales_lines"].append(sale(qty=None))
    if sometimes():
        inp["firmed_planned_orders"].append(
            {
                "planned_order_id": "FNULL",
                "item_id": rnd.choice(items),
                "warehouse_id": rnd.choice(whs),
                "order_type": "purchase",
                "qty": None,
                "order_date": day(0, 3),
                "due_date": day(3, 6),
            }
        )
