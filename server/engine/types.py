"""Input, parameter and result types of the planning engine."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from masterplan.contract.coded import Coded, as_array
from masterplan.contract.columns import Table, TableMap

__all__ = ["InvalidPlanInput", "PlanParams", "PlanResult", "ResultTable", "Table", "TableMap"]

#: A plan output table: text columns may be dictionary-encoded (:class:`Coded`).
ResultTable = dict[str, np.ndarray | Coded]


class InvalidPlanInput(ValueError):
    """The run cannot produce a meaningful plan (SPEC §5.9: the run fails)."""


@dataclass(frozen=True, slots=True)
class PlanParams:
    """Parameters of one regeneration run.

    Attributes:
        plan_date: The run's ``T0`` (SPEC §5.1).
        default_group: Coverage group of SKUs that name none (SPEC §5.2).
    """

    plan_date: dt.date
    default_group: str | None = None


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
    """

    tables: dict[str, ResultTable]
    phase_seconds: dict[str, float] = field(default_factory=dict)
    sku_count: int = 0

    def row_counts(self) -> dict[str, int]:
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
