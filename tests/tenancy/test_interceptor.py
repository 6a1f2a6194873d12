"""Tests for tenancy.interceptor: who may call what, and the reason each refusal carries.

A real gRPC server on a loopback port runs the interceptor in front of
stand-in handlers named like the real services, so the tests see exactly what
a client sees on the wire without the planning server behind it.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass

import grpc
import pytest

from masterplan.status import DOMAIN, Reason, StatusDetails, parse_rpc_error
from masterplan.tenancy.interceptor import AuthInterceptor, current_principal
from masterplan.tenancy.keys import AdminCredential
from masterplan.tenancy.registry import TenantRegistry

ADMIN = "/masterplan.v1.TenantAdmin/Probe"
PLANNING = "/masterplan.v1.Planning/Probe"
PLANNING_STREAM = "/masterplan.v1.Planning/Watch"
REFLECTION = "/grpc.reflection.v1alpha.ServerReflection/Probe"
HEALTH = "/grpc.health.v1.Health/Probe"


def _whoami(request: bytes, context: grpc.ServicerContext) -> bytes:
    """Answers with the caller the interceptor resolved."""
    p = current_principal()
    return b"admin" if p.is_admin else (p.tenant.name if p.tenant else "?").encode()


def _whoami_stream(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
    yield _whoami(request, context)


def _open(request: bytes, context: grpc.ServicerContext) -> bytes:
    return b"serving"


@dataclass
class Server:
    channel: grpc.Channel
    admin_key: str
    tenant_key: str

    def call(self, method: str, authorization: str | None) -> bytes:
        metadata = () if authorization is None else (("authorization", authorization),)
        if method == PLANNING_STREAM:
            stream = self.channel.unary_stream(method)(b"", metadata=metadata, timeout=10)
            return b"".join(stream)
        result: bytes = self.channel.unary_unary(method)(b"", metadata=metadata, timeout=10)
        return result

    def refusal(self, method: str, authorization: str | None) -> StatusDetails:
        with pytest.raises(grpc.RpcError) as err:
            self.call(method, authorization)
        return parse_rpc_error(err.value)


@pytest.fixture
def server() -> Iterator[Server]:
    registry = TenantRegistry("sqlite://", cache_ttl=0)
    _, tenant_key = registry.install("acme")
    admin_key = secrets.token_urlsafe(24)
    srv = grpc.server(
        futures.ThreadPoolExecutor(max_workers=4),
        interceptors=[AuthInterceptor(registry, AdminCredential.from_key(admin_key))],
    )
    unary = {"Probe": grpc.unary_unary_rpc_method_handler(_whoami)}
    srv.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler("masterplan.v1.TenantAdmin", unary),
            grpc.method_handlers_generic_handler(
                "masterplan.v1.Planning",
                {**unary, "Watch": grpc.unary_stream_rpc_method_handler(_whoami_stream)},
            ),
            grpc.method_handlers_generic_handler("grpc.reflection.v1alpha.ServerReflection", unary),
            grpc.method_handlers_generic_handler(
                "grpc.health.v1.Health", {"Probe": grpc.unary_unary_rpc_method_handler(_open)}
            ),
        ]
    )
    port = srv.add_insecure_port("127.0.0.1:0")
    srv.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield Server(channel, admin_key, tenant_key)
    finally:
        channel.close()
        srv.stop(None)
        registry.close()


def test_the_right_key_reaches_each_service(server: Server) -> None:
    bearer_admin, bearer_tenant = f"Bearer {server.admin_key}", f"Bearer {server.tenant_key}"
    assert server.call(ADMIN, bearer_admin) == b"admin"
    assert server.call(PLANNING, bearer_tenant) == b"acme"
    assert server.call(PLANNING_STREAM, bearer_tenant) == b"acme"
    assert server.call(REFLECTION, bearer_admin) == b"admin"
    assert server.call(REFLECTION, bearer_tenant) == b"acme"
    assert server.call(HEALTH, None) == b"serving"


REFUSALS = {
    # name: (method, authorization or a placeholder, code, reason)
    "no key": (PLANNING, None, "UNAUTHENTICATED", Reason.API_KEY_MISSING),
    "no key on admin": (ADMIN, None, "UNAUTHENTICATED", Reason.API_KEY_MISSING),
    "no key on a stream": (PLANNING_STREAM, None, "UNAUTHENTICATED", Reason.API_KEY_MISSING),
    "no key on reflection": (REFLECTION, None, "UNAUTHENTICATED", Reason.API_KEY_MISSING),
    "basic auth": (
        PLANNING,
        "Basic dXNlcjpwYXNz",
        "UNAUTHENTICATED",
        Reason.AUTHORIZATION_MALFORMED,
    ),
    "empty bearer": (PLANNING, "Bearer ", "UNAUTHENTICATED", Reason.AUTHORIZATION_MALFORMED),
    "bare key": (ADMIN, "{admin}", "UNAUTHENTICATED", Reason.AUTHORIZATION_MALFORMED),
    "unknown key": (PLANNING, "Bearer mp_abcdefgh_nope", "UNAUTHENTICATED", Reason.API_KEY_INVALID),
    "garbage key": (PLANNING_STREAM, "Bearer garbage", "UNAUTHENTICATED", Reason.API_KEY_INVALID),
    "unknown key on admin": (ADMIN, "Bearer garbage", "UNAUTHENTICATED", Reason.API_KEY_INVALID),
    "unknown key on reflection": (
        REFLECTION,
        "Bearer garbage",
        "UNAUTHENTICATED",
        Reason.API_KEY_INVALID,
    ),
    "tenant key on admin": (
        ADMIN,
        "Bearer {tenant}",
        "PERMISSION_DENIED",
        Reason.ADMIN_KEY_REQUIRED,
    ),
    "admin key on planning": (
        PLANNING,
        "Bearer {admin}",
        "PERMISSION_DENIED",
        Reason.TENANT_KEY_REQUIRED,
    ),
    "admin key on a stream": (
        PLANNING_STREAM,
        "Bearer {admin}",
        "PERMISSION_DENIED",
        Reason.TENANT_KEY_REQUIRED,
    ),
}


@pytest.mark.parametrize(("method", "auth", "code", "reason"), REFUSALS.values(), ids=REFUSALS)
def test_each_refusal_carries_its_reason(
    server: Server, method: str, auth: str | None, code: str, reason: Reason
) -> None:
    if auth is not None:
        auth = auth.format(admin=server.admin_key, tenant=server.tenant_key)
    details = server.refusal(method, auth)
    assert details.code is getattr(grpc.StatusCode, code)
    assert (details.reason, details.domain) == (reason, DOMAIN)
    assert details.metadata == {"method": method}
    assert details.message
    # a refusal never echoes a key
    for key in (server.admin_key, server.tenant_key):
        assert key not in details.message and key not in details.metadata.values()
