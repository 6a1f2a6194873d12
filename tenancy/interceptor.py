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
``QUOTA_EXCEEDED``          ``RESOURCE_EXHAUSTED`` a streaming call over the tenant's
                                                   ``open_streams`` or the server's
                                                   ``server_streams`` limit
==========================  =====================  ==========================================

Streaming calls are admitted through :class:`~tenancy.streams.OpenStreams`,
which bounds how many request threads they hold and ends those that wait on
their peer too long. A tenant that is uninstalled while one of its calls is in
flight (here or, found by the server's sweep, in another process) loses that
call: it ends ``UNAUTHENTICATED`` even if its handler finished, and whatever
the handler left behind is dropped again (:class:`Departures`).
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from typing import Any, NoReturn, Protocol

import grpc

from masterplan.status import Reason, abort, build_status
from masterplan.tenancy.errors import QuotaExceeded, Unauthenticated
from masterplan.tenancy.keys import AdminCredential
from masterplan.tenancy.registry import Tenant, TenantRegistry
from masterplan.tenancy.streams import OpenStreams, Stream

__all__ = ["AuthInterceptor", "Departures", "Principal", "Refusals", "current_principal"]

ADMIN_SERVICE_PREFIX = "/masterplan.v1.TenantAdmin/"
#: The only service callable without a key: probes must work before provisioning.
OPEN_PREFIXES = ("/grpc.health.v1.Health/",)
#: Services any valid key may call (the admin's or a tenant's): they describe
#: the API and read no tenant data.
ANY_KEY_PREFIXES = ("/grpc.reflection.",)
#: The one open method that streams: a health watch holds a thread as long as
#: the watcher stays, so it is counted like a tenant's stream.
HEALTH_WATCH = "/grpc.health.v1.Health/Watch"
#: Holders of streams that are no tenant (ids that no uuid4 hex can equal).
_ADMIN_HOLDER = ("-admin", "the admin")
_HEALTH_HOLDER = ("-health", "health watchers")


class Departures(Protocol):
    """What the interceptor needs to know of uninstalled tenants.

    The server implements it over its stores: a tenant is gone once an
    uninstall here or the registry sweep dropped it.
    """

    def gone(self, tenant_id: str) -> bool:
        """Whether the tenant was uninstalled."""
        ...

    def evict(self, tenant_id: str) -> object:
        """Drop whatever the server still holds of an uninstalled tenant."""
        ...


class Refusals(Protocol):
    """Told of every call the interceptor refuses; the server counts and logs them.

    Neither method is ever given the presented key or any part of it.
    """

    def call_denied(self, method: str, code: str, reason: str) -> None:
        """A call refused by authentication (``code`` and ``reason`` as the client sees them)."""
        ...

    def quota_refused(self, tenant: str, exc: QuotaExceeded, method: str = "") -> None:
        """A streaming call of ``tenant`` refused by the stream limits."""
        ...


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


_UNINSTALLED = _Denial(
    grpc.StatusCode.UNAUTHENTICATED,
    Reason.API_KEY_INVALID,
    "the tenant was uninstalled while the call was in progress",
)


def _refuse_stream(context: grpc.ServicerContext, exc: QuotaExceeded, method: str) -> NoReturn:
    """End a streaming call the stream limits do not admit, naming the limit."""
    metadata = {
        "resource": exc.resource,
        "limit": exc.limit,
        "requested": exc.requested,
        "method": method,
    }
    abort(
        context,
        build_status(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc), Reason.QUOTA_EXCEEDED, metadata),
    )


def _wrap(
    handler: grpc.RpcMethodHandler,
    method: str,
    principal: Principal | None,
    deny: _Denial | None,
    streams: OpenStreams | None,
    departures: Departures | None,
    refusals: Refusals | None = None,
) -> grpc.RpcMethodHandler:
    """Rebuild ``handler``: run as ``principal`` (or denied), its streams admitted and watched."""
    tenant = principal.tenant if principal is not None else None
    if tenant is not None:
        holder = (tenant.tenant_id, tenant.name)
    elif principal is not None:
        holder = _ADMIN_HOLDER
    else:
        holder = _HEALTH_HOLDER

    def gone() -> bool:
        return tenant is not None and departures is not None and departures.gone(tenant.tenant_id)

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
            if gone():
                # An uninstall raced this call: drop again whatever the call
                # put back (a store, a ledger entry) after the uninstall's drop.
                assert departures is not None and tenant is not None
                departures.evict(tenant.tenant_id)

    @contextmanager
    def admitted(context: grpc.ServicerContext, upload: bool) -> Iterator[Stream | None]:
        """Hold one of the stream slots for the call's duration, or refuse it."""
        if streams is None:
            yield None
            return
        try:
            stream = streams.open(holder[0], holder[1], method, context, upload)
        except QuotaExceeded as exc:
            if refusals is not None:
                refusals.quota_refused(
                    holder[0] if holder[0].startswith("-") else holder[1], exc, method
                )
            _refuse_stream(context, exc, method)
        try:
            yield stream
        finally:
            streams.close(stream)

    def settled(context: grpc.ServicerContext) -> None:
        """Refuse a call whose tenant was uninstalled while it ran: uninstall wins."""
        if gone():
            _UNINSTALLED.abort(context)

    def requests_of(stream: Stream | None, requests: Iterator[Any]) -> Iterator[Any]:
        return (
            requests
            if stream is None or streams is None
            else streams.watch_requests(stream, requests)
        )

    def responses_of(stream: Stream | None, responses: Iterator[Any]) -> Iterator[Any]:
        return (
            responses
            if stream is None or streams is None
            else streams.watch_responses(stream, responses)
        )

    def unary_unary(behavior: Callable[..., Any]) -> Callable[..., Any]:
        def call(request: Any, context: grpc.ServicerContext) -> Any:
            with acting(context):
                response = behavior(request, context)
            settled(context)
            return response

        return call

    def unary_stream(behavior: Callable[..., Any]) -> Callable[..., Any]:
        def call(request: Any, context: grpc.ServicerContext) -> Any:
            with acting(context), admitted(context, upload=False) as stream:
                yield from responses_of(stream, behavior(request, context))
            settled(context)

        return call

    def stream_unary(behavior: Callable[..., Any]) -> Callable[..., Any]:
        def call(requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
            with acting(context), admitted(context, upload=True) as stream:
                response = behavior(requests_of(stream, requests), context)
            settled(context)
            return response

        return call

    def stream_stream(behavior: Callable[..., Any]) -> Callable[..., Any]:
        def call(requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
            with acting(context), admitted(context, upload=False) as stream:
                yield from responses_of(stream, behavior(requests_of(stream, requests), context))
            settled(context)

        return call

    des, ser = handler.request_deserializer, handler.response_serializer
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(unary_unary(handler.unary_unary), des, ser)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(unary_stream(handler.unary_stream), des, ser)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(stream_unary(handler.stream_unary), des, ser)
    return grpc.stream_stream_rpc_method_handler(stream_stream(handler.stream_stream), des, ser)


class AuthInterceptor(grpc.ServerInterceptor):
    """Checks the bearer key of every call against the admin credential or the registry.

    Args:
        registry: Where tenant keys are checked.
        admin: The admin credential.
        streams: Limits and watches streaming calls; None admits every stream
            (unit tests of authentication alone).
        departures: Tells uninstalled tenants, whose calls are refused even
            while a cached authentication still vouches for their key.
        refusals: Told of each refused call (metrics and log lines); None
            tells nobody.
    """

    def __init__(
        self,
        registry: TenantRegistry,
        admin: AdminCredential,
        *,
        streams: OpenStreams | None = None,
        departures: Departures | None = None,
        refusals: Refusals | None = None,
    ) -> None:
        self._registry = registry
        self._admin = admin
        self._streams = streams
        self._departures = departures
        self._refusals = refusals

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
        if self._departures is not None and self._departures.gone(tenant.tenant_id):
            # Uninstalled, though the registry's cache still vouched for the key.
            return None, _Denial(
                unauthenticated, Reason.API_KEY_INVALID, "invalid or revoked API key", method
            )
        return Principal(is_admin=False, tenant=tenant), None

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        method = handler_call_details.method
        handler = continuation(handler_call_details)
        if handler is None:
            return handler
        if method.startswith(OPEN_PREFIXES):
            if method != HEALTH_WATCH or self._streams is None:
                return handler
            return _wrap(handler, method, None, None, self._streams, None, self._refusals)
        key = _bearer(handler_call_details.invocation_metadata)
        principal, deny = self._authenticate(method, key)
        if deny is not None and self._refusals is not None:
            self._refusals.call_denied(method, deny.code.name, str(deny.reason))
        return _wrap(
            handler, method, principal, deny, self._streams, self._departures, self._refusals
        )
