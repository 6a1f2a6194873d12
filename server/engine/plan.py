"""Regeneration (SPEC §5): the engine's entry point, ``plan(data, params)``.

A run is a sequence of phases, each a function of the earlier phases'
results (frozen dataclasses), each vectorised over all SKUs or all rows.
The phase names are the keys of :attr:`PlanResult.phase_seconds
<masterplan.server.engine.types.PlanResult.phase_seconds>`:

1. ``validate``     — §5.9 input checks (:mod:`.validate`).
2. ``index``        — masters indexed, the SKUs every row names (:mod:`.skus`),
   firmed planned orders read (:mod:`.orders`), the SKU set closed under the
   graph with its settings (:mod:`.graph`).
3. ``levels``       — low-level codes and cycles (:mod:`.graph`).
4. ``requirements`` — independent requirements, receipts, firmed explosion
   (:mod:`.requirements`).
5. ``netting``      — per level, the compiled walk, the level's planned
   orders and their explosion (:mod:`.netting`, :mod:`.kernels`, :mod:`.orders`).
6. ``delays``       — futures bottom-up (:mod:`.delays`).
7. ``messages``     — action messages (:mod:`.actions`) and the output tables
   (:mod:`.output`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np

from masterplan.contract.columns import table_length
from masterplan.server.engine.actions import action_messages
from masterplan.server.engine.basis import PlanBasis, plan_basis
from masterplan.server.engine.calendar import plan_day
from masterplan.server.engine.delays import compute_delays
from masterplan.server.engine.front import Front, plan_front
from masterplan.server.engine.levelsplit import LevelSplit
from masterplan.server.engine.messages import Messages
from masterplan.server.engine.netting import net_levels
from masterplan.server.engine.orderrefs import OrderRefs
from masterplan.server.engine.output import Handed, output_tables
from masterplan.server.engine.partbasis import part_pieces
from masterplan.server.engine.partition import SHARED_TABLES
from masterplan.server.engine.requirements import requirements_and_receipts
from masterplan.server.engine.types import (
    InvalidPlanInput,
    PlanParams,
    PlanResult,
    PlanTooLarge,
    ResultTable,
    Table,
    TableMap,
)
from masterplan.server.engine.validate import CHECK_ORDER, validate

__all__ = [
    "Clock",
    "Front",
    "InvalidPlanInput",
    "PlanTooLarge",
    "check",
    "front_messages",
    "input_checks",
    "input_row_count",
    "plan",
    "plan_front",
    "plan_part",
    "regenerate",
    "warm_up",
]

#: Progress callback: a phase name and the fraction of the run done.
Progress = Callable[[str, float], None]

#: Share of a typical run done when each phase starts, for progress reports.
_PHASE_FRACTION = {
    "validate": 0.0,
    "index": 0.1,
    "levels": 0.2,
    "requirements": 0.25,
    "netting": 0.35,
    "delays": 0.8,
    "messages": 0.9,
}
#: Share of the run the netting's levels span, after its start.
_NETTING_SPAN = 0.45


class Clock:
    """Reports each phase's start to the progress callback and sums its wall time."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress: Progress = progress or (lambda phase, fraction: None)
        self.seconds: dict[str, float] = {}

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        self.progress(name, _PHASE_FRACTION[name])
        start = time.perf_counter()
        yield
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

    def netting_level(self, level: int, n_levels: int) -> None:
        self.progress(
            "netting", _PHASE_FRACTION["netting"] + _NETTING_SPAN * level / max(n_levels, 1)
        )


def plan(
    data: TableMap,
    params: PlanParams,
    progress: Progress | None = None,
    split: LevelSplit | None = None,
) -> PlanResult:
    """Plan a data set: SPEC §5 regeneration.

    Parameters
    ----------
    data
        The §4 input tables as struct-of-arrays (see :mod:`masterplan.contract.tables`);
        a missing table counts as empty.
    params
        Plan date and default coverage group.
    progress
        Called with a phase name and the fraction of the run done at the start
        of each phase and each netting level; an exception it raises (a
        cancellation, say) stops the run there.
    split
        Walks each netting level's SKUs in runs on an executor
        (:mod:`.levelsplit`); the plan is the same.

    Returns
    -------
    PlanResult
        The five output tables and the engine's phase times.

    Raises
    ------
    InvalidPlanInput
        When no meaningful plan can be made (an unknown default group).
    """
    return _run(data, params, Clock(progress), keep_basis=False, split=split)[0]


def regenerate(
    data: TableMap,
    params: PlanParams,
    progress: Progress | None = None,
    split: LevelSplit | None = None,
) -> tuple[PlanResult, PlanBasis]:
    """:func:`plan`, and the basis a later net change of the plan can reuse."""
    result, basis = _run(data, params, Clock(progress), keep_basis=True, split=split)
    assert basis is not None
    return result, basis


def plan_part(
    data: TableMap, params: PlanParams, report_shared: bool, pieces: bool = False
) -> PlanResult:
    """:func:`plan` of one partition of a data set (:mod:`.partition`).

    Every partition holds the shared tables (warehouses, calendars, groups)
    whole; only the one that ``report_shared`` reports their input checks, so
    that the joined plan has each message once. With ``pieces``, the result
    also holds the tables the basis of the joined plan is made from
    (:func:`~.partbasis.part_pieces`).
    """
    result, basis = _run(data, params, Clock(None), pieces, report_shared=report_shared)
    if basis is None:
        return result
    return dataclasses.replace(result, tables={**result.tables, **part_pieces(basis)})


def _run(
    data: TableMap,
    params: PlanParams,
    clock: Clock,
    keep_basis: bool,
    report_shared: bool = True,
    split: LevelSplit | None = None,
) -> tuple[PlanResult, PlanBasis | None]:
    t0 = plan_day(params.plan_date)
    front = plan_front(data, params, clock)
    m, s, lv = front.index.masters, front.graph.settings, front.levels
    refs = OrderRefs(m, s)
    with clock.phase("requirements"):
        given = requirements_and_receipts(
            front.validated.tables, front.index.rows, m, s, lv, front.firmed, refs, t0
        )
    with clock.phase("netting"):
        net = net_levels(
            given,
            m,
            s,
            lv,
            refs,
            t0,
            clock.netting_level,
            params.max_planned_orders,
            params.max_result_rows,
            params.stop,
            split,
        )
    # The netting holds what the later phases need of the given requirements
    # and receipts; dropping them lowers the run's peak (0.1 KB per SKU).
    firmed_messages = given.messages
    del given
    with clock.phase("delays"):
        late = compute_delays(net, s, lv)
    with clock.phase("messages"):
        actions = action_messages(net.receipts, net.requirements, net.pegging, s, t0)
        checks = None if report_shared else _own_checks(front)
        messages = Messages.concat([front_messages(front, firmed_messages, checks), net.messages])
        # The tables' rows but the delay messages', known before they are built.
        rows = len(net.orders) + len(net.pegging) + len(actions) + len(messages)
        if rows > params.max_result_rows:
            raise PlanTooLarge("result_rows", params.max_result_rows, rows)
        handed = Handed(net, late)
        if not keep_basis:
            # The output frees the netting's arrays as it reads them (the
            # run's peak, 0.5 KB per SKU lower); a basis keeps them.
            del net, late
        tables, named = output_tables(m, s, refs, handed, actions, messages, params.delays_of)
        _check_finite(tables)
        basis = None
        if keep_basis:
            edges = (front.graph.src, front.graph.dst)
            basis = plan_basis(
                data, params.plan_date, params.default_group, tables, m, s, edges, net, late, front
            )
    result = PlanResult(tables, clock.seconds, len(s.sku), named)
    # The count above is taken before the tables are built; this one is exact.
    rows = sum(result.row_counts().values())
    if rows > params.max_result_rows:
        raise PlanTooLarge("result_rows", params.max_result_rows, rows)
    return result, basis


def front_messages(front: Front, firmed: Messages, checks: Messages | None = None) -> Messages:
    """The plan messages of the phases before the netting, in phase order:
    input checks (``checks`` in place of all of them, where given), SKU
    settings, cycles, and ``firmed`` (the firmed orders')."""
    first = front.validated.messages if checks is None else checks
    return Messages.concat([first, front.graph.messages, front.levels.messages, firmed])


def _own_checks(front: Front) -> Messages:
    """The input checks' messages of the tables that name items only."""
    by_table = front.validated.table_messages
    return Messages.concat(
        by_table[n] for n in CHECK_ORDER if n in by_table and n not in SHARED_TABLES
    )


def _check_finite(tables: dict[str, ResultTable]) -> None:
    """The engine emits no infinite value: a plan that holds one fails.

    Dependent requirements are checked as they are made (:mod:`.netting`);
    this is the last guard, over every float column (NaN stands for NULL).
    """
    for name, table in tables.items():
        for col, values in table.items():
            if not isinstance(values, np.ndarray) or values.dtype.kind != "f":
                continue
            if np.isinf(values).any():
                raise InvalidPlanInput(
                    f"the plan's {name}.{col} would hold a number past the largest one; "
                    "check the quantities of the data set"
                )


def check(data: TableMap, params: PlanParams) -> Table:
    """The plan messages that need no netting, as a run of ``data`` writes
    them: §5.9 input checks, refill warehouses, cycles, and the firmed
    orders' (``NO_BOM`` of a firmed production order, ``NO_REFILL_WAREHOUSE``
    of a firmed transfer with none), read with the requirements. Only the
    planned orders' ``NO_BOM`` is absent: it needs the netting's orders.
    """
    clock = Clock(None)
    front = plan_front(data, params, clock)
    m, s, lv = front.index.masters, front.graph.settings, front.levels
    given = requirements_and_receipts(
        front.validated.tables,
        front.index.rows,
        m,
        s,
        lv,
        front.firmed,
        OrderRefs(m, s),
        plan_day(params.plan_date),
    )
    return front_messages(front, given.messages).table()


def input_checks(data: TableMap) -> Table:
    """The plan messages of the input checks of §5.9 alone (a row naming an
    unknown item, a negative quantity, a duplicate key, ...), as a run of
    ``data`` reports them first, whatever its plan date: what an upload's
    answer says of the data set it leaves."""
    return validate(data).messages.table()


def input_row_count(data: TableMap) -> int:
    """Total rows of the input tables, for reports."""
    return sum(table_length(t) for t in data.values())


def warm_up() -> float:
    """Plan a tiny data set once, so that the compiled kernels are loaded.

    numba compiles (or loads from its on-disk cache) on the first call; a
    server does that at start-up instead of in a tenant's first run.
    Returns the seconds it took.
    """
    from masterplan.contract.rows import from_rows
    from masterplan.contract.tables import INPUT_TABLES

    rows: dict[str, list[dict[str, object]]] = {
        "warehouses": [{"warehouse_id": "W", "site_id": "S"}],
        "coverage_groups": [{"group_id": "G", "coverage_code": "period"}],
        "items": [{"item_id": "A", "coverage_group_id": "G", "lead_time_days": 1}],
        "sales_lines": [
            {
                "order_id": "S",
                "line_no": 1,
                "item_id": "A",
                "warehouse_id": "W",
                "qty": 1,
                "requested_date": "2000-01-05",
            }
        ],
    }
    start = time.perf_counter()
    data = {name: from_rows(spec, rows.get(name, [])) for name, spec in INPUT_TABLES.items()}
    plan(data, PlanParams(dt.date(2000, 1, 3)))
    return time.perf_counter() - start
