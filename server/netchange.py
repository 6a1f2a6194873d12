"""Which engine call a run makes, and which previous run a net change reuses (SPEC §6).

A net change gives exactly the result of a regeneration of the same data,
plan date and parameters; the engine (:func:`~masterplan.server.engine.net_change`)
re-plans what the changes reach and reuses the rest of the plan's newest
succeeded run, when the server still holds that run's result and what the
engine kept of it. It falls back to a regeneration, and the run says why
(``PlanRun.fallback_reason``), when there is no such run, or when the engine
finds the previous run unusable (another plan date or default group, changed
master data, a change that reaches most SKUs).

When the data set was made by one delta from the data set the previous run
planned, the delta's rows tell the engine what changed; otherwise it compares
the two data sets.
"""

from __future__ import annotations

from collections.abc import Callable

from masterplan.contract.columns import TableMap
from masterplan.server.engine import NetChange, PlanParams, net_change
from masterplan.server.runs import Compute, PartitionedJob, regenerate_job
from masterplan.server.store import Dataset, RunRecord, TenantStore

__all__ = ["NO_PREVIOUS_RUN", "engine_job", "previous_run"]

#: The reason a net change without a reusable previous run gives.
NO_PREVIOUS_RUN = "no previous run of this plan is held by the server"


def previous_run(store: TenantStore, plan_id: str, exclude: str = "") -> RunRecord | None:
    """The plan's newest succeeded run whose result the store still holds."""
    for rec in store.runs(plan_id):
        if rec.run_id != exclude and rec.state == "SUCCEEDED" and rec.results is not None:
            return rec
    return None


def engine_job(
    mode: str,
    store: TenantStore,
    plan_id: str,
    dataset: Dataset,
    exclude: str = "",
    regenerate: Compute = regenerate_job,
) -> tuple[Compute, RunRecord | None, str]:
    """The engine call of a run of ``mode`` on ``dataset``.

    Returns the call, the previous run it reuses (None for a regeneration)
    and, for a net change that cannot reuse one, why. ``regenerate`` is the
    server's regeneration (inline, or over partitions).
    """
    if mode != "net_change":
        return regenerate, None, ""
    previous = previous_run(store, plan_id, exclude)
    basis = previous.basis if previous is not None else None
    if previous is None or basis is None:
        return regenerate, None, NO_PREVIOUS_RUN
    delta = dataset.delta
    # What the delta changed is what changed since the previous run only when
    # the delta was made on the data set that run planned.
    known = delta is not None and delta.base_version == previous.dataset_version
    touched = delta.touched() if known and delta is not None else None
    sources = delta.counts.sources if known and delta is not None else None

    # A server that plans over partitions walks a net change's levels (its
    # fallback regeneration's, mostly) on the same executor.
    split = regenerate.level_split if isinstance(regenerate, PartitionedJob) else None

    def job(data: TableMap, params: PlanParams, hook: Callable[[str, float], None]) -> NetChange:
        return net_change(basis, data, params, hook, touched=touched, sources=sources, split=split)

    return job, previous, ""
