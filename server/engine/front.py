"""The phases before the netting: input checks, SKU index, SKU graph, levels.

:func:`plan_front` runs them for a regeneration, and for a net change again
on the whole data set (its plan messages and SKU graph are the whole plan's).
A net change hands it the previous run's front and the tables that have not
changed since: with the master data unchanged, the checks of an unchanged
table, the masters' index and, when the SKUs the rows name and what draws
edges between them are unchanged too, the SKU graph and its levels are the
previous run's.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from masterplan.server.engine.graph import Levels, SkuGraph, close_skus, levels
from masterplan.server.engine.orders import FirmedOrders, firmed_orders
from masterplan.server.engine.rowdiff import MASTER_TABLES
from masterplan.server.engine.skus import SkuIndex, check_default_group, index_skus
from masterplan.server.engine.types import PlanParams, TableMap
from masterplan.server.engine.validate import ValidatedData, validate

__all__ = ["Front", "Phases", "plan_front"]

#: Tables whose rows draw SKU graph edges or settings besides the masters.
_GRAPH_TABLES = ("item_coverage", "firmed_planned_orders")


class Phases(Protocol):
    """Times the phases of a run (:class:`~masterplan.server.engine.plan.Clock`)."""

    def phase(self, name: str) -> AbstractContextManager[None]: ...


@dataclass(frozen=True, slots=True)
class Front:
    """The phases before the netting that ``check`` shares with ``plan``."""

    validated: ValidatedData
    index: SkuIndex
    firmed: FirmedOrders
    graph: SkuGraph
    levels: Levels


def plan_front(
    data: TableMap,
    params: PlanParams,
    clock: Phases,
    previous: Front | None = None,
    unchanged: Collection[str] = (),
    sources: Mapping[str, np.ndarray] | None = None,
) -> Front:
    """Check, index and level the data set (§5.2, §5.3, §5.9).

    ``previous`` and ``unchanged``: the front of an earlier version of the
    data with the same default group, and the tables that have not changed
    since; what depends on those only is taken from ``previous``. ``sources``:
    which rows of changed tables are rows of that version (see
    :func:`~masterplan.server.engine.validate.validate`).
    """
    same = set(unchanged) if previous is not None else set()
    reuse = previous if previous is not None and set(MASTER_TABLES) <= same else None
    with clock.phase("validate"):
        check_default_group(data, params.default_group)
        validated = validate(data, reuse.validated if reuse else None, same, sources)
    with clock.phase("index"):
        # The masters' index holds item_coverage too (settings by SKU).
        masters_same = reuse is not None and "item_coverage" in same
        index = index_skus(validated, reuse.index if reuse and masters_same else None, same)
        firmed = firmed_orders(validated.tables, index)
        if (
            reuse is not None
            and set(_GRAPH_TABLES) <= same
            and np.array_equal(index.named, reuse.index.named)
        ):
            graph, lv = reuse.graph, reuse.levels
        else:
            graph, lv = close_skus(index, firmed, params.default_group), None
    with clock.phase("levels"):
        lv = lv if lv is not None else levels(graph, index.masters)
    return Front(validated, index, firmed, graph, lv)
