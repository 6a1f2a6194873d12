"""Hand-written cases of the §5.9 row checks on the reference planner: one test
per rule of INVALID_ROW (NULL or empty keys and names, line_no, NULL dates,
codes, working_weekdays), NULL quantities, the 1e-9 tolerance at loading, and
the negative lead time of §5.2. Each asserts the plan messages (code, item,
warehouse) and that the offending row plays no part in the plan.

T0 is 2024-03-04, a Monday."""

from __future__ import annotations

from collections import Counter
from typing import Any

from .planner import reference_plan

Row = dict[str, Any]
Result = dict[str, list[Row]]
Msg = tuple[str, Any, Any]

T0 = "2024-03-04"


def plan(inp: dict[str, list[Row]], default_group: str | None = None) -> Result:
    return reference_plan(inp, T0, default_group)


def messages(result: Result) -> Counter[Msg]:
    """The plan messages as a multiset of (code, item_id, warehouse_id)."""
    return Counter((m["code"], m["item_id"], m["warehouse_id"]) for m in result["plan_messages"])


def demand_refs(result: Result) -> set[str]:
    return {p["demand_ref"] for p in result["pegging"]}


def supply_refs(result: Result) -> set[str]:
    return {p["supply_ref"] for p in result["pegging"]}


def skus_planned(result: Result) -> set[tuple[Any, Any]]:
    """SKUs that appear anywhere in the plan's orders, pegging and actions."""
    out: set[tuple[Any, Any]] = set()
    for table in ("planned_orders", "pegging", "action_messages", "delay_messages"):
        out |= {(r["item_id"], r["warehouse_id"]) for r in result[table]}
    return out


def orders(result: Result) -> list[tuple[str, float, str, str]]:
    return sorted(
        (o["planned_order_id"], o["qty"], o["order_date"], o["due_date"])
        for o in result["planned_orders"]
    )


WAREHOUSES = [{"warehouse_id": "W1", "site_id": "S"}, {"warehouse_id": "W2", "site_id": "S"}]


def sale(order: Any, line: Any, item: Any, wh: Any, qty: Any, date: Any = "2024-03-06") -> Row:
    return {
        "order_id": order,
        "line_no": line,
        "item_id": item,
        "warehouse_id": wh,
        "qty": qty,
        "requested_date": date,
    }


# ---------------------------------------------------------------------------- 1a keys


def test_null_or_empty_key_column_is_invalid_row() -> None:
    result = plan(
        {
            "warehouses": [*WAREHOUSES, {"warehouse_id": None}, {"warehouse_id": ""}],
            "calendars": [{"calendar_id": "", "working_weekdays": "1111100"}],
            "calendar_exceptions": [{"calendar_id": None, "day": "2024-03-05", "is_working": 0}],
            "coverage_groups": [{"group_id": None, "coverage_code": "manual"}],
            "items": [{"item_id": "A"}, {"item_id": ""}, {"item_id": None}],
            "item_coverage": [
                {"item_id": "A", "warehouse_id": "", "safety_stock_qty": 4},
                {"item_id": None, "warehouse_id": "W1"},
            ],
            "boms": [{"bom_id": "", "item_id": "A"}],
            "sales_lines": [
                sale("S1", 1, "A", "W1", 2),
                sale(None, 1, "A", "W1", 5),
                sale("S2", "", "A", "W1", 7),
                sale("", None, "A", "W2", 9),
            ],
            "production_orders": [
                {
                    "order_id": None,
                    "item_id": "A",
                    "warehouse_id": "W1",
                    "qty": 3,
                    "end_date": "2024-03-05",
                }
            ],
            "firmed_planned_orders": [
                {
                    "planned_order_id": "",
                    "item_id": "A",
                    "warehouse_id": "W2",
                    "order_type": "purchase",
                    "qty": 3,
                    "order_date": "2024-03-05",
                    "due_date": "2024-03-05",
                }
            ],
        }
    )
    assert messages(result) == Counter(
        {
            # warehouse NULL; calendar ''; exception; group NULL; item NULL
            ("INVALID_ROW", None, None): 5,
            ("INVALID_ROW", None, ""): 1,  # warehouse ''
            ("INVALID_ROW", "", None): 1,  # item ''
            ("INVALID_ROW", "A", ""): 1,  # item_coverage (A, '')
            ("INVALID_ROW", None, "W1"): 1,  # item_coverage (NULL, W1)
            ("INVALID_ROW", "A", None): 1,  # boms '' (parent A, any warehouse)
            ("INVALID_ROW", "A", "W1"): 3,  # two sales lines, one production order
            ("INVALID_ROW", "A", "W2"): 2,  # sales line ('', NULL), firmed ''
        }
    )
    # only S1/1 is planned; the left-out rows are neither requirements nor receipts
    assert orders(result) == [("A/W1/1", 2.0, "2024-03-06", "2024-03-06")]
    assert demand_refs(result) == {"SO:S1/1"}
    assert skus_planned(result) == {("A", "W1")}


def test_invalid_row_counts_as_a_twin_but_a_blank_key_never_does() -> None:
    result = plan(
        {
            "warehouses": WAREHOUSES,
            "items": [
                {"item_id": "A"},
                {"item_id": "B", "default_order_type": "buy"},  # INVALID_ROW
                {"item_id": "B"},  # its twin: DUPLICATE_KEY
            ],
            "sales_lines": [
                sale("S1", 1, "A", "W1", 2),
                sale("S3", 1, "A", "W1", 4, date=None),  # INVALID_ROW
                sale("S3", 1, "A", "W1", 5),  # its twin: DUPLICATE_KEY
                sale(None, 1, "A", "W1", 6),  # blank keys: INVALID_ROW each, never twins
                sale(None, 1, "A", "W1", 6),
                sale("S4", 1, "B", "W1", 1),  # B was left out: UNKNOWN_ITEM
            ],
        }
    )
    assert messages(result) == Counter(
        {
            ("INVALID_ROW", "B", None): 1,
            ("DUPLICATE_KEY", "B", None): 1,
            ("INVALID_ROW", "A", "W1"): 3,
            ("DUPLICATE_KEY", "A", "W1"): 1,
            ("UNKNOWN_ITEM", "B", "W1"): 1,
        }
    )
    assert demand_refs(result) == {"SO:S1/1"}
    assert orders(result) == [("A/W1/1", 2.0, "2024-03-06", "2024-03-06")]


# ---------------------------------------------------------------------------- 1b names


def test_null_or_empty_item_warehouse_or_bom_column_is_invalid_row() -> None:
    firmed: Row = {
        "planned_order_id": "F1",
        "item_id": None,
        "warehouse_id": "W1",
        "order_type": "purchase",
        "qty": 1,
        "order_date": "2024-03-05",
        "due_date": "2024-03-06",
    }
    result = plan(
        {
            "warehouses": WAREHOUSES,
            "items": [
                {"item_id": "A"},
                {"item_id": "P", "default_order_type": "production"},
                {"item_id": "C"},
            ],
            "boms": [
                {"bom_id": "BP", "item_id": "P"},  # warehouse_id NULL: any (not concerned)
                {"bom_id": "BN", "item_id": None},  # INVALID_ROW; its lines go silently
            ],
            "bom_lines": [
                {"bom_id": "BP", "line_no": 1, "component_item_id": "C", "qty_per": 1},
                {"bom_id": "BP", "line_no": 2, "component_item_id": None, "qty_per": 1},
                {"bom_id": None, "line_no": 1, "component_item_id": "C", "qty_per": 1},
                {"bom_id": "BN", "line_no": 1, "component_item_id": "A", "qty_per": 1},
            ],
            "on_hand": [{"item_id": "", "warehouse_id": "W1", "qty": 5}],
            "sales_lines": [
                sale("S1", 1, "P", "W1", 2),
                sale("S2", 1, None, "W1", 3),
                sale("S3", 1, "A", "", 3),
            ],
            "purchase_lines": [
                {
                    "order_id": "PO1",
                    "line_no": 1,
                    "item_id": "A",
                    "warehouse_id": None,
                    "qty": 5,
                    "delivery_date": "2024-03-05",
                }
            ],
            "production_orders": [
                {
                    "order_id": "MO1",
                    "item_id": "P",
                    "warehouse_id": "",
                    "qty": 3,
                    "end_date": "2024-03-05",
                }
            ],
            "production_lines": [
                {
                    "order_id": "MO2",
                    "line_no": 1,
                    "component_item_id": "",
                    "warehouse_id": "W1",
                    "qty": 1,
                    "required_date": "2024-03-05",
                }
            ],
            "transfer_lines": [
                {
                    "order_id": "T1",
                    "line_no": 1,
                    "item_id": "A",
                    "from_warehouse_id": "W1",
                    "to_warehouse_id": None,
                    "qty": 1,
                    "ship_date": "2024-03-05",
                    "receive_date": "2024-03-06",
                },
                {
                    "order_id": "T2",
                    "line_no": 1,
                    "item_id": "A",
                    "from_warehouse_id": "",
                    "to_warehouse_id": "W2",
                    "qty": 1,
                    "ship_date": "2024-03-05",
                    "receive_date": "2024-03-06",
                },
            ],
            "forecasts": [
                {"item_id": "A", "warehouse_id": None, "forecast_date": "2024-03-07", "qty": 4}
            ],
            "firmed_planned_orders": [firmed],
        }
    )
    assert messages(result) == Counter(
        {
            ("INVALID_ROW", None, None): 2,  # boms BN (parent NULL); bom line BP/2
            ("INVALID_ROW", "C", None): 1,  # bom line of bom_id NULL
            ("INVALID_ROW", "", "W1"): 2,  # on_hand; production line
            ("INVALID_ROW", None, "W1"): 2,  # sales line S2; firmed F1
            ("INVALID_ROW", "A", ""): 2,  # sales line S3; transfer T2 (from '')
            ("INVALID_ROW", "A", None): 2,  # purchase line; forecast
            ("INVALID_ROW", "P", ""): 1,  # production order
            ("INVALID_ROW", "A", "W1"): 1,  # transfer T1 (to NULL)
        }
    )
    # only S1/1 of P is planned, through BP and its one good line
    assert orders(result) == [
        ("C/W1/1", 2.0, "2024-03-06", "2024-03-06"),
        ("P/W1/1", 2.0, "2024-03-06", "2024-03-06"),
    ]
    assert demand_refs(result) == {"SO:S1/1", "PL:P/W1/1/1"}
    assert skus_planned(result) == {("P", "W1"), ("C", "W1")}


def test_null_references_match_nothing() -> None:
    """A NULL refill warehouse, coverage group or calendar never resolves, even
    when a row with that NULL id was given (and left out as INVALID_ROW)."""
    result = plan(
        {
            "warehouses": [
                {"warehouse_id": "W1", "site_id": "S", "calendar_id": None},
                {"warehouse_id": None, "site_id": "S"},
            ],
            "calendars": [{"calendar_id": None, "working_weekdays": "0000001"}],
            "coverage_groups": [
                {"group_id": None, "coverage_code": "manual", "use_working_days": 1},
                {"group_id": "GW", "use_working_days": 1},
            ],
            "items": [
                {"item_id": "A", "coverage_group_id": None, "lead_time_days": 2},
                {"item_id": "B", "coverage_group_id": "GW", "lead_time_days": 2},
            ],
            "item_coverage": [
                {
                    "item_id": "A",
                    "warehouse_id": "W1",
                    "order_type": "transfer",
                    "refill_warehouse_id": None,
                }
            ],
            "sales_lines": [
                sale("S1", 1, "A", "W1", 2, date="2024-03-11"),
                sale("S2", 1, "B", "W1", 3, date="2024-03-11"),
            ],
        }
    )
    assert messages(result) == Counter(
        {
            ("INVALID_ROW", None, None): 3,  # the warehouse, calendar and group
            ("NO_REFILL_WAREHOUSE", "A", "W1"): 1,
        }
    )
    planned = {o["planned_order_id"]: o for o in result["planned_orders"]}
    # A: no group (not the NULL one, which is manual): requirement, purchase
    assert planned["A/W1/1"]["order_type"] == "purchase"
    assert planned["A/W1/1"]["from_warehouse_id"] is None
    # B: working days but no calendar (not the NULL one, Sundays only): calendar days
    assert (planned["B/W1/1"]["order_date"], planned["B/W1/1"]["due_date"]) == (
        "2024-03-09",
        "2024-03-11",
    )


# ---------------------------------------------------------------------------- 1c line_no


def test_line_no_must_be_a_whole_number_from_0_to_2_53_minus_1() -> None:
    bad = [1.5, -1, 1e19, 2**53, float("nan"), float("inf"), "1", True]
    sales = [sale(f"X{i}", ln, "A", "W1", 1) for i, ln in enumerate(bad)]
    sales += [
        sale("S", 0, "A", "W1", 1),
        sale("S", 2**53 - 1, "A", "W1", 1),
        sale("D", 2, "A", "W1", 1),  # 2 and 2.0 are one key: DUPLICATE_KEY
        sale("D", 2.0, "A", "W1", 1),
        sale("E", 3.0, "A", "W1", 1),  # a whole float is a line_no
    ]
    result = plan(
        {
            "warehouses": WAREHOUSES,
            "items": [{"item_id": "A"}, {"item_id": "P", "default_order_type": "production"}],
            "boms": [
                {"bom_id": "B1", "item_id": "P"},
                {"bom_id": "BX", "item_id": "P", "batch_qty": 0},  # INVALID_QTY
            ],
            "bom_lines": [
                {"bom_id": "B1", "line_no": 10, "component_item_id": "A", "qty_per": 1},
                {"bom_id": "B1", "line_no": 0.5, "component_item_id": "A", "qty_per": 1},
                # a line of a left-out BOM goes silently, whatever else is wrong with it
                {"bom_id": "BX", "line_no": 1.5, "component_item_id": "A", "qty_per": 1},
            ],
            "sales_lines": sales,
            "purchase_lines": [
                {
                    "order_id": "PO",
                    "line_no": -3,
                    "item_id": "A",
                    "warehouse_id": "W1",
                    "qty": 50,
                    "delivery_date": "2024-03-05",
                }
            ],
        }
    )
    assert messages(result) == Counter(
        {
            ("INVALID_ROW", "A", "W1"): len(bad) + 1,  # sales lines and the purchase line
            ("INVALID_ROW", "A", None): 1,  # bom line B1/0.5
            ("DUPLICATE_KEY", "A", "W1"): 2,
            ("INVALID_QTY", "P", None): 1,  # BOM BX
        }
    )
    assert demand_refs(result) == {"SO:S/0", "SO:S/9007199254740991", "SO:E/3"}
    assert "PO:PO/-3" not in supply_refs(result)


# ---------------------------------------------------------------------------- 1d dates


def test_null_date_the_plan_reads_is_invalid_row() -> None:
    def po(order: str, date: Any) -> Row:
        return {
            "order_id": order,
            "line_no": 1,
            "item_id": "A",
            "warehouse_id": "W1",
            "qty": 1,
            "delivery_date": date,
        }

    def transfer(order: str, ship: Any, receive: Any) -> Row:
        return {
            "order_id": order,
            "line_no": 1,
            "item_id": "A",
            "from_warehouse_id": "W1",
            "to_warehouse_id": "W2",
            "qty": 1,
            "ship_date": ship,
            "receive_date": receive,
        }

    def firmed(pid: str, order_date: Any, due_date: Any) -> Row:
        return {
            "planned_order_id": pid,
            "item_id": "A",
            "warehouse_id": "W1",
            "order_type": "purchase",
            "qty": 1,
            "order_date": order_date,
            "due_date": due_date,
        }

    day = "2024-03-05"
    result = plan(
        {
            "warehouses": [{"warehouse_id": "W1", "site_id": "S", "calendar_id": "C"}],
            "calendars": [{"calendar_id": "C", "working_weekdays": "1111100"}],
            "calendar_exceptions": [{"calendar_id": "C", "day": None, "is_working": 1}],
            "items": [{"item_id": "A"}],
            "sales_lines": [sale("S1", 1, "A", "W1", 9), sale("S2", 1, "A", "W1", 2, date=None)],
            "purchase_lines": [po("P1", None)],
            "production_orders": [
                {
                    "order_id": "M1",
                    "item_id": "A",
                    "warehouse_id": "W1",
                    "qty": 1,
                    "start_date": day,
                    "end_date": None,
                },
                {  # start_date is not read by the plan: NULL is fine
                    "order_id": "M2",
                    "item_id": "A",
                    "warehouse_id": "W1",
                    "qty": 4,
                    "start_date": None,
                    "end_date": day,
                },
            ],
            "production_lines": [
                {
                    "order_id": "M2",
                    "line_no": 1,
                    "component_item_id": "A",
                    "warehouse_id": "W1",
                    "qty": 1,
                    "required_date": None,
                }
            ],
            "transfer_lines": [transfer("T1", None, day), transfer("T2", day, None)],
            "forecasts": [{"item_id": "A", "warehouse_id": "W1", "forecast_date": None, "qty": 4}],
            "firmed_planned_orders": [firmed("F1", None, day), firmed("F2", day, None)],
        }
    )
    assert messages(result) == Counter(
        {
            ("INVALID_ROW", None, None): 1,  # the calendar exception
            ("INVALID_ROW", "A", "W1"): 9,
        }
    )
    # W2 is never named: both transfer lines were left out
    assert skus_planned(result) == {("A", "W1")}
    assert demand_refs(result) == {"SO:S1/1"}
    assert supply_refs(result) == {"PRD:M2", "PL:A/W1/1"}
    assert orders(result) == [("A/W1/1", 5.0, "2024-03-06", "2024-03-06")]


# ---------------------------------------------------------------------------- 1e codes


def test_code_outside_its_list_is_invalid_row() -> None:
    def firmed(pid: str, order_type: Any) -> Row:
        return {
            "planned_order_id": pid,
            "item_id": "A",
            "warehouse_id": "W1",
            "order_type": order_type,
            "qty": 1,
            "order_date": "2024-03-05",
            "due_date": "2024-03-05",
        }

    result = plan(
        {
            "warehouses": WAREHOUSES,
            "coverage_groups": [
                {"group_id": "G1", "coverage_code": "Period"},  # case-sensitive
                {"group_id": "G2", "safety_stock_fulfillment": "now"},
                {"group_id": "G3", "forecast_reduction": ""},
                {"group_id": "GM", "coverage_code": "manual"},
                # NULL codes take the §5.2 defaults
                {"group_id": "GN", "coverage_code": None, "forecast_reduction": None},
            ],
            "items": [
                {"item_id": "A", "coverage_group_id": "GN", "lead_time_days": 1},
                {"item_id": "B", "coverage_group_id": "G1"},  # unknown group now
                {"item_id": "X", "default_order_type": "make"},
                {"item_id": "Y", "default_order_type": None},  # NULL: purchase
            ],
            "item_coverage": [
                # order_type 'Manual' is no order type: the row is left out,
                # with its group GM (manual) and its lead time of 5
                {
                    "item_id": "A",
                    "warehouse_id": "W1",
                    "order_type": "Manual",
                    "coverage_group_id": "GM",
                    "lead_time_days": 5,
                }
            ],
            "sales_lines": [
                sale("S1", 1, "A", "W1", 2),
                sale("S2", 1, "B", "W1", 3),
                sale("S3", 1, "X", "W1", 4),
                sale("S4", 1, "Y", "W1", 5),
            ],
            "firmed_planned_orders": [
                firmed("F1", None),
                firmed("F2", "Purchase"),
                firmed("F3", 1),
                firmed("F4", "purchase"),
            ],
        }
    )
    assert messages(result) == Counter(
        {
            ("INVALID_ROW", None, None): 3,  # G1, G2, G3
            ("UNKNOWN_COVERAGE_GROUP", "B", None): 1,
            ("INVALID_ROW", "X", None): 1,
            ("UNKNOWN_ITEM", "X", "W1"): 1,
            ("INVALID_ROW", "A", "W1"): 4,  # item_coverage; firmed F1, F2, F3
        }
    )
    assert supply_refs(result) >= {"PL:F4"}
    assert not supply_refs(result) & {"PL:F1", "PL:F2", "PL:F3"}
    assert demand_refs(result) == {"SO:S1/1", "SO:S2/1", "SO:S4/1"}
    planned = {o["planned_order_id"]: o for o in result["planned_orders"]}
    # A: the item's group and lead time (1), not the left-out coverage row's
    assert (planned["A/W1/1"]["qty"], planned["A/W1/1"]["order_date"]) == (1.0, "2024-03-05")
    assert planned["B/W1/1"]["qty"] == 3.0  # B plans with no group: requirement
    assert planned["Y/W1/1"]["order_type"] == "purchase"
    assert not any(o["item_id"] == "X" for o in result["planned_orders"])


# ---------------------------------------------------------------------------- 1f weekdays


def test_bad_working_weekdays_is_invalid_row_and_its_calendar_unknown() -> None:
    bad_patterns: list[Any] = ["11111000", "0000000", None, "11111O0", "", 1111100]
    calendars: list[Row] = [{"calendar_id": "MF", "working_weekdays": "1111100"}]
    calendars += [
        {"calendar_id": f"X{i}", "working_weekdays": p} for i, p in enumerate(bad_patterns)
    ]
    result = plan(
        {
            "warehouses": [
                {"warehouse_id": "W1", "site_id": "S", "calendar_id": "X1"},
                {"warehouse_id": "W2", "site_id": "S", "calendar_id": "MF"},
            ],
            "calendars": calendars,
            # exceptions of a left-out calendar are ignored, with no message
            "calendar_exceptions": [{"calendar_id": "X1", "day": "2024-03-08", "is_working": 1}],
            "coverage_groups": [{"group_id": "GW", "use_working_days": 1}],
            "items": [{"item_id": "A", "coverage_group_id": "GW", "lead_time_days": 2}],
            "sales_lines": [
                sale("S1", 1, "A", "W1", 1, date="2024-03-11"),
                sale("S2", 1, "A", "W2", 1, date="2024-03-11"),
            ],
        }
    )
    assert messages(result) == Counter({("INVALID_ROW", None, None): len(bad_patterns)})
    planned = {o["planned_order_id"]: o["order_date"] for o in result["planned_orders"]}
    # W1 names a left-out calendar: no calendar, calendar days (Mon 03-11 - 2 = Sat 03-09)
    # W2 Monday to Friday: two working days before Mon 03-11 is Thu 03-07
    assert planned == {"A/W1/1": "2024-03-09", "A/W2/1": "2024-03-07"}


# ---------------------------------------------------------------------------- 2 NULL qty


def test_null_quantity_is_invalid_qty_but_null_on_hand_is_zero() -> None:
    result = plan(
        {
            "warehouses": WAREHOUSES,
            "items": [
                {"item_id": "A"},
                {"item_id": "P", "default_order_type": "production"},
                {"item_id": "C"},
                {"item_id": "T", "default_order_type": "transfer"},
            ],
            "boms": [{"bom_id": "BP", "item_id": "P"}],
            "bom_lines": [
                {"bom_id": "BP", "line_no": 1, "component_item_id": "C", "qty_per": None},
                {"bom_id": "BP", "line_no": 2, "component_item_id": "A", "qty_per": 1},
            ],
            # a NULL on_hand qty is 0: no message, but the row names T@W2
            "on_hand": [{"item_id": "T", "warehouse_id": "W2", "qty": None}],
            "sales_lines": [
                sale("S1", 1, "P", "W1", 2),
                sale("S2", 1, "A", "W1", None),
                sale("S3", 1, "NOITEM", "W1", None),  # UNKNOWN_ITEM comes first
            ],
            "purchase_lines": [
                {
                    "order_id": "PO",
                    "line_no": 1,
                    "item_id": "A",
                    "warehouse_id": "W1",
                    "qty": None,
                    "delivery_date": "2024-03-05",
                }
            ],
            "forecasts": [
                {"item_id": "A", "warehouse_id": "W1", "forecast_date": "2024-03-05", "qty": None}
            ],
            "firmed_planned_orders": [
                {
                    "planned_order_id": "F1",
                    "item_id": "A",
                    "warehouse_id": "W2",
                    "order_type": "purchase",
                    "qty": None,
                    "order_date": "2024-03-05",
                    "due_date": "2024-03-05",
                }
            ],
        }
    )
    assert messages(result) == Counter(
        {
            ("INVALID_QTY", "C", None): 1,  # bom line qty_per NULL
            ("INVALID_QTY", "A", "W1"): 3,  # sales, purchase, forecast
            ("INVALID_QTY", "A", "W2"): 1,  # firmed
            ("UNKNOWN_ITEM", "NOITEM", "W1"): 1,
            ("NO_REFILL_WAREHOUSE", "T", "W2"): 1,
        }
    )
    assert demand_refs(result) == {"SO:S1/1", "PL:P/W1/1/2"}
    assert ("C", "W1") not in skus_planned(result)
    assert ("A", "W2") not in skus_planned(result)


# ---------------------------------------------------------------------------- 3 tolerance


def test_quantities_within_1e_9_of_zero_are_zero_from_loading_on() -> None:
    result = plan(
        {
            "warehouses": WAREHOUSES,
            "items": [
                {"item_id": "A"},
                {"item_id": "P", "default_order_type": "production"},
                {"item_id": "C"},
                {"item_id": "D"},
                {"item_id": "T", "default_order_type": "transfer"},
            ],
            "boms": [{"bom_id": "BP", "item_id": "P"}],
            "bom_lines": [
                {"bom_id": "BP", "line_no": 1, "component_item_id": "C", "qty_per": 1e-12},
                {"bom_id": "BP", "line_no": 2, "component_item_id": "D", "qty_per": -1e-12},
            ],
            # three on-hand rows of 6e-10 are zero each: no on-hand receipt of 1.8e-9
            "on_hand": [{"item_id": "A", "warehouse_id": "W1", "qty": 6e-10}] * 3,
            "sales_lines": [
                sale("S1", 1, "A", "W1", 1),
                sale("S2", 1, "A", "W1", -1e-13),  # zero, not INVALID_QTY
                sale("S3", 1, "A", "W1", -2e-9),  # negative: INVALID_QTY
                sale("S4", 1, "P", "W1", 3),
            ],
            "purchase_lines": [
                {  # a zero receipt: silently nothing, no cancel
                    "order_id": "PO",
                    "line_no": 1,
                    "item_id": "A",
                    "warehouse_id": "W2",
                    "qty": 5.55e-17,
                    "delivery_date": "2024-03-05",
                }
            ],
            # forecasts of T are zero: they name no SKU (so no NO_REFILL_WAREHOUSE),
            # two lines of 6e-10 on one date included
            "forecasts": [
                {"item_id": "T", "warehouse_id": "W1", "forecast_date": "2024-03-07", "qty": 1e-12},
                {"item_id": "T", "warehouse_id": "W2", "forecast_date": "2024-03-07", "qty": 6e-10},
                {"item_id": "T", "warehouse_id": "W2", "forecast_date": "2024-03-07", "qty": 6e-10},
            ],
        }
    )
    assert messages(result) == Counter({("INVALID_QTY", "A", "W1"): 1})
    assert result["action_messages"] == []
    assert supply_refs(result) == {"PL:A/W1/1", "PL:P/W1/1"}
    assert demand_refs(result) == {"SO:S1/1", "SO:S4/1"}
    # the BOM lines of qty_per within 1e-9 of zero give no dependent demand
    assert orders(result) == [
        ("A/W1/1", 1.0, "2024-03-06", "2024-03-06"),
        ("P/W1/1", 3.0, "2024-03-06", "2024-03-06"),
    ]
    assert not any(item == "T" for item, _ in skus_planned(result))


# ---------------------------------------------------------------------------- 4 lead time


def test_negative_lead_time_counts_as_zero() -> None:
    result = plan(
        {
            "warehouses": [{"warehouse_id": "W1", "site_id": "S", "calendar_id": "MF"}],
            "calendars": [{"calendar_id": "MF", "working_weekdays": "1111100"}],
            "coverage_groups": [{"group_id": "GW", "use_working_days": 1}],
            "items": [
                {"item_id": "A", "lead_time_days": -5},
                {"item_id": "B", "lead_time_days": 4, "coverage_group_id": "GW"},
            ],
            # the coverage row's -3 is not NULL: it wins over the item's 4, and counts as 0
            "item_coverage": [{"item_id": "B", "warehouse_id": "W1", "lead_time_days": -3}],
            "sales_lines": [
                sale("S1", 1, "A", "W1", 1, date="2024-03-11"),
                sale("S2", 1, "B", "W1", 1, date="2024-03-09"),  # a Saturday
            ],
        }
    )
    assert messages(result) == Counter()
    assert orders(result) == [
        ("A/W1/1", 1.0, "2024-03-11", "2024-03-11"),
        ("B/W1/1", 1.0, "2024-03-09", "2024-03-09"),
    ]
