"""A seeded synthetic SCM data set in the §4 input tables, and a fast loader.

The generator is vectorised with numpy so that 1M SKUs take seconds, not
minutes: the benchmark is meant to measure the product, not its own set-up.
Ids are built with numpy's ``StringDType`` string operations and converted to
``object`` arrays (the in-memory convention of :mod:`masterplan.contract.tables`).
The shape of the data set is described in ``bench/README.md``.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import sqlalchemy as sa

from masterplan.connector.schema import create_all, sql_table
from masterplan.contract.tables import INPUT_TABLES, ColumnKind

__all__ = [
    "DEFAULT_PLAN_DATE",
    "generate_clusters",
    "generate_tables",
    "sku_count",
    "write_database",
]

Table = dict[str, np.ndarray]

DEFAULT_PLAN_DATE = dt.date(2026, 1, 5)

PLANT, DC = "PLANT", "DC"
CALENDAR = "CAL5"
#: Share of items per BOM level (level 0 = finished goods, 6 = the deepest).
LEVEL_SHARES = np.array([0.15, 0.12, 0.12, 0.12, 0.12, 0.12, 0.25])
#: The dense model's levels: six, fewer finished goods, more at the bottom.
DENSE_LEVEL_SHARES = np.array([0.05, 0.15, 0.15, 0.15, 0.15, 0.35])
#: The dense model's sales lines per finished-good SKU (low, high exclusive).
DENSE_SALES_LINES = (10, 31)
#: Share of items of the middle levels (1-5) that are bought, not made.
MID_PURCHASED = 0.3
N_VENDORS = 50

# (group_id, coverage_code, period_days, use_working_days)
_GROUPS: tuple[tuple[str, str, int, int], ...] = (
    ("PER7", "period", 7, 0),
    ("PER7W", "period", 7, 1),
    ("PER14", "period", 14, 0),
    ("REQ", "requirement", 1, 0),
    ("REQW", "requirement", 1, 1),
    ("MINMAX", "min_max", 1, 0),
)
#: Probability of each group for an item (min_max is assigned per SKU below).
_ITEM_GROUP_P = np.array([0.45, 0.15, 0.15, 0.15, 0.10])
#: The dense model's: period groups only (one order per period, not per requirement).
_DENSE_GROUP_P = np.array([0.5, 0.2, 0.3, 0.0, 0.0])
#: Share of SKUs that are planned min/max (item_coverage override).
MIN_MAX_SHARE = 0.08


def _ids(prefix: str, numbers: np.ndarray, width: int) -> np.ndarray:
    """``prefix`` + zero-padded ``numbers`` as an ``object`` array of ``str``.

    StringDType ops run in C; only the final ``astype(object)`` creates the
    Python strings the in-memory tables need.
    """
    digits = np.strings.zfill(
        np.asarray(numbers, dtype=np.int64).astype(np.dtypes.StringDType()), width
    )
    return np.strings.add(prefix, digits).astype(object)


def _where(mask: np.ndarray, yes: Any, no: Any) -> np.ndarray:
    """``np.where`` into an ``object`` array, so that ``None`` can be a value (NULL)."""
    return np.where(mask, np.asarray(yes, dtype=object), np.asarray(no, dtype=object))


def _const(value: Any, n: int) -> np.ndarray:
    out = np.empty(n, dtype=object)
    out[:] = value
    return out


def _table(name: str, n: int, **columns: Any) -> Table:
    """Build table ``name`` with ``n`` rows in the dtypes of its spec.

    Columns not given are NULL (None / NaN / NaT), so every table has exactly
    the columns of §4 and the engine sees what the reader would produce.
    """
    spec = INPUT_TABLES[name]
    out: Table = {}
    for col in spec.columns:
        value = columns.pop(col.name, None)
        if col.kind is ColumnKind.STR:
            if value is None or np.isscalar(value):
                arr = _const(value, n)
            else:
                arr = np.asarray(value, dtype=object)
        elif col.kind is ColumnKind.DATE:
            arr = (
                np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
                if value is None
                else np.broadcast_to(np.asarray(value, dtype="datetime64[D]"), (n,)).copy()
            )
        else:
            arr = (
                np.full(n, np.nan)
                if value is None
                else np.broadcast_to(np.asarray(value, dtype=np.float64), (n,)).copy()
            )
        if len(arr) != n:
            raise ValueError(f"{name}.{col.name}: {len(arr)} values for {n} rows")
        out[col.name] = arr
    if columns:
        raise KeyError(f"{name} has no columns {sorted(columns)}")
    return out


def sku_count(n_skus: int) -> int:
    """The number of SKUs :func:`generate_tables` really makes (items × 2)."""
    return 2 * max(1, (n_skus + 1) // 2)


def generate_tables(
    n_skus: int, seed: int = 42, plan_date: dt.date = DEFAULT_PLAN_DATE, dense: bool = False
) -> dict[str, Table]:
    """A seeded synthetic data set of about ``n_skus`` SKUs in the §4 input tables.

    Every input table is present (empty ones with the right dtypes), so the
    result can go straight to ``server.engine.plan`` or to a database.
    Same ``n_skus`` and ``seed`` give the same tables.

    ``dense``: six BOM levels and 10-30 sales lines per finished-good SKU,
    no forecasts: more input rows per SKU and fewer result rows (about 4-5
    per SKU against the standard model's 13), the shape of a make-to-order
    business with many order lines per product.
    """
    if n_skus < 2:
        raise ValueError(f"n_skus must be at least 2, got {n_skus}")
    rng = np.random.default_rng(seed)
    t0 = np.datetime64(plan_date, "D")
    n_items = sku_count(n_skus) // 2
    width = max(7, len(str(n_items)))
    item_ids = _ids("IT-", np.arange(n_items), width)

    # -- levels: a random permutation so that id order is not level order ----
    shares = DENSE_LEVEL_SHARES if dense else LEVEL_SHARES
    bounds = np.round(np.cumsum(shares) * n_items).astype(np.int64)
    bounds[-1] = n_items
    starts = np.concatenate(([0], bounds))  # level l holds by_level[starts[l]:starts[l+1]]
    by_level = rng.permutation(n_items)
    level = np.empty(n_items, dtype=np.int64)
    level[by_level] = np.repeat(np.arange(len(shares)), np.diff(starts))
    deepest = len(shares) - 1
    made = (level == 0) | (rng.random(n_items) >= MID_PURCHASED)
    # A made item needs a non-empty next level to draw its first component
    # from (only tiny data sets have empty levels); the deepest level is bought.
    below = np.minimum(level + 1, deepest)
    made &= (level < deepest) & (starts[below] < starts[below + 1])
    fg = level == 0

    # -- setup -----------------------------------------------------------------
    tables: dict[str, Table] = {}
    tables["warehouses"] = _table(
        "warehouses",
        2,
        warehouse_id=np.array([PLANT, DC], dtype=object),
        site_id="S1",
        calendar_id=CALENDAR,
    )
    tables["calendars"] = _table("calendars", 1, calendar_id=CALENDAR, working_weekdays="1111100")
    holidays = np.array([t0 + 17, t0 + 45], dtype="datetime64[D]")
    tables["calendar_exceptions"] = _table(
        "calendar_exceptions", 2, calendar_id=CALENDAR, day=holidays, is_working=0.0
    )
    g = len(_GROUPS)
    tables["coverage_groups"] = _table(
        "coverage_groups",
        g,
        group_id=np.array([x[0] for x in _GROUPS], dtype=object),
        coverage_code=np.array([x[1] for x in _GROUPS], dtype=object),
        coverage_period_days=np.array([x[2] for x in _GROUPS], dtype=np.float64),
        coverage_time_fence_days=120.0,
        freeze_time_fence_days=1.0,
        firming_time_fence_days=3.0,
        negative_days=2.0,
        positive_days=None,
        use_working_days=np.array([x[3] for x in _GROUPS], dtype=np.float64),
        safety_stock_fulfillment="today",
        forecast_reduction="transactions_period",
        include_forecast=1.0,
        postpone_tolerance_days=3.0,
    )

    # -- items -------------------------------------------------------------------
    group_names = np.array([x[0] for x in _GROUPS[:-1]], dtype=object)
    group_p = _DENSE_GROUP_P if dense else _ITEM_GROUP_P
    item_group = group_names[rng.choice(len(group_names), n_items, p=group_p)]
    vendors = _ids("V-", np.arange(1, N_VENDORS + 1), 3)
    r = rng.random((3, n_items))
    tables["items"] = _table(
        "items",
        n_items,
        item_id=item_ids,
        default_order_type=np.where(made, "production", "purchase").astype(object),
        coverage_group_id=item_group,
        lead_time_days=rng.integers(1, 16, n_items).astype(np.float64),
        min_order_qty=np.where(r[0] < 0.10, rng.choice([10.0, 25.0, 50.0], n_items), 0.0),
        max_order_qty=np.where(r[1] < 0.02, 500.0, 0.0),
        multiple_qty=np.where(r[2] < 0.10, rng.choice([5.0, 10.0, 12.0], n_items), 0.0),
        default_vendor_id=_where(made, None, vendors[rng.integers(0, N_VENDORS, n_items)]),
    )

    # -- item_coverage: every SKU, so that every (item, warehouse) exists -------
    # SKU s is item s // 2 at PLANT (even s) or DC (odd s): rows sorted by
    # (item, warehouse). Not PLANT block then DC block: two concatenated
    # sorted runs of the same ids make numpy 2.4's StringDType sort (used by
    # the engine's factorize) crash with a segmentation fault.
    n_sku = 2 * n_items
    sku_item = np.repeat(np.arange(n_items), 2)
    at_dc = np.arange(n_sku) % 2 == 1
    min_max = rng.random(n_sku) < MIN_MAX_SHARE
    min_qty = rng.integers(5, 50, n_sku).astype(np.float64)
    max_qty = min_qty + rng.integers(20, 200, n_sku)
    safety = np.where(fg[sku_item] & (rng.random(n_sku) < 0.2), 10.0, np.nan)
    tables["item_coverage"] = _table(
        "item_coverage",
        n_sku,
        item_id=item_ids[sku_item],
        warehouse_id=np.where(at_dc, DC, PLANT).astype(object),
        coverage_group_id=_where(min_max, "MINMAX", None),
        min_qty=np.where(min_max, min_qty, np.nan),
        max_qty=np.where(min_max, max_qty, np.nan),
        safety_stock_qty=safety,
        order_type=_where(at_dc, "transfer", None),
        lead_time_days=np.where(at_dc, rng.integers(1, 4, n_sku).astype(np.float64), np.nan),
        refill_warehouse_id=_where(at_dc, PLANT, None),
    )

    # -- BOMs: one per made item, 1-4 components of deeper levels --------------
    parents = np.flatnonzero(made)
    n_bom = len(parents)
    bom_ids = np.strings.add("B-", item_ids[parents].astype(np.dtypes.StringDType())).astype(object)
    tables["boms"] = _table("boms", n_bom, bom_id=bom_ids, item_id=item_ids[parents], batch_qty=1.0)
    n_lines = rng.integers(1, 4 if dense else 5, n_bom)
    line_bom = np.repeat(np.arange(n_bom), n_lines)
    first = np.concatenate(([0], np.cumsum(n_lines)[:-1]))
    line_no = np.arange(len(line_bom)) - np.repeat(first, n_lines) + 1
    plevel = level[parents][line_bom]
    # The first line draws from the next level (keeps the chains 7 deep), the
    # others from any deeper level.
    lo = starts[plevel + 1]
    hi = np.where(line_no == 1, starts[plevel + 2], n_items)
    comp = by_level[rng.integers(lo, hi)]
    n_bl = len(line_bom)
    tables["bom_lines"] = _table(
        "bom_lines",
        n_bl,
        bom_id=bom_ids[line_bom],
        line_no=(line_no * 10).astype(np.float64),
        component_item_id=item_ids[comp],
        qty_per=rng.choice([1.0, 1.0, 2.0, 3.0, 4.0], n_bl),
        scrap_pct=np.where(rng.random(n_bl) < 0.1, 2.0, 0.0),
        scrap_const=0.0,
    )

    # -- on hand: a third of the SKUs ----------------------------------------------
    oh = np.flatnonzero(rng.random(n_sku) < 1 / 3)
    tables["on_hand"] = _table(
        "on_hand",
        len(oh),
        item_id=item_ids[sku_item[oh]],
        warehouse_id=np.where(at_dc[oh], DC, PLANT).astype(object),
        qty=rng.integers(5, 200, len(oh)).astype(np.float64),
    )

    # -- sales: 1-5 lines per finished-good SKU over 90 days ---------------------
    fg_sku = np.flatnonzero(fg[sku_item])
    per = rng.integers(*(DENSE_SALES_LINES if dense else (1, 6)), len(fg_sku))
    so_sku = np.repeat(fg_sku, per)
    n_so = len(so_sku)
    tables["sales_lines"] = _table(
        "sales_lines",
        n_so,
        order_id=_ids("SO-", np.arange(1, n_so + 1), 8),
        line_no=1.0,
        item_id=item_ids[sku_item[so_sku]],
        warehouse_id=np.where(at_dc[so_sku], DC, PLANT).astype(object),
        qty=rng.integers(1, 40, n_so).astype(np.float64),
        requested_date=t0 + rng.integers(-5, 90, n_so),
        priority=rng.choice([0.0, 0.0, 0.0, 1.0], n_so),
    )

    # -- forecasts: 12 weekly lines per finished good at the DC ------------------
    fc_sku = np.flatnonzero(fg[sku_item] & at_dc)
    weeks = 0 if dense else 12
    fc_rows = np.repeat(fc_sku, weeks)
    week = np.tile(np.arange(weeks), len(fc_sku))
    tables["forecasts"] = _table(
        "forecasts",
        len(fc_rows),
        item_id=item_ids[sku_item[fc_rows]],
        warehouse_id=DC,
        forecast_date=t0 + 7 * week,
        qty=rng.integers(5, 30, len(fc_rows)).astype(np.float64),
    )

    # -- open purchase orders: 30% of bought PLANT SKUs, 1-2 lines -------------
    bought = np.flatnonzero(~made)
    po_item = bought[rng.random(len(bought)) < 0.3]
    po_lines = rng.integers(1, 3, len(po_item))
    po_rows = np.repeat(po_item, po_lines)
    n_po = len(po_rows)
    po_first = np.concatenate(([0], np.cumsum(po_lines)[:-1]))
    tables["purchase_lines"] = _table(
        "purchase_lines",
        n_po,
        order_id=np.repeat(_ids("PO-", np.arange(1, len(po_item) + 1), 8), po_lines),
        line_no=(np.arange(n_po) - np.repeat(po_first, po_lines) + 1).astype(np.float64),
        item_id=item_ids[po_rows],
        warehouse_id=PLANT,
        qty=rng.choice([50.0, 100.0, 200.0, 400.0], n_po),
        delivery_date=t0 + rng.integers(-5, 45, n_po),
    )

    for name in INPUT_TABLES:
        if name not in tables:
            tables[name] = _table(name, 0)
    return {name: tables[name] for name in INPUT_TABLES}


# -- loading into a database ------------------------------------------------------
def generate_clusters(
    n_skus: int,
    copies: int,
    seed: int = 42,
    plan_date: dt.date = DEFAULT_PLAN_DATE,
    dense: bool = False,
) -> dict[str, Table]:
    """``copies`` independent copies of :func:`generate_tables` (``n_skus``
    in all), item, order and BOM ids prefixed ``K{k}-`` from the second copy
    on, warehouses, calendars and groups shared: a business of several
    product families that share no component, which a partitioned plan cuts
    into that many clusters."""
    from masterplan.server.engine.validate import ITEM_COLUMN

    base = generate_tables(max(n_skus // max(copies, 1), 1), seed, plan_date, dense)
    out: dict[str, Table] = {name: dict(table) for name, table in base.items()}
    for k in range(1, copies):
        for name in ITEM_COLUMN:
            copy = dict(base[name])
            for col, values in copy.items():
                if col.endswith(("item_id", "order_id", "bom_id")) and values.dtype == object:
                    prefixed = np.strings.add(f"K{k}-", values.astype(np.dtypes.StringDType()))
                    copy[col] = np.where(values == None, None, prefixed.astype(object))  # noqa: E711
            out[name] = {c: np.concatenate([out[name][c], copy[c]]) for c in copy}
    return out


def _python_columns(
    name: str, table: Mapping[str, np.ndarray], *, iso_dates: bool
) -> list[list[Any]]:
    """The columns of ``table`` as lists of plain Python values (None for NULL).

    Conversion is per column with numpy's ``tolist`` (C speed), not per value.
    ``iso_dates`` gives dates as ISO strings, the way SQLAlchemy stores a
    ``Date`` in SQLite, for the raw ``sqlite3`` path.
    """
    out: list[list[Any]] = []
    for col in INPUT_TABLES[name].columns:
        arr = table[col.name]
        if col.kind is ColumnKind.STR:
            out.append(arr.tolist())
        elif col.kind is ColumnKind.DATE:
            if iso_dates:
                s = np.datetime_as_string(arr, unit="D").astype(object)
                s[np.isnat(arr)] = None
                out.append(s.tolist())
            else:
                out.append(arr.tolist())  # datetime.date, NaT -> None
        else:
            nan = np.isnan(arr)
            if col.kind is ColumnKind.INT:
                vals = np.where(nan, 0, arr).astype(np.int64).astype(object)
            else:
                vals = arr.astype(object)
            vals[nan] = None
            out.append(vals.tolist())
    return out


def _batches(n: int, batch: int) -> Iterator[slice]:
    for start in range(0, n, batch):
        yield slice(start, min(n, start + batch))


def write_database(
    tables: Mapping[str, Mapping[str, np.ndarray]],
    url: str | sa.Engine,
    batch: int = 50_000,
) -> dict[str, int]:
    """Create the §4 schema at ``url`` and insert ``tables``; returns rows per table.

    Existing rows of the input tables are deleted first, in the same
    transaction. SQLite goes through ``sqlite3.executemany`` on the raw
    connection (several times faster than SQLAlchemy's per-row parameter
    processing); other backends through SQLAlchemy Core ``executemany``
    (``insertmanyvalues`` on PostgreSQL and MariaDB).
    """
    engine = sa.create_engine(url) if isinstance(url, str) else url
    try:
        create_all(engine)
        counts: dict[str, int] = {}
        if engine.dialect.name == "sqlite":
            raw = engine.raw_connection()
            try:
                dbapi = raw.driver_connection
                assert isinstance(dbapi, sqlite3.Connection)
                cur = dbapi.cursor()
                for name, table in tables.items():
                    cols = INPUT_TABLES[name].column_names
                    cur.execute(f'DELETE FROM "{name}"')
                    values = _python_columns(name, table, iso_dates=True)
                    n = len(values[0]) if values else 0
                    sql = f'INSERT INTO "{name}" ({", ".join(cols)}) VALUES ({", ".join("?" * len(cols))})'
                    for part in _batches(n, batch):
                        cur.executemany(sql, zip(*(v[part] for v in values), strict=True))
                    counts[name] = n
                dbapi.commit()
            finally:
                raw.close()
            return counts
        with engine.begin() as conn:
            for name, table in tables.items():
                t = sql_table(name)
                cols = INPUT_TABLES[name].column_names
                conn.execute(t.delete())
                values = _python_columns(name, table, iso_dates=False)
                n = len(values[0]) if values else 0
                for part in _batches(n, batch):
                    rows = [
                        dict(zip(cols, row, strict=True))
                        for row in zip(*(v[part] for v in values), strict=True)
                    ]
                    conn.execute(t.insert(), rows)
                counts[name] = n
        return counts
    finally:
        if isinstance(url, str):
            engine.dispose()
