"""Read PostgreSQL tables with ``COPY … TO STDOUT (FORMAT binary)``.

The generic reader makes a Python tuple per row and a Python object per value
(``Decimal``, ``date``), then turns them into arrays: at 100k SKUs that is
two to three times the database's own time to produce the rows. ``COPY`` in
binary sends each value in its wire form — an 8-byte IEEE double, a 4-byte
day number, UTF-8 text — and those become arrays by whole-column numpy
gathers, with no Python object per number or date.

The decoding leans on one documented property of the protocol: every
CopyData message the server sends holds exactly one row (PostgreSQL
protocol, "COPY Operations"), and psycopg's ``Copy.read`` hands out one
message at a time. The row boundaries are therefore known without a scan;
each row's fields are then walked column by column, vectorised over all
rows, and every row's field count and end are checked against its message,
so a stream in any other shape is refused, never misread.

Columns are cast in the ``SELECT`` (text, ``float8``, ``date``) so that the
wire forms are those three whatever types the integrator chose; a column
whose type such a cast would not read exactly as the generic reader does
(``char(n)``, timestamps, integer ids, ...) keeps its table on the generic
reader (:func:`copy_eligible`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from itertools import islice
from typing import Any

import numpy as np
import sqlalchemy as sa
from numpy.lib.stride_tricks import sliding_window_view
from sqlalchemy.engine import Connection

from masterplan.connector.errors import ColumnDataError
from masterplan.contract.columns import Table, empty_table
from masterplan.contract.tables import ColumnKind, ColumnSpec, TableSpec

__all__ = [
    "CopyFormatError",
    "after_header",
    "copy_chunks",
    "copy_eligible",
    "copy_layout",
    "copy_messages",
    "copy_rows",
    "copy_statement",
    "dates_from_days",
    "day_number",
]

#: The binary COPY signature (11 bytes), then a 32-bit flags field and the
#: 32-bit length of a header extension.
_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"

#: The message that ends a binary COPY stream: a field count of -1.
_TRAILER = b"\xff\xff"

#: The day number that stands for a NULL date in the stream (the smallest
#: ``int4``; PostgreSQL's earliest date is about -2.4 million days).
_NULL_DAY = -(2**31)

#: The day number that stands for ``infinity`` or ``-infinity``.
_INFINITE_DAY = 2**31 - 1


class CopyFormatError(Exception):
    """The COPY stream is not in the shape this decoder reads (never expected
    from a PostgreSQL server; the caller reads the table the generic way)."""


def copy_eligible(spec: TableSpec, types: Mapping[str, Any]) -> bool:
    """Whether every column of ``spec`` reads through ``COPY`` exactly as the
    generic reader would read it.

    ``types`` are the database's column types by canonical column name (as
    :func:`~masterplan.connector.schema.verify_schema` returns them). Text
    ids must be ``varchar``/``text`` (a ``char(n)`` cast to text loses its
    padding; an integer id prints differently), quantities any number type,
    dates ``date`` (a timestamp's day depends on the session's time zone).
    """
    for column in spec.columns:
        sql_type = types.get(column.name)
        if sql_type is None:
            return False
        if column.kind is ColumnKind.STR:
            ok = isinstance(sql_type, sa.String) and not isinstance(sql_type, sa.CHAR | sa.Enum)
        elif column.kind is ColumnKind.DATE:
            ok = isinstance(sql_type, sa.Date) and not isinstance(sql_type, sa.DateTime)
        else:
            ok = isinstance(sql_type, sa.Float | sa.Numeric | sa.Integer) and not isinstance(
                sql_type, sa.Boolean
            )
        if not ok:
            return False
    return True


def copy_layout(spec: TableSpec) -> tuple[list[ColumnSpec], list[ColumnSpec]]:
    """``spec``'s columns as the COPY sends them: fixed-width ones (numbers,
    dates), then text."""
    text = [c for c in spec.columns if c.kind is ColumnKind.STR]
    return [c for c in spec.columns if c.kind is not ColumnKind.STR], text


def day_number(column: str) -> str:
    """SQL: a date column as days since 1970-01-01, NULL and the infinite
    dates as their sentinels."""
    return (
        f"CASE WHEN {column} IS NULL THEN {_NULL_DAY} "
        f"WHEN NOT isfinite({column}) THEN {_INFINITE_DAY} "
        f"ELSE {column} - DATE '1970-01-01' END"
    )


def copy_statement(conn: Connection, spec: TableSpec, origin: str | None = None) -> str:
    """``COPY (SELECT …) TO STDOUT (FORMAT binary)`` of ``spec``'s columns,
    from the table of that name or from ``origin`` (a source profile's query
    as a subquery, see :func:`~connector.profile.copy_origin`).

    Numbers come as ``float8`` with NULL as NaN and dates as ``int4`` days
    since 1970-01-01 with NULL and the infinite dates as sentinels no date
    reaches, so that every row begins with the same fixed-width fields at
    the same offsets; the text columns follow.
    """
    quote = conn.dialect.identifier_preparer.quote
    fixed, text = copy_layout(spec)
    columns = [
        day_number(quote(c.name))
        if c.kind is ColumnKind.DATE
        else f"coalesce({quote(c.name)}::float8, 'NaN')"
        for c in fixed
    ] + [f"{quote(c.name)}::text" for c in text]
    source = quote(spec.name) if origin is None else origin
    return f"COPY (SELECT {', '.join(columns)} FROM {source}) TO STDOUT (FORMAT binary)"


def copy_chunks(
    conn: Connection,
    spec: TableSpec,
    chunk_rows: int,
    origin: str | None = None,
    params: dict[str, Any] | None = None,
) -> Iterator[Table]:
    """Stream ``spec``'s table through binary ``COPY`` as chunks of at most
    ``chunk_rows`` rows, in the dtypes of the conventions; nothing for an
    empty table. ``origin`` and ``params``: read a source profile's query
    instead of the table (:func:`copy_statement`).

    Raises:
        ColumnDataError: Text is not in the connection's encoding.
        CopyFormatError: The stream is not one row per message (see the
            module docstring).
    """
    driver: Any = conn.connection.driver_connection
    encoding = driver.info.encoding
    statement = copy_statement(conn, spec, origin)
    with driver.cursor() as cursor, cursor.copy(statement, params):
        messages = copy_messages(driver.pgconn, type(driver).Error)
        for rows in copy_rows(spec, messages, chunk_rows):
            table = decode_rows(spec, rows, encoding)
            # The messages go before the piece is handed on: the collector,
            # paused while they were read, would otherwise walk them all
            # when it resumes (0.6 s of a 1M-SKU read).
            rows.clear()
            yield table


def copy_rows(spec: TableSpec, messages: Iterator[Any], size: int) -> Iterator[list[Any]]:
    """The rows of binary COPY stream ``messages`` (:func:`copy_messages`),
    in lists of at most ``size``: the header taken off the first, the
    trailer dropped, and the stream read on to its end, where psycopg takes
    the statement's result and frees the connection. The caller may clear
    each list once it is decoded, so that its messages go at once.

    The trailer is looked for only at the end of a list (it is the last
    message, and a row is longer), so that the messages are taken by
    ``islice`` with no Python step per row.

    Raises:
        CopyFormatError: No binary header, or data after the trailer.
    """
    head = next(messages, b"")
    rows: list[Any] = [after_header(spec, head)] if len(head) else []
    while True:
        rows.extend(islice(messages, size - len(rows)))
        done = len(rows) < size
        if rows and len(rows[-1]) == len(_TRAILER) and bytes(rows[-1]) == _TRAILER:
            rows.pop()
            done = True
        if rows and not len(rows[0]):
            rows.pop(0)  # the header came alone
        if rows:
            yield rows
        if done:
            for _ in messages:
                raise CopyFormatError(f"table {spec.name!r}: data after the COPY trailer")
            return
        rows = []


def copy_messages(pgconn: Any, error: type[Exception]) -> Iterator[Any]:
    """The COPY's data messages, one row each.

    They are taken from libpq itself (``Connection.pgconn``, which psycopg
    offers for what it does not wrap): psycopg's ``Copy.read`` costs about a
    microsecond per row in Python around the same libpq call, which was a
    third of a large read. At the end of the data libpq holds the
    statement's result, taken here; a failed statement raises ``error``
    (the driver's ``Error``) with the server's message.
    """
    get_copy_data = pgconn.get_copy_data
    while True:
        size, data = get_copy_data(0)  # blocks until a whole message is in
        if size < 0:
            break
        yield data
    failure = ""
    while (result := pgconn.get_result()) is not None:
        if result.error_message:
            failure = failure or result.error_message.decode(errors="replace").strip()
    if size == -2 or failure:
        raise error(failure or pgconn.error_message.decode(errors="replace").strip())


def after_header(spec: TableSpec, block: Any) -> Any:
    """The first message without the binary header that opens it."""
    head = bytes(block[:19])
    if len(head) < 19 or not head.startswith(_SIGNATURE):
        raise CopyFormatError(f"table {spec.name!r}: the COPY stream has no binary header")
    extension = int.from_bytes(head[15:19], "big")
    return block[19 + extension :]


def dates_from_days(days: np.ndarray) -> np.ndarray:
    """Dates of int64 day numbers as :func:`copy_statement` sends them (NULL
    as NaT); ``days`` is changed in place."""
    days[days == _NULL_DAY] = np.iinfo(np.int64).min  # NaT
    return days.view("datetime64[D]")


def _gather(buf: np.ndarray, pos: np.ndarray, width: int) -> np.ndarray:
    """uint8 (N, width): the ``width`` bytes at each of ``pos`` in ``buf``."""
    if len(pos) and (pos.min() < 0 or pos.max() + width > len(buf)):
        raise CopyFormatError("a field reaches past its row")
    # Rows of a view of every ``width`` bytes: one take of len(pos) rows.
    return sliding_window_view(buf, width)[pos]


def _fixed_dtype(fixed: list[ColumnSpec]) -> np.dtype:
    """The fixed-width start of every row: the field count, then each fixed
    column's length and big-endian value."""
    fields: list[tuple[str, str]] = [("count", ">i2")]
    for j, c in enumerate(fixed):
        fields.append((f"length{j}", ">i4"))
        fields.append((f"value{j}", ">i4" if c.kind is ColumnKind.DATE else ">f8"))
    return np.dtype(fields)


def decode_rows(spec: TableSpec, rows: list[Any], encoding: str) -> Table:
    """Column arrays of the binary COPY rows ``rows`` (one message each)."""
    fixed, text = copy_layout(spec)
    n = len(rows)
    sizes = np.fromiter(map(len, rows), np.int64, n)
    # A zero byte after the data: the separator of joined text values.
    buf = np.frombuffer(b"".join(rows) + b"\x00", np.uint8)
    ends = np.cumsum(sizes)
    starts = ends - sizes
    layout = _fixed_dtype(fixed)
    if (sizes < layout.itemsize).any():
        raise CopyFormatError(f"table {spec.name!r}: a COPY row is shorter than its fields")
    head = _gather(buf, starts, layout.itemsize).view(layout).ravel()
    if (head["count"] != len(spec.columns)).any():
        raise CopyFormatError(f"table {spec.name!r}: a COPY row has another number of fields")
    out = empty_table(spec)
    for j, c in enumerate(fixed):
        width = 4 if c.kind is ColumnKind.DATE else 8
        if (head[f"length{j}"] != width).any():
            raise CopyFormatError(
                f"table {spec.name!r}, column {c.name!r}: a value of another width"
            )
        if c.kind is ColumnKind.DATE:
            # (An infinite date stays a day no date can be: the reader marks
            # it unreadable, as it does a year past 9999.)
            out[c.name] = dates_from_days(head[f"value{j}"].astype(np.int64))
        else:
            out[c.name] = head[f"value{j}"].astype(np.float64)
    pos = starts + layout.itemsize
    fields = []
    for _ in text:
        if (pos + 4 > ends).any():
            raise CopyFormatError(f"table {spec.name!r}: a COPY field reaches past its row")
        length = _gather(buf, pos, 4).view(">i4").ravel().astype(np.int64)
        if (length < -1).any():
            raise CopyFormatError(f"table {spec.name!r}: a COPY field has a negative length")
        fields.append((pos + 4, length))
        pos = pos + 4 + np.maximum(length, 0)
    if (pos != ends).any():
        raise CopyFormatError(f"table {spec.name!r}: a COPY row does not end where its fields do")
    for c, (data, length) in zip(text, fields, strict=True):
        out[c.name] = _text(spec, c.name, buf, data, length, encoding)
    return out


def _text(
    spec: TableSpec,
    name: str,
    buf: np.ndarray,
    data: np.ndarray,
    length: np.ndarray,
    encoding: str,
) -> np.ndarray:
    """An object array of ``str`` (``None`` for NULL).

    The values are gathered into one byte string, each followed by a zero
    byte (which PostgreSQL text never holds), decoded once and split: one
    Python object per value, made in C.
    """
    n = len(data)
    size = np.maximum(length, 0)
    segment = size + 1
    offset = np.cumsum(segment) - segment
    index_type = np.int32 if len(buf) < 2**31 else np.int64
    index = np.repeat((data - offset).astype(index_type), segment)
    index += np.arange(int(segment.sum()), dtype=index_type)
    index[offset + size] = len(buf) - 1  # the zero byte after the data
    if len(index) and int(index.max()) >= len(buf):
        raise CopyFormatError(f"table {spec.name!r}, column {name!r}: text reaches past its row")
    try:
        text = buf[index[:-1]].tobytes().decode(encoding)
    except UnicodeDecodeError as exc:
        raise ColumnDataError(
            spec.name, name, f"table {spec.name!r}, column {name!r}: text is not {encoding} ({exc})"
        ) from exc
    parts = text.split("\x00")
    if len(parts) != n:
        raise CopyFormatError(f"table {spec.name!r}, column {name!r}: text holds a zero byte")
    out = np.empty(n, dtype=object)
    out[:] = parts
    out[length < 0] = None
    return out
