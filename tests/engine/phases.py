"""Small hand-made data sets run phase by phase, for the engine's unit tests.

A test writes its input as row dicts (the §4 tables, columns not given are
NULL), runs the phases before the one it tests with :func:`run`, calls that
phase's function itself and asserts on what it returns. All dates are
relative to ``T0 = 2024-03-04``, a Monday.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np

from masterplan.contract.rows import from_rows
from masterplan.contract.tables import INPUT_TABLES
from masterplan.server.engine.calendar import plan_day
from masterplan.server.engine.delays import Delays, compute_delays
from masterplan.server.engine.graph import Levels, SkuGraph, close_skus, levels
from masterplan.server.engine.netting import Netting, net_levels
from masterplan.server.engine.orderrefs import OrderRefs
from masterplan.server.engine.orders import FirmedOrders, firmed_orders
from masterplan.server.engine.requirements import (
    RequirementsAndReceipts,
    requirements_and_receipts,
)
from masterplan.server.engine.skus import Masters, SkuIndex, SkuSettings, index_skus
from masterplan.server.engine.types import TableMap
from masterplan.server.engine.validate import ValidatedData, validate

Row = dict[str, Any]
Input = dict[str, list[Row]]

PLAN_DATE = dt.date(2024, 3, 4)
T0 = plan_day(PLAN_DATE)

#: One warehouse working Monday to Friday.
WAREHOUSE: Input = {
    "warehouses": [{"warehouse_id": "W1", "site_id": "S", "calendar_id": "MF"}],
    "calendars": [{"calendar_id": "MF", "working_weekdays": "1111100"}],
}


def day(offset: int) -> int:
    """``T0 + offset`` in the engine's unit (days since 1970-01-01)."""
    return T0 + offset


def iso(offset: int) -> str:
    """``T0 + offset`` as an ISO date, for input rows."""
    return (PLAN_DATE + dt.timedelta(days=offset)).isoformat()


def tables(inp: Input) -> TableMap:
    """Every §4 input table from row dicts; tables not given are empty."""
    return {name: from_rows(spec, inp.get(name, [])) for name, spec in INPUT_TABLES.items()}


@dataclass
class Run:
    """The results of the phases, in the order ``plan`` runs them."""

    validated: ValidatedData
    index: SkuIndex
    firmed: FirmedOrders
    graph: SkuGraph
    levels: Levels
    refs: OrderRefs
    given: RequirementsAndReceipts
    net: Netting
    late: Delays

    @property
    def masters(self) -> Masters:
        return self.index.masters

    @property
    def settings(self) -> SkuSettings:
        return self.graph.settings

    def sidx(self, item: str, warehouse: str = "W1") -> int:
        """The position of SKU ``item@warehouse``."""
        m = self.masters
        number = m.item_pos[item] * m.n_wh + m.wh_pos[warehouse]
        return int(np.flatnonzero(self.settings.sku == number)[0])


def run(inp: Input, default_group: str | None = None) -> Run:
    """Run every phase up to the delays on ``inp`` (with :data:`WAREHOUSE` unless given)."""
    data = tables({**WAREHOUSE, **inp})
    validated = validate(data)
    index = index_skus(validated)
    firmed = firmed_orders(validated.tables, index)
    graph = close_skus(index, firmed, default_group)
    lv = levels(graph, index.masters)
    refs = OrderRefs(index.masters, graph.settings)
    given = requirements_and_receipts(
        validated.tables, index.rows, index.masters, graph.settings, lv, firmed, refs, T0
    )
    net = net_levels(given, index.masters, graph.settings, lv, refs, T0)
    late = compute_delays(net, graph.settings, lv)
    return Run(validated, index, firmed, graph, lv, refs, given, net, late)


def sales(item: str, qty: float, offset: int, line: int = 1, **extra: Any) -> Row:
    """A sales line of ``qty`` of ``item`` at W1, requested ``T0 + offset``."""
    return {
        "order_id": f"S-{item}-{line}",
        "line_no": line,
        "item_id": item,
        "warehouse_id": "W1",
        "qty": qty,
        "requested_date": iso(offset),
        **extra,
    }
