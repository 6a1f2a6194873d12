"""Rich gRPC error statuses: built by the server, parsed back by the client.

Every refusal of the service, whether from the server's error funnel or the
authentication interceptor, leaves as a ``google.rpc.Status`` carrying an
``ErrorInfo`` (a stable ``reason`` in the fixed :data:`DOMAIN`, and metadata
such as the tenant, plan, table, row, field or quota) and, for bad input, a
``BadRequest`` field violation. The client turns the same status back into
:class:`StatusDetails`. Keeping both directions in one module means the two
sides cannot drift apart on the trailer's shape.

Every string echoed into a status is bounded. gRPC carries the message twice
(the ``grpc-message`` trailer and the serialized status in
``grpc-status-details-bin``, plus once more as the violation's description),
and trailers have a size limit (8 KiB by default): an error that echoed a
client's 8 KB name in full would be replaced on the wire by gRPC's own
``RESOURCE_EXHAUSTED`` and the client would never learn what was wrong. So
the message is cut to :data:`MAX_MESSAGE_BYTES`, each metadata key and value
to :data:`MAX_KEY_BYTES` and :data:`MAX_VALUE_BYTES`, and at most
:data:`MAX_METADATA_ENTRIES` entries are kept; a cut string ends with
:data:`TRUNCATION_MARKER`. Limits are in UTF-8 bytes, not characters, since
trailers are measured in bytes (and non-ASCII text is percent-encoded in
``grpc-message``, tripling it). Even at the worst case the trailers stay
under half of gRPC's default limit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from enum import StrEnum
from typing import NoReturn

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

__all__ = [
    "DETAILS_METADATA_KEY",
    "DOMAIN",
    "MAX_KEY_BYTES",
    "MAX_MESSAGE_BYTES",
    "MAX_METADATA_ENTRIES",
    "MAX_VALUE_BYTES",
    "TRUNCATION_MARKER",
    "FieldViolation",
    "Reason",
    "StatusDetails",
    "abort",
    "build_status",
    "clip",
    "from_status",
    "parse_rpc_error",
    "to_grpc_status",
]

#: The ``ErrorInfo.domain`` of every error this service raises.
DOMAIN = "masterplan.v1"
#: The trailer that carries the serialized ``google.rpc.Status``.
DETAILS_METADATA_KEY = "grpc-status-details-bin"
#: Bound of the status message (and of the field violation's description).
MAX_MESSAGE_BYTES = 300
#: Bound of each ``ErrorInfo`` metadata value and of a violation's field path.
MAX_VALUE_BYTES = 128
#: Bound of each ``ErrorInfo`` metadata key (the service's own keys are short words).
MAX_KEY_BYTES = 32
#: How many ``ErrorInfo`` metadata entries are kept (the first, in order).
MAX_METADATA_ENTRIES = 8
#: What a cut string ends with, so nobody mistakes it for the whole input.
TRUNCATION_MARKER = "...(truncated)"
#: ``ErrorInfo.reason`` is at most 63 characters (AIP-193).
_MAX_REASON = 63

_CODE_BY_NUMBER: dict[int, grpc.StatusCode] = {code.value[0]: code for code in grpc.StatusCode}


class Reason(StrEnum):
    """The ``ErrorInfo`` reasons the service sends; stable, so clients may branch on them.

    The members are strings, so a reason read off the wire compares equal to
    its member. Servicers may pass any other UPPER_SNAKE_CASE string too; the
    list names those the funnel and the interceptor use.
    """

    # The interceptor's refusals, before any servicer runs.
    API_KEY_MISSING = "API_KEY_MISSING"
    AUTHORIZATION_MALFORMED = "AUTHORIZATION_MALFORMED"
    API_KEY_INVALID = "API_KEY_INVALID"
    ADMIN_KEY_REQUIRED = "ADMIN_KEY_REQUIRED"
    TENANT_KEY_REQUIRED = "TENANT_KEY_REQUIRED"
    # The error funnel's.
    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    INVALID_CHUNK = "INVALID_CHUNK"
    INVALID_PLAN_INPUT = "INVALID_PLAN_INPUT"
    INVALID_TENANT_NAME = "INVALID_TENANT_NAME"
    NOT_FOUND = "NOT_FOUND"
    TENANT_NOT_FOUND = "TENANT_NOT_FOUND"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    TENANT_EXISTS = "TENANT_EXISTS"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    NO_DATASET = "NO_DATASET"
    DATASET_CHANGED = "DATASET_CHANGED"
    NO_RESULTS = "NO_RESULTS"
    PLAN_BUSY = "PLAN_BUSY"
    CANCELLED = "CANCELLED"
    UNIMPLEMENTED = "UNIMPLEMENTED"
    QUOTA_EXCEEDED = "QUOTA_EXCEEDED"
    INTERNAL = "INTERNAL"


@dataclasses.dataclass(frozen=True, slots=True)
class FieldViolation:
    """One ``BadRequest`` field violation: which request field, and what is wrong."""

    field: str
    description: str


@dataclasses.dataclass(frozen=True, slots=True)
class StatusDetails:
    """A failed call's status as the client sees it, details unpacked.

    Attributes:
        code: The gRPC status code (a ``grpc.StatusCode``).
        message: The status message, as bounded by the server.
        reason: ``ErrorInfo.reason``; empty when the status carried no
            ``ErrorInfo`` (gRPC's own errors, such as ``UNAVAILABLE``).
        domain: ``ErrorInfo.domain``; :data:`DOMAIN` for this service's errors.
        metadata: ``ErrorInfo.metadata`` (tenant, plan, table, row, field, ...).
        violations: The ``BadRequest`` field violations, in order.
    """

    code: grpc.StatusCode
    message: str
    reason: str = ""
    domain: str = ""
    metadata: Mapping[str, str] = dataclasses.field(default_factory=dict)
    violations: tuple[FieldViolation, ...] = ()

    @property
    def field(self) -> str:
        """The first offending field's path, or ``""`` when no field was named."""
        return self.violations[0].field if self.violations else ""


def clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes, ending in the marker if cut.

    The cut falls on a character boundary, and a lone surrogate (which no
    UTF-8 encoder accepts) becomes ``?``, so the result always encodes: a
    status that failed to serialize would turn the error into another one.

    Args:
        text: Any string, possibly a client's whole input.
        limit: The most UTF-8 bytes the result may take, marker included.
    """
    encoded = text.encode("utf-8", "replace")
    if len(encoded) <= limit:
        return encoded.decode("utf-8")
    room = max(0, limit - len(TRUNCATION_MARKER))
    return encoded[:room].decode("utf-8", "ignore") + TRUNCATION_MARKER


def _bounded_metadata(metadata: Mapping[str, object] | None) -> dict[str, str]:
    """The metadata as strings, without empty values, each bounded, at most N entries."""
    out: dict[str, str] = {}
    for key, value in (metadata or {}).items():
        if value is None or value == "":
            continue
        if len(out) == MAX_METADATA_ENTRIES:
            break
        out[clip(str(key), MAX_KEY_BYTES)] = clip(str(value), MAX_VALUE_BYTES)
    return out


def _pack(message: error_details_pb2.ErrorInfo | error_details_pb2.BadRequest) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def build_status(
    code: grpc.StatusCode,
    message: str,
    reason: str,
    metadata: Mapping[str, object] | None = None,
    *,
    field: str = "",
) -> status_pb2.Status:
    """A ``google.rpc.Status`` with an ``ErrorInfo`` and, given ``field``, a ``BadRequest``.

    Every string is bounded here, so callers may pass a client's input as it
    came (see the module docstring for why that matters).

    Args:
        code: The gRPC status code.
        message: What went wrong, for a person; bounded to
            :data:`MAX_MESSAGE_BYTES`.
        reason: The stable machine-readable cause (a :class:`Reason` or
            another UPPER_SNAKE_CASE string).
        metadata: Context for the reason: tenant, plan, table, row, field,
            resource, limit, ...; ``None`` and empty values are left out,
            other values are turned into strings.
        field: The offending request field's path; when given, a
            ``BadRequest`` field violation names it, with the message as its
            description.

    Returns:
        The status, ready for :func:`to_grpc_status`.
    """
    text = clip(message, MAX_MESSAGE_BYTES)
    info = error_details_pb2.ErrorInfo(
        reason=clip(reason, _MAX_REASON),
        domain=DOMAIN,
        metadata=_bounded_metadata(metadata),
    )
    details = [_pack(info)]
    if field:
        violation = error_details_pb2.BadRequest.FieldViolation(
            field=clip(field, MAX_VALUE_BYTES), description=text
        )
        details.append(_pack(error_details_pb2.BadRequest(field_violations=[violation])))
    return status_pb2.Status(code=code.value[0], message=text, details=details)


def to_grpc_status(status: status_pb2.Status) -> grpc.Status:
    """What ``ServicerContext.abort_with_status`` takes: code, message and the details trailer."""
    result: grpc.Status = rpc_status.to_status(status)
    return result


def abort(context: grpc.ServicerContext, status: status_pb2.Status) -> NoReturn:
    """End the call with ``status``; raises, as ``context.abort_with_status`` does.

    Args:
        context: The servicer (or interceptor) context of the call.
        status: The status, from :func:`build_status`.
    """
    context.abort_with_status(to_grpc_status(status))
    # gRPC's context raises above; a test double that returns must not let
    # the handler carry on as if the call had succeeded.
    raise RuntimeError(f"call aborted with {status.message}")


def _code(number: int) -> grpc.StatusCode:
    code: grpc.StatusCode = _CODE_BY_NUMBER.get(number, grpc.StatusCode.UNKNOWN)
    return code


def from_status(status: status_pb2.Status) -> StatusDetails:
    """Unpack a ``google.rpc.Status``: its ``ErrorInfo`` and ``BadRequest`` details.

    Details of other types are skipped: a newer server may send more than
    this client knows.
    """
    reason, domain = "", ""
    metadata: dict[str, str] = {}
    violations: list[FieldViolation] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason, domain, metadata = info.reason, info.domain, dict(info.metadata)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations.extend(FieldViolation(v.field, v.description) for v in bad.field_violations)
    return StatusDetails(
        code=_code(status.code),
        message=status.message,
        reason=reason,
        domain=domain,
        metadata=metadata,
        violations=tuple(violations),
    )


def _ask(err: BaseException, name: str) -> object:
    """``err.name()`` when the error is also a ``grpc.Call`` (as the stubs' errors are)."""
    method = getattr(err, name, None)
    return method() if callable(method) else None


def parse_rpc_error(err: BaseException) -> StatusDetails:
    """The status of a failed call, with its details when the server sent any.

    Args:
        err: What a stub raised: a ``grpc.RpcError`` that is also a
            ``grpc.Call`` (code, details and trailers), or a bare one.

    Returns:
        The call's code and message, and the ``ErrorInfo`` and ``BadRequest``
        details of the ``grpc-status-details-bin`` trailer. A trailer that
        does not parse, or that disagrees with the call's own code or message
        (a proxy rewrote one of them), is ignored: the call's code and
        message are what the client acts on.
    """
    code = _ask(err, "code")
    if not isinstance(code, grpc.StatusCode):
        code = grpc.StatusCode.UNKNOWN
    message = _ask(err, "details")
    text = message if isinstance(message, str) else ""
    status: status_pb2.Status | None = None
    if callable(getattr(err, "trailing_metadata", None)):
        try:
            status = rpc_status.from_call(err)
        except (ValueError, DecodeError):
            status = None
    if status is None:
        return StatusDetails(code=code, message=text)
    return dataclasses.replace(from_status(status), code=code, message=text)
