"""Exceptions of the SCM connector.

Every error that concerns a table names it, and the column when there is one,
so that an integrator can fix the database without reading a traceback: the
CLI prints ``str(error)`` as its one-line reason.
"""

from __future__ import annotations

__all__ = [
    "BaseRunChanged",
    "ColumnDataError",
    "ConnectorError",
    "InvalidResult",
    "SchemaMismatch",
    "TableError",
]


class ConnectorError(Exception):
    """Base class of every error the connector raises on purpose."""


class TableError(ConnectorError):
    """An error about one table (and maybe one of its columns).

    Attributes:
        table: Name of the offending table.
        column: Name of the offending column, or ``None`` when the whole
            table is concerned.
        message: Human-readable reason; it names the table and column.
    """

    def __init__(self, table: str, column: str | None, message: str) -> None:
        super().__init__(message)
        self.table = table
        self.column = column
        self.message = message

    def __reduce__(self) -> tuple[type[TableError], tuple[str, str | None, str]]:
        # Keeps the three attributes through pickling (e.g. across processes).
        return (type(self), (self.table, self.column, self.message))


class SchemaMismatch(TableError):
    """The SCM database lacks a §4 table or column.

    A run cannot produce a meaningful plan without it (SPEC §5.9), so it fails
    before anything is read or written.
    """


class ColumnDataError(TableError):
    """A value read from the database cannot be converted to its column kind.

    For example text in a quantity column of a SQLite database, which SQLite's
    type affinity lets through.
    """


class InvalidResult(TableError):
    """Plan results handed to the writer do not match the §4 result tables.

    Raised before the database is touched, or, for a result written as it
    arrives, before the commit: either way nothing is written.
    """


class BaseRunChanged(ConnectorError):
    """A difference was computed against a plan the database no longer holds.

    Another run was written to the plan between the start of this run and
    its write; writing the difference would corrupt the plan, so nothing is
    written and the run must be planned again.
    """

    def __init__(self, plan_id: str, base_run_id: str, current: str | None) -> None:
        super().__init__(
            f"plan {plan_id!r}: the result is a difference to run {base_run_id!r}, but the "
            f"database now holds run {current!r}; nothing was written: run again"
        )
        self.plan_id = plan_id
        self.base_run_id = base_run_id
        self.current = current
