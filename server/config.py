"""Server configuration: one frozen dataclass built once at start-up and passed down."""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass, field
from typing import Literal

from masterplan.server.logs import LogFormat
from masterplan.tenancy.quotas import Quotas

__all__ = ["ServerConfig", "TlsConfig", "host_port", "is_loopback"]

MiB = 1024 * 1024


def host_port(host: str, port: int) -> str:
    """``host:port`` as gRPC parses it: an IPv6 literal such as ``::`` in brackets."""
    name = host.strip()
    if ":" in name and not name.startswith("["):
        name = f"[{name}]"
    return f"{name}:{port}"


def is_loopback(host: str) -> bool:
    """Whether ``host`` names only this machine: ``localhost``, 127.0.0.0/8 or ::1.

    Names are not resolved: a host name other than ``localhost`` counts as
    reachable from elsewhere, whatever it resolves to today. ``0.0.0.0``,
    ``::`` and the empty host listen on every interface, so they are not
    loopback either.
    """
    name = host.strip()
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """PEM bytes for server TLS; with ``client_ca`` clients must present a certificate."""

    cert_chain: bytes
    private_key: bytes
    client_ca: bytes | None = None


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Everything ``masterplan serve`` can be told.

    Attributes:
        host: Interface to listen on; loopback by default, so that a server
            is reachable from elsewhere only when asked.
        port: TCP port; 0 picks a free one (tests, the embedded server).
        registry_url: SQLAlchemy URL of the tenant registry.
        max_message_bytes: Limit of one gRPC message in either direction.
            Chunks are far smaller; the limit stops a hostile peer.
        max_workers: Threads serving RPCs; each streaming call holds one for
            as long as it is open, a unary call for its few milliseconds.
        reserved_workers: Threads streaming calls (uploads, runs, watches)
            may never take: health checks, admin calls and cheap reads always
            find one free, however many streams clients hold open. Streams
            beyond ``max_workers - reserved_workers`` (:attr:`max_streams`)
            are refused at once with ``RESOURCE_EXHAUSTED``
            (``server_streams``); each tenant is further held to
            ``quotas.max_open_streams``.
        stream_idle_seconds: How long a streaming call may wait on its
            client (the next upload message, or a client that does not read
            a run's results) before the server ends it (``CANCELLED``); an
            upload ended so keeps nothing of what it sent.
        stream_max_seconds: How long an upload stream may stay open in all,
            however steadily it sends.
        tenant_sweep_seconds: How often the server drops tenants that
            another process uninstalled from the shared registry (their data
            sets and results stay in memory here until then; their keys stop
            working after the registry's authentication cache, 5 s).
        max_concurrent_rpcs: Calls in progress (running or waiting for a
            thread) before gRPC refuses new ones with ``RESOURCE_EXHAUSTED``;
            above :attr:`max_streams`, so that unary calls can still wait
            for a reserved thread when every stream slot is taken.
        result_chunk_rows: Default rows per result chunk.
        quotas: Per-tenant limits.
        tls: TLS material, or None for plaintext (loopback use).
        insecure: Allow plaintext on a host that is not loopback
            (:func:`is_loopback`). Without TLS and without this, such a
            ``host`` is refused when the config is built, so that keys never
            cross a network in the clear by mistake. Set it only where TLS
            ends in front of the server (a load balancer, a service mesh).
        grace_seconds: How long SIGTERM lets in-flight calls finish.
        drain_seconds: How long health reports NOT_SERVING, with new calls
            still accepted, before the server stops taking calls.
        keepalive_seconds: Interval of HTTP/2 keepalive pings to clients.
        keep_freed_memory: Keep memory a run frees in the process for the
            next run (:mod:`server.memory`); the resident size then stays at
            the peak of the largest run. False gives it back to the OS as a
            run frees it, at the price of fresh pages each run.
        log_format: How the server process writes its log to stderr:
            ``"text"`` (``TIME LEVEL LOGGER MESSAGE key=value ...``, for people)
            or ``"json"`` (one object per line, for log collectors). Either
            way every line of an upload or run names its tenant, plan, run id
            and data-set version (:mod:`server.logs`). Only the server process
            (``masterplan serve``) installs it; an embedded server logs
            through its host program's logging.
        log_level: Level of the service's own log lines (``"DEBUG"`` adds
            plan reads such as GetPegging); other libraries log warnings and
            errors only.
        plan_workers: Workers a regeneration is planned over (SPEC §2): with
            more than 1, a data set that cuts into balanced partitions of
            independent clusters is planned over them, one task each, on
            :attr:`plan_executor`; 1 (the default) plans inline.
        plan_executor: ``threads`` (in the server process) or ``processes``
            (a pool of spawned processes) for :attr:`plan_workers`.
        dask_address: A Dask scheduler's address (``tcp://host:8786``): the
            partitions are planned on its cluster's workers instead, as many
            partitions as the cluster has worker threads.
        metrics_port: TCP port of the Prometheus metrics endpoint
            (``http://host:port/metrics``, plain HTTP on :attr:`host`); None
            (the default) serves none, 0 picks a free port (tests). The
            metrics are kept either way (:mod:`server.metrics`).
    """

    host: str = "127.0.0.1"
    port: int = 50151
    registry_url: str = "sqlite:///masterplan-registry.db"
    max_message_bytes: int = 64 * MiB
    max_workers: int = 64
    reserved_workers: int = 8
    stream_idle_seconds: float = 60.0
    stream_max_seconds: float = 3_600.0
    tenant_sweep_seconds: float = 30.0
    max_concurrent_rpcs: int = 128
    result_chunk_rows: int = 32_768
    quotas: Quotas = field(default_factory=Quotas)
    tls: TlsConfig | None = None
    insecure: bool = False
    grace_seconds: float = 30.0
    drain_seconds: float = 2.0
    keepalive_seconds: int = 60
    keep_freed_memory: bool = True
    log_format: LogFormat = "text"
    log_level: str = "INFO"
    metrics_port: int | None = None
    plan_workers: int = 1
    plan_executor: Literal["threads", "processes"] = "threads"
    dask_address: str | None = None

    def __post_init__(self) -> None:
        if self.tls is None and not self.insecure and not is_loopback(self.host):
            # API keys travel in call metadata: in plaintext off the machine
            # anyone on the path could read them.
            name = self.host.strip("[]")
            host = f"[{name}]" if ":" in name else name
            raise ValueError(
                f"refusing plaintext on {host}:{self.port}, which is not a loopback "
                "address: give TLS with --tls-cert and --tls-key (MASTERPLAN_TLS_CERT, "
                "MASTERPLAN_TLS_KEY), or --insecure (MASTERPLAN_INSECURE=1) where TLS "
                "ends in front of the server"
            )
        # A typo in a deployment's settings should stop the start, not fall
        # back silently to another format a log collector cannot parse.
        if self.log_format not in ("text", "json"):
            raise ValueError(f"log_format must be 'text' or 'json', got {self.log_format!r}")
        if self.log_level.upper() not in logging.getLevelNamesMapping():
            raise ValueError(f"log_level must be a logging level name, got {self.log_level!r}")
        if self.plan_workers < 1:
            raise ValueError(f"plan_workers must be at least 1, got {self.plan_workers}")
        if self.plan_executor not in ("threads", "processes"):
            raise ValueError(
                f"plan_executor must be 'threads' or 'processes', got {self.plan_executor!r}"
            )
        if not 1 <= self.reserved_workers < self.max_workers:
            # No reserve would let streams take every thread from health checks.
            raise ValueError(
                f"reserved_workers must be at least 1 and below max_workers "
                f"({self.max_workers}), got {self.reserved_workers}"
            )
        if self.max_concurrent_rpcs <= self.max_streams:
            raise ValueError(
                f"max_concurrent_rpcs must exceed the {self.max_streams} streams that "
                f"max_workers - reserved_workers allows, got {self.max_concurrent_rpcs}"
            )
        if self.metrics_port is not None and not 0 <= self.metrics_port <= 65535:
            raise ValueError(f"metrics_port must be 0 to 65535, got {self.metrics_port}")
        for name in ("stream_idle_seconds", "stream_max_seconds", "tenant_sweep_seconds"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")

    @property
    def max_streams(self) -> int:
        """Streaming calls open at once over all tenants: the threads not reserved."""
        return self.max_workers - self.reserved_workers
