"""Write plan results into the SCM database atomically.

One run's rows, its ``plan_runs`` row and the switch of ``plans.current_run_id``
go in one transaction (SPEC §4, §7): readers see either the previous complete
plan or the new complete plan, never a part of one, and a failure anywhere —
an exception, a killed process, a lost connection — leaves the previous plan
current. Rows are sent in bounded batches; on PostgreSQL with psycopg 3 they
stream through ``COPY``, elsewhere through ``executemany``.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from masterplan.connector.columns import column_to_values, null_mask, table_length
from masterplan.connector.errors import InvalidResult
from masterplan.connector.schema import sql_table, table_spec, verify_schema
from masterplan.contract.tables import PLAN_OUTPUT_TABLES, RESULT_TABLES, TableSpec

__all__ = ["DEFAULT_BATCH_ROWS", "RUN_MODES", "RunRecord", "prune_runs", "write_run"]

#: Rows per insert batch: bounds the Python row objects alive at a time.
DEFAULT_BATCH_ROWS = 10_000

RUN_MODES: tuple[str, ...] = ("regeneration", "net_change")

RunMode = Literal["regeneration", "net_change"]

# plan_runs count column of each output table.
_COUNT_COLUMNS: dict[str, str] = {
    "planned_orders": "planned_order_count",
    "pegging": "pegging_count",
    "action_messages": "action_message_count",
    "delay_messages": "delay_message_count",
    "plan_messages": "plan_message_count",
}

# Bind parameters per DELETE ... IN (...) statement, well under every
# backend's limit (SQLite's is the lowest).
_DELETE_BATCH = 500


@dataclass(frozen=True, slots=True)
class RunRecord:
    """What the ``plan_runs`` row says about one completed run.

    Attributes:
        run_id: Unique id of the run; writing it twice is a no-op.
        plan_id: The plan whose current version the run becomes.
        mode: ``regeneration`` or ``net_change``.
        plan_date: The run's plan date ``T0``.
        started_at: When planning started, in UTC (a naive value is taken as UTC).
        finished_at: When planning finished, in UTC (a naive value is taken as UTC).
    """

    run_id: str
    plan_id: str
    mode: RunMode
    plan_date: dt.date
    started_at: dt.datetime
    finished_at: dt.datetime

    def __post_init__(self) -> None:
        if not self.run_id:
            raise ValueError("run_id must not be empty")
        if not self.plan_id:
            raise ValueError("plan_id must not be empty")
        if self.mode not in RUN_MODES:
            raise ValueError(f"mode must be one of {RUN_MODES}, got {self.mode!r}")
        if isinstance(self.plan_date, dt.datetime) or not isinstance(self.plan_date, dt.date):
            raise ValueError(f"plan_date must be a datetime.date, got {self.plan_date!r}")


def format_timestamp(value: dt.datetime) -> str:
    """Format a timestamp for ``plan_runs.started_at``/``finished_at``.

    The columns are strings in §4, so the format is fixed — UTC, ISO 8601,
    microseconds, ``+00:00`` — which makes them sort in time order as text.
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds")


def write_run(
    engine: Engine,
    run: RunRecord,
    results: Mapping[str, Mapping[str, np.ndarray]],
    *,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    on_rows: Callable[[str, int], None] | None = None,
) -> bool:
    """Store one run's results and make it the plan's current version.

    In one transaction: the ``plan_runs`` row (status ``completed`` with the
    five counts), every row of the five output tables with ``run_id`` added,
    and the upsert of ``plans`` with ``current_run_id = run.run_id``.

    Args:
        engine: Engine of the SCM database.
        run: The run's record.
        results: Each of ``PLAN_OUTPUT_TABLES`` -> its columns *without*
            ``run_id``, in the in-memory conventions.
        batch_rows: Rows per insert batch (memory bound).
        on_rows: Called with the table name and row count of every batch
            written, for progress displays.

    Returns:
        ``True`` if the run was written, ``False`` if ``plan_runs`` already
        had ``run.run_id`` (a replay; nothing is changed).

    Raises:
        InvalidResult: ``results`` does not match the result tables (missing
            table or column, unequal lengths, NULL where §4 allows none);
            raised before the database is touched.
        SchemaMismatch: A result table or column is missing in the database.
        sqlalchemy.exc.SQLAlchemyError: The database refused the write; the
            transaction is rolled back and the previous plan stays current.
    """
    if batch_rows <= 0:
        raise ValueError(f"batch_rows must be positive, got {batch_rows}")
    counts = _validate_results(results)
    verify_schema(engine, RESULT_TABLES)
    if _run_exists(engine, run.run_id):
        return False
    try:
        with engine.begin() as conn:
            # plan_runs first: its primary key makes a concurrent writer of the
            # same run wait here (PostgreSQL, InnoDB) and then fail, instead of
            # both inserting all result rows.
            conn.execute(sql_table("plan_runs").insert(), [_plan_run_row(run, counts)])
            for name in PLAN_OUTPUT_TABLES:
                _insert_rows(conn, table_spec(name), run.run_id, results[name], batch_rows, on_rows)
            _set_current_run(conn, run.plan_id, run.run_id)
    except sa.exc.IntegrityError:
        if _run_exists(engine, run.run_id):
            return False  # lost the race against a replay of the same run
        raise
    return True


def _validate_results(results: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, int]:
    """Check the results against the result specs; return each table's row count.

    Validation happens before any SQL so that a malformed result fails with a
    message naming table and column and leaves the database untouched.
    """
    counts: dict[str, int] = {}
    for name in PLAN_OUTPUT_TABLES:
        if name not in results:
            raise InvalidResult(name, None, f"results lack table {name!r}")
        spec, table = RESULT_TABLES[name], results[name]
        expected = [c for c in spec.columns if c.name != "run_id"]
        unknown = sorted(set(table) - {c.name for c in expected})
        if unknown:
            hint = " (the writer adds run_id)" if unknown[0] == "run_id" else ""
            raise InvalidResult(
                name, unknown[0], f"table {name!r}: unexpected column {unknown[0]!r}{hint}"
            )
        n = table_length(table)
        for column in expected:
            if column.name not in table:
                raise InvalidResult(
                    name, column.name, f"table {name!r} lacks column {column.name!r}"
                )
            array = np.asarray(table[column.name])
            if array.ndim != 1 or len(array) != n:
                raise InvalidResult(
                    name,
                    column.name,
                    f"table {name!r}, column {column.name!r}: shape {array.shape}, expected ({n},)",
                )
            if not column.nullable and n and null_mask(column.kind, array).any():
                raise InvalidResult(
                    name, column.name, f"table {name!r}, column {column.name!r}: NULL not allowed"
                )
        counts[name] = n
    return counts


def _run_exists(bind: Engine | Connection, run_id: str) -> bool:
    runs = sql_table("plan_runs")
    query = sa.select(runs.c.run_id).where(runs.c.run_id == run_id)
    if isinstance(bind, Connection):
        return bind.execute(query).first() is not None
    with bind.connect() as conn:
        return conn.execute(query).first() is not None


def _plan_run_row(run: RunRecord, counts: Mapping[str, int]) -> dict[str, Any]:
    row: dict[str, Any] = {
        "run_id": run.run_id,
        "plan_id": run.plan_id,
        "mode": run.mode,
        "plan_date": run.plan_date,
        "status": "completed",
        "started_at": format_timestamp(run.started_at),
        "finished_at": format_timestamp(run.finished_at),
    }
    row.update({_COUNT_COLUMNS[name]: int(n) for name, n in counts.items()})
    return row


def _iter_batches(
    spec: TableSpec, run_id: str, table: Mapping[str, np.ndarray], batch_rows: int
) -> Iterator[tuple[list[str], list[list[Any]]]]:
    """Yield ``(column names, column value lists)`` per batch, ``run_id`` first.

    Converting a batch column by column keeps the numpy work vectorised and the
    Python objects bounded by ``batch_rows``.
    """
    columns = [c for c in spec.columns if c.name != "run_id"]
    names = ["run_id", *(c.name for c in columns)]
    n = table_length(table)
    for start in range(0, n, batch_rows):
        stop = min(start + batch_rows, n)
        values = [[run_id] * (stop - start)]
        values.extend(
            column_to_values(c.kind, np.asarray(table[c.name])[start:stop]) for c in columns
        )
        yield names, values


def _insert_rows(
    conn: Connection,
    spec: TableSpec,
    run_id: str,
    table: Mapping[str, np.ndarray],
    batch_rows: int,
    on_rows: Callable[[str, int], None] | None = None,
) -> None:
    """Insert one output table's rows for ``run_id`` inside the open transaction."""
    copy = _copy_writer(conn)
    target = sql_table(spec.name)
    preparer = conn.dialect.identifier_preparer
    stage = preparer.quote(f"mp_stage_{spec.name}")
    if copy is not None:
        # COPY into a staging table that lives until the commit, then one
        # set-based INSERT: the result table is written in one statement.
        conn.exec_driver_sql(
            f"CREATE TEMPORARY TABLE {stage} "
            f"(LIKE {preparer.format_table(target)} INCLUDING DEFAULTS) ON COMMIT DROP"
        )
    load = _load_data_writer(conn) if copy is None else None
    names: Sequence[str] = ()
    for names, values in _iter_batches(spec, run_id, table, batch_rows):
        if copy is not None:
            copy(stage, names, values)
        elif load is not None:
            load(target, names, values)
        else:
            # Positional tuples straight to the driver's executemany: no dict
            # per row and no per-row parameter processing (2-3x faster than
            # Core's insert() with dicts; PyMySQL turns it into multi-row
            # INSERTs).
            conn.exec_driver_sql(_insert_sql(conn, target, names), list(zip(*values, strict=True)))
        if on_rows is not None:
            on_rows(spec.name, len(values[0]) if values else 0)
    if copy is not None:
        columns = ", ".join(preparer.quote(name) for name in names)
        if columns:
            conn.exec_driver_sql(
                f"INSERT INTO {preparer.format_table(target)} ({columns}) "
                f"SELECT {columns} FROM {stage}"
            )
        conn.exec_driver_sql(f"DROP TABLE {stage}")


def _tsv_field(value: Any) -> str:
    """One field of MySQL's default ``LOAD DATA`` text format (``\\N`` is NULL)."""
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
    if isinstance(value, float):
        return repr(value)
    return str(value)  # int, date (ISO)


def _load_data_writer(
    conn: Connection,
) -> Callable[[sa.Table, Sequence[str], Sequence[list[Any]]], None] | None:
    """A ``LOAD DATA LOCAL INFILE`` batch writer on MariaDB/MySQL, else ``None``.

    PyMySQL escapes every parameter in Python, which held writes to about 50k
    rows/s; loading a temporary text file is several times faster, and on
    InnoDB it is part of the open transaction like any insert. It needs the
    connection opened with ``local_infile`` (see
    :func:`connector.schema.create_engine`) and the server's ``local_infile``
    on; otherwise the ``executemany`` path is used.
    """
    if conn.dialect.name not in ("mysql", "mariadb"):
        return None
    driver_conn = conn.connection.driver_connection
    if not getattr(driver_conn, "_local_infile", False):
        return None
    preparer = conn.dialect.identifier_preparer

    def load(target: sa.Table, names: Sequence[str], values: Sequence[list[Any]]) -> None:
        columns = ", ".join(preparer.quote(name) for name in names)
        with tempfile.NamedTemporaryFile("w", suffix=".tsv", encoding="utf-8", newline="\n") as f:
            f.writelines(
                "\t".join(map(_tsv_field, row)) + "\n" for row in zip(*values, strict=True)
            )
            f.flush()
            path = f.name.replace("\\", "\\\\").replace("'", "\\'")
            statement = (
                f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE {preparer.format_table(target)} "
                f"CHARACTER SET utf8mb4 ({columns})"
            )
            stored = conn.exec_driver_sql(statement).rowcount
        # LOCAL implies IGNORE: the server turns refused rows into warnings
        # instead of errors. A load that stored fewer rows, or warned at all
        # (a truncated value, a failed CHECK), fails the write like an error.
        sent = len(values[0]) if values else 0
        warning = conn.exec_driver_sql("SHOW WARNINGS LIMIT 1").first()
        if stored != sent or warning is not None:
            detail = f"{warning[2]}" if warning is not None else "rows were refused"
            raise sa.exc.DatabaseError(
                statement,
                None,
                RuntimeError(f"{target.name}: stored {stored} of {sent} rows: {detail}"),
            )

    return load


def _insert_sql(conn: Connection, target: sa.Table, names: Sequence[str]) -> str:
    """A plain positional INSERT in the driver's parameter style."""
    preparer = conn.dialect.identifier_preparer
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    columns = ", ".join(preparer.quote(name) for name in names)
    marks = ", ".join(mark for _ in names)
    return f"INSERT INTO {preparer.format_table(target)} ({columns}) VALUES ({marks})"


def _copy_writer(
    conn: Connection,
) -> Callable[[str, Sequence[str], Sequence[list[Any]]], None] | None:
    """Return a COPY-based batch writer on PostgreSQL with psycopg 3, else ``None``.

    ``COPY FROM STDIN`` is several times faster than multi-row ``INSERT`` for
    large result tables, and it runs on the same DBAPI connection, hence in
    the same transaction as everything else the writer does.
    """
    if conn.dialect.name != "postgresql" or conn.dialect.driver != "psycopg":
        return None
    preparer = conn.dialect.identifier_preparer
    dbapi_error: type[Exception] = conn.dialect.loaded_dbapi.Error
    driver_conn = conn.connection.driver_connection
    if driver_conn is None:  # pragma: no cover - only for detached connections
        return None

    def copy(table: str, names: Sequence[str], values: Sequence[list[Any]]) -> None:
        columns = ", ".join(preparer.quote(name) for name in names)
        statement = f"COPY {table} ({columns}) FROM STDIN"
        try:
            with driver_conn.cursor() as cursor, cursor.copy(statement) as pipe:
                for row in zip(*values, strict=True):
                    pipe.write_row(row)
        except dbapi_error as exc:
            # Same exception types as the executemany path (IntegrityError, ...).
            raise sa.exc.DBAPIError.instance(
                statement, None, exc, dbapi_error, dialect=conn.dialect
            ) from exc

    return copy


def _set_current_run(conn: Connection, plan_id: str, run_id: str) -> None:
    """Upsert ``plans`` so that ``run_id`` is the plan's current run."""
    plans = sql_table("plans")
    values = {"plan_id": plan_id, "current_run_id": run_id}
    dialect = conn.dialect.name
    statement: Any
    if dialect == "postgresql":
        statement = postgresql.insert(plans).values(values)
        statement = statement.on_conflict_do_update(
            index_elements=[plans.c.plan_id], set_={"current_run_id": run_id}
        )
    elif dialect == "sqlite":
        statement = sqlite.insert(plans).values(values)
        statement = statement.on_conflict_do_update(
            index_elements=[plans.c.plan_id], set_={"current_run_id": run_id}
        )
    elif dialect in ("mysql", "mariadb"):
        statement = mysql.insert(plans).values(values)
        statement = statement.on_duplicate_key_update(current_run_id=run_id)
    else:
        updated = conn.execute(
            plans.update().where(plans.c.plan_id == plan_id).values(current_run_id=run_id)
        )
        if updated.rowcount:
            return
        statement = plans.insert().values(values)
    conn.execute(statement)


def prune_runs(engine: Engine, plan_id: str, keep: int) -> list[str]:
    """Delete the rows of all but the newest ``keep`` runs of a plan.

    Result rows of earlier runs stay until pruned (SPEC §4); this bounds the
    result tables. The plan's current run is never deleted, even when it is
    not among the newest ``keep`` (or ``keep`` is 0). Runs are ordered by
    ``finished_at``, then ``run_id``.

    Args:
        engine: Engine of the SCM database.
        plan_id: The plan whose runs to prune.
        keep: How many of the newest runs to keep (besides the current one).

    Returns:
        The ids of the deleted runs.

    Raises:
        ValueError: ``keep`` is negative.
        SchemaMismatch: A result table or column is missing.
    """
    if keep < 0:
        raise ValueError(f"keep must not be negative, got {keep}")
    verify_schema(engine, RESULT_TABLES)
    plans, runs = sql_table("plans"), sql_table("plan_runs")
    with engine.begin() as conn:
        # Lock the plan's row so that a concurrent write_run cannot switch the
        # current run between our read and our delete (no-op on SQLite, whose
        # writers are serialised anyway).
        current = conn.execute(
            sa.select(plans.c.current_run_id).where(plans.c.plan_id == plan_id).with_for_update()
        ).scalar_one_or_none()
        run_ids = (
            conn.execute(
                sa.select(runs.c.run_id)
                .where(runs.c.plan_id == plan_id)
                .order_by(runs.c.finished_at.desc(), runs.c.run_id.desc())
            )
            .scalars()
            .all()
        )
        doomed = [r for r in run_ids[keep:] if r != current]
        for start in range(0, len(doomed), _DELETE_BATCH):
            batch = doomed[start : start + _DELETE_BATCH]
            for name in (*PLAN_OUTPUT_TABLES, "plan_runs"):
                table = sql_table(name)
                conn.execute(table.delete().where(table.c.run_id.in_(batch)))
    return doomed
