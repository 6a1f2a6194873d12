"""Tests for client.errors: one explicit class per status code, details parsed off the wire."""

from __future__ import annotations

import inspect

import grpc
import pytest

from masterplan.client import errors
from masterplan.client.errors import (
    Aborted,
    AlreadyExists,
    Cancelled,
    DataLoss,
    DeadlineExceeded,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    MasterplanClientError,
    NotFound,
    OutOfRange,
    PermissionDenied,
    PlanBusy,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    Unimplemented,
    Unknown,
    exception_class_for,
    from_rpc_error,
)
from masterplan.status import (
    DETAILS_METADATA_KEY,
    DOMAIN,
    MAX_MESSAGE_BYTES,
    FieldViolation,
    Reason,
    build_status,
)
from tests.failed_call import FailedCall, failed_call

EXPECTED = {
    grpc.StatusCode.CANCELLED: Cancelled,
    grpc.StatusCode.UNKNOWN: Unknown,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.ABORTED: Aborted,
    grpc.StatusCode.OUT_OF_RANGE: OutOfRange,
    grpc.StatusCode.UNIMPLEMENTED: Unimplemented,
    grpc.StatusCode.INTERNAL: Internal,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DATA_LOSS: DataLoss,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
}


def aborted_with(
    code: grpc.StatusCode,
    message: str,
    reason: str,
    metadata: dict[str, object] | None = None,
    field: str = "",
) -> FailedCall:
    """The error a client sees once a servicer aborts through masterplan.status."""
    return failed_call(build_status(code, message, reason, metadata, field=field))


def test_every_error_code_has_its_own_class() -> None:
    assert set(EXPECTED) == set(grpc.StatusCode) - {grpc.StatusCode.OK}
    assert len(set(EXPECTED.values())) == len(EXPECTED)
    for code, cls in EXPECTED.items():
        assert exception_class_for(code) is cls
        assert cls.code is code
        assert issubclass(cls, MasterplanClientError)


@pytest.mark.parametrize("code", sorted(EXPECTED, key=lambda c: c.value[0]), ids=lambda c: c.name)
def test_each_code_off_the_wire_raises_its_class(code: grpc.StatusCode) -> None:
    exc = from_rpc_error(aborted_with(code, f"{code.name} happened", "SOME_REASON"))
    assert type(exc) is EXPECTED[code]
    assert exc.code is code
    assert exc.message == f"{code.name} happened"
    assert str(exc) == f"{code.name}: {code.name} happened"
    assert exc.reason == "SOME_REASON" and exc.domain == DOMAIN


def test_the_classes_are_written_out_not_made_at_run_time() -> None:
    # a class statement in this module, so type checkers and readers see each one
    source = inspect.getsource(errors)
    for cls in EXPECTED.values():
        assert f"class {cls.__name__}(MasterplanClientError):" in source
        assert cls.__module__ == errors.__name__ and cls.__doc__
        assert cls.__name__ in errors.__all__
    assert "type(" not in source


def test_plan_busy_is_the_aborted_class() -> None:
    exc = from_rpc_error(
        aborted_with(grpc.StatusCode.ABORTED, "a run of this plan is running", Reason.PLAN_BUSY)
    )
    assert isinstance(exc, PlanBusy) and exc.reason == Reason.PLAN_BUSY


def test_error_info_and_bad_request_are_parsed() -> None:
    exc = from_rpc_error(
        aborted_with(
            grpc.StatusCode.INVALID_ARGUMENT,
            "items.item_id: row 7 has string code 9 outside the chunk's dictionary of 3",
            Reason.INVALID_CHUNK,
            {"table": "items", "column": "item_id", "row": 7},
            field="items.item_id",
        )
    )
    assert isinstance(exc, InvalidArgument)
    assert exc.reason == "INVALID_CHUNK"
    assert exc.metadata == {"table": "items", "column": "item_id", "row": "7"}
    assert exc.field == "items.item_id"
    assert exc.violations == (FieldViolation("items.item_id", exc.message),)


def test_quota_metadata_is_parsed() -> None:
    exc = from_rpc_error(
        aborted_with(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "quota exceeded for rows: requested 11, limit 10",
            Reason.QUOTA_EXCEEDED,
            {"resource": "rows", "limit": 10, "requested": 11},
        )
    )
    assert isinstance(exc, ResourceExhausted)
    assert exc.metadata == {"resource": "rows", "limit": "10", "requested": "11"}
    assert exc.field == "" and exc.violations == ()


def test_a_long_message_arrives_bounded() -> None:
    exc = from_rpc_error(
        aborted_with(grpc.StatusCode.INVALID_ARGUMENT, "x" * 50_000, Reason.INVALID_ARGUMENT)
    )
    assert isinstance(exc, InvalidArgument)
    assert len(exc.message.encode()) <= MAX_MESSAGE_BYTES


def test_grpcs_own_errors_have_a_class_but_no_reason() -> None:
    exc = from_rpc_error(FailedCall(grpc.StatusCode.UNAVAILABLE, "failed to connect"))
    assert isinstance(exc, Unavailable)
    assert (exc.message, exc.reason, exc.domain, exc.metadata, exc.field) == (
        "failed to connect",
        "",
        "",
        {},
        "",
    )


def test_garbled_details_keep_the_code() -> None:
    err = FailedCall(grpc.StatusCode.NOT_FOUND, "gone", [(DETAILS_METADATA_KEY, b"\xff\x00")])
    exc = from_rpc_error(err)
    assert isinstance(exc, NotFound) and exc.message == "gone" and exc.reason == ""


def test_an_error_without_a_message_is_named_by_its_code() -> None:
    exc = from_rpc_error(FailedCall(grpc.StatusCode.DEADLINE_EXCEEDED, ""))
    assert isinstance(exc, DeadlineExceeded) and exc.message == "DEADLINE_EXCEEDED"


def test_a_bare_rpc_error_is_unknown() -> None:
    exc = from_rpc_error(grpc.RpcError("no call attached"))
    assert type(exc) is Unknown and exc.code is grpc.StatusCode.UNKNOWN


def test_the_base_class_still_takes_its_old_arguments() -> None:
    exc = MasterplanClientError("boom", "WHY", {"k": "v"}, "f")
    assert (exc.message, exc.reason, exc.metadata, exc.field) == ("boom", "WHY", {"k": "v"}, "f")
    assert str(exc) == "UNKNOWN: boom"


@pytest.mark.parametrize("key", ["abc\tdef", "abc\n", "clé-1234"])
def test_a_key_no_grpc_header_can_carry_is_refused_when_the_client_is_made(key: str) -> None:
    """gRPC refused it at every call as INTERNAL "Invalid metadata", which
    named neither the key nor the cause."""
    from masterplan.client.client import MasterplanClient

    with pytest.raises(ValueError, match="API key holds a character"):
        MasterplanClient("127.0.0.1:1", key)
    MasterplanClient("127.0.0.1:1", "a plain-ASCII key_1.2~").close()
