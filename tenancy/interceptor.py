"""The authentication interceptor: one place where every call's key is checked.

``authorization: Bearer <key>`` metadata is required on every method except
the health service; reflection takes any valid key. TenantAdmin methods take the admin
credential only; every other method takes a tenant API key only. The
resolved caller is handed to the servicer through :func:`current_principal`
(a context variable set around the handler itself, so it holds in whichever
thread gRPC runs the handler).
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import grpc

from masterplan.tenancy.errors import Unauthenticated
from masterplan.tenancy.keys import AdminCredential
from masterplan.tenancy.registry import Tenant, TenantRegistry

__all__ = ["AuthInterceptor", "Principal", "current_principal"]

ADMIN_SERVICE_PREFIX = "/masterplan.v1.TenantAdmin/"
#: The only service callable without a key: probes must work before provisioning.
OPEN_PREFIXES = ("/grpc.health.v1.Health/",)
#: Services any valid key may call (the admin's or a tenant's): they describe
#: the API and read no tenant data.
ANY_KEY_PREFIXES = ("/grpc.reflection.",)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the admin, or one tenant."""

    is_admin: bool
    tenant: Tenant | None = None


_principal: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "masterplan_principal", default=None
)


def current_principal() -> Principal:
    """The authenticated caller of the current RPC (set by :class:`AuthInterceptor`)."""
    p = _principal.get()
    if p is None:  # a servicer called outside the interceptor: a wiring bug
        raise RuntimeError("no authenticated principal for this call")
    return p


def _bearer(metadata: tuple[Any, ...] | None) -> str | None:
    for key, value in metadata or ():
        if key == "authorization":
            scheme, _, token = str(value).partition(" ")
            if scheme.lower() == "bearer" and token:
                return token.strip()
            return None
    return None


class _Denial:
    """Why a call is refused; the handler aborts with it before any servicer code runs."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        self.code = code
        self.message = message


def _wrap(
    handler: grpc.RpcMethodHandler, principal: Principal | None, deny: _Denial | None
) -> grpc.RpcMethodHandler:
    """Rebuild ``handler`` with its behaviour run under ``principal`` (or denied)."""

    @contextmanager
    def acting(context: grpc.ServicerContext) -> Iterator[None]:
        """Refuse the call, or run its body as ``principal``."""
        if deny is not None:
            context.abort(deny.code, deny.message)
        token = _principal.set(principal)
        try:
            yield
        finally:
            _principal.reset(token)

    def guard(behavior: Callable[..., Any]) -> Callable[..., Any]:
        def call(request: Any, context: grpc.ServicerContext) -> Any:
            with acting(context):
                return behavior(request, context)

        return call

    def guard_stream(behavior: Callable[..., Any]) -> Callable[..., Any]:
        def call(request: Any, context: grpc.ServicerContext) -> Any:
            with acting(context):
                yield from behavior(request, context)

        return call

    des, ser = handler.request_deserializer, handler.response_serializer
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(guard(handler.unary_unary), des, ser)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(guard_stream(handler.unary_stream), des, ser)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(guard(handler.stream_unary), des, ser)
    return grpc.stream_stream_rpc_method_handler(guard_stream(handler.stream_stream), des, ser)


class AuthInterceptor(grpc.ServerInterceptor):
    """Checks the bearer key of every call against the admin credential or the registry."""

    def __init__(self, registry: TenantRegistry, admin: AdminCredential) -> None:
        self._registry = registry
        self._admin = admin

    def _authenticate(
        self, method: str, key: str | None
    ) -> tuple[Principal | None, _Denial | None]:
        if key is None:
            return None, _Denial(
                grpc.StatusCode.UNAUTHENTICATED, "missing 'authorization: Bearer <key>' metadata"
            )
        is_admin = self._admin.matches(key)
        if method.startswith(ANY_KEY_PREFIXES):
            if is_admin:
                return Principal(is_admin=True), None
            try:
                return Principal(is_admin=False, tenant=self._registry.authenticate(key)), None
            except Unauthenticated as exc:
                return None, _Denial(grpc.StatusCode.UNAUTHENTICATED, str(exc))
        if method.startswith(ADMIN_SERVICE_PREFIX):
            if is_admin:
                return Principal(is_admin=True), None
            try:
                self._registry.authenticate(key)
            except Unauthenticated:
                return None, _Denial(grpc.StatusCode.UNAUTHENTICATED, "invalid admin key")
            return None, _Denial(
                grpc.StatusCode.PERMISSION_DENIED, "tenant administration needs the admin key"
            )
        if is_admin:
            return None, _Denial(
                grpc.StatusCode.PERMISSION_DENIED,
                "the admin key manages tenants; it reads no tenant's data or plans",
            )
        try:
            tenant = self._registry.authenticate(key)
        except Unauthenticated as exc:
            return None, _Denial(grpc.StatusCode.UNAUTHENTICATED, str(exc))
        return Principal(is_admin=False, tenant=tenant), None

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        method = handler_call_details.method
        handler = continuation(handler_call_details)
        if handler is None or method.startswith(OPEN_PREFIXES):
            return handler
        key = _bearer(handler_call_details.invocation_metadata)
        principal, deny = self._authenticate(method, key)
        return _wrap(handler, principal, deny)
