"""``masterplan health``: ask a server's standard health service whether it serves.

Exit 0 when the server (or ``--service``) reports ``SERVING``; otherwise one
line ``masterplan: ...`` on stderr and exit 1: ``NOT_SERVING`` (still
compiling the engine's kernels, draining for shutdown, or a warm-up that
failed), a server that does not answer, or a TLS handshake that fails. A
container's ``HEALTHCHECK`` runs it as it is: without flags it reads the
same environment as ``masterplan serve`` (:mod:`.settings`), so it dials
the port the server listens on and speaks TLS when the server does.

- Address: ``--server``, else ``MASTERPLAN_SERVER``, else ``127.0.0.1`` at
  ``MASTERPLAN_PORT`` (default 50151).
- TLS: ``--tls-ca`` (or ``MASTERPLAN_TLS_CA``) is the CA to verify the
  server with. Without one, when ``MASTERPLAN_TLS_CERT`` (the server's own
  certificate, as ``serve`` reads it) is set, that file is the trust root:
  right for a self-signed certificate or a chain that ends in its root.
  Otherwise plaintext. ``--tls-client-cert/--tls-client-key`` (or
  ``MASTERPLAN_TLS_CLIENT_CERT``/``_KEY``) for a server that requires client
  certificates; ``--tls-server-name`` (or ``MASTERPLAN_TLS_SERVER_NAME``)
  when the certificate does not name the address dialled.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from masterplan.client.cli.settings import DEFAULT_PORT, parse_port
from masterplan.client.cli.usage import Parser

if TYPE_CHECKING:
    import grpc

__all__ = ["add_health_command", "cmd_health"]


def _address(args: argparse.Namespace, environ: Mapping[str, str]) -> str:
    if args.server:
        return str(args.server)
    if environ.get("MASTERPLAN_SERVER"):
        return environ["MASTERPLAN_SERVER"]
    raw = environ.get("MASTERPLAN_PORT", "")
    port = parse_port(raw, "MASTERPLAN_PORT") if raw else DEFAULT_PORT
    return f"127.0.0.1:{port}"


def _file(flag: str | None, environ: Mapping[str, str], *names: str) -> bytes | None:
    """The bytes of the file the flag names, else the first variable set."""
    path = flag or next((environ[n] for n in names if environ.get(n)), None)
    return Path(path).read_bytes() if path else None


def _channel(args: argparse.Namespace, address: str, environ: Mapping[str, str]) -> grpc.Channel:
    import grpc

    root = _file(args.tls_ca, environ, "MASTERPLAN_TLS_CA", "MASTERPLAN_TLS_CERT")
    if root is None:
        return grpc.insecure_channel(address)
    cert = _file(args.tls_client_cert, environ, "MASTERPLAN_TLS_CLIENT_CERT")
    key = _file(args.tls_client_key, environ, "MASTERPLAN_TLS_CLIENT_KEY")
    if (cert is None) != (key is None):
        raise SystemExit("masterplan: --tls-client-cert and --tls-client-key go together")
    name = args.tls_server_name or environ.get("MASTERPLAN_TLS_SERVER_NAME")
    options = [("grpc.ssl_target_name_override", name)] if name else []
    credentials = grpc.ssl_channel_credentials(root, key, cert)
    return grpc.secure_channel(address, credentials, options=options)


def cmd_health(args: argparse.Namespace) -> int:
    """Check the server's health once; 0 only for ``SERVING``."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    environ = os.environ
    address = _address(args, environ)
    what = f"{address} ({args.service})" if args.service else address
    with _channel(args, address, environ) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(
                health_pb2.HealthCheckRequest(service=args.service), timeout=args.timeout
            )
        except grpc.RpcError as exc:
            # What a channel raises is a grpc.Call too: it has a code and details.
            code = exc.code().name if isinstance(exc, grpc.Call) else "UNKNOWN"
            details = exc.details() if isinstance(exc, grpc.Call) else str(exc)
            first = (details or "").strip().splitlines()[:1]
            raise SystemExit(
                f"masterplan: health of {what}: {code}" + (f": {first[0]}" if first else "")
            ) from None
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    if reply.status != health_pb2.HealthCheckResponse.SERVING:
        raise SystemExit(f"masterplan: health of {what}: {status}")
    print(f"{what}: {status}")
    return 0


def add_health_command(sub: argparse._SubParsersAction[Parser]) -> None:
    """Add ``health`` to the command line's subcommands."""
    p = sub.add_parser(
        "health",
        help="ask a server's health service: exit 0 when it is SERVING, 1 otherwise",
    )
    p.add_argument(
        "--server",
        help="host:port (or MASTERPLAN_SERVER; default: 127.0.0.1 at the port serve uses, "
        f"MASTERPLAN_PORT, else {DEFAULT_PORT})",
    )
    p.add_argument(
        "--service", default="", help="a service's full name (default: the server as a whole)"
    )
    p.add_argument(
        "--timeout", type=float, default=5.0, help="seconds to wait for the answer (default 5)"
    )
    p.add_argument(
        "--tls-ca",
        help="PEM of the CA that signed the server (or MASTERPLAN_TLS_CA; default: "
        "MASTERPLAN_TLS_CERT, the server's own certificate, when set; else plaintext)",
    )
    p.add_argument(
        "--tls-client-cert", help="PEM client certificate (or MASTERPLAN_TLS_CLIENT_CERT)"
    )
    p.add_argument("--tls-client-key", help="PEM client key (or MASTERPLAN_TLS_CLIENT_KEY)")
    p.add_argument(
        "--tls-server-name",
        help="the name to check the server's certificate for, when it does not name the "
        "address dialled (or MASTERPLAN_TLS_SERVER_NAME)",
    )
    p.set_defaults(func=cmd_health)
