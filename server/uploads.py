"""Assembling an uploaded data set from its stream of columnar chunks.

Nothing of an upload becomes visible until the whole stream arrived, its
trailer proved it whole and every chunk decoded against the schema; a bad
chunk fails the upload with the offending table, column and row, and leaves
the previous data set in place.

Every limit is checked on what a chunk *declares* (its rows, its serialized
size, its dictionaries) before the chunk is decoded, and the memory its
decoded rows will take is claimed against the tenant's quota before it is
taken, so that a hostile or oversized upload is refused while it streams.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable

from masterplan.codec import check_chunk, concat, decode_chunk, decoded_nbytes
from masterplan.contract.columns import Table
from masterplan.contract.tables import INPUT_TABLES
from masterplan.server.errors import InvalidArgument
from masterplan.tenancy.errors import QuotaExceeded
from masterplan.v1 import columnar_pb2
from masterplan.v1 import planning_data_pb2 as pb

__all__ = ["Assembly", "assemble"]

_UPSERTS = (columnar_pb2.CHANGE_KIND_UNSPECIFIED, columnar_pb2.CHANGE_KIND_UPSERT)


def _claim_nothing(nbytes: int) -> None:
    """The memory claim of a caller that keeps no ledger (tests, tools)."""


class Assembly:
    """One snapshot upload being received: chunks in, complete tables out.

    Args:
        max_rows: Rows the upload may hold, all tables together.
        max_bytes: Serialized bytes of all chunks together.
        claim: Called with the bytes a chunk will take decoded, before it is
            decoded; raises (``QuotaExceeded``) to refuse them.
        digest: Keep a digest of the chunks (for ``request_id`` retries).
    """

    def __init__(
        self,
        max_rows: int,
        max_bytes: int,
        claim: Callable[[int], None] = _claim_nothing,
        *,
        digest: bool = False,
    ) -> None:
        self._max_rows = max_rows
        self._max_bytes = max_bytes
        self._claim = claim
        self._hash = hashlib.blake2b(digest_size=32) if digest else None
        self._parts: dict[str, list[Table]] = {name: [] for name in INPUT_TABLES}
        self.rows: dict[str, int] = dict.fromkeys(INPUT_TABLES, 0)
        self.chunks = 0
        self.total_rows = 0
        self.nbytes = 0

    @property
    def digest(self) -> bytes:
        """Digest of the chunks received so far, in order (empty when not kept)."""
        return self._hash.digest() if self._hash is not None else b""

    def add(self, chunk: columnar_pb2.ColumnarChunk) -> None:
        """Check, claim memory for, and decode one chunk.

        Raises:
            InvalidArgument: an unknown table, a delete in a snapshot, a
                ``ChangeKind`` no version of the protocol defines.
            CodecError: a malformed chunk.
            QuotaExceeded: more rows or bytes than allowed, or memory the
                tenant's quota cannot hold.
        """
        i = self.chunks
        spec = INPUT_TABLES.get(chunk.table)
        if spec is None:
            raise InvalidArgument(
                f"chunk {i}: unknown table {chunk.table!r}", field="chunk.table", table=chunk.table
            )
        if chunk.change not in _UPSERTS:
            if chunk.change == columnar_pb2.CHANGE_KIND_DELETE:
                raise InvalidArgument(
                    f"chunk {i}: a snapshot upload cannot delete rows", field="chunk.change"
                )
            raise InvalidArgument(
                f"chunk {i}: unknown ChangeKind {int(chunk.change)}", field="chunk.change"
            )
        total = self.total_rows + chunk.row_count
        if total > self._max_rows:
            raise QuotaExceeded("rows", self._max_rows, total)
        nbytes = self.nbytes + chunk.ByteSize()
        if nbytes > self._max_bytes:
            raise QuotaExceeded("upload_bytes", self._max_bytes, nbytes)
        check_chunk(chunk, spec)  # declared sizes, before anything is allocated
        self._claim(decoded_nbytes(spec, chunk.row_count))
        self._parts[spec.name].append(decode_chunk(chunk, spec, self.rows[spec.name]))
        if self._hash is not None:
            self._hash.update(chunk.SerializeToString(deterministic=True))
        self.rows[spec.name] += chunk.row_count
        self.total_rows = total
        self.nbytes = nbytes
        self.chunks += 1

    def check_trailer(self, trailer: pb.UploadTrailer) -> None:
        """Refuse a trailer whose counts differ from what arrived.

        Raises:
            InvalidArgument: field ``trailer.chunks`` or ``trailer.tables``,
                naming the table and both counts.
        """
        if trailer.chunks != self.chunks:
            raise InvalidArgument(
                f"the trailer counts {trailer.chunks} chunks, the server received {self.chunks}: "
                "nothing applied",
                field="trailer.chunks",
            )
        sent: dict[str, int] = {}
        for count in trailer.tables:
            if count.table not in INPUT_TABLES:
                raise InvalidArgument(
                    f"the trailer counts rows of unknown table {count.table!r}",
                    field="trailer.tables",
                    table=count.table,
                )
            if count.table in sent:
                raise InvalidArgument(
                    f"the trailer counts table {count.table!r} twice",
                    field="trailer.tables",
                    table=count.table,
                )
            sent[count.table] = count.rows
        for name, received in self.rows.items():
            if sent.get(name, 0) != received:
                raise InvalidArgument(
                    f"the trailer counts {sent.get(name, 0)} rows of {name!r}, "
                    f"the server received {received}: nothing applied",
                    field="trailer.tables",
                    table=name,
                )

    def tables(self) -> dict[str, Table]:
        """Every §4 input table, complete (those not sent empty).

        Joining a table's chunks briefly holds it twice; the largest such
        table is claimed first, and each table's chunks are freed as soon as
        it is joined.
        """
        joined = [
            decoded_nbytes(INPUT_TABLES[name], self.rows[name])
            for name, parts in self._parts.items()
            if len(parts) > 1
        ]
        if joined:
            self._claim(max(joined))
        out: dict[str, Table] = {}
        for name in INPUT_TABLES:
            parts = self._parts[name]
            self._parts[name] = []
            out[name] = concat(INPUT_TABLES[name], parts)
            del parts
        return out


def assemble(
    chunks: Iterable[columnar_pb2.ColumnarChunk], max_rows: int, max_bytes: int
) -> dict[str, Table]:
    """Decode all chunks into complete tables (every §4 input table present).

    The stream-less form of :class:`Assembly`, for callers that hold all
    chunks already and need no trailer.

    Raises:
        InvalidArgument: an unknown table, a delete in a snapshot.
        CodecError: a malformed chunk.
        QuotaExceeded: more rows than ``max_rows``, or more bytes on the wire
            than ``max_bytes``; checked per chunk.
    """
    assembly = Assembly(max_rows, max_bytes)
    for chunk in chunks:
        assembly.add(chunk)
    return assembly.tables()
