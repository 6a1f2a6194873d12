"""Conversion between database values and the in-memory column arrays.

The conventions are those of :mod:`masterplan.contract.tables`: ``STR`` columns are
``object`` arrays with ``None`` for NULL, ``FLOAT`` and ``INT`` columns are
``float64`` with ``NaN`` for NULL, ``DATE`` columns ``datetime64[D]`` with
``NaT`` for NULL. Reading and writing both go through this module so that the
two directions cannot drift apart.

Work is per column (numpy conversion or one list comprehension), never a
Python loop per row that touches every column.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import numpy as np

from masterplan.connector.errors import ColumnDataError
from masterplan.contract.columns import Table, dtype_of, empty_table, table_length
from masterplan.contract.tables import ColumnKind, ColumnSpec, TableSpec

__all__ = [
    "Table",
    "column_from_values",
    "column_to_values",
    "concat_chunks",
    "dtype_of",
    "empty_table",
    "null_mask",
    "table_length",
]


def concat_chunks(spec: TableSpec, chunks: Iterable[Mapping[str, np.ndarray]]) -> Table:
    """Concatenate chunks of ``spec``'s table into one table in canonical order.

    Args:
        spec: The table the chunks belong to.
        chunks: Chunks as yielded by :func:`connector.reader.iter_table_chunks`.

    Returns:
        One array per column of ``spec``; zero-length arrays when there are no
        chunks or all are empty.
    """
    parts: dict[str, list[np.ndarray]] = {c.name: [] for c in spec.columns}
    for chunk in chunks:
        for c in spec.columns:
            parts[c.name].append(chunk[c.name])
    if not any(len(p) for p in parts[spec.columns[0].name]):
        return empty_table(spec)
    return {
        c.name: np.concatenate(parts[c.name]).astype(dtype_of(c.kind), copy=False)
        for c in spec.columns
    }


# --- database values -> arrays -------------------------------------------------------


def column_from_values(table: str, column: ColumnSpec, values: Sequence[Any]) -> np.ndarray:
    """Convert one column of a fetched batch into its in-memory array.

    Drivers hand back what the database holds: ``Decimal`` for ``NUMERIC``,
    ``date`` or ``datetime`` for date columns, and on SQLite, which has no date
    type, ISO strings. All of them end up in the dtype of the conventions.

    Args:
        table: Table name, for error messages.
        column: The column's spec.
        values: The column's values of one batch, ``None`` for NULL.

    Returns:
        A 1-D array of ``len(values)`` elements.

    Raises:
        ColumnDataError: A value cannot be converted (e.g. text in a quantity
            column on SQLite); the message names table and column.
    """
    try:
        if column.kind is ColumnKind.STR:
            return _str_column(values)
        # numpy turns None into NaN / NaT, converts Decimal and int through
        # float(), and parses ISO date strings (with or without a time part).
        return np.array(values, dtype=dtype_of(column.kind))
    except (TypeError, ValueError) as exc:
        bad = _first_bad_value(column.kind, values)
        raise ColumnDataError(
            table,
            column.name,
            f"table {table!r}, column {column.name!r}: cannot read {bad!r} as "
            f"{column.kind.value} ({exc})",
        ) from exc


def _str_column(values: Sequence[Any]) -> np.ndarray:
    """Build an object array of ``str``/``None``, stringifying other id types.

    Ids are strings in §4, but an integrator may have declared one as an
    integer column; its values then become their decimal text.
    """
    array = np.empty(len(values), dtype=object)
    if all(v is None or type(v) is str for v in values):
        array[:] = values
    else:
        array[:] = [_to_str(v) for v in values]
    return array


def _to_str(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8")
    if isinstance(value, float | Decimal) and value == value and int(value) == value:
        return str(int(value))  # numbers print as integers (SPEC §4, refs)
    return str(value)


def _first_bad_value(kind: ColumnKind, values: Sequence[Any]) -> Any:
    """Find the value that made a whole-column conversion fail, for the message."""
    dtype = dtype_of(kind)
    for v in values:
        try:
            np.array([v], dtype=dtype)
        except (TypeError, ValueError):
            return v
    return None


# --- arrays -> database values -------------------------------------------------------


def null_mask(kind: ColumnKind, array: np.ndarray) -> np.ndarray:
    """Return a boolean array, ``True`` where ``array`` holds NULL for its kind."""
    if kind is ColumnKind.STR:
        return np.fromiter((v is None for v in array), dtype=bool, count=len(array))
    if kind is ColumnKind.DATE:
        return np.isnat(np.asarray(array, dtype="datetime64[D]"))
    return np.isnan(np.asarray(array, dtype=np.float64))


def column_to_values(kind: ColumnKind, array: np.ndarray) -> list[Any]:
    """Convert an in-memory column to plain Python values for a DB driver.

    Drivers do not know numpy scalars, so every value becomes ``str``,
    ``float``, ``int`` or ``datetime.date``, and NaN/NaT become ``None``.
    ``INT`` columns (``firmed``, ``delay_days``, counts) become ``int`` so that
    an integer column never receives ``1.0``.

    Args:
        kind: The column's kind.
        array: A 1-D array in the conventions (other numeric or datetime
            dtypes are accepted and converted).

    Returns:
        A list of ``len(array)`` Python values.
    """
    if kind is ColumnKind.STR:
        return [None if v is None else str(v) for v in np.asarray(array, dtype=object)]
    if kind is ColumnKind.DATE:
        # datetime64[D] -> object gives datetime.date, and NaT gives None.
        dates: list[Any] = np.asarray(array, dtype="datetime64[D]").astype(object).tolist()
        return dates
    floats = np.asarray(array, dtype=np.float64)
    mask = np.isnan(floats)
    if kind is ColumnKind.INT:
        out = np.where(mask, 0, np.rint(floats)).astype(np.int64).astype(object)
    else:
        out = floats.astype(object)
    if mask.any():
        out[mask] = None
    values: list[Any] = out.tolist()
    return values
