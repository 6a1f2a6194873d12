"""The gRPC server process: wiring, health, reflection, graceful shutdown."""

from __future__ import annotations

import logging
import signal
import threading
import time
from concurrent import futures
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from masterplan.server.config import ServerConfig
from masterplan.server.departures import TenantDepartures
from masterplan.server.engine import warm_up
from masterplan.server.logs import configure as configure_logging
from masterplan.server.logs import fields
from masterplan.server.memory import keep_freed_memory
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

    @property
    def address(self) -> str:
        """``host:port`` as a client dials it."""
        return f"{self.config.host}:{self.port}"

    def stop(self, grace: float | None = None, drain: float = 0.0) -> None:
        """Drain and stop.

        Health turns NOT_SERVING first and stays observable for ``drain``
        seconds while new calls are still accepted (so that load balancers
        and health probes see it); then new calls are refused and in-flight
        ones get ``grace`` seconds to finish before they are cancelled.
        """
        self.health.enter_graceful_shutdown()
        if drain > 0:
            time.sleep(drain)
        self.server.stop(self.config.grace_seconds if grace is None else grace).wait()
        self.departures.stop()
        self.streams.stop()
        self.registry.close()


def start_server(config: ServerConfig, admin: AdminCredential) -> RunningServer:
    """Build and start the server; returns once it listens.

    Leaves the process's logging alone: tests and the embedded server run
    inside programs that configure it themselves (see :func:`serve_forever`).
    """
    if config.keep_freed_memory:
        # Before the server's threads exist: they must share the one arena.
        keep_freed_memory()
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
        interceptors=[AuthInterceptor(registry, admin, streams=streams, departures=departures)],
        options=options,
        maximum_concurrent_rpcs=config.max_concurrent_rpcs,
    )
    tenant_admin_pb2_grpc.add_TenantAdminServicer_to_server(
        TenantAdminServicer(registry, departures), server
    )
    # Its own deserializer: a message that does not parse is INVALID_ARGUMENT.
    add_data_servicer(PlanningDataServicer(stores, ledger, config.quotas), server)
    planning_pb2_grpc.add_PlanningServicer_to_server(
        PlanningServicer(stores, ledger, config.result_chunk_rows), server
    )
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    address = f"{config.host}:{config.port}"
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
    server.start()
    streams.start()
    departures.start()
    # Load the compiled netting kernels now, not in a tenant's first run.
    threading.Thread(target=warm_up, name="masterplan-warm-up", daemon=True).start()
    for name in ("", *SERVICE_NAMES):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info(
        "masterplan server listening",
        extra=fields(address=f"{config.host}:{port}", tls=config.tls is not None),
    )
    return RunningServer(
        server, port, health_servicer, stores, registry, ledger, config, streams, departures
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
