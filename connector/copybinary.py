"""Rows in PostgreSQL's binary ``COPY`` format, made column by column.

In text format the server parses every number and date it is sent; in
binary it takes them as they are, 8 bytes for a double and 4 for a day.
Storing the 1.25M result rows of 100k SKUs from ready payloads took
PostgreSQL 2.73-2.81 s in binary against 3.03-3.08 s as text, and the
connector no longer formats a number or date as text (``docs/performance.md``).

Each value goes in its column's exact wire form, which only some column
types take: :func:`wire_types` reads the target table's types and gives
the forms, or None when a column has another type (``numeric``, ``real``,
``char(n)``, a domain, ...), and the writer then writes text
(:mod:`connector.copytext`), which the server converts to any type.

The format (PostgreSQL, "COPY", binary format): a header, then per row a
16-bit field count and per field a 32-bit length (-1 for NULL) and the
value's bytes, all big-endian, and a 16-bit -1 after the last row. Text is
sent in the connection's encoding, with no escaping.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import Enum

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from masterplan.connector.copytext import text_words
from masterplan.contract.tables import ColumnKind, ColumnSpec

__all__ = ["HEADER", "TRAILER", "Wire", "copy_binary", "wire_types"]

#: The signature, a flags field and the length of a header extension.
HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
#: What follows the last row.
TRAILER = b"\xff\xff"

#: Days from 1970-01-01 (numpy's epoch) to 2000-01-01 (PostgreSQL's).
_PG_EPOCH_DAYS = 10957


class Wire(Enum):
    """The wire form a column is sent in."""

    TEXT = "text"
    FLOAT8 = "float8"
    INT4 = "int4"
    INT8 = "int8"
    DATE = "date"


#: The column types each kind is sent to, by ``format_type`` of the column.
_FORMS: dict[ColumnKind, dict[str, Wire]] = {
    ColumnKind.STR: {"text": Wire.TEXT, "character varying": Wire.TEXT},
    ColumnKind.FLOAT: {"double precision": Wire.FLOAT8},
    ColumnKind.INT: {
        "integer": Wire.INT4,
        "bigint": Wire.INT8,
        "double precision": Wire.FLOAT8,
    },
    ColumnKind.DATE: {"date": Wire.DATE},
}

_RANGE = {Wire.INT4: 2**31, Wire.INT8: 2**63}


def wire_types(
    conn: Connection, target: sa.Table, columns: Sequence[ColumnSpec]
) -> list[Wire] | None:
    """The wire form of each of ``columns`` in ``target`` as the database has
    it, or None when one has a type this module does not write exactly.

    The types are read from the catalog (``format_type`` without the type
    modifier, so ``character varying(64)`` is ``character varying``); a
    domain is named by its own name and so takes the text path.
    """
    name = conn.dialect.identifier_preparer.format_table(target)
    rows = conn.exec_driver_sql(
        "SELECT attname, format_type(atttypid, NULL) FROM pg_attribute "
        "WHERE attrelid = to_regclass(%(t)s) AND attnum > 0 AND NOT attisdropped",
        {"t": name},
    ).all()
    have = {str(column): str(sql_type) for column, sql_type in rows}
    forms: list[Wire] = []
    for column in columns:
        form = _FORMS[column.kind].get(have.get(column.name, ""))
        if form is None:
            return None
        forms.append(form)
    return forms


def copy_binary(
    columns: Sequence[ColumnSpec],
    wires: Sequence[Wire],
    table: Mapping[str, np.ndarray],
    constants: Sequence[str],
    encoding: str,
    where: str = "",
) -> bytes:
    """The rows of ``table`` as binary ``COPY`` rows (no header or trailer).

    Every row begins with ``constants`` (the plan and run ids), then
    ``columns`` in the forms ``wires`` (:func:`wire_types`). NULL is
    ``None`` in text and NaN or NaT elsewhere, as in the in-memory
    conventions. ``where`` names the table in errors.

    Raises:
        ValueError: An integer is past its column's range, or text holds a
            zero byte or what ``encoding`` cannot hold (none of which the
            server would take either).
    """
    n = len(np.asarray(table[columns[0].name])) if columns else 0
    if not n:
        return b""
    prefix = (len(constants) + len(columns)).to_bytes(2, "big", signed=True) + b"".join(
        _field(value.encode(encoding)) for value in constants
    )
    fields = [
        _encode(column, wire, np.asarray(table[column.name]), encoding, where)
        for column, wire in zip(columns, wires, strict=True)
    ]
    sizes = np.full(n, len(prefix), dtype=np.int64)
    for _head, _data, lengths in fields:
        sizes += 4 + lengths
    ends = np.cumsum(sizes)
    starts = ends - sizes
    buf = np.empty(int(ends[-1]), dtype=np.uint8)
    # The row's start and its leading fixed-width fields are one block per
    # row, put in place at once; each later field on its own.
    lead = 0
    while lead < len(fields) and fields[lead][1].ndim == 2:
        lead += 1
    pos = _lead_blocks(buf, starts, np.frombuffer(prefix, np.uint8), fields[:lead])
    for head, data, lengths in fields[lead:]:
        _scatter(buf, pos, head.astype(">i4").view(np.uint8).reshape(n, 4))
        pos += 4
        if data.ndim == 2:  # fixed width: the rows that are not NULL
            known = lengths > 0
            _scatter(buf, pos[known], data[known])
        else:  # text: the values' bytes, joined
            offsets = np.cumsum(lengths) - lengths
            index = np.repeat(pos - offsets, lengths)
            index += np.arange(len(index), dtype=np.int64)
            buf[index] = data
        pos += lengths
    return buf.tobytes()


def _lead_blocks(
    buf: np.ndarray,
    starts: np.ndarray,
    prefix: np.ndarray,
    fields: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
) -> np.ndarray:
    """Write each row's ``prefix`` and fixed-width ``fields`` at ``starts``;
    the offsets where the rows' next fields go.

    Rows whose fields are NULL in the same columns have the same layout
    (a NULL is a length word and no bytes): each such group, one in a
    table without NULL there, is made as a (rows, width) block of whole
    column slices and scattered once, where a scatter per field and per
    length word took three times as long.
    """
    pattern = np.zeros(len(starts), dtype=np.int64)
    for f, (_head, _data, lengths) in enumerate(fields):
        pattern |= (lengths == 0).astype(np.int64) << f
    groups = np.unique(pattern)
    pos = starts + len(prefix)
    for group in groups:
        rows = np.flatnonzero(pattern == group) if len(groups) > 1 else slice(None)
        nulls = [bool(group >> f & 1) for f in range(len(fields))]
        width = len(prefix) + sum(
            4 + (0 if null else data.shape[1])
            for null, (_h, data, _l) in zip(nulls, fields, strict=True)
        )
        at = starts[rows]
        block = np.empty((len(at), width), dtype=np.uint8)
        block[:, : len(prefix)] = prefix
        offset = len(prefix)
        for null, (_head, data, _lengths) in zip(nulls, fields, strict=True):
            size = 0 if null else data.shape[1]
            word = -1 if null else size
            block[:, offset : offset + 4] = np.frombuffer(
                word.to_bytes(4, "big", signed=True), np.uint8
            )
            if not null:
                block[:, offset + 4 : offset + 4 + size] = data[rows]
            offset += 4 + size
        _scatter(buf, at, block)
        pos[rows] += width - len(prefix)
    return pos


def _field(value: bytes) -> bytes:
    return len(value).to_bytes(4, "big", signed=True) + value


def _scatter(buf: np.ndarray, at: np.ndarray, rows: np.ndarray) -> None:
    """Write each row of the uint8 (N, W) ``rows`` at its offset of ``at``."""
    if len(at):
        buf[at[:, None] + np.arange(rows.shape[1], dtype=np.int64)] = rows


def _encode(
    column: ColumnSpec, wire: Wire, values: np.ndarray, encoding: str, where: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One column as (each field's length word, its bytes, each value's
    byte count): the bytes are uint8 (N, W) for a fixed width, the joined
    text for text; NULL is a length word of -1 and no bytes."""
    if wire is Wire.TEXT:
        return _text(column, values, encoding, where)
    if wire is Wire.DATE:
        days = np.asarray(values, dtype="datetime64[D]")
        nulls = np.isnat(days)
        big = (days.astype(np.int64) - _PG_EPOCH_DAYS).astype(">i4")
        return _fixed(big, nulls, 4)
    numbers = np.asarray(values, dtype=np.float64)
    nulls = np.isnan(numbers)
    if wire is Wire.FLOAT8:
        if column.kind is ColumnKind.INT:  # whole, as the text path writes it
            numbers = np.rint(numbers)
        return _fixed(numbers.astype(">f8"), nulls, 8)
    whole = np.rint(np.where(nulls, 0.0, numbers))
    limit = _RANGE[wire]
    if ((whole < -limit) | (whole >= limit)).any():
        bad = whole[(whole < -limit) | (whole >= limit)][0]
        raise ValueError(f"{where}{column.name}: {bad:.0f} is out of range for its column")
    width = 4 if wire is Wire.INT4 else 8
    return _fixed(whole.astype(">i4" if width == 4 else ">i8"), nulls, width)


def _fixed(
    big: np.ndarray, nulls: np.ndarray, width: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lengths = np.where(nulls, 0, width).astype(np.int64)
    head = np.where(nulls, -1, width)
    return head, big.view(np.uint8).reshape(len(big), width), lengths


def _text(
    column: ColumnSpec, values: np.ndarray, encoding: str, where: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    words, nulls, joined = text_words(values, "\x00")
    # Joined with a zero byte, which text cannot hold: the values' byte
    # counts are the gaps between the zeros, found by numpy rather than a
    # len() per value.
    try:
        encoded = joined.encode("ascii") if joined.isascii() else joined.encode(encoding)
    except UnicodeEncodeError as exc:
        raise ValueError(f"{where}{column.name}: text is not {encoding} ({exc})") from exc
    data = np.frombuffer(encoded, np.uint8)
    zeros = np.flatnonzero(data == 0)
    if len(zeros) != max(len(words) - 1, 0):
        raise ValueError(f"{where}{column.name}: text holds a zero byte")
    bounds = np.concatenate([[-1], zeros, [len(data)]]) if words else np.array([-1])
    counts = np.diff(bounds) - 1
    lengths = np.zeros(len(nulls), dtype=np.int64)
    lengths[~nulls] = counts
    head = np.where(nulls, -1, lengths)
    return head, data[data != 0] if len(zeros) else data, lengths
