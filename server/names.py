"""Resource names checked against the caller.

A tenant key used on another tenant's resource gets ``PERMISSION_DENIED``
whether or not the resource exists, so that names cannot be probed. The
shapes themselves live in :mod:`masterplan.contract.names`.
"""

from __future__ import annotations

from masterplan.contract.names import (
    OWN_TENANT,
    ResourceNameError,
    check_segment,
    plan_name,
    run_name,
    split_plan_name,
    split_run_name,
)
from masterplan.server.errors import InvalidArgument, PermissionDenied

__all__ = ["check_run_id", "parse_plan", "parse_run", "parse_tenant", "plan_name", "run_name"]


def _check(tenant: str, caller: str, field: str) -> None:
    if tenant not in (caller, OWN_TENANT):
        raise PermissionDenied(f"{field} is not a resource of the caller", field=field)


def parse_tenant(name: str, caller: str, field: str = "parent") -> None:
    """Check that ``name`` is ``tenants/{caller}`` (or ``tenants/-``)."""
    prefix = "tenants/"
    tenant = name[len(prefix) :] if name.startswith(prefix) else ""
    if not tenant or "/" in tenant:
        raise InvalidArgument(f"{field} must be tenants/{{tenant}}, got {name!r}", field=field)
    _check(tenant, caller, field)


def parse_plan(name: str, caller: str, field: str = "parent") -> str:
    """The plan id of ``tenants/{caller}/plans/{plan}``."""
    try:
        tenant, plan = split_plan_name(name, field)
    except ResourceNameError as exc:
        raise InvalidArgument(str(exc), field=field) from None
    _check(tenant, caller, field)
    return plan


def parse_run(name: str, caller: str, field: str = "name") -> tuple[str, str]:
    """``(plan, run)`` of ``tenants/{caller}/plans/{plan}/runs/{run}``."""
    try:
        tenant, plan, run = split_run_name(name, field)
    except ResourceNameError as exc:
        raise InvalidArgument(str(exc), field=field) from None
    _check(tenant, caller, field)
    return plan, run


def check_run_id(run_id: str, field: str = "run_id") -> str:
    """A client-chosen run id, validated like any name segment."""
    try:
        return check_segment(run_id, "run", field)
    except ResourceNameError as exc:
        raise InvalidArgument(str(exc), field=field) from None
