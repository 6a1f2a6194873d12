"""The planner's views computed from a plan's result rows (SPEC §3, §8).

One implementation for both places that hold a plan: the connector reads the
rows from the SCM database, the server from a kept run's result tables. Each
gives them through :class:`PlanRows`; the functions here turn them into the
views of :mod:`masterplan.contract.views`. Plain Python over the rows one
view needs, never over a whole plan.

What the result tables hold, and so what the views can say:

- A requirement's quantity is what it took from receipts (its pegging rows).
  Every shortfall gets planned orders except on a ``manual`` SKU, whose short
  requirement shows what it took and a delay message "never covered".
- A receipt's whole quantity comes from its input row where the holder still
  has it (on-hand, purchase and production orders, transfer receipts, firmed
  planned orders), and from ``planned_orders`` for the run's orders; a
  receipt whose row is gone shows what was taken from it.
- Pegging links a supply to the requirements it caused one level lower by
  their refs: planned order ``PL:{id}`` causes ``PL:{id}/{line}`` (a BOM
  line) or ``PL:{id}`` (a transfer's issue); production order ``PRD:{o}``
  causes ``PRDL:{o}/{line}``; transfer receipt ``TRR:{o}/{l}`` is issued as
  ``TRI:{o}/{l}``.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

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

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "END_KINDS",
    "MAX_NODES",
    "RECEIPT_SOURCES",
    "NotInPlan",
    "PegRow",
    "PlanRows",
    "cause_candidates",
    "caused_refs",
    "delay_path",
    "is_caused_by",
    "net_requirements",
    "pegging_tree",
    "plan_report",
    "ref_part",
]

#: BOM levels a pegging tree goes down (or up) unless told otherwise.
DEFAULT_MAX_DEPTH = 20
#: Nodes a pegging tree holds at most; a larger tree is cut (its last nodes
#: keep no children) so that a view of a huge plan stays readable.
MAX_NODES = 2000
#: Kinds of end demands: where an upward pegging tree stops.
END_KINDS = ("so", "fc", "ss", "oh")

#: Walk order of requirement kinds on one date (§5.5).
_REQ_ORDER = {"oh": 0, "ss": 1, "so": 2, "prdl": 3, "tri": 4, "pl": 5, "fc": 6}
#: Order of receipt classes on one date (§5.5).
_REC_ORDER = {"oh": 0, "po": 1, "prd": 1, "trr": 1, "pl": 2}
#: "Never available" in the delay arithmetic (a shortfall below).
_NEVER = dt.date.max


#: The existing receipts of the inputs (SPEC §4 refs), for a receipt's whole
#: quantity: (table, ref prefix, id columns, warehouse column, date column).
#: On-hand, summed per SKU, is the other receipt.
RECEIPT_SOURCES = (
    ("purchase_lines", "PO", ("order_id", "line_no"), "warehouse_id", "delivery_date"),
    ("production_orders", "PRD", ("order_id",), "warehouse_id", "end_date"),
    ("transfer_lines", "TRR", ("order_id", "line_no"), "to_warehouse_id", "receive_date"),
    ("firmed_planned_orders", "PL", ("planned_order_id",), "warehouse_id", "due_date"),
)


def ref_part(column: str, value: Any) -> str:
    """One id of a ref as SPEC §4 prints it: a line number as an integer
    (``1``, not ``1.0``), anything else as text."""
    if column != "line_no":
        return str(value)
    number = float(value)
    return str(int(number)) if number.is_integer() else repr(number)


class NotInPlan(LookupError):
    """The item, SKU or ref asked for is not in the plan."""


@dataclass(frozen=True, slots=True)
class PegRow:
    """A ``pegging`` row: one take of a requirement from a receipt."""

    item_id: str
    warehouse_id: str
    supply_kind: str
    supply_ref: str
    supply_date: dt.date
    demand_kind: str
    demand_ref: str
    demand_date: dt.date
    qty: float


class PlanRows(Protocol):
    """The rows of one plan that the views read, however they are held.

    Lists come in a stable order (pegging rows by supply date and ref, then
    demand date and ref). ``item_id``/``warehouse_id`` None means any SKU.
    """

    @property
    def plan_date(self) -> dt.date:
        """The plan's ``T0``."""
        ...

    def takes(
        self, demand_ref: str, item_id: str | None = None, warehouse_id: str | None = None
    ) -> list[PegRow]:
        """The pegging rows of a requirement."""
        ...

    def served(
        self, supply_ref: str, item_id: str | None = None, warehouse_id: str | None = None
    ) -> list[PegRow]:
        """The pegging rows of a supply."""
        ...

    def demands_named(self, refs: Sequence[str], prefix: str | None) -> list[PegRow]:
        """Pegging rows whose demand ref is one of ``refs`` or starts with ``prefix``."""
        ...

    def supplies_named(self, refs: Sequence[str]) -> list[PegRow]:
        """Pegging rows whose supply ref is one of ``refs``."""
        ...

    def sku_pegging(self, item_id: str, warehouse_id: str) -> list[PegRow]:
        """The pegging rows of one SKU."""
        ...

    def planned_orders(self, item_id: str, warehouse_id: str) -> list[PlannedOrderRow]:
        """The run's planned orders of one SKU."""
        ...

    def order(self, planned_order_id: str) -> PlannedOrderRow | None:
        """A planned order of the run, else a firmed planned order, by id."""
        ...

    def action_messages(
        self, item_id: str | None = None, warehouse_id: str | None = None
    ) -> list[ActionMessageRow]:
        """Action messages (of one SKU)."""
        ...

    def delay_messages(
        self, item_id: str | None = None, warehouse_id: str | None = None
    ) -> list[DelayMessageRow]:
        """Delay messages (of one SKU)."""
        ...

    def delay(self, demand_ref: str) -> DelayMessageRow | None:
        """The delay message of a demand, if it is late."""
        ...

    def plan_messages(
        self, item_id: str | None = None, warehouse_id: str | None = None
    ) -> list[PlanMessageRow]:
        """Plan messages (of one item: its SKU's and those naming no warehouse)."""
        ...

    def existing_receipts(
        self, item_id: str, warehouse_id: str
    ) -> dict[str, tuple[dt.date, float]]:
        """Each existing receipt of the SKU in the inputs, by ref: effective
        date and whole quantity (only rows with a positive quantity)."""
        ...

    def coverage(
        self, item_id: str, warehouse_id: str
    ) -> tuple[float | None, float | None, float | None]:
        """The SKU's ``item_coverage`` safety stock, min and max (None: none)."""
        ...


# -- net requirements ---------------------------------------------------------


def _line_key(line: NetLine) -> tuple[Any, ...]:
    if line.side == "receipt":
        return (line.date, 0, _REC_ORDER.get(line.kind, 3), line.ref)
    return (line.date, 1, _REQ_ORDER.get(line.kind, 7), line.ref)


def _with_projection(lines: Iterable[NetLine]) -> tuple[NetLine, ...]:
    """The lines in date order (receipts of a date first), each with the
    projected quantity after it."""
    out = []
    level = 0.0
    for line in sorted(lines, key=_line_key):
        level += line.qty if line.side == "receipt" else -line.qty
        out.append(
            NetLine(line.date, line.side, line.kind, line.ref, line.qty, round(level, 9) + 0.0)
        )
    return tuple(out)


def net_requirements(
    rows: PlanRows, run: RunInfo, item_id: str, warehouse_id: str
) -> NetRequirements:
    """One SKU of the plan: requirements and receipts with the projected
    quantity after each, planned orders and messages.

    Raises:
        NotInPlan: The plan has nothing for this SKU.
    """
    pegging = rows.sku_pegging(item_id, warehouse_id)
    planned = rows.planned_orders(item_id, warehouse_id)
    actions = rows.action_messages(item_id, warehouse_id)
    delays = rows.delay_messages(item_id, warehouse_id)
    if not (pegging or planned or actions or delays):
        raise NotInPlan(f"nothing for item {item_id!r} at warehouse {warehouse_id!r} in the plan")
    taken: dict[tuple[str, str, dt.date], float] = defaultdict(float)
    given: dict[tuple[str, str], tuple[dt.date, float]] = {}
    for r in pegging:
        taken[(r.demand_kind, r.demand_ref, r.demand_date)] += r.qty
        day, qty = given.get((r.supply_kind, r.supply_ref), (r.supply_date, 0.0))
        given[(r.supply_kind, r.supply_ref)] = (day, qty + r.qty)
    lines = [NetLine(d, "requirement", k, ref, q, 0.0) for (k, ref, d), q in taken.items()]
    for o in planned:
        ref = f"PL:{o.planned_order_id}"
        lines.append(NetLine(o.requirement_date, "receipt", "pl", ref, o.qty, 0.0))
        given.pop(("pl", ref), None)
    for ref, (day, qty) in rows.existing_receipts(item_id, warehouse_id).items():
        kind = ref.split(":", 1)[0].lower()
        day_taken, took = given.pop((kind, ref), (day, 0.0))
        lines.append(NetLine(day_taken, "receipt", kind, ref, max(qty, took), 0.0))
    for (kind, ref), (day, took) in given.items():  # its input row is gone
        lines.append(NetLine(day, "receipt", kind, ref, took, 0.0))
    return NetRequirements(
        item_id=item_id,
        warehouse_id=warehouse_id,
        run=run,
        lines=_with_projection(lines),
        planned_orders=tuple(
            sorted(planned, key=lambda o: (o.requirement_date, o.planned_order_id))
        ),
        action_messages=tuple(sorted(actions, key=lambda a: (a.receipt_date, a.supply_ref))),
        delay_messages=tuple(sorted(delays, key=lambda d: (d.requirement_date, d.demand_ref))),
        plan_messages=tuple(rows.plan_messages(item_id, warehouse_id)),
    )


# -- how refs link the levels -------------------------------------------------


def caused_refs(supply_kind: str, supply_ref: str) -> tuple[list[str], str | None]:
    """Refs (exact) and a ref prefix (followed by a line number) of the
    requirements ``supply_ref`` caused one level lower."""
    if supply_kind == "pl":
        return [supply_ref], supply_ref + "/"
    if supply_kind == "prd":
        return [], "PRDL:" + supply_ref[len("PRD:") :] + "/"
    if supply_kind == "trr":
        return ["TRI:" + supply_ref[len("TRR:") :]], None
    return [], None


def cause_candidates(demand_kind: str, demand_ref: str) -> list[str]:
    """Refs of the supplies one level higher that may have caused a requirement."""
    if demand_kind == "pl":
        head, _, last = demand_ref.rpartition("/")
        return [demand_ref, head] if head and last.isdigit() else [demand_ref]
    if demand_kind == "prdl":
        return ["PRD:" + demand_ref[len("PRDL:") :].rpartition("/")[0]]
    if demand_kind == "tri":
        return ["TRR:" + demand_ref[len("TRI:") :]]
    return []


def is_caused_by(demand_kind: str, demand_ref: str, supply_kind: str, supply_ref: str) -> bool:
    """Whether a requirement's ref names ``supply_ref`` as the supply that caused it."""
    exact, prefix = caused_refs(supply_kind, supply_ref)
    if demand_ref in exact:
        return True
    return (
        prefix is not None and demand_ref.startswith(prefix) and demand_ref[len(prefix) :].isdigit()
    )


def _caused(rows: PlanRows, r: PegRow) -> list[PegRow]:
    """Pegging rows of the requirements the supply of ``r`` caused one level lower."""
    exact, prefix = caused_refs(r.supply_kind, r.supply_ref)
    if not exact and prefix is None:
        return []
    return [
        c
        for c in rows.demands_named(exact, prefix)
        if (c.item_id, c.warehouse_id) != (r.item_id, r.warehouse_id)
        and is_caused_by(c.demand_kind, c.demand_ref, r.supply_kind, r.supply_ref)
    ]


def _causes(rows: PlanRows, r: PegRow) -> list[PegRow]:
    """Pegging rows of the supplies one level higher that the requirement of
    ``r`` is part of."""
    refs = cause_candidates(r.demand_kind, r.demand_ref)
    if not refs:
        return []
    return [
        s
        for s in rows.supplies_named(refs)
        if (s.item_id, s.warehouse_id) != (r.item_id, r.warehouse_id)
        and is_caused_by(r.demand_kind, r.demand_ref, s.supply_kind, s.supply_ref)
    ]


# -- pegging trees ------------------------------------------------------------


class _Budget:
    def __init__(self, nodes: int) -> None:
        self.left = nodes

    def take(self) -> bool:
        self.left -= 1
        return self.left >= 0


def _due(rows: PlanRows, ref: str) -> dt.date | None:
    """A planned order's due date as the plan used it (not before ``T0``)."""
    order = rows.order(ref[3:]) if ref.startswith("PL:") else None
    return None if order is None else max(order.due_date, rows.plan_date)


def _merged(nodes: list[PegNode]) -> tuple[PegNode, ...]:
    """One node per demand or supply of a SKU: its qty the sum, its children all."""
    merged: dict[tuple[str, str, str], PegNode] = {}
    for n in nodes:
        key = (n.ref, n.item_id, n.warehouse_id)
        have = merged.get(key)
        merged[key] = (
            n
            if have is None
            else PegNode(
                n.role,
                n.kind,
                n.ref,
                n.item_id,
                n.warehouse_id,
                n.date,
                have.qty + n.qty,
                n.level,
                n.due_date,
                have.children + n.children,
            )
        )
    return tuple(merged.values())


def _supply_down(rows: PlanRows, r: PegRow, level: int, depth: int, budget: _Budget) -> PegNode:
    """A supply (pegging row ``r``) and the requirements it caused below."""
    children: list[PegNode] = []
    if level < depth and budget.take():
        for c in _caused(rows, r):
            supply = _supply_down(rows, c, level + 1, depth, budget)
            children.append(
                PegNode(
                    "demand",
                    c.demand_kind,
                    c.demand_ref,
                    c.item_id,
                    c.warehouse_id,
                    c.demand_date,
                    c.qty,
                    level + 1,
                    None,
                    (supply,),
                )
            )
    return PegNode(
        "supply",
        r.supply_kind,
        r.supply_ref,
        r.item_id,
        r.warehouse_id,
        r.supply_date,
        r.qty,
        level,
        _due(rows, r.supply_ref),
        _merged(children),
    )


def _demand_up(rows: PlanRows, r: PegRow, level: int, depth: int, budget: _Budget) -> PegNode:
    """A requirement a supply served (row ``r``) and the supplies above it."""
    children: list[PegNode] = []
    if level < depth and r.demand_kind not in END_KINDS and budget.take():
        for s in _causes(rows, r):
            demand = _demand_up(rows, s, level + 1, depth, budget)
            children.append(
                PegNode(
                    "supply",
                    s.supply_kind,
                    s.supply_ref,
                    s.item_id,
                    s.warehouse_id,
                    s.supply_date,
                    s.qty,
                    level + 1,
                    _due(rows, s.supply_ref),
                    (demand,),
                )
            )
    return PegNode(
        "demand",
        r.demand_kind,
        r.demand_ref,
        r.item_id,
        r.warehouse_id,
        r.demand_date,
        r.qty,
        level,
        None,
        _merged(children),
    )


def _one_sku(found: list[PegRow]) -> list[PegRow]:
    """The rows of the first SKU among ``found`` (a dependent requirement's
    ref is unique per SKU only)."""
    first = found[0]
    return [r for r in found if (r.item_id, r.warehouse_id) == (first.item_id, first.warehouse_id)]


def pegging_tree(
    rows: PlanRows,
    ref: str,
    up: bool = False,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_nodes: int = MAX_NODES,
) -> PegNode:
    """The pegging tree of a demand (down to purchased parts and on-hand) or,
    with ``up``, of a supply (up to every end demand it serves).

    ``ref`` is a §4 ref (``SO:1001/1``, ``PL:FG/W1/1``, ``PO:7/2``). Down
    from a demand, each supply it took from carries the requirements it
    caused one level lower; ``max_depth`` counts those levels. A demand that
    took nothing (a ``manual`` SKU's shortfall: its delay message says never
    covered) is a node without children and quantity 0.

    Raises:
        NotInPlan: No pegging row (or delay message) names ``ref``.
    """
    budget = _Budget(max_nodes)
    if up:
        served = rows.served(ref)
        if not served:
            raise NotInPlan(f"no supply {ref!r} in the plan")
        served = _one_sku(served)
        s = served[0]
        return PegNode(
            "supply",
            s.supply_kind,
            ref,
            s.item_id,
            s.warehouse_id,
            s.supply_date,
            sum(r.qty for r in served),
            0,
            _due(rows, ref),
            _merged([_demand_up(rows, r, 0, max_depth, budget) for r in served]),
        )
    takes = rows.takes(ref)
    if not takes:
        late = rows.delay(ref)
        if late is None:
            raise NotInPlan(f"no demand {ref!r} in the plan")
        return PegNode(
            "demand",
            late.demand_kind,
            ref,
            late.item_id,
            late.warehouse_id,
            late.requirement_date,
            0.0,
            0,
        )
    takes = _one_sku(takes)
    d = takes[0]
    return PegNode(
        "demand",
        d.demand_kind,
        ref,
        d.item_id,
        d.warehouse_id,
        d.demand_date,
        sum(r.qty for r in takes),
        0,
        None,
        _merged([_supply_down(rows, r, 0, max_depth, budget) for r in takes]),
    )


# -- why a demand is late -----------------------------------------------------


class _Futures:
    """§5.7 on the written plan: when each supply can be there and when each
    requirement is covered, memoised over one view.

    A planned production or transfer order is there at the later of its due
    date and, for each requirement it caused that is delayed, that
    requirement's futures date plus the order's lead time, taken here as its
    due date minus its order date in calendar days (the result tables hold
    no lead time). A SKU that counts its lead time in working days adds
    working days instead, so a date can then differ by the idle days in
    between. The tests hold every computed futures date of the spec's worked
    examples and the demo database to its delay message.
    """

    def __init__(self, rows: PlanRows) -> None:
        self.rows, self.t0 = rows, rows.plan_date
        self._avail: dict[tuple[str, str, str], dt.date] = {}
        self._futures: dict[tuple[str, str, str], dt.date] = {}

    def order(self, r: PegRow) -> PlannedOrderRow | None:
        return self.rows.order(r.supply_ref[3:]) if r.supply_kind == "pl" else None

    def available(self, r: PegRow) -> dt.date:
        """When the supply of pegging row ``r`` can be there."""
        key = (r.supply_ref, r.item_id, r.warehouse_id)
        if key in self._avail:
            return self._avail[key]
        day = r.supply_date
        self._avail[key] = day  # what a cycle back to it reads
        order = self.order(r)
        if order is not None:
            due = max(order.due_date, self.t0)
            day = due
            if order.order_type != "purchase":
                lead = due - max(order.order_date, self.t0)
                for c in self.late_below(r):
                    f = self.futures(c)
                    day = _NEVER if f == _NEVER or day == _NEVER else max(day, f + lead)
        self._avail[key] = day
        return day

    def futures(self, r: PegRow) -> dt.date:
        """When the requirement of pegging row ``r`` is covered: its latest supply."""
        key = (r.demand_ref, r.item_id, r.warehouse_id)
        if key not in self._futures:
            self._futures[key] = r.demand_date  # what a cycle back to it reads
            takes = self.rows.takes(*key)
            day = max((self.available(t) for t in takes), default=_NEVER)
            if self.short(r.demand_kind, r.demand_ref):
                day = _NEVER
            self._futures[key] = day
        return self._futures[key]

    def short(self, kind: str, ref: str) -> bool:
        """Whether a requirement stayed (partly) short, as far as the plan
        says: an end demand whose delay message says never covered. (A
        requirement between levels that took part of its quantity on a
        ``manual`` SKU leaves no trace in the result tables.)"""
        if kind not in ("so", "fc", "tri", "ss"):
            return False
        late = self.rows.delay(ref)
        return late is not None and late.futures_date is None

    def late_below(self, r: PegRow) -> list[PegRow]:
        """The requirements the supply of ``r`` caused that are delayed (one
        pegging row each)."""
        firsts = {(c.demand_ref, c.item_id, c.warehouse_id): c for c in _caused(self.rows, r)}
        return [c for c in firsts.values() if self.futures(c) > c.demand_date]


def _unfed(rows: PlanRows, f: _Futures, r: PegRow) -> bool:
    """Whether the supply of ``r`` is a planned production or transfer order
    with no caused requirement in the pegging (its components took nothing)."""
    order = f.order(r)
    return order is not None and order.order_type != "purchase" and not _caused(rows, r)


def _own_lead(r: PegRow, order: PlannedOrderRow | None, avail: dt.date, day: dt.date) -> str:
    """The cause, in words, of a supply late by itself."""
    sku = f"item {r.item_id} at {r.warehouse_id}"
    if r.supply_kind == "pl" and order is not None:
        lead = (avail - order.order_date).days
        when = "ordered" if order.firmed else "released at the earliest"
        return (
            f"{'firmed ' if order.firmed else ''}planned {order.order_type} order {r.supply_ref} "
            f"of {sku} for {order.qty:g} is {when} {order.order_date} and due {avail}, "
            f"{lead} days later: after the requirement date {day}"
        )
    what = {
        "po": "purchase line",
        "prd": "production order",
        "trr": "transfer receipt",
        "oh": "on-hand",
        "pl": "firmed planned order",
    }.get(r.supply_kind, "receipt")
    return f"{what} {r.supply_ref} of {sku} arrives {avail}, after {day}"


def delay_path(rows: PlanRows, ref: str) -> DelayPath:
    """Why demand ``ref`` is late: from it, at each level the supply that is
    there last (§5.7), and below a planned order made late by what it needs,
    the requirement it caused that is covered last, down to a supply late by
    its own lead time or date, or to a requirement that took from nothing.

    Raises:
        NotInPlan: ``ref`` is no late demand of the plan (no delay message).
    """
    demand = rows.delay(ref)
    if demand is None:
        raise NotInPlan(f"{ref!r} is not late in the plan (no delay message)")
    f = _Futures(rows)
    steps: list[DelayStep] = []
    kind, dref, item, wh = demand.demand_kind, ref, demand.item_id, demand.warehouse_id
    day = demand.requirement_date
    seen: set[tuple[str, str, str]] = set()
    while True:
        seen.add((dref, item, wh))
        takes = rows.takes(dref, item, wh)
        if not takes:
            steps.append(DelayStep(len(steps), kind, dref, item, wh, day, None, None, None))
            cause = (
                f"{dref} of item {item} at {wh} took from no supply: it stays short "
                "(its SKU plans no orders for it)"
            )
            break
        last = max(takes, key=lambda r: (f.available(r), r.supply_ref))
        avail = f.available(last)
        steps.append(
            DelayStep(
                len(steps),
                kind,
                dref,
                item,
                wh,
                day,
                last.supply_kind,
                last.supply_ref,
                None if avail == _NEVER else avail,
            )
        )
        order = f.order(last)
        if f.short(kind, dref) and avail != _NEVER:
            # Never covered, yet every supply it took from comes: either it
            # stayed short of part of its quantity, or a planned order it
            # took from needs components that took nothing (requirements
            # that took nothing leave no pegging row to follow).
            blind = [t for t in takes if _unfed(rows, f, t)]
            if blind:
                b = blind[0]
                steps[-1] = DelayStep(
                    steps[-1].level, kind, dref, item, wh, day, b.supply_kind, b.supply_ref, None
                )
                cause = (
                    f"{b.supply_ref} of item {b.item_id} at {b.warehouse_id} needs components "
                    "that took from no supply: one below it stays short (a `manual` SKU)"
                )
            else:
                took = sum(t.qty for t in takes)
                cause = (
                    f"{dref} of item {item} at {wh} took {took:g} from supplies and stays "
                    "short of the rest (its SKU plans no orders for it)"
                )
            break
        due = None if order is None else max(order.due_date, rows.plan_date)
        below = [
            c for c in f.late_below(last) if (c.demand_ref, c.item_id, c.warehouse_id) not in seen
        ]
        if below and due is not None and (avail == _NEVER or avail > due):
            nxt = max(below, key=lambda c: (f.futures(c), c.demand_ref))
            kind, dref, item, wh, day = (
                nxt.demand_kind,
                nxt.demand_ref,
                nxt.item_id,
                nxt.warehouse_id,
                nxt.demand_date,
            )
            continue
        if avail == _NEVER:
            cause = (
                f"{last.supply_ref} of item {item} at {wh} caused a requirement that took from "
                "no supply (a `manual` SKU below it stays short)"
            )
        else:
            cause = _own_lead(last, order, avail, day)
        break
    return DelayPath(demand, tuple(steps), cause)


# -- the report -----------------------------------------------------------------


def _series(
    view: NetRequirements, coverage: tuple[float | None, float | None, float | None]
) -> InventorySeries:
    by_date: dict[dt.date, float] = {}
    for line in view.lines:
        by_date[line.date] = line.projected
    ss, lo, hi = coverage
    return InventorySeries(
        view.item_id,
        view.warehouse_id,
        tuple(by_date),
        tuple(by_date.values()),
        ss or None,
        lo or None,
        hi or None,
    )


def _late_first(d: DelayMessageRow) -> tuple[Any, ...]:
    return (d.futures_date is not None, -(d.delay_days or 0), d.requirement_date, d.demand_ref)


def plan_report(rows: PlanRows, run: RunInfo, top: int = 10, charts: int = 6) -> PlanReport:
    """What ``masterplan report`` draws: the run, the ``top`` most delayed
    demands (never covered first, then the longest delays) with their paths,
    the messages, the worst delay's pegging tree and projected inventory of up
    to ``charts`` critical SKUs (those of the worst delays' causes and
    demands, then those with the most action messages)."""
    delays = sorted(rows.delay_messages(), key=_late_first)
    actions = sorted(rows.action_messages(), key=lambda a: (a.action, a.receipt_date, a.supply_ref))
    messages = sorted(
        rows.plan_messages(), key=lambda m: (m.code, m.item_id or "", m.warehouse_id or "")
    )
    paths = tuple(delay_path(rows, d.demand_ref) for d in delays[:top])
    worst = pegging_tree(rows, delays[0].demand_ref) if delays else None
    skus: list[tuple[str, str]] = []
    for path in paths:
        for step in (path.steps[-1], path.steps[0]):
            if (step.item_id, step.warehouse_id) not in skus:
                skus.append((step.item_id, step.warehouse_id))
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for a in actions:
        counts[(a.item_id, a.warehouse_id)] += 1
    for sku, _n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        if sku not in skus:
            skus.append(sku)
    series = []
    for item, wh in skus[:charts]:
        try:
            view = net_requirements(rows, run, item, wh)
        except NotInPlan:
            continue
        series.append(_series(view, rows.coverage(item, wh)))
    return PlanReport(run, paths, tuple(actions), tuple(messages), worst, tuple(series))
