"""Write plan results into the SCM database atomically.

One run's rows, its ``plan_runs`` row and the switch of ``plans.current_run_id``
go in one transaction (SPEC §4, §7): readers see either the previous complete
plan or the new complete plan, never a part of one, and a failure anywhere —
an exception, a killed process, a lost connection — leaves the previous plan
current. Rows are sent in bounded batches; on PostgreSQL with psycopg 3 they
stream through ``COPY``; on MariaDB/MySQL through PyMySQL as multi-row
``INSERT`` statements built column by column (or ``LOAD DATA LOCAL INFILE``
where the URL opts in, see :func:`connector.schema.create_engine`);
elsewhere through ``executemany``.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import tempfile
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from itertools import pairwise
from typing import Any, Literal

import numpy as np
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from masterplan.connector.columns import (
    batch_values,
    cells_of,
    column_to_values,
    null_mask,
    table_length,
)
from masterplan.connector.copybinary import (
    HEADER,
    TRAILER,
    Wire,
    copy_binary,
    load_row_loop,
    wire_types,
)
from masterplan.connector.copytext import copy_text
from masterplan.connector.errors import BaseRunChanged, InvalidResult, SchemaMismatch
from masterplan.connector.schema import (
    OLD_LAYOUT_HINT,
    Statement,
    drop_plain_indexes,
    make_indexes,
    old_layout_tables,
    present_tables,
    sql_table,
    table_spec,
    verify_schema,
)
from masterplan.connector.sender import Sender
from masterplan.contract.coded import Coded, CodedTable, as_array, may_hold_none
from masterplan.contract.tables import (
    BOOKKEEPING_COLUMNS,
    PLAN_OUTPUT_TABLES,
    RESULT_TABLES,
    ColumnKind,
    ColumnSpec,
    TableSpec,
)

__all__ = [
    "DEFAULT_BATCH_ROWS",
    "RUN_MODES",
    "ResultWrite",
    "RunRecord",
    "WriteReport",
    "check_result_layout",
    "current_run_id",
    "prepare_write",
    "prune_runs",
    "write_run",
    "writes_by_copy",
    "writes_in_index_order",
]

#: Rows per insert batch: bounds the Python row objects alive at a time.
DEFAULT_BATCH_ROWS = 10_000

#: Rows one SQLite INSERT carries (``VALUES (...), (...), ...``). A
#: statement per row has the driver bind, step and reset each row through
#: SQLite's API, each call taking the connection's mutex; a statement of many
#: rows is stepped once for all of them. The 100k-SKU result written in one
#: process, alternated: 16 rows a statement 15-17 % faster than one, 100
#: rows 18-31 %, 400 rows 17-18 % (``docs/performance.md``).
SQLITE_ROWS_PER_STATEMENT = 100

#: SQLite's limit on a statement's variables before 3.32, where the
#: connection cannot say its own.
_SQLITE_OLD_MAX_VARIABLES = 999

#: Rows per COPY payload on PostgreSQL (a few MB of text).
_COPY_ROWS = 50_000

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

#: Most bytes of one multi-row INSERT on MariaDB/MySQL (less where the
#: server's ``max_allowed_packet`` is smaller): a few MB amortise the round
#: trips, larger statements gain nothing and cost the server memory.
_INSERT_STATEMENT_BYTES = 4 << 20

#: MariaDB/MySQL errors that mean "LOAD DATA LOCAL INFILE is not allowed":
#: ER_NOT_ALLOWED_COMMAND (1148), MySQL 8's ER_CLIENT_LOCAL_FILES_DISABLED
#: (3948) and MariaDB's ER_LOAD_INFILE_CAPABILITY_DISABLED (4166). They
#: refuse the statement before it reads anything, and leave the transaction
#: open.
_LOCAL_INFILE_REFUSED = frozenset({1148, 3948, 4166})

#: Engines whose server refused ``LOAD DATA LOCAL INFILE``: their writes go
#: through INSERTs from then on, without asking again.
_infile_refused: weakref.WeakSet[Engine] = weakref.WeakSet()

_log = logging.getLogger(__name__)


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


@dataclass(frozen=True, slots=True)
class WriteReport:
    """What :func:`write_run` did.

    Attributes:
        written: ``False`` when ``plan_runs`` already had the run (a replay:
            nothing changed).
        difference: The plan's rows were changed by the difference (``True``)
            or replaced (``False``).
        rows_added: Result rows inserted, all tables together.
        rows_removed: Result rows deleted, all tables together.
    """

    written: bool
    difference: bool = False
    rows_added: int = 0
    rows_removed: int = 0

    def __bool__(self) -> bool:
        return self.written


def writes_by_copy(bind: Engine | Connection) -> bool:
    """Whether a write into ``bind`` goes by ``COPY`` (PostgreSQL through
    psycopg): its payloads take text coded, as a chunk crosses the wire,
    and are laid out by a compiled loop.

    ``COPY FROM STDIN`` is several times faster than multi-row ``INSERT``
    for large result tables, and it runs on the same DBAPI connection,
    hence in the same transaction as everything else the writer does.
    """
    return bind.dialect.name == "postgresql" and bind.dialect.driver == "psycopg"


def prepare_write(engine: Engine) -> threading.Thread | None:
    """Start making ready, on a thread, what a write into ``engine`` needs at
    its first chunk: on PostgreSQL through psycopg, the compiled loop of the
    binary ``COPY`` payloads (:func:`~connector.copybinary.load_row_loop`,
    0.3 s). Called before a run, it loads while the server plans, when the
    connector has nothing else to do; the thread, if any, is returned."""
    if not writes_by_copy(engine):
        return None
    thread = threading.Thread(target=_load_row_loop, name="masterplan-row-loop")
    thread.start()
    return thread


def _load_row_loop() -> None:
    try:
        load_row_loop()
    except Exception:  # the first payload loads it again, and raises there
        _log.debug("loading the COPY row loop ahead failed", exc_info=True)


def write_run(
    engine: Engine,
    run: RunRecord,
    results: Mapping[str, Mapping[str, np.ndarray]],
    *,
    removed: Mapping[str, Mapping[str, np.ndarray]] | None = None,
    base_run_id: str | None = None,
    plan_counts: Mapping[str, int] | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    on_rows: Callable[[str, int], None] | None = None,
) -> WriteReport:
    """Make the plan's rows in the result tables equal to one run's result.

    In one transaction (SPEC §4): the ``plan_runs`` row, the plan's rows of
    the five output tables, and ``plans.current_run_id = run.run_id``.
    Readers see the previous plan or the new one, never a mix. A result that
    arrives in pieces is written by :class:`ResultWrite`, which this uses.

    Two ways to get there:

    * ``base_run_id`` given: ``results`` holds the rows *added* and
      ``removed`` the rows *removed* since the result of ``base_run_id``
      (whole rows; every copy of a removed row goes). Written only when the
      database still holds that plan (``plans.current_run_id`` is
      ``base_run_id``); otherwise :class:`BaseRunChanged`, and nothing is
      written.
    * otherwise ``results`` is the whole result and replaces all of the
      plan's rows.

    Args:
        engine: Engine of the SCM database.
        run: The run's record.
        results: Each of ``PLAN_OUTPUT_TABLES`` -> its columns without
            ``plan_id`` and ``run_id``, in the in-memory conventions.
        removed: With ``base_run_id``: the removed rows, same shape.
        base_run_id: The run whose plan ``results`` and ``removed`` change.
        plan_counts: Rows per table of the whole plan after the run, for the
            ``plan_runs`` counts; needed with ``base_run_id`` (the server's
            summary has them), otherwise the lengths of ``results``.
        batch_rows: Rows per insert batch (memory bound).
        on_rows: Called with the table name and row count of every batch
            written, for progress displays.

    Returns:
        What was written; falsy for a replay of a run already written.

    Raises:
        InvalidResult: ``results`` or ``removed`` does not match the result
            tables; raised before the database is touched.
        BaseRunChanged: the database no longer holds ``base_run_id``'s plan.
        SchemaMismatch: A result table or column is missing in the database.
        sqlalchemy.exc.SQLAlchemyError: The database refused the write; the
            transaction is rolled back and the previous plan stays current.
    """
    counts = _validate_results(results)
    removed_counts = _validate_results(removed) if removed is not None else {}
    if base_run_id is not None and (removed is None or plan_counts is None):
        raise ValueError("a difference needs removed and plan_counts")
    with ResultWrite(
        engine,
        run,
        plan_counts=plan_counts if plan_counts is not None else counts,
        rows_added=sum(counts.values()),
        base_run_id=base_run_id,
        rows_removed=sum(removed_counts.values()),
        batch_rows=batch_rows,
        on_rows=on_rows,
    ) as write:
        # Checked above, before the database was touched: not again.
        if removed is not None and base_run_id is not None:
            for name in PLAN_OUTPUT_TABLES:
                write._remove(name, removed[name], removed_counts[name])
        for name in PLAN_OUTPUT_TABLES:
            write._add(name, results[name], counts[name])
        return write.commit()


class ResultWrite:
    """One run's result written as it arrives, in one transaction (SPEC §4).

    A connector that streams a run's result from the server writes each
    chunk as it comes (:meth:`remove`, :meth:`add`) and commits (:meth:`commit`)
    after the last one, so that it never holds the whole result: its memory
    is a few chunks' (on PostgreSQL, those queued for the write's thread,
    :mod:`connector.sender`), whatever the plan's size. Until the commit nothing is
    visible; leaving the ``with`` block without committing (an exception, a
    stream that broke off) rolls everything back and the previous plan
    stays current.

    Opening it (``with``) starts the transaction as :func:`write_run` does:
    the ``plan_runs`` row first, with the counts the run declares, then the
    plan's ``plans`` row locked; for a difference, the database must still
    hold the plan of ``base_run_id`` (else :class:`BaseRunChanged`), for a
    whole result the plan's rows are deleted. A run already written (a
    replay) opens as :attr:`written` False: then the chunks are ignored and
    :meth:`commit` changes nothing.

    Args:
        engine: Engine of the SCM database.
        run: The run's record.
        plan_counts: Rows per output table of the whole plan after the run
            (``plan_runs`` counts); for a whole result, also what the added
            rows must amount to.
        rows_added: Rows the run adds, all tables together.
        base_run_id: The run whose plan the chunks change; None for a whole result.
        rows_removed: Rows the difference removes, all tables together.
        batch_rows: Rows per insert batch (memory bound).
        on_rows: Called with the table name and row count of every batch
            written or deleted, for progress displays.

    Raises:
        InvalidResult: A chunk does not match its result table, a removed
            chunk follows added rows of its table, or the chunks do not
            amount to what the run declared (checked at the commit).
    """

    def __init__(
        self,
        engine: Engine,
        run: RunRecord,
        *,
        plan_counts: Mapping[str, int],
        rows_added: int,
        base_run_id: str | None = None,
        rows_removed: int = 0,
        batch_rows: int = DEFAULT_BATCH_ROWS,
        on_rows: Callable[[str, int], None] | None = None,
    ) -> None:
        if batch_rows <= 0:
            raise ValueError(f"batch_rows must be positive, got {batch_rows}")
        if set(plan_counts) != set(PLAN_OUTPUT_TABLES):
            raise ValueError(f"plan_counts must count each of {PLAN_OUTPUT_TABLES}")
        self.engine = engine
        self.run = run
        self.base_run_id = base_run_id
        self.plan_counts = {name: int(n) for name, n in plan_counts.items()}
        self.rows_added = rows_added
        self.rows_removed = rows_removed if base_run_id is not None else 0
        self.batch_rows = batch_rows
        self.on_rows = on_rows
        #: False for a replay of a run already written (known once open).
        self.written = True
        self._conn: Connection | None = None
        self._tx: sa.RootTransaction | None = None
        self._inserter: _Inserter | None = None
        #: A COPY write's statements, run on a thread (:meth:`_sending_for`).
        self._sending: _Sending | None = None
        #: Tables ended on that thread, whose ``COPY`` a rollback may find
        #: still open (their end queued, then skipped).
        self._ending: list[_Inserter] = []
        self._added = dict.fromkeys(PLAN_OUTPUT_TABLES, 0)
        self._removed = 0
        self._gone = 0

    def __enter__(self) -> ResultWrite:
        check_result_layout(self.engine)
        if _run_exists(self.engine, self.run.run_id):
            self.written = False
            return self
        conn = self.engine.connect()
        tx = conn.begin()
        self._conn, self._tx = conn, tx
        try:
            self._start(conn)
        except BaseException as exc:
            self._rollback()
            if isinstance(exc, sa.exc.IntegrityError) and _run_exists(self.engine, self.run.run_id):
                self.written = False  # lost the race against a replay of the same run
                return self
            raise
        return self

    def _start(self, conn: Connection) -> None:
        # plan_runs first: its primary key makes a concurrent writer of the
        # same run wait here (PostgreSQL, InnoDB) and then fail, instead of
        # both writing all result rows.
        run = self.run
        row = _plan_run_row(
            run, self.plan_counts, self.base_run_id, self.rows_added, self.rows_removed
        )
        conn.execute(sql_table("plan_runs").insert(), [row])
        current = _lock_plan(conn, run.plan_id)
        if self.base_run_id is not None:
            if current != self.base_run_id:
                raise BaseRunChanged(run.plan_id, self.base_run_id, current)
        else:
            self._gone = _delete_plan(conn, run.plan_id)
            _set_removed(conn, run.run_id, self._gone)

    def __exit__(self, *exc_info: object) -> None:
        self._rollback()

    def _rollback(self) -> None:
        """End the transaction unless committed: nothing of it stays."""
        tx, conn, inserter, sending = self._tx, self._conn, self._inserter, self._sending
        self._tx = self._conn = self._inserter = self._sending = None
        ending, self._ending = self._ending, []
        if conn is None:
            return
        if sending is not None:
            sending.sender.close(abandon=True)  # what it still runs is let end first
        for table in (*ending, inserter):
            if table is not None:
                table.abandon()  # a COPY whose end was skipped, if any
        try:
            if tx is not None and tx.is_active:
                tx.rollback()
        finally:
            conn.close()

    def _open(self) -> Connection:
        if self._conn is None:
            raise RuntimeError("the write is not open (use it in a with block)")
        return self._conn

    def remove(self, name: str, rows: CodedTable) -> None:
        """Delete every copy of each of ``rows`` (whole rows of table
        ``name``) from the plan: a difference's removed rows, before the
        table's added rows."""
        self._remove(name, _plain(rows), _validate_table(name, rows))

    def _remove(self, name: str, rows: Mapping[str, np.ndarray], n: int) -> None:
        """:meth:`remove` of ``n`` rows already checked against their table."""
        if not self.written or n == 0:
            return
        if self.base_run_id is None:
            raise InvalidResult(name, None, f"table {name!r}: removed rows in a whole result")
        if self._added[name]:
            raise InvalidResult(
                name, None, f"table {name!r}: removed rows after the table's added rows"
            )
        conn = self._open()
        self._finish_inserter()
        self._gone += _delete_rows(conn, table_spec(name), self.run.plan_id, rows)
        self._removed += n
        if self.on_rows is not None:
            self.on_rows(name, n)

    def add(self, name: str, rows: CodedTable) -> None:
        """Insert ``rows`` (of table ``name``) into the plan. Text may come
        coded (:class:`~masterplan.contract.coded.Coded`, as a chunk crosses
        the wire): a binary ``COPY`` encodes, and the batch inserts convert
        (:func:`~connector.columns.batch_values`), each dictionary value
        once; a text ``COPY`` takes it as plain text."""
        self._add(name, rows, _validate_table(name, rows))

    def _add(self, name: str, rows: CodedTable, n: int) -> None:
        """:meth:`add` of ``n`` rows already checked against their table."""
        if not self.written or n == 0:
            return
        conn = self._open()
        inserter = self._inserter
        if inserter is None or inserter.spec.name != name:
            # The table before ends on the thread (its indexes made again)
            # while this one's payloads are made.
            self._finish_inserter(wait=False)
            # A whole result's rows are the table's rows of this plan.
            loading = self.plan_counts[name] if self.base_run_id is None else None
            inserter = self._inserter = _Inserter(
                conn, table_spec(name), self.run, self.on_rows, loading, self._sending_for(conn)
            )
        inserter.write(rows, self.batch_rows)
        self._added[name] += n

    def _sending_for(self, conn: Connection) -> _Sending | None:
        """Where the write is by ``COPY``, the thread that runs its statements
        (:mod:`connector.sender`), started at the first table with what the
        payloads need to know of the tables; None for the other paths."""
        if self._sending is None and _copies(conn):
            # Nothing is queued yet: the connection is this thread's to ask
            # (before the thread starts, which a failed question would leave).
            wires = {name: _copy_wires(conn, table_spec(name)) for name in PLAN_OUTPUT_TABLES}
            encoding = conn.connection.driver_connection.info.encoding  # type: ignore[union-attr]
            self._sending = _Sending(Sender(), wires, encoding)
        return self._sending

    def _finish_inserter(self, wait: bool = True) -> None:
        """End the table being written; with ``wait``, once every statement
        of the write has run (the connection is free for others)."""
        inserter, self._inserter = self._inserter, None
        if inserter is not None:
            inserter.finish()
            if self._sending is not None:
                self._ending.append(inserter)
        if wait and self._sending is not None:
            self._sending.sender.wait()
            self._ending.clear()

    def commit(self) -> WriteReport:
        """Make the run the plan's current one, once every chunk is written.

        Raises:
            InvalidResult: The chunks do not amount to the rows the run
                declared (a stream that lost some); nothing is written.
        """
        if not self.written:
            return WriteReport(False)
        conn = self._open()
        added = sum(self._added.values())
        if added != self.rows_added or self._removed != self.rows_removed:
            raise InvalidResult(
                "plan_runs",
                None,
                f"the result holds {added} added and {self._removed} removed rows, "
                f"the run declared {self.rows_added} and {self.rows_removed}",
            )
        if self.base_run_id is None:
            for name, n in self._added.items():
                if n != self.plan_counts[name]:
                    raise InvalidResult(
                        name,
                        None,
                        f"table {name!r}: {n} rows, the run declared {self.plan_counts[name]}",
                    )
        self._finish_inserter()
        _set_current_run(conn, self.run.plan_id, self.run.run_id)
        assert self._tx is not None
        self._tx.commit()
        self._rollback()  # closes the connection; the transaction is done
        return WriteReport(True, self.base_run_id is not None, added, self._gone)


def current_run_id(engine: Engine, plan_id: str) -> str | None:
    """The run whose result the database holds for ``plan_id`` (None: none, or
    no result tables yet)."""
    if not present_tables(engine, ["plans"]):
        return None
    plans = sql_table("plans")
    with engine.connect() as conn:
        return conn.execute(
            sa.select(plans.c.current_run_id).where(plans.c.plan_id == plan_id)
        ).scalar_one_or_none()


def check_result_layout(engine: Engine, missing_ok: bool = False) -> None:
    """Refuse result tables in the layout of masterplan 0.1, saying how to migrate.

    With ``missing_ok``, only the result tables that exist are checked: a
    run checks them before it reads anything, and creates those missing
    only once it has a plan to write (a run that fails writes nothing, SPEC
    §5.9, not even empty tables).

    Raises:
        SchemaMismatch: naming the first such table, or a missing table or column.
    """
    old = old_layout_tables(engine)
    if old:
        raise SchemaMismatch(
            old[0],
            None,
            f"table {old[0]!r} is in the result layout of masterplan 0.1, which kept "
            f"every run's rows; {OLD_LAYOUT_HINT}",
        )
    if not missing_ok:
        verify_schema(engine, RESULT_TABLES)
        return
    verify_schema(engine, present_tables(engine, RESULT_TABLES))


def _lock_plan(conn: Connection, plan_id: str) -> str | None:
    """Create the plan's ``plans`` row if missing, lock it, return its current run.

    The lock (PostgreSQL, InnoDB; SQLite serialises writers anyway) makes two
    runs writing the same plan take turns, so that the second one sees the
    first one's ``current_run_id``.
    """
    plans = sql_table("plans")
    dialect = conn.dialect.name
    values = {"plan_id": plan_id, "current_run_id": None}
    statement: Any
    if dialect == "postgresql":
        statement = postgresql.insert(plans).values(values).on_conflict_do_nothing()
    elif dialect == "sqlite":
        statement = sqlite.insert(plans).values(values).on_conflict_do_nothing()
    elif dialect in ("mysql", "mariadb"):
        statement = mysql.insert(plans).values(values).prefix_with("IGNORE")
    else:
        statement = None
        exists = conn.execute(sa.select(plans.c.plan_id).where(plans.c.plan_id == plan_id))
        if exists.first() is None:
            statement = plans.insert().values(values)
    if statement is not None:
        conn.execute(statement)
    return conn.execute(
        sa.select(plans.c.current_run_id).where(plans.c.plan_id == plan_id).with_for_update()
    ).scalar_one_or_none()


def _delete_plan(conn: Connection, plan_id: str) -> int:
    """Delete every row of the plan from the output tables; return how many."""
    gone = 0
    for name in PLAN_OUTPUT_TABLES:
        table = sql_table(name)
        gone += conn.execute(table.delete().where(table.c.plan_id == plan_id)).rowcount
    return gone


def _set_removed(conn: Connection, run_id: str, removed: int) -> None:
    runs = sql_table("plan_runs")
    conn.execute(runs.update().where(runs.c.run_id == run_id).values(rows_removed=removed))


def _delete_rows(
    conn: Connection, spec: TableSpec, plan_id: str, rows: Mapping[str, np.ndarray]
) -> int:
    """Delete every copy of each of ``rows`` from the plan's rows; return how many.

    A row is matched on all its columns, NULL matching NULL; the first index
    of the table (``plan_id`` and a column that is never NULL) finds it.
    Rows are grouped by which of their columns are NULL, one statement shape
    per group, run with ``executemany``.
    """
    n = table_length(rows)
    if n == 0:
        return 0
    columns = [c for c in spec.columns if c.name not in BOOKKEEPING_COLUMNS]
    values = [column_to_values(c.kind, np.asarray(rows[c.name])) for c in columns]
    nulls = np.stack([null_mask(c.kind, np.asarray(rows[c.name])) for c in columns], axis=1)
    patterns, which = np.unique(nulls, axis=0, return_inverse=True)
    preparer = conn.dialect.identifier_preparer
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    target = preparer.format_table(sql_table(spec.name))
    gone = 0
    for p, pattern in enumerate(patterns):
        tests = [f"{preparer.quote('plan_id')} = {mark}"]
        tests.extend(
            f"{preparer.quote(c.name)} IS NULL" if null else f"{preparer.quote(c.name)} = {mark}"
            for c, null in zip(columns, pattern, strict=True)
        )
        keep = [k for k, null in enumerate(pattern) if not null]
        params = [
            (plan_id, *(values[k][i] for k in keep)) for i in np.flatnonzero(which.ravel() == p)
        ]
        statement = f"DELETE FROM {target} WHERE {' AND '.join(tests)}"
        for start in range(0, len(params), _DELETE_BATCH):
            result = conn.exec_driver_sql(statement, params[start : start + _DELETE_BATCH])
            gone += max(result.rowcount, 0)
    return gone


def _validate_results(results: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, int]:
    """Check the results against the result specs; return each table's row count.

    Validation happens before any SQL so that a malformed result fails with a
    message naming table and column and leaves the database untouched.
    """
    for name in PLAN_OUTPUT_TABLES:
        if name not in results:
            raise InvalidResult(name, None, f"results lack table {name!r}")
    return {name: _validate_table(name, results[name]) for name in PLAN_OUTPUT_TABLES}


def _validate_table(name: str, table: CodedTable) -> int:
    """Check rows of output table ``name`` against its spec; return their count."""
    if name not in PLAN_OUTPUT_TABLES:
        raise InvalidResult(name, None, f"{name!r} is not a result table of a plan")
    spec = RESULT_TABLES[name]
    expected = [c for c in spec.columns if c.name not in BOOKKEEPING_COLUMNS]
    unknown = sorted(set(table) - {c.name for c in expected})
    if unknown:
        hint = " (the writer adds it)" if unknown[0] in BOOKKEEPING_COLUMNS else ""
        raise InvalidResult(
            name, unknown[0], f"table {name!r}: unexpected column {unknown[0]!r}{hint}"
        )
    n = table_length(table)
    for column in expected:
        if column.name not in table:
            raise InvalidResult(name, column.name, f"table {name!r} lacks column {column.name!r}")
        cells = table[column.name]
        array = cells.codes if isinstance(cells, Coded) else np.asarray(cells)
        if array.ndim != 1 or len(array) != n:
            raise InvalidResult(
                name,
                column.name,
                f"table {name!r}, column {column.name!r}: shape {array.shape}, expected ({n},)",
            )
        if not column.nullable and n and _holds_null(column, cells):
            raise InvalidResult(
                name, column.name, f"table {name!r}, column {column.name!r}: NULL not allowed"
            )
        row = _beyond_int64(array) if column.kind is ColumnKind.INT else None
        if row is not None:
            raise InvalidResult(
                name,
                column.name,
                f"table {name!r}, column {column.name!r}, row {row}: {float(array[row])!r} "
                "does not fit an integer column (64 bits)",
            )
    return n


#: The bounds of a 64-bit integer column, as the float64 an INT column holds.
_INT64_LOW, _INT64_HIGH = -(2.0**63), 2.0**63


def _beyond_int64(values: np.ndarray) -> int | None:
    """The first row of an ``INT`` column (float64, NaN for NULL) whose value
    a 64-bit integer cannot hold (infinite, or past its range), else None.

    Every writer casts the column to int64, where such a value does not
    fail but wraps (to -2**63): the row would be written with a number the
    plan never gave it.
    """
    floats = np.asarray(values, dtype=np.float64)
    bad = ~np.isnan(floats) & ~((floats >= _INT64_LOW) & (floats < _INT64_HIGH))
    rows = np.flatnonzero(bad)
    return int(rows[0]) if len(rows) else None


def _holds_null(column: ColumnSpec, cells: np.ndarray | Coded) -> bool:
    """Whether ``cells`` hold a NULL (:func:`_null_rows`)."""
    return _null_rows(column, cells) is not None


def _plain(rows: CodedTable) -> dict[str, np.ndarray]:
    """``rows`` with coded text made plain arrays."""
    return {name: as_array(cells) for name, cells in rows.items()}


def writes_in_index_order(engine: Engine) -> bool:
    """Whether ``engine``'s database stores a result faster when each
    table's rows arrive in the order of its index (``TableSpec.indexes``),
    which a client asks the server for (``RunPlanRequest.index_order``).

    PostgreSQL does: 100k SKUs' 1.25M result rows took 3.5 s to ``COPY`` in
    that order, 5.0–5.5 s in the engine's, each index entry going beside the
    one before instead of into a random page of the index. SQLite and
    MariaDB took the same time either way (``docs/performance.md``), so
    they do not ask the server for the sort.
    """
    return engine.dialect.name == "postgresql"


def _run_exists(bind: Engine | Connection, run_id: str) -> bool:
    runs = sql_table("plan_runs")
    query = sa.select(runs.c.run_id).where(runs.c.run_id == run_id)
    if isinstance(bind, Connection):
        return bind.execute(query).first() is not None
    with bind.connect() as conn:
        return conn.execute(query).first() is not None


def _plan_run_row(
    run: RunRecord, counts: Mapping[str, int], base_run_id: str | None, added: int, removed: int
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "base_run_id": base_run_id,
        "rows_added": added,
        "rows_removed": removed,
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
    spec: TableSpec,
    run: RunRecord,
    table: CodedTable,
    batch_rows: int,
) -> Iterator[tuple[list[str], list[list[Any]]]]:
    """Yield ``(column names, column value lists)`` per batch, ``plan_id`` and
    ``run_id`` first.

    Converting a batch column by column keeps the numpy work vectorised and the
    Python objects bounded by ``batch_rows``.
    """
    columns = [c for c in spec.columns if c.name not in BOOKKEEPING_COLUMNS]
    names = ["plan_id", "run_id", *(c.name for c in columns)]
    n = table_length(table)
    batches = [batch_values(c.kind, table[c.name], batch_rows) for c in columns]
    for start in range(0, n, batch_rows):
        size = min(batch_rows, n - start)
        values: list[list[Any]] = [[run.plan_id] * size, [run.run_id] * size]
        values.extend(next(column) for column in batches)
        yield names, values


BatchWriter = Callable[[sa.Table, Sequence[str], Sequence[list[Any]]], None]


@dataclass(frozen=True, slots=True)
class _Sending:
    """A ``COPY`` write's thread, and what its payloads need to know that
    only the connection could say: each table's column forms
    (:func:`_copy_wires`) and the client encoding."""

    sender: Sender
    wires: Mapping[str, list[Wire] | None]
    encoding: str


def _copy_wires(conn: Connection, spec: TableSpec) -> list[Wire] | None:
    """The binary forms of ``spec``'s columns but the bookkeeping ones, in
    its result table; None where one has no binary form (text ``COPY``)."""
    keys = [spec.column(name) for name in ("plan_id", "run_id")]
    columns = [c for c in spec.columns if c.name not in BOOKKEEPING_COLUMNS]
    wires = wire_types(conn, sql_table(spec.name), [*keys, *columns])
    return None if wires is None else wires[2:]


class _Inserter:
    """Inserts one output table's rows for a run inside the open transaction,
    a chunk at a time, then :meth:`finish` ends the table's writing.

    With ``sending`` (PostgreSQL's ``COPY``), the statements (indexes
    dropped, the ``COPY`` opened, fed and ended, the indexes made again)
    run on the write's thread, in order, and the payloads are made in the
    caller's.
    """

    def __init__(
        self,
        conn: Connection,
        spec: TableSpec,
        run: RunRecord,
        on_rows: Callable[[str, int], None] | None = None,
        loading: int | None = None,
        sending: _Sending | None = None,
    ) -> None:
        self.conn, self.spec, self.run, self.on_rows = conn, spec, run, on_rows
        self.target = sql_table(spec.name)
        self.columns = [c for c in spec.columns if c.name not in BOOKKEEPING_COLUMNS]
        # PostgreSQL: one COPY straight into the result table, open until the
        # table is done, so that the server stores a chunk while the next one
        # arrives and is made into text. It is part of the transaction like
        # any insert; a staging table would make the server write every row
        # twice.
        self.pipe: _CopyPipe | None = None
        #: The columns' binary wire forms (a COPY write's); None: text.
        self.wires: list[Wire] | None = None
        #: The columns in the order the COPY lists them.
        self.sent: list[ColumnSpec] = self.columns
        self.sending = sending
        self.mysql = _mysql_writer(conn) if sending is None else None
        # SQLite keeps a date as ISO text: its writer hands it the text.
        sqlite = sending is None and self.mysql is None and conn.dialect.name == "sqlite"
        self.sqlite = _SqliteWriter(conn, run) if sqlite else None
        #: SQLite: the nullable columns a row's NULL may be left out of its
        #: statement for (:func:`_null_groups`).
        self.omittable: list[ColumnSpec] = []
        if self.sqlite is not None:
            null_default = self.sqlite.defaults_null(self.target.name)
            self.omittable = [c for c in self.columns if c.nullable and c.name in null_default]
        #: The table's indexes dropped for the load, made again by
        #: :meth:`finish` (:func:`_drop_indexes_for_load`).
        self.rebuild: list[str] = []
        if sending is not None:
            self._forms(sending.wires[spec.name])
            sending.sender.submit(lambda: self._open_copy(loading))
        elif loading is not None:
            self.rebuild = _drop_indexes_for_load(conn, self.target, loading, run.plan_id)

    def write(self, table: CodedTable, batch_rows: int) -> None:
        """Insert ``table``'s rows, ``batch_rows`` at a time."""
        conn, target = self.conn, self.target
        if self.sending is not None:
            self._copy(table)
            return
        if self.sqlite is not None:
            self._insert_sqlite(table, batch_rows)
            return
        batches = _iter_batches(self.spec, self.run, table, batch_rows)
        for names, values in batches:
            if self.mysql is not None:
                self.mysql(target, names, values)
            else:
                # Positional tuples straight to the driver's executemany: no
                # dict per row and no per-row parameter processing (2-3x
                # faster than Core's insert() with dicts).
                conn.exec_driver_sql(
                    _insert_sql(conn, target, names), list(zip(*values, strict=True))
                )
            if self.on_rows is not None:
                self.on_rows(self.spec.name, len(values[0]) if values else 0)

    def _insert_sqlite(self, table: CodedTable, batch_rows: int) -> None:
        """SQLite: insert ``table``'s rows a batch at a time, each batch's rows
        grouped by the nullable columns they hold NULL in (:func:`_null_groups`),
        each group's statement without those columns.

        Only the columns a group's statement names are made driver values,
        and only for its rows: grouping the rows' positions costs a sort of
        a chunk's null patterns, where grouping the values made for the
        whole batch picked every value once more.
        """
        sqlite = self.sqlite
        assert sqlite is not None
        columns = [c.name for c in self.columns]
        rows_of = {
            c.name: cells_of(c.kind, table[c.name], dates_as_text=True) for c in self.columns
        }
        nullable = [
            (c.name, mask)
            for c in self.omittable
            if (mask := _null_rows(c, table[c.name])) is not None
        ]
        # The run's keys are spelled in the statement (_SqliteWriter) unless
        # a literal cannot hold them.
        keys = (self.run.plan_id, self.run.run_id) if sqlite.binds_keys else ()
        names_of: dict[int, list[str]] = {}
        for pattern, rows in _null_groups(
            [mask for _, mask in nullable], table_length(table), batch_rows
        ):
            kept = names_of.get(pattern)
            if kept is None:
                left_out = {name for bit, (name, _) in enumerate(nullable) if pattern >> bit & 1}
                # A statement names one column at least (a result row has
                # some that are never NULL; rows of NULLs alone are bound
                # as they are).
                kept = names_of[pattern] = [c for c in columns if c not in left_out] or columns
            cells = [rows_of[name](rows) for name in kept]
            size = len(cells[0])
            if keys:
                sqlite(
                    self.target,
                    ["plan_id", "run_id", *kept],
                    [*(np.full(size, key, dtype=object) for key in keys), *cells],
                )
            else:
                sqlite(self.target, kept, cells)
            if self.on_rows is not None:
                self.on_rows(self.spec.name, size)

    def _forms(self, wires: list[Wire] | None) -> None:
        """Take the columns' binary forms (None: the COPY is text)."""
        if wires is not None:
            # Fixed-width columns first: copy_binary makes a row's start and
            # its leading fixed-width fields in one block.
            pairs = sorted(zip(self.columns, wires, strict=True), key=_text_last)
            self.sent = [column for column, _ in pairs]
            self.wires = [wire for _, wire in pairs]

    def _open_copy(self, loading: int | None) -> None:
        """Drop the indexes for a load of ``loading`` rows, and open the COPY."""
        if loading is not None:
            self.rebuild = _drop_indexes_for_load(self.conn, self.target, loading, self.run.plan_id)
        names = ["plan_id", "run_id", *(c.name for c in self.sent)]
        self.pipe = _CopyPipe(self.conn, self.target, names, binary=self.wires is not None)

    def _copy(self, table: CodedTable) -> None:
        """Send ``table``'s rows down the table's COPY, a payload of at most
        :data:`_COPY_ROWS` rows at a time: binary where every column's type
        takes it (:func:`~connector.copybinary.wire_types`), else text."""
        sending = self.sending
        assert sending is not None  # a COPY write has its thread
        constants = {"plan_id": self.run.plan_id, "run_id": self.run.run_id}
        n = table_length(table)
        for start in range(0, n, _COPY_ROWS):
            part = {c.name: _rows(table[c.name], start, start + _COPY_ROWS) for c in self.columns}
            payload: bytes | memoryview
            if self.wires is None:
                payload = copy_text(self.sent, _plain(part), constants).encode("utf-8")
            else:
                payload = copy_binary(
                    self.sent,
                    self.wires,
                    part,
                    list(constants.values()),
                    sending.encoding,
                    f"{self.spec.name}.",
                )
            sending.sender.submit(partial(self._send, payload), len(payload))
            if self.on_rows is not None:
                self.on_rows(self.spec.name, min(n - start, _COPY_ROWS))

    def _send(self, payload: bytes | memoryview) -> None:
        if self.pipe is None:
            raise RuntimeError(f"{self.spec.name}: the COPY is not open")
        self.pipe.write(payload)

    def finish(self) -> None:
        """End the table's writing (its COPY: the server checks and stores
        the last rows; then its indexes are made again); the connection can
        take other statements again once that ran (on the write's thread,
        where there is one)."""
        if self.sending is not None:
            self.sending.sender.submit(self._finish)
        else:
            self._finish()

    def _finish(self) -> None:
        pipe, self.pipe = self.pipe, None
        if pipe is not None:
            pipe.close()
        rebuild, self.rebuild = self.rebuild, []
        make_indexes(_runner(self.conn), rebuild, self.conn.dialect.name)

    def abandon(self) -> None:
        """End an open COPY as failed (the transaction is being rolled back;
        the write's thread, if any, has stopped)."""
        pipe, self.pipe = self.pipe, None
        if pipe is not None:
            pipe.close(failed=True)


def _null_rows(column: ColumnSpec, cells: np.ndarray | Coded) -> np.ndarray | None:
    """The rows of ``cells`` that hold NULL (None where none does): for
    coded text, a negative code or the code of a None value."""
    if isinstance(cells, Coded):
        mask = cells.codes < 0
        if may_hold_none(cells.values):
            none = np.asarray(cells.values, dtype=object) == None  # noqa: E711
            if none.any():
                mask |= none[cells.codes]  # a negative code's row is NULL already
    else:
        mask = null_mask(column.kind, np.asarray(cells))
    return mask if mask.any() else None


def _null_groups(
    nulls: Sequence[np.ndarray], n: int, batch_rows: int
) -> Iterator[tuple[int, slice | np.ndarray]]:
    """Rows ``0..n`` in batches of at most ``batch_rows``, each batch's rows
    grouped by which of ``nulls`` (a row mask each) they hold NULL in: per
    group, that pattern (bit ``j`` set for ``nulls[j]``) and its rows, a
    slice where they follow each other, else their positions. A group is in
    the batch's order; a batch's groups follow each other, and the batches.

    The driver binds a None through its adaptation protocol, which looks
    for an adapter and for ``__adapt__`` and ``__conform__`` on the value:
    1M rows of eight columns, three of them NULL, took 3.8-4.1 s to
    ``executemany`` with the NULLs bound and 1.7-2.0 s without those
    columns. A plan's planned orders are NULL in two of their vendor,
    BOM and supplying warehouse (``docs/performance.md``): a group's
    statement leaves its NULL columns to their default, NULL.
    """
    if n == 0:
        return
    if not nulls:
        for start in range(0, n, batch_rows):
            yield 0, slice(start, min(start + batch_rows, n))
        return
    # One stable sort of (batch, pattern) groups every batch at once.
    key = (np.arange(n, dtype=np.int64) // batch_rows) << len(nulls)
    for bit, mask in enumerate(nulls):
        key |= mask.astype(np.int64) << bit
    order = np.argsort(key, kind="stable")
    ordered = key[order]
    starts = [0, *(np.flatnonzero(ordered[1:] != ordered[:-1]) + 1).tolist(), n]
    low = (1 << len(nulls)) - 1
    for first, end in pairwise(starts):
        rows = order[first:end]
        head = int(rows[0])
        if int(rows[-1]) - head == end - first - 1:  # consecutive rows
            yield int(ordered[first]) & low, slice(head, head + end - first)
        else:
            yield int(ordered[first]) & low, rows


def _rows(cells: np.ndarray | Coded, start: int, stop: int) -> np.ndarray | Coded:
    """Rows ``start:stop`` of a column, coded text kept coded."""
    if isinstance(cells, Coded):
        return cells[start:stop]
    return np.asarray(cells)[start:stop]


#: Fewer rows than this are loaded into the table's indexes as they are.
_REBUILD_MIN_ROWS = 10_000

#: How long a PostgreSQL write waits for readers of a table to let it drop
#: the table's indexes, before it keeps them and loads the rows into them:
#: readers that come meanwhile queue behind the waiting drop.
_DROP_LOCK_WAIT = "500ms"

#: PostgreSQL's codes for a lock not had within ``lock_timeout`` and for a
#: role that does not own the table.
_KEEP_INDEXES_ON = frozenset({"55P03", "42501"})


def _drop_indexes_for_load(
    conn: Connection, target: sa.Table, loading: int, plan_id: str
) -> list[str]:
    """Drop ``target``'s plain indexes before a whole result's ``loading``
    rows of plan ``plan_id`` are inserted into it, where the load is most
    of the table; the statements that make them again, for after the load
    (none where nothing was dropped).

    A database puts each inserted row into every index of its table as it
    goes; an index made at the end sorts its keys once instead and writes
    each page once. Measured with the plain driver (``docs/performance.md``):
    SQLite loads the 1.25M result rows of 100k SKUs in 3.3-3.6 s that way
    against 4.2 s; PostgreSQL ``COPY``s them in 1.8 s against 2.4-2.5 s,
    and the 12.8M rows of 1M SKUs in 21.5-22 s against 29-36 s.

    The drop is part of the write's transaction: a failed write rolls the
    drop back with the rows. An index made again covers the other plans'
    rows too, hence the rule that the load be most of the table:

    - SQLite: the table holds no more rows than the load (after the plan's
      own were deleted). Readers keep seeing the table and its indexes as
      they were until the commit.
    - PostgreSQL: the table holds no other plan's rows at all. There a
      dropped index locks its table until the commit, so a reader of the
      plan being replaced waits for the new one instead of reading the old
      one, and a reader of another plan is never made to wait. The write
      waits at most :data:`_DROP_LOCK_WAIT` for readers already in the
      table; past that, or where the role does not own the table, it keeps
      the indexes.

    Only plain indexes (``CREATE INDEX``, not unique) are dropped, so a
    unique key an integrator added still refuses a duplicate row as it is
    inserted; each is made again from the statement the database kept for
    it (:func:`~connector.schema.drop_plain_indexes`).
    """
    if loading < _REBUILD_MIN_ROWS or target.schema is not None:
        return []
    quoted = conn.dialect.identifier_preparer.quote(target.name)
    run = _runner(conn)
    dialect = conn.dialect.name
    if dialect == "sqlite":
        held = conn.exec_driver_sql(f"SELECT COUNT(*) FROM {quoted}").scalar_one()
        return drop_plain_indexes(run, quoted) if held <= loading else []
    if dialect != "postgresql" or _holds_other_plans(conn, quoted, plan_id):
        return []
    wait = conn.exec_driver_sql("SELECT current_setting('lock_timeout')").scalar_one()
    savepoint = conn.begin_nested()
    try:
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{_DROP_LOCK_WAIT}'")
        statements = drop_plain_indexes(run, quoted, dialect)
    except sa.exc.DBAPIError as exc:
        savepoint.rollback()  # the lock_timeout with it
        if getattr(exc.orig, "sqlstate", None) in _KEEP_INDEXES_ON:
            return []
        raise
    savepoint.commit()
    conn.exec_driver_sql("SELECT set_config('lock_timeout', %s, true)", (wait,))
    return statements


def _runner(conn: Connection) -> Statement:
    """``conn``'s statements as :mod:`connector.schema`'s index helpers run them."""

    def run(statement: str, parameters: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        result = (
            conn.exec_driver_sql(statement, parameters)
            if parameters
            else _execute_plain(conn, statement)
        )
        return [tuple(row) for row in result] if result.returns_rows else []

    return run


def _execute_plain(conn: Connection, statement: str) -> sa.CursorResult[Any]:
    """Run ``statement``, which takes no parameters, as it is written: psycopg
    reads ``%`` as a placeholder's start in any statement SQLAlchemy hands
    it (an index's definition may hold one in a pattern)."""
    if conn.dialect.name == "postgresql":
        statement = statement.replace("%", "%%")
    return conn.exec_driver_sql(statement)


def _holds_other_plans(conn: Connection, quoted_table: str, plan_id: str) -> bool:
    """Whether PostgreSQL table ``quoted_table`` holds a row of a plan other
    than ``plan_id``: two ranges of its index, which begins with the plan id,
    each read up to its first row, where ``plan_id <> …`` would read the
    whole table."""
    return bool(
        conn.exec_driver_sql(
            f"SELECT EXISTS (SELECT 1 FROM {quoted_table} WHERE plan_id < %s) "
            f"OR EXISTS (SELECT 1 FROM {quoted_table} WHERE plan_id > %s)",
            (plan_id, plan_id),
        ).scalar_one()
    )


def _text_last(pair: tuple[ColumnSpec, Wire]) -> bool:
    return pair[1] is Wire.TEXT


class _SqliteWriter:
    """The batch writer of SQLite: the driver's ``executemany`` of
    statements of :data:`SQLITE_ROWS_PER_STATEMENT` rows, and the rows left
    over one a statement, their parameters laid out by
    :func:`statement_parameters`, in the connection's transaction. The rows
    go in as they are given, in their order.

    The run's ``plan_id`` and ``run_id``, the same in every row, are spelled
    in the statement as literals instead of bound to each row: two text
    parameters fewer a row, 10 % of the ``executemany`` of 764k
    pegging-like rows (``docs/performance.md``). A key that a literal cannot
    hold (a NUL character) is bound as before.
    """

    def __init__(self, conn: Connection, run: RunRecord) -> None:
        driver_conn = conn.connection.driver_connection
        assert driver_conn is not None
        self.conn, self.driver_conn = conn, driver_conn
        keys = {"plan_id": run.plan_id, "run_id": run.run_id}
        self.binds_keys = any("\x00" in key for key in keys.values())
        self.literals = {} if self.binds_keys else keys
        self.max_variables = sqlite_max_variables(driver_conn, conn.dialect.loaded_dbapi)

    def defaults_null(self, table: str) -> frozenset[str]:
        """The columns of ``table`` whose default is NULL (no ``DEFAULT``
        clause): a row may leave them out of its statement for a NULL."""
        quoted = self.conn.dialect.identifier_preparer.quote(table)
        cursor = self.driver_conn.cursor()
        try:
            info = cursor.execute(f"PRAGMA table_info({quoted})").fetchall()
        finally:
            cursor.close()
        # (cid, name, type, notnull, dflt_value, pk)
        return frozenset(row[1] for row in info if row[4] is None)

    def __call__(self, target: sa.Table, names: Sequence[str], cells: Sequence[np.ndarray]) -> None:
        """Insert the rows of the columns ``cells`` (driver values, or
        numbers, :func:`~connector.columns.column_to_cells`) into ``names``:
        whole statements of :func:`rows_per_statement` rows, then the rows
        left over one a statement."""
        conn = self.conn
        per = rows_per_statement(len(names), self.max_variables)
        several, single = statement_parameters(cells, per)
        statements: list[tuple[str, list[list[Any]]]] = []
        if several:
            statements.append((_insert_sql(conn, target, names, self.literals, rows=per), several))
        if single:
            statements.append((_insert_sql(conn, target, names, self.literals), single))
        dbapi_error = conn.dialect.loaded_dbapi.Error
        cursor = self.driver_conn.cursor()
        sql = ""
        try:
            for sql, parameters in statements:
                cursor.executemany(sql, parameters)
        except dbapi_error as exc:
            # Same exception types as the other paths (IntegrityError, ...).
            raise sa.exc.DBAPIError.instance(
                sql, None, exc, dbapi_error, dialect=conn.dialect
            ) from exc
        finally:
            cursor.close()


def _mysql_writer(conn: Connection) -> BatchWriter | None:
    """The batch writer of MariaDB/MySQL through PyMySQL, else ``None``.

    Multi-row INSERTs by default (:func:`_values_writer`). Where the URL opted
    in to ``LOAD DATA LOCAL INFILE`` (``local_infile=1``), batches are loaded
    from a temporary file instead; a server that refuses it (``local_infile``
    off, MySQL 8's default) gets the INSERTs for that batch and every later
    one on the engine, with one warning: the opt-in is a speed-up, never a
    reason for a run to fail. The refused statement read nothing and the
    transaction goes on, so the write stays whole.
    """
    if conn.dialect.name not in ("mysql", "mariadb") or conn.dialect.driver != "pymysql":
        return None
    insert = _values_writer(conn)
    load = _load_data_writer(conn)
    if load is None:
        return insert

    def write(target: sa.Table, names: Sequence[str], values: Sequence[list[Any]]) -> None:
        nonlocal load
        if load is not None:
            try:
                load(target, names, values)
                return
            except sa.exc.DBAPIError as exc:
                if _error_code(exc) not in _LOCAL_INFILE_REFUSED:
                    raise
                _note_infile_refused(conn.engine, exc)
                load = None
        insert(target, names, values)

    return write


def _error_code(exc: sa.exc.DBAPIError) -> int | None:
    """The server's error number of a MariaDB/MySQL driver error."""
    args = getattr(exc.orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def _note_infile_refused(engine: Engine, exc: sa.exc.DBAPIError) -> None:
    """Remember that ``engine``'s server refuses LOCAL INFILE; warn once."""
    if engine in _infile_refused:
        return
    _infile_refused.add(engine)
    _log.warning(
        "the database server refuses LOAD DATA LOCAL INFILE (%s); writing with "
        "INSERT statements instead (turn local_infile on in the server, or drop "
        "local_infile=1 from the database URL)",
        exc.orig,
    )


def _values_writer(conn: Connection) -> BatchWriter:
    """A multi-row ``INSERT`` batch writer for MariaDB/MySQL through PyMySQL.

    PyMySQL's ``executemany`` escapes every value with a Python call per
    value (about 50k rows/s). Here each column is turned into SQL literals
    once per distinct value (ids, dates and flags repeat a lot), rows are
    joined in C (``str.join``), and a batch goes out as few statements as
    ``max_allowed_packet`` allows. Strings are escaped as the session's
    ``sql_mode`` reads them (``NO_BACKSLASH_ESCAPES`` or not). That is about
    as fast as ``LOAD DATA LOCAL INFILE``, without its risks.
    """
    driver_conn: Any = conn.connection.driver_connection
    dbapi_error: type[Exception] = conn.dialect.loaded_dbapi.Error
    preparer = conn.dialect.identifier_preparer
    packet = conn.exec_driver_sql("SELECT @@SESSION.max_allowed_packet").scalar_one()
    limit = min(int(packet), _INSERT_STATEMENT_BYTES)

    def insert(target: sa.Table, names: Sequence[str], values: Sequence[list[Any]]) -> None:
        n = len(values[0]) if values else 0
        if n == 0:
            return
        head = (
            f"INSERT INTO {preparer.format_table(target)} "
            f"({', '.join(preparer.quote(name) for name in names)}) VALUES "
        ).encode()
        escape = _string_escaper(driver_conn)
        columns = [_sql_literals(column, escape) for column in values]
        rows = [row.encode() for row in map(",".join, zip(*columns, strict=True))]
        for statement, sent in _statements(head, rows, limit):
            try:
                with driver_conn.cursor() as cursor:
                    stored = cursor.execute(statement)
                    warning = None
                    if cursor.warning_count:
                        cursor.execute("SHOW WARNINGS LIMIT 1")
                        warning = cursor.fetchone()
            except dbapi_error as exc:
                # Same exception types as the other paths (IntegrityError, ...).
                raise sa.exc.DBAPIError.instance(
                    head.decode(), None, exc, dbapi_error, dialect=conn.dialect
                ) from exc
            # A server in a non-strict mode stores a value it cannot hold as
            # something else, with a warning: that fails the write too.
            if stored != sent or warning is not None:
                detail = warning[2] if warning is not None else "rows were refused"
                raise sa.exc.DatabaseError(
                    head.decode(),
                    None,
                    RuntimeError(f"{target.name}: stored {stored} of {sent} rows: {detail}"),
                )

    return insert


def _statements(head: bytes, rows: list[bytes], limit: int) -> Iterator[tuple[bytes, int]]:
    """``INSERT … VALUES (row),(row)…`` statements of at most ``limit`` bytes
    (a row longer than that goes alone), with the number of rows in each."""
    sizes = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows)) + 3
    ends = np.cumsum(sizes)
    start, base = 0, 0
    while start < len(rows):
        # The last row that still fits, and at least one row.
        stop = max(int(np.searchsorted(ends, base + limit - len(head), side="right")), start + 1)
        yield head + b"(" + b"),(".join(rows[start:stop]) + b")", stop - start
        base = int(ends[stop - 1])
        start = stop


def _sql_literals(values: list[Any], escape: Callable[[str], str]) -> list[str]:
    """SQL literals of one column's values, each distinct value formatted once.

    The values are those of :func:`~connector.columns.column_to_values`:
    ``None`` and one of ``str``, ``float``, ``int`` or ``datetime.date``.
    Floats are written as ``repr`` writes them, the shortest text that reads
    back as the same double (the server converts such a decimal literal with
    correct rounding); NaN never comes here (it is ``None``).
    """
    distinct = dict.fromkeys(values)
    distinct.pop(None, None)
    sample = next(iter(distinct), None)
    literals: dict[Any, str]
    if isinstance(sample, str):
        # Ids and refs almost never hold a character to escape: one search
        # over them all spares a translation per value.
        if _NEEDS_ESCAPE.search("".join(distinct)):
            literals = {v: f"'{escape(v)}'" for v in distinct}
        else:
            literals = {v: f"'{v}'" for v in distinct}
    elif isinstance(sample, float):
        literals = {v: repr(v) for v in distinct}
    elif isinstance(sample, dt.date):
        literals = {v: f"'{v.isoformat()}'" for v in distinct}
    else:
        literals = {v: str(v) for v in distinct}
    literals[None] = "NULL"
    return list(map(literals.__getitem__, values))


#: The escapes of a MariaDB/MySQL string literal, unless the server's mode is
#: ``NO_BACKSLASH_ESCAPES`` (then ``'`` alone is escaped, as ``''``).
_ESCAPES = {
    "\0": "\\0",
    "\\": "\\\\",
    "\n": "\\n",
    "\r": "\\r",
    "\x1a": "\\Z",
    "'": "\\'",
    '"': '\\"',
}
_NEEDS_ESCAPE = re.compile(f"[{re.escape(''.join(_ESCAPES))}]")
#: As a list, which keeps ``str.translate`` on its fast path for ASCII text.
_BACKSLASH_ESCAPES = [_ESCAPES.get(chr(code), chr(code)) for code in range(128)]


def _string_escaper(driver_conn: Any) -> Callable[[str], str]:
    """How to escape text in a string literal for the server's current mode."""
    if _no_backslash_escapes(driver_conn):
        return lambda text: text.replace("'", "''")
    return lambda text: text.translate(_BACKSLASH_ESCAPES)


def _no_backslash_escapes(driver_conn: Any) -> bool:
    """Whether the session's ``sql_mode`` has ``NO_BACKSLASH_ESCAPES`` (PyMySQL
    keeps the server's status flags of the last reply)."""
    from pymysql.constants import SERVER_STATUS

    return bool(driver_conn.server_status & SERVER_STATUS.SERVER_STATUS_NO_BACKSLASH_ESCAPES)


def _tsv_field(value: Any) -> str:
    """One field of MySQL's default ``LOAD DATA`` text format (``\\N`` is NULL)."""
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
    if isinstance(value, float):
        return repr(value)
    return str(value)  # int, date (ISO)


def _load_data_writer(conn: Connection) -> BatchWriter | None:
    """A ``LOAD DATA LOCAL INFILE`` batch writer on MariaDB/MySQL, else ``None``.

    Loading a temporary text file spares the server parsing INSERTs, and on
    InnoDB it is part of the open transaction like any insert. But the
    capability lets the server ask the client for any file it can read, so
    it is used only where the database URL opted in (``local_infile=1``, see
    :func:`connector.schema.create_engine`), and not on an engine whose
    server refused it before (:func:`_mysql_writer`).
    """
    if conn.dialect.name not in ("mysql", "mariadb") or conn.engine in _infile_refused:
        return None
    driver_conn: Any = conn.connection.driver_connection
    if not getattr(driver_conn, "_local_infile", False) or _no_backslash_escapes(driver_conn):
        # The file's NULLs and escapes are backslash escapes: a server in
        # NO_BACKSLASH_ESCAPES mode would read them as text.
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


def _insert_sql(
    conn: Connection,
    target: sa.Table,
    names: Sequence[str],
    literals: Mapping[str, str] | None = None,
    rows: int = 1,
) -> str:
    """A plain positional INSERT of ``rows`` rows in the driver's parameter
    style; the columns of ``literals`` first, their text spelled in the
    statement (standard SQL quoting: a quote doubled)."""
    preparer = conn.dialect.identifier_preparer
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    spelled = dict(literals or {})
    columns = ", ".join(preparer.quote(name) for name in [*spelled, *names])
    texts = ["'" + text.replace("'", "''") + "'" for text in spelled.values()]
    row = "(" + ", ".join([*texts, *(mark for _ in names)]) + ")"
    return (
        f"INSERT INTO {preparer.format_table(target)} ({columns}) VALUES {', '.join([row] * rows)}"
    )


def sqlite_max_variables(driver_conn: Any, dbapi: Any) -> int:
    """The most variables a statement of the SQLite connection
    ``driver_conn`` may bind (``SQLITE_LIMIT_VARIABLE_NUMBER``)."""
    getlimit = getattr(driver_conn, "getlimit", None)
    code = getattr(dbapi, "SQLITE_LIMIT_VARIABLE_NUMBER", None)
    if getlimit is None or code is None:
        return _SQLITE_OLD_MAX_VARIABLES
    return int(getlimit(code))


def rows_per_statement(columns: int, max_variables: int) -> int:
    """Rows one SQLite INSERT carries (:data:`SQLITE_ROWS_PER_STATEMENT`),
    fewer where ``columns`` bound a row would pass the connection's limit on
    a statement's variables; at least one."""
    return max(1, min(SQLITE_ROWS_PER_STATEMENT, max_variables // max(columns, 1)))


def statement_parameters(
    cells: Sequence[np.ndarray], per: int
) -> tuple[list[list[Any]], list[list[Any]]]:
    """The rows of the columns ``cells`` as the parameters of statements of
    ``per`` rows each (a row's values after each other, row after row), and
    the rows left over, one list a row.

    The columns go side by side into one object array, numbers made Python
    numbers as they go in, and each statement's parameters are ``per`` of
    its rows, made a list in C. A list per column, laid out again row after
    row and sliced per statement, took a sixth longer: the values of the
    100k-SKU benchmark's result made and laid out in 0.30 s against 0.35 s
    (median of ten, ``docs/performance.md``).
    """
    n = len(cells[0]) if cells else 0
    block = np.empty((n, len(cells)), dtype=object)
    for j, column in enumerate(cells):
        block[:, j] = column
    whole = n - n % per if per > 1 else 0
    several: list[list[Any]] = block[:whole].reshape(whole // per, -1).tolist() if whole else []
    single: list[list[Any]] = block[whole:].tolist()
    return several, single


def _copies(conn: Connection) -> bool:
    """Whether ``conn`` writes with ``COPY`` (:func:`writes_by_copy`) and
    has its driver's connection at hand."""
    return writes_by_copy(conn) and conn.connection.driver_connection is not None


class _CopyPipe:
    """One open ``COPY table (names) FROM STDIN``, fed whole payloads, not
    rows one by one: text (:mod:`connector.copytext`) or, with ``binary``,
    binary rows (:mod:`connector.copybinary`), whose header and trailer the
    pipe adds."""

    def __init__(
        self, conn: Connection, target: sa.Table, names: Sequence[str], binary: bool = False
    ) -> None:
        preparer = conn.dialect.identifier_preparer
        columns = ", ".join(preparer.quote(name) for name in names)
        self.statement = f"COPY {preparer.format_table(target)} ({columns}) FROM STDIN" + (
            " (FORMAT binary)" if binary else ""
        )
        self.dialect = conn.dialect
        self.error: type[Exception] = conn.dialect.loaded_dbapi.Error
        driver_conn: Any = conn.connection.driver_connection
        self.binary = binary
        self._started = False
        self._stack = ExitStack()
        with self._errors():
            cursor = self._stack.enter_context(driver_conn.cursor())
            self._pipe = self._stack.enter_context(cursor.copy(self.statement))

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """The driver's errors as SQLAlchemy's, as the other write paths raise them
        (IntegrityError, DataError, ...)."""
        try:
            yield
        except self.error as exc:
            raise sa.exc.DBAPIError.instance(
                self.statement, None, exc, self.error, dialect=self.dialect
            ) from exc

    def write(self, payload: bytes | memoryview) -> None:
        if not payload:
            return
        if self.binary and not self._started:
            payload = HEADER + payload
        self._started = True
        with self._errors():
            self._pipe.write(payload)

    def close(self, failed: bool = False) -> None:
        """End the COPY: the server stores the rest, or (``failed``) drops it all."""
        if failed:
            abort = RuntimeError("the write was abandoned")
            try:
                self._stack.__exit__(RuntimeError, abort, None)
            except Exception:  # the transaction is rolled back anyway
                _log.debug("ending an abandoned COPY failed", exc_info=True)
            return
        with self._errors():
            if self.binary and self._started:
                self._pipe.write(TRAILER)  # (with no rows, psycopg sends both ends)
            self._stack.close()


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
    """Delete all but the newest ``keep`` runs of a plan from ``plan_runs``.

    The result tables hold the current plan only (SPEC §4), so this bounds
    the run history, not the plan: a result row keeps naming the run that
    last wrote it even when that run's history row is gone. The plan's
    current run is never deleted, even when it is not among the newest
    ``keep`` (or ``keep`` is 0). Runs are ordered by ``finished_at``, then
    ``run_id``.

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
    check_result_layout(engine)
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
            conn.execute(runs.delete().where(runs.c.run_id.in_(batch)))
    return doomed
