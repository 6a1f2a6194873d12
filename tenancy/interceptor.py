"""The authentication interceptor: one place where every call's key is checked.

``authorization: Bearer <key>`` metadata is required on every method except
the health service; reflection takes any valid key. TenantAdmin methods take the admin
credential only; every other method takes a tenant API key only. The
resolved caller is handed to the servicer through :func:`current_principal`
(a context variable set around the handler itself, so it holds in whichever
thread gRPC runs the handler).

Each refusal carries an ``ErrorInfo`` (built by :mod:`masterplan.status`)
whose reason says which rule refused the call, so that a client can tell "no
key sent" from "wrong kind of key" without parsing the message:

==========================  =====================  ==========================================
reason                      code                   when
==========================  =====================  ==========================================
``API_KEY_MISSING``         ``UNAUTHENTICATED``    no ``authorization`` metadata
``AUTHORIZATION_MALFORMED`` ``UNAUTHENTICATED``    ``authorization`` is not ``Bearer <key>``
``API_KEY_INVALID``         ``UNAUTHENTICATED``    an unknown, malformed, rotated or revoked key
``ADMIN_KEY_REQUIRED``      ``PERMISSION_DENIED``  a tenant key on TenantAdmin
``TENANT_KEY_REQUIRED``     ``PERMISSION_DENIED``  the admin key on a tenant's data or plans
==========================  =====================  ==========================================
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from typing import Any, NoReturn

import grpc

from masterplan.status import Reason, abort, build_status
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


class _NoKey(Enum):
    """Why no key could be read off a call's metadata (the two are refused differently)."""

    MISSING = "missing"
    MALFORMED = "malformed"


def _bearer(metadata: tuple[Any, ...] | None) -> str | _NoKey:
    """The key of the call's ``authorization: Bearer <key>`` metadata."""
    for key, value in metadata or ():
        if key == "authorization":
            scheme, _, token = str(value).partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return _NoKey.MALFORMED
    return _NoKey.MISSING


@dataclass(frozen=True, slots=True)
class _Denial:
    """Why a call is refused; the handler aborts with it before any servicer code runs.

    Attributes:
        code: The gRPC status code.
        reason: The ``ErrorInfo`` reason, one per refusal rule.
        message: For a person; never contains the presented key.
        method: The refused method, as ``ErrorInfo`` metadata.
    """

    code: grpc.StatusCode
    reason: Reason
    message: str
    method: str = ""

    def abort(self, context: grpc.ServicerContext) -> NoReturn:
        """End the call with this refusal (raises, as ``context.abort`` does)."""
        metadata = {"method": self.method} if self.method else None
        abort(context, build_status(self.code, self.message, self.reason, metadata))


def _wrap(
    handler: grpc.RpcMethodHandler, principal: Principal | None, deny: _Denial | None
) -> grpc.RpcMethodHandler:
    """Rebuild ``handler`` with its behaviour run under ``principal`` (or denied)."""

    @contextmanager
    def acting(context: grpc.ServicerContext) -> Iterator[None]:
        """Refuse the call, or run its body as ``principal``."""
        if deny is not None:
            deny.abort(context)
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
        self, method: str, key: str | _NoKey
    ) -> tuple[Principal | None, _Denial | None]:
        """Who is calling ``method`` with ``key``, or why the call is refused."""
        unauthenticated = grpc.StatusCode.UNAUTHENTICATED
        if key is _NoKey.MISSING:
            return None, _Denial(
                unauthenticated,
                Reason.API_KEY_MISSING,
                "missing 'authorization: Bearer <key>' metadata",
                method,
            )
        if isinstance(key, _NoKey):
            return None, _Denial(
                unauthenticated,
                Reason.AUTHORIZATION_MALFORMED,
                "'authorization' metadata must be 'Bearer <key>'",
                method,
            )
        is_admin = self._admin.matches(key)
        if method.startswith(ANY_KEY_PREFIXES):
            if is_admin:
                return Principal(is_admin=True), None
            try:
                return Principal(is_admin=False, tenant=self._registry.authenticate(key)), None
            except Unauthenticated as exc:
                return None, _Denial(unauthenticated, Reason.API_KEY_INVALID, str(exc), method)
        if method.startswith(ADMIN_SERVICE_PREFIX):
            if is_admin:
                return Principal(is_admin=True), None
            try:
                self._registry.authenticate(key)
            except Unauthenticated:
                return None, _Denial(
                    unauthenticated, Reason.API_KEY_INVALID, "invalid admin key", method
                )
            return None, _Denial(
                grpc.StatusCode.PERMISSION_DENIED,
                Reason.ADMIN_KEY_REQUIRED,
                "tenant administration needs the admin key",
                method,
            )
        if is_admin:
            return None, _Denial(
                grpc.StatusCode.PERMISSION_DENIED,
                Reason.TENANT_KEY_REQUIRED,
                "the admin key manages tenants; it reads no tenant's data or plans",
                method,
            )
        try:
            tenant = self._registry.authenticate(key)
        except Unauthenticated as exc:
            return None, _Denial(unauthenticated, Reason.API_KEY_INVALID, str(exc), method)
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
