"""Tables as struct-of-arrays: the in-memory shape every package shares.

A table is a ``dict`` from column name to a one-dimensional numpy array, all
of one length. The dtype of a column follows its :class:`ColumnKind`: ids and
other text are ``object`` arrays of ``str`` (``None`` for NULL), numbers
``float64`` (``NaN`` for NULL; ``line_no``, ``priority`` and the 0/1 flags
included), dates ``datetime64[D]`` (``NaT`` for NULL; :data:`UNREADABLE_DATE`
for a value the SCM database holds that names no day).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from masterplan.contract.tables import ColumnKind, TableSpec

__all__ = [
    "UNREADABLE_DATE",
    "Table",
    "TableMap",
    "dtype_of",
    "empty_table",
    "table_length",
    "take",
]

#: One table as struct-of-arrays.
Table = dict[str, np.ndarray]
#: Tables by name.
TableMap = Mapping[str, Table]

#: The day a date column holds where the SCM database holds a value that
#: names no day: text such as ``'2026-02-30'`` or ``'soon'``, a MariaDB zero
#: date, PostgreSQL's ``infinity``, a year outside 1 to 9999. The connector
#: reads such a cell as this day, so that the row travels like any other
#: (the wire's 32-bit day numbers hold it: it is the one after NULL's, long
#: before any day a database holds), and the engine leaves the row out with
#: an ``INVALID_ROW`` message (SPEC §5.9), nullable column or not.
UNREADABLE_DATE = np.datetime64(-(2**31) + 1, "D")

_DTYPES = {
    ColumnKind.STR: np.dtype(object),
    ColumnKind.FLOAT: np.dtype(np.float64),
    ColumnKind.INT: np.dtype(np.float64),
    ColumnKind.DATE: np.dtype("datetime64[D]"),
}


def dtype_of(kind: ColumnKind) -> np.dtype:
    """The numpy dtype that holds a column of ``kind`` in memory."""
    return _DTYPES[kind]


def empty_table(spec: TableSpec) -> Table:
    """A zero-row table with the dtypes of ``spec``."""
    return {c.name: np.empty(0, dtype=dtype_of(c.kind)) for c in spec.columns}


def table_length(table: Mapping[str, object]) -> int:
    """Number of rows of ``table`` (0 for a table without columns)."""
    for col in table.values():
        return len(col)  # type: ignore[arg-type]
    return 0


def take(table: Table, index: np.ndarray) -> Table:
    """Rows ``index`` (a bool mask or int positions) of every column."""
    return {name: col[index] for name, col in table.items()}
