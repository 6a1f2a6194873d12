"""The upload step of the connector's cycle: a delta when it can, a snapshot otherwise.

SPEC §6: after a successful upload the connector can send only the rows
added, changed and removed since the last sync of that tenant and plan; the
server applies it atomically, and refuses a delta made against another data
set than it holds, in which case the connector sends a snapshot and says so.
What the last sync sent is kept in a state file (:mod:`connector.sync`),
written only after the server applied the upload, so that the state always
describes a data set the server held.

The state is loaded before the database is read (:func:`load_prior`): a
source profile's tables with a change column are then read by it, only their
keys and changed rows (:mod:`connector.changes`). A snapshot cannot be made
of such a read, so where the delta cannot be sent the tables are read again,
whole, before the snapshot goes.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from masterplan.client.client import MasterplanClient
from masterplan.client.errors import DatasetChanged
from masterplan.connector.changes import SourceRead
from masterplan.connector.sync import (
    Delta,
    SnapshotStates,
    StateUnavailable,
    SyncState,
    SyncStore,
    compute_delta,
    snapshot_state,
)
from masterplan.contract.columns import Table, table_length
from masterplan.contract.tables import INPUT_TABLES

__all__ = [
    "PriorSync",
    "StreamedSnapshot",
    "SyncReport",
    "load_prior",
    "stream_snapshot",
    "sync_dataset",
    "sync_store",
]


@dataclass(frozen=True, slots=True)
class SyncReport:
    """How the data reached the server.

    Attributes:
        kind: ``delta`` or ``snapshot``.
        reason: Why a snapshot was sent where a delta was asked for; empty
            otherwise.
        rows_upserted: Rows sent to add or replace (every row of a snapshot).
        rows_deleted: Rows sent to remove (a delta only).
        detect_seconds: Time spent finding the changes (hashing the rows).
        dataset_version: The server's data set version after the upload.
        rows_read: Full rows read from the SCM database, all tables together
            (both reads, where a snapshot had to read every table again).
        rows_read_per_table: The same per input table.
        keys_read: Keys read of the tables read by change column, every row
            of them (narrow reads: the key columns only).
        read_by_change: The tables whose delta came from a read by change
            column: their keys and only the rows changed since the last sync.
        read_whole: Tables with a change column that were read whole
            although a delta was asked for, and why.
    """

    kind: str
    reason: str
    rows_upserted: int
    rows_deleted: int
    detect_seconds: float
    dataset_version: int
    rows_read: int = 0
    rows_read_per_table: dict[str, int] = field(default_factory=dict)
    keys_read: int = 0
    read_by_change: list[str] = field(default_factory=list)
    read_whole: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PriorSync:
    """The last sync as far as the next one needs it.

    Attributes:
        state: Its state, or None where a snapshot is sent anyway.
        reason: Why there is no state although a delta was asked for; empty
            otherwise.
    """

    state: SyncState | None
    reason: str = ""


def sync_store(
    directory: Path, server: str, tenant: str | None, api_key: str, plan: str, db_url: str
) -> SyncStore:
    """The state file of one (server, tenant, plan, database).

    The tenant ``-`` names the key's own tenant, so a short digest of the key
    stands for it: two keys of two tenants never share a state.
    """
    if not tenant or tenant == "-":
        tenant = "key:" + hashlib.sha256(api_key.encode()).hexdigest()[:16]
    return SyncStore(directory, server, tenant, plan, db_url)


def load_prior(store: SyncStore | None, *, want_delta: bool) -> PriorSync:
    """The last sync's state where a delta is asked for (``--mode net_change``
    without ``--full``) and one is usable; load it before reading, since a
    read by change column reads against it."""
    if store is None or not want_delta:
        return PriorSync(None)
    try:
        return PriorSync(store.load())
    except StateUnavailable as exc:
        return PriorSync(None, str(exc))


def sync_dataset(
    client: MasterplanClient,
    parent: str,
    read: SourceRead,
    store: SyncStore | None,
    *,
    prior: PriorSync,
    want_delta: bool,
    read_whole: Callable[[], SourceRead] | None = None,
    on_chunk: Callable[[str, int], None] | None = None,
) -> SyncReport:
    """Upload what ``read`` gave as a delta (``want_delta``, a usable state) or a snapshot.

    Args:
        read: The tables as read against ``prior.state`` (some of them by
            change column only where it is given).
        store: Where the last sync's state lives; None keeps no state (an
            embedded server, which holds nothing before this upload).
        prior: The state ``read`` was read against (:func:`load_prior`).
        want_delta: Try a delta (``--mode net_change`` without ``--full``).
        read_whole: Reads every table whole: a snapshot cannot be made of a
            read by change column, so where the delta cannot be sent after
            one, the tables are read again.

    Raises:
        ValueError: ``read`` holds tables read by change column but there is
            no state or no ``read_whole`` to fall back on.
    """
    t = time.perf_counter()
    state = prior.state if want_delta else None
    reason = prior.reason
    if not read.complete and (state is None or read_whole is None):
        raise ValueError("tables read by change column need the state they were read against")
    delta: Delta | None = None
    if store is not None:
        delta = compute_delta(state, read.tables, read.changed, read.watermarks)
        if state is not None and delta.fallback:
            reason = delta.fallback
    detect = time.perf_counter() - t
    if want_delta and state is not None and delta is not None and not delta.fallback:
        try:
            return _send_delta(client, parent, state, delta, store, detect, read, on_chunk)
        except DatasetChanged as exc:
            reason = f"the server holds another data set than the last sync ({exc.message})"
    reads = [read]
    if not read.complete:
        assert read_whole is not None  # (checked above)
        read = read_whole()
        reads.append(read)
        delta = None
        reason += "; every table was read again, whole, for the snapshot"
    # The run that follows reports the input checks as plan messages.
    response = client.upload(parent, read.tables.items(), on_chunk=on_chunk, checks=False)
    if store is not None:
        new_state = (
            delta.new_state(response.etag, response.version)
            if delta is not None
            else snapshot_state(read.tables, response.etag, response.version, read.watermarks)
        )
        store.save(new_state)
    rows = sum(table_length(t) for t in read.tables.values())
    return _report(
        "snapshot", reason if want_delta else "", rows, 0, detect, int(response.version), reads
    )


def _send_delta(
    client: MasterplanClient,
    parent: str,
    state: SyncState,
    delta: Delta,
    store: SyncStore | None,
    detect: float,
    read: SourceRead,
    on_chunk: Callable[[str, int], None] | None,
) -> SyncReport:
    upserts = [(n, d.upserts) for n, d in delta.tables.items() if d.upserted]
    deletes = [(n, d.deletes) for n, d in delta.tables.items() if d.deleted]
    response = client.upload(
        parent,
        upserts,
        on_chunk=on_chunk,
        mode="delta",
        base_etag=state.etag,
        deletes=deletes,
        checks=False,
    )
    if store is not None:
        store.save(delta.new_state(response.etag, response.version))
    return _report(
        "delta", "", delta.upserted, delta.deleted, detect, int(response.version), [read]
    )


def _report(
    kind: str,
    reason: str,
    upserted: int,
    deleted: int,
    detect: float,
    version: int,
    reads: list[SourceRead],
) -> SyncReport:
    """The report, with what the reads read (the last read's tables were sent)."""
    per_table: dict[str, int] = {}
    for r in reads:
        for name, n in r.rows_read.items():
            per_table[name] = per_table.get(name, 0) + n
    return SyncReport(
        kind,
        reason,
        upserted,
        deleted,
        detect,
        version,
        rows_read=sum(per_table.values()),
        rows_read_per_table=per_table,
        keys_read=sum(sum(r.keys_read.values()) for r in reads),
        read_by_change=sorted(reads[-1].changed),
        read_whole=dict(reads[0].read_whole),
    )


@dataclass(frozen=True, slots=True)
class StreamedSnapshot:
    """A snapshot read and sent piece by piece (:func:`stream_snapshot`).

    Attributes:
        report: How the data reached the server.
        table_rows: Rows sent per input table.
        read_seconds: Time spent waiting for the database's pieces; the rest
            of the upload's time was hashing and sending.
        bytes_held: What the server holds of the data set (its answer's
            ``bytes_held``).
    """

    report: SyncReport
    table_rows: dict[str, int]
    read_seconds: float
    bytes_held: int = 0


def stream_snapshot(
    client: MasterplanClient,
    parent: str,
    pieces: Iterable[tuple[str, Table]],
    store: SyncStore | None,
    *,
    reason: str = "",
    on_chunk: Callable[[str, int], None] | None = None,
) -> StreamedSnapshot:
    """Send ``pieces`` (:func:`connector.reader.stream_input`) as one snapshot,
    each piece on its way while the next is read.

    The connector then holds a few pieces, not the data set: each is hashed
    for the sync state (with a ``store``) and encoded, then dropped. The
    state is saved only after the server applied the whole upload, as
    :func:`sync_dataset` saves it. A read that fails part way (a missing
    column, a value that does not convert) stops the upload before its
    trailer, so the server applies nothing, and its error is raised here.
    """
    states = SnapshotStates() if store is not None else None
    rows = dict.fromkeys(INPUT_TABLES, 0)
    waited = 0.0
    detect = 0.0

    failure: list[BaseException] = []
    source = iter(pieces)

    def sent() -> Iterator[tuple[str, Table]]:
        # Runs in the upload's request thread: what it raises there ends the
        # stream without a trailer and reaches the caller as another error.
        nonlocal waited, detect
        while True:
            t = time.perf_counter()
            try:
                item = next(source, None)
            except BaseException as exc:
                failure.append(exc)
                raise
            waited += time.perf_counter() - t
            if item is None:
                return
            name, piece = item
            rows[name] += table_length(piece)
            if states is not None:
                t = time.perf_counter()
                states.add(name, piece)
                detect += time.perf_counter() - t
            yield name, piece
            del item, piece

    try:
        response = client.upload(parent, sent(), on_chunk=on_chunk, checks=False)
    except BaseException:
        if failure:
            raise failure[0] from None
        raise
    finally:
        _close(source)
    if store is not None and states is not None:
        store.save(states.state(response.etag, response.version))
    total = sum(rows.values())
    report = SyncReport(
        "snapshot",
        reason,
        total,
        0,
        detect,
        int(response.version),
        rows_read=total,
        rows_read_per_table=dict(rows),
    )
    return StreamedSnapshot(report, rows, waited, int(response.bytes_held))


def _close(source: Iterator[tuple[str, Table]]) -> None:
    """End a read left part way (its transaction rolls back now, not when
    collected); one still running in the request thread ends with it."""
    close = getattr(source, "close", None)
    if close is None:
        return
    with contextlib.suppress(ValueError):  # still executing in the request thread
        close()
