"""Which input rows changed between two versions of a data set, and which SKUs they name.

A net change starts from the SKUs whose own inputs changed (SPEC §6). Rows
are compared by content, so nothing depends on how the new version was
made (a delta, a snapshot, several of them): every column of a row is
turned into a dense integer code over both versions together, the codes of
a row into one row code, and a row is *touched* when its row code occurs a
different number of times in the two versions. In a table with a key, every
row that shares a key with a touched row is touched too: a new row with an
old row's key makes both ``DUPLICATE_KEY``, so the old one changes as well.

Tables that are the same objects in both versions (a delta leaves the tables
it does not change alone) cost nothing.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.dtypes import StringDType

from masterplan.contract.columns import Table, table_length
from masterplan.contract.tables import INPUT_TABLES
from masterplan.server.engine.arrays import unique_strings

__all__ = ["MASTER_TABLES", "SKU_COLUMNS", "changed_tables", "touched_rows"]

#: Tables whose rows no single SKU owns: a change to one of them may reach
#: any SKU, so a net change replans everything (SPEC §6).
MASTER_TABLES = (
    "warehouses",
    "calendars",
    "calendar_exceptions",
    "coverage_groups",
    "items",
    "boms",
    "bom_lines",
)

#: The (item, warehouse) column pairs by which a row of each table names SKUs (§5.2).
SKU_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "item_coverage": (("item_id", "warehouse_id"),),
    "on_hand": (("item_id", "warehouse_id"),),
    "sales_lines": (("item_id", "warehouse_id"),),
    "purchase_lines": (("item_id", "warehouse_id"),),
    "production_orders": (("item_id", "warehouse_id"),),
    "production_lines": (("component_item_id", "warehouse_id"),),
    "transfer_lines": (("item_id", "from_warehouse_id"), ("item_id", "to_warehouse_id")),
    "forecasts": (("item_id", "warehouse_id"),),
    "firmed_planned_orders": (("item_id", "warehouse_id"), ("item_id", "from_warehouse_id")),
}

_NAN_BITS = np.array([np.nan], dtype=np.float64).view(np.int64)[0]


def _same(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is b:
        return True
    if a is None or b is None or len(a) != len(b) or a.dtype != b.dtype:
        return False
    if a.dtype.kind == "f":
        return bool(np.array_equal(a, b, equal_nan=True))
    if a.dtype.kind == "M":
        return bool(np.array_equal(a.view(np.int64), b.view(np.int64)))
    return bool(np.all(a == b))


def changed_tables(old: Mapping[str, Table], new: Mapping[str, Table]) -> list[str]:
    """The input tables whose content differs (a missing table is an empty one)."""
    out = []
    for name, spec in INPUT_TABLES.items():
        a, b = old.get(name), new.get(name)
        if a is b:
            continue
        na = table_length(a) if a is not None else 0
        nb = table_length(b) if b is not None else 0
        if na == 0 and nb == 0:
            continue
        if na != nb or a is None or b is None:
            out.append(name)
            continue
        if not all(_same(a.get(c.name), b.get(c.name)) for c in spec.columns):
            out.append(name)
    return out


def _column_codes(values: np.ndarray) -> np.ndarray:
    """Dense int64 codes of one column: equal values (NULL with NULL) share one."""
    if values.dtype.kind == "f":
        bits = values.view(np.int64)
        keys = np.where(np.isnan(values), _NAN_BITS, bits)
    elif values.dtype.kind in "iuM":
        keys = values.view(np.int64) if values.dtype.kind == "M" else values.astype(np.int64)
    else:
        null = np.array([v is None for v in values.tolist()], dtype=bool)
        text = np.where(null, "", values).astype(StringDType())
        codes = unique_strings(text)[1]
        return codes * 2 + null
    return np.unique(keys, return_inverse=True)[1].reshape(-1).astype(np.int64)


def _row_codes(columns: list[np.ndarray]) -> np.ndarray:
    """Dense int64 codes of rows made of ``columns`` (equal rows, equal code)."""
    n = len(columns[0])
    code = np.zeros(n, dtype=np.int64)
    for col in columns:
        part = _column_codes(col)
        code = code * (int(part.max(initial=0)) + 1) + part
        code = np.unique(code, return_inverse=True)[1].reshape(-1).astype(np.int64)
    return code


def touched_rows(name: str, old: Table | None, new: Table | None) -> tuple[np.ndarray, np.ndarray]:
    """bool masks over the rows of ``old`` and ``new``: the rows of table
    ``name`` that are not in the other version (as a multiset), and those
    sharing a key with one."""
    spec = INPUT_TABLES[name]
    na = table_length(old) if old is not None else 0
    nb = table_length(new) if new is not None else 0
    if na == 0 or nb == 0:
        return np.ones(na, dtype=bool), np.ones(nb, dtype=bool)
    assert old is not None and new is not None

    def both(col: str) -> np.ndarray:
        a, b = old[col], new[col]
        if a.dtype != b.dtype:
            a, b = a.astype(object), b.astype(object)
        return np.concatenate([a, b])

    rows = _row_codes([both(c.name) for c in spec.columns])
    count = np.bincount(rows[:na], minlength=rows.max() + 1)
    count -= np.bincount(rows[na:], minlength=rows.max() + 1)
    touched = count[rows] != 0
    if spec.key and touched.any():
        keys = _row_codes([both(c) for c in spec.key])
        hit = np.zeros(int(keys.max()) + 1, dtype=bool)
        hit[keys[touched]] = True
        touched = hit[keys]
    return touched[:na], touched[na:]
