"""Assembling an uploaded data set from its stream of columnar chunks.

Nothing of an upload becomes visible until the whole stream arrived and every
chunk decoded against the schema; a bad chunk fails the upload with the
offending table, column and row, and leaves the previous data set in place.
"""

from __future__ import annotations

from collections.abc import Iterable

from masterplan.codec import concat, decode_chunk
from masterplan.contract.columns import Table
from masterplan.contract.tables import INPUT_TABLES
from masterplan.server.errors import InvalidArgument
from masterplan.tenancy.errors import QuotaExceeded
from masterplan.v1 import columnar_pb2

__all__ = ["assemble"]


def assemble(
    chunks: Iterable[columnar_pb2.ColumnarChunk], max_rows: int, max_bytes: int
) -> dict[str, Table]:
    """Decode all chunks into complete tables (every §4 input table present).

    Raises:
        InvalidArgument: an unknown table, a delete in a snapshot.
        CodecError: a malformed chunk.
        QuotaExceeded: more rows than ``max_rows``, or more bytes on the wire
            than ``max_bytes``; checked per chunk, so an oversized upload is
            refused while it streams, not after it was held in memory.
    """
    parts: dict[str, list[Table]] = {name: [] for name in INPUT_TABLES}
    rows: dict[str, int] = dict.fromkeys(INPUT_TABLES, 0)
    total = 0
    nbytes = 0
    for i, chunk in enumerate(chunks):
        spec = INPUT_TABLES.get(chunk.table)
        if spec is None:
            raise InvalidArgument(
                f"chunk {i}: unknown table {chunk.table!r}", field="chunk.table", table=chunk.table
            )
        if chunk.change == columnar_pb2.CHANGE_KIND_DELETE:
            raise InvalidArgument(
                f"chunk {i}: a snapshot upload cannot delete rows", field="chunk.change"
            )
        total += chunk.row_count
        if total > max_rows:
            raise QuotaExceeded("rows", max_rows, total)
        nbytes += chunk.ByteSize()
        if nbytes > max_bytes:
            raise QuotaExceeded("upload_bytes", max_bytes, nbytes)
        parts[spec.name].append(decode_chunk(chunk, spec, rows[spec.name]))
        rows[spec.name] += chunk.row_count
    return {name: concat(INPUT_TABLES[name], parts[name]) for name in INPUT_TABLES}
