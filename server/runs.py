"""Running the engine for a RunPlan call: a worker thread, progress, cancellation.

The engine runs in a worker thread so that the RPC thread can stream progress
events while it works and notice a cancelled call at once. Cancellation is
cooperative: the engine calls its progress hook at every phase and netting
level, and the hook raises :class:`server.errors.Cancelled` once the run's
cancel event is set (client cancel, deadline, CancelRun, uninstall,
shutdown). A failed or cancelled run never replaces the previous results.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from masterplan.contract.columns import TableMap
from masterplan.server.engine import PlanParams, PlanResult, plan
from masterplan.server.errors import Cancelled

__all__ = ["Progress", "run_engine"]


@dataclass(frozen=True, slots=True)
class Progress:
    phase: str
    fraction: float


_DONE = object()


def run_engine(
    data: TableMap, params: PlanParams, cancel: threading.Event
) -> Iterator[Progress | PlanResult]:
    """Run :func:`server.engine.plan` in a thread; yield progress, then the result.

    Exceptions of the engine are re-raised in the caller's thread.
    """
    events: queue.Queue[object] = queue.Queue()

    def hook(phase: str, fraction: float) -> None:
        if cancel.is_set():
            raise Cancelled("the run was cancelled")
        events.put(Progress(phase, fraction))

    def work() -> None:
        try:
            events.put(plan(data, params, hook))
        except BaseException as exc:  # handed to the caller's thread
            events.put(exc)
        finally:
            events.put(_DONE)

    thread = threading.Thread(target=work, name="masterplan-engine", daemon=True)
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
                continue
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        # Closed early (the caller went away): stop the engine at its next hook.
        if thread.is_alive():
            cancel.set()
