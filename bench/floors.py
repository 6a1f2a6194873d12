"""The database's floor: the same rows read and written by the plain driver.

A phase of the connector is only as slow as it needs to be when it is close
to what the driver alone takes for the same rows, so the benchmark measures
that beside each phase, in the same run, on the same database and tables:

* **read**: every input table's §4 columns, with ``fetchall`` of the raw
  DBAPI cursor (SQLite, MariaDB) or ``COPY (SELECT ...) TO STDOUT`` in binary
  (PostgreSQL), the rows or bytes dropped as they come. Python's cyclic
  collector is paused, as the connector's reader pauses it.
  On PostgreSQL a second read floor: the same tables in runs of heap
  blocks, as the connector's reader asks for them
  (:func:`read_blocks_floor`), where the server does the per-row work.
* **write**: the plan's rows of the result tables, as ready tuples in the
  order the connector wrote them, inserted in one transaction into empty
  tables of the project's own DDL, as the connector's write found them (a
  fresh SQLite file, PostgreSQL schema or MariaDB database, dropped
  afterwards): ``executemany`` (SQLite, MariaDB) or ``COPY ... FROM STDIN``
  row by row (PostgreSQL), then the commit. The rows are read back first, a
  batch at a time, untimed; the inserts and the commit count. On PostgreSQL
  two lower floors: the rows as ready COPY payloads, text
  (:func:`copy_text_floor`) and binary (:func:`copy_binary_floor`), what
  the server alone takes (the writer sends such payloads, made column by
  column: binary where the tables' column types take it), and the binary
  payloads loaded the writer's way, each table's indexes dropped before its
  rows and made again after them (:func:`copy_load_floor`). On SQLite the
  floor the ratio is taken against loads the rows the writer's way too,
  indexes made after the rows, the run's ``plan_id`` and ``run_id``
  spelled in the statement rather than bound to each row, a row's NULL
  columns left out of its statement, and many rows a statement
  (:func:`load_floor`); the rows
  inserted into the indexes as they go, every column bound, are quoted
  beside.

The write floors commit, as the connector's write does: a write is done
when it is durable, and SQLite's commit of a 100k-SKU plan (its journal
and the file synced) takes about 0.45 s, which a rolled-back floor left
out of the floor but not out of the phase. Each floor gives its commit's
share too (:class:`WriteFloor`), so the ratio without it can still be had.
"""

from __future__ import annotations

import gc
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from masterplan.connector.schema import (
    Statement,
    create_result_tables,
    drop_plain_indexes,
    make_indexes,
)
from masterplan.connector.writer import rows_per_statement, sqlite_max_variables
from masterplan.contract.tables import INPUT_TABLES, PLAN_OUTPUT_TABLES, RESULT_TABLES

__all__ = [
    "WriteFloor",
    "copy_binary_floor",
    "copy_load_floor",
    "copy_text_floor",
    "read_blocks_floor",
    "read_floor",
    "settle",
    "write_floor",
]

#: Rows per batch read back for the write floor (bounds its memory).
_BATCH = 100_000


@dataclass(frozen=True, slots=True)
class WriteFloor:
    """A write floor's time and rows.

    Attributes:
        seconds: The inserts and the commit.
        commit_seconds: The commit's share of ``seconds``.
        rows: Rows inserted.
    """

    seconds: float
    commit_seconds: float
    rows: int


def settle(engine: sa.Engine) -> bool:
    """Before a timed write into PostgreSQL: ``CHECKPOINT``, and whether it
    was made (a role without the right to has the phases run as they come).

    A round writes about 1 GB of WAL (the write and three floors, 220-290
    MB each), so with the default ``max_wal_size`` a checkpoint would start
    about twice a round, in whichever phase crossed the threshold, and that
    phase would share the disk and the cores with it and write out the
    pages of the phase before. From a checkpoint each write starts with no
    other phase's dirty pages and the whole WAL budget before it, the
    write and its floors alike (``docs/performance.md``).
    """
    if engine.dialect.name != "postgresql":
        return False
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("CHECKPOINT")
    except sa.exc.DBAPIError:
        return False
    return True


def _quoted(engine: sa.Engine, names: list[str]) -> str:
    preparer = engine.dialect.identifier_preparer
    return ", ".join(preparer.quote(n) for n in names)


def read_floor(engine: sa.Engine) -> tuple[float, int]:
    """Seconds the plain driver takes to read every input table's §4
    columns, and the rows it read."""
    raw = engine.raw_connection()
    was_on = gc.isenabled()
    gc.disable()
    try:
        driver: Any = raw.driver_connection
        rows = 0
        t = time.perf_counter()
        for name, spec in INPUT_TABLES.items():
            select = f"SELECT {_quoted(engine, list(spec.column_names))} FROM {name}"
            if engine.dialect.name == "postgresql":
                with driver.cursor() as cur:
                    with cur.copy(f"COPY ({select}) TO STDOUT (FORMAT BINARY)") as copy:
                        for _ in copy:
                            pass
                    rows += cur.rowcount  # from the server's "COPY n"
            else:
                cur = driver.cursor()
                cur.execute(select)
                rows += len(cur.fetchall())
                cur.close()
        seconds = time.perf_counter() - t
        raw.rollback()
    finally:
        if was_on:
            gc.enable()
        raw.close()
    return seconds, rows


def read_blocks_floor(engine: sa.Engine) -> tuple[float, int]:
    """PostgreSQL only: seconds the plain driver takes to read every input
    table as the connector's reader now asks for it, in runs of heap blocks
    (:func:`~masterplan.connector.pgblocks.start_block_read`), the bytes
    dropped as they come, and the rows the runs counted. What the server
    alone takes to aggregate the runs, and libpq to hand them over."""
    from masterplan.connector.pgblocks import heap_table, start_block_read
    from masterplan.connector.reader import DEFAULT_CHUNK_ROWS

    rows = 0
    with engine.connect() as conn, conn.begin():
        driver: Any = conn.connection.driver_connection
        t = time.perf_counter()
        for name, spec in INPUT_TABLES.items():
            heap = heap_table(conn, name)
            if heap is None:
                raise RuntimeError(f"table {name!r} is not a plain table")
            _, statement = start_block_read(conn, spec, DEFAULT_CHUNK_ROWS, *heap)
            with driver.cursor() as cur, cur.copy(statement) as copy:
                first = True
                for block in copy:
                    # The header (19 bytes) opens the first message; a run's
                    # rows are its second field, after the field count and
                    # the run number.
                    at = 19 if first else 0
                    first = False
                    if len(block) >= at + 26:
                        rows += int.from_bytes(block[at + 18 : at + 26], "big")
        seconds = time.perf_counter() - t
    return seconds, rows


def _floor_columns(engine: sa.Engine, name: str, keys: bool = True) -> str:
    """Result table ``name``'s columns for a SELECT, with the plan id
    ``floor`` (so that the rows do not collide with the plan's own); without
    ``plan_id`` and ``run_id`` unless ``keys``."""
    preparer = engine.dialect.identifier_preparer
    return ", ".join(
        "'floor'" if c == "plan_id" else preparer.quote(c)
        for c in RESULT_TABLES[name].column_names
        if keys or c not in _KEYS
    )


#: The columns that hold one value in all of a run's rows.
_KEYS = ("plan_id", "run_id")


def _result_batches(
    engine: sa.Engine, name: str, keys: bool = True
) -> Iterator[list[tuple[Any, ...]]]:
    """Every row of result table ``name`` as driver tuples, a batch at a time,
    in the order they were written, with the plan id ``floor`` (so that they
    do not collide with the rows themselves in the same table); without the
    run's keys unless ``keys``.

    The order matters: rows that arrive sorted by an index's key are
    cheaper to index, so the floor writes them in the order the connector
    wrote them, not in the order an index would hand them back.
    """
    listed = _floor_columns(engine, name, keys)
    # A table written once in one transaction: its rowids (SQLite), heap
    # (PostgreSQL) and hidden clustered row ids (InnoDB, no primary key)
    # are in the order of the inserts.
    order = " ORDER BY rowid" if engine.dialect.name == "sqlite" else ""
    raw = engine.raw_connection()
    try:
        cur = raw.driver_connection.cursor()  # type: ignore[union-attr]
        cur.execute(f"SELECT {listed} FROM {name}{order}")
        while rows := cur.fetchmany(_BATCH):
            yield rows
        cur.close()
    finally:
        raw.close()


@contextmanager
def _empty_tables(engine: sa.Engine, scratch: Path, tag: str) -> Iterator[sa.Engine]:
    """An engine on empty result tables beside ``engine``'s, as the product
    wrote into: a fresh SQLite file in ``scratch``, a fresh PostgreSQL schema
    or MariaDB database (dropped afterwards). Writing the floor into the
    tables that hold the plan would index every row beside a million others
    (and, once rolled back, beside dead ones)."""
    name = f"masterplan_floor_{tag}"
    scratch_file = scratch / f"{name}.db"
    if engine.dialect.name == "sqlite":
        scratch_file.unlink(missing_ok=True)
        target = sa.create_engine(f"sqlite:///{scratch_file}")
    else:
        with engine.connect() as conn:
            if engine.dialect.name == "postgresql":
                conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {name} CASCADE")
                conn.exec_driver_sql(f"CREATE SCHEMA {name}")
            else:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
                conn.exec_driver_sql(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
            conn.commit()
        if engine.dialect.name == "postgresql":
            target = sa.create_engine(engine.url, connect_args={"options": f"-csearch_path={name}"})
        else:
            target = sa.create_engine(engine.url.set(database=name))
    try:
        create_result_tables(target)
        yield target
    finally:
        target.dispose()
        if engine.dialect.name == "sqlite":
            scratch_file.unlink(missing_ok=True)
        else:
            with engine.connect() as conn:
                kind = "SCHEMA" if engine.dialect.name == "postgresql" else "DATABASE"
                extra = " CASCADE" if engine.dialect.name == "postgresql" else ""
                conn.exec_driver_sql(f"DROP {kind} IF EXISTS {name}{extra}")
                conn.commit()


def write_floor(engine: sa.Engine, scratch: Path) -> WriteFloor:
    """What the plain driver takes to insert the result tables' rows again
    and commit them, and the rows it inserted.

    Args:
        engine: The database one plan was written to (its only plan).
        scratch: A directory for SQLite's fresh file.
    """
    with _empty_tables(engine, scratch, "rows") as target:
        return _write_rows(engine, target)


def load_floor(
    engine: sa.Engine, scratch: Path, sort_threads: bool = True, most_rows: int = 0
) -> WriteFloor:
    """SQLite only: :func:`write_floor` with each table's indexes dropped
    before its rows go in and made again after them, as the writer loads a
    table that its rows are most of (timed with the inserts and the commit),
    the run's keys spelled in the statement, as the writer spells them, a
    row's NULL columns left out of its statement, as the writer leaves
    them, and statements of several rows, as the writer makes them: the
    fastest the driver takes these rows.

    With ``sort_threads``, SQLite's sorter makes the indexes on helper
    threads, as the writer has it do
    (:func:`~masterplan.connector.schema.make_indexes`); without, on one.
    ``most_rows`` caps the rows of a statement (1: one row a
    statement, the floor before the writer made statements of several;
    0: as many as the writer puts in one,
    :func:`~masterplan.connector.writer.rows_per_statement`).
    """
    with _empty_tables(engine, scratch, "load") as target:
        return _write_rows(
            engine,
            target,
            rebuild=True,
            spell_keys=True,
            sort_threads=sort_threads,
            most_rows=most_rows,
        )


def _runner(cur: Any) -> Statement:
    """A plain driver cursor's statements as :mod:`connector.schema`'s index helpers run them."""

    def run(statement: str, parameters: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        cur.execute(statement, parameters)
        return list(cur.fetchall()) if cur.description else []

    return run


def _write_rows(
    engine: sa.Engine,
    target: sa.Engine,
    rebuild: bool = False,
    spell_keys: bool = False,
    sort_threads: bool = False,
    most_rows: int = 1,
) -> WriteFloor:
    settle(engine)
    raw = target.raw_connection()
    seconds = 0.0
    written = 0
    try:
        driver: Any = raw.driver_connection
        cur = driver.cursor()
        if target.dialect.name == "sqlite":
            cur.execute("BEGIN")
        for name in PLAN_OUTPUT_TABLES:
            columns = list(RESULT_TABLES[name].column_names)
            mark = "?" if target.dialect.paramstyle == "qmark" else "%s"
            marks = [mark for _ in columns]
            if spell_keys:
                columns = [*_KEYS, *(c for c in columns if c not in _KEYS)]
                marks = ["'floor'", f"'{_run_of(engine, name)}'", *marks[len(_KEYS) :]]
            listed = _quoted(target, columns)
            insert = f"INSERT INTO {name} ({listed}) VALUES ({', '.join(marks)})"
            t = time.perf_counter()
            remake = _drop_indexes(cur, name) if rebuild else []
            seconds += time.perf_counter() - t
            for rows in _result_batches(engine, name, keys=not spell_keys):
                # The writer's way leaves a row's NULL columns out of its
                # statement: so do these ready rows (grouped untimed).
                groups = (
                    _several_a_statement(
                        driver,
                        _without_nulls(target, rows, columns, marks, name),
                        most_rows,
                    )
                    if spell_keys and target.dialect.name == "sqlite"
                    else [(insert, rows)]
                )
                t = time.perf_counter()
                if target.dialect.name == "postgresql":
                    with cur.copy(f"COPY {name} ({listed}) FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)
                else:
                    for statement, group in groups:
                        cur.executemany(statement, group)
                seconds += time.perf_counter() - t
                written += len(rows)
            t = time.perf_counter()
            make_indexes(_runner(cur), remake, threads=None if sort_threads else 0)
            seconds += time.perf_counter() - t
        cur.close()
        commit = _timed_commit(raw)
    finally:
        raw.close()
    return WriteFloor(seconds + commit, commit, written)


def _without_nulls(
    target: sa.Engine, rows: list[tuple[Any, ...]], columns: list[str], marks: list[str], name: str
) -> list[tuple[str, list[tuple[Any, ...]]]]:
    """SQLite: ready ``rows`` of result table ``name`` (bound to ``marks``,
    the keys spelled) grouped by the nullable columns they hold NULL in,
    each group's statement and rows without those columns, as the writer
    leaves them to their default
    (:func:`masterplan.connector.writer._null_groups`)."""
    nullable = {c.name for c in RESULT_TABLES[name].columns if c.nullable}
    pairs = list(zip(columns, marks, strict=True))
    spelled = [(c, mark) for c, mark in pairs if mark not in ("?", "%s")]
    bound = [c for c, mark in pairs if mark in ("?", "%s")]
    at = [i for i, c in enumerate(bound) if c in nullable]
    groups: dict[tuple[int, ...], list[tuple[Any, ...]]] = {}
    for row in rows:
        groups.setdefault(tuple(i for i in at if row[i] is None), []).append(row)
    out = []
    for left_out, group in groups.items():
        keep = [i for i in range(len(bound)) if i not in left_out]
        listed = _quoted(target, [*(c for c, _ in spelled), *(bound[i] for i in keep)])
        values = ", ".join([*(mark for _, mark in spelled), *("?" for _ in keep)])
        if left_out:
            group = [tuple(row[i] for i in keep) for row in group]
        out.append((f"INSERT INTO {name} ({listed}) VALUES ({values})", group))
    return out


def _several_a_statement(
    driver: Any, groups: list[tuple[str, list[tuple[Any, ...]]]], most: int
) -> list[tuple[str, list[tuple[Any, ...]]]]:
    """SQLite: each of ``groups`` (a one-row statement and its ready rows)
    as statements of several rows, as the writer makes them (at most
    ``most`` rows; 0: as many as the writer takes), with their ready
    parameters, then the rows left over one a statement."""
    if most == 1:
        return groups
    limit = sqlite_max_variables(driver, sqlite3)
    out = []
    for statement, rows in groups:
        width = len(rows[0]) if rows else 0
        per = rows_per_statement(width, limit)
        per = min(per, most) if most else per
        whole = len(rows) - len(rows) % per if per > 1 else 0
        if whole:
            head, _, row = statement.rpartition(" VALUES ")
            several = f"{head} VALUES {', '.join([row] * per)}"
            params = [
                tuple(chain.from_iterable(rows[start : start + per]))
                for start in range(0, whole, per)
            ]
            out.append((several, params))
        if whole < len(rows):
            out.append((statement, rows[whole:]))
    return out


def _run_of(engine: sa.Engine, name: str) -> str:
    """The one run whose rows result table ``name`` holds (the benchmark's
    run id: hexadecimal, no quote to double)."""
    with engine.connect() as conn:
        runs = conn.exec_driver_sql(f"SELECT DISTINCT run_id FROM {name}").scalars().all()
    if len(runs) > 1 or any(not str(run).isalnum() for run in runs):
        raise RuntimeError(f"{name} holds the rows of runs {runs}, not one benchmark run")
    return str(runs[0]) if runs else "none"


def _drop_indexes(cur: Any, table: str, dialect: str = "sqlite") -> list[str]:
    """Drop table ``table``'s plain indexes, as the writer does; the
    statements that make them."""
    return drop_plain_indexes(_runner(cur), table, dialect)


def _timed_commit(raw: Any) -> float:
    """Seconds ``raw`` (a DBAPI connection) takes to commit."""
    t = time.perf_counter()
    raw.commit()
    return time.perf_counter() - t


def copy_text_floor(engine: sa.Engine, scratch: Path) -> WriteFloor:
    """PostgreSQL only: what the server takes to ``COPY ... FROM STDIN`` the
    result tables' rows given as ready text and commit them, and the rows.

    Below :func:`write_floor` there, since no Python runs per row: the
    payload of each table is read first with ``COPY (SELECT ...) TO STDOUT``
    (untimed, whole, so that the server does not work on one while the next
    one is read), then sent back and stored, timed to the end of the COPY.
    In the order the rows were written, with the plan id ``floor``, in one
    transaction.
    """
    with _empty_tables(engine, scratch, "text") as target:
        return _copy_payloads(engine, target, binary=False)


def copy_binary_floor(engine: sa.Engine, scratch: Path) -> WriteFloor:
    """PostgreSQL only: :func:`copy_text_floor` with the payloads in binary
    format, which the writer sends where the result tables' column types
    take it (the server parses no number or date)."""
    with _empty_tables(engine, scratch, "binary") as target:
        return _copy_payloads(engine, target, binary=True)


def copy_load_floor(engine: sa.Engine, scratch: Path) -> WriteFloor:
    """PostgreSQL only: :func:`copy_binary_floor` with each table's plain
    indexes dropped before its rows go in and made again after them, as the
    writer loads a table that holds no other plan's rows (timed with the
    ``COPY`` and the commit)."""
    with _empty_tables(engine, scratch, "load") as target:
        return _copy_payloads(engine, target, binary=True, rebuild=True)


def _copy_payloads(
    engine: sa.Engine, target_engine: sa.Engine, binary: bool, rebuild: bool = False
) -> WriteFloor:
    settle(engine)
    reader, writer = engine.raw_connection(), target_engine.raw_connection()
    seconds = 0.0
    written = 0
    form = " (FORMAT binary)" if binary else ""
    try:
        source: Any = reader.driver_connection
        target: Any = writer.driver_connection
        for name in PLAN_OUTPUT_TABLES:
            columns = list(RESULT_TABLES[name].column_names)
            select = f"SELECT {_floor_columns(engine, name)} FROM {name}"
            with source.cursor() as cur:
                with cur.copy(f"COPY ({select}) TO STDOUT{form}") as copy:
                    payload = [bytes(block) for block in copy]
                rows = cur.rowcount
            statement = f"COPY {name} ({_quoted(engine, columns)}) FROM STDIN{form}"
            with target.cursor() as cur:
                t = time.perf_counter()
                remake = _drop_indexes(cur, name, "postgresql") if rebuild else []
                with cur.copy(statement) as copy:
                    for block in payload:
                        copy.write(block)
                for definition in remake:
                    cur.execute(definition)
                seconds += time.perf_counter() - t
            written += rows
            del payload
        commit = _timed_commit(writer)
    finally:
        reader.close()
        writer.close()
    return WriteFloor(seconds + commit, commit, written)
