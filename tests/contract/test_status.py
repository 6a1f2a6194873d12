"""Tests for masterplan.status: building, bounding and parsing rich error statuses."""

from __future__ import annotations

import base64
import re
import urllib.parse
from typing import Any

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2, status_pb2

from masterplan.status import (
    DETAILS_METADATA_KEY,
    DOMAIN,
    MAX_KEY_BYTES,
    MAX_MESSAGE_BYTES,
    MAX_METADATA_ENTRIES,
    MAX_VALUE_BYTES,
    TRUNCATION_MARKER,
    FieldViolation,
    Reason,
    StatusDetails,
    abort,
    build_status,
    clip,
    from_status,
    parse_rpc_error,
)
from tests.failed_call import FailedCall, failed_call

#: gRPC's default soft limit on metadata (headers or trailers) per call.
GRPC_METADATA_LIMIT = 8 * 1024


def trailer_bytes(status: status_pb2.Status) -> int:
    """Bytes of the two trailers gRPC sends for ``status``, as encoded on the wire."""
    message = urllib.parse.quote(status.message, safe=" !\"#$&'()*+,-./:;<=>?@[\\]^_`{|}~")
    details = base64.b64encode(status.SerializeToString())
    return len("grpc-message") + len(message) + len(DETAILS_METADATA_KEY) + len(details)


# -- clip ---------------------------------------------------------------------


def test_clip_leaves_short_text_alone() -> None:
    assert clip("plan main", 100) == "plan main"
    assert clip("x" * 100, 100) == "x" * 100


def test_clip_cuts_long_text_to_the_limit_with_a_marker() -> None:
    out = clip("x" * 10_000, 300)
    assert len(out.encode()) <= 300
    assert out.endswith(TRUNCATION_MARKER)
    assert out.startswith("x" * 200)


@pytest.mark.parametrize("char", ["é", "€", "𝄞"])
def test_clip_counts_utf8_bytes_and_never_splits_a_character(char: str) -> None:
    out = clip(char * 1000, 301)
    assert len(out.encode("utf-8")) <= 301
    body = out.removesuffix(TRUNCATION_MARKER)
    assert set(body) == {char}  # whole characters only


def test_clip_replaces_lone_surrogates_so_the_status_serializes() -> None:
    assert clip("a\ud800b", 100) == "a?b"
    status = build_status(
        grpc.StatusCode.INVALID_ARGUMENT, "bad \udfff" * 100, "R", {"k": "\ud800"}
    )
    assert status_pb2.Status.FromString(status.SerializeToString()) == status


# -- build_status ---------------------------------------------------------------


def unpack(status: status_pb2.Status) -> tuple[error_details_pb2.ErrorInfo, list[object]]:
    info = error_details_pb2.ErrorInfo()
    others: list[object] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            detail.Unpack(info)
        else:
            bad = error_details_pb2.BadRequest()
            assert detail.Unpack(bad)
            others.append(bad)
    return info, others


def test_build_status_carries_code_message_and_error_info() -> None:
    status = build_status(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "quota exceeded for rows",
        Reason.QUOTA_EXCEEDED,
        {"resource": "rows", "limit": 10, "requested": 11, "tenant": None, "plan": ""},
    )
    assert status.code == code_pb2.RESOURCE_EXHAUSTED
    assert status.message == "quota exceeded for rows"
    info, others = unpack(status)
    assert info.reason == "QUOTA_EXCEEDED" and info.domain == DOMAIN
    # None and empty values are left out; the rest become strings
    assert dict(info.metadata) == {"resource": "rows", "limit": "10", "requested": "11"}
    assert others == []  # no field, no BadRequest


def test_build_status_adds_a_field_violation_for_a_named_field() -> None:
    status = build_status(
        grpc.StatusCode.INVALID_ARGUMENT, "bad date", Reason.INVALID_ARGUMENT, field="plan_date"
    )
    _, others = unpack(status)
    [bad] = others
    assert isinstance(bad, error_details_pb2.BadRequest)
    [violation] = bad.field_violations
    assert (violation.field, violation.description) == ("plan_date", "bad date")


def test_every_echoed_string_is_bounded() -> None:
    huge = "n" * 9000
    status = build_status(
        grpc.StatusCode.INVALID_ARGUMENT,
        f"plan id {huge!r} is not valid",
        "INVALID_ARGUMENT",
        {huge: huge, **{f"k{i}": huge for i in range(2 * MAX_METADATA_ENTRIES)}},
        field=huge,
    )
    assert len(status.message.encode()) <= MAX_MESSAGE_BYTES
    assert status.message.endswith(TRUNCATION_MARKER)
    info, [bad] = unpack(status)
    assert len(info.metadata) == MAX_METADATA_ENTRIES
    for key, value in info.metadata.items():
        assert len(key.encode()) <= MAX_KEY_BYTES and len(value.encode()) <= MAX_VALUE_BYTES
    assert isinstance(bad, error_details_pb2.BadRequest)
    assert len(bad.field_violations[0].field.encode()) <= MAX_VALUE_BYTES
    assert bad.field_violations[0].description == status.message


@pytest.mark.parametrize("char", ["x", "é", "\x00", "𝄞"])
def test_the_worst_case_status_fits_well_within_grpcs_trailer_limit(char: str) -> None:
    huge = char * 20_000
    status = build_status(
        grpc.StatusCode.INVALID_ARGUMENT,
        huge,
        "R" * 200,
        {str(i) + huge: huge for i in range(3 * MAX_METADATA_ENTRIES)},
        field=huge,
    )
    assert trailer_bytes(status) < GRPC_METADATA_LIMIT // 2


# -- parsing --------------------------------------------------------------------


def test_a_status_round_trips_through_the_trailers() -> None:
    status = build_status(
        grpc.StatusCode.INVALID_ARGUMENT,
        "items.item_id: row 3 is empty",
        Reason.INVALID_CHUNK,
        {"table": "items", "column": "item_id", "row": 3},
        field="items.item_id",
    )
    details = parse_rpc_error(failed_call(status))
    assert details == StatusDetails(
        code=grpc.StatusCode.INVALID_ARGUMENT,
        message="items.item_id: row 3 is empty",
        reason="INVALID_CHUNK",
        domain=DOMAIN,
        metadata={"table": "items", "column": "item_id", "row": "3"},
        violations=(FieldViolation("items.item_id", "items.item_id: row 3 is empty"),),
    )
    assert details.field == "items.item_id"
    assert details.reason == Reason.INVALID_CHUNK


def test_from_status_skips_detail_types_it_does_not_know() -> None:
    status = build_status(grpc.StatusCode.NOT_FOUND, "no such run", Reason.NOT_FOUND)
    status.details.add().Pack(error_details_pb2.RetryInfo())
    details = from_status(status)
    assert (details.code, details.reason, details.field) == (
        grpc.StatusCode.NOT_FOUND,
        "NOT_FOUND",
        "",
    )


def test_an_error_without_details_gives_code_and_message_only() -> None:
    details = parse_rpc_error(FailedCall(grpc.StatusCode.UNAVAILABLE, "connection refused"))
    assert details == StatusDetails(grpc.StatusCode.UNAVAILABLE, "connection refused")


@pytest.mark.parametrize(
    "trailer",
    [
        b"\xff\xfe not a status",
        status_pb2.Status(code=code_pb2.NOT_FOUND, message="x").SerializeToString(),
        status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message="other").SerializeToString(),
    ],
    ids=["garbled", "other-code", "other-message"],
)
def test_a_trailer_that_disagrees_with_the_call_is_ignored(trailer: bytes) -> None:
    err = FailedCall(grpc.StatusCode.INVALID_ARGUMENT, "x", [(DETAILS_METADATA_KEY, trailer)])
    details = parse_rpc_error(err)
    assert details == StatusDetails(grpc.StatusCode.INVALID_ARGUMENT, "x")


def test_a_bare_rpc_error_is_unknown() -> None:
    details = parse_rpc_error(grpc.RpcError("no call attached"))
    assert details == StatusDetails(grpc.StatusCode.UNKNOWN, "")


def test_abort_hands_the_status_to_the_context_and_always_raises() -> None:
    seen: list[Any] = []

    class Context:
        def abort_with_status(self, status: object) -> None:
            seen.append(status)  # a double that, unlike gRPC's, returns

    status = build_status(grpc.StatusCode.ABORTED, "busy", Reason.PLAN_BUSY)
    with pytest.raises(RuntimeError):
        abort(Context(), status)
    [wire] = seen
    assert wire.code is grpc.StatusCode.ABORTED
    assert wire.details == "busy"
    assert wire.trailing_metadata == ((DETAILS_METADATA_KEY, status.SerializeToString()),)


def test_every_reason_is_a_valid_error_info_reason() -> None:
    for reason in Reason:
        assert re.fullmatch(r"[A-Z][A-Z0-9_]+[A-Z0-9]", reason) and len(reason) <= 63
        assert reason == reason.name
