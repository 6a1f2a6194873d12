"""Read a PostgreSQL table as column arrays, one run of heap blocks at a time.

Binary ``COPY`` of a table's rows (:mod:`.pgcopy`) sends one message per
row, and taking a message from libpq costs the client more than the server
spends making it: at 100k SKUs the plain driver's ``COPY … TO`` of the
input tables is bound by the client's per-row work, and decoding the rows
came on top of it. Here the server aggregates instead: one ``COPY`` row per
run of ``B`` heap blocks (a TID range scan, PostgreSQL 14 and later), whose
fields are the run's whole columns: numbers and dates as one ``float8[]`` or
``int4[]`` each, text as one string of the run's values joined by a unit
separator (``\\x1f``). A run becomes arrays by a few numpy calls and one
``str.split`` per column, and the server builds the next run while the
client decodes this one.

Every aggregate of a run reads the same rows in one pass, so the columns
stay aligned. A NULL text is sent as the empty string, which is read back
as NULL; a run that holds a real empty string, or a value holding the
separator (the split would not give one value per row), is set aside and
read again row by row (:func:`~.pgcopy.copy_chunks` over the same blocks)
once the stream ends. Rows are a set, so the order in which runs arrive
does not matter; each run is whole, so none is read twice.

Only plain tables have heap blocks: a view, a partitioned or foreign table,
or a source profile's query is read row by row (:mod:`.pgcopy`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from sqlalchemy.engine import Connection

from masterplan.connector.errors import ColumnDataError
from masterplan.connector.pgcopy import (
    CopyFormatError,
    copy_chunks,
    copy_layout,
    copy_messages,
    copy_rows,
    dates_from_days,
    day_number,
)
from masterplan.contract.columns import Table, empty_table, table_length, take
from masterplan.contract.tables import ColumnKind, ColumnSpec, TableSpec

__all__ = [
    "RUN_ROWS",
    "block_chunks",
    "blocks_per_run",
    "decode_run",
    "heap_table",
    "run_statement",
    "start_block_read",
]

#: Joins a run's text values; a value holding it sends its run row by row.
SEPARATOR = "\x1f"

#: The most rows a run is sized for, whatever the chunk: small enough that the
#: server builds the next run while the client decodes this one, and the
#: consumer (an upload) takes each run as it comes. On the 100k-SKU read,
#: runs of up to 65,536 rows left the database and the client taking turns
#: (0.33–0.38 s alone, the plain driver's floor 0.25–0.28 s); runs of 8,192
#: rows took 0.24–0.25 s. The runs are the pieces handed on: joining them
#: into pieces of 65,536 rows for the upload made the read and upload
#: together slower (0.69 s against 0.60 s), and so did runs of 4,096 rows
#: (0.69–0.81 s), each piece costing the upload a fixed amount.
RUN_ROWS = 8192

#: The most tuples a PostgreSQL heap page of 8 kB holds (MaxHeapTuplesPerPage):
#: runs sized by it never exceed their rows, whatever the statistics say.
_MAX_TUPLES_PER_PAGE = 291

#: Element type OIDs of the arrays sent: ``int4`` (days), ``float8`` (numbers).
_INT4_OID = 23
_FLOAT8_OID = 701

#: The fields before the columns: run number, rows, rows holding an empty string.
_LEAD_FIELDS = 3


def heap_table(conn: Connection, name: str) -> tuple[int, float] | None:
    """``(pages, tuples)`` of the statistics of ``name`` when it is a plain
    table without inheritance children on a server with TID range scans
    (PostgreSQL 14+), else None: a view, a partitioned or foreign table,
    a table whose children's rows it also reads (their blocks are not
    its own), an older server."""
    driver: Any = conn.connection.driver_connection
    if driver.info.server_version < 140000:
        return None
    quoted = conn.dialect.identifier_preparer.quote(name)
    row = conn.exec_driver_sql(
        "SELECT relkind, relhassubclass, relpages, reltuples FROM pg_class "
        "WHERE oid = to_regclass(%(name)s)",
        {"name": quoted},
    ).first()
    if row is None or row[0] != "r" or row[1]:
        return None
    return int(row[2]), float(row[3])


def blocks_per_run(chunk_rows: int, pages: int, tuples: float) -> int:
    """Heap blocks per run, so that a run holds about ``chunk_rows`` rows:
    by the table's statistics where it has them, else as if every page were
    full of the smallest tuples (a table never analysed)."""
    density = tuples / pages if pages > 0 and tuples > 0 else _MAX_TUPLES_PER_PAGE
    return max(1, int(chunk_rows / max(density, 1.0)))


def _ctid_range(blocks: int, run: str) -> str:
    """SQL: the rows of run ``run`` (an SQL expression) of ``blocks`` blocks."""
    return (
        f"ctid >= ('(' || {run} * {blocks} || ',0)')::tid "
        f"AND ctid < ('(' || ({run} + 1) * {blocks} || ',0)')::tid"
    )


def run_statement(conn: Connection, spec: TableSpec, blocks: int) -> str:
    """``COPY … TO STDOUT (FORMAT binary)`` of ``spec``'s table, one row per
    run of ``blocks`` heap blocks: the run's number, its row count, how many
    of its rows hold an empty string, then each column of :func:`copy_layout`
    as an array (fixed-width) or a joined string (text). The runs are
    counted inside the statement, from the table's size when it starts."""
    quote = conn.dialect.identifier_preparer.quote
    fixed, text = copy_layout(spec)
    table = quote(spec.name)
    fields = ["k::int8", "count(*)::int8"]
    empty = " OR ".join(f"{quote(c.name)}::text = ''" for c in text) or "false"
    fields.append(f"count(*) FILTER (WHERE {empty})::int8")
    for c in fixed:
        value = (
            day_number(quote(c.name))
            if c.kind is ColumnKind.DATE
            else f"coalesce({quote(c.name)}::float8, 'NaN')"
        )
        fields.append(f"array_agg({value})")
    fields += [f"string_agg(coalesce({quote(c.name)}::text, ''), E'\\x1f')" for c in text]
    literal = table.replace("'", "''")
    runs = (
        f"pg_relation_size('{literal}'::regclass) / current_setting('block_size')::int / {blocks}"
    )
    return (
        f"COPY (SELECT s.* FROM generate_series(0, {runs}) AS k, LATERAL "
        f"(SELECT {', '.join(fields)} FROM {table} WHERE {_ctid_range(blocks, 'k')}) AS s) "
        "TO STDOUT (FORMAT binary)"
    )


def start_block_read(
    conn: Connection, spec: TableSpec, chunk_rows: int, pages: int, tuples: float
) -> tuple[int, str]:
    """Blocks per run and the :func:`run_statement` of plain table ``spec``
    (statistics ``pages``, ``tuples``, from :func:`heap_table`) for chunks
    of at most ``chunk_rows`` rows, with JIT turned off for the rest of the
    read's transaction (``SET LOCAL``): the planner counts a thousand runs
    for the series it cannot size, and the cost it then estimates would set
    off JIT compilation, which takes longer than the scan."""
    conn.exec_driver_sql("SET LOCAL jit = off")
    blocks = blocks_per_run(min(chunk_rows, RUN_ROWS), pages, tuples)
    return blocks, run_statement(conn, spec, blocks)


def block_chunks(
    conn: Connection, spec: TableSpec, chunk_rows: int, pages: int, tuples: float
) -> Iterator[Table]:
    """Stream plain table ``spec`` (statistics ``pages``, ``tuples``, from
    :func:`heap_table`) as chunks of at most ``chunk_rows`` rows in the
    dtypes of the conventions; nothing for an empty table.

    Raises:
        ColumnDataError: Text is not in the connection's encoding.
        CopyFormatError: The stream is not in the shape of :func:`run_statement`.
    """
    driver: Any = conn.connection.driver_connection
    encoding = driver.info.encoding
    blocks, statement = start_block_read(conn, spec, chunk_rows, pages, tuples)
    again: list[int] = []
    with driver.cursor() as cursor, cursor.copy(statement):
        messages = copy_messages(driver.pgconn, type(driver).Error)
        # One run at a time: it is decoded while the server builds the next.
        for (message,) in copy_rows(spec, messages, 1):
            run, table = decode_run(spec, bytes(message), encoding)
            if table is None:
                again.append(run)
            elif table_length(table):
                yield from _pieces(table, chunk_rows)
    for run in again:
        origin = f"(SELECT * FROM {conn.dialect.identifier_preparer.quote(spec.name)} WHERE "
        origin += f"{_ctid_range(blocks, str(run))}) AS run"
        yield from copy_chunks(conn, spec, chunk_rows, origin)


def _pieces(table: Table, chunk_rows: int) -> Iterator[Table]:
    """``table`` in slices of at most ``chunk_rows`` rows."""
    n = table_length(table)
    if n <= chunk_rows:
        yield table
        return
    for start in range(0, n, chunk_rows):
        yield take(table, np.arange(start, min(start + chunk_rows, n)))


def _fields(spec: TableSpec, row: bytes, count: int) -> list[bytes | None]:
    """The ``count`` fields of binary COPY row ``row`` (None for NULL)."""
    if len(row) < 2 or int.from_bytes(row[:2], "big", signed=True) != count:
        raise CopyFormatError(f"table {spec.name!r}: a COPY row has another number of fields")
    out: list[bytes | None] = []
    pos = 2
    for _ in range(count):
        if pos + 4 > len(row):
            raise CopyFormatError(f"table {spec.name!r}: a COPY field reaches past its row")
        size = int.from_bytes(row[pos : pos + 4], "big", signed=True)
        pos += 4
        if size < 0:
            out.append(None)
            continue
        if pos + size > len(row):
            raise CopyFormatError(f"table {spec.name!r}: a COPY field reaches past its row")
        out.append(row[pos : pos + size])
        pos += size
    if pos != len(row):
        raise CopyFormatError(f"table {spec.name!r}: a COPY row does not end where its fields do")
    return out


def _integer(spec: TableSpec, field: bytes | None) -> int:
    if field is None or len(field) != 8:
        raise CopyFormatError(f"table {spec.name!r}: a run's count is not an int8")
    return int.from_bytes(field, "big", signed=True)


def decode_run(spec: TableSpec, row: bytes, encoding: str) -> tuple[int, Table | None]:
    """The run number and column arrays of one row of :func:`run_statement`
    (none for a run of blocks without rows); None for the arrays of a run to
    read again row by row (an empty string or the separator in its text)."""
    fixed, text = copy_layout(spec)
    fields = _fields(spec, row, _LEAD_FIELDS + len(fixed) + len(text))
    run, n, empty = (_integer(spec, f) for f in fields[:_LEAD_FIELDS])
    if n == 0:
        return run, empty_table(spec)
    if empty:
        return run, None
    out = empty_table(spec)
    ends = _LEAD_FIELDS + len(fixed)
    for c, field in zip(fixed, fields[_LEAD_FIELDS:ends], strict=True):
        values = _array(spec, c, field, n)
        out[c.name] = dates_from_days(values) if c.kind is ColumnKind.DATE else values
    for c, field in zip(text, fields[ends:], strict=True):
        if field is None:
            raise CopyFormatError(f"table {spec.name!r}, column {c.name!r}: a run without text")
        try:
            joined = field.decode(encoding)
        except UnicodeDecodeError as exc:
            raise ColumnDataError(
                spec.name,
                c.name,
                f"table {spec.name!r}, column {c.name!r}: text is not {encoding} ({exc})",
            ) from exc
        if joined.count(SEPARATOR) != n - 1:
            return run, None
        values = np.empty(n, dtype=object)
        values[:] = joined.split(SEPARATOR)
        values[values == ""] = None
        out[c.name] = values
    return run, out


def _array(spec: TableSpec, column: ColumnSpec, field: bytes | None, n: int) -> np.ndarray:
    """The ``n`` values of one-dimensional array ``field`` without NULLs:
    int64 days, or float64."""
    days = column.kind is ColumnKind.DATE
    oid, width, wire = (_INT4_OID, 4, ">i4") if days else (_FLOAT8_OID, 8, ">f8")
    where = f"table {spec.name!r}, column {column.name!r}"
    if field is None or len(field) != 20 + n * (4 + width):
        raise CopyFormatError(f"{where}: a run's array is not of its rows")
    head = np.frombuffer(field, ">i4", 5)
    if head.tolist() != [1, 0, oid, n, 1]:
        raise CopyFormatError(f"{where}: a run's array is not one dimension of {n} values")
    elements = np.frombuffer(field, np.dtype([("size", ">i4"), ("value", wire)]), offset=20)
    if (elements["size"] != width).any():
        raise CopyFormatError(f"{where}: a value of another width")
    return elements["value"].astype(np.int64 if days else np.float64)
