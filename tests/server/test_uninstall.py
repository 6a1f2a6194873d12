"""Uninstall leaves nothing behind: not an upload in flight, not the data held
by another server process on the same registry, not the registry's files."""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import grpc
import pytest

from masterplan.client import errors
from masterplan.client.client import MasterplanClient
from masterplan.contract.columns import Table
from masterplan.tenancy.keys import hash_key, key_prefix
from tests.served import Served
from tests.server.test_server import DATA, tables


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    started: list[Served] = []

    def start(*extra: str) -> Served:
        s = Served(tmp_path, *extra, registry=tmp_path / "shared-registry.db")
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


def _paused_after_first_table(event: threading.Event) -> Iterator[tuple[str, Table]]:
    """The upload's tables, stopping after the first until ``event`` is set."""
    for i, item in enumerate(tables(DATA)):
        if i == 1:
            event.wait(30)
        yield item


def test_uninstall_during_an_upload_refuses_it_and_keeps_nothing(live) -> None:  # type: ignore[no-untyped-def]
    running = live.running
    tenant_id = running.registry.get("acme").tenant_id
    resume = threading.Event()
    outcome: list[BaseException | object] = []

    def upload() -> None:
        try:
            with live.client("acme") as c:
                outcome.append(
                    c.upload("tenants/acme/plans/main", _paused_after_first_table(resume))
                )
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=upload)
    thread.start()
    deadline = time.monotonic() + 5
    while running.streams.count(tenant_id) == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert running.streams.count(tenant_id) == 1
    with MasterplanClient(live.address, live.admin_key) as admin:
        admin.uninstall_tenant("acme")
    resume.set()
    thread.join(30)
    assert len(outcome) == 1
    assert isinstance(outcome[0], errors.MasterplanClientError), outcome[0]
    assert outcome[0].code in (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAUTHENTICATED)
    deadline = time.monotonic() + 5
    while running.streams.count(tenant_id) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert tenant_id not in running.stores.tenant_ids()
    assert tenant_id not in running.ledger.tenant_ids()
    assert running.streams.count(tenant_id) == 0
    # The key is refused, and nothing recreates the tenant's store.
    with live.client("acme") as c, pytest.raises(errors.MasterplanClientError) as refused:
        c.upload("tenants/acme/plans/main", tables(DATA))
    assert refused.value.code == grpc.StatusCode.UNAUTHENTICATED
    assert tenant_id not in running.stores.tenant_ids()


def test_another_server_drops_a_tenant_uninstalled_through_the_first(
    serve: Callable[..., Served],
) -> None:
    first = serve("--tenant-sweep-seconds", "0.5")
    second = serve("--tenant-sweep-seconds", "0.5")
    key = first.install("zanzibar")
    for server in (first, second):
        with MasterplanClient(server.address, key) as c:
            c.upload("tenants/zanzibar/plans/main", tables(DATA))
    with closing(sqlite3.connect(first.registry)) as db:
        (tenant_id,) = db.execute(
            "SELECT tenant_id FROM tenants WHERE name = 'zanzibar'"
        ).fetchone()
    with first.admin() as admin:
        admin.uninstall_tenant("zanzibar")
    pattern = re.compile(
        rf"tenant dropped: uninstalled elsewhere.*tenant_id={tenant_id} bytes_freed=(\d+)"
    )
    deadline = time.monotonic() + 5
    while not (found := pattern.search(second.log.read_text())) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert found, second.log.read_text()
    assert int(found.group(1)) > 0
    # Dropped for good: refused although the second's cache last vouched for the key.
    with (
        MasterplanClient(second.address, key) as c,
        pytest.raises(errors.MasterplanClientError) as refused,
    ):
        c.list_runs("tenants/zanzibar/plans/main")
    assert refused.value.code == grpc.StatusCode.UNAUTHENTICATED


def test_the_registry_files_keep_nothing_of_an_uninstalled_tenant(
    serve: Callable[..., Served],
) -> None:
    first, second = serve(), serve()
    key = first.install("zanzibar")
    with MasterplanClient(second.address, key) as c:  # the second process reads the row too
        c.list_runs("tenants/zanzibar/plans/main")
    with closing(sqlite3.connect(first.registry)) as db:
        (tenant_id,) = db.execute(
            "SELECT tenant_id FROM tenants WHERE name = 'zanzibar'"
        ).fetchone()
    secrets = {
        "name": b"zanzibar",
        "key hash": hash_key(key).encode(),
        "key prefix": str(key_prefix(key)).encode(),
        "tenant id": tenant_id.encode(),
    }
    files = sorted(first.registry.parent.glob(first.registry.name + "*"))
    assert any(secrets["key hash"] in f.read_bytes() for f in files)  # the test can see it
    with first.admin() as admin:
        admin.uninstall_tenant("zanzibar")
    for f in sorted(first.registry.parent.glob(first.registry.name + "*")):
        content = f.read_bytes()
        for what, secret in secrets.items():
            assert secret not in content, f"the {what} is still in {f.name}"
