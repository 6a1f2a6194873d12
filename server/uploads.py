"""Assembling an uploaded data set, or a delta, from its stream of columnar chunks.

Nothing of an upload becomes visible until the whole stream arrived, its
trailer proved it whole and every chunk decoded against the schema; a bad
chunk fails the upload with the offending table, column and row, and leaves
the previous data set in place.

Every limit is checked on what a chunk *declares* (its rows, its serialized
size, its dictionaries) before the chunk is decoded, and the memory its
decoded rows will take is claimed against the tenant's quota before it is
taken, so that a hostile or oversized upload is refused while it streams.

A delta's chunks are upserts and deletes, kept apart per table; a delete
chunk carries at least the columns that name a row
(:func:`masterplan.server.delta.delete_spec`): the key of a keyed table,
every column of one without a key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable

from masterplan.codec import check_chunk, concat, decode_chunk, decoded_nbytes
from masterplan.contract.columns import Table
from masterplan.contract.tables import INPUT_TABLES, TableSpec
from masterplan.server.delta import delete_spec, identity
from masterplan.server.errors import InvalidArgument
from masterplan.tenancy.errors import QuotaExceeded
from masterplan.tenancy.quotas import ROWS
from masterplan.v1 import columnar_pb2
from masterplan.v1 import planning_data_pb2 as pb

__all__ = ["Assembly", "assemble"]

_UPSERTS = (columnar_pb2.CHANGE_KIND_UNSPECIFIED, columnar_pb2.CHANGE_KIND_UPSERT)


def _claim_nothing(nbytes: int) -> None:
    """The memory claim of a caller that keeps no ledger (tests, tools)."""


class Assembly:
    """One upload being received: chunks in, complete tables (or a delta's changes) out.

    Args:
        max_rows: Rows the upload may hold, all tables together.
        max_bytes: Serialized bytes of all chunks together.
        claim: Called with the bytes a chunk will take decoded, before it is
            decoded; raises (``QuotaExceeded``) to refuse them.
        digest: Keep a digest of the chunks (for ``request_id`` retries).
        delta: The upload is a delta: ``CHANGE_KIND_DELETE`` chunks are
            accepted and kept apart from the upserts (:meth:`changes`).
            A snapshot refuses them.
    """

    def __init__(
        self,
        max_rows: int,
        max_bytes: int,
        claim: Callable[[int], None] = _claim_nothing,
        *,
        digest: bool = False,
        delta: bool = False,
    ) -> None:
        self.delta = delta
        self._max_rows = max_rows
        self._max_bytes = max_bytes
        self._claim = claim
        self._hash = hashlib.blake2b(digest_size=32) if digest else None
        self._parts: dict[str, list[Table]] = {name: [] for name in INPUT_TABLES}
        self._deletes: dict[str, list[Table]] = {name: [] for name in INPUT_TABLES}
        #: Rows received per table, upserts and deletes together (what the
        #: trailer counts).
        self.rows: dict[str, int] = dict.fromkeys(INPUT_TABLES, 0)
        self.upsert_rows: dict[str, int] = dict.fromkeys(INPUT_TABLES, 0)
        self.delete_rows: dict[str, int] = dict.fromkeys(INPUT_TABLES, 0)
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
            CodecError: a malformed chunk (a delete chunk without one of the
                columns that name a row).
            QuotaExceeded: more rows or bytes than allowed, or memory the
                tenant's quota cannot hold.
        """
        i = self.chunks
        spec = INPUT_TABLES.get(chunk.table)
        if spec is None:
            raise InvalidArgument(
                f"chunk {i}: unknown table {chunk.table!r}", field="chunk.table", table=chunk.table
            )
        delete = self._is_delete(i, chunk.change)
        total = self.total_rows + chunk.row_count
        if total > self._max_rows:
            raise QuotaExceeded(ROWS, self._max_rows, total)
        nbytes = self.nbytes + chunk.ByteSize()
        if nbytes > self._max_bytes:
            raise QuotaExceeded("upload_bytes", self._max_bytes, nbytes)
        if delete:
            self._add_delete(chunk, spec)
        else:
            check_chunk(chunk, spec)  # declared sizes, before anything is allocated
            self._claim(decoded_nbytes(spec, chunk.row_count))
            self._parts[spec.name].append(decode_chunk(chunk, spec, self.upsert_rows[spec.name]))
            self.upsert_rows[spec.name] += chunk.row_count
        if self._hash is not None:
            self._hash.update(chunk.SerializeToString(deterministic=True))
        self.rows[spec.name] += chunk.row_count
        self.total_rows = total
        self.nbytes = nbytes
        self.chunks += 1

    def _is_delete(self, i: int, change: columnar_pb2.ChangeKind.ValueType) -> bool:
        """Whether chunk ``i`` deletes rows; refuses what this upload cannot take."""
        if change in _UPSERTS:
            return False
        if change == columnar_pb2.CHANGE_KIND_DELETE:
            if not self.delta:
                raise InvalidArgument(
                    f"chunk {i}: a snapshot upload cannot delete rows", field="chunk.change"
                )
            return True
        raise InvalidArgument(f"chunk {i}: unknown ChangeKind {int(change)}", field="chunk.change")

    def _add_delete(self, chunk: columnar_pb2.ColumnarChunk, spec: TableSpec) -> None:
        """Decode a delete chunk, keeping only the columns that name a row.

        The chunk may carry the table's other columns too (a client that
        sends whole rows); they are checked like any column, then dropped.
        """
        need = identity(spec)
        check_chunk(chunk, spec, required=need)
        self._claim(decoded_nbytes(spec, chunk.row_count))
        rows = decode_chunk(chunk, spec, self.delete_rows[spec.name], required=need)
        self._deletes[spec.name].append({c: rows[c] for c in need})
        self.delete_rows[spec.name] += chunk.row_count

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
        self._claim_join()
        out: dict[str, Table] = {}
        for name in INPUT_TABLES:
            parts = self._parts[name]
            self._parts[name] = []
            out[name] = concat(INPUT_TABLES[name], parts)
            del parts
        return out

    def _claim_join(self) -> None:
        """Claim the largest table that joining chunks briefly holds twice."""
        joined = [
            decoded_nbytes(INPUT_TABLES[name], rows[name])
            for parts_by_table, rows in (
                (self._parts, self.upsert_rows),
                (self._deletes, self.delete_rows),
            )
            for name, parts in parts_by_table.items()
            if len(parts) > 1
        ]
        if joined:
            self._claim(max(joined))

    def changes(self) -> tuple[dict[str, Table], dict[str, Table]]:
        """A delta's upserts and deletes, per table that the upload sent rows of.

        Tables without rows of a kind are left out of that kind's mapping.
        Each table's chunks are freed as soon as they are joined.
        """
        self._claim_join()
        upserts: dict[str, Table] = {}
        deletes: dict[str, Table] = {}
        for name, spec in INPUT_TABLES.items():
            ups, dels = self._parts[name], self._deletes[name]
            self._parts[name], self._deletes[name] = [], []
            if self.upsert_rows[name]:
                upserts[name] = concat(spec, ups)
            if self.delete_rows[name]:
                deletes[name] = concat(delete_spec(spec), dels)
            del ups, dels
        return upserts, deletes


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
