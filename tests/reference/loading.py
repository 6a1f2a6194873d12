"""SPEC §5.9 input checks (rows left out, with their plan messages) and
§5.2 settings resolution, written literally from the spec text.

Each input table is checked row by row. A row that is left out gets at most
one message, the first that applies in the order (§5.9):

1. INVALID_ROW: the row cannot name what it is — a NULL or empty key column or
   item/warehouse/BOM column (not marked `?`), a `line_no` that is not a whole
   number from 0 to 2^53 − 1, a NULL date the plan reads, a code outside its
   list, a bad `working_weekdays` pattern; or (the project's bound) a number of
   days beyond MAX_DAYS;
2. DUPLICATE_KEY (rows left out as INVALID_ROW still count as twins; rows with
   a NULL or empty key column share a key with nothing);
3. UNKNOWN_BOM, 4. UNKNOWN_ITEM, 5. UNKNOWN_WAREHOUSE;
6. INVALID_QTY: a NULL quantity (`qty`, `qty_per`; a NULL `on_hand.qty` is 0),
   a negative one (below −EPS), or one beyond MAX_QTY.

UNKNOWN_COVERAGE_GROUP and the "treated as none" warehouses (a refill
warehouse, a firmed transfer's from_warehouse_id) keep the row and add their
message. Quantities `qty` and `qty_per` within EPS of zero are exactly zero
from loading on (§5: quantities compare with an absolute tolerance of 1e-9).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .calendars import Calendar, to_day

Row = dict[str, Any]

# §4 input tables and their columns (columns not given are NULL).
INPUT_COLUMNS: dict[str, tuple[str, ...]] = {
    "warehouses": ("warehouse_id", "site_id", "calendar_id"),
    "calendars": ("calendar_id", "working_weekdays"),
    "calendar_exceptions": ("calendar_id", "day", "is_working"),
    "coverage_groups": (
        "group_id",
        "coverage_code",
        "coverage_period_days",
        "coverage_time_fence_days",
        "freeze_time_fence_days",
        "firming_time_fence_days",
        "negative_days",
        "positive_days",
        "use_working_days",
        "safety_stock_fulfillment",
        "forecast_reduction",
        "include_forecast",
        "postpone_tolerance_days",
    ),
    "items": (
        "item_id",
        "default_order_type",
        "coverage_group_id",
        "lead_time_days",
        "min_order_qty",
        "max_order_qty",
        "multiple_qty",
        "default_vendor_id",
    ),
    "item_coverage": (
        "item_id",
        "warehouse_id",
        "coverage_group_id",
        "min_qty",
        "max_qty",
        "safety_stock_qty",
        "order_type",
        "lead_time_days",
        "refill_warehouse_id",
        "vendor_id",
        "min_order_qty",
        "max_order_qty",
        "multiple_qty",
    ),
    "boms": ("bom_id", "item_id", "warehouse_id", "valid_from", "valid_to", "batch_qty"),
    "bom_lines": (
        "bom_id",
        "line_no",
        "component_item_id",
        "qty_per",
        "scrap_pct",
        "scrap_const",
        "warehouse_id",
    ),
    "on_hand": ("item_id", "warehouse_id", "qty"),
    "sales_lines": (
        "order_id",
        "line_no",
        "item_id",
        "warehouse_id",
        "qty",
        "requested_date",
        "priority",
    ),
    "purchase_lines": (
        "order_id",
        "line_no",
        "item_id",
        "warehouse_id",
        "qty",
        "delivery_date",
        "vendor_id",
    ),
    "production_orders": ("order_id", "item_id", "warehouse_id", "qty", "start_date", "end_date"),
    "production_lines": (
        "order_id",
        "line_no",
        "component_item_id",
        "warehouse_id",
        "qty",
        "required_date",
    ),
    "transfer_lines": (
        "order_id",
        "line_no",
        "item_id",
        "from_warehouse_id",
        "to_warehouse_id",
        "qty",
        "ship_date",
        "receive_date",
    ),
    "forecasts": ("item_id", "warehouse_id", "forecast_date", "qty"),
    "firmed_planned_orders": (
        "planned_order_id",
        "item_id",
        "warehouse_id",
        "order_type",
        "qty",
        "order_date",
        "due_date",
        "from_warehouse_id",
    ),
}


# Project bounds where the spec is silent (docs/planning-rules.md, §5.9):
# a quantity beyond ±MAX_QTY is an INVALID_QTY, a number of days beyond
# ±MAX_DAYS an INVALID_ROW.
MAX_QTY = 1e12
MAX_DAYS = 36_500

# Quantity columns held to MAX_QTY, checked where INVALID_QTY is.
BOUNDED_QTY: dict[str, tuple[str, ...]] = {
    "items": ("min_order_qty", "max_order_qty", "multiple_qty"),
    "item_coverage": (
        "min_qty",
        "max_qty",
        "safety_stock_qty",
        "min_order_qty",
        "max_order_qty",
        "multiple_qty",
    ),
    "boms": ("batch_qty",),
    "bom_lines": ("qty_per", "scrap_pct", "scrap_const"),
    "on_hand": ("qty",),
    "sales_lines": ("qty",),
    "purchase_lines": ("qty",),
    "production_orders": ("qty",),
    "production_lines": ("qty",),
    "transfer_lines": ("qty",),
    "forecasts": ("qty",),
    "firmed_planned_orders": ("qty",),
}

# Day columns held to MAX_DAYS, checked before everything else (INVALID_ROW).
BOUNDED_DAYS: dict[str, tuple[str, ...]] = {
    "coverage_groups": (
        "coverage_period_days",
        "coverage_time_fence_days",
        "freeze_time_fence_days",
        "firming_time_fence_days",
        "negative_days",
        "positive_days",
        "postpone_tolerance_days",
    ),
    "items": ("lead_time_days",),
    "item_coverage": ("lead_time_days",),
}


def beyond(table: str, row: Row, bounds: dict[str, tuple[str, ...]], bound: float) -> str | None:
    """The first bounded column of ``row`` whose value is past ``bound``
    (NULL never is), or None."""
    for col in bounds.get(table, ()):
        v = row.get(col)
        if v is not None and not abs(float(v)) <= bound:
            return col
    return None


# §5: quantities compare with an absolute tolerance of 1e-9. A quantity at or
# below EPS in magnitude counts as zero.
EPS = 1e-9

COVERAGE_CODES = ("requirement", "period", "min_max", "manual")
ORDER_TYPES = ("purchase", "production", "transfer")
SAFETY_STOCK_FULFILLMENTS = ("today", "lead_time")
FORECAST_REDUCTIONS = ("none", "transactions_period")

# §4 keys: the primary keys and the listed keys. A NULL or empty value in one
# of them is INVALID_ROW (§5.9). on_hand and forecasts have no key.
KEY_COLUMNS: dict[str, tuple[str, ...]] = {
    "warehouses": ("warehouse_id",),
    "calendars": ("calendar_id",),
    "calendar_exceptions": ("calendar_id", "day"),
    "coverage_groups": ("group_id",),
    "items": ("item_id",),
    "item_coverage": ("item_id", "warehouse_id"),
    "boms": ("bom_id",),
    "bom_lines": ("bom_id", "line_no"),
    "sales_lines": ("order_id", "line_no"),
    "purchase_lines": ("order_id", "line_no"),
    "production_orders": ("order_id",),
    "production_lines": ("order_id", "line_no"),
    "transfer_lines": ("order_id", "line_no"),
    "firmed_planned_orders": ("planned_order_id",),
}

# Columns that name an item, a warehouse or a BOM and are not marked `?` in §4
# (besides the keys above): NULL or empty is INVALID_ROW (§5.9). The nullable
# ones (boms.warehouse_id, bom_lines.warehouse_id, refill_warehouse_id,
# firmed from_warehouse_id, warehouses.calendar_id, coverage_group_id) are not
# here: NULL there has a meaning.
NAME_COLUMNS: dict[str, tuple[str, ...]] = {
    "boms": ("item_id",),
    "bom_lines": ("bom_id", "component_item_id"),
    "on_hand": ("item_id", "warehouse_id"),
    "sales_lines": ("item_id", "warehouse_id"),
    "purchase_lines": ("item_id", "warehouse_id"),
    "production_orders": ("item_id", "warehouse_id"),
    "production_lines": ("component_item_id", "warehouse_id"),
    "transfer_lines": ("item_id", "from_warehouse_id", "to_warehouse_id"),
    "forecasts": ("item_id", "warehouse_id"),
    "firmed_planned_orders": ("item_id", "warehouse_id"),
}

# Dates not marked `?` that the plan reads: NULL is INVALID_ROW (§5.9).
# production_orders.start_date is not read by the plan, so not here.
DATE_COLUMNS: dict[str, tuple[str, ...]] = {
    "calendar_exceptions": ("day",),
    "sales_lines": ("requested_date",),
    "purchase_lines": ("delivery_date",),
    "production_orders": ("end_date",),
    "production_lines": ("required_date",),
    "transfer_lines": ("ship_date", "receive_date"),
    "forecasts": ("forecast_date",),
    "firmed_planned_orders": ("order_date", "due_date"),
}

# Codes and their lists (exact, case-sensitive strings). A value outside the
# list is INVALID_ROW; NULL takes the §5.2 default, except where listed in
# NULL_CODE_IS_INVALID (§5.9).
CODE_COLUMNS: dict[str, dict[str, tuple[str, ...]]] = {
    "coverage_groups": {
        "coverage_code": COVERAGE_CODES,
        "safety_stock_fulfillment": SAFETY_STOCK_FULFILLMENTS,
        "forecast_reduction": FORECAST_REDUCTIONS,
    },
    "items": {"default_order_type": ORDER_TYPES},
    "item_coverage": {"order_type": ORDER_TYPES},
    "firmed_planned_orders": {"order_type": ORDER_TYPES},
}
NULL_CODE_IS_INVALID: frozenset[tuple[str, str]] = frozenset(
    {("firmed_planned_orders", "order_type")}
)

# §5.9: a line_no must be a whole number from 0 to 2^53 - 1.
MAX_LINE_NO = 2**53 - 1

# The quantity column of each table whose NULL is INVALID_QTY and whose values
# within EPS of zero are zero (§5.9, §5). on_hand.qty is zero-snapped too, but
# NULL there is 0.
QTY_COLUMN: dict[str, str] = {
    "bom_lines": "qty_per",
    "on_hand": "qty",
    "sales_lines": "qty",
    "purchase_lines": "qty",
    "production_orders": "qty",
    "production_lines": "qty",
    "transfer_lines": "qty",
    "forecasts": "qty",
    "firmed_planned_orders": "qty",
}

# (item column, warehouse column) that every message about a row of a table
# names (NOTES.md 3); None = the message names none.
MESSAGE_COLUMNS: dict[str, tuple[str | None, str | None]] = {
    "warehouses": (None, "warehouse_id"),
    "calendars": (None, None),
    "calendar_exceptions": (None, None),
    "coverage_groups": (None, None),
    "items": ("item_id", None),
    "item_coverage": ("item_id", "warehouse_id"),
    "boms": ("item_id", "warehouse_id"),
    "bom_lines": ("component_item_id", "warehouse_id"),
    "on_hand": ("item_id", "warehouse_id"),
    "sales_lines": ("item_id", "warehouse_id"),
    "purchase_lines": ("item_id", "warehouse_id"),
    "production_orders": ("item_id", "warehouse_id"),
    "production_lines": ("component_item_id", "warehouse_id"),
    "transfer_lines": ("item_id", "from_warehouse_id"),
    "forecasts": ("item_id", "warehouse_id"),
    "firmed_planned_orders": ("item_id", "warehouse_id"),
}


def is_blank(value: Any) -> bool:
    """NULL or the empty string `''` (§5.9 INVALID_ROW)."""
    return value is None or (isinstance(value, str) and value == "")


def is_line_no(value: Any) -> bool:
    """§5.9: a whole number from 0 to 2^53 - 1 (1 and 1.0 alike; not a bool,
    not a string, not NaN or infinite)."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return False
    if isinstance(value, float) and not math.isfinite(value):
        return False
    if isinstance(value, Decimal) and not value.is_finite():
        return False
    return value == int(value) and 0 <= value <= MAX_LINE_NO


def is_weekday_pattern(value: Any) -> bool:
    """§5.9: seven characters, each `0` or `1`, at least one `1` (NULL is not)."""
    return (
        isinstance(value, str)
        and len(value) == 7
        and all(ch in ("0", "1") for ch in value)
        and "1" in value
    )


def invalid_row(table: str, row: Row) -> str | None:
    """Why ``row`` is an INVALID_ROW (§5.9 and the project's day bound), or None.
    The checks of one row, in a fixed order; only the first reason is told."""
    for col in KEY_COLUMNS.get(table, ()):
        if is_blank(row[col]):
            return f"key column {col} is NULL or empty"
    for col in NAME_COLUMNS.get(table, ()):
        if is_blank(row[col]):
            return f"{col} is NULL or empty"
    if "line_no" in INPUT_COLUMNS[table] and not is_line_no(row["line_no"]):
        return f"line_no {row['line_no']!r} is not a whole number from 0 to 2^53 - 1"
    for col in DATE_COLUMNS.get(table, ()):
        if row[col] is None:
            return f"{col} is NULL"
    for col, allowed in CODE_COLUMNS.get(table, {}).items():
        v = row[col]
        if v is None:
            if (table, col) in NULL_CODE_IS_INVALID:
                return f"{col} is NULL"
            continue  # NULL takes the §5.2 default
        if not (isinstance(v, str) and v in allowed):
            return f"{col} {v!r} is not one of {', '.join(allowed)}"
    if table == "calendars" and not is_weekday_pattern(row["working_weekdays"]):
        return (
            f"working_weekdays {row['working_weekdays']!r} is not seven 0/1 characters "
            "with at least one 1"
        )
    past = beyond(table, row, BOUNDED_DAYS, MAX_DAYS)
    if past is not None:
        return f"{past} is beyond ±{MAX_DAYS} days"
    return None


def message_names(table: str, row: Row) -> tuple[Any, Any]:
    """The (item_id, warehouse_id) of a message about a row of ``table``."""
    item_col, wh_col = MESSAGE_COLUMNS[table]
    return (
        None if item_col is None else row[item_col],
        None if wh_col is None else row[wh_col],
    )


def snap_qty(value: Any) -> float:
    """A quantity within EPS of zero is exactly zero (§5)."""
    q = float(value)
    return 0.0 if abs(q) <= EPS else q


@dataclass
class PlanMessage:
    severity: str
    code: str
    item_id: Any
    warehouse_id: Any
    text: str

    def as_row(self) -> Row:
        return {
            "severity": self.severity,
            "code": self.code,
            "item_id": self.item_id,
            "warehouse_id": self.warehouse_id,
            "text": self.text,
        }


def fmt_value(value: Any) -> str:
    """§4: numbers print as integers (`/1`, not `/1.0`), dates as ISO."""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def num(value: Any, default: float = 0.0) -> float:
    """A quantity; NULL takes its default (§4, §5.2)."""
    return default if value is None else float(value)


def days(value: Any, default: int = 0) -> int:
    """A whole number of days; NULL takes its default (§5.2)."""
    return default if value is None else int(value)


@dataclass
class Loaded:
    """The rows that passed §5.9, indexed for planning."""

    messages: list[PlanMessage] = field(default_factory=list)
    warehouses: dict[Any, Row] = field(default_factory=dict)
    calendars: dict[Any, Calendar] = field(default_factory=dict)
    groups: dict[Any, Row] = field(default_factory=dict)
    items: dict[Any, Row] = field(default_factory=dict)
    boms: dict[Any, Row] = field(default_factory=dict)
    bom_lines: dict[Any, list[Row]] = field(default_factory=dict)  # bom_id -> lines
    item_coverage: dict[tuple[Any, Any], Row] = field(default_factory=dict)
    on_hand: list[Row] = field(default_factory=list)
    sales_lines: list[Row] = field(default_factory=list)
    purchase_lines: list[Row] = field(default_factory=list)
    production_orders: list[Row] = field(default_factory=list)
    production_lines: list[Row] = field(default_factory=list)
    transfer_lines: list[Row] = field(default_factory=list)
    forecasts: list[Row] = field(default_factory=list)
    firmed: list[Row] = field(default_factory=list)


def _table(inp: dict[str, list[Row]], name: str) -> list[Row]:
    """The rows of one input table, every §4 column present (missing = NULL)."""
    cols = INPUT_COLUMNS[name]
    out: list[Row] = []
    for raw in inp.get(name) or []:
        row = {c: raw.get(c) for c in cols}
        for k, v in raw.items():  # keep any extra column as given
            row.setdefault(k, v)
        out.append(row)
    return out


def _describe(table: str, row: Row, key: tuple[str, ...] | None) -> str:
    if key:
        inside = ", ".join(f"{c}={fmt_value(row[c])}" for c in key)
    else:
        inside = ", ".join(
            f"{c}={fmt_value(row[c])}" for c in ("item_id", "warehouse_id") if c in row
        )
    return f"{table} ({inside})"


def _duplicated(rows: list[Row], key: tuple[str, ...] | None) -> set[tuple[Any, ...]]:
    """Keys held by more than one row (§4 keys; §5.9 DUPLICATE_KEY).

    Every row counts, INVALID_ROW ones included, except a row with a NULL or
    empty key column: such a row shares its key with nothing."""
    if not key:
        return set()
    counts = Counter(tuple(r[c] for c in key) for r in rows if not any(is_blank(r[c]) for c in key))
    return {k for k, n in counts.items() if n > 1}


def load(inp: dict[str, list[Row]]) -> Loaded:
    out = Loaded()
    msgs = out.messages

    def warn(code: str, item: Any, wh: Any, text: str) -> None:
        msgs.append(PlanMessage("warning", code, item, wh, text))

    def left_out_first(table: str, r: Row, dups: set[tuple[Any, ...]]) -> bool:
        """The first two checks of §5.9, the same for every table: INVALID_ROW,
        then DUPLICATE_KEY. True when the row is left out (its message given)."""
        key = KEY_COLUMNS.get(table)
        item, wh = message_names(table, r)
        where = _describe(table, r, key)
        reason = invalid_row(table, r)
        if reason is not None:
            warn("INVALID_ROW", item, wh, f"{where}: {reason}; the row is left out")
            return True
        if key and tuple(r[c] for c in key) in dups:
            warn(
                "DUPLICATE_KEY",
                item,
                wh,
                f"{where}: ({', '.join(key)}) held by several rows; all of them are left out",
            )
            return True
        return False

    # ------------------------------------------------------------------ warehouses
    rows = _table(inp, "warehouses")
    dups = _duplicated(rows, KEY_COLUMNS["warehouses"])
    for r in rows:
        if left_out_first("warehouses", r, dups):
            continue
        out.warehouses[r["warehouse_id"]] = r

    # ------------------------------------------------------------------ calendars
    rows = _table(inp, "calendars")
    dups = _duplicated(rows, KEY_COLUMNS["calendars"])
    for r in rows:
        # A calendar left out is unknown: a warehouse naming it has no calendar
        # (calendar days), with no message; its exceptions are ignored.
        if left_out_first("calendars", r, dups):
            continue
        out.calendars[r["calendar_id"]] = Calendar(r["calendar_id"], str(r["working_weekdays"]))

    rows = _table(inp, "calendar_exceptions")
    dups = _duplicated(rows, KEY_COLUMNS["calendar_exceptions"])
    for r in rows:
        if left_out_first("calendar_exceptions", r, dups):
            continue
        cal = out.calendars.get(r["calendar_id"])
        day = to_day(r["day"])
        if cal is not None and day is not None:
            cal.exceptions[day] = bool(r["is_working"])  # NULL is_working = 0

    # ------------------------------------------------------------------ coverage groups
    rows = _table(inp, "coverage_groups")
    dups = _duplicated(rows, KEY_COLUMNS["coverage_groups"])
    for r in rows:
        if left_out_first("coverage_groups", r, dups):
            continue
        out.groups[r["group_id"]] = r

    # ------------------------------------------------------------------ items
    rows = _table(inp, "items")
    key: tuple[str, ...] = KEY_COLUMNS["items"]
    dups = _duplicated(rows, key)
    for r in rows:
        if left_out_first("items", r, dups):
            continue
        col = beyond("items", r, BOUNDED_QTY, MAX_QTY)
        if col is not None:
            where = _describe("items", r, key)
            warn("INVALID_QTY", r["item_id"], None, f"{where}: {col} is beyond ±{MAX_QTY:g}")
            continue
        r = dict(r)
        if r["coverage_group_id"] is not None and r["coverage_group_id"] not in out.groups:
            # §5.9 UNKNOWN_COVERAGE_GROUP: the row stays, the group is treated as NULL.
            warn(
                "UNKNOWN_COVERAGE_GROUP",
                r["item_id"],
                None,
                f"{_describe('items', r, key)}: coverage_group_id "
                f"{r['coverage_group_id']!r} is not in coverage_groups; treated as NULL",
            )
            r["coverage_group_id"] = None
        out.items[r["item_id"]] = r

    # Rows left out are gone: a NULL or left-out id matches nothing.
    def item_ok(item: Any) -> bool:
        return item is not None and item in out.items

    def wh_ok(wh: Any) -> bool:
        return wh is not None and wh in out.warehouses

    # ------------------------------------------------------------------ boms
    rows = _table(inp, "boms")
    # every bom_id that some boms row holds (NULL and empty ids match nothing)
    all_bom_ids = {r["bom_id"] for r in rows if not is_blank(r["bom_id"])}
    key = KEY_COLUMNS["boms"]
    dups = _duplicated(rows, key)
    for r in rows:
        where = _describe("boms", r, key)
        item, wh = r["item_id"], r["warehouse_id"]
        if left_out_first("boms", r, dups):
            continue
        if not item_ok(item):
            warn("UNKNOWN_ITEM", item, wh, f"{where}: parent item_id {item!r} is not in items")
            continue
        if wh is not None and not wh_ok(wh):  # NULL = any warehouse
            warn(
                "UNKNOWN_WAREHOUSE", item, wh, f"{where}: warehouse_id {wh!r} is not in warehouses"
            )
            continue
        if num(r["batch_qty"], 1.0) <= 0:
            warn(
                "INVALID_QTY",
                item,
                wh,
                f"{where}: batch_qty {fmt_value(r['batch_qty'])} is not above zero; the BOM "
                "and its lines are left out",
            )
            continue
        col = beyond("boms", r, BOUNDED_QTY, MAX_QTY)
        if col is not None:
            warn("INVALID_QTY", item, wh, f"{where}: {col} is beyond ±{MAX_QTY:g}")
            continue
        out.boms[r["bom_id"]] = r

    # ------------------------------------------------------------------ bom lines
    rows = _table(inp, "bom_lines")
    key = KEY_COLUMNS["bom_lines"]
    dups = _duplicated(rows, key)
    for r in rows:
        where = _describe("bom_lines", r, key)
        item, wh = r["component_item_id"], r["warehouse_id"]
        if r["bom_id"] in all_bom_ids and r["bom_id"] not in out.boms:
            # §5.9: lines of a BOM that was left out go silently, before any
            # check of the line itself (NOTES.md 6)
            continue
        if left_out_first("bom_lines", r, dups):
            continue
        if r["bom_id"] not in all_bom_ids:
            warn("UNKNOWN_BOM", item, wh, f"{where}: bom_id {r['bom_id']!r} is not in boms")
            continue
        if not item_ok(item):
            warn("UNKNOWN_ITEM", item, wh, f"{where}: component_item_id {item!r} is not in items")
            continue
        if wh is not None and not wh_ok(wh):  # NULL = the parent's warehouse
            warn(
                "UNKNOWN_WAREHOUSE", item, wh, f"{where}: warehouse_id {wh!r} is not in warehouses"
            )
            continue
        if r["qty_per"] is None:
            warn("INVALID_QTY", item, wh, f"{where}: qty_per is NULL")
            continue
        r = {**r, "qty_per": snap_qty(r["qty_per"])}
        if r["qty_per"] < 0:
            warn("INVALID_QTY", item, wh, f"{where}: qty_per {fmt_value(r['qty_per'])} is negative")
            continue
        col = beyond("bom_lines", r, BOUNDED_QTY, MAX_QTY)
        if col is not None:
            warn("INVALID_QTY", item, wh, f"{where}: {col} is beyond ±{MAX_QTY:g}")
            continue
        out.bom_lines.setdefault(r["bom_id"], []).append(r)

    # ------------------------------------------------------------------ item coverage
    rows = _table(inp, "item_coverage")
    key = KEY_COLUMNS["item_coverage"]
    dups = _duplicated(rows, key)
    for r in rows:
        where = _describe("item_coverage", r, key)
        item, wh = r["item_id"], r["warehouse_id"]
        if left_out_first("item_coverage", r, dups):
            continue
        if not item_ok(item):
            warn("UNKNOWN_ITEM", item, wh, f"{where}: item_id {item!r} is not in items")
            continue
        if not wh_ok(wh):
            warn(
                "UNKNOWN_WAREHOUSE", item, wh, f"{where}: warehouse_id {wh!r} is not in warehouses"
            )
            continue
        col = beyond("item_coverage", r, BOUNDED_QTY, MAX_QTY)
        if col is not None:
            warn("INVALID_QTY", item, wh, f"{where}: {col} is beyond ±{MAX_QTY:g}")
            continue
        r = dict(r)
        if r["coverage_group_id"] is not None and r["coverage_group_id"] not in out.groups:
            warn(
                "UNKNOWN_COVERAGE_GROUP",
                item,
                wh,
                f"{where}: coverage_group_id {r['coverage_group_id']!r} is not in "
                "coverage_groups; treated as NULL",
            )
            r["coverage_group_id"] = None
        refill = r["refill_warehouse_id"]
        if refill is not None and not wh_ok(refill):
            # §5.9: a refill warehouse not in warehouses: the row stays and the
            # refill warehouse is treated as none.
            warn(
                "UNKNOWN_WAREHOUSE",
                item,
                refill,
                f"{where}: refill_warehouse_id {refill!r} is not in warehouses; treated as none",
            )
            r["refill_warehouse_id"] = None
        out.item_coverage[(item, wh)] = r

    # ------------------------------------------------------------------ transactions
    def check_tx(
        table: str,
        item_col: str,
        wh_cols: tuple[str, ...],
        negative_is_invalid: bool,
    ) -> list[Row]:
        """Generic §5.9 checks of one transaction table; returns the kept rows,
        their quantity a float, exactly 0 within EPS of zero.

        The message's warehouse_id is the first of `wh_cols` (for
        UNKNOWN_WAREHOUSE: the warehouse that is unknown)."""
        key = KEY_COLUMNS.get(table)
        rows = _table(inp, table)
        dups = _duplicated(rows, key)
        kept: list[Row] = []
        for r in rows:
            where = _describe(table, r, key)
            item = r[item_col]
            wh = r[wh_cols[0]]
            if left_out_first(table, r, dups):
                continue
            if not item_ok(item):
                warn("UNKNOWN_ITEM", item, wh, f"{where}: {item_col} {item!r} is not in items")
                continue
            bad = [c for c in wh_cols if not wh_ok(r[c])]
            if bad:
                warn(
                    "UNKNOWN_WAREHOUSE",
                    item,
                    r[bad[0]],
                    f"{where}: {bad[0]} {r[bad[0]]!r} is not in warehouses",
                )
                continue
            if r["qty"] is None:
                if negative_is_invalid:  # every table but on_hand
                    warn("INVALID_QTY", item, wh, f"{where}: qty is NULL")
                    continue
                r = {**r, "qty": 0.0}  # a NULL on_hand quantity is 0
            r = {**r, "qty": snap_qty(r["qty"])}
            if negative_is_invalid and r["qty"] < 0:
                warn("INVALID_QTY", item, wh, f"{where}: qty {fmt_value(r['qty'])} is negative")
                continue
            col = beyond(table, r, BOUNDED_QTY, MAX_QTY)
            if col is not None:
                warn("INVALID_QTY", item, wh, f"{where}: {col} is beyond ±{MAX_QTY:g}")
                continue
            kept.append(r)
        return kept

    out.on_hand = check_tx("on_hand", "item_id", ("warehouse_id",), False)
    out.sales_lines = check_tx("sales_lines", "item_id", ("warehouse_id",), True)
    out.purchase_lines = check_tx("purchase_lines", "item_id", ("warehouse_id",), True)
    out.production_orders = check_tx("production_orders", "item_id", ("warehouse_id",), True)
    out.production_lines = check_tx(
        "production_lines", "component_item_id", ("warehouse_id",), True
    )
    out.transfer_lines = check_tx(
        "transfer_lines", "item_id", ("from_warehouse_id", "to_warehouse_id"), True
    )
    out.forecasts = check_tx("forecasts", "item_id", ("warehouse_id",), True)
    firmed = check_tx("firmed_planned_orders", "item_id", ("warehouse_id",), True)
    for r in firmed:
        r = dict(r)
        src = r["from_warehouse_id"]
        if src is not None and not wh_ok(src):
            # §5.9: a firmed transfer's from_warehouse_id not in warehouses: the
            # row stays and that warehouse is treated as none.
            warn(
                "UNKNOWN_WAREHOUSE",
                r["item_id"],
                src,
                f"{_describe('firmed_planned_orders', r, ('planned_order_id',))}: "
                f"from_warehouse_id {src!r} is not in warehouses; treated as none",
            )
            r["from_warehouse_id"] = None
        out.firmed.append(r)
    return out


# ---------------------------------------------------------------------------- §5.2 settings


@dataclass
class Settings:
    """The settings of one SKU (§5.2), defaults applied."""

    group_id: Any
    coverage_code: str
    coverage_period_days: int
    coverage_time_fence_days: int
    freeze_time_fence_days: int
    firming_time_fence_days: int
    negative_days: int
    positive_days: int | None  # None = unlimited
    use_working_days: bool
    safety_stock_fulfillment: str  # 'today' | 'lead_time'
    forecast_reduction: str  # 'none' | 'transactions_period'
    include_forecast: bool
    postpone_tolerance_days: int
    order_type: str  # as configured ('transfer' may fall back to purchase, §5.6)
    lead_time_days: int
    min_order_qty: float
    max_order_qty: float  # 0 = none
    multiple_qty: float  # 0 = none
    vendor_id: Any
    min_qty: float
    max_qty: float
    safety_stock_qty: float
    refill_warehouse_id: Any  # already None when not in warehouses
    calendar: Calendar | None


def resolve_settings(
    data: Loaded, item_id: Any, warehouse_id: Any, default_group: str | None
) -> Settings:
    item = data.items[item_id]
    ic = data.item_coverage.get((item_id, warehouse_id)) or {}

    # §5.2: the coverage group is item_coverage.coverage_group_id, else
    # items.coverage_group_id, else the run's default group, else none.
    group_id = ic.get("coverage_group_id")
    if group_id is None:
        group_id = item.get("coverage_group_id")
    if group_id is None and default_group is not None and default_group in data.groups:
        group_id = default_group
    group: Row = data.groups.get(group_id, {}) if group_id is not None else {}

    def g(col: str) -> Any:
        return group.get(col)

    def ic_or_item(ic_col: str, item_col: str) -> Any:
        v = ic.get(ic_col)
        return v if v is not None else item.get(item_col)

    def or_default(value: Any, default: str) -> str:
        # §5.2: a NULL code takes its default. A code outside its list never
        # gets here: its row was left out as INVALID_ROW (§5.9).
        return default if value is None else str(value)

    code = or_default(g("coverage_code"), "requirement")
    order_type = or_default(ic_or_item("order_type", "default_order_type"), "purchase")

    # a warehouse's calendar_id that is NULL, or names no calendar that passed
    # §5.9, gives no calendar (every day works), with no message
    wh_row = data.warehouses.get(warehouse_id) or {}
    cal_id = wh_row.get("calendar_id")
    calendar = None if cal_id is None else data.calendars.get(cal_id)

    return Settings(
        group_id=group_id,
        coverage_code=code,
        coverage_period_days=days(g("coverage_period_days"), 1),
        coverage_time_fence_days=days(g("coverage_time_fence_days"), 100),
        freeze_time_fence_days=days(g("freeze_time_fence_days"), 0),
        firming_time_fence_days=days(g("firming_time_fence_days"), 0),
        negative_days=days(g("negative_days"), 0),
        positive_days=None if g("positive_days") is None else int(g("positive_days")),
        use_working_days=bool(days(g("use_working_days"), 0)),
        safety_stock_fulfillment=or_default(g("safety_stock_fulfillment"), "lead_time"),
        forecast_reduction=or_default(g("forecast_reduction"), "none"),
        include_forecast=bool(days(g("include_forecast"), 1)),
        postpone_tolerance_days=days(g("postpone_tolerance_days"), 0),
        order_type=order_type,
        # §5.2: a negative lead time counts as 0 (the resolved value: a negative
        # item_coverage lead time is not NULL, so it wins over the item's, then
        # counts as 0)
        lead_time_days=max(days(ic_or_item("lead_time_days", "lead_time_days"), 0), 0),
        min_order_qty=num(ic_or_item("min_order_qty", "min_order_qty")),
        max_order_qty=num(ic_or_item("max_order_qty", "max_order_qty")),
        multiple_qty=num(ic_or_item("multiple_qty", "multiple_qty")),
        vendor_id=ic_or_item("vendor_id", "default_vendor_id"),
        min_qty=num(ic.get("min_qty")),
        max_qty=num(ic.get("max_qty")),
        safety_stock_qty=num(ic.get("safety_stock_qty")),
        refill_warehouse_id=ic.get("refill_warehouse_id"),
        calendar=calendar,
    )
