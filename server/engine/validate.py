"""Input checks of SPEC §5.9: bad rows are left out with one plan message each.

Every check is vectorised over a table's rows. A row is left out with at most
one message, the first that applies in the order ``INVALID_ROW`` (a row that
cannot name what it is: a NULL or empty key or naming column, a ``line_no``
that is not a whole number up to :data:`MAX_LINE_NO`, a NULL date the plan
reads, a date the database holds but that names no day, a code outside its
list, a bad ``working_weekdays``, a number of days beyond
:data:`MAX_DAYS`), ``DUPLICATE_KEY``, ``UNKNOWN_BOM``,
``UNKNOWN_ITEM``, ``UNKNOWN_WAREHOUSE``, ``INVALID_QTY`` (a negative or NULL
quantity, or one beyond :data:`MAX_QTY`); rows share a key with every other
row of it, also one left out as ``INVALID_ROW``. Quantities within
:data:`QTY_TOLERANCE` of zero are zero from here on;
``UNKNOWN_COVERAGE_GROUP`` and an unknown refill or firmed-transfer source
warehouse keep the row (the reference becomes NULL) and add their message.

The other codes of §5.9 come from the phases that meet them: ``BOM_CYCLE``
from :mod:`~masterplan.server.engine.graph`, ``NO_BOM`` and a firmed
transfer's ``NO_REFILL_WAREHOUSE`` from :mod:`~masterplan.server.engine.orders`,
a transfer SKU's ``NO_REFILL_WAREHOUSE`` from :mod:`~masterplan.server.engine.skus`;
:class:`~masterplan.server.engine.messages.Messages` joins them in phase order.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

import numpy as np

from masterplan.contract.columns import UNREADABLE_DATE, empty_table, table_length, take
from masterplan.contract.tables import INPUT_TABLES, ColumnKind
from masterplan.server.engine.arrays import (
    first_rows,
    gather,
    group_codes,
    is_null,
    lookup,
    member,
    positions,
)
from masterplan.server.engine.messages import Messages
from masterplan.server.engine.rowdiff import MASTER_TABLES
from masterplan.server.engine.types import Table, TableMap

__all__ = ["ROW_TABLES", "ValidatedData", "key_hashes", "validate"]

#: Human name of a table's row, for message texts.
ROW_NAMES = {
    "warehouses": "warehouse",
    "calendars": "calendar",
    "calendar_exceptions": "calendar exception",
    "coverage_groups": "coverage group",
    "items": "item",
    "item_coverage": "item coverage",
    "boms": "BOM",
    "bom_lines": "BOM line",
    "on_hand": "on-hand",
    "sales_lines": "sales line",
    "purchase_lines": "purchase line",
    "production_orders": "production order",
    "production_lines": "production line",
    "transfer_lines": "transfer line",
    "forecasts": "forecast",
    "firmed_planned_orders": "firmed planned order",
}

#: The item column a table's rows name (BOM lines: the component; BOMs: the parent).
ITEM_COLUMN = {
    "items": "item_id",
    "item_coverage": "item_id",
    "boms": "item_id",
    "bom_lines": "component_item_id",
    "on_hand": "item_id",
    "sales_lines": "item_id",
    "purchase_lines": "item_id",
    "production_orders": "item_id",
    "production_lines": "component_item_id",
    "transfer_lines": "item_id",
    "forecasts": "item_id",
    "firmed_planned_orders": "item_id",
}

#: Warehouse columns whose unknown value leaves the row out (nullable ones: NULL is fine).
WAREHOUSE_COLUMNS = {
    "item_coverage": ("warehouse_id",),
    "boms": ("warehouse_id",),
    "bom_lines": ("warehouse_id",),
    "on_hand": ("warehouse_id",),
    "sales_lines": ("warehouse_id",),
    "purchase_lines": ("warehouse_id",),
    "production_orders": ("warehouse_id",),
    "production_lines": ("warehouse_id",),
    "transfer_lines": ("from_warehouse_id", "to_warehouse_id"),
    "forecasts": ("warehouse_id",),
    "firmed_planned_orders": ("warehouse_id",),
}

#: Warehouse columns whose unknown value keeps the row and is treated as NULL.
SOFT_WAREHOUSE_COLUMNS = {
    "item_coverage": "refill_warehouse_id",
    "firmed_planned_orders": "from_warehouse_id",
}

#: Quantity columns that must not be negative.
QTY_COLUMN = {
    "sales_lines": "qty",
    "purchase_lines": "qty",
    "production_orders": "qty",
    "production_lines": "qty",
    "transfer_lines": "qty",
    "forecasts": "qty",
    "firmed_planned_orders": "qty",
    "bom_lines": "qty_per",
}

#: Largest magnitude of a quantity (any quantity-like column, order
#: modifiers, scrap and on-hand included): far above any real stock, far
#: enough below the largest float that sums and BOM products of a few levels
#: stay finite. Beyond it (or infinite) the row is an ``INVALID_QTY``.
MAX_QTY = 1e12

#: Largest magnitude of a number of days (lead times, coverage periods,
#: fences, negative/positive days, postpone tolerance): 100 years. Beyond it
#: the row is an ``INVALID_ROW``; it bounds the calendar spans the plan walks.
MAX_DAYS = 36_500

#: Columns held to :data:`MAX_QTY`, checked where ``INVALID_QTY`` is.
BOUNDED_QTY_COLUMNS = {
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

#: Columns held to :data:`MAX_DAYS`, checked first (``INVALID_ROW``).
BOUNDED_DAY_COLUMNS = {
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

#: Which item/warehouse a message about a row of a table names.
MESSAGE_SKU = {
    "warehouses": (None, "warehouse_id"),
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

#: Tables checked, masters first so that later tables check against survivors.
CHECK_ORDER = (
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


#: Dates the plan reads whose NULL leaves the row out (``INVALID_ROW``).
REQUIRED_DATE_COLUMNS = {
    "calendar_exceptions": ("day",),
    "sales_lines": ("requested_date",),
    "purchase_lines": ("delivery_date",),
    "production_orders": ("end_date",),
    "production_lines": ("required_date",),
    "transfer_lines": ("ship_date", "receive_date"),
    "forecasts": ("forecast_date",),
    "firmed_planned_orders": ("order_date", "due_date"),
}

#: Every date column, nullable or not: a value the connector could not read
#: as a date (:data:`~masterplan.contract.columns.UNREADABLE_DATE`) leaves
#: the row out (``INVALID_ROW``) rather than pass for NULL.
DATE_COLUMNS = {
    name: tuple(c.name for c in spec.columns if c.kind is ColumnKind.DATE)
    for name, spec in INPUT_TABLES.items()
}

_ORDER_TYPES = ("purchase", "production", "transfer")

#: Code columns and their lists: a value outside it leaves the row out
#: (``INVALID_ROW``); NULL takes the §5.2 default, except where the second
#: entry says NULL is not allowed.
CODE_COLUMNS: dict[str, tuple[tuple[str, tuple[str, ...], bool], ...]] = {
    "coverage_groups": (
        ("coverage_code", ("requirement", "period", "min_max", "manual"), True),
        ("safety_stock_fulfillment", ("today", "lead_time"), True),
        ("forecast_reduction", ("none", "transactions_period"), True),
    ),
    "items": (("default_order_type", _ORDER_TYPES, True),),
    "item_coverage": (("order_type", _ORDER_TYPES, True),),
    "firmed_planned_orders": (("order_type", _ORDER_TYPES, False),),
}

#: Largest ``line_no``: every whole number up to it is exact in a float64.
MAX_LINE_NO = 2**53 - 1

#: Quantities within this of zero are zero (SPEC §5: quantities compare
#: with an absolute tolerance of 1e-9).
QTY_TOLERANCE = 1e-9

#: Quantity columns of each table that count as zero within :data:`QTY_TOLERANCE`.
ZEROED_COLUMNS = {**{name: (col,) for name, col in QTY_COLUMN.items()}, "on_hand": ("qty",)}


def naming_columns(name: str) -> tuple[str, ...]:
    """The columns of table ``name`` that name a row: its key, and the item,
    warehouse and BOM columns not marked nullable. NULL or empty in one
    leaves the row out (``INVALID_ROW``)."""
    spec = INPUT_TABLES[name]
    cols = list(spec.key)
    named = [ITEM_COLUMN.get(name), *WAREHOUSE_COLUMNS.get(name, ())]
    if name == "bom_lines":
        named.append("bom_id")
    for col in named:
        if col is not None and col not in cols and not spec.column(col).nullable:
            cols.append(col)
    return tuple(cols)


def _weekdays_ok(text: object) -> bool:
    """Seven ``0``/``1`` characters with at least one ``1``."""
    return isinstance(text, str) and len(text) == 7 and set(text) <= {"0", "1"} and "1" in text


#: Tables whose checks read the master tables and their own rows only: a
#: new version of one is checked on its new rows alone (see :func:`validate`).
ROW_TABLES = (
    "on_hand",
    "sales_lines",
    "purchase_lines",
    "production_orders",
    "production_lines",
    "transfer_lines",
    "forecasts",
    "firmed_planned_orders",
)


@dataclass(frozen=True, slots=True)
class ValidatedData:
    """The input tables with bad rows left out, and the messages that say why.

    Checking that a row's item and warehouses exist looks each id up once;
    the positions found are kept so that indexing does not hash the same
    strings again.

    Attributes
    ----------
    tables : dict of Table
        Surviving rows; ``items`` and ``warehouses`` sorted by id.
    messages : Messages
        One message per bad row (and per kept row with a treated-as-none
        reference).
    id_positions : dict
        ``{id: position}`` of the sorted surviving ids of ``items`` and
        ``warehouses``.
    codes : dict
        ``(table, column)`` -> int64 position of each surviving row's item or
        warehouse in those, -1 for NULL (or an unknown soft warehouse); for
        ``bom_lines.bom_id``, the row of the line's BOM in the surviving
        ``boms``.
    table_messages : dict of Messages
        ``messages`` by the table of the row they are about.
    bom_survivor : int64
        Row in the surviving ``boms`` of each BOM row given, -1 for one left out.
    key_hashes : dict of int64
        For each keyed table of :data:`ROW_TABLES` that kept every row: a
        hash of each row's key, equal for equal keys, so that a later
        version's new rows can be checked against the rest for duplicates
        without hashing the rest again.
    """

    tables: dict[str, Table]
    messages: Messages
    id_positions: dict[str, dict[object, int]] = field(default_factory=dict)
    codes: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    table_messages: dict[str, Messages] = field(default_factory=dict)
    bom_survivor: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    key_hashes: dict[str, np.ndarray] = field(default_factory=dict)


def _row_texts(table_name: str, table: Table, rows: np.ndarray, reason: str) -> np.ndarray:
    """Message texts naming table, key and reason; built only for the few bad rows."""
    spec = INPUT_TABLES[table_name]
    key = spec.key or spec.column_names[:2]
    out = []
    for i in np.flatnonzero(rows):
        ident = ", ".join(f"{k}={_show(table[k][i])}" for k in key)
        out.append(f"{ROW_NAMES[table_name]} ({table_name}: {ident}): {reason}")
    return np.array(out, dtype=object)


def _show(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "NULL"
    if isinstance(value, np.datetime64) and value == UNREADABLE_DATE:
        return "(unreadable)"
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        return str(int(value))
    return repr(value) if isinstance(value, str) else str(value)


def _sku_of(table_name: str, table: Table, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    item_col, wh_col = MESSAGE_SKU.get(table_name, (None, None))
    n = int(np.count_nonzero(rows))
    item = table[item_col][rows] if item_col else np.full(n, None, dtype=object)
    wh = table[wh_col][rows] if wh_col else np.full(n, None, dtype=object)
    return item, wh


def _member(values: np.ndarray, known: np.ndarray | set[object], nullable: bool) -> np.ndarray:
    """Whether each value is in ``known``; NULL counts as known only when ``nullable``."""
    inside = member(values, known)
    if nullable:
        inside |= is_null(values)
    return inside


@dataclass(slots=True)
class _Context:
    """What a table's checks read of the tables checked before it."""

    id_positions: dict[str, dict[object, int]] = field(default_factory=dict)
    #: Row of each BOM id's first appearance, per BOM row given and per id.
    raw_bom_first: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    raw_bom_pos: dict[object, int] = field(default_factory=dict)
    bom_survivor: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    group_ids: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=object))


@dataclass(slots=True)
class _Checked:
    """One table's checks: its surviving rows, their id positions, the messages."""

    table: Table
    keep: np.ndarray
    codes: dict[str, np.ndarray]
    messages: list[Messages]


def _check(name: str, table: Table, ctx: _Context) -> _Checked:
    """The checks of SPEC §5.9 on the rows of one table (not empty)."""
    spec = INPUT_TABLES[name]
    table = dict(table)
    n = table_length(table)
    keep = np.ones(n, dtype=bool)
    messages: list[Messages] = []
    for col in ZEROED_COLUMNS.get(name, ()):
        q = table[col]
        tiny = (q != 0) & (np.abs(q) <= QTY_TOLERANCE)
        if tiny.any():
            table[col] = np.where(tiny, 0.0, q)

    def position_of(values: np.ndarray, master: str) -> np.ndarray:
        """Position of each id among the surviving ids of ``master``, -1 if none."""
        return lookup(values, ctx.id_positions[master])

    def key_column(values: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """Integer codes equal exactly where ``values`` are: ``pos`` where the id
        is known, distinct codes past them for each distinct unknown one."""
        unknown = pos < 0
        if not unknown.any():
            return pos
        key = pos.copy()
        key[unknown] = int(pos.max()) + 1 + first_rows(values[unknown])[0]
        return key

    def report(rows: np.ndarray, code: str, reason: str, wh_col: str | None = None) -> None:
        if rows.any():
            item, wh = _sku_of(name, table, rows)
            if wh_col is not None:  # an unknown warehouse: name the one that is unknown
                wh = table[wh_col][rows]
            messages.append(
                Messages.of("warning", code, item, wh, _row_texts(name, table, rows, reason))
            )

    # Each id column is looked up once; the duplicate-key check, the
    # existence checks and indexing all use these positions.
    found: dict[str, np.ndarray] = {}
    if name in ITEM_COLUMN and name != "items":
        found[ITEM_COLUMN[name]] = position_of(table[ITEM_COLUMN[name]], "items")
    for col in WAREHOUSE_COLUMNS.get(name, ()):
        found[col] = position_of(table[col], "warehouses")
    if name == "bom_lines":
        found["bom_id"] = lookup(table["bom_id"], ctx.raw_bom_pos)

    if name == "bom_lines":
        # Lines of a BOM that exists but was left out go silently, before
        # any message about the line itself. A NULL or empty id names no
        # BOM, even where a BOM row has one too: the line is INVALID_ROW.
        raw_row = found["bom_id"]
        survivor = gather(ctx.bom_survivor, raw_row, -1) if len(ctx.bom_survivor) else raw_row
        ids = table["bom_id"]
        blank = is_null(ids) | np.asarray(np.equal(ids, ""), dtype=bool)
        keep &= ~((raw_row >= 0) & (survivor < 0) & ~blank)

    # Rows that cannot name what they are, first (INVALID_ROW).
    for col in naming_columns(name):
        values = table[col]
        if values.dtype == object:
            missing = is_null(values) | np.asarray(np.equal(values, ""), dtype=bool)
        elif values.dtype.kind == "M":
            missing = np.isnat(values)
        else:
            missing = np.isnan(values)
        bad = keep & missing
        report(bad, "INVALID_ROW", f"{col} is NULL or empty")
        keep &= ~bad
    if "line_no" in table:
        line = table["line_no"]
        whole = np.isfinite(line) & (line >= 0) & (line <= MAX_LINE_NO)
        whole[whole] = line[whole] == np.floor(line[whole])
        bad = keep & ~whole
        report(bad, "INVALID_ROW", f"line_no is not a whole number from 0 to {MAX_LINE_NO}")
        keep &= ~bad
    for col in REQUIRED_DATE_COLUMNS.get(name, ()):
        bad = keep & np.isnat(table[col])
        report(bad, "INVALID_ROW", f"{col} is NULL")
        keep &= ~bad
    for col in DATE_COLUMNS[name]:
        bad = keep & (table[col] == UNREADABLE_DATE)
        report(bad, "INVALID_ROW", f"{col} is not a readable date")
        keep &= ~bad
    for col, allowed, nullable in CODE_COLUMNS.get(name, ()):
        values = table[col]
        bad = keep & ~member(values, set(allowed))
        if nullable:
            bad &= ~is_null(values)
        report(bad, "INVALID_ROW", f"{col} is not one of {', '.join(allowed)}")
        keep &= ~bad
    if name == "calendars":
        ok = np.fromiter(map(_weekdays_ok, table["working_weekdays"].tolist()), dtype=bool, count=n)
        bad = keep & ~ok
        report(bad, "INVALID_ROW", "working_weekdays is not seven 0/1 characters with a 1")
        keep &= ~bad
    for col in BOUNDED_DAY_COLUMNS.get(name, ()):
        bad = keep & (np.abs(table[col]) > MAX_DAYS)
        report(bad, "INVALID_ROW", f"{col} is beyond ±{MAX_DAYS} days")
        keep &= ~bad

    if spec.key:
        known = {"bom_id": ctx.raw_bom_first} if name == "boms" else {}
        known.update((k, key_column(table[k], found[k])) for k in spec.key if k in found)
        codes = group_codes(*(known.get(k, table[k]) for k in spec.key))
        counts = np.bincount(codes)
        dup = keep & (counts[codes] > 1)
        report(dup, "DUPLICATE_KEY", f"shares its key ({', '.join(spec.key)}) with another row")
        keep &= ~dup

    if name == "bom_lines":
        bom_row = found.pop("bom_id")  # row of the BOM as given, -1 for none
        bad = keep & (bom_row < 0)
        report(bad, "UNKNOWN_BOM", "bom_id is not in boms")
        keep &= ~bad
        # Lines of a BOM that exists but was left out go silently.
        survivor = ctx.bom_survivor
        found["bom_id"] = gather(survivor, bom_row, -1) if len(survivor) else np.full(n, -1)
        keep &= found["bom_id"] >= 0

    if name in ITEM_COLUMN and name != "items":
        col = ITEM_COLUMN[name]
        bad = keep & (found[col] < 0)
        report(bad, "UNKNOWN_ITEM", f"{col} is not in items")
        keep &= ~bad

    for col in WAREHOUSE_COLUMNS.get(name, ()):
        bad = keep & (found[col] < 0)
        if spec.column(col).nullable:
            bad &= ~is_null(table[col])
        report(bad, "UNKNOWN_WAREHOUSE", f"{col} is not in warehouses", col)
        keep &= ~bad

    if name in QTY_COLUMN:
        q = table[QTY_COLUMN[name]]
        bad = keep & np.isnan(q)
        report(bad, "INVALID_QTY", f"{QTY_COLUMN[name]} is NULL")
        keep &= ~bad
        bad = keep & (q < 0)
        report(bad, "INVALID_QTY", f"{QTY_COLUMN[name]} is negative")
        keep &= ~bad
    if name == "boms":
        batch = table["batch_qty"]
        bad = keep & ~np.isnan(batch) & (batch <= 0)
        report(bad, "INVALID_QTY", "batch_qty is not above zero")
        keep &= ~bad
    for col in BOUNDED_QTY_COLUMNS.get(name, ()):
        bad = keep & (np.abs(table[col]) > MAX_QTY)
        report(bad, "INVALID_QTY", f"{col} is beyond ±{MAX_QTY:g}")
        keep &= ~bad

    if not keep.all():  # a table without a bad row keeps its arrays
        table = take(table, keep)
    kept_codes = {col: pos[keep] for col, pos in found.items()}
    if name in ("warehouses", "items"):
        table = _sorted_by_id(table, spec.column_names[0])

    if name in SOFT_WAREHOUSE_COLUMNS:
        col = SOFT_WAREHOUSE_COLUMNS[name]
        pos = kept_codes[col] = position_of(table[col], "warehouses")
        bad = (pos < 0) & ~is_null(table[col])
        report(bad, "UNKNOWN_WAREHOUSE", f"{col} is not in warehouses; treated as none", col)
        if bad.any():
            table[col] = table[col].copy()
            table[col][bad] = None
    if name in ("items", "item_coverage"):
        bad = ~_member(table["coverage_group_id"], ctx.group_ids, nullable=True)
        report(
            bad,
            "UNKNOWN_COVERAGE_GROUP",
            "coverage_group_id is not in coverage_groups; treated as none",
        )
        if bad.any():
            table["coverage_group_id"] = table["coverage_group_id"].copy()
            table["coverage_group_id"][bad] = None
    return _Checked(table, keep, kept_codes, messages)


def key_hashes(table: Table, key: tuple[str, ...]) -> np.ndarray:
    """int64 (N,): a hash of each row's key, equal where the keys are equal
    as the duplicate check compares them (numbers by value, NaN with NaN,
    ``-0.0`` with ``0.0``; text by string)."""
    n = table_length(table)
    out = np.zeros(n, dtype=np.int64)
    for col in key:
        values = table[col]
        if values.dtype == object:
            part = np.fromiter(map(hash, values.tolist()), dtype=np.int64, count=n)
        elif values.dtype.kind == "f":
            number = np.where(np.isnan(values), np.nan, values.astype(np.float64) + 0.0)
            part = number.view(np.int64)
        else:
            part = values.astype(np.int64, copy=False)
        out = out * np.int64(1_000_003) + part  # wraps around, as a hash may
    return out


def _any_shared(rest: np.ndarray, new: np.ndarray) -> bool:
    """Whether a value of ``new`` (few) is among ``rest`` (many)."""
    if not len(new) or not len(rest):
        return False
    new = np.sort(new)
    pos = np.minimum(np.searchsorted(new, rest), len(new) - 1)
    return bool((new[pos] == rest).any())


def _recheck(
    name: str,
    table: Table,
    source: np.ndarray,
    previous: ValidatedData,
    ctx: _Context,
) -> tuple[_Checked, np.ndarray | None] | None:
    """Table ``name`` of :data:`ROW_TABLES` checked on its new rows only, or
    None where that cannot be done (then it is checked whole).

    ``source[i]`` is the row of the version ``previous`` checked that row
    ``i`` of ``table`` is, unchanged, or -1. When every row of that version
    passed, every new row passes, and no new row's key is one the unchanged
    rows hold, every row of the table passes: the checks of a row of these
    tables read only the master tables (unchanged) and, for duplicate keys,
    the other rows' keys.
    """
    spec = INPUT_TABLES[name]
    held = previous.table_messages.get(name)
    if held is not None and len(held):
        return None  # the previous version left rows out: no row-for-row codes
    n, n_old = table_length(table), table_length(previous.tables[name])
    if n_old == 0 or len(source) != n or (len(source) and int(source.max()) >= n_old):
        return None
    same = source >= 0
    old_rows = source[same]
    if len(old_rows) and np.bincount(old_rows, minlength=n_old).max() > 1:
        return None  # two rows cannot both be the same row
    fresh = np.flatnonzero(~same)
    hashes = None
    if spec.key:
        old_hashes = previous.key_hashes.get(name)
        if old_hashes is None:
            return None
        hashes = np.empty(n, dtype=np.int64)
        hashes[same] = old_hashes[old_rows]
    if not len(fresh):
        checked = _Checked(dict(table), np.ones(n, dtype=bool), {}, [])
    else:
        rows = take(table, fresh)
        checked = _check(name, rows, ctx)
        if checked.messages or not checked.keep.all():
            return None
        if any(checked.table[col] is not values for col, values in rows.items()):
            return None  # the checks changed a value (a quantity within the tolerance)
        if hashes is not None:
            new_hashes = key_hashes(rows, spec.key)
            if _any_shared(hashes[same], new_hashes):
                return None  # (an equal hash of another key is checked whole too)
            hashes[fresh] = new_hashes
    codes = {}
    for (table_name, col), old_codes in previous.codes.items():
        if table_name == name:
            pos = np.empty(n, dtype=np.int64)
            pos[same] = old_codes[old_rows]
            if len(fresh):
                pos[fresh] = checked.codes[col]
            codes[col] = pos
    return _Checked(dict(table), np.ones(n, dtype=bool), codes, []), hashes


def validate(
    data: TableMap,
    previous: ValidatedData | None = None,
    unchanged: Collection[str] = (),
    sources: Mapping[str, np.ndarray] | None = None,
) -> ValidatedData:
    """Apply the checks of SPEC §5.9 to every input table.

    Parameters
    ----------
    data
        Input tables by name (any missing table counts as empty).
    previous, unchanged
        The checks of an earlier version of the data, and the tables that
        have not changed since: those are taken from ``previous`` instead of
        checked again. A table's checks read the master tables, so this holds
        only when every master table is unchanged; otherwise ``previous`` is
        ignored.
    sources
        With ``previous``: for a changed table of :data:`ROW_TABLES`, the
        row of the earlier version that each of its rows is, unchanged (equal
        in every column, each earlier row named once at most), -1 for a row
        that is new or changed. Then only those rows are checked, where the
        earlier version had no bad row (the rest is checked whole).

    Returns
    -------
    ValidatedData
        Surviving rows per table (every table of §4 present) and the messages.
    """
    if previous is not None and not set(MASTER_TABLES) <= set(unchanged):
        previous = None
    kept = set(unchanged) if previous is not None else set()
    by_table: dict[str, list[Messages]] = {}
    out: dict[str, Table] = {}
    ctx = _Context()
    if "boms" in data and not {"boms", "bom_lines"} <= kept:
        # One hash per BOM row serves the duplicate check of boms and the
        # lines' BOM lookups.
        ctx.raw_bom_first, ctx.raw_bom_pos = first_rows(
            np.asarray(data["boms"]["bom_id"], dtype=object)
        )
    id_codes: dict[tuple[str, str], np.ndarray] = {}
    hashes: dict[str, np.ndarray] = {}

    for name in CHECK_ORDER:
        spec = INPUT_TABLES[name]
        if previous is not None and name in kept:
            out[name] = previous.tables[name]
            by_table[name] = [previous.table_messages.get(name, Messages())]
            id_codes.update((k, v) for k, v in previous.codes.items() if k[0] == name)
            if name in previous.id_positions:
                ctx.id_positions[name] = previous.id_positions[name]
            if name in previous.key_hashes:
                hashes[name] = previous.key_hashes[name]
            if name == "boms":
                ctx.bom_survivor = previous.bom_survivor
            if name == "coverage_groups":
                ctx.group_ids = out[name]["group_id"]
            continue
        table = data[name] if name in data else empty_table(spec)
        if table_length(table) == 0:
            out[name] = dict(table)
            if name in ("warehouses", "items"):
                ctx.id_positions[name] = {}
            if name == "coverage_groups":
                ctx.group_ids = out[name]["group_id"]
            continue
        quick = None
        if previous is not None and sources is not None and name in sources:
            quick = _recheck(name, table, sources[name], previous, ctx)
        if quick is not None:
            checked, table_hashes = quick
        else:
            checked = _check(name, table, ctx)
            table_hashes = (
                key_hashes(checked.table, spec.key)
                if spec.key and name in ROW_TABLES and not checked.messages
                else None
            )
        out[name] = checked.table
        by_table[name] = checked.messages
        id_codes.update(((name, col), pos) for col, pos in checked.codes.items())
        if table_hashes is not None:
            hashes[name] = table_hashes
        if name == "boms":
            keep = checked.keep
            ctx.bom_survivor = np.where(keep, np.cumsum(keep) - 1, -1)
        if name in ("warehouses", "items"):
            ctx.id_positions[name] = positions(checked.table[spec.column_names[0]])
        if name == "coverage_groups":
            ctx.group_ids = checked.table["group_id"]

    table_messages = {name: Messages.concat(parts) for name, parts in by_table.items()}
    messages = Messages.concat([table_messages[n] for n in CHECK_ORDER if n in table_messages])
    return ValidatedData(
        out,
        messages,
        ctx.id_positions,
        id_codes,
        table_messages,
        ctx.bom_survivor,
        hashes,
    )


def _sorted_by_id(table: Table, column: str) -> Table:
    """Rows in code-point order of their (unique) ids, the order masters are indexed in."""
    order = np.argsort(table[column].astype(str), kind="stable")
    return {k: v[order] for k, v in table.items()}
