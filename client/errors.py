"""Typed client exceptions, one per gRPC status code, mapped back from the wire."""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

__all__ = [
    "AlreadyExists",
    "Cancelled",
    "DeadlineExceeded",
    "FailedPrecondition",
    "InvalidArgument",
    "MasterplanClientError",
    "NotFound",
    "PermissionDenied",
    "PlanBusy",
    "ResourceExhausted",
    "Unauthenticated",
    "Unavailable",
    "from_rpc_error",
]


class MasterplanClientError(Exception):
    """A call failed. ``code`` is the gRPC status; ``reason`` and ``metadata`` come
    from the server's ``ErrorInfo``; ``field`` names the offending field."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(
        self,
        message: str,
        reason: str = "",
        metadata: dict[str, str] | None = None,
        field: str = "",
    ):
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.metadata = metadata or {}
        self.field = field

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}"


def _make(name: str, code: grpc.StatusCode) -> type[MasterplanClientError]:
    return type(
        name, (MasterplanClientError,), {"code": code, "__doc__": f"{code.name} from the server."}
    )


InvalidArgument = _make("InvalidArgument", grpc.StatusCode.INVALID_ARGUMENT)
NotFound = _make("NotFound", grpc.StatusCode.NOT_FOUND)
AlreadyExists = _make("AlreadyExists", grpc.StatusCode.ALREADY_EXISTS)
PermissionDenied = _make("PermissionDenied", grpc.StatusCode.PERMISSION_DENIED)
Unauthenticated = _make("Unauthenticated", grpc.StatusCode.UNAUTHENTICATED)
ResourceExhausted = _make("ResourceExhausted", grpc.StatusCode.RESOURCE_EXHAUSTED)
FailedPrecondition = _make("FailedPrecondition", grpc.StatusCode.FAILED_PRECONDITION)
PlanBusy = _make("PlanBusy", grpc.StatusCode.ABORTED)
Cancelled = _make("Cancelled", grpc.StatusCode.CANCELLED)
DeadlineExceeded = _make("DeadlineExceeded", grpc.StatusCode.DEADLINE_EXCEEDED)
Unavailable = _make("Unavailable", grpc.StatusCode.UNAVAILABLE)
Unimplemented = _make("Unimplemented", grpc.StatusCode.UNIMPLEMENTED)

_BY_CODE = {
    cls.code: cls
    for cls in (
        InvalidArgument,
        NotFound,
        AlreadyExists,
        PermissionDenied,
        Unauthenticated,
        ResourceExhausted,
        FailedPrecondition,
        PlanBusy,
        Cancelled,
        DeadlineExceeded,
        Unavailable,
        Unimplemented,
    )
}


def from_rpc_error(err: grpc.RpcError) -> MasterplanClientError:
    """The typed exception for a failed call, with the server's error details."""
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    message = err.details() if hasattr(err, "details") else str(err)
    reason, metadata, field = "", {}, ""
    try:
        status = rpc_status.from_call(err)  # type: ignore[arg-type]
    except Exception:  # a status without rich details
        status = None
    if status is not None:
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason, metadata = info.reason, dict(info.metadata)
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                if bad.field_violations:
                    field = bad.field_violations[0].field
    cls = _BY_CODE.get(code, MasterplanClientError)
    exc = cls(message or code.name, reason, metadata, field)
    if cls is MasterplanClientError:
        exc.code = code
    return exc
