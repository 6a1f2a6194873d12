"""The one codec between columnar protobuf chunks and struct-of-arrays tables.

Used by the server (decode uploads, encode results) and by the connector and
client (the reverse). A column crosses the wire as one raw little-endian
buffer (strings as int32 codes into a per-chunk dictionary), so encoding and
decoding are a handful of numpy calls per column, never a loop over rows.
Decoding validates everything a hostile or broken peer could get wrong and
names the table, column and row of the first fault.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping

import numpy as np
from numpy.dtypes import StringDType

from masterplan.contract.coded import Coded, as_array, coded_nbytes
from masterplan.contract.columns import Table, empty_table, table_length
from masterplan.contract.tables import ColumnKind, TableSpec
from masterplan.v1 import columnar_pb2 as pb

__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "CodecError",
    "check_chunk",
    "concat",
    "decode_chunk",
    "decode_chunk_coded",
    "decoded_nbytes",
    "encode_table",
]

#: Rows per chunk: ~0.5-1 MB per chunk for typical tables, well under the
#: message size limit, large enough that per-message overhead is negligible.
DEFAULT_CHUNK_ROWS = 32_768
_INT32_MIN = np.iinfo(np.int32).min
_STR = StringDType()
_KIND_TYPE = {
    ColumnKind.STR: pb.COLUMN_TYPE_STRING,
    ColumnKind.FLOAT: pb.COLUMN_TYPE_FLOAT64,
    ColumnKind.INT: pb.COLUMN_TYPE_FLOAT64,
    ColumnKind.DATE: pb.COLUMN_TYPE_DATE,
}


class CodecError(ValueError):
    """A chunk does not match the schema; says which table, column and row."""

    def __init__(
        self, message: str, table: str = "", column: str = "", row: int | None = None
    ) -> None:
        super().__init__(message)
        self.table = table
        self.column = column
        self.row = row


def _type_name(value: pb.ColumnType.ValueType) -> str:
    """The enum name of a column type; a peer may send numbers no enum knows."""
    try:
        return pb.ColumnType.Name(value)
    except ValueError:
        return f"unknown type {value}"


def _encode_column(column: pb.Column, name: str, values: np.ndarray | Coded) -> None:
    """Fill the empty ``column`` with ``values`` as they cross the wire."""
    column.name = name
    if isinstance(values, Coded):
        # Already dictionary-encoded by the engine: renumber, no hashing.
        codes, dictionary = values.chunk_dictionary(0, len(values))
        column.type = pb.COLUMN_TYPE_STRING
        column.data = codes.astype("<i4").tobytes()
        column.dictionary.extend(dictionary)
        return
    if values.dtype.kind == "M":
        d = values.astype("datetime64[D]")
        ints = d.astype(np.int64)
        ints[np.isnat(d)] = _INT32_MIN
        column.type = pb.COLUMN_TYPE_DATE
        column.data = ints.astype("<i4").tobytes()
        return
    if values.dtype.kind in "fiu":
        column.type = pb.COLUMN_TYPE_FLOAT64
        column.data = values.astype("<f8").tobytes()
        return
    column.type = pb.COLUMN_TYPE_STRING
    # Dictionary in first-appearance order, by hashing in C: one pass over
    # the rows, no sort (the receiver needs no order).
    rows = values.tolist()
    distinct = dict.fromkeys(rows)
    if len(distinct) == len(rows) and None not in distinct:
        # Every value differs (an id column: planned orders, sales lines):
        # the dictionary is the rows in order and each row's code its
        # position, with no second pass of lookups (a third of the time).
        column.data = np.arange(len(rows), dtype="<i4").tobytes()
        column.dictionary.extend(rows)
        return
    distinct.pop(None, None)
    dictionary = list(distinct)
    position: dict[object, int] = dict(zip(dictionary, range(len(dictionary)), strict=True))
    position[None] = -1
    codes = np.fromiter(map(position.__getitem__, rows), dtype="<i4", count=len(rows))
    column.data = codes.tobytes()
    column.dictionary.extend(dictionary)


def encode_table(
    table_name: str,
    table: Mapping[str, np.ndarray | Coded],
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    *,
    change: pb.ChangeKind.ValueType = pb.CHANGE_KIND_UNSPECIFIED,
    order: np.ndarray | None = None,
    into: Callable[[], pb.ColumnarChunk] = pb.ColumnarChunk,
) -> Iterator[pb.ColumnarChunk]:
    """Split a table into chunks of at most ``chunk_rows`` rows (none for an empty table).

    ``change`` marks every chunk (``CHANGE_KIND_DELETE`` for the rows a
    difference removes); unspecified means upsert, the default on the wire.
    ``order``, when given, is a permutation of the rows: they are sent in
    that order, each chunk's taken as it is encoded.

    Each chunk is encoded into the empty message ``into()`` returns: the
    field of the message that will carry it, for a sender, since putting a
    finished chunk into another message copies every value in it (0.1 s
    of the 100k benchmark's 1.25M result rows).
    """
    if chunk_rows <= 0:
        raise ValueError("chunk_rows must be positive")
    n = table_length(table)
    if order is not None and len(order) != n:
        raise ValueError(f"order has {len(order)} positions for {n} rows")
    for start in range(0, n, chunk_rows):
        stop = min(start + chunk_rows, n)
        rows = slice(start, stop) if order is None else order[start:stop]
        chunk = into()
        chunk.table = table_name
        chunk.row_count = stop - start
        chunk.change = change
        for k, v in table.items():
            _encode_column(chunk.columns.add(), k, v[rows])
        yield chunk


def check_chunk(
    chunk: pb.ColumnarChunk, spec: TableSpec, *, required: Collection[str] | None = None
) -> dict[str, pb.Column]:
    """Check a chunk's declared shape against ``spec`` without allocating anything.

    Everything a peer declares (columns, types, buffer lengths, dictionary
    sizes) is checked here, before a single value is decoded: a chunk whose
    string dictionary has more entries than the chunk has rows (a few
    megabytes on the wire that would decode to gigabytes of strings) is
    refused before one string object exists.

    Args:
        required: The columns the chunk must carry; the others of ``spec``
            may be left out (a delta's delete chunk names rows by their key
            alone). None, the default and what data sets use: every column.

    Returns:
        The chunk's columns by name.

    Raises:
        CodecError: unknown or missing or repeated column, wrong type, a
            buffer of the wrong length, a dictionary larger than the rows.
    """
    n = chunk.row_count
    seen: dict[str, pb.Column] = {}
    for sent in chunk.columns:
        if sent.name in seen:
            raise CodecError(f"{spec.name}: column {sent.name!r} sent twice", spec.name, sent.name)
        if sent.name not in spec.column_names:
            raise CodecError(f"{spec.name}: unknown column {sent.name!r}", spec.name, sent.name)
        seen[sent.name] = sent
    for c in spec.columns:
        col = seen.get(c.name)
        if col is None:
            if required is not None and c.name not in required:
                continue
            raise CodecError(f"{spec.name}: column {c.name!r} is missing", spec.name, c.name)
        want = _KIND_TYPE[c.kind]
        if col.type != want:
            raise CodecError(
                f"{spec.name}.{c.name}: type {_type_name(col.type)}, expected {_type_name(want)}",
                spec.name,
                c.name,
            )
        width = 8 if want == pb.COLUMN_TYPE_FLOAT64 else 4
        if len(col.data) != n * width:
            raise CodecError(
                f"{spec.name}.{c.name}: {len(col.data)} bytes for {n} rows of {width} bytes",
                spec.name,
                c.name,
            )
        if len(col.dictionary) > n:
            raise CodecError(
                f"{spec.name}.{c.name}: a dictionary of {len(col.dictionary)} strings "
                f"for {n} rows (at most one string per row)",
                spec.name,
                c.name,
            )
    return seen


def decoded_nbytes(spec: TableSpec, rows: int) -> int:
    """Bytes ``rows`` decoded rows of ``spec`` take, as :func:`table_nbytes` counts them.

    Known from a chunk's declared ``row_count`` alone, so that a receiver can
    claim the memory before it decodes.
    """
    per_row = sum(8 + (56 if c.kind is ColumnKind.STR else 0) for c in spec.columns)
    return rows * per_row


def decode_chunk(
    chunk: pb.ColumnarChunk,
    spec: TableSpec,
    row_offset: int = 0,
    *,
    required: Collection[str] | None = None,
) -> Table:
    """Decode and check one chunk against ``spec``.

    Args:
        required: As for :func:`check_chunk`; the table returned holds the
            columns the chunk carried (every column of ``spec`` by default).

    Raises:
        CodecError: what :func:`check_chunk` refuses, a string code outside
            the dictionary, an infinite number.
    """
    coded = decode_chunk_coded(chunk, spec, row_offset, required=required)
    return {name: as_array(column) for name, column in coded.items()}


def decode_chunk_coded(
    chunk: pb.ColumnarChunk,
    spec: TableSpec,
    row_offset: int = 0,
    *,
    required: Collection[str] | None = None,
) -> dict[str, np.ndarray | Coded]:
    """:func:`decode_chunk`, with text columns left as they cross the wire:
    :class:`~masterplan.contract.coded.Coded`, the chunk's codes into its
    dictionary (an object array of ``str``).

    For a consumer that turns text into bytes anyway (a binary ``COPY``):
    it encodes each distinct value once, and no object array of the rows
    is made.
    """
    seen = check_chunk(chunk, spec, required=required)
    out: dict[str, np.ndarray | Coded] = {}
    for c in spec.columns:
        col = seen.get(c.name)
        if col is None:
            continue  # left out, as ``required`` allows
        want = _KIND_TYPE[c.kind]
        if want == pb.COLUMN_TYPE_FLOAT64:
            numbers = np.frombuffer(col.data, dtype="<f8").astype(np.float64)
            bad = np.flatnonzero(np.isinf(numbers))
            if len(bad):
                row = row_offset + int(bad[0])
                raise CodecError(
                    f"{spec.name}.{c.name}: row {row} is not a finite number",
                    spec.name,
                    c.name,
                    row,
                )
            out[c.name] = numbers
        elif want == pb.COLUMN_TYPE_DATE:
            ints = np.frombuffer(col.data, dtype="<i4").astype(np.int64)
            d = ints.astype("datetime64[D]")
            d[ints == _INT32_MIN] = np.datetime64("NaT")
            out[c.name] = d
        else:
            codes = np.frombuffer(col.data, dtype="<i4")
            k = len(col.dictionary)
            bad = np.flatnonzero((codes < -1) | (codes >= k))
            if len(bad):
                row = row_offset + int(bad[0])
                raise CodecError(
                    f"{spec.name}.{c.name}: row {row} has string code {int(codes[bad[0]])} "
                    f"outside the chunk's dictionary of {k}",
                    spec.name,
                    c.name,
                    row,
                )
            out[c.name] = Coded(
                codes.astype(np.int32, copy=False), np.fromiter(col.dictionary, object, k)
            )
    return out


def concat(spec: TableSpec, parts: Iterable[Table]) -> Table:
    """Concatenate decoded chunks of one table (an empty table for none)."""
    parts = list(parts)
    if not parts:
        return empty_table(spec)
    if len(parts) == 1:
        return parts[0]
    return {c: np.concatenate([p[c] for p in parts]) for c in spec.column_names}


def table_nbytes(table: Mapping[str, np.ndarray | Coded]) -> int:
    """Approximate bytes a table holds (object columns: pointer plus string size)."""
    total = 0
    for col in table.values():
        if isinstance(col, Coded):
            total += coded_nbytes(col)
            continue
        total += col.nbytes
        if col.dtype == object and len(col):
            # Python str objects: ~50 bytes of header plus the text; shared
            # strings are counted each time, an upper bound.
            total += 56 * len(col)
    return total
