"""Streaming calls cannot starve the server: per-tenant and server-wide stream
limits, and the server ends streams whose client went silent.

Against ``masterplan serve`` processes: the request threads, the limits and
the watchdog are those of the real server.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from masterplan.status import parse_rpc_error
from masterplan.v1 import (
    planning_data_pb2,
    planning_data_pb2_grpc,
    planning_pb2,
    planning_pb2_grpc,
    tenant_admin_pb2,
    tenant_admin_pb2_grpc,
)
from tests.served import ADMIN, Served

#: What "promptly" means for a call that needs one free thread and no work.
PROMPT = 1.0


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    started: list[Served] = []

    def start(*extra: str) -> Served:
        s = Served(tmp_path, *extra)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


def _bearer(key: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {key}")]


class IdleUploads:
    """Upload streams that send their header and then nothing, until released."""

    def __init__(self, channel: grpc.Channel, key: str, tenant: str) -> None:
        self._stub = planning_data_pb2_grpc.PlanningDataStub(channel)
        self._key = key
        self._tenant = tenant
        self._release = threading.Event()
        self._plans = itertools.count()
        self.calls: list[grpc.Future] = []

    def _messages(self, plan: str) -> Iterator[planning_data_pb2.UploadDatasetRequest]:
        yield planning_data_pb2.UploadDatasetRequest(
            header=planning_data_pb2.UploadHeader(parent=f"tenants/{self._tenant}/plans/{plan}")
        )
        self._release.wait(120)

    def open(self, n: int) -> None:
        for _ in range(n):
            plan = f"p{next(self._plans)}"
            self.calls.append(
                self._stub.UploadDataset.future(self._messages(plan), metadata=_bearer(self._key))
            )

    def refused(self) -> list[grpc.Future]:
        return [c for c in self.calls if c.done()]

    def release(self) -> None:
        self._release.set()


def _wait_until(predicate: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def _assert_prompt(channel: grpc.Channel, other_key: str) -> None:
    """Health, another tenant's read and an admin call each answer within PROMPT."""
    calls = {
        "health": lambda: health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=5
        ),
        "another tenant": lambda: planning_pb2_grpc.PlanningStub(channel).ListRuns(
            planning_pb2.ListRunsRequest(parent="tenants/globex/plans/main"),
            metadata=_bearer(other_key),
            timeout=5,
        ),
        "admin": lambda: tenant_admin_pb2_grpc.TenantAdminStub(channel).ListTenants(
            tenant_admin_pb2.ListTenantsRequest(), metadata=_bearer(ADMIN), timeout=5
        ),
    }
    for name, call in calls.items():
        started = time.monotonic()
        call()
        seconds = time.monotonic() - started
        assert seconds < PROMPT, f"{name} took {seconds:.2f} s"


def test_idle_uploads_of_one_tenant_past_its_quota_are_refused_and_others_are_served(
    serve: Callable[..., Served],
) -> None:
    server = serve("--max-open-streams", "4")
    acme, globex = server.install("acme"), server.install("globex")
    with grpc.insecure_channel(server.address) as channel:
        uploads = IdleUploads(channel, acme, "acme")
        try:
            uploads.open(20)
            assert _wait_until(lambda: len(uploads.refused()) >= 16, 5)
            time.sleep(0.3)
            refused = uploads.refused()
            assert len(refused) == 16
            for call in refused:
                status = parse_rpc_error(call.exception())
                assert status.code == grpc.StatusCode.RESOURCE_EXHAUSTED
                assert status.reason == "QUOTA_EXCEEDED"
                assert status.metadata["resource"] == "open_streams"
                assert status.metadata["limit"] == "4"
            _assert_prompt(channel, globex)
        finally:
            uploads.release()


def test_idle_uploads_past_the_server_stream_limit_leave_threads_for_everyone_else(
    serve: Callable[..., Served],
) -> None:
    # Each tenant may hold all streams: only the server-wide limit stands
    # between the idle streams and the request threads.
    server = serve("--max-open-streams", "100", "--max-workers", "12", "--reserved-workers", "4")
    acme, globex = server.install("acme"), server.install("globex")
    with grpc.insecure_channel(server.address) as channel:
        uploads = IdleUploads(channel, acme, "acme")
        try:
            uploads.open(20)
            assert _wait_until(lambda: len(uploads.refused()) >= 12, 5)
            time.sleep(0.3)
            refused = uploads.refused()
            assert len(refused) == 12
            for call in refused:
                status = parse_rpc_error(call.exception())
                assert status.code == grpc.StatusCode.RESOURCE_EXHAUSTED
                assert status.metadata["resource"] == "server_streams"
            _assert_prompt(channel, globex)
        finally:
            uploads.release()


def test_an_idle_upload_is_ended_and_its_slot_freed(serve: Callable[..., Served]) -> None:
    server = serve("--max-open-streams", "1", "--stream-idle-seconds", "1")
    acme = server.install("acme")
    with grpc.insecure_channel(server.address) as channel:
        uploads = IdleUploads(channel, acme, "acme")
        try:
            started = time.monotonic()
            uploads.open(1)
            call = uploads.calls[0]
            assert _wait_until(call.done, 5), "the idle upload was never ended"
            assert 0.9 < time.monotonic() - started < 4
            assert call.code() in (grpc.StatusCode.CANCELLED, grpc.StatusCode.DEADLINE_EXCEEDED)
            # The slot is free again, and the ended upload left nothing behind.
            uploads.open(1)
            time.sleep(0.3)
            assert not uploads.calls[1].done()
        finally:
            uploads.release()
        assert _wait_until(uploads.calls[1].done, 5)
        with pytest.raises(grpc.RpcError) as failed:
            list(
                planning_pb2_grpc.PlanningStub(channel).RunPlan(
                    planning_pb2.RunPlanRequest(parent="tenants/acme/plans/p0"),
                    metadata=_bearer(acme),
                    timeout=5,
                )
            )
        assert parse_rpc_error(failed.value).reason == "NO_DATASET"
    assert "ended by the server" in server.log.read_text()


def test_health_watch_streams_and_counts_as_a_stream(serve: Callable[..., Served]) -> None:
    server = serve("--max-open-streams", "1")
    with grpc.insecure_channel(server.address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        first = stub.Watch(health_pb2.HealthCheckRequest(), timeout=5)
        assert next(first).status == health_pb2.HealthCheckResponse.SERVING
        second = stub.Watch(health_pb2.HealthCheckRequest(), timeout=5)
        with pytest.raises(grpc.RpcError) as refused:
            next(second)
        assert parse_rpc_error(refused.value).metadata["resource"] == "open_streams"
        first.cancel()
        # Check is unary: never refused for want of a stream slot.
        stub.Check(health_pb2.HealthCheckRequest(), timeout=PROMPT)
