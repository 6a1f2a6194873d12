"""Open streaming calls: per-tenant and server-wide limits, idle and total deadlines.

A streaming call (an upload, a run) holds one of the server's request threads
for as long as it is open, whether or not its peer sends or reads anything.
Unbounded, sixteen silent uploads of one tenant took every thread, and health
checks, other tenants and the admin all waited. :class:`OpenStreams` bounds
that: a tenant may hold ``per_tenant`` streams, the server ``total`` (kept
below its thread count, so that unary calls always find a thread), and a
watchdog ends a stream that waits on its peer longer than ``idle_seconds`` or
an upload open longer than ``max_seconds``.

"Waiting on the peer" is time the handler is blocked on the client: reading
the next upload message, or handing a response message to a client that does
not read. Time the server spends working (decoding, planning) is not idle.

The watchdog ends a call with :meth:`grpc.RpcContext.cancel`, the one
operation gRPC allows from another thread; the client sees ``CANCELLED``. The
handler's next read then raises :class:`StreamEnded`, never a clean end of
stream, so that half an upload is never taken for a whole one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import grpc

from masterplan.tenancy.errors import QuotaExceeded
from masterplan.tenancy.periodic import Periodic

__all__ = ["OPEN_STREAMS", "SERVER_STREAMS", "OpenStreams", "Stream", "StreamEnded"]

log = logging.getLogger(__name__)

OPEN_STREAMS = "open_streams"
"""Resource named by :class:`QuotaExceeded` for the per-tenant limit (``Quotas.max_open_streams``)."""

SERVER_STREAMS = "server_streams"
"""Resource named by :class:`QuotaExceeded` for the server-wide limit of streaming calls."""


class _Cancellable(Protocol):
    """What the watchdog needs of a call: :class:`grpc.ServicerContext` has it."""

    def cancel(self) -> None: ...

    def is_active(self) -> bool: ...


class StreamEnded(grpc.RpcError):
    """The server ended the stream (idle, too long, or its tenant uninstalled).

    A :class:`grpc.RpcError`, as gRPC's own request iterator raises when a
    client goes away, so handlers treat both the same way: the stream broke
    off and nothing it carried is kept.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Stream:
    """One open streaming call, as the watchdog sees it."""

    __slots__ = (
        "context",
        "ended",
        "method",
        "opened",
        "tenant",
        "tenant_id",
        "upload",
        "waiting_since",
    )

    def __init__(
        self,
        tenant_id: str,
        tenant: str,
        method: str,
        context: _Cancellable,
        upload: bool,
        now: float,
    ) -> None:
        self.tenant_id = tenant_id
        #: The tenant's name, for log lines.
        self.tenant = tenant
        self.method = method
        self.context = context
        self.upload = upload
        self.opened = now
        #: Since when the handler waits on the peer; None while it works.
        self.waiting_since: float | None = None
        #: Why the server ended the call; None while it may go on.
        self.ended: str | None = None


class OpenStreams:
    """Counts open streaming calls and ends those that idle or last too long.

    Thread-safe; one per server.

    Args:
        per_tenant: Streams one tenant may hold open (``Quotas.max_open_streams``).
        total: Streams the server holds open over all tenants; below its
            thread count, so that unary calls (health, admin, reads) always
            find a free thread.
        idle_seconds: How long a stream may wait on its peer.
        max_seconds: How long an upload stream may stay open in all.
        clock: Monotonic clock; injectable for tests.
    """

    def __init__(
        self,
        per_tenant: int,
        total: int,
        idle_seconds: float,
        max_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_tenant = per_tenant
        self.total = total
        self.idle_seconds = idle_seconds
        self.max_seconds = max_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._open: dict[str, list[Stream]] = {}
        self._count = 0
        # A quarter of the idle limit keeps an idle stream's lifetime within
        # 125 % of it; a second at most keeps small limits (tests) precise.
        tick = min(1.0, max(0.05, idle_seconds / 4))
        self._watchdog = Periodic(self.sweep, tick, "masterplan-stream-watchdog")

    # -- accounting -----------------------------------------------------------

    def open(
        self, tenant_id: str, tenant: str, method: str, context: _Cancellable, upload: bool
    ) -> Stream:
        """Admit a new stream of ``tenant_id`` (called ``tenant``), or refuse it at once.

        Raises:
            QuotaExceeded: ``open_streams`` when the tenant holds
                ``per_tenant`` streams, ``server_streams`` when the server
                holds ``total``.
        """
        with self._lock:
            mine = self._open.get(tenant_id, [])
            if len(mine) >= self.per_tenant:
                raise QuotaExceeded(OPEN_STREAMS, self.per_tenant, len(mine) + 1)
            if self._count >= self.total:
                raise QuotaExceeded(SERVER_STREAMS, self.total, self._count + 1)
            stream = Stream(tenant_id, tenant, method, context, upload, self._clock())
            self._open.setdefault(tenant_id, []).append(stream)
            self._count += 1
            return stream

    def close(self, stream: Stream) -> None:
        """Forget a stream whose handler returned."""
        with self._lock:
            mine = self._open.get(stream.tenant_id)
            if mine is None or stream not in mine:
                return
            mine.remove(stream)
            self._count -= 1
            if not mine:
                del self._open[stream.tenant_id]

    def count(self, tenant_id: str | None = None) -> int:
        """Streams open, of one tenant or of all."""
        with self._lock:
            if tenant_id is None:
                return self._count
            return len(self._open.get(tenant_id, ()))

    def counts(self) -> dict[tuple[str, str], int]:
        """Streams open per holder, keyed by the holder's id and name (for metrics)."""
        with self._lock:
            return {(mine[0].tenant_id, mine[0].tenant): len(mine) for mine in self._open.values()}

    def tenant_ids(self) -> set[str]:
        """Tenants holding at least one open stream."""
        with self._lock:
            return set(self._open)

    def end_tenant(self, tenant_id: str, reason: str) -> int:
        """End every open stream of a tenant (it was uninstalled); returns how many."""
        with self._lock:
            doomed = list(self._open.get(tenant_id, ()))
        for stream in doomed:
            self._end(stream, reason)
        return len(doomed)

    # -- the handler's side ---------------------------------------------------

    def watch_requests(self, stream: Stream, requests: Iterator[Any]) -> Iterator[Any]:
        """``requests``, with the time spent waiting for each message watched.

        A stream the server ended, or one gRPC reports as ended although the
        client never half-closed it, raises :class:`StreamEnded` instead of
        ending cleanly: gRPC's iterator may stop without an error when a call
        is cancelled, which would pass half an upload off as all of it.
        """
        while True:
            stream.waiting_since = self._clock()
            try:
                message = next(requests)
            except StopIteration:
                stream.waiting_since = None
                if stream.ended is not None:
                    raise StreamEnded(stream.ended) from None
                if not stream.context.is_active():
                    raise StreamEnded("the call was cancelled before its stream ended") from None
                return
            except grpc.RpcError:
                stream.waiting_since = None
                if stream.ended is not None:
                    raise StreamEnded(stream.ended) from None
                raise
            stream.waiting_since = None
            if stream.ended is not None:
                raise StreamEnded(stream.ended)
            yield message

    def watch_responses(self, stream: Stream, responses: Iterator[Any]) -> Iterator[Any]:
        """``responses``, with the time gRPC takes to hand each one to the client watched."""
        for message in responses:
            stream.waiting_since = self._clock()
            yield message
            stream.waiting_since = None
            if stream.ended is not None:
                raise StreamEnded(stream.ended)

    # -- the watchdog ---------------------------------------------------------

    def start(self) -> None:
        """Start the watchdog thread (idempotent)."""
        self._watchdog.start()

    def stop(self) -> None:
        """Stop the watchdog thread."""
        self._watchdog.stop()

    def sweep(self) -> int:
        """End the streams past their idle or total deadline now; returns how many."""
        now = self._clock()
        doomed: list[tuple[Stream, str]] = []
        with self._lock:
            for mine in self._open.values():
                for s in mine:
                    if s.ended is not None:
                        continue
                    since = s.waiting_since
                    if since is not None and now - since > self.idle_seconds:
                        doomed.append((s, f"the stream was idle for over {self.idle_seconds:g} s"))
                    elif s.upload and now - s.opened > self.max_seconds:
                        doomed.append((s, f"the upload was open for over {self.max_seconds:g} s"))
        for s, reason in doomed:
            log.warning("%s of tenant %s ended by the server: %s", s.method, s.tenant, reason)
            self._end(s, reason)
        return len(doomed)

    def _end(self, stream: Stream, reason: str) -> None:
        stream.ended = reason
        stream.context.cancel()
