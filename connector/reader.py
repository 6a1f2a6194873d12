"""Read SCM tables into columnar chunks.

Tables are streamed with a server-side cursor (``stream_results``), a batch
of :data:`FETCH_ROWS` driver rows at a time, each batch converted into its
place in a chunk of ``chunk_rows`` rows of column arrays, so memory holds a
chunk and one batch of driver rows whatever the table's size.

On PostgreSQL through psycopg, tables whose column types allow it are read
with binary ``COPY`` instead, several times faster and exactly equal: a
plain table as column arrays per run of heap blocks
(:mod:`connector.pgblocks`), a view or a source profile's query row by row
(:mod:`connector.pgcopy`); any other table, and any stream those modules
do not expect, takes the generic path.

Columns are selected untyped (``sa.column(name)`` without a type) on purpose:
SQLAlchemy then hands back the driver's raw values instead of processing them
by *our* column types, and the conversion in :mod:`connector.columns` copes
with whatever types the integrator's tables have (``NUMERIC`` -> ``Decimal``,
SQLite dates as strings, ...).

A date cell that names no day (``'2026-02-30'`` or ``'soon'`` in SQLite, a
MariaDB zero date, PostgreSQL's ``infinity`` or a year past 9999) is read as
:data:`~masterplan.contract.columns.UNREADABLE_DATE`, never as an error: the
engine leaves that row out with an ``INVALID_ROW`` message and plans the
rest (SPEC §5.9).
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.expression import Executable

from masterplan.connector.columns import (
    Table,
    column_from_values,
    concat_chunks,
    dtype_of,
    readable_days,
    table_length,
)
from masterplan.connector.errors import ColumnDataError, SchemaMismatch
from masterplan.connector.pgblocks import block_chunks, heap_table
from masterplan.connector.pgcopy import CopyFormatError, copy_chunks, copy_eligible
from masterplan.connector.profile import (
    SourceProfile,
    SourceTypes,
    copy_origin,
    probe_source,
    source_from,
    verify_source,
)
from masterplan.connector.schema import table_spec, verify_schema
from masterplan.contract.tables import INPUT_TABLES, ColumnKind, TableSpec

__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "FETCH_ROWS",
    "SNAPSHOT_DIALECTS",
    "collector_paused",
    "iter_table_chunks",
    "read_checked_source",
    "read_input",
    "read_table",
    "read_transaction",
    "stream_input",
    "stream_rows",
    "table_chunks",
    "tolerate_bad_dates",
]

#: Rows per chunk: large enough to amortise driver round trips, small enough
#: that one batch of Python row tuples stays a few tens of MB.
DEFAULT_CHUNK_ROWS = 65536

#: Rows the generic path fetches and converts at a time, a chunk being made
#: of several such batches. A batch's row tuples and values are converted to
#: columns while they are still in the processor's cache: fetched 65,536 at
#: a time (tens of MB of fresh objects), the 1M-SKU benchmark's SQLite read
#: took 1.4-1.6x the plain driver's ``fetchall``; 4,096 at a time, about
#: 1.2x (docs/performance.md, "SQLite reads: rows converted while they are
#: in cache").
FETCH_ROWS = 4096

# Backends on which a multi-statement read gets one consistent snapshot at
# REPEATABLE READ (PostgreSQL's default READ COMMITTED would give each table
# its own snapshot, mixing states of a database that changes during the read).
SNAPSHOT_DIALECTS = ("postgresql", "mysql", "mariadb")


def _select(spec: TableSpec, source: SourceProfile | None = None) -> Executable:
    """Select exactly ``spec``'s columns in canonical order, untyped: from the
    table (or view) of that name, or through ``source``'s query for it."""
    origin = sa.table(spec.name) if source is None else source_from(source, spec)
    return sa.select(*(sa.column(name) for name in spec.column_names)).select_from(origin)


def _chunk_from_rows(spec: TableSpec, rows: Sequence[Sequence[Any]]) -> Table:
    """Turn one batch of rows into column arrays (one conversion per column)."""
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in spec.columns]
    return {
        c.name: column_from_values(spec.name, c, values)
        for c, values in zip(spec.columns, columns, strict=True)
    }


@contextmanager
def _connection(bind: Engine | Connection) -> Iterator[Connection]:
    if isinstance(bind, Connection):
        yield bind
    else:
        with bind.connect() as conn:
            yield conn


def iter_table_chunks(
    engine: Engine | Connection,
    table_name: str,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> Iterator[Table]:
    """Stream one §4 table as chunks of column arrays.

    Args:
        engine: Engine or open connection to the SCM database. With an engine
            the generator holds a connection until it is exhausted or closed.
        table_name: Name of an input or result table of §4.
        chunk_rows: Maximum rows per chunk; bounds the memory of one batch.

    Yields:
        Chunks of at most ``chunk_rows`` rows: column name -> 1-D array, the
        spec's columns in canonical order, in the dtypes of
        :mod:`masterplan.contract.tables`. An empty table yields nothing.

    Raises:
        ValueError: ``chunk_rows`` is not positive.
        KeyError: ``table_name`` is no §4 table.
        ColumnDataError: A value cannot be converted to its column's kind.
    """
    if chunk_rows <= 0:
        raise ValueError(f"chunk_rows must be positive, got {chunk_rows}")
    spec = table_spec(table_name)
    with _connection(engine) as conn:
        types = _table_types(conn, spec) if _copies(conn) else None
        yield from table_chunks(conn, spec, chunk_rows, types)


def _copies(conn: Connection) -> bool:
    """Whether ``conn`` can read with binary ``COPY`` (PostgreSQL, psycopg)."""
    return conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg"


def _table_types(conn: Connection, spec: TableSpec) -> dict[str, Any] | None:
    """The database's column types of ``spec``'s table; None when it has no
    such table or lacks a column (the generic read then says which)."""
    try:
        have = {c["name"]: c["type"] for c in sa.inspect(conn).get_columns(spec.name)}
    except sa.exc.NoSuchTableError:
        return None
    if not all(name in have for name in spec.column_names):
        return None
    return {name: have[name] for name in spec.column_names}


def table_chunks(
    conn: Connection,
    spec: TableSpec,
    chunk_rows: int,
    types: dict[str, Any] | None,
    source: SourceProfile | None = None,
) -> Iterator[Table]:
    """Chunks of one table: through ``COPY`` where ``types`` allow it, else
    (or when the server refuses a cast, e.g. a ``NUMERIC`` past ``float8``'s
    range) the generic way, from a savepoint so that the transaction's
    snapshot lives on."""
    if source is not None and source.tables[spec.name].query is None:
        return  # the ERP has no equivalent: an empty table
    if types is not None and _copies(conn) and copy_eligible(spec, types):
        origin, params = (
            (None, None) if source is None else copy_origin(conn, source.tables[spec.name])
        )
        heap = heap_table(conn, spec.name) if source is None else None
        chunks = (
            copy_chunks(conn, spec, chunk_rows, origin, params)
            if heap is None
            else block_chunks(conn, spec, chunk_rows, *heap)
        )
        dbapi_error = conn.dialect.loaded_dbapi.Error
        savepoint = conn.begin_nested()
        yielded = False
        try:
            for chunk in chunks:
                yielded = True
                yield _readable_dates(spec, chunk)
        except (CopyFormatError, dbapi_error) as exc:
            savepoint.rollback()
            if yielded:  # rows already handed out: reading again would repeat them
                raise ColumnDataError(spec.name, None, f"table {spec.name!r}: {exc}") from exc
        else:
            savepoint.commit()
            return
    yield from _generic_chunks(conn, spec, chunk_rows, source)


def _readable_dates(spec: TableSpec, chunk: Table) -> Table:
    """``chunk`` with the days no date can be marked unreadable.

    ``COPY`` sends day numbers, which hold what a Python date cannot
    (``infinity``, years before 1 or past 9999).
    """
    for column in spec.columns:
        if column.kind is ColumnKind.DATE:
            chunk[column.name] = readable_days(chunk[column.name])
    return chunk


def tolerate_bad_dates(conn: Connection) -> None:
    """On psycopg, fetch a date or timestamp that Python cannot hold as text.

    psycopg fails the whole fetch on ``infinity`` or a year past 9999; as
    text, the value becomes one unreadable cell instead (see
    :func:`~connector.columns.column_from_values`). Values Python can hold
    load as before. The loaders stay registered on the connection, where
    they change nothing but that.
    """
    if conn.dialect.name != "postgresql" or conn.dialect.driver != "psycopg":
        return
    from psycopg.pq import Format

    driver: Any = conn.connection.driver_connection
    adapters = driver.adapters
    for name in ("date", "timestamp", "timestamptz"):
        info = adapters.types.get(name)
        if info is None:  # pragma: no cover - psycopg knows all three
            continue
        loader = adapters.get_loader(info.oid, Format.TEXT)
        if loader is not None and not getattr(loader, "tolerant", False):
            adapters.register_loader(info.oid, _tolerant_loader(loader))


@functools.cache
def _tolerant_loader(base: type) -> type:
    """A psycopg loader that loads as ``base`` does, or returns the text
    where ``base`` raises ``DataError`` (psycopg's C loaders cannot be
    subclassed, hence the wrapper)."""
    from psycopg import DataError
    from psycopg.adapt import Loader

    class Tolerant(Loader):
        tolerant = True

        def __init__(self, oid: int, context: Any = None) -> None:
            super().__init__(oid, context)
            self._base = base(oid, context)

        def load(self, data: Any) -> Any:
            try:
                return self._base.load(data)
            except DataError:
                return bytes(data).decode()

    return Tolerant


def _generic_chunks(
    conn: Connection, spec: TableSpec, chunk_rows: int, source: SourceProfile | None = None
) -> Iterator[Table]:
    """Chunks of one table through a server-side cursor and driver rows.

    The rows are fetched and converted :data:`FETCH_ROWS` at a time, and
    each batch's columns written into their places in the chunk's arrays
    while its objects are still in the processor's cache.
    """
    fetch = min(chunk_rows, FETCH_ROWS)
    chunk: Table = {}
    held = 0
    for rows in stream_rows(conn, _select(spec, source), fetch):
        count = len(rows)
        part = _chunk_from_rows(spec, rows)
        # The driver's rows go before the piece is handed on, so that the
        # collector does not walk them all when it resumes (see
        # collector_paused). Each batch is a list of its own, and the
        # generator that fetched it still holds it while this one yields.
        if isinstance(rows, list):
            rows.clear()
        start = 0
        while start < count:
            if not chunk:
                chunk = {c.name: np.empty(chunk_rows, dtype_of(c.kind)) for c in spec.columns}
            take = min(count - start, chunk_rows - held)
            for name, column in chunk.items():
                column[held : held + take] = part[name][start : start + take]
            held += take
            start += take
            if held == chunk_rows:
                yield chunk
                chunk, held = {}, 0
    if held:  # the last rows, in arrays their size rather than views of the chunk's
        yield {name: column[:held].copy() for name, column in chunk.items()}


def stream_rows(conn: Connection, query: Executable, chunk_rows: int) -> Iterator[Sequence[Any]]:
    """``query``'s driver rows in batches of at most ``chunk_rows``, through
    a server-side cursor, dates Python cannot hold tolerated as text."""
    tolerate_bad_dates(conn)
    # stream_results: a server-side cursor (psycopg named cursor, PyMySQL
    # SSCursor); yield_per: fetch and buffer chunk_rows rows at a time.
    # (Options of this statement only: ``Connection.execution_options`` would
    # set them on the connection, for the savepoints that follow too.)
    if conn.dialect.name == "sqlite":
        # SQLite's cursor is lazy without asking, and the driver's own batches
        # of plain tuples skip SQLAlchemy's Row objects and buffering, a sixth
        # of a read (the columns are untyped: no result processing is lost).
        # Not with stream_results: its buffering strategy takes a first row
        # from the driver's cursor when the statement runs.
        result = conn.execute(query)
        with result:
            cursor = result.cursor
            while rows := cursor.fetchmany(chunk_rows):
                yield rows
        return
    result = conn.execute(
        query, execution_options={"stream_results": True, "yield_per": chunk_rows}
    )
    with result:
        yield from result.partitions(chunk_rows)


def read_table(
    engine: Engine | Connection, table_name: str, chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> Table:
    """Read a whole §4 table into one table of column arrays.

    An empty table gives zero-length arrays of the right dtypes.
    """
    spec = table_spec(table_name)
    return concat_chunks(spec, iter_table_chunks(engine, table_name, chunk_rows))


def read_input(
    engine: Engine | Connection,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    on_chunk: Callable[[str, int], None] | None = None,
    source: SourceProfile | None = None,
) -> dict[str, Table]:
    """Read every input table of §4, after checking that they all exist.

    The schema is verified first so that a missing table or column fails the
    run with a :class:`~connector.errors.SchemaMismatch` naming it, before any
    data is read. With an engine, all tables are read in one transaction at
    ``REPEATABLE READ`` on PostgreSQL and MariaDB, so that the plan sees one
    consistent state of a database that the ERP may be changing meanwhile.

    Args:
        engine: Engine or open connection to the SCM database.
        chunk_rows: Rows per chunk (see :func:`iter_table_chunks`).
        on_chunk: Called with the table name and row count of every chunk
            read, for progress displays.
        source: Read through this source profile's queries instead of the
            reference tables (:mod:`connector.profile`); they are checked
            first as the tables are, naming a missing or mistyped column.

    Returns:
        Table name -> table of column arrays, for every input table.

    Raises:
        SchemaMismatch: An input table or column is missing.
        ColumnDataError: A value cannot be converted to its column's kind.
        ProfileError: ``source`` is written for another kind of database.
    """
    if isinstance(engine, Connection):
        return _read_all(engine, chunk_rows, on_chunk, source)
    with read_transaction(engine) as conn:
        return _read_all(conn, chunk_rows, on_chunk, source)


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection in one transaction for a read of several tables: at
    ``REPEATABLE READ`` on :data:`SNAPSHOT_DIALECTS`, so that every table is
    read from one consistent state of a database the ERP may be changing."""
    with engine.connect() as conn:
        if conn.dialect.name in SNAPSHOT_DIALECTS:
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            yield conn


def stream_input(
    engine: Engine,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    source: SourceProfile | None = None,
) -> Iterator[tuple[str, Table]]:
    """Every input table of §4 in pieces of at most ``chunk_rows`` rows, as read.

    What :func:`read_input` reads, in the same one transaction (opened, and
    the schema verified, before the first piece), but handed on piece by
    piece: a caller that sends each piece on and drops it holds a few chunks,
    not the data set (a snapshot upload, SPEC §3: pieces of one table are
    rows of it). Tables come whole and in :data:`INPUT_TABLES` order; a table
    without rows comes as one empty piece, so that every table is named.
    The transaction ends when the generator is exhausted or closed.

    Raises:
        SchemaMismatch: An input table or column is missing (at the first piece).
        ColumnDataError: A value cannot be converted to its column's kind.
        ProfileError: ``source`` is written for another kind of database.
    """
    with read_transaction(engine) as conn:
        types = _verified_types(conn, source)
        for name in INPUT_TABLES:
            spec = table_spec(name)
            sent = False
            # Paused while the driver makes each piece's objects, not
            # while the caller (an upload, a progress display) runs.
            pieces = table_chunks(conn, spec, chunk_rows, types[name], source)
            while True:
                with collector_paused():
                    piece = next(pieces, None)
                if piece is None:
                    break
                if table_length(piece) or not sent:
                    sent = True
                    yield name, _own_piece(spec, piece)
            if not sent:
                yield name, concat_chunks(spec, ())


def _own_piece(spec: TableSpec, piece: Table) -> Table:
    """``piece`` in the column dtypes a whole read has (:func:`concat_chunks`),
    in arrays of its own: a piece that is already so goes as it is (copying
    it would touch every value's object once more, out of cache); one that
    views a larger buffer is copied, so that it does not keep the buffer."""
    owned = table_length(piece) and all(
        piece[c.name].base is None and piece[c.name].dtype == dtype_of(c.kind) for c in spec.columns
    )
    return {c.name: piece[c.name] for c in spec.columns} if owned else concat_chunks(spec, (piece,))


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for a while.

    A driver makes a tuple per row and Python objects per value: millions
    of fresh container objects, which set off the collector's full scans
    over everything alive, again and again, for nothing (rows hold no
    cycles). That took half of a large read.
    """
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def _verified_types(
    conn: Connection, source: SourceProfile | None
) -> dict[str, dict[str, Any] | None]:
    """Each input table's column types as the database names them, after
    checking that every table and column the read needs exists."""
    if source is None:
        return dict(verify_schema(conn, INPUT_TABLES))
    # Queries whose result types PostgreSQL names are read with COPY too.
    return dict(verify_source(conn, source))


def read_checked_source(
    engine: Engine, source: SourceProfile, chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> tuple[list[SchemaMismatch], dict[str, Table]]:
    """Every query of ``source`` probed once, and the input read through them
    when none has a problem (:func:`read_input` would probe them again).

    Where :func:`read_input` stops at the first problem, this lists them all
    (``scm check --source`` shows each one), and reads nothing then. The
    probes and the read share one transaction, as in :func:`read_input`.

    Returns:
        The problems found, each naming its table and column, and the input
        tables (empty when there are problems).

    Raises:
        ColumnDataError: A value cannot be converted to its column's kind.
        ProfileError: ``source`` is written for another kind of database.
    """
    with read_transaction(engine) as conn:
        problems, types = probe_source(conn, source)
        if problems:
            return problems, {}
        return [], _read_all(conn, chunk_rows, None, source, types)


def _read_all(
    conn: Connection,
    chunk_rows: int,
    on_chunk: Callable[[str, int], None] | None,
    source: SourceProfile | None,
    probed: SourceTypes | None = None,
) -> dict[str, Table]:
    """Every input table read on ``conn``; ``probed``: the types a probe of
    ``source`` already found (else the schema or source is verified here)."""
    types = _verified_types(conn, source) if probed is None else dict(probed)

    def chunks(name: str) -> Iterator[Table]:
        for chunk in table_chunks(conn, table_spec(name), chunk_rows, types[name], source):
            if on_chunk is not None:
                on_chunk(name, table_length(chunk))
            yield chunk

    with collector_paused():
        return {name: concat_chunks(table_spec(name), chunks(name)) for name in INPUT_TABLES}
