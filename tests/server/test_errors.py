"""The error funnel: its one mapping, and bounded errors from a real server on port 0."""

from __future__ import annotations

import logging
from collections.abc import Callable

import grpc
import pytest
from google.rpc import code_pb2

from masterplan.client import errors
from masterplan.client.client import MasterplanClient
from masterplan.codec import CodecError
from masterplan.contract.names import ResourceNameError
from masterplan.server.engine import InvalidPlanInput
from masterplan.server.errors import (
    AlreadyExists,
    Cancelled,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    PlanBusy,
    Unimplemented,
    to_status,
)
from masterplan.status import (
    DOMAIN,
    MAX_MESSAGE_BYTES,
    MAX_VALUE_BYTES,
    TRUNCATION_MARKER,
    Reason,
    from_status,
)
from masterplan.tenancy.errors import (
    InvalidTenantName,
    QuotaExceeded,
    TenantExists,
    TenantNotFound,
    Unauthenticated,
)
from masterplan.v1 import planning_pb2

# -- the mapping ------------------------------------------------------------------

MAPPING = [
    (
        InvalidArgument("bad", field="plan_date"),
        "INVALID_ARGUMENT",
        "INVALID_ARGUMENT",
        "plan_date",
    ),
    (NotFound("no run"), "NOT_FOUND", "NOT_FOUND", ""),
    (AlreadyExists("taken"), "ALREADY_EXISTS", "ALREADY_EXISTS", ""),
    (
        PermissionDenied("not yours", field="parent"),
        "PERMISSION_DENIED",
        "PERMISSION_DENIED",
        "parent",
    ),
    (FailedPrecondition("no data", reason="NO_DATASET"), "FAILED_PRECONDITION", "NO_DATASET", ""),
    (PlanBusy("busy"), "ABORTED", "PLAN_BUSY", ""),
    (Cancelled("cancelled"), "CANCELLED", "CANCELLED", ""),
    (Unimplemented("delta"), "UNIMPLEMENTED", "UNIMPLEMENTED", ""),
    (
        CodecError("items.qty: bad", "items", "qty", 4),
        "INVALID_ARGUMENT",
        "INVALID_CHUNK",
        "items.qty",
    ),
    (ResourceNameError("parent: bad", "parent"), "INVALID_ARGUMENT", "INVALID_ARGUMENT", "parent"),
    (InvalidPlanInput("no such group"), "INVALID_ARGUMENT", "INVALID_PLAN_INPUT", ""),
    (QuotaExceeded("rows", 10, 11), "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED", ""),
    (TenantNotFound("acme"), "NOT_FOUND", "TENANT_NOT_FOUND", ""),
    (TenantExists("acme"), "ALREADY_EXISTS", "TENANT_EXISTS", ""),
    (InvalidTenantName("A!", "bad"), "INVALID_ARGUMENT", "INVALID_TENANT_NAME", "tenant_id"),
    (Unauthenticated(), "UNAUTHENTICATED", "API_KEY_INVALID", ""),
]


@pytest.mark.parametrize(
    ("exc", "code", "reason", "field"), MAPPING, ids=[type(m[0]).__name__ for m in MAPPING]
)
def test_each_domain_error_maps_to_its_code_and_reason(
    exc: Exception, code: str, reason: str, field: str
) -> None:
    details = from_status(to_status(exc))
    assert details.code is getattr(grpc.StatusCode, code)
    assert (details.reason, details.domain, details.field) == (reason, DOMAIN, field)
    assert details.message == str(exc)


def test_the_metadata_names_what_was_wrong() -> None:
    chunk = from_status(to_status(CodecError("items.qty: bad", "items", "qty", 4)))
    assert chunk.metadata == {"table": "items", "column": "qty", "row": "4"}
    quota = from_status(to_status(QuotaExceeded("rows", 10, 11)))
    assert quota.metadata == {"resource": "rows", "limit": "10", "requested": "11"}
    tenant = from_status(to_status(TenantNotFound("acme")))
    assert tenant.metadata == {"tenant": "acme"}


def test_an_unexpected_error_is_internal_and_leaks_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="masterplan.server.errors"):
        status = to_status(KeyError("/srv/secret/path"))
    assert status.code == code_pb2.INTERNAL
    assert status.message == "internal error"
    assert "secret" not in status.SerializeToString().decode("latin-1")
    assert from_status(status).reason == Reason.INTERNAL
    assert "secret" in caplog.text  # the operator still gets the traceback


def test_a_domain_error_about_a_huge_input_is_bounded() -> None:
    status = to_status(InvalidArgument(f"bad {'n' * 20_000}", field="f" * 20_000, plan="p" * 9000))
    details = from_status(status)
    assert details.code is grpc.StatusCode.INVALID_ARGUMENT
    assert len(details.message.encode()) <= MAX_MESSAGE_BYTES
    assert details.message.endswith(TRUNCATION_MARKER)
    assert all(len(v.encode()) <= MAX_VALUE_BYTES for v in details.metadata.values())
    assert len(details.field.encode()) <= MAX_VALUE_BYTES


# -- against a real server -----------------------------------------------------------

LONG = {"ascii": "n" * 9000, "non-ascii": "é" * 9000}


def _run_plan(c: MasterplanClient, **fields: str) -> None:
    request = planning_pb2.RunPlanRequest(**{"parent": "tenants/-/plans/main", **fields})
    for _ in c.run_plan_events(request):
        pass


CALLS: dict[str, tuple[str, Callable[[MasterplanClient, str], object]]] = {
    "plan name": ("parent", lambda c, s: c.list_runs(f"tenants/-/plans/{s}")),
    "plan name of a run": ("parent", lambda c, s: _run_plan(c, parent=f"tenants/-/plans/{s}")),
    "run id": ("run_id", lambda c, s: _run_plan(c, run_id=s)),
    "run name": ("name", lambda c, s: c.get_run(f"tenants/-/plans/main/runs/{s}")),
    "plan date": ("plan_date", lambda c, s: _run_plan(c, plan_date=s)),
    "malformed name": ("parent", lambda c, s: c.list_runs(f"tenants/-/plans/main/{s}")),
}


@pytest.mark.parametrize("text", LONG.values(), ids=LONG.keys())
@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
def test_an_over_long_input_is_invalid_with_a_bounded_message(  # type: ignore[no-untyped-def]
    live, call: tuple[str, Callable[[MasterplanClient, str], object]], text: str
) -> None:
    field, do = call
    with live.client("acme") as c, pytest.raises(errors.InvalidArgument) as err:
        do(c, text)
    exc = err.value
    assert exc.code is grpc.StatusCode.INVALID_ARGUMENT
    assert exc.domain == DOMAIN and exc.reason
    assert exc.field == field
    assert len(exc.message.encode()) <= MAX_MESSAGE_BYTES
    assert all(len(v.encode()) <= MAX_VALUE_BYTES for v in exc.metadata.values())


@pytest.mark.parametrize("text", LONG.values(), ids=LONG.keys())
def test_an_over_long_tenant_name_is_invalid_with_a_bounded_message(live, text: str) -> None:  # type: ignore[no-untyped-def]
    with live.client(key=live.admin_key) as admin:
        with pytest.raises(errors.InvalidArgument) as err:
            admin.install_tenant(text)
        assert err.value.reason == Reason.INVALID_TENANT_NAME
        assert len(err.value.message.encode()) <= MAX_MESSAGE_BYTES
        assert all(len(v.encode()) <= MAX_VALUE_BYTES for v in err.value.metadata.values())
        with pytest.raises(errors.InvalidArgument) as err:
            admin.uninstall_tenant(f"acme/{text}")
        assert err.value.field == "name"
        assert len(err.value.message.encode()) <= MAX_MESSAGE_BYTES
