"""Server configuration: one frozen dataclass built once at start-up and passed down."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from masterplan.server.logs import LogFormat
from masterplan.tenancy.quotas import Quotas

__all__ = ["ServerConfig", "TlsConfig"]

MiB = 1024 * 1024


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
        max_workers: Threads serving RPCs (each streaming call holds one).
        max_concurrent_rpcs: Calls in progress before new ones are refused
            with ``RESOURCE_EXHAUSTED``.
        result_chunk_rows: Default rows per result chunk.
        quotas: Per-tenant limits.
        tls: TLS material, or None for plaintext (loopback use).
        grace_seconds: How long SIGTERM lets in-flight calls finish.
        drain_seconds: How long health reports NOT_SERVING, with new calls
            still accepted, before the server stops taking calls.
        keepalive_seconds: Interval of HTTP/2 keepalive pings to clients.
        keep_freed_memory: Keep memory a run frees in the process for the
            next run (:mod:`server.memory`); the resident size then stays at
            the peak of the largest run.
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
    """

    host: str = "127.0.0.1"
    port: int = 50151
    registry_url: str = "sqlite:///masterplan-registry.db"
    max_message_bytes: int = 64 * MiB
    max_workers: int = 16
    max_concurrent_rpcs: int = 64
    result_chunk_rows: int = 32_768
    quotas: Quotas = field(default_factory=Quotas)
    tls: TlsConfig | None = None
    grace_seconds: float = 30.0
    drain_seconds: float = 2.0
    keepalive_seconds: int = 60
    keep_freed_memory: bool = True
    log_format: LogFormat = "text"
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        # A typo in a deployment's settings should stop the start, not fall
        # back silently to another format a log collector cannot parse.
        if self.log_format not in ("text", "json"):
            raise ValueError(f"log_format must be 'text' or 'json', got {self.log_format!r}")
        if self.log_level.upper() not in logging.getLevelNamesMapping():
            raise ValueError(f"log_level must be a logging level name, got {self.log_level!r}")
