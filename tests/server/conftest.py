"""A real server on loopback (port 0) with an admin key and two tenants."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from masterplan.client.client import MasterplanClient
from masterplan.server.app import RunningServer, start_server
from masterplan.server.config import ServerConfig
from masterplan.tenancy.keys import AdminCredential


@dataclass
class Live:
    running: RunningServer
    admin_key: str
    keys: dict[str, str]

    @property
    def address(self) -> str:
        return self.running.address

    def client(self, tenant: str | None = None, key: str | None = None) -> MasterplanClient:
        return MasterplanClient(
            self.address, key if key is not None else self.keys.get(tenant or "", None)
        )


@pytest.fixture
def live(tmp_path) -> Iterator[Live]:  # type: ignore[no-untyped-def]
    admin_key = secrets.token_urlsafe(24)
    config = ServerConfig(
        port=0, registry_url=f"sqlite:///{tmp_path / 'registry.db'}", grace_seconds=1
    )
    running = start_server(config, AdminCredential.from_key(admin_key))
    assert running.warmed_up.wait(60)  # health SERVING from here on
    keys = {}
    with MasterplanClient(running.address, admin_key) as admin:
        for name in ("acme", "globex"):
            keys[name] = admin.install_tenant(name).api_key
    try:
        yield Live(running, admin_key, keys)
    finally:
        running.stop(grace=1)
