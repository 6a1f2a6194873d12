"""SPEC §5.9 input checks (rows left out, with their plan messages) and
§5.2 settings resolution, written literally from the spec text.

Each input table is checked row by row. A row that is left out gets at most
one message, the first that applies in the order INVALID_ROW (a number of days
beyond MAX_DAYS), DUPLICATE_KEY, UNKNOWN_BOM, UNKNOWN_ITEM, UNKNOWN_WAREHOUSE,
INVALID_QTY (a negative quantity, or one beyond MAX_QTY) (§5.9). UNKNOWN_COVERAGE_GROUP and
the "treated as none" warehouses (a refill warehouse, a firmed transfer's
from_warehouse_id) keep the row and add their message.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
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
    """Keys held by more than one row (§4 keys; §5.9 DUPLICATE_KEY)."""
    if not key:
        return set()
    counts = Counter(tuple(r[c] for c in key) for r in rows)
    return {k for k, n in counts.items() if n > 1}


def load(inp: dict[str, list[Row]]) -> Loaded:
    out = Loaded()
    msgs = out.messages

    def warn(code: str, item: Any, wh: Any, text: str) -> None:
        msgs.append(PlanMessage("warning", code, item, wh, text))

    # ------------------------------------------------------------------ warehouses
    rows = _table(inp, "warehouses")
    key: tuple[str, ...] = ("warehouse_id",)
    dups = _duplicated(rows, key)
    for r in rows:
        if (r["warehouse_id"],) in dups:
            warn(
                "DUPLICATE_KEY",
                None,
                r["warehouse_id"],
                f"{_describe('warehouses', r, key)}: warehouse_id held by several rows; "
                "all of them are left out",
            )
            continue
        out.warehouses[r["warehouse_id"]] = r

    # ------------------------------------------------------------------ calendars
    rows = _table(inp, "calendars")
    key = ("calendar_id",)
    dups = _duplicated(rows, key)
    for r in rows:
        if (r["calendar_id"],) in dups:
            warn(
                "DUPLICATE_KEY",
                None,
                None,
                f"{_describe('calendars', r, key)}: calendar_id held by several rows; "
                "all of them are left out",
            )
            continue
        wd = r["working_weekdays"]
        out.calendars[r["calendar_id"]] = Calendar(
            r["calendar_id"], None if wd is None else str(wd)
        )

    rows = _table(inp, "calendar_exceptions")
    key = ("calendar_id", "day")
    dups = _duplicated(rows, key)
    for r in rows:
        if (r["calendar_id"], r["day"]) in dups:
            warn(
                "DUPLICATE_KEY",
                None,
                None,
                f"{_describe('calendar_exceptions', r, key)}: (calendar_id, day) held by "
                "several rows; all of them are left out",
            )
            continue
        cal = out.calendars.get(r["calendar_id"])
        day = to_day(r["day"])
        if cal is not None and day is not None:
            cal.exceptions[day] = bool(r["is_working"])

    # ------------------------------------------------------------------ coverage groups
    rows = _table(inp, "coverage_groups")
    key = ("group_id",)
    dups = _duplicated(rows, key)
    for r in rows:
        col = beyond("coverage_groups", r, BOUNDED_DAYS, MAX_DAYS)
        if col is not None:
            warn(
                "INVALID_ROW",
                None,
                None,
                f"{_describe('coverage_groups', r, key)}: {col} is beyond ±{MAX_DAYS} days",
            )
            continue
        if (r["group_id"],) in dups:
            warn(
                "DUPLICATE_KEY",
                None,
                None,
                f"{_describe('coverage_groups', r, key)}: group_id held by several rows; "
                "all of them are left out",
            )
            continue
        out.groups[r["group_id"]] = r

    # ------------------------------------------------------------------ items
    rows = _table(inp, "items")
    key = ("item_id",)
    dups = _duplicated(rows, key)
    for r in rows:
        col = beyond("items", r, BOUNDED_DAYS, MAX_DAYS)
        if col is not None:
            warn(
                "INVALID_ROW",
                r["item_id"],
                None,
                f"{_describe('items', r, key)}: {col} is beyond ±{MAX_DAYS} days",
            )
            continue
        if (r["item_id"],) in dups:
            warn(
                "DUPLICATE_KEY",
                r["item_id"],
                None,
                f"{_describe('items', r, key)}: item_id held by several rows; "
                "all of them are left out",
            )
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

    def item_ok(item: Any) -> bool:
        return item is not None and item in out.items

    def wh_ok(wh: Any) -> bool:
        return wh is not None and wh in out.warehouses

    # ------------------------------------------------------------------ boms
    rows = _table(inp, "boms")
    all_bom_ids = {r["bom_id"] for r in rows}
    key = ("bom_id",)
    dups = _duplicated(rows, key)
    for r in rows:
        where = _describe("boms", r, key)
        item, wh = r["item_id"], r["warehouse_id"]
        if (r["bom_id"],) in dups:
            warn(
                "DUPLICATE_KEY",
                item,
                wh,
                f"{where}: bom_id held by several rows; all of them and their lines are left out",
            )
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
    key = ("bom_id", "line_no")
    dups = _duplicated(rows, key)
    for r in rows:
        where = _describe("bom_lines", r, key)
        item, wh = r["component_item_id"], r["warehouse_id"]
        if r["bom_id"] in all_bom_ids and r["bom_id"] not in out.boms:
            continue  # §5.9: lines of a BOM that was left out go silently
        if (r["bom_id"], r["line_no"]) in dups:
            warn(
                "DUPLICATE_KEY",
                item,
                wh,
                f"{where}: (bom_id, line_no) held by several rows; all of them are left out",
            )
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
        if num(r["qty_per"]) < 0:
            warn("INVALID_QTY", item, wh, f"{where}: qty_per {fmt_value(r['qty_per'])} is negative")
            continue
        col = beyond("bom_lines", r, BOUNDED_QTY, MAX_QTY)
        if col is not None:
            warn("INVALID_QTY", item, wh, f"{where}: {col} is beyond ±{MAX_QTY:g}")
            continue
        out.bom_lines.setdefault(r["bom_id"], []).append(r)

    # ------------------------------------------------------------------ item coverage
    rows = _table(inp, "item_coverage")
    key = ("item_id", "warehouse_id")
    dups = _duplicated(rows, key)
    for r in rows:
        where = _describe("item_coverage", r, key)
        item, wh = r["item_id"], r["warehouse_id"]
        col = beyond("item_coverage", r, BOUNDED_DAYS, MAX_DAYS)
        if col is not None:
            warn("INVALID_ROW", item, wh, f"{where}: {col} is beyond ±{MAX_DAYS} days")
            continue
        if (item, wh) in dups:
            warn(
                "DUPLICATE_KEY",
                item,
                wh,
                f"{where}: (item_id, warehouse_id) held by several rows; all of them are left out",
            )
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
        key: tuple[str, ...] | None,
        item_col: str,
        wh_cols: tuple[str, ...],
        negative_is_invalid: bool,
    ) -> list[Row]:
        """Generic §5.9 checks of one transaction table; returns the kept rows.

        The message's warehouse_id is the first of `wh_cols` (for
        UNKNOWN_WAREHOUSE: the warehouse that is unknown)."""
        rows = _table(inp, table)
        dups = _duplicated(rows, key)
        kept: list[Row] = []
        for r in rows:
            where = _describe(table, r, key)
            item = r[item_col]
            wh = r[wh_cols[0]]
            if key and tuple(r[c] for c in key) in dups:
                warn(
                    "DUPLICATE_KEY",
                    item,
                    wh,
                    f"{where}: ({', '.join(key)}) held by several rows; all of them are left out",
                )
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
            if negative_is_invalid and num(r["qty"]) < 0:
                warn("INVALID_QTY", item, wh, f"{where}: qty {fmt_value(r['qty'])} is negative")
                continue
            col = beyond(table, r, BOUNDED_QTY, MAX_QTY)
            if col is not None:
                warn("INVALID_QTY", item, wh, f"{where}: {col} is beyond ±{MAX_QTY:g}")
                continue
            kept.append(r)
        return kept

    out.on_hand = check_tx("on_hand", None, "item_id", ("warehouse_id",), False)
    out.sales_lines = check_tx(
        "sales_lines", ("order_id", "line_no"), "item_id", ("warehouse_id",), True
    )
    out.purchase_lines = check_tx(
        "purchase_lines", ("order_id", "line_no"), "item_id", ("warehouse_id",), True
    )
    out.production_orders = check_tx(
        "production_orders", ("order_id",), "item_id", ("warehouse_id",), True
    )
    out.production_lines = check_tx(
        "production_lines", ("order_id", "line_no"), "component_item_id", ("warehouse_id",), True
    )
    out.transfer_lines = check_tx(
        "transfer_lines",
        ("order_id", "line_no"),
        "item_id",
        ("from_warehouse_id", "to_warehouse_id"),
        True,
    )
    out.forecasts = check_tx("forecasts", None, "item_id", ("warehouse_id",), True)
    firmed = check_tx(
        "firmed_planned_orders", ("planned_order_id",), "item_id", ("warehouse_id",), True
    )
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

COVERAGE_CODES = ("requirement", "period", "min_max", "manual")
ORDER_TYPES = ("purchase", "production", "transfer")


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

    code = g("coverage_code") or "requirement"
    if code not in COVERAGE_CODES:
        code = "requirement"  # NOTES.md: unknown coverage code = requirement
    order_type = ic_or_item("order_type", "default_order_type") or "purchase"
    if order_type not in ORDER_TYPES:
        order_type = "purchase"  # NOTES.md

    wh_row = data.warehouses.get(warehouse_id) or {}
    calendar = data.calendars.get(wh_row.get("calendar_id"))

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
        safety_stock_fulfillment=g("safety_stock_fulfillment") or "lead_time",
        forecast_reduction=g("forecast_reduction") or "none",
        include_forecast=bool(days(g("include_forecast"), 1)),
        postpone_tolerance_days=days(g("postpone_tolerance_days"), 0),
        order_type=order_type,
        lead_time_days=days(ic_or_item("lead_time_days", "lead_time_days"), 0),
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
