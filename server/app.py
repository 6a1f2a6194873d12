"""The gRPC server process: wiring, health, reflection, graceful shutdown."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from concurrent import futures
from contextlib import ExitStack
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from masterplan.server.config import ServerConfig, host_port
from masterplan.server.departures import TenantDepartures
from masterplan.server.engine import warm_up as load_kernels
from masterplan.server.executors import ExecutorConfig, open_executor
from masterplan.server.logs import configure as configure_logging
from masterplan.server.logs import fields
from masterplan.server.memory import keep_freed_memory, release_freed_memory
from masterplan.server.metrics import MetricsEndpoint, ServerMetrics, serve_metrics
from masterplan.server.runs import Compute, PartitionedJob, regenerate_job
from masterplan.server.servicers.admin import TenantAdminServicer
from masterplan.server.servicers.data import PlanningDataServicer
from masterplan.server.servicers.data import add_to_server as add_data_servicer
from masterplan.server.servicers.planning import PlanningServicer
from masterplan.server.store import Stores
from masterplan.tenancy.interceptor import AuthInterceptor
from masterplan.tenancy.keys import AdminCredential
from masterplan.tenancy.quotas import QuotaLedger
from masterplan.tenancy.registry import TenantRegistry
from masterplan.tenancy.streams import OpenStreams
from masterplan.v1 import (
    planning_data_pb2,
    planning_pb2,
    planning_pb2_grpc,
    tenant_admin_pb2,
    tenant_admin_pb2_grpc,
)

__all__ = ["RunningServer", "serve_forever", "start_server"]

log = logging.getLogger(__name__)

SERVICE_NAMES = (
    tenant_admin_pb2.DESCRIPTOR.services_by_name["TenantAdmin"].full_name,
    planning_data_pb2.DESCRIPTOR.services_by_name["PlanningData"].full_name,
    planning_pb2.DESCRIPTOR.services_by_name["Planning"].full_name,
)


@dataclass
class RunningServer:
    """A started server and what a test or the CLI needs to talk to it and stop it."""

    server: grpc.Server
    port: int
    health: health.HealthServicer
    stores: Stores
    registry: TenantRegistry
    ledger: QuotaLedger
    config: ServerConfig
    streams: OpenStreams
    departures: TenantDepartures
    #: Set once the engine's warm-up has ended; health is SERVING from then on
    #: (unless the warm-up failed, or a shutdown began first).
    warmed_up: threading.Event = field(default_factory=threading.Event)
    #: The server's metrics (its own registry), served or not.
    metrics: ServerMetrics = field(kw_only=True)
    #: The HTTP endpoint serving them; None without ``config.metrics_port``.
    metrics_endpoint: MetricsEndpoint | None = field(default=None, kw_only=True)
    #: Set when :meth:`stop` begins: runs ended from then on were cancelled
    #: by the shutdown.
    stopping: threading.Event = field(default_factory=threading.Event, kw_only=True)
    #: Closes what planning over partitions opened (a pool, a Dask client).
    partitions: ExitStack = field(default_factory=ExitStack, kw_only=True)

    @property
    def address(self) -> str:
        """``host:port`` as a client dials it."""
        return host_port(self.config.host, self.port)

    @property
    def metrics_port(self) -> int | None:
        """The port of the metrics endpoint (the one picked for port 0); None when off."""
        return self.metrics_endpoint.port if self.metrics_endpoint is not None else None

    def stop(self, grace: float | None = None, drain: float = 0.0) -> None:
        """Drain and stop.

        Health turns NOT_SERVING first and stays observable for ``drain``
        seconds while new calls are still accepted (so that load balancers
        and health probes see it); then new calls are refused and in-flight
        ones get ``grace`` seconds to finish before they are cancelled.
        """
        self.stopping.set()
        self.health.enter_graceful_shutdown()
        if drain > 0:
            time.sleep(drain)
        self.server.stop(self.config.grace_seconds if grace is None else grace).wait()
        # Runs whose streams dropped go on without a call (SPEC §3): the
        # shutdown ends them as it ended the calls.
        self.stores.cancel_all("shutdown")
        if self.metrics_endpoint is not None:
            # After the calls: the drain and the last runs are still scraped.
            self.metrics_endpoint.stop()
        self.departures.stop()
        self.streams.stop()
        self.registry.close()
        # After the calls: no run is left to plan on the pool or the cluster.
        self.partitions.close()


def start_server(
    config: ServerConfig,
    admin: AdminCredential,
    *,
    warm_up: Callable[[], object] = load_kernels,
) -> RunningServer:
    """Build and start the server; returns once it listens.

    Calls are served at once, but health reports ``NOT_SERVING`` (for ``""``
    and each service) until ``warm_up`` has returned in a background thread,
    so that a load balancer or an orchestrator sends no traffic to a server
    still compiling its kernels. A run that comes meanwhile waits for the
    compilation, as it would without the warm-up.

    Leaves the process's logging alone: tests and the embedded server run
    inside programs that configure it themselves (see :func:`serve_forever`).

    Args:
        config: The server's settings.
        admin: The admin credential.
        warm_up: Compiles (or loads from numba's cache) the engine's kernels;
            the engine's :func:`~masterplan.server.engine.warm_up` by default.
    """
    if config.keep_freed_memory:
        # Before the server's threads exist: they must share the one arena.
        keep_freed_memory()
    else:
        release_freed_memory()
    registry = TenantRegistry(config.registry_url)
    stores = Stores()
    ledger = QuotaLedger(config.quotas)
    streams = OpenStreams(
        per_tenant=config.quotas.max_open_streams,
        total=config.max_streams,
        idle_seconds=config.stream_idle_seconds,
        max_seconds=config.stream_max_seconds,
    )
    departures = TenantDepartures(registry, stores, ledger, streams, config.tenant_sweep_seconds)
    metrics = ServerMetrics(stores, streams)
    stopping = threading.Event()
    partitions = ExitStack()
    regenerate = _regeneration(config, partitions)
    options = [
        ("grpc.max_receive_message_length", config.max_message_bytes),
        ("grpc.max_send_message_length", config.max_message_bytes),
        ("grpc.keepalive_time_ms", config.keepalive_seconds * 1000),
        ("grpc.keepalive_timeout_ms", 20_000),
        ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
        ("grpc.so_reuseport", 0),
    ]
    server = grpc.server(
        futures.ThreadPoolExecutor(
            max_workers=config.max_workers, thread_name_prefix="masterplan-rpc"
        ),
        interceptors=[
            AuthInterceptor(
                registry, admin, streams=streams, departures=departures, refusals=metrics
            )
        ],
        options=options,
        maximum_concurrent_rpcs=config.max_concurrent_rpcs,
    )
    tenant_admin_pb2_grpc.add_TenantAdminServicer_to_server(
        TenantAdminServicer(registry, departures), server
    )
    # Its own deserializer: a message that does not parse is INVALID_ARGUMENT.
    add_data_servicer(PlanningDataServicer(stores, ledger, config.quotas, metrics=metrics), server)
    planning_pb2_grpc.add_PlanningServicer_to_server(
        PlanningServicer(
            stores,
            ledger,
            config.result_chunk_rows,
            metrics=metrics,
            stopping=stopping,
            regenerate=regenerate,
        ),
        server,
    )
    health_servicer = health.HealthServicer()
    # Known, and NOT_SERVING, before the first call can ask (not NOT_FOUND).
    for name in ("", *SERVICE_NAMES):
        health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    address = host_port(config.host, config.port)
    if config.tls is not None:
        creds = grpc.ssl_server_credentials(
            [(config.tls.private_key, config.tls.cert_chain)],
            root_certificates=config.tls.client_ca,
            require_client_auth=config.tls.client_ca is not None,
        )
        port = server.add_secure_port(address, creds)
    else:
        port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot listen on {address}")
    endpoint = None
    if config.metrics_port is not None:
        # Before the server starts: a port that cannot be bound stops the start.
        endpoint = serve_metrics(metrics, config.host, config.metrics_port)
        log.info(
            "metrics endpoint listening",
            extra=fields(address=host_port(config.host, endpoint.port), path="/metrics"),
        )
    server.start()
    streams.start()
    departures.start()
    warmed_up = threading.Event()
    # Load the compiled netting kernels now, not in a tenant's first run.
    threading.Thread(
        target=_warm_up_then_serve,
        args=(warm_up, health_servicer, warmed_up),
        name="masterplan-warm-up",
        daemon=True,
    ).start()
    log.info(
        "masterplan server listening",
        extra=fields(address=host_port(config.host, port), tls=config.tls is not None),
    )
    return RunningServer(
        server,
        port,
        health_servicer,
        stores,
        registry,
        ledger,
        config,
        streams,
        departures,
        warmed_up=warmed_up,
        metrics=metrics,
        metrics_endpoint=endpoint,
        stopping=stopping,
        partitions=partitions,
    )


def _regeneration(config: ServerConfig, closing: ExitStack) -> Compute:
    """The server's regeneration: inline, or over partitions on the executor
    ``config`` names, opened now (a Dask scheduler that cannot be reached
    stops the start) and closed by ``closing``."""
    if config.dask_address:
        kind = ExecutorConfig("dask", address=config.dask_address)
    elif config.plan_workers > 1:
        kind = ExecutorConfig(config.plan_executor, config.plan_workers)
    else:
        return regenerate_job
    executor, workers = closing.enter_context(open_executor(kind))
    log.info(
        "planning over partitions",
        extra=fields(executor=kind.kind, workers=workers, address=kind.address or ""),
    )
    return PartitionedJob(executor, workers)


def _warm_up_then_serve(
    warm_up: Callable[[], object], health_servicer: health.HealthServicer, done: threading.Event
) -> None:
    """Run the warm-up, then turn health to SERVING; ``done`` is set either way.

    A warm-up that fails leaves health NOT_SERVING: the engine cannot plan,
    and the log says why. A shutdown that began first wins too: after
    ``enter_graceful_shutdown`` the health servicer ignores every ``set``, so
    a warm-up that ends during the drain cannot turn it back to SERVING.
    """
    start = time.perf_counter()
    try:
        warm_up()
    except Exception:
        log.exception("engine warm-up failed: health stays NOT_SERVING")
        done.set()
        return
    for name in ("", *SERVICE_NAMES):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    done.set()
    log.info(
        "engine warmed up",
        extra=fields(seconds=round(time.perf_counter() - start, 3)),
    )


#: How often the main thread looks for a signal's handler to run.
_SIGNAL_POLL_SECONDS = 0.2


def serve_forever(
    config: ServerConfig, admin: AdminCredential, ready: threading.Event | None = None
) -> None:
    """Run until SIGTERM or SIGINT, then drain gracefully.

    This is the server process's entry point, so it owns the process's
    logging and installs ``config.log_format`` before anything logs.
    """
    configure_logging(config.log_format, config.log_level)
    running = start_server(config, admin)
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        log.info(
            "signal %d: draining",
            signum,
            extra=fields(drain_seconds=config.drain_seconds, grace_seconds=config.grace_seconds),
        )
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(f"masterplan server listening on {running.address}", flush=True)
    if ready is not None:
        ready.set()
    # Wait with a timeout: a signal may be delivered to any thread (gRPC's,
    # the engine's), and then only wakes a main thread that looks again; a
    # wait without one could sleep through SIGTERM until something else
    # woke it.
    while not stop.wait(_SIGNAL_POLL_SECONDS):
        pass
    running.stop(drain=config.drain_seconds)
    log.info("masterplan server stopped")
