"""Resource names (AIP-122), run modes and run states.

Names are ``tenants/{tenant}/plans/{plan}`` and
``tenants/{tenant}/plans/{plan}/runs/{run}``; ``-`` stands for the caller's
own tenant (AIP-159 style), so that a client holding only a key can name its
resources. The parsers here check the shape only and raise
:class:`ResourceNameError`; the server turns that into ``INVALID_ARGUMENT``
and checks the tenant segment against the caller.
"""

from __future__ import annotations

import re
from enum import IntEnum, StrEnum

__all__ = [
    "OWN_TENANT",
    "ResourceNameError",
    "RunMode",
    "RunState",
    "UploadMode",
    "check_segment",
    "plan_name",
    "run_name",
    "split_plan_name",
    "split_run_name",
]

#: The tenant segment that stands for the caller's own tenant.
OWN_TENANT = "-"

_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_PLAN = re.compile(r"tenants/([^/]+)/plans/([^/]+)")
_RUN = re.compile(r"tenants/([^/]+)/plans/([^/]+)/runs/([^/]+)")


class RunMode(StrEnum):
    """How a run plans (SPEC §6); the values are the ``plan_runs.mode`` column's."""

    REGENERATION = "regeneration"
    NET_CHANGE = "net_change"


class RunState(IntEnum):
    """A run's state; the numbers are the wire values of ``PlanRun.State``."""

    UNSPECIFIED = 0
    RUNNING = 1
    SUCCEEDED = 2
    FAILED = 3
    CANCELLED = 4


class UploadMode(IntEnum):
    """What an upload's chunks are; the numbers are the wire values of ``UploadMode``."""

    UNSPECIFIED = 0
    SNAPSHOT = 1
    DELTA = 2


class ResourceNameError(ValueError):
    """A name or id segment that does not have the required shape.

    Attributes:
        field: The request field that held it.
    """

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def check_segment(value: str, what: str, field: str) -> str:
    """``value`` if it is a valid id segment (1-63 characters of ``[A-Za-z0-9._-]``)."""
    if not _SEGMENT.fullmatch(value):
        shown = value if len(value) <= 80 else value[:77] + "..."
        raise ResourceNameError(
            f"{field}: {what} id {shown!r} must be 1-63 characters of [A-Za-z0-9._-]", field
        )
    return value


def _shown(name: str) -> str:
    # Bounded echo: an error never carries a client's whole input back.
    return repr(name if len(name) <= 120 else name[:117] + "...")


def split_plan_name(name: str, field: str = "parent") -> tuple[str, str]:
    """``(tenant, plan)`` of ``tenants/{tenant}/plans/{plan}``."""
    m = _PLAN.fullmatch(name)
    if not m:
        raise ResourceNameError(
            f"{field} must be tenants/{{tenant}}/plans/{{plan}}, got {_shown(name)}", field
        )
    return m.group(1), check_segment(m.group(2), "plan", field)


def split_run_name(name: str, field: str = "name") -> tuple[str, str, str]:
    """``(tenant, plan, run)`` of ``tenants/{tenant}/plans/{plan}/runs/{run}``."""
    m = _RUN.fullmatch(name)
    if not m:
        raise ResourceNameError(
            f"{field} must be tenants/{{tenant}}/plans/{{plan}}/runs/{{run}}, got {_shown(name)}",
            field,
        )
    return (
        m.group(1),
        check_segment(m.group(2), "plan", field),
        check_segment(m.group(3), "run", field),
    )


def plan_name(tenant: str, plan: str) -> str:
    """The resource name of a plan."""
    return f"tenants/{tenant}/plans/{plan}"


def run_name(tenant: str, plan: str, run: str) -> str:
    """The resource name of a run."""
    return f"tenants/{tenant}/plans/{plan}/runs/{run}"
