"""Resource names (AIP-122): ``tenants/{tenant}/plans/{plan}/runs/{run}``.

Parsing checks the tenant segment against the caller: a tenant key used on
another tenant's resource gets ``PERMISSION_DENIED`` whether or not the
resource exists, so that names cannot be probed.
"""

from __future__ import annotations

import re

from server.errors import InvalidArgument, PermissionDenied

__all__ = ["parse_plan", "parse_run", "plan_name", "run_name"]

_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_PLAN = re.compile(r"tenants/([^/]+)/plans/([^/]+)")
_RUN = re.compile(r"tenants/([^/]+)/plans/([^/]+)/runs/([^/]+)")


def _check(tenant: str, caller: str, name: str, field: str) -> None:
    # "-" stands for the caller's own tenant (AIP-159 style), so a client that
    # holds only a key can name its resources.
    if tenant not in (caller, "-"):
        raise PermissionDenied(f"{field} {name!r} is not a resource of the caller", field=field)


def _segment(value: str, what: str, field: str) -> str:
    if not _SEGMENT.fullmatch(value):
        raise InvalidArgument(
            f"{field}: {what} id {value!r} must be 1-63 characters of [A-Za-z0-9._-]",
            field=field,
        )
    return value


def parse_plan(name: str, caller: str, field: str = "parent") -> str:
    """The plan id of ``tenants/{caller}/plans/{plan}``."""
    m = _PLAN.fullmatch(name)
    if not m:
        raise InvalidArgument(
            f"{field} must be tenants/{{tenant}}/plans/{{plan}}, got {name!r}", field=field
        )
    _check(m.group(1), caller, name, field)
    return _segment(m.group(2), "plan", field)


def parse_run(name: str, caller: str, field: str = "name") -> tuple[str, str]:
    """``(plan, run)`` of ``tenants/{caller}/plans/{plan}/runs/{run}``."""
    m = _RUN.fullmatch(name)
    if not m:
        raise InvalidArgument(
            f"{field} must be tenants/{{tenant}}/plans/{{plan}}/runs/{{run}}, got {name!r}",
            field=field,
        )
    _check(m.group(1), caller, name, field)
    return _segment(m.group(2), "plan", field), _segment(m.group(3), "run", field)


def plan_name(tenant: str, plan: str) -> str:
    return f"tenants/{tenant}/plans/{plan}"


def run_name(tenant: str, plan: str, run: str) -> str:
    return f"tenants/{tenant}/plans/{plan}/runs/{run}"


def check_run_id(run_id: str, field: str = "run_id") -> str:
    """A client-chosen run id, validated like any name segment."""
    return _segment(run_id, "run", field)
