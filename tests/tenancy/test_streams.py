"""OpenStreams: stream limits, and which streams the watchdog ends and why."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from masterplan.tenancy.errors import QuotaExceeded
from masterplan.tenancy.streams import OpenStreams, StreamEnded


class FakeContext:
    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    def is_active(self) -> bool:
        return not self.cancelled


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def streams(clock: Clock, per_tenant: int = 2, total: int = 3) -> OpenStreams:
    return OpenStreams(per_tenant, total, idle_seconds=10, max_seconds=100, clock=clock)


def test_a_tenant_and_the_server_are_held_to_their_limits() -> None:
    s = streams(Clock())
    a1 = s.open("a", "acme", "/m", FakeContext(), upload=True)
    s.open("a", "acme", "/m", FakeContext(), upload=True)
    with pytest.raises(QuotaExceeded) as tenant_full:
        s.open("a", "acme", "/m", FakeContext(), upload=True)
    assert (tenant_full.value.resource, tenant_full.value.limit) == ("open_streams", 2)
    s.open("b", "globex", "/m", FakeContext(), upload=True)
    with pytest.raises(QuotaExceeded) as server_full:
        s.open("c", "initech", "/m", FakeContext(), upload=True)
    assert (server_full.value.resource, server_full.value.limit) == ("server_streams", 3)
    s.close(a1)
    s.close(a1)  # closing twice frees one slot only
    assert s.count() == 2 and s.count("a") == 1
    s.open("c", "initech", "/m", FakeContext(), upload=True)


def test_only_streams_waiting_on_their_peer_too_long_are_ended() -> None:
    clock = Clock()
    s = streams(clock, total=10)
    waiting, working = FakeContext(), FakeContext()
    w = s.open("a", "acme", "/upload", waiting, upload=True)
    s.open("a", "acme", "/run", working, upload=False)
    w.waiting_since = 0.0
    clock.now = 9.0
    assert s.sweep() == 0
    clock.now = 10.5
    assert s.sweep() == 1
    assert waiting.cancelled and not working.cancelled
    assert w.ended is not None and "idle" in w.ended


def test_an_upload_open_too_long_is_ended_however_busy() -> None:
    clock = Clock()
    s = streams(clock, total=10)
    upload, run = FakeContext(), FakeContext()
    s.open("a", "acme", "/upload", upload, upload=True)
    s.open("a", "acme", "/run", run, upload=False)
    clock.now = 101
    assert s.sweep() == 1
    assert upload.cancelled and not run.cancelled


def test_a_stream_the_server_ended_never_ends_cleanly() -> None:
    clock = Clock()
    s = streams(clock)
    context = FakeContext()
    stream = s.open("a", "acme", "/upload", context, upload=True)

    def requests() -> Iterator[int]:
        yield 1
        # gRPC's iterator may just stop once the call is cancelled.

    watched = s.watch_requests(stream, requests())
    assert next(watched) == 1
    assert s.end_tenant("a", "the tenant was uninstalled") == 1
    assert context.cancelled
    with pytest.raises(StreamEnded, match="uninstalled"):
        next(watched)


def test_a_clean_end_of_an_active_stream_is_an_end() -> None:
    s = streams(Clock())
    stream = s.open("a", "acme", "/upload", FakeContext(), upload=True)
    assert list(s.watch_requests(stream, iter([1, 2]))) == [1, 2]
    assert stream.waiting_since is None
