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

import threading
from collections.abc import Callable, Mapping, Sequence
from enum import Enum

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from masterplan.connector.copytext import text_words
from masterplan.contract.coded import Coded, as_array
from masterplan.contract.tables import ColumnKind, ColumnSpec

__all__ = ["HEADER", "TRAILER", "Wire", "copy_binary", "load_row_loop", "wire_types"]

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
    table: Mapping[str, np.ndarray | Coded],
    constants: Sequence[str],
    encoding: str,
    where: str = "",
) -> memoryview:
    """The rows of ``table`` as binary ``COPY`` rows (no header or trailer).

    Every row begins with ``constants`` (the plan and run ids), then
    ``columns`` in the forms ``wires`` (:func:`wire_types`). NULL is
    ``None`` in text and NaN or NaT elsewhere, as in the in-memory
    conventions. Text may be :class:`~masterplan.contract.coded.Coded`
    (code -1 is NULL): each distinct value is then encoded once.
    ``where`` names the table in errors.

    Each column becomes its wire bytes at once (numpy); the rows are then
    laid out by one compiled loop (:func:`_lay_rows`). They are handed over
    as a view of the loop's array: made ``bytes``, a payload would be copied
    once whole and once more in the pieces the driver sends it in.

    Raises:
        ValueError: An integer is past its column's range, or text holds a
            zero byte or what ``encoding`` cannot hold (none of which the
            server would take either).
    """
    n = len(table[columns[0].name]) if columns else 0
    if not n:
        return memoryview(b"")
    prefix = (len(constants) + len(columns)).to_bytes(2, "big", signed=True) + b"".join(
        _field(value.encode(encoding)) for value in constants
    )
    widths = np.empty(len(columns), dtype=np.int64)
    fixed: list[np.ndarray] = []
    fixed_nulls: list[np.ndarray] = []
    text: list[np.ndarray] = []
    text_starts: list[np.ndarray] = []
    text_lengths: list[np.ndarray] = []
    base = 0
    for k, (column, wire) in enumerate(zip(columns, wires, strict=True)):
        cells = table[column.name]
        if wire is Wire.TEXT:
            data, starts, lengths = _text(column, cells, encoding, where)
            text.append(data)
            text_starts.append(starts + base)
            text_lengths.append(lengths)
            base += len(data)
            widths[k] = -1
        else:
            big, nulls = _fixed(column, wire, as_array(cells), where)
            fixed.append(big)
            fixed_nulls.append(nulls)
            widths[k] = big.shape[1]
    rows = _lay_rows_compiled()(
        np.frombuffer(prefix, dtype=np.uint8),
        widths,
        np.concatenate(fixed, axis=1) if fixed else np.empty((n, 0), dtype=np.uint8),
        np.stack(fixed_nulls) if fixed_nulls else np.empty((0, n), dtype=np.bool_),
        np.concatenate(text) if text else np.empty(0, dtype=np.uint8),
        np.stack(text_starts) if text else np.empty((0, n), dtype=np.int64),
        np.stack(text_lengths) if text else np.empty((0, n), dtype=np.int64),
    )
    return rows.data


def _lay_rows(
    prefix: np.ndarray,
    widths: np.ndarray,
    fixed: np.ndarray,
    fixed_nulls: np.ndarray,
    text: np.ndarray,
    text_starts: np.ndarray,
    text_lengths: np.ndarray,
) -> np.ndarray:
    """The rows, each ``prefix`` then its fields in the order of ``widths``.

    ``widths[k]`` is field k's byte width, or -1 for text. The fixed-width
    fields' bytes are the columns of ``fixed`` (rows, widths' sum), in
    order, NULL where ``fixed_nulls`` (fields, rows) says; text field t of
    row i is ``text_lengths[t, i]`` bytes of ``text`` from
    ``text_starts[t, i]``, NULL where that length is -1.

    Rows differ in length with their text and NULLs, so numpy could only
    place them by an index per byte: scatters of whole columns took 1.0-1.1 s
    for the 100k benchmark's 1.25M result rows, where this loop, compiled,
    lays them in 0.2 s (``docs/performance.md``). It is written in the
    subset of Python that numba compiles, and runs as plain Python where
    numba is absent.
    """
    n = fixed.shape[0]
    count = len(widths)
    total = 0
    for i in range(n):
        size = len(prefix) + 4 * count
        f = 0
        t = 0
        for k in range(count):
            if widths[k] >= 0:
                if not fixed_nulls[f, i]:
                    size += widths[k]
                f += 1
            else:
                if text_lengths[t, i] > 0:
                    size += text_lengths[t, i]
                t += 1
        total += size
    out = np.empty(total, dtype=np.uint8)
    p = 0
    for i in range(n):
        for j in range(len(prefix)):
            out[p + j] = prefix[j]
        p += len(prefix)
        f = 0
        t = 0
        col = 0
        for k in range(count):
            width = widths[k]
            # The field's length word (big-endian; -1 for NULL), then its bytes.
            size = width if width >= 0 else text_lengths[t, i]
            if width >= 0 and fixed_nulls[f, i]:
                size = -1
            word = size & 0xFFFFFFFF
            out[p] = (word >> 24) & 0xFF
            out[p + 1] = (word >> 16) & 0xFF
            out[p + 2] = (word >> 8) & 0xFF
            out[p + 3] = word & 0xFF
            p += 4
            if width >= 0:
                if size >= 0:
                    for j in range(width):
                        out[p + j] = fixed[i, col + j]
                    p += width
                col += width
                f += 1
            else:
                if size > 0:
                    start = text_starts[t, i]
                    for j in range(size):
                        out[p + j] = text[start + j]
                    p += size
                t += 1
    return out


def load_row_loop() -> None:
    """Have the compiled row loop ready: numba imported and the loop loaded
    from its on-disk cache, 0.3 s (compiled, where there is no cache yet,
    about 0.8 s). A writer calls it on a thread while the run is planned,
    so that the first payload does not wait for it."""
    _lay_rows_compiled()


def _lay_rows_compiled() -> Callable[..., np.ndarray]:
    """:func:`_lay_rows` compiled by numba (cached on disk) and loaded for
    the arrays :func:`copy_binary` passes, once; imported at the first
    payload rather than with the connector. As it is without numba."""
    with _LOOP_LOCK:
        if not _LOOP:
            _LOOP.append(_compile_loop())
        return _LOOP[0]


def _compile_loop() -> Callable[..., np.ndarray]:
    try:
        from numba import njit
    except ImportError:  # pragma: no cover - numba is a declared dependency
        return _lay_rows
    compiled: Callable[..., np.ndarray] = njit(cache=True, nogil=True)(_lay_rows)
    # One row with a fixed-width and a text field, in the exact array types
    # of copy_binary's call (the prefix is read-only, from bytes), so that
    # the machine code is loaded now and is the one every payload uses.
    compiled(
        np.frombuffer(b"\x00\x02", dtype=np.uint8),
        np.array([1, -1], dtype=np.int64),
        np.zeros((1, 1), dtype=np.uint8),
        np.zeros((1, 1), dtype=np.bool_),
        np.zeros(1, dtype=np.uint8),
        np.zeros((1, 1), dtype=np.int64),
        np.ones((1, 1), dtype=np.int64),
    )
    return compiled


_LOOP_LOCK = threading.Lock()
_LOOP: list[Callable[..., np.ndarray]] = []


def _field(value: bytes) -> bytes:
    return len(value).to_bytes(4, "big", signed=True) + value


def _fixed(
    column: ColumnSpec, wire: Wire, values: np.ndarray, where: str
) -> tuple[np.ndarray, np.ndarray]:
    """A fixed-width column as its big-endian bytes, uint8 (rows, width),
    and its NULL mask."""
    if wire is Wire.DATE:
        days = np.asarray(values, dtype="datetime64[D]")
        nulls = np.isnat(days)
        return _bytes((days.astype(np.int64) - _PG_EPOCH_DAYS).astype(">i4")), nulls
    numbers = np.asarray(values, dtype=np.float64)
    nulls = np.isnan(numbers)
    if wire is Wire.FLOAT8:
        if column.kind is ColumnKind.INT:  # whole, as the text path writes it
            numbers = np.rint(numbers)
        return _bytes(numbers.astype(">f8")), nulls
    whole = np.rint(np.where(nulls, 0.0, numbers))
    limit = _RANGE[wire]
    if ((whole < -limit) | (whole >= limit)).any():
        bad = whole[(whole < -limit) | (whole >= limit)][0]
        raise ValueError(f"{where}{column.name}: {bad:.0f} is out of range for its column")
    return _bytes(whole.astype(">i4" if wire is Wire.INT4 else ">i8")), nulls


def _bytes(big: np.ndarray) -> np.ndarray:
    return big.view(np.uint8).reshape(len(big), big.dtype.itemsize)


def _text(
    column: ColumnSpec, cells: np.ndarray | Coded, encoding: str, where: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A text column as its values' bytes, joined, and each row's start in
    them and byte count (-1 for NULL)."""
    if isinstance(cells, Coded):
        # The dictionary's values once, then each row's by its code; code
        # -1 takes the appended NULL.
        data, starts, lengths = _text(column, cells.values, encoding, where)
        return data, np.append(starts, 0)[cells.codes], np.append(lengths, -1)[cells.codes]
    words, nulls, joined = text_words(cells, "\x00")
    # Joined with a zero byte, which text cannot hold: the values' bounds
    # are the zeros, found by numpy rather than a len() per value.
    try:
        encoded = joined.encode("ascii") if joined.isascii() else joined.encode(encoding)
    except UnicodeEncodeError as exc:
        raise ValueError(f"{where}{column.name}: text is not {encoding} ({exc})") from exc
    data = np.frombuffer(encoded, np.uint8)
    zeros = np.flatnonzero(data == 0)
    if len(zeros) != max(len(words) - 1, 0):
        raise ValueError(f"{where}{column.name}: text holds a zero byte")
    starts = np.empty(len(words), dtype=np.int64)
    ends = np.empty(len(words), dtype=np.int64)
    if words:
        starts[0], starts[1:] = 0, zeros + 1
        ends[:-1], ends[-1] = zeros, len(data)
    if not nulls.any():
        return data, starts, ends - starts
    row_starts = np.zeros(len(nulls), dtype=np.int64)
    row_lengths = np.full(len(nulls), -1, dtype=np.int64)
    row_starts[~nulls] = starts
    row_lengths[~nulls] = ends - starts
    return data, row_starts, row_lengths
