"""The server refuses plaintext off loopback unless told that TLS ends in front of it."""

from __future__ import annotations

import pytest

from masterplan.server.config import ServerConfig, TlsConfig, is_loopback

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
