"""The upload step of the connector's cycle: a delta when it can, a snapshot otherwise.

SPEC §6: after a successful upload the connector can send only the rows
added, changed and removed since the last sync of that tenant and plan; the
server applies it atomically, and refuses a delta made against another data
set than it holds, in which case the connector sends a snapshot and says so.
What the last sync sent is kept in a state file (:mod:`connector.sync`),
written only after the server applied the upload, so that the state always
describes a data set the server held.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from masterplan.client.client import MasterplanClient
from masterplan.client.errors import DatasetChanged
from masterplan.connector.sync import (
    Delta,
    StateUnavailable,
    SyncState,
    SyncStore,
    compute_delta,
    snapshot_state,
)
from masterplan.contract.columns import Table, table_length

__all__ = ["SyncReport", "sync_dataset", "sync_store"]


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
    """

    kind: str
    reason: str
    rows_upserted: int
    rows_deleted: int
    detect_seconds: float
    dataset_version: int


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


def sync_dataset(
    client: MasterplanClient,
    parent: str,
    tables: Mapping[str, Table],
    store: SyncStore | None,
    *,
    want_delta: bool,
    on_chunk: Callable[[str, int], None] | None = None,
) -> SyncReport:
    """Upload ``tables`` as a delta (``want_delta``, a usable state) or a snapshot.

    Args:
        store: Where the last sync's state lives; None keeps no state (an
            embedded server, which holds nothing before this upload).
        want_delta: Try a delta (``--mode net_change`` without ``--full``).
    """
    t = time.perf_counter()
    state: SyncState | None = None
    reason = ""
    if store is not None and want_delta:
        try:
            state = store.load()
        except StateUnavailable as exc:
            reason = str(exc)
    delta: Delta | None = None
    if store is not None:
        delta = compute_delta(state, tables)
        if state is not None and delta.fallback:
            reason = delta.fallback
    detect = time.perf_counter() - t
    if want_delta and state is not None and delta is not None and not delta.fallback:
        try:
            return _send_delta(client, parent, state, delta, store, detect, on_chunk)
        except DatasetChanged as exc:
            reason = f"the server holds another data set than the last sync ({exc.message})"
    response = client.upload(parent, tables.items(), on_chunk=on_chunk)
    if store is not None:
        new_state = (
            delta.new_state(response.etag, response.version)
            if delta is not None
            else snapshot_state(tables, response.etag, response.version)
        )
        store.save(new_state)
    rows = sum(table_length(t) for t in tables.values())
    return SyncReport(
        "snapshot", reason if want_delta else "", rows, 0, detect, int(response.version)
    )


def _send_delta(
    client: MasterplanClient,
    parent: str,
    state: SyncState,
    delta: Delta,
    store: SyncStore | None,
    detect: float,
    on_chunk: Callable[[str, int], None] | None,
) -> SyncReport:
    upserts = [(n, d.upserts) for n, d in delta.tables.items() if d.upserted]
    deletes = [(n, d.deletes) for n, d in delta.tables.items() if d.deleted]
    response = client.upload(
        parent, upserts, on_chunk=on_chunk, mode="delta", base_etag=state.etag, deletes=deletes
    )
    if store is not None:
        store.save(delta.new_state(response.etag, response.version))
    return SyncReport("delta", "", delta.upserted, delta.deleted, detect, int(response.version))
