"""An in-process server on loopback, for ``masterplan run`` without ``--server`` and the demo.

It is the real server (same servicers, interceptor and wire format), bound to
127.0.0.1 on a free port, with a throw-away in-memory registry, a random admin
key and one tenant; it stops when the context ends.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from masterplan.server.app import start_server
from masterplan.server.config import ServerConfig
from masterplan.tenancy.keys import AdminCredential

__all__ = ["EmbeddedServer", "embedded_server"]

LOCAL_TENANT = "local"


@dataclass(frozen=True, slots=True)
class EmbeddedServer:
    address: str
    tenant: str
    api_key: str


@contextmanager
def embedded_server() -> Iterator[EmbeddedServer]:
    admin_key = secrets.token_urlsafe(32)
    config = ServerConfig(host="127.0.0.1", port=0, registry_url="sqlite://", grace_seconds=2.0)
    running = start_server(config, AdminCredential.from_key(admin_key))
    try:
        # Provisioned in process, as TenantAdmin's InstallTenant would.
        _tenant, api_key = running.registry.install(LOCAL_TENANT)
        yield EmbeddedServer(running.address, LOCAL_TENANT, api_key)
    finally:
        running.stop(grace=2.0)
