"""What the planner views show (SPEC §8): one SKU's net requirements, pegging
trees, why a demand is late, and the plan report.

Plain frozen dataclasses of Python values, so that the connector (reading the
plan written in the SCM database), the client (rendering on a terminal, as
JSON or as HTML) and the tests speak of the same things. Every quantity and
date is the plan's: dates are the dates the plan used (§4, "Every date
written is the date the plan used").
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "ActionMessageRow",
    "DelayMessageRow",
    "DelayPath",
    "DelayStep",
    "InventorySeries",
    "NetLine",
    "NetRequirements",
    "PegNode",
    "PlanMessageRow",
    "PlanReport",
    "PlannedOrderRow",
    "RunInfo",
    "as_json",
]


@dataclass(frozen=True, slots=True)
class RunInfo:
    """The run whose result a plan's rows are (a ``plan_runs`` row).

    ``*_count`` fields are the rows of the whole plan after the run.
    """

    plan_id: str
    run_id: str
    mode: str
    base_run_id: str | None
    plan_date: dt.date
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    planned_order_count: int
    pegging_count: int
    action_message_count: int
    delay_message_count: int
    plan_message_count: int
    rows_added: int
    rows_removed: int


@dataclass(frozen=True, slots=True)
class PlannedOrderRow:
    """A ``planned_orders`` row."""

    planned_order_id: str
    item_id: str
    warehouse_id: str
    order_type: str
    qty: float
    order_date: dt.date
    due_date: dt.date
    requirement_date: dt.date
    from_warehouse_id: str | None
    vendor_id: str | None
    bom_id: str | None
    firmed: bool


@dataclass(frozen=True, slots=True)
class ActionMessageRow:
    """An ``action_messages`` row."""

    supply_kind: str
    supply_ref: str
    item_id: str
    warehouse_id: str
    action: str
    receipt_date: dt.date
    receipt_qty: float
    suggested_date: dt.date | None
    suggested_qty: float | None


@dataclass(frozen=True, slots=True)
class DelayMessageRow:
    """A ``delay_messages`` row: a late end demand (``futures_date`` None:
    never covered)."""

    demand_kind: str
    demand_ref: str
    item_id: str
    warehouse_id: str
    requirement_date: dt.date
    futures_date: dt.date | None
    delay_days: int | None


@dataclass(frozen=True, slots=True)
class PlanMessageRow:
    """A ``plan_messages`` row."""

    severity: str
    code: str
    item_id: str | None
    warehouse_id: str | None
    text: str


@dataclass(frozen=True, slots=True)
class NetLine:
    """One dated line of a SKU's net requirements.

    Attributes:
        date: The requirement's date, or the receipt's netting date (§5.5:
            a planned order's is its requirement date).
        side: ``requirement`` or ``receipt``.
        kind: The §4 kind (``so``, ``fc``, ``pl``, ``po``, ``oh``, ...).
        ref: The §4 ref.
        qty: The quantity the plan netted: a requirement's quantity taken
            from receipts, a receipt's whole quantity.
        projected: Receipts minus requirements of the lines up to and
            including this one (lines in date order, receipts of a date
            before its requirements).
    """

    date: dt.date
    side: Literal["requirement", "receipt"]
    kind: str
    ref: str
    qty: float
    projected: float


@dataclass(frozen=True, slots=True)
class NetRequirements:
    """What ``masterplan show ITEM`` shows: one SKU in the current plan."""

    item_id: str
    warehouse_id: str
    run: RunInfo
    lines: tuple[NetLine, ...]
    planned_orders: tuple[PlannedOrderRow, ...]
    action_messages: tuple[ActionMessageRow, ...]
    delay_messages: tuple[DelayMessageRow, ...]
    plan_messages: tuple[PlanMessageRow, ...]


@dataclass(frozen=True, slots=True)
class PegNode:
    """A node of a pegging tree.

    Down from a demand the nodes alternate: a demand, the supplies it took
    from, the requirements those supplies caused one BOM level (or one
    transfer) lower, their supplies, and so on down to purchased parts and
    on-hand. Up from a supply: the supply, the requirements it served, the
    supplies those requirements were part of one level higher, and so on up
    to end demands.

    Attributes:
        role: ``demand`` or ``supply``.
        kind, ref: The §4 kind and ref.
        item_id, warehouse_id: The SKU.
        date: A demand's requirement date; a supply's netting date.
        qty: The quantity of the pegging row that links this node to its
            parent; for the root, the total of its pegging rows.
        level: BOM levels (and transfers) from the root.
        due_date: For a planned order, its due date (it may be later than
            the date it serves: then it is late); None otherwise.
        children: The nodes below.
    """

    role: Literal["demand", "supply"]
    kind: str
    ref: str
    item_id: str
    warehouse_id: str
    date: dt.date
    qty: float
    level: int
    due_date: dt.date | None = None
    children: tuple[PegNode, ...] = ()


@dataclass(frozen=True, slots=True)
class DelayStep:
    """One step of a delay path: a requirement and the supply that made it late.

    Attributes:
        level: BOM levels (and transfers) below the late demand.
        demand_kind, demand_ref, item_id, warehouse_id: The requirement.
        requirement_date: Its date.
        supply_kind, supply_ref: The latest supply it took from (None when
            it took from nothing: a shortfall).
        available_date: When that supply can be there (a planned order's
            due date; an existing receipt's date); None for a shortfall.
    """

    level: int
    demand_kind: str
    demand_ref: str
    item_id: str
    warehouse_id: str
    requirement_date: dt.date
    supply_kind: str | None
    supply_ref: str | None
    available_date: dt.date | None


@dataclass(frozen=True, slots=True)
class DelayPath:
    """Why a demand is late: the chain of latest supplies down to the cause.

    ``steps[0]`` is the demand itself; each next step is the requirement,
    one level lower, whose lateness made the previous step's supply late.
    ``cause`` says in words what the last step is waiting for.
    """

    demand: DelayMessageRow
    steps: tuple[DelayStep, ...]
    cause: str


@dataclass(frozen=True, slots=True)
class InventorySeries:
    """A SKU's projected quantity over time, for a chart.

    ``dates`` and ``projected`` are the projected quantity after each date's
    lines (one point per date with lines). ``safety_stock``, ``min_qty`` and
    ``max_qty`` are the SKU's, None where it has none.
    """

    item_id: str
    warehouse_id: str
    dates: tuple[dt.date, ...]
    projected: tuple[float, ...]
    safety_stock: float | None
    min_qty: float | None
    max_qty: float | None


@dataclass(frozen=True, slots=True)
class PlanReport:
    """What ``masterplan report`` draws: one plan, as a planner would show it.

    Attributes:
        run: The current run.
        delays: The most delayed demands (longest delay first; never
            covered before any), each with its path.
        action_messages: Every action message of the plan.
        plan_messages: Every plan message.
        worst: The pegging tree of the most delayed demand; None when no
            demand is late.
        charts: Projected inventory of the most critical SKUs.
    """

    run: RunInfo
    delays: tuple[DelayPath, ...]
    action_messages: tuple[ActionMessageRow, ...]
    plan_messages: tuple[PlanMessageRow, ...]
    worst: PegNode | None
    charts: tuple[InventorySeries, ...]


def as_json(view: Any) -> Any:
    """A view as JSON-ready values: dataclasses as dicts, dates as ISO text."""
    if dataclasses.is_dataclass(view) and not isinstance(view, type):
        return {f.name: as_json(getattr(view, f.name)) for f in dataclasses.fields(view)}
    if isinstance(view, tuple | list):
        return [as_json(v) for v in view]
    if isinstance(view, dt.date):  # datetimes too
        return view.isoformat()
    return view
