"""The server refuses plaintext off loopback unless told that TLS ends in front of it."""

from __future__ import annotations

import pytest

from masterplan.server.config import ServerConfig, TlsConfig, host_port, is_loopback

LOOPBACK = ("127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost", "LOCALHOST")
ELSEWHERE = ("0.0.0.0", "::", "[::]", "", "10.0.0.5", "192.168.1.2", "fe80::1", "example.com")
TLS = TlsConfig(b"cert", b"key")


@pytest.mark.parametrize("host", LOOPBACK)
def test_loopback_hosts_serve_plaintext_by_default(host: str) -> None:
    assert is_loopback(host)
    assert ServerConfig(host=host).tls is None


@pytest.mark.parametrize("host", ELSEWHERE)
def test_other_hosts_refuse_plaintext_naming_the_address_and_both_ways_out(host: str) -> None:
    assert not is_loopback(host)
    with pytest.raises(ValueError) as refused:
        ServerConfig(host=host, port=50999)
    message = str(refused.value)
    assert "\n" not in message
    assert ":50999" in message and host.strip("[]") in message
    assert "--insecure" in message and "--tls-cert" in message and "--tls-key" in message


@pytest.mark.parametrize("host", ELSEWHERE)
def test_tls_or_insecure_lets_any_host_serve(host: str) -> None:
    assert ServerConfig(host=host, tls=TLS).tls == TLS
    assert ServerConfig(host=host, insecure=True).insecure


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("127.0.0.1", "127.0.0.1:7"),
        ("localhost", "localhost:7"),
        ("::", "[::]:7"),
        ("::1", "[::1]:7"),
        ("[::1]", "[::1]:7"),
    ],
)
def test_an_ipv6_host_is_bracketed_where_grpc_reads_an_address(host: str, address: str) -> None:
    assert host_port(host, 7) == address


@pytest.mark.parametrize("host", ["::1", "::"])
def test_a_server_listens_on_an_ipv6_host_and_answers_there(tmp_path, host: str) -> None:  # type: ignore[no-untyped-def]
    """``--host ::`` failed to bind: the address was not bracketed."""
    import secrets

    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from masterplan.server.app import start_server
    from masterplan.tenancy.keys import AdminCredential

    config = ServerConfig(
        host=host,
        port=0,
        registry_url=f"sqlite:///{tmp_path / 'registry.db'}",
        insecure=True,
        grace_seconds=1,
    )
    running = start_server(config, AdminCredential.from_key(secrets.token_urlsafe(24)))
    try:
        assert running.address.startswith("[")
        assert running.warmed_up.wait(120)
        with grpc.insecure_channel(f"[::1]:{running.port}") as channel:
            answer = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=10
            )
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        running.stop(grace=1)
