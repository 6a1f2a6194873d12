"""The settings of ``masterplan serve`` that may come from the environment.

A container image sets them once (``ENV MASTERPLAN_PORT=50151``) and both the
server (``masterplan serve``) and its health check (``masterplan health``)
read the same values, so the check follows the port and the TLS the server
uses. A flag given on the command line wins over the environment; an empty
variable counts as unset.

| flag | variable | default |
|---|---|---|
| ``--host`` | ``MASTERPLAN_HOST`` | ``127.0.0.1`` |
| ``--port`` | ``MASTERPLAN_PORT`` | ``50151`` |
| ``--registry`` | ``MASTERPLAN_REGISTRY`` | ``sqlite:///masterplan-registry.db`` |
| ``--tls-cert`` | ``MASTERPLAN_TLS_CERT`` | none (plaintext) |
| ``--tls-key`` | ``MASTERPLAN_TLS_KEY`` | none |
| ``--client-ca`` | ``MASTERPLAN_TLS_CLIENT_CA`` | none (no client certificates) |
| ``--insecure`` | ``MASTERPLAN_INSECURE`` (``1``/``true``/``yes``) | off |
| ``--metrics-port`` | ``MASTERPLAN_METRICS_PORT`` | none (no metrics endpoint) |
| ``--workers`` | ``MASTERPLAN_WORKERS`` | ``1`` (plans inline) |
| ``--executor`` | ``MASTERPLAN_EXECUTOR`` | ``threads`` |
| ``--dask`` | ``MASTERPLAN_DASK`` | none (no Dask cluster) |
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from masterplan.client.cli.usage import UsageError

__all__ = ["DEFAULT_PORT", "SERVE_SETTINGS", "apply_serve_settings", "parse_port"]

DEFAULT_PORT = 50151


def parse_port(text: str, source: str = "--port") -> int:
    """A TCP port number, 0 to 65535 (0: any free port)."""
    try:
        port = int(text)
    except ValueError:
        raise UsageError(f"{source} must be a port number, got {text!r}") from None
    if not 0 <= port <= 65535:
        raise UsageError(f"{source} must be a port number, got {port}")
    return port


def _switch(text: str, source: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise UsageError(f"{source} must be 1/true/yes or 0/false/no, got {text!r}")


def _text(text: str, source: str) -> str:
    return text


def _workers(text: str, source: str) -> int:
    try:
        workers = int(text)
    except ValueError:
        workers = 0
    if workers < 1:
        raise UsageError(f"{source} must be a whole number of at least 1, got {text!r}")
    return workers


def _executor(text: str, source: str) -> str:
    if text not in ("threads", "processes"):
        raise UsageError(f"{source} must be threads or processes, got {text!r}")
    return text


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting of ``serve``: its argparse ``dest``, variable and default."""

    dest: str
    env: str
    default: object
    parse: Callable[[str, str], object] = _text


SERVE_SETTINGS = (
    Setting("host", "MASTERPLAN_HOST", "127.0.0.1"),
    Setting("port", "MASTERPLAN_PORT", DEFAULT_PORT, parse_port),
    Setting("registry", "MASTERPLAN_REGISTRY", "sqlite:///masterplan-registry.db"),
    Setting("tls_cert", "MASTERPLAN_TLS_CERT", None),
    Setting("tls_key", "MASTERPLAN_TLS_KEY", None),
    Setting("client_ca", "MASTERPLAN_TLS_CLIENT_CA", None),
    Setting("insecure", "MASTERPLAN_INSECURE", False, _switch),
    Setting("metrics_port", "MASTERPLAN_METRICS_PORT", None, parse_port),
    Setting("workers", "MASTERPLAN_WORKERS", 1, _workers),
    Setting("executor", "MASTERPLAN_EXECUTOR", "threads", _executor),
    Setting("dask", "MASTERPLAN_DASK", None),
)


def apply_serve_settings(args: argparse.Namespace, environ: Mapping[str, str]) -> None:
    """Fill each setting the command line left unset (None) from ``environ``, else its default."""
    for setting in SERVE_SETTINGS:
        if getattr(args, setting.dest, None) is not None:
            continue
        raw = environ.get(setting.env, "")
        value = setting.parse(raw, setting.env) if raw else setting.default
        setattr(args, setting.dest, value)
