"""Typed client exceptions, one per gRPC status code, mapped back from the wire.

A failed call raises the class of its status code (:class:`NotFound` for
``NOT_FOUND``, ...), all subclasses of :class:`MasterplanClientError`, so
callers catch what they can act on and let the rest propagate. The code to
class mapping lives in one table, :data:`_BY_CODE`; a reason a caller acts
on may have a subclass of its code's class (:class:`DatasetChanged`), in
:data:`_BY_REASON`. Each exception carries
the server's ``ErrorInfo`` (``reason``, ``domain``, ``metadata``) and
``BadRequest`` field violations, parsed by :mod:`masterplan.status`, the
module the server builds them with.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

import grpc

from masterplan.status import FieldViolation, StatusDetails, parse_rpc_error

__all__ = [
    "Aborted",
    "AlreadyExists",
    "Cancelled",
    "DataLoss",
    "DatasetChanged",
    "DeadlineExceeded",
    "FailedPrecondition",
    "Internal",
    "InvalidArgument",
    "MasterplanClientError",
    "NotFound",
    "OutOfRange",
    "PermissionDenied",
    "PlanBusy",
    "ResourceExhausted",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
    "Unknown",
    "exception_class_for",
    "from_rpc_error",
    "from_status_details",
]


class MasterplanClientError(Exception):
    """A call failed.

    Attributes:
        code: The gRPC status code (each subclass has its own).
        message: The server's message (bounded by the server).
        reason: ``ErrorInfo.reason``, stable across releases: branch on this,
            not on the message. Empty for gRPC's own errors (no server reply).
        domain: ``ErrorInfo.domain`` (``masterplan.v1`` for the service's errors).
        metadata: ``ErrorInfo.metadata``: tenant, plan, table, row, field,
            resource, limit, ...
        violations: The ``BadRequest`` field violations.
        field: The first violation's field path, or ``""``.
    """

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(
        self,
        message: str,
        reason: str = "",
        metadata: Mapping[str, str] | None = None,
        field: str = "",
        *,
        domain: str = "",
        violations: Sequence[FieldViolation] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.domain = domain
        self.metadata: dict[str, str] = dict(metadata or {})
        self.violations: tuple[FieldViolation, ...] = tuple(violations)
        self.field = field or (self.violations[0].field if self.violations else "")

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}"


class Cancelled(MasterplanClientError):
    """The call was cancelled (by this client, or by the server while shutting down)."""

    code = grpc.StatusCode.CANCELLED


class Unknown(MasterplanClientError):
    """The server (or a proxy) failed without saying how."""

    code = grpc.StatusCode.UNKNOWN


class InvalidArgument(MasterplanClientError):
    """The request is malformed; ``field`` and ``metadata`` say where. Do not retry as is."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class DeadlineExceeded(MasterplanClientError):
    """The call's deadline passed before the server answered."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


class NotFound(MasterplanClientError):
    """No such tenant, run or ref."""

    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(MasterplanClientError):
    """A tenant name or run id that is taken."""

    code = grpc.StatusCode.ALREADY_EXISTS


class PermissionDenied(MasterplanClientError):
    """The key is valid but not for this resource or service (see ``reason``)."""

    code = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhausted(MasterplanClientError):
    """A quota (``reason`` ``QUOTA_EXCEEDED``, ``metadata["resource"]``) or a size limit."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class FailedPrecondition(MasterplanClientError):
    """The server is not in the state the call needs (e.g. ``NO_DATASET``)."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class DatasetChanged(FailedPrecondition):
    """A delta upload was refused: the server holds another data set than it was made against.

    Reason ``DATASET_CHANGED`` (a restarted server, an upload by someone
    else). Nothing was applied; send a snapshot instead.
    """

    #: The ``ErrorInfo.reason`` this class stands for.
    REASON: Final = "DATASET_CHANGED"


class Aborted(MasterplanClientError):
    """A conflicting operation is in progress (``PLAN_BUSY``); retry when it ends."""

    code = grpc.StatusCode.ABORTED


class OutOfRange(MasterplanClientError):
    """A value past the valid range."""

    code = grpc.StatusCode.OUT_OF_RANGE


class Unimplemented(MasterplanClientError):
    """The server does not offer this (yet)."""

    code = grpc.StatusCode.UNIMPLEMENTED


class Internal(MasterplanClientError):
    """A server bug; its log has the details, the client gets none."""

    code = grpc.StatusCode.INTERNAL


class Unavailable(MasterplanClientError):
    """The server is down, draining, or the TLS handshake failed."""

    code = grpc.StatusCode.UNAVAILABLE


class DataLoss(MasterplanClientError):
    """Unrecoverable loss or corruption of data."""

    code = grpc.StatusCode.DATA_LOSS


class Unauthenticated(MasterplanClientError):
    """No key, or one that is malformed, unknown, rotated or revoked (see ``reason``)."""

    code = grpc.StatusCode.UNAUTHENTICATED


#: ``ABORTED`` is what the server answers a second run of a busy plan with;
#: the name older code catches.
PlanBusy = Aborted

#: The one mapping from status code to exception class.
_BY_CODE: Final[Mapping[grpc.StatusCode, type[MasterplanClientError]]] = {
    cls.code: cls
    for cls in (
        Cancelled,
        Unknown,
        InvalidArgument,
        DeadlineExceeded,
        NotFound,
        AlreadyExists,
        PermissionDenied,
        ResourceExhausted,
        FailedPrecondition,
        Aborted,
        OutOfRange,
        Unimplemented,
        Internal,
        Unavailable,
        DataLoss,
        Unauthenticated,
    )
}


#: Reasons with a class of their own, each a subclass of its code's class.
_BY_REASON: Final[Mapping[str, type[MasterplanClientError]]] = {
    DatasetChanged.REASON: DatasetChanged,
}


def exception_class_for(code: grpc.StatusCode, reason: str = "") -> type[MasterplanClientError]:
    """The exception class of a status code and ``ErrorInfo`` reason.

    :class:`Unknown` for a code with none, such as OK; a reason's own class
    (:data:`_BY_REASON`) only with the code it belongs to.
    """
    cls = _BY_CODE.get(code, Unknown)
    special = _BY_REASON.get(reason)
    return special if special is not None and issubclass(special, cls) else cls


def from_status_details(details: StatusDetails) -> MasterplanClientError:
    """The typed exception for a parsed status."""
    cls = exception_class_for(details.code, details.reason)
    return cls(
        details.message or details.code.name,
        details.reason,
        details.metadata,
        details.field,
        domain=details.domain,
        violations=details.violations,
    )


def from_rpc_error(err: grpc.RpcError) -> MasterplanClientError:
    """The typed exception for a failed call, with the server's error details."""
    return from_status_details(parse_rpc_error(err))
