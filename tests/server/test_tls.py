"""TLS and mutual TLS, with certificates the test makes itself (openssl)."""

from __future__ import annotations

import secrets
import shutil
import subprocess
from pathlib import Path

import pytest

from masterplan.client import errors
from masterplan.client.client import ClientTls, MasterplanClient
from masterplan.server.app import start_server
from masterplan.server.config import ServerConfig, TlsConfig
from masterplan.tenancy.keys import AdminCredential

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    d = tmp_path_factory.mktemp("pki")
    (d / "san.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=masterplan test CA",
        cwd=d,
    )
    for name in ("server", "client"):
        openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.csr",
            "-subj",
            f"/CN={name}",
            cwd=d,
        )
        extra = ["-extfile", "san.cnf"] if name == "server" else []
        openssl(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            f"{name}.pem",
            "-days",
            "2",
            *extra,
            cwd=d,
        )
    # a second CA, to sign a client certificate the server must not accept
    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "rogue.key",
        "-out",
        "rogue.pem",
        "-days",
        "2",
        "-subj",
        "/CN=rogue",
        cwd=d,
    )
    return d


def serve(tmp_path: Path, pki: Path, mutual: bool):  # type: ignore[no-untyped-def]
    admin = secrets.token_urlsafe(24)
    tls = TlsConfig(
        (pki / "server.pem").read_bytes(),
        (pki / "server.key").read_bytes(),
        (pki / "ca.pem").read_bytes() if mutual else None,
    )
    config = ServerConfig(
        port=0, registry_url=f"sqlite:///{tmp_path / 'reg.db'}", tls=tls, grace_seconds=0
    )
    return start_server(config, AdminCredential.from_key(admin)), admin


def test_server_tls(tmp_path: Path, pki: Path) -> None:
    running, admin = serve(tmp_path, pki, mutual=False)
    try:
        tls = ClientTls(root_ca=(pki / "ca.pem").read_bytes())
        with MasterplanClient(running.address, admin, tls=tls, timeout=5) as c:
            assert c.install_tenant("acme").tenant.tenant_id == "acme"
        with (
            MasterplanClient(running.address, admin, timeout=3) as plain,
            pytest.raises(errors.Unavailable),
        ):
            plain.list_tenants()
        rogue = ClientTls(root_ca=(pki / "rogue.pem").read_bytes())
        with (
            MasterplanClient(running.address, admin, tls=rogue, timeout=3) as c,
            pytest.raises(errors.Unavailable),
        ):
            c.list_tenants()
    finally:
        running.stop(grace=0)


def test_mutual_tls_needs_a_client_certificate_from_the_trusted_ca(
    tmp_path: Path, pki: Path
) -> None:
    running, admin = serve(tmp_path, pki, mutual=True)
    ca = (pki / "ca.pem").read_bytes()
    try:
        good = ClientTls(ca, (pki / "client.pem").read_bytes(), (pki / "client.key").read_bytes())
        with MasterplanClient(running.address, admin, tls=good, timeout=5) as c:
            assert c.list_tenants() == []
        with (
            MasterplanClient(running.address, admin, tls=ClientTls(ca), timeout=3) as c,
            pytest.raises(errors.Unavailable),
        ):
            c.list_tenants()
        # a certificate signed by another CA is refused
        openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "x.key",
            "-out",
            "x.csr",
            "-subj",
            "/CN=x",
            cwd=pki,
        )
        openssl(
            "x509",
            "-req",
            "-in",
            "x.csr",
            "-CA",
            "rogue.pem",
            "-CAkey",
            "rogue.key",
            "-CAcreateserial",
            "-out",
            "x.pem",
            "-days",
            "2",
            cwd=pki,
        )
        bad = ClientTls(ca, (pki / "x.pem").read_bytes(), (pki / "x.key").read_bytes())
        with (
            MasterplanClient(running.address, admin, tls=bad, timeout=3) as c,
            pytest.raises(errors.Unavailable),
        ):
            c.list_tenants()
    finally:
        running.stop(grace=0)


def test_the_cli_talks_tls(tmp_path: Path, pki: Path) -> None:
    import json
    import os
    import sys

    running, admin = serve(tmp_path, pki, mutual=True)
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "masterplan.client.cli",
                "tenant",
                "install",
                "acme",
                "--server",
                running.address,
                "--json",
                "--tls-ca",
                str(pki / "ca.pem"),
                "--tls-client-cert",
                str(pki / "client.pem"),
                "--tls-client-key",
                str(pki / "client.key"),
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "MASTERPLAN_ADMIN_KEY": admin},
            timeout=60,
            cwd=Path(__file__).parents[2],
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["tenant"] == "acme"
    finally:
        running.stop(grace=0)
