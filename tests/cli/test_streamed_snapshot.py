"""A snapshot sent as it is read (``stream_snapshot``), to a real embedded
server: the connector holds a piece or two, never the data set; a read that
fails part way leaves the server's data set as it was and raises the read's
own error; the state saved describes what the server applied."""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.generate import generate_tables
from masterplan.client.cli.syncing import stream_snapshot, sync_store
from masterplan.client.client import MasterplanClient
from masterplan.connector.sync import snapshot_state
from masterplan.contract.columns import Table, table_length
from masterplan.server.embedded import embedded_server


def _pieces(tables: dict[str, Table], rows: int) -> Iterator[tuple[str, Table]]:
    for name, table in tables.items():
        n = table_length(table)
        for start in range(0, max(n, 1), rows):
            yield name, {c: v[start : start + rows].copy() for c, v in table.items()}


@pytest.fixture(scope="module")
def tables() -> dict[str, Table]:
    return generate_tables(2000, seed=5)


def test_the_connector_holds_a_piece_or_two(tables: dict[str, Table], tmp_path: Path) -> None:
    alive: list[weakref.ref[object]] = []
    most = 0

    def watched() -> Iterator[tuple[str, Table]]:
        nonlocal most
        for name, piece in _pieces(tables, 500):
            # Pieces handed on before this one, still held by anybody.
            most = max(most, sum(r() is not None for r in alive))
            alive.append(weakref.ref(next(iter(piece.values()))))
            yield name, piece
            del piece

    with embedded_server() as emb, MasterplanClient(emb.address, emb.api_key) as client:
        parent = f"tenants/{emb.tenant}/plans/main"
        store = sync_store(tmp_path, emb.address, emb.tenant, emb.api_key, "main", "db")
        sent = stream_snapshot(client, parent, watched(), store)
        plan = client.get_plan(parent)
    assert len(alive) > 20
    assert most <= 2
    assert sent.table_rows == {n: table_length(t) for n, t in tables.items()}
    assert sent.report.kind == "snapshot" and plan.dataset_version == sent.report.dataset_version
    saved = store.load()
    whole = snapshot_state(tables, saved.etag, saved.version)
    assert saved.etag == plan.dataset_etag
    for name, state in whole.tables.items():
        assert (saved.tables[name].row_hashes == state.row_hashes).all(), name


def test_a_read_that_fails_part_way_changes_nothing(tables: dict[str, Table]) -> None:
    class Broken(RuntimeError):
        pass

    def failing() -> Iterator[tuple[str, Table]]:
        for i, item in enumerate(_pieces(tables, 500)):
            if i == 12:
                raise Broken("the database went away")
            yield item

    with embedded_server() as emb, MasterplanClient(emb.address, emb.api_key) as client:
        parent = f"tenants/{emb.tenant}/plans/main"
        first = stream_snapshot(client, parent, _pieces(tables, 500), None)
        before = client.get_plan(parent)
        with pytest.raises(Broken, match="went away"):
            stream_snapshot(client, parent, failing(), None)
        after = client.get_plan(parent)
    assert before.dataset_version == first.report.dataset_version
    assert (after.dataset_version, after.dataset_etag) == (
        before.dataset_version,
        before.dataset_etag,
    )
