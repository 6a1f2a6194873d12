"""Running the engine for a RunPlan call: a worker thread, progress, cancellation.

The engine runs in a worker thread so that the RPC thread can stream progress
events while it works and notice a cancelled call at once. Cancellation is
cooperative: the engine calls its progress hook at every phase and netting
level, and the hook raises :class:`server.errors.Cancelled` once the run's
cancel event is set (client cancel, deadline, CancelRun, uninstall,
shutdown). A failed or cancelled run never replaces the previous results.

The worker thread runs in a copy of the caller's context, so that whatever
the engine logs names the run as the RPC thread's lines do (:mod:`server.logs`).
"""

from __future__ import annotations

import contextvars
import dataclasses
import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np

from masterplan.contract.columns import TableMap
from masterplan.server.engine import NetChange, PlanParams, PlanTooLarge, regeneration
from masterplan.server.engine.levelsplit import LevelSplit
from masterplan.server.engine.partition import split
from masterplan.server.engine.partitioned import INLINE_SHARE, balanced, regenerate_cut
from masterplan.server.errors import Cancelled
from masterplan.server.logs import fields
from masterplan.server.memory import warm_heap
from masterplan.server.store import RunRecord
from masterplan.tenancy.errors import QuotaExceeded

__all__ = [
    "ENGINE_SECONDS",
    "PLANNED_ORDERS",
    "RESULT_ROWS",
    "Compute",
    "PartitionedJob",
    "Progress",
    "cancel_when_ended",
    "regenerate_job",
    "run_engine",
]

#: Quota names of a run's limits, as :class:`QuotaExceeded` reports them
#: (the first two are the engine's :class:`PlanTooLarge` resources).
PLANNED_ORDERS = "planned_orders"
RESULT_ROWS = "result_rows"
ENGINE_SECONDS = "engine_seconds"


log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Progress:
    """One progress event of the engine, as the RunPlan stream reports it.

    Attributes:
        phase: Engine phase, e.g. ``validate``, ``levels``, ``netting``.
        fraction: Share of the run done, 0 to 1.
    """

    phase: str
    fraction: float


_DONE = object()

#: Seconds before the server's deadline of a call within which its end counts
#: as the deadline's. The client's deadline passes first (the server's runs
#: from when the call arrived), and the client then cancels the call: the
#: server sees a cancel a few milliseconds before its own deadline.
DEADLINE_SLACK = 1.0


def cancel_when_ended(
    rec: RunRecord, time_remaining: Callable[[], float | None], stopping: threading.Event
) -> Callable[[], None]:
    """The callback that cancels ``rec`` when its call ends, naming who ended it.

    gRPC calls it when the call ends for any reason; a run still going then
    is cancelled when the server stops (``stopping`` is set) or the call's
    deadline passed (less than :data:`DEADLINE_SLACK` remains). A call that
    ends otherwise was dropped or closed by its client, which gRPC does not
    tell apart: a connection lost while the engine works must not lose the
    run (SPEC §3), so the run goes on and keeps its results for
    ReadRunResults; a client that gives the run up says so with CancelRun.

    Args:
        rec: The run.
        time_remaining: The call's ``ServicerContext.time_remaining``.
        stopping: Set when the server begins to stop.
    """

    def ended() -> None:
        if stopping.is_set():
            rec.request_cancel("shutdown")
            return
        remaining = time_remaining()
        if remaining is not None and remaining < DEADLINE_SLACK:
            rec.request_cancel("deadline")

    return ended


#: An engine call: data, parameters and progress hook in, a result out.
Compute = Callable[[TableMap, PlanParams, Callable[[str, float], None]], object]


def regenerate_job(
    data: TableMap, params: PlanParams, hook: Callable[[str, float], None]
) -> NetChange:
    """The default engine call: a regeneration, with the basis a later net change reuses."""
    return regeneration(data, params, hook)


@dataclass(frozen=True, slots=True)
class PartitionedJob:
    """A regeneration over up to ``partitions`` partitions on ``executor``
    (SPEC §2), where the data set cuts into balanced ones; else the whole
    data set's regeneration, each netting level's SKUs walked in runs on
    ``executor`` (:mod:`~masterplan.server.engine.levelsplit`). Either keeps
    the basis a later net change reuses (for a plan made over partitions,
    what the first net change makes it from:
    :mod:`~masterplan.server.engine.partbasis`).
    """

    executor: Executor
    partitions: int

    @property
    def level_split(self) -> LevelSplit:
        """Walks netting levels in runs on the executor (net changes use it too)."""
        return LevelSplit(self.executor, self.partitions)

    def __call__(
        self, data: TableMap, params: PlanParams, hook: Callable[[str, float], None]
    ) -> NetChange:
        # The cut, then the choice plan_partitioned makes, here so that an
        # inline run keeps its basis.
        start = time.perf_counter()
        cut = split(data, self.partitions, INLINE_SHARE)
        split_seconds = time.perf_counter() - start
        if not balanced(cut):
            change = regeneration(data, params, hook, split=self.level_split)
            change.result.phase_seconds["split"] = split_seconds
            return change
        result, basis = regenerate_cut(cut, data, params, self.executor, hook)
        result.phase_seconds["split"] = split_seconds
        return NetChange(result, basis, result.sku_count, partitions=len(cut.parts))


def run_engine(
    data: TableMap,
    params: PlanParams,
    cancel: threading.Event,
    max_seconds: float | None = None,
    compute: Compute = regenerate_job,
) -> Iterator[Progress | NetChange]:
    """Run the engine in a thread; yield progress, then the result.

    Exceptions of the engine are re-raised in the caller's thread.

    Args:
        data: The plan's data set (§4 input tables).
        params: Plan date and default group.
        cancel: Set by anyone who wants the run to stop; the engine stops at
            its next progress call, or at once when this generator is closed
            or raises.
        max_seconds: Wall-clock seconds the engine may plan (the tenant's
            ``max_engine_seconds``); past them the run fails with
            :class:`QuotaExceeded` at once, and the engine stops with it.
        compute: The engine call (:func:`regenerate_job`, or a net change of
            :mod:`server.netchange`).

    Yields:
        :class:`Progress` events, then the one :class:`NetChange`.
    """
    # Progress, the NetChange, the engine's exception, then _DONE.
    events: queue.Queue[object] = queue.Queue()
    # Read by the compiled walk, which calls no hook: set, it stops the run
    # within one step instead of at the end of a long netting level.
    stop = np.zeros(1, dtype=np.int8)
    params = dataclasses.replace(params, stop=stop)

    started = time.monotonic()

    def overtime() -> QuotaExceeded | None:
        if max_seconds is None:
            return None
        spent = time.monotonic() - started
        if spent <= max_seconds:
            return None
        return QuotaExceeded(ENGINE_SECONDS, int(max_seconds), math.ceil(spent))

    def hook(phase: str, fraction: float) -> None:
        if cancel.is_set():
            raise Cancelled("the run was cancelled")
        over = overtime()
        if over is not None:
            raise over
        events.put(Progress(phase, fraction))

    def work() -> None:
        try:
            with warm_heap(data):
                events.put(compute(data, params, hook))
        except BaseException as exc:  # handed to the caller's thread
            events.put(exc)
        finally:
            events.put(_DONE)

    # A new thread starts with an empty context: hand it the run's.
    context = contextvars.copy_context()
    thread = threading.Thread(
        target=context.run, args=(work,), name="masterplan-engine", daemon=True
    )
    thread.start()
    try:
        while True:
            try:
                item = events.get(timeout=0.1)
            except queue.Empty:
                if cancel.is_set():
                    # The engine stops at its next progress call; do not wait
                    # for it here, the caller is gone.
                    raise Cancelled("the run was cancelled") from None
                over = overtime()
                if over is not None:
                    # The caller hears now; the ``finally`` below stops the
                    # engine.
                    raise over from None
                continue
            if item is _DONE:
                return
            if isinstance(item, PlanTooLarge):
                raise QuotaExceeded(item.resource, item.limit, item.requested) from item
            if isinstance(item, BaseException):
                raise item
            if isinstance(item, Progress):
                log.debug(
                    "run progress", extra=fields(phase=item.phase, fraction=round(item.fraction, 3))
                )
                yield item
            elif isinstance(item, NetChange):
                yield item
    finally:
        # Closed early (the caller went away, a quota was hit): stop the
        # engine at once, inside the walk too.
        if thread.is_alive():
            cancel.set()
            stop[0] = 1
