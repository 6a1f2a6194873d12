"""The planner's views (:mod:`masterplan.contract.views`) to and from their
protobuf messages: one place for both sides, as :mod:`masterplan.codec` is
for the columnar chunks.

Dates travel as ISO text, NULLs as unset ``optional`` fields, a pegging tree
as the flat ``PeggingTreeNode`` list (parents first) that GetPegging sends.
"""

from __future__ import annotations

import datetime as dt
from collections import deque

from masterplan.contract.names import split_run_name
from masterplan.contract.views import (
    ActionMessageRow,
    DelayMessageRow,
    DelayPath,
    DelayStep,
    InventorySeries,
    NetLine,
    NetRequirements,
    PegNode,
    PlanMessageRow,
    PlannedOrderRow,
    PlanReport,
    RunInfo,
)
from masterplan.v1 import planning_pb2 as pb

__all__ = [
    "delay_path_from_proto",
    "delay_path_to_proto",
    "mode_name",
    "net_requirements_from_proto",
    "net_requirements_to_proto",
    "peg_tree_from_nodes",
    "peg_tree_to_nodes",
    "report_from_proto",
    "report_to_proto",
    "run_info_from_proto",
]

_MODES = {pb.RUN_MODE_REGENERATION: "regeneration", pb.RUN_MODE_NET_CHANGE: "net_change"}


def mode_name(mode: int) -> str:
    """A RunMode as the contract names it (``regeneration``, ``net_change``);
    an unset mode is a regeneration, as the server plans it."""
    return _MODES.get(mode, "regeneration")  # type: ignore[call-overload]


def _iso(day: dt.date | None) -> str | None:
    return None if day is None else day.isoformat()


def _day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def _opt_day(msg: object, name: str) -> dt.date | None:
    return _day(getattr(msg, name)) if msg.HasField(name) else None  # type: ignore[attr-defined]


def _opt(msg: object, name: str) -> object | None:
    return getattr(msg, name) if msg.HasField(name) else None  # type: ignore[attr-defined]


def run_info_from_proto(run: pb.PlanRun) -> RunInfo:
    """A PlanRun resource as the views' :class:`RunInfo`."""
    _tenant, plan_id, _run = split_run_name(run.name)
    counts = dict(run.row_counts)

    def when(ts: object) -> dt.datetime | None:
        if not ts.seconds and not ts.nanos:  # type: ignore[attr-defined]
            return None
        stamp: dt.datetime = ts.ToDatetime(dt.UTC)  # type: ignore[attr-defined]
        return stamp

    return RunInfo(
        plan_id=plan_id,
        run_id=run.run_id,
        mode=mode_name(run.mode),
        base_run_id=run.base_run_id or None,
        plan_date=_day(run.plan_date),
        started_at=when(run.create_time),
        finished_at=when(run.end_time),
        planned_order_count=int(counts.get("planned_orders", 0)),
        pegging_count=int(counts.get("pegging", 0)),
        action_message_count=int(counts.get("action_messages", 0)),
        delay_message_count=int(counts.get("delay_messages", 0)),
        plan_message_count=int(counts.get("plan_messages", 0)),
        rows_added=run.rows_added,
        rows_removed=run.rows_removed,
    )


# -- rows ---------------------------------------------------------------------


def _order_to(o: PlannedOrderRow) -> pb.PlannedOrderRow:
    return pb.PlannedOrderRow(
        planned_order_id=o.planned_order_id,
        item_id=o.item_id,
        warehouse_id=o.warehouse_id,
        order_type=o.order_type,
        qty=o.qty,
        order_date=o.order_date.isoformat(),
        due_date=o.due_date.isoformat(),
        requirement_date=o.requirement_date.isoformat(),
        from_warehouse_id=o.from_warehouse_id,
        vendor_id=o.vendor_id,
        bom_id=o.bom_id,
        firmed=o.firmed,
    )


def _order_from(m: pb.PlannedOrderRow) -> PlannedOrderRow:
    return PlannedOrderRow(
        m.planned_order_id,
        m.item_id,
        m.warehouse_id,
        m.order_type,
        m.qty,
        _day(m.order_date),
        _day(m.due_date),
        _day(m.requirement_date),
        m.from_warehouse_id if m.HasField("from_warehouse_id") else None,
        m.vendor_id if m.HasField("vendor_id") else None,
        m.bom_id if m.HasField("bom_id") else None,
        m.firmed,
    )


def _action_to(a: ActionMessageRow) -> pb.ActionMessageRow:
    return pb.ActionMessageRow(
        supply_kind=a.supply_kind,
        supply_ref=a.supply_ref,
        item_id=a.item_id,
        warehouse_id=a.warehouse_id,
        action=a.action,
        receipt_date=a.receipt_date.isoformat(),
        receipt_qty=a.receipt_qty,
        suggested_date=_iso(a.suggested_date),
        suggested_qty=a.suggested_qty,
    )


def _action_from(m: pb.ActionMessageRow) -> ActionMessageRow:
    return ActionMessageRow(
        m.supply_kind,
        m.supply_ref,
        m.item_id,
        m.warehouse_id,
        m.action,
        _day(m.receipt_date),
        m.receipt_qty,
        _opt_day(m, "suggested_date"),
        m.suggested_qty if m.HasField("suggested_qty") else None,
    )


def _delay_to(d: DelayMessageRow) -> pb.DelayMessageRow:
    return pb.DelayMessageRow(
        demand_kind=d.demand_kind,
        demand_ref=d.demand_ref,
        item_id=d.item_id,
        warehouse_id=d.warehouse_id,
        requirement_date=d.requirement_date.isoformat(),
        futures_date=_iso(d.futures_date),
        delay_days=d.delay_days,
    )


def _delay_from(m: pb.DelayMessageRow) -> DelayMessageRow:
    return DelayMessageRow(
        m.demand_kind,
        m.demand_ref,
        m.item_id,
        m.warehouse_id,
        _day(m.requirement_date),
        _opt_day(m, "futures_date"),
        m.delay_days if m.HasField("delay_days") else None,
    )


def _message_to(p: PlanMessageRow) -> pb.PlanMessageRow:
    return pb.PlanMessageRow(
        severity=p.severity,
        code=p.code,
        item_id=p.item_id,
        warehouse_id=p.warehouse_id,
        text=p.text,
    )


def _message_from(m: pb.PlanMessageRow) -> PlanMessageRow:
    return PlanMessageRow(
        m.severity,
        m.code,
        m.item_id if m.HasField("item_id") else None,
        m.warehouse_id if m.HasField("warehouse_id") else None,
        m.text,
    )


# -- views --------------------------------------------------------------------


def net_requirements_to_proto(view: NetRequirements) -> pb.NetRequirements:
    """GetNetRequirements' answer."""
    return pb.NetRequirements(
        item_id=view.item_id,
        warehouse_id=view.warehouse_id,
        lines=[
            pb.NetLine(
                date=line.date.isoformat(),
                receipt=line.side == "receipt",
                kind=line.kind,
                ref=line.ref,
                qty=line.qty,
                projected=line.projected,
            )
            for line in view.lines
        ],
        planned_orders=[_order_to(o) for o in view.planned_orders],
        action_messages=[_action_to(a) for a in view.action_messages],
        delay_messages=[_delay_to(d) for d in view.delay_messages],
        plan_messages=[_message_to(p) for p in view.plan_messages],
    )


def net_requirements_from_proto(msg: pb.NetRequirements, run: RunInfo) -> NetRequirements:
    """The view of GetNetRequirements' answer about ``run``."""
    return NetRequirements(
        item_id=msg.item_id,
        warehouse_id=msg.warehouse_id,
        run=run,
        lines=tuple(
            NetLine(
                _day(line.date),
                "receipt" if line.receipt else "requirement",
                line.kind,
                line.ref,
                line.qty,
                line.projected,
            )
            for line in msg.lines
        ),
        planned_orders=tuple(_order_from(o) for o in msg.planned_orders),
        action_messages=tuple(_action_from(a) for a in msg.action_messages),
        delay_messages=tuple(_delay_from(d) for d in msg.delay_messages),
        plan_messages=tuple(_message_from(p) for p in msg.plan_messages),
    )


def delay_path_to_proto(path: DelayPath) -> pb.DelayPath:
    """ExplainDelay's answer."""
    return pb.DelayPath(
        demand=_delay_to(path.demand),
        steps=[
            pb.DelayStep(
                level=s.level,
                demand_kind=s.demand_kind,
                demand_ref=s.demand_ref,
                item_id=s.item_id,
                warehouse_id=s.warehouse_id,
                requirement_date=s.requirement_date.isoformat(),
                supply_kind=s.supply_kind,
                supply_ref=s.supply_ref,
                available_date=_iso(s.available_date),
            )
            for s in path.steps
        ],
        cause=path.cause,
    )


def delay_path_from_proto(msg: pb.DelayPath) -> DelayPath:
    """The view of ExplainDelay's answer."""
    return DelayPath(
        _delay_from(msg.demand),
        tuple(
            DelayStep(
                s.level,
                s.demand_kind,
                s.demand_ref,
                s.item_id,
                s.warehouse_id,
                _day(s.requirement_date),
                s.supply_kind if s.HasField("supply_kind") else None,
                s.supply_ref if s.HasField("supply_ref") else None,
                _opt_day(s, "available_date"),
            )
            for s in msg.steps
        ),
        msg.cause,
    )


def peg_tree_to_nodes(root: PegNode) -> list[pb.PeggingTreeNode]:
    """A pegging tree as GetPegging's flat nodes, breadth first (parents first)."""
    out: list[pb.PeggingTreeNode] = []
    queue: deque[tuple[PegNode, int]] = deque([(root, -1)])
    while queue:
        node, parent = queue.popleft()
        out.append(
            pb.PeggingTreeNode(
                kind=node.kind,
                ref=node.ref,
                item_id=node.item_id,
                warehouse_id=node.warehouse_id,
                date=node.date.isoformat(),
                qty=node.qty,
                parent=parent,
                supply=node.role == "supply",
                due_date=_iso(node.due_date),
            )
        )
        at = len(out) - 1
        queue.extend((child, at) for child in node.children)
    return out


def peg_tree_from_nodes(
    nodes: list[pb.PeggingTreeNode], up: bool = False, max_nodes: int = 2000
) -> PegNode:
    """GetPegging's flat nodes as a nested tree: a node sent once and reached
    again (``same_as``) is repeated with its subtree, up to ``max_nodes``
    nodes in all. Levels count BOM levels: down, a supply's children are one
    lower; ``up``, a demand's."""
    children: list[list[int]] = [[] for _ in nodes]
    for i, n in enumerate(nodes):
        if n.parent >= 0:
            children[n.parent].append(i)
    left = [max_nodes]

    def build(i: int, level: int, seen: frozenset[int]) -> PegNode:
        n = nodes[i]
        left[0] -= 1
        source = n.same_as if n.HasField("same_as") and n.same_as not in seen else i
        below = level + (1 if n.supply != up else 0)
        kids = tuple(
            build(c, below, seen | {source})
            for c in children[source]
            if c not in seen and left[0] > 0
        )
        return PegNode(
            "supply" if n.supply else "demand",
            n.kind,
            n.ref,
            n.item_id,
            n.warehouse_id,
            _day(n.date),
            n.qty,
            level,
            _opt_day(n, "due_date"),
            kids,
        )

    return build(0, 0, frozenset())


def report_to_proto(report: PlanReport, run: pb.PlanRun) -> pb.PlanReport:
    """GetPlanReport's answer (``run``: the report's run as a resource)."""
    return pb.PlanReport(
        run=run,
        delays=[delay_path_to_proto(p) for p in report.delays],
        action_messages=[_action_to(a) for a in report.action_messages],
        plan_messages=[_message_to(p) for p in report.plan_messages],
        worst=peg_tree_to_nodes(report.worst) if report.worst is not None else [],
        charts=[
            pb.InventorySeries(
                item_id=c.item_id,
                warehouse_id=c.warehouse_id,
                dates=[d.isoformat() for d in c.dates],
                projected=list(c.projected),
                safety_stock=c.safety_stock,
                min_qty=c.min_qty,
                max_qty=c.max_qty,
            )
            for c in report.charts
        ],
    )


def report_from_proto(msg: pb.PlanReport) -> PlanReport:
    """The view of GetPlanReport's answer."""
    return PlanReport(
        run=run_info_from_proto(msg.run),
        delays=tuple(delay_path_from_proto(p) for p in msg.delays),
        action_messages=tuple(_action_from(a) for a in msg.action_messages),
        plan_messages=tuple(_message_from(p) for p in msg.plan_messages),
        worst=peg_tree_from_nodes(list(msg.worst)) if msg.worst else None,
        charts=tuple(
            InventorySeries(
                c.item_id,
                c.warehouse_id,
                tuple(_day(d) for d in c.dates),
                tuple(c.projected),
                c.safety_stock if c.HasField("safety_stock") else None,
                c.min_qty if c.HasField("min_qty") else None,
                c.max_qty if c.HasField("max_qty") else None,
            )
            for c in msg.charts
        ),
    )
