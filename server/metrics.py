"""Prometheus metrics of one server, and the log lines of the calls it refuses.

Every metric lives in :class:`ServerMetrics`, whose own
:class:`~prometheus_client.CollectorRegistry` belongs to one running server:
two servers in one process (tests, an embedded server beside a real one)
never share or double-count a series, and nothing here touches
``prometheus_client``'s process-wide default registry. ``masterplan serve
--metrics-port N`` serves that registry over HTTP (:func:`serve_metrics`).

The servicers, the error funnel and the authentication interceptor are
handed the one object and tell it what happened; nothing deep in the code
reaches for a module-level metric. What the stores and the open streams hold
is read when Prometheus scrapes (:class:`_Holdings`), so that the gauges are
never out of step with what the quotas count.

Labels name tenants by their name (the ``tenant`` of every log line), never
by a key or any part of one. Refusals are both counted and logged here:
the interceptor lives in :mod:`masterplan.tenancy`, which cannot use the
server's structured log fields.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from masterplan.server.logs import fields
from masterplan.server.store import Stores
from masterplan.tenancy.errors import QuotaExceeded
from masterplan.tenancy.streams import OpenStreams

__all__ = ["MetricsEndpoint", "ServerMetrics", "serve_metrics"]

log = logging.getLogger(__name__)

#: Wall-clock seconds of a whole run: a small plan takes a fraction of a
#: second, a large tenant's an hour at most (``--max-engine-seconds``).
RUN_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)

#: Seconds of one engine phase: milliseconds on small plans, minutes on the
#: netting of a million SKUs.
PHASE_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800)


class _Holdings(Collector):
    """Bytes each tenant holds and streams each holds open, read at scrape time."""

    def __init__(self, stores: Stores, streams: OpenStreams) -> None:
        self._stores = stores
        self._streams = streams

    def describe(self) -> list[Metric]:
        # Names only: the registry checks them for clashes without a scrape.
        return [
            GaugeMetricFamily("masterplan_tenant_bytes_held", "", labels=["tenant"]),
            GaugeMetricFamily("masterplan_open_streams", "", labels=["tenant"]),
        ]

    def collect(self) -> Iterator[Metric]:
        held = GaugeMetricFamily(
            "masterplan_tenant_bytes_held",
            "Bytes of data sets, kept results and net-change state a tenant holds "
            "(what its memory quota counts, uploads in flight aside)",
            labels=["tenant"],
        )
        for tenant, nbytes in sorted(self._stores.held().items()):
            held.add_metric([tenant], nbytes)
        yield held
        streams = GaugeMetricFamily(
            "masterplan_open_streams",
            "Streaming calls open (uploads, runs, reflection, health Watch), by tenant; "
            "-admin and -health count the admin's and health watchers' streams",
            labels=["tenant"],
        )
        for (holder_id, holder), count in sorted(self._streams.counts().items()):
            # Tenant names start with a letter; the ids of the other holders with "-".
            streams.add_metric([holder_id if holder_id.startswith("-") else holder], count)
        yield streams


class ServerMetrics:
    """The metrics of one server, and what the server tells them.

    Args:
        stores: The tenants' data sets and results, read for
            ``masterplan_tenant_bytes_held`` at each scrape.
        streams: The open streaming calls, read for ``masterplan_open_streams``.

    Attributes:
        registry: The registry every metric of this server is in; serve it
            with :func:`serve_metrics`.
    """

    def __init__(self, stores: Stores, streams: OpenStreams) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._runs = Counter(
            "masterplan_runs",
            "Runs ended, by tenant, mode (regeneration, net_change) and state "
            "(succeeded, failed, cancelled)",
            ["tenant", "mode", "state"],
            registry=r,
        )
        self._running = Gauge(
            "masterplan_runs_in_progress", "Runs planning now, by tenant", ["tenant"], registry=r
        )
        self._run_seconds = Histogram(
            "masterplan_run_duration_seconds",
            "Wall-clock seconds of a run from its start to its end, by mode and state",
            ["mode", "state"],
            buckets=RUN_BUCKETS,
            registry=r,
        )
        self._phase_seconds = Histogram(
            "masterplan_engine_phase_seconds",
            "Seconds of each engine phase (validate, index, levels, requirements, netting, "
            "delays, messages, ...) of the runs that succeeded",
            ["phase"],
            buckets=PHASE_BUCKETS,
            registry=r,
        )
        self._uploads = Counter(
            "masterplan_uploads",
            "Uploads ended, by tenant, mode (snapshot, delta) and state (applied; repeated: "
            "a retried request_id answered, not applied again; failed)",
            ["tenant", "mode", "state"],
            registry=r,
        )
        self._upload_rows = Counter(
            "masterplan_upload_rows",
            "Rows received in applied uploads (a delta's upserts and deletes), by tenant and mode",
            ["tenant", "mode"],
            registry=r,
        )
        self._quota_refusals = Counter(
            "masterplan_quota_refusals",
            "Calls refused RESOURCE_EXHAUSTED by a limit, by tenant and quota (the resource "
            "the error names)",
            ["tenant", "quota"],
            registry=r,
        )
        self._auth_refusals = Counter(
            "masterplan_auth_refusals",
            "Calls refused by the authentication interceptor, by the ErrorInfo reason",
            ["reason"],
            registry=r,
        )
        r.register(_Holdings(stores, streams))
        # The process's resident memory, CPU and open files (``process_*``,
        # Linux only): what a server is sized by. Its own registry, so the
        # process-wide default one is not needed for these either.
        ProcessCollector(registry=r)

    # -- runs -------------------------------------------------------------------
    def run_started(self, tenant: str) -> None:
        """A run of ``tenant`` began planning."""
        self._running.labels(tenant).inc()

    def run_ended(
        self,
        tenant: str,
        mode: str,
        state: str,
        seconds: float,
        phase_seconds: Mapping[str, float] | None = None,
    ) -> None:
        """A run that :meth:`run_started` reported ended.

        Args:
            tenant: The tenant's name.
            mode: ``regeneration`` or ``net_change``.
            state: ``SUCCEEDED``, ``FAILED`` or ``CANCELLED`` (any case).
            seconds: Wall-clock seconds from its start.
            phase_seconds: The engine's seconds per phase (a succeeded run's).
        """
        state = state.lower()
        self._running.labels(tenant).dec()
        self._runs.labels(tenant, mode, state).inc()
        self._run_seconds.labels(mode, state).observe(seconds)
        for phase, spent in (phase_seconds or {}).items():
            self._phase_seconds.labels(phase).observe(spent)

    # -- uploads ----------------------------------------------------------------
    def upload_ended(self, tenant: str, mode: str, state: str, rows: int = 0) -> None:
        """An upload ended ``applied`` (with ``rows`` received), ``repeated`` or ``failed``."""
        self._uploads.labels(tenant, mode, state).inc()
        if state == "applied":
            self._upload_rows.labels(tenant, mode).inc(rows)

    # -- refusals ----------------------------------------------------------------
    def quota_refused(self, tenant: str, exc: QuotaExceeded, method: str = "") -> None:
        """A call of ``tenant`` was refused by a limit: counted, and logged at WARNING.

        The line carries the call's context (tenant, plan, run) and the
        quota's name, limit and what was requested.
        """
        self._quota_refusals.labels(tenant, exc.resource).inc()
        log.warning(
            "quota exceeded",
            extra=fields(
                tenant=tenant,
                quota=exc.resource,
                limit=exc.limit,
                requested=exc.requested,
                method=method,
            ),
        )

    def call_denied(self, method: str, code: str, reason: str) -> None:
        """The interceptor refused a call (no key, a bad one, the wrong kind).

        Logged at WARNING with the method and reason only: the key, or any
        part of it, is never passed here.
        """
        self._auth_refusals.labels(reason).inc()
        log.warning("call refused", extra=fields(method=method, code=code, reason=reason))


@dataclass
class MetricsEndpoint:
    """The HTTP endpoint serving one server's metrics; :meth:`stop` ends it."""

    httpd: WSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        """The port it listens on (the one picked, when asked for port 0)."""
        return int(self.httpd.server_port)

    def stop(self) -> None:
        """Stop serving and close the socket; waits for the serving thread."""
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


def serve_metrics(metrics: ServerMetrics, host: str, port: int) -> MetricsEndpoint:
    """Serve ``metrics`` as Prometheus text at ``http://host:port/metrics``.

    Args:
        metrics: The server's metrics.
        host: Interface to listen on: the gRPC server's, so that metrics are
            no more exposed than the service itself.
        port: TCP port; 0 picks a free one.

    Raises:
        OSError: The port cannot be bound.
    """
    # gRPC writes an IPv6 address in brackets ("[::]"), the HTTP server without.
    httpd, thread = start_http_server(port, addr=host.strip("[]"), registry=metrics.registry)
    return MetricsEndpoint(httpd, thread)
