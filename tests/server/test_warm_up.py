"""Health says SERVING only once the engine's kernels are compiled, and never again
once a graceful shutdown has begun; calls are served all along."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from masterplan.client.client import MasterplanClient
from masterplan.server.app import SERVICE_NAMES, RunningServer, start_server
from masterplan.server.config import ServerConfig
from masterplan.tenancy.keys import AdminCredential

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
ALL = ("", *SERVICE_NAMES)


class Gate:
    """A warm-up that blocks until the test opens it (or fails when told to)."""

    def __init__(self, fail: bool = False) -> None:
        self.entered = threading.Event()
        self.opened = threading.Event()
        self.fail = fail

    def __call__(self) -> float:
        self.entered.set()
        assert self.opened.wait(30), "the test never opened the gate"
        if self.fail:
            raise RuntimeError("kernels did not compile")
        return 0.0


@contextmanager
def started(tmp_path: Path, warm_up: Callable[[], object]) -> Iterator[tuple[RunningServer, str]]:
    admin = secrets.token_urlsafe(24)
    config = ServerConfig(port=0, registry_url=f"sqlite:///{tmp_path / 'reg.db'}")
    running = start_server(config, AdminCredential.from_key(admin), warm_up=warm_up)
    try:
        yield running, admin
    finally:
        running.stop(grace=0)


def statuses(address: str) -> dict[str, int]:
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        return {
            name: stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=5).status
            for name in ALL
        }


def test_health_is_not_serving_until_the_warm_up_ends_and_calls_are_served_meanwhile(
    tmp_path: Path,
) -> None:
    gate = Gate()
    with started(tmp_path, gate) as (running, admin):
        assert gate.entered.wait(10)
        assert statuses(running.address) == dict.fromkeys(ALL, NOT_SERVING)
        with MasterplanClient(running.address, admin, timeout=5) as client:
            assert client.install_tenant("acme").tenant.tenant_id == "acme"
        assert not running.warmed_up.is_set()
        gate.opened.set()
        assert running.warmed_up.wait(10)
        assert statuses(running.address) == dict.fromkeys(ALL, SERVING)


def test_a_warm_up_that_ends_after_shutdown_began_leaves_health_not_serving(
    tmp_path: Path,
) -> None:
    gate = Gate()
    with started(tmp_path, gate) as (running, _admin):
        assert gate.entered.wait(10)
        # What RunningServer.stop does first; the drain keeps the port open.
        running.health.enter_graceful_shutdown()
        gate.opened.set()
        assert running.warmed_up.wait(10)
        assert statuses(running.address) == dict.fromkeys(ALL, NOT_SERVING)


def test_a_failed_warm_up_leaves_health_not_serving(tmp_path: Path) -> None:
    gate = Gate(fail=True)
    gate.opened.set()
    with started(tmp_path, gate) as (running, _admin):
        assert running.warmed_up.wait(10)
        assert statuses(running.address) == dict.fromkeys(ALL, NOT_SERVING)


def test_the_engine_warm_up_is_the_default(tmp_path: Path) -> None:
    admin = secrets.token_urlsafe(24)
    config = ServerConfig(port=0, registry_url=f"sqlite:///{tmp_path / 'reg.db'}")
    running = start_server(config, AdminCredential.from_key(admin))
    try:
        assert running.warmed_up.wait(120)
        assert statuses(running.address) == dict.fromkeys(ALL, SERVING)
    finally:
        running.stop(grace=0)
