"""Input, parameter and result types of the planning engine."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from masterplan.contract.coded import Coded, as_array
from masterplan.contract.columns import Table, TableMap

__all__ = [
    "InvalidPlanInput",
    "PlanParams",
    "PlanResult",
    "PlanTooLarge",
    "ResultTable",
    "RunStopped",
    "Table",
    "TableMap",
]

#: A plan output table: text columns may be dictionary-encoded (:class:`Coded`).
ResultTable = dict[str, np.ndarray | Coded]


class InvalidPlanInput(ValueError):
    """The run cannot produce a meaningful plan (SPEC §5.9: the run fails)."""


class PlanTooLarge(Exception):
    """The plan would exceed a size limit of :class:`PlanParams`; raised before
    the memory for it is taken.

    Attributes:
        resource: The limit's name: ``"planned_orders"`` or ``"result_rows"``.
        limit: The limit.
        requested: What the plan would have needed (at least).
    """

    def __init__(self, resource: str, limit: int, requested: int) -> None:
        super().__init__(f"the plan exceeds {resource}: at least {requested}, limit {limit}")
        self.resource = resource
        self.limit = limit
        self.requested = requested


class RunStopped(Exception):
    """The caller set :attr:`PlanParams.stop`; the run's partial work is dropped."""


#: Limits the engine applies when the caller gives none: a plan's size always
#: has a bound, so that no input can make the order split run without end.
DEFAULT_MAX_PLANNED_ORDERS = 1 << 40
DEFAULT_MAX_RESULT_ROWS = 1 << 42


@dataclass(frozen=True, slots=True)
class PlanParams:
    """Parameters of one regeneration run.

    Attributes:
        plan_date: The run's ``T0`` (SPEC §5.1).
        default_group: Coverage group of SKUs that name none (SPEC §5.2).
        max_planned_orders: Planned orders the run may create, firmed ones
            not counted; more raise :class:`PlanTooLarge` before they are made.
        max_result_rows: Rows of the five result tables together; more raise
            :class:`PlanTooLarge`.
        stop: An int8 array of one element that another thread sets to
            non-zero to stop the run at once, also inside the compiled walk
            (which holds no GIL and calls no Python hook); the run then raises
            :class:`RunStopped`.
        delays_of: Requirement refs whose delays the run reports beside its
            tables (:attr:`PlanResult.named_delays`), whatever their kind:
            a regeneration computes every requirement's futures date (§5.7)
            and writes those of ``so``, ``fc``, ``tri`` and ``ss`` only, as
            delay messages. A simulation that promises a ``prdl`` or ``pl``
            demand asks for it.
    """

    plan_date: dt.date
    default_group: str | None = None
    max_planned_orders: int = DEFAULT_MAX_PLANNED_ORDERS
    max_result_rows: int = DEFAULT_MAX_RESULT_ROWS
    stop: np.ndarray | None = field(default=None, compare=False)
    delays_of: frozenset[str] = frozenset()


@dataclass(slots=True)
class PlanResult:
    """What a run produces.

    Attributes:
        tables: The five plan output tables (``planned_orders``, ``pegging``,
            ``action_messages``, ``delay_messages``, ``plan_messages``) as
            struct-of-arrays, without ``run_id``; text columns may be
            :class:`~masterplan.contract.coded.Coded` (see :meth:`arrays`).
        phase_seconds: Wall time per engine phase, for reports and profiling.
        sku_count: Number of SKUs planned.
        named_delays: For a run asked for :attr:`PlanParams.delays_of`, the
            ``delay_messages`` columns of those requirements that are
            delayed and of a kind without delay messages; None otherwise.
    """

    tables: Mapping[str, ResultTable]
    phase_seconds: dict[str, float] = field(default_factory=dict)
    sku_count: int = 0
    named_delays: ResultTable | None = None

    def row_counts(self) -> dict[str, int]:
        # A net change's layered tables count their rows without joining them.
        length = getattr(self.tables, "length", None)
        if length is not None:
            return {name: length(name) for name in self.tables}
        return {name: _length(t) for name, t in self.tables.items()}

    def arrays(self) -> dict[str, Table]:
        """The tables with every column a plain numpy array (coded text decoded)."""
        return {
            name: {col: as_array(v) for col, v in table.items()}
            for name, table in self.tables.items()
        }


def _length(table: ResultTable) -> int:
    for col in table.values():
        return len(col)
    return 0
