"""``masterplan health``: exit 0 only when the server's health service says SERVING,
over plaintext or TLS, with the address and TLS from flags or the environment
``masterplan serve`` reads."""

from __future__ import annotations

import secrets
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from masterplan.server.app import RunningServer, start_server
from masterplan.server.config import ServerConfig, TlsConfig
from masterplan.tenancy.keys import AdminCredential
from tests.cli.test_serve_cli import clean_env
from tests.served import CLI, ROOT, free_port
from tests.server.test_tls import openssl, pki

__all__ = ["pki"]  # the certificates of tests/server/test_tls.py: a CA, a server, a client

needs_openssl = pytest.mark.skipif(
    shutil.which("openssl") is None, reason="needs the openssl command"
)


def health(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "health", *args],
        cwd=ROOT,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )


@contextmanager
def server(
    tmp_path: Path, tls: TlsConfig | None = None, warm_up: Callable[[], object] | None = None
) -> Iterator[RunningServer]:
    config = ServerConfig(port=0, registry_url=f"sqlite:///{tmp_path / 'reg.db'}", tls=tls)
    admin = AdminCredential.from_key(secrets.token_urlsafe(24))
    hooks = {} if warm_up is None else {"warm_up": warm_up}
    running = start_server(config, admin, **hooks)
    try:
        yield running
    finally:
        running.stop(grace=0)


def test_serving_then_draining(tmp_path: Path) -> None:
    with server(tmp_path) as running:
        assert running.warmed_up.wait(60)
        done = health("--server", running.address)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == f"{running.address}: SERVING"
        # The port from MASTERPLAN_PORT, as the image's HEALTHCHECK finds it.
        assert health(MASTERPLAN_PORT=str(running.port)).returncode == 0
        assert health(MASTERPLAN_SERVER=running.address).returncode == 0
        service = "masterplan.v1.Planning"
        assert health("--server", running.address, "--service", service).returncode == 0
        # What RunningServer.stop does first: from here the drain says NOT_SERVING.
        running.health.enter_graceful_shutdown()
        done = health("--server", running.address)
        assert done.returncode == 1
        assert done.stderr.strip() == f"masterplan: health of {running.address}: NOT_SERVING"


def test_not_serving_while_the_kernels_compile(tmp_path: Path) -> None:
    release = threading.Event()
    with server(tmp_path, warm_up=lambda: release.wait(30)) as running:
        done = health("--server", running.address)
        assert done.returncode == 1
        assert "NOT_SERVING" in done.stderr
        release.set()
        assert running.warmed_up.wait(10)
        assert health("--server", running.address).returncode == 0


def test_a_server_that_is_not_up(tmp_path: Path) -> None:
    port = free_port()
    done = health("--server", f"127.0.0.1:{port}", "--timeout", "3")
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"masterplan: health of 127.0.0.1:{port}: UNAVAILABLE"), line
    assert health("--timeout", "3", MASTERPLAN_PORT=str(port)).returncode == 1


def test_an_unknown_service_is_not_serving(tmp_path: Path) -> None:
    with server(tmp_path) as running:
        assert running.warmed_up.wait(60)
        done = health("--server", running.address, "--service", "no.such.Service")
        assert done.returncode == 1
        assert "NOT_FOUND" in done.stderr


@needs_openssl
def test_tls(tmp_path: Path, pki: Path) -> None:
    ca, cert, key = pki / "ca.pem", pki / "server.pem", pki / "server.key"
    tls = TlsConfig(cert.read_bytes(), key.read_bytes())
    with server(tmp_path, tls) as running:
        assert running.warmed_up.wait(60)
        address = running.address
        assert health("--server", address, "--tls-ca", str(ca)).returncode == 0
        assert health("--server", address, MASTERPLAN_TLS_CA=str(ca)).returncode == 0
        # As in the image: port and TLS from the variables serve reads.
        assert (
            health(
                MASTERPLAN_PORT=str(running.port),
                MASTERPLAN_TLS_CERT=str(cert),
                MASTERPLAN_TLS_KEY=str(key),
                MASTERPLAN_TLS_CA=str(ca),
            ).returncode
            == 0
        )
        # Plaintext, or a CA that did not sign the server, does not pass.
        plain = health("--server", address, "--timeout", "3")
        assert plain.returncode == 1 and "UNAVAILABLE" in plain.stderr
        rogue = health("--server", address, "--tls-ca", str(pki / "rogue.pem"), "--timeout", "3")
        assert rogue.returncode == 1 and "UNAVAILABLE" in rogue.stderr
        running.health.enter_graceful_shutdown()
        draining = health("--server", address, "--tls-ca", str(ca))
        assert draining.returncode == 1 and "NOT_SERVING" in draining.stderr


@needs_openssl
def test_tls_with_the_servers_own_self_signed_certificate(tmp_path: Path) -> None:
    openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "self.key",
        "-out", "self.pem", "-days", "2", "-subj", "/CN=masterplan",
        "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        cwd=tmp_path,
    )  # fmt: skip
    cert, key = tmp_path / "self.pem", tmp_path / "self.key"
    with server(tmp_path, TlsConfig(cert.read_bytes(), key.read_bytes())) as running:
        assert running.warmed_up.wait(60)
        # No CA given: the certificate serve is configured with is the trust root.
        done = health(
            MASTERPLAN_PORT=str(running.port),
            MASTERPLAN_TLS_CERT=str(cert),
            MASTERPLAN_TLS_KEY=str(key),
        )
        assert done.returncode == 0, done.stderr


@needs_openssl
def test_mutual_tls_needs_the_client_certificate(tmp_path: Path, pki: Path) -> None:
    ca = pki / "ca.pem"
    tls = TlsConfig(
        (pki / "server.pem").read_bytes(), (pki / "server.key").read_bytes(), ca.read_bytes()
    )
    with server(tmp_path, tls) as running:
        assert running.warmed_up.wait(60)
        client = ("--tls-client-cert", str(pki / "client.pem"))
        client += ("--tls-client-key", str(pki / "client.key"))
        address = running.address
        assert health("--server", address, "--tls-ca", str(ca), *client).returncode == 0
        assert (
            health(
                "--server",
                address,
                MASTERPLAN_TLS_CA=str(ca),
                MASTERPLAN_TLS_CLIENT_CERT=str(pki / "client.pem"),
                MASTERPLAN_TLS_CLIENT_KEY=str(pki / "client.key"),
            ).returncode
            == 0
        )
        without = health("--server", address, "--tls-ca", str(ca), "--timeout", "3")
        assert without.returncode == 1 and "UNAVAILABLE" in without.stderr
