"""Domain errors and the one funnel that maps them to gRPC status codes.

Servicers raise domain exceptions (or let those of the engine, the codec and
the tenancy package propagate); :func:`funnel` turns each into a gRPC status
with a ``google.rpc.ErrorInfo`` (a stable ``reason``) and, for bad input, a
``google.rpc.BadRequest`` naming the table, row and field. Anything
unexpected becomes ``INTERNAL`` with a generic message: internals never reach
the client, the log has the traceback.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from masterplan.codec import CodecError
from masterplan.server.engine import InvalidPlanInput
from masterplan.tenancy.errors import (
    InvalidTenantName,
    QuotaExceeded,
    TenantExists,
    TenantNotFound,
    Unauthenticated,
)

__all__ = [
    "AlreadyExists",
    "Cancelled",
    "FailedPrecondition",
    "InvalidArgument",
    "MasterplanError",
    "NotFound",
    "PermissionDenied",
    "PlanBusy",
    "Unimplemented",
    "funnel",
]

log = logging.getLogger(__name__)
DOMAIN = "masterplan.v1"
F = TypeVar("F", bound=Callable[..., Any])


class MasterplanError(Exception):
    """Base of the service's domain errors; ``code`` and ``reason`` reach the client."""

    code = grpc.StatusCode.INTERNAL
    reason = "INTERNAL"

    def __init__(self, message: str, *, reason: str | None = None, **metadata: object) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason
        self.metadata = {k: str(v) for k, v in metadata.items() if v is not None and v != ""}


class InvalidArgument(MasterplanError):
    code = grpc.StatusCode.INVALID_ARGUMENT
    reason = "INVALID_ARGUMENT"


class NotFound(MasterplanError):
    code = grpc.StatusCode.NOT_FOUND
    reason = "NOT_FOUND"


class AlreadyExists(MasterplanError):
    code = grpc.StatusCode.ALREADY_EXISTS
    reason = "ALREADY_EXISTS"


class PermissionDenied(MasterplanError):
    code = grpc.StatusCode.PERMISSION_DENIED
    reason = "PERMISSION_DENIED"


class FailedPrecondition(MasterplanError):
    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = "FAILED_PRECONDITION"


class PlanBusy(MasterplanError):
    """A run of the same plan is in progress."""

    code = grpc.StatusCode.ABORTED
    reason = "PLAN_BUSY"


class Cancelled(MasterplanError):
    code = grpc.StatusCode.CANCELLED
    reason = "CANCELLED"


class Unimplemented(MasterplanError):
    code = grpc.StatusCode.UNIMPLEMENTED
    reason = "UNIMPLEMENTED"


def to_status(exc: BaseException) -> status_pb2.Status:
    """The ``google.rpc.Status`` for an exception (the one mapping of the service)."""
    metadata: dict[str, str] = {}
    field = ""
    if isinstance(exc, MasterplanError):
        code, reason, message = exc.code, exc.reason, str(exc)
        metadata = dict(exc.metadata)
        field = metadata.get("field", "")
    elif isinstance(exc, CodecError):
        code, reason, message = grpc.StatusCode.INVALID_ARGUMENT, "INVALID_CHUNK", str(exc)
        metadata = {"table": exc.table, "column": exc.column}
        if exc.row is not None:
            metadata["row"] = str(exc.row)
        field = ".".join(p for p in (exc.table, exc.column) if p)
    elif isinstance(exc, InvalidPlanInput):
        code, reason, message = grpc.StatusCode.INVALID_ARGUMENT, "INVALID_PLAN_INPUT", str(exc)
    elif isinstance(exc, QuotaExceeded):
        code, reason = grpc.StatusCode.RESOURCE_EXHAUSTED, "QUOTA_EXCEEDED"
        message = str(exc)
        metadata = {
            "resource": exc.resource,
            "limit": str(exc.limit),
            "requested": str(exc.requested),
        }
    elif isinstance(exc, TenantNotFound):
        code, reason, message = grpc.StatusCode.NOT_FOUND, "TENANT_NOT_FOUND", str(exc)
    elif isinstance(exc, TenantExists):
        code, reason, message = grpc.StatusCode.ALREADY_EXISTS, "TENANT_EXISTS", str(exc)
    elif isinstance(exc, InvalidTenantName):
        code, reason, message = grpc.StatusCode.INVALID_ARGUMENT, "INVALID_TENANT_NAME", str(exc)
        field = "tenant_id"
    elif isinstance(exc, Unauthenticated):
        code, reason, message = grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED", str(exc)
    else:
        log.exception("internal error", exc_info=exc)
        code, reason, message = grpc.StatusCode.INTERNAL, "INTERNAL", "internal error"
    info = error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN, metadata=metadata)
    details = [info]
    if field:
        details.append(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=field, description=message)
                ]
            )
        )
    packed = []
    for d in details:
        a = any_pb2.Any()
        a.Pack(d)
        packed.append(a)
    return status_pb2.Status(code=getattr(code_pb2, code.name), message=message, details=packed)


def abort(context: grpc.ServicerContext, exc: BaseException) -> None:
    """End the call with the status of ``exc`` (raises, as ``context.abort`` does)."""
    context.abort_with_status(rpc_status.to_status(to_status(exc)))


def funnel(method: F) -> F:
    """Decorate a servicer method so that every exception leaves as a proper status."""
    if inspect.isgeneratorfunction(method):

        @functools.wraps(method)
        def stream(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
            try:
                yield from method(self, request, context)
            except Exception as exc:  # the funnel: every error leaves through here
                if context.is_active() or not isinstance(exc, Cancelled):
                    abort(context, exc)

        return stream  # type: ignore[return-value]

    @functools.wraps(method)
    def unary(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return method(self, request, context)
        except Exception as exc:  # the funnel: every error leaves through here
            abort(context, exc)

    return unary  # type: ignore[return-value]
