"""Whether a net-change run can reuse the plan's previous run (SPEC §6).

A net change gives exactly the result of a regeneration of the same data,
plan date and parameters. It may reuse a previous run only when the server
still holds that run's result and the run was planned with the same plan
date and default group; otherwise it is planned as a regeneration and the
run says why (``PlanRun.fallback_reason``).

This version of the engine plans every SKU of every run: a net change is
exact because it *is* a regeneration, and it gains from the previous run in
what it streams and what the connector writes (the difference), not yet in
engine time. The reason says so, so that nobody reads a re-planned SKU count
as incremental work.
"""

from __future__ import annotations

import datetime as dt

from masterplan.server.store import RunRecord, TenantStore

__all__ = ["ENGINE_PLANS_EVERY_SKU", "fallback_reason", "previous_run"]

#: The reason every net change gives while the engine has no incremental path.
ENGINE_PLANS_EVERY_SKU = "the engine plans every SKU of a net change in this version"


def previous_run(store: TenantStore, plan_id: str, exclude: str = "") -> RunRecord | None:
    """The plan's newest succeeded run whose result the store still holds."""
    for rec in store.runs(plan_id):
        if rec.run_id != exclude and rec.state == "SUCCEEDED" and rec.results is not None:
            return rec
    return None


def fallback_reason(
    store: TenantStore,
    plan_id: str,
    plan_date: dt.date,
    default_group: str | None,
    exclude: str = "",
) -> str:
    """Why a net change of ``plan_id`` is planned as a regeneration."""
    previous = previous_run(store, plan_id, exclude)
    if previous is None:
        return "no previous run of this plan is held by the server"
    if previous.plan_date != plan_date:
        return f"the plan date changed from {previous.plan_date} to {plan_date}"
    if previous.default_group != default_group:
        return "the default coverage group changed"
    return ENGINE_PLANS_EVERY_SKU
