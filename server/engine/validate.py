"""Input checks of SPEC §5.9: bad rows are left out with one plan message each.

Every check is vectorised over a table's rows. A row is left out with at most
one message, the first that applies in the order ``INVALID_ROW`` (a number of
days beyond :data:`MAX_DAYS`), ``DUPLICATE_KEY``, ``UNKNOWN_BOM``,
``UNKNOWN_ITEM``, ``UNKNOWN_WAREHOUSE``, ``INVALID_QTY`` (a negative quantity,
or one beyond :data:`MAX_QTY`); rows share a key with every other row of it,
also one left out as ``INVALID_ROW``;
``UNKNOWN_COVERAGE_GROUP`` and an unknown refill or firmed-transfer source
warehouse keep the row (the reference becomes NULL) and add their message.

The other codes of §5.9 come from the phases that meet them: ``BOM_CYCLE``
from :mod:`~masterplan.server.engine.graph`, ``NO_BOM`` and a firmed
transfer's ``NO_REFILL_WAREHOUSE`` from :mod:`~masterplan.server.engine.orders`,
a transfer SKU's ``NO_REFILL_WAREHOUSE`` from :mod:`~masterplan.server.engine.skus`;
:class:`~masterplan.server.engine.messages.Messages` joins them in phase order.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

import numpy as np

from masterplan.contract.columns import empty_table, table_length, take
from masterplan.contract.tables import INPUT_TABLES
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

__all__ = ["ValidatedData", "validate"]

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
    """

    tables: dict[str, Table]
    messages: Messages
    id_positions: dict[str, dict[object, int]] = field(default_factory=dict)
    codes: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    table_messages: dict[str, Messages] = field(default_factory=dict)
    bom_survivor: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))


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
    if isinstance(value, float) and value == int(value):
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


def validate(
    data: TableMap,
    previous: ValidatedData | None = None,
    unchanged: Collection[str] = (),
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
    raw_bom_ids = (
        np.asarray(data["boms"]["bom_id"], dtype=object)
        if "boms" in data and not {"boms", "bom_lines"} <= kept
        else None
    )
    # Row of each BOM id's first appearance, per row and per id: one hash per
    # BOM row serves the duplicate check of boms and the lines' BOM lookups.
    raw_bom_first, raw_bom_pos = (
        first_rows(raw_bom_ids) if raw_bom_ids is not None else (np.empty(0, np.int64), {})
    )
    # Row in the surviving ``boms`` of each row given, -1 for one left out.
    bom_survivor = np.empty(0, dtype=np.int64)

    id_positions: dict[str, dict[object, int]] = {}
    id_codes: dict[tuple[str, str], np.ndarray] = {}

    def position_of(values: np.ndarray, master: str) -> np.ndarray:
        """Position of each id among the surviving ids of ``master``, -1 if none."""
        return lookup(values, id_positions[master])

    def key_column(values: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """Integer codes equal exactly where ``values`` are: ``pos`` where the id
        is known, distinct codes past them for each distinct unknown one."""
        unknown = pos < 0
        if not unknown.any():
            return pos
        key = pos.copy()
        key[unknown] = int(pos.max()) + 1 + first_rows(values[unknown])[0]
        return key

    def report(
        name: str, table: Table, rows: np.ndarray, code: str, reason: str, wh_col: str | None = None
    ) -> None:
        if rows.any():
            item, wh = _sku_of(name, table, rows)
            if wh_col is not None:  # an unknown warehouse: name the one that is unknown
                wh = table[wh_col][rows]
            by_table.setdefault(name, []).append(
                Messages.of("warning", code, item, wh, _row_texts(name, table, rows, reason))
            )

    for name in CHECK_ORDER:
        spec = INPUT_TABLES[name]
        if previous is not None and name in kept:
            out[name] = previous.tables[name]
            by_table[name] = [previous.table_messages.get(name, Messages())]
            id_codes.update((k, v) for k, v in previous.codes.items() if k[0] == name)
            if name in previous.id_positions:
                id_positions[name] = previous.id_positions[name]
            if name == "boms":
                bom_survivor = previous.bom_survivor
            continue
        table = dict(data[name]) if name in data else empty_table(spec)
        n = table_length(table)
        keep = np.ones(n, dtype=bool)
        if n == 0:
            out[name] = table
            if name in ("warehouses", "items"):
                id_positions[name] = {}
            continue

        # Each id column is looked up once; the duplicate-key check, the
        # existence checks and indexing all use these positions.
        found: dict[str, np.ndarray] = {}
        if name in ITEM_COLUMN and name != "items":
            found[ITEM_COLUMN[name]] = position_of(table[ITEM_COLUMN[name]], "items")
        for col in WAREHOUSE_COLUMNS.get(name, ()):
            found[col] = position_of(table[col], "warehouses")
        if name == "bom_lines":
            found["bom_id"] = lookup(table["bom_id"], raw_bom_pos)

        for col in BOUNDED_DAY_COLUMNS.get(name, ()):
            bad = keep & (np.abs(table[col]) > MAX_DAYS)
            report(name, table, bad, "INVALID_ROW", f"{col} is beyond ±{MAX_DAYS} days")
            keep &= ~bad

        if spec.key:
            known = {"bom_id": raw_bom_first} if name == "boms" else {}
            known.update((k, key_column(table[k], found[k])) for k in spec.key if k in found)
            codes = group_codes(*(known.get(k, table[k]) for k in spec.key))
            counts = np.bincount(codes)
            dup = keep & (counts[codes] > 1)
            report(
                name,
                table,
                dup,
                "DUPLICATE_KEY",
                f"shares its key ({', '.join(spec.key)}) with another row",
            )
            keep &= ~dup

        if name == "bom_lines":
            bom_row = found.pop("bom_id")  # row of the BOM as given, -1 for none
            bad = keep & (bom_row < 0)
            report(name, table, bad, "UNKNOWN_BOM", "bom_id is not in boms")
            keep &= ~bad
            # Lines of a BOM that exists but was left out go silently.
            found["bom_id"] = (
                gather(bom_survivor, bom_row, -1) if len(bom_survivor) else np.full(n, -1)
            )
            keep &= found["bom_id"] >= 0

        if name in ITEM_COLUMN and name != "items":
            col = ITEM_COLUMN[name]
            bad = keep & (found[col] < 0)
            report(name, table, bad, "UNKNOWN_ITEM", f"{col} is not in items")
            keep &= ~bad

        for col in WAREHOUSE_COLUMNS.get(name, ()):
            bad = keep & (found[col] < 0)
            if spec.column(col).nullable:
                bad &= ~is_null(table[col])
            report(name, table, bad, "UNKNOWN_WAREHOUSE", f"{col} is not in warehouses", col)
            keep &= ~bad

        if name in QTY_COLUMN:
            q = table[QTY_COLUMN[name]]
            bad = keep & (q < 0)
            report(name, table, bad, "INVALID_QTY", f"{QTY_COLUMN[name]} is negative")
            keep &= ~bad
        if name == "boms":
            batch = table["batch_qty"]
            bad = keep & ~np.isnan(batch) & (batch <= 0)
            report(name, table, bad, "INVALID_QTY", "batch_qty is not above zero")
            keep &= ~bad
        for col in BOUNDED_QTY_COLUMNS.get(name, ()):
            bad = keep & (np.abs(table[col]) > MAX_QTY)
            report(name, table, bad, "INVALID_QTY", f"{col} is beyond ±{MAX_QTY:g}")
            keep &= ~bad

        if name == "boms":
            bom_survivor = np.where(keep, np.cumsum(keep) - 1, -1)
        if not keep.all():  # a table without a bad row keeps its arrays
            table = take(table, keep)
        for col, pos in found.items():
            id_codes[name, col] = pos[keep]
        if name in ("warehouses", "items"):
            table = _sorted_by_id(table, spec.column_names[0])
            id_positions[name] = positions(table[spec.column_names[0]])

        if name in SOFT_WAREHOUSE_COLUMNS:
            col = SOFT_WAREHOUSE_COLUMNS[name]
            pos = id_codes[name, col] = position_of(table[col], "warehouses")
            bad = (pos < 0) & ~is_null(table[col])
            report(
                name,
                table,
                bad,
                "UNKNOWN_WAREHOUSE",
                f"{col} is not in warehouses; treated as none",
                col,
            )
            if bad.any():
                table[col] = table[col].copy()
                table[col][bad] = None
        if name in ("items", "item_coverage"):
            groups = out["coverage_groups"]["group_id"]
            bad = ~_member(table["coverage_group_id"], groups, nullable=True)
            report(
                name,
                table,
                bad,
                "UNKNOWN_COVERAGE_GROUP",
                "coverage_group_id is not in coverage_groups; treated as none",
            )
            if bad.any():
                table["coverage_group_id"] = table["coverage_group_id"].copy()
                table["coverage_group_id"][bad] = None
        out[name] = table

    table_messages = {name: Messages.concat(parts) for name, parts in by_table.items()}
    messages = Messages.concat([table_messages[n] for n in CHECK_ORDER if n in table_messages])
    return ValidatedData(out, messages, id_positions, id_codes, table_messages, bom_survivor)


def _sorted_by_id(table: Table, column: str) -> Table:
    """Rows in code-point order of their (unique) ids, the order masters are indexed in."""
    order = np.argsort(table[column].astype(str), kind="stable")
    return {k: v[order] for k, v in table.items()}
