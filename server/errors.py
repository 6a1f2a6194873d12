"""Domain errors and the one funnel that maps them to gRPC status codes.

Servicers raise domain exceptions (or let those of the engine, the codec and
the tenancy package propagate); :func:`funnel` turns each into a gRPC status
with a ``google.rpc.ErrorInfo`` (a stable ``reason``) and, for bad input, a
``google.rpc.BadRequest`` naming the table, row and field. Anything
unexpected becomes ``INTERNAL`` with a generic message: internals never reach
the client, the log has the traceback.

The statuses are built by :mod:`masterplan.status`, which bounds every string
echoed back (message, metadata values, field paths): an error about a client's
8 KB name must still fit gRPC's trailer limit and arrive as what it is,
``INVALID_ARGUMENT``, not as gRPC's own ``RESOURCE_EXHAUSTED``.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
from collections.abc import Callable, Mapping
from typing import Any, NoReturn, Protocol, TypeVar

import grpc
from google.rpc import status_pb2

from masterplan.codec import CodecError
from masterplan.contract.names import ResourceNameError
from masterplan.server.engine import InvalidPlanInput
from masterplan.server.logs import current_context
from masterplan.status import DOMAIN, Reason, build_status
from masterplan.status import abort as abort_with
from masterplan.tenancy.errors import (
    InvalidTenantName,
    QuotaExceeded,
    TenantExists,
    TenantNotFound,
    Unauthenticated,
)

__all__ = [
    "DOMAIN",
    "AlreadyExists",
    "Cancelled",
    "FailedPrecondition",
    "InvalidArgument",
    "MasterplanError",
    "NotFound",
    "PermissionDenied",
    "PlanBusy",
    "Unimplemented",
    "abort",
    "funnel",
    "to_status",
]

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])


class MasterplanError(Exception):
    """Base of the service's domain errors; ``code`` and ``reason`` reach the client.

    Args:
        message: What went wrong, for a person (bounded on the wire).
        reason: A more precise ``ErrorInfo`` reason than the class's own
            (e.g. ``NO_DATASET`` for a :class:`FailedPrecondition`).
        **metadata: ``ErrorInfo`` metadata (tenant, plan, table, row, ...);
            ``field`` also names the request field in a ``BadRequest``.
    """

    code = grpc.StatusCode.INTERNAL
    reason: str = Reason.INTERNAL

    def __init__(self, message: str, *, reason: str | None = None, **metadata: object) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason
        self.metadata = {k: str(v) for k, v in metadata.items() if v is not None and v != ""}


class InvalidArgument(MasterplanError):
    """A request field is malformed; the client must change the request."""

    code = grpc.StatusCode.INVALID_ARGUMENT
    reason = Reason.INVALID_ARGUMENT


class NotFound(MasterplanError):
    """The named run, ref or plan does not exist (in the caller's own tenant)."""

    code = grpc.StatusCode.NOT_FOUND
    reason = Reason.NOT_FOUND


class AlreadyExists(MasterplanError):
    """A client-chosen id is taken; retrying the same request will not help."""

    code = grpc.StatusCode.ALREADY_EXISTS
    reason = Reason.ALREADY_EXISTS


class PermissionDenied(MasterplanError):
    """The resource is not the caller's, whether or not it exists (no probing)."""

    code = grpc.StatusCode.PERMISSION_DENIED
    reason = Reason.PERMISSION_DENIED


class FailedPrecondition(MasterplanError):
    """The system is not in the state the call needs (e.g. no data set yet)."""

    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = Reason.FAILED_PRECONDITION


class PlanBusy(MasterplanError):
    """A run of the same plan is in progress."""

    code = grpc.StatusCode.ABORTED
    reason = Reason.PLAN_BUSY


class Cancelled(MasterplanError):
    """The run was cancelled by the client, its deadline, or shutdown."""

    code = grpc.StatusCode.CANCELLED
    reason = Reason.CANCELLED


class Unimplemented(MasterplanError):
    """A valid request for a feature this server does not offer yet."""

    code = grpc.StatusCode.UNIMPLEMENTED
    reason = Reason.UNIMPLEMENTED


@dataclasses.dataclass(frozen=True, slots=True)
class _Refusal:
    """What the client is told about one exception, before bounding."""

    code: grpc.StatusCode
    reason: str
    message: str
    metadata: Mapping[str, object] = dataclasses.field(default_factory=dict)
    field: str = ""


def _refusal(exc: BaseException) -> _Refusal:
    """The one mapping of the service: exception class to code, reason and context."""
    if isinstance(exc, MasterplanError):
        metadata = dict(exc.metadata)
        return _Refusal(exc.code, exc.reason, str(exc), metadata, metadata.get("field", ""))
    if isinstance(exc, CodecError):
        return _Refusal(
            grpc.StatusCode.INVALID_ARGUMENT,
            Reason.INVALID_CHUNK,
            str(exc),
            {"table": exc.table, "column": exc.column, "row": exc.row},
            ".".join(p for p in (exc.table, exc.column) if p),
        )
    if isinstance(exc, ResourceNameError):
        return _Refusal(
            grpc.StatusCode.INVALID_ARGUMENT,
            Reason.INVALID_ARGUMENT,
            str(exc),
            {"field": exc.field},
            exc.field,
        )
    if isinstance(exc, InvalidPlanInput):
        return _Refusal(grpc.StatusCode.INVALID_ARGUMENT, Reason.INVALID_PLAN_INPUT, str(exc))
    if isinstance(exc, QuotaExceeded):
        return _Refusal(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            Reason.QUOTA_EXCEEDED,
            str(exc),
            {"resource": exc.resource, "limit": exc.limit, "requested": exc.requested},
        )
    if isinstance(exc, TenantNotFound):
        return _Refusal(
            grpc.StatusCode.NOT_FOUND, Reason.TENANT_NOT_FOUND, str(exc), {"tenant": exc.name}
        )
    if isinstance(exc, TenantExists):
        return _Refusal(
            grpc.StatusCode.ALREADY_EXISTS, Reason.TENANT_EXISTS, str(exc), {"tenant": exc.name}
        )
    if isinstance(exc, InvalidTenantName):
        return _Refusal(
            grpc.StatusCode.INVALID_ARGUMENT,
            Reason.INVALID_TENANT_NAME,
            str(exc),
            {"tenant": exc.name, "field": "tenant_id"},
            "tenant_id",
        )
    if isinstance(exc, Unauthenticated):
        return _Refusal(grpc.StatusCode.UNAUTHENTICATED, Reason.API_KEY_INVALID, str(exc))
    log.exception("internal error", exc_info=exc)
    return _Refusal(grpc.StatusCode.INTERNAL, Reason.INTERNAL, "internal error")


def to_status(exc: BaseException) -> status_pb2.Status:
    """The ``google.rpc.Status`` for an exception, every echoed string bounded.

    Unexpected exceptions become ``INTERNAL`` with a generic message (and a
    logged traceback): internals never reach the client.
    """
    r = _refusal(exc)
    return build_status(r.code, r.message, r.reason, r.metadata, field=r.field)


def abort(context: grpc.ServicerContext, exc: BaseException) -> NoReturn:
    """End the call with the status of ``exc`` (raises, as ``context.abort`` does)."""
    abort_with(context, to_status(exc))


class QuotaRefusals(Protocol):
    """Told of each call a quota refused (the server's metrics, which log it too)."""

    def quota_refused(self, tenant: str, exc: QuotaExceeded, method: str = "") -> None: ...


def _tell_refusal(servicer: Any, exc: Exception) -> None:
    """Tell the servicer's ``refusals`` (a :class:`QuotaRefusals`) of a quota refusal."""
    refusals: QuotaRefusals | None = getattr(servicer, "refusals", None)
    if refusals is not None and isinstance(exc, QuotaExceeded):
        # The servicers bind the calling tenant's name first thing.
        tenant = current_context().get("tenant", "")
        refusals.quota_refused(str(tenant), exc)


def funnel(method: F) -> F:
    """Decorate a servicer method so that every exception leaves as a proper status.

    Decorated methods raise domain exceptions and never call ``context.abort``
    themselves: gRPC's abort raises a bare ``Exception``, which the funnel
    would catch and report as ``INTERNAL`` over the status already set.

    A servicer with a ``refusals`` attribute (:class:`QuotaRefusals`) is told
    of every call a quota refused, whichever method and limit it was.
    """
    if inspect.isgeneratorfunction(method):

        @functools.wraps(method)
        def stream(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
            try:
                yield from method(self, request, context)
            except Exception as exc:  # the funnel: every error leaves through here
                _tell_refusal(self, exc)
                if context.is_active() or not isinstance(exc, Cancelled):
                    abort(context, exc)

        return stream  # type: ignore[return-value]

    @functools.wraps(method)
    def unary(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return method(self, request, context)
        except Exception as exc:  # the funnel: every error leaves through here
            _tell_refusal(self, exc)
            abort(context, exc)

    return unary  # type: ignore[return-value]
