"""Conversion between rows (dicts) and struct-of-arrays tables.

For tests, examples and small data sets; never on the hot path of a large
run, where data arrives as columns.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from masterplan.contract.coded import Coded, as_array
from masterplan.contract.columns import Table
from masterplan.contract.tables import ColumnKind, TableSpec

__all__ = ["from_rows", "to_rows"]


def _date(value: Any) -> np.datetime64:
    if value is None:
        return np.datetime64("NaT", "D")
    if isinstance(value, dt.datetime):
        value = value.date()
    return np.datetime64(value, "D")


def from_rows(spec: TableSpec, rows: Iterable[Mapping[str, Any]]) -> Table:
    """Build a table from row mappings; missing columns are NULL."""
    rows = list(rows)
    out: Table = {}
    for c in spec.columns:
        values = [r.get(c.name) for r in rows]
        if c.kind is ColumnKind.STR:
            arr = np.empty(len(values), dtype=object)
            arr[:] = [None if v is None else str(v) for v in values]
        elif c.kind is ColumnKind.DATE:
            arr = np.array([_date(v) for v in values], dtype="datetime64[D]")
        else:
            arr = np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
        out[c.name] = arr
    return out


def to_rows(
    table: Mapping[str, np.ndarray | Coded], spec: TableSpec | None = None
) -> list[dict[str, Any]]:
    """Rows of a table as plain Python values (``None`` for NULL, ISO dates as ``date``).

    With ``spec``, INT columns come back as ``int``.
    """
    names = list(table)
    n = len(next(iter(table.values()))) if table else 0
    cols: dict[str, list[Any]] = {}
    for name in names:
        col = as_array(table[name])
        kind = spec.column(name).kind if spec is not None and name in spec.column_names else None
        if col.dtype.kind == "M":
            cols[name] = [None if np.isnat(v) else v.astype(dt.date) for v in col]
        elif col.dtype.kind == "f":
            if kind is ColumnKind.INT:
                cols[name] = [None if np.isnan(v) else int(v) for v in col]
            else:
                cols[name] = [None if np.isnan(v) else float(v) for v in col]
        else:
            cols[name] = [
                None if v is None else (str(v) if col.dtype == object else v) for v in col
            ]
    return [{name: cols[name][i] for name in names} for i in range(n)]
