"""The planner's views of the current plan, read from the SCM database (SPEC §8).

``masterplan show``, ``peg``, ``why`` and ``report`` answer from what the
connector wrote: the plan's rows in the result tables (§4) and the run that
wrote them (``plans.current_run_id``). Each view reads in one transaction, so
that it sees one plan even while a run writes the next one.

What the result tables hold, and so what the views can say:

- A requirement's quantity is what it took from receipts (its pegging rows).
  Every shortfall gets planned orders except on a ``manual`` SKU, whose short
  requirement shows what it took and a delay message "never covered".
- A receipt's whole quantity is read from its input row (on-hand, purchase
  and production orders, transfer receipts, firmed planned orders) where that
  row is still there, and from ``planned_orders`` for the run's orders; a
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
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from masterplan.connector.errors import ConnectorError
from masterplan.connector.schema import sql_table
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
    "MAX_NODES",
    "NotInPlan",
    "ViewError",
    "current_run",
    "delay_path",
    "net_requirements",
    "pegging_tree",
    "plan_report",
    "sku_warehouses",
]

#: BOM levels a pegging tree goes down (or up) unless told otherwise.
DEFAULT_MAX_DEPTH = 20
#: Nodes a pegging tree holds at most; a larger tree is cut (its last nodes
#: keep no children) so that a view of a huge plan stays readable.
MAX_NODES = 2000

#: Walk order of requirement kinds on one date (§5.5).
_REQ_ORDER = {"oh": 0, "ss": 1, "so": 2, "prdl": 3, "tri": 4, "pl": 5, "fc": 6}
#: Order of receipt classes on one date (§5.5).
_REC_ORDER = {"oh": 0, "po": 1, "prd": 1, "trr": 1, "pl": 2}
#: Kinds of end demands: where an upward pegging tree stops.
_END_KINDS = ("so", "fc", "ss", "oh")


class ViewError(ConnectorError):
    """A view cannot be shown (no plan written yet, say); the text says why."""


class NotInPlan(ViewError):
    """The item, SKU or ref asked for is not in the current plan."""


@contextmanager
def _reading(bind: Engine | Connection) -> Iterator[Connection]:
    if isinstance(bind, Connection):
        yield bind
        return
    with bind.connect() as conn, conn.begin():
        yield conn


def _date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, str):
        return dt.date.fromisoformat(value[:10])
    assert isinstance(value, dt.date), value
    return value


def _opt_date(value: Any) -> dt.date | None:
    return None if value is None else _date(value)


def _opt_datetime(value: Any) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        return dt.datetime.fromisoformat(value)
    return dt.datetime.combine(value, dt.time())


def current_run(bind: Engine | Connection, plan_id: str = "main") -> RunInfo:
    """The run whose result the plan's rows are.

    Raises:
        ViewError: The plan has no written run (``masterplan run`` first).
    """
    plans, runs = sql_table("plans"), sql_table("plan_runs")
    with _reading(bind) as conn:
        run_id = conn.execute(
            sa.select(plans.c.current_run_id).where(plans.c.plan_id == plan_id)
        ).scalar_one_or_none()
        if run_id is None:
            raise ViewError(
                f"plan {plan_id!r} has no plan written in this database yet: run "
                f"`masterplan run --plan {plan_id}` first"
            )
        row = conn.execute(sa.select(runs).where(runs.c.run_id == run_id)).mappings().first()
    if row is None:
        raise ViewError(f"plan_runs has no row for run {run_id!r}, the current run of {plan_id!r}")
    return RunInfo(
        plan_id=plan_id,
        run_id=str(run_id),
        mode=str(row["mode"]),
        base_run_id=row["base_run_id"],
        plan_date=_date(row["plan_date"]),
        started_at=_opt_datetime(row["started_at"]),
        finished_at=_opt_datetime(row["finished_at"]),
        planned_order_count=int(row["planned_order_count"]),
        pegging_count=int(row["pegging_count"]),
        action_message_count=int(row["action_message_count"]),
        delay_message_count=int(row["delay_message_count"]),
        plan_message_count=int(row["plan_message_count"]),
        rows_added=int(row["rows_added"]),
        rows_removed=int(row["rows_removed"]),
    )


def sku_warehouses(bind: Engine | Connection, item_id: str, plan_id: str = "main") -> list[str]:
    """The warehouses at which the current plan nets ``item_id``, sorted."""
    peg, po = sql_table("pegging"), sql_table("planned_orders")
    with _reading(bind) as conn:
        found = set(
            conn.execute(
                sa.select(peg.c.warehouse_id)
                .where(peg.c.plan_id == plan_id, peg.c.item_id == item_id)
                .distinct()
            ).scalars()
        )
        found |= set(
            conn.execute(
                sa.select(po.c.warehouse_id)
                .where(po.c.plan_id == plan_id, po.c.item_id == item_id)
                .distinct()
            ).scalars()
        )
    return sorted(found)


# -- net requirements ---------------------------------------------------------


def _planned_order(row: Any) -> PlannedOrderRow:
    return PlannedOrderRow(
        planned_order_id=row["planned_order_id"],
        item_id=row["item_id"],
        warehouse_id=row["warehouse_id"],
        order_type=row["order_type"],
        qty=float(row["qty"]),
        order_date=_date(row["order_date"]),
        due_date=_date(row["due_date"]),
        requirement_date=_date(row["requirement_date"]),
        from_warehouse_id=row["from_warehouse_id"],
        vendor_id=row["vendor_id"],
        bom_id=row["bom_id"],
        firmed=bool(row["firmed"]),
    )


def _action(row: Any) -> ActionMessageRow:
    return ActionMessageRow(
        supply_kind=row["supply_kind"],
        supply_ref=row["supply_ref"],
        item_id=row["item_id"],
        warehouse_id=row["warehouse_id"],
        action=row["action"],
        receipt_date=_date(row["receipt_date"]),
        receipt_qty=float(row["receipt_qty"]),
        suggested_date=_opt_date(row["suggested_date"]),
        suggested_qty=None if row["suggested_qty"] is None else float(row["suggested_qty"]),
    )


def _delay(row: Any) -> DelayMessageRow:
    return DelayMessageRow(
        demand_kind=row["demand_kind"],
        demand_ref=row["demand_ref"],
        item_id=row["item_id"],
        warehouse_id=row["warehouse_id"],
        requirement_date=_date(row["requirement_date"]),
        futures_date=_opt_date(row["futures_date"]),
        delay_days=None if row["delay_days"] is None else int(row["delay_days"]),
    )


def _plan_message(row: Any) -> PlanMessageRow:
    return PlanMessageRow(
        severity=row["severity"],
        code=row["code"],
        item_id=row["item_id"],
        warehouse_id=row["warehouse_id"],
        text=row["text"],
    )


def _of_sku(conn: Connection, name: str, plan_id: str, item: str, wh: str) -> list[Any]:
    t = sql_table(name)
    return list(
        conn.execute(
            sa.select(t).where(t.c.plan_id == plan_id, t.c.item_id == item, t.c.warehouse_id == wh)
        ).mappings()
    )


def _number(value: Any) -> str:
    """A line number as refs print it (``1``, not ``1.0``)."""
    as_float = float(value)
    return str(int(as_float)) if as_float.is_integer() else repr(as_float)


def _existing_receipts(
    conn: Connection, item: str, wh: str, t0: dt.date
) -> dict[str, tuple[dt.date, float]]:
    """Whole quantity and effective date of each existing receipt of the SKU
    still in the input tables, by ref."""
    out: dict[str, tuple[dt.date, float]] = {}

    def eff(day: Any) -> dt.date:
        return max(_date(day), t0)

    oh = sql_table("on_hand")
    total = conn.execute(
        sa.select(sa.func.sum(oh.c.qty)).where(oh.c.item_id == item, oh.c.warehouse_id == wh)
    ).scalar()
    if total is not None and float(total) > 0:
        out[f"OH:{item}/{wh}"] = (t0, float(total))
    # (table, ref prefix, id columns, warehouse column, date column)
    sources = (
        ("purchase_lines", "PO", ("order_id", "line_no"), "warehouse_id", "delivery_date"),
        ("production_orders", "PRD", ("order_id",), "warehouse_id", "end_date"),
        ("transfer_lines", "TRR", ("order_id", "line_no"), "to_warehouse_id", "receive_date"),
        ("firmed_planned_orders", "PL", ("planned_order_id",), "warehouse_id", "due_date"),
    )
    for name, prefix, ids, wh_col, date_col in sources:
        t = sql_table(name)
        rows = conn.execute(
            sa.select(*(t.c[c] for c in (*ids, "qty", date_col))).where(
                t.c.item_id == item, t.c[wh_col] == wh
            )
        ).mappings()
        for r in rows:
            if r["qty"] is None or float(r["qty"]) <= 0 or r[date_col] is None:
                continue  # no receipt (§5.9 leaves bad rows out; zero is nothing)
            if any(r[c] is None for c in ids):
                continue
            key = "/".join(_number(r[c]) if c == "line_no" else str(r[c]) for c in ids)
            out[f"{prefix}:{key}"] = (eff(r[date_col]), float(r["qty"]))
    return out


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
    bind: Engine | Connection, item_id: str, warehouse_id: str, plan_id: str = "main"
) -> NetRequirements:
    """One SKU of the current plan: requirements and receipts with the
    projected quantity after each, planned orders and messages.

    Raises:
        ViewError: The plan has no written run.
        NotInPlan: The plan has nothing for this SKU.
    """
    with _reading(bind) as conn:
        run = current_run(conn, plan_id)
        pegging = _of_sku(conn, "pegging", plan_id, item_id, warehouse_id)
        orders = _of_sku(conn, "planned_orders", plan_id, item_id, warehouse_id)
        actions = _of_sku(conn, "action_messages", plan_id, item_id, warehouse_id)
        delays = _of_sku(conn, "delay_messages", plan_id, item_id, warehouse_id)
        pm = sql_table("plan_messages")
        messages = list(
            conn.execute(
                sa.select(pm).where(
                    pm.c.plan_id == plan_id,
                    pm.c.item_id == item_id,
                    sa.or_(pm.c.warehouse_id == warehouse_id, pm.c.warehouse_id.is_(None)),
                )
            ).mappings()
        )
        existing = _existing_receipts(conn, item_id, warehouse_id, run.plan_date)
    if not (pegging or orders or actions or delays):
        raise NotInPlan(
            f"the current plan of {plan_id!r} has nothing for item {item_id!r} at warehouse "
            f"{warehouse_id!r}"
        )
    taken: dict[tuple[str, str, dt.date], float] = defaultdict(float)
    given: dict[tuple[str, str], tuple[dt.date, float]] = {}
    for r in pegging:
        key = (r["demand_kind"], r["demand_ref"], _date(r["demand_date"]))
        taken[key] += float(r["qty"])
        s_key = (r["supply_kind"], r["supply_ref"])
        day, qty = given.get(s_key, (_date(r["supply_date"]), 0.0))
        given[s_key] = (day, qty + float(r["qty"]))
    lines = [NetLine(d, "requirement", k, ref, q, 0.0) for (k, ref, d), q in taken.items()]
    planned = [_planned_order(r) for r in orders]
    for o in planned:
        ref = f"PL:{o.planned_order_id}"
        lines.append(NetLine(o.requirement_date, "receipt", "pl", ref, o.qty, 0.0))
        given.pop(("pl", ref), None)
    for ref, (day, qty) in existing.items():
        kind = ref.split(":", 1)[0].lower()
        day_taken, took = given.pop((kind, ref), (day, 0.0))
        lines.append(NetLine(day_taken, "receipt", kind, ref, max(qty, took), 0.0))
    for (kind, ref), (day, took) in given.items():  # its input row is gone
        lines.append(NetLine(day, "receipt", kind, ref, took, 0.0))
    planned.sort(key=lambda o: (o.requirement_date, o.planned_order_id))
    return NetRequirements(
        item_id=item_id,
        warehouse_id=warehouse_id,
        run=run,
        lines=_with_projection(lines),
        planned_orders=tuple(planned),
        action_messages=tuple(
            sorted((_action(r) for r in actions), key=lambda a: (a.receipt_date, a.supply_ref))
        ),
        delay_messages=tuple(
            sorted((_delay(r) for r in delays), key=lambda d: (d.requirement_date, d.demand_ref))
        ),
        plan_messages=tuple(_plan_message(r) for r in messages),
    )


# -- pegging trees ------------------------------------------------------------


def _kind(ref: str) -> str:
    return ref.split(":", 1)[0].lower()


def _caused_refs(supply_kind: str, supply_ref: str) -> tuple[list[str], str | None]:
    """Refs (exact) and a ref prefix (for ``/{line}``) of the requirements
    ``supply_ref`` caused one level lower."""
    if supply_kind == "pl":
        return [supply_ref], supply_ref + "/"
    if supply_kind == "prd":
        return [], "PRDL:" + supply_ref[len("PRD:") :] + "/"
    if supply_kind == "trr":
        return ["TRI:" + supply_ref[len("TRR:") :]], None
    return [], None


def _cause_candidates(demand_kind: str, demand_ref: str) -> list[str]:
    """Refs of the supplies one level higher that may have caused a requirement."""
    if demand_kind == "pl":
        head, _, last = demand_ref.rpartition("/")
        return [demand_ref, head] if head and last.isdigit() else [demand_ref]
    if demand_kind == "prdl":
        head = demand_ref[len("PRDL:") :].rpartition("/")[0]
        return ["PRD:" + head]
    if demand_kind == "tri":
        return ["TRR:" + demand_ref[len("TRI:") :]]
    return []


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class _Pegging:
    """Lookups of one plan's pegging rows, by demand and by supply, each row
    read once per view."""

    def __init__(self, conn: Connection, plan_id: str) -> None:
        self.conn, self.plan_id = conn, plan_id
        self.t = sql_table("pegging")
        self.po = sql_table("planned_orders")
        self._due: dict[str, dt.date | None] = {}

    def _rows(self, *where: Any) -> list[Any]:
        t = self.t
        return list(
            self.conn.execute(
                sa.select(t)
                .where(t.c.plan_id == self.plan_id, *where)
                .order_by(t.c.supply_date, t.c.supply_ref, t.c.demand_date, t.c.demand_ref)
            ).mappings()
        )

    def takes(self, demand_ref: str, item: str | None = None, wh: str | None = None) -> list[Any]:
        """Pegging rows of a requirement (at the SKU, when given)."""
        where = [self.t.c.demand_ref == demand_ref]
        if item is not None:
            where += [self.t.c.item_id == item, self.t.c.warehouse_id == wh]
        return self._rows(*where)

    def served(self, supply_ref: str, item: str | None = None, wh: str | None = None) -> list[Any]:
        """Pegging rows of a supply (at the SKU, when given)."""
        where = [self.t.c.supply_ref == supply_ref]
        if item is not None:
            where += [self.t.c.item_id == item, self.t.c.warehouse_id == wh]
        return self._rows(*where)

    def caused(self, supply_kind: str, supply_ref: str, item: str, wh: str) -> list[Any]:
        """Pegging rows of the requirements a supply caused one level lower."""
        exact, prefix = _caused_refs(supply_kind, supply_ref)
        t = self.t
        conds = [t.c.demand_ref.in_(exact)] if exact else []
        if prefix is not None:
            conds.append(t.c.demand_ref.like(_escape_like(prefix) + "%", escape="\\"))
        if not conds:
            return []
        rows = self._rows(sa.or_(*conds))
        out = []
        for r in rows:
            if (r["item_id"], r["warehouse_id"]) == (item, wh):
                continue  # the supply's own SKU: not one level lower
            ref = r["demand_ref"]
            if ref in exact or (prefix is not None and ref[len(prefix) :].isdigit()):
                out.append(r)
        return out

    def causes(self, demand_kind: str, demand_ref: str, item: str, wh: str) -> list[Any]:
        """Pegging rows of the supplies one level higher that a requirement is
        part of."""
        refs = _cause_candidates(demand_kind, demand_ref)
        if not refs:
            return []
        rows = self._rows(self.t.c.supply_ref.in_(refs))
        return [r for r in rows if (r["item_id"], r["warehouse_id"]) != (item, wh)]

    def due(self, supply_ref: str) -> dt.date | None:
        """A planned order's due date (None for another supply)."""
        if not supply_ref.startswith("PL:"):
            return None
        if supply_ref not in self._due:
            day = self.conn.execute(
                sa.select(self.po.c.due_date).where(
                    self.po.c.plan_id == self.plan_id,
                    self.po.c.planned_order_id == supply_ref[3:],
                )
            ).scalar_one_or_none()
            if day is None:
                fp = sql_table("firmed_planned_orders")
                day = self.conn.execute(
                    sa.select(fp.c.due_date).where(fp.c.planned_order_id == supply_ref[3:])
                ).scalar_one_or_none()
            self._due[supply_ref] = _opt_date(day)
        return self._due[supply_ref]


class _Budget:
    def __init__(self, nodes: int) -> None:
        self.left = nodes

    def take(self) -> bool:
        self.left -= 1
        return self.left >= 0


def _supply_node(p: _Pegging, r: Any, level: int, depth: int, budget: _Budget) -> PegNode:
    """A supply (from the pegging row ``r``) and what it caused below."""
    children: list[PegNode] = []
    if level < depth and budget.take():
        for c in p.caused(r["supply_kind"], r["supply_ref"], r["item_id"], r["warehouse_id"]):
            children.append(_demand_below(p, c, level + 1, depth, budget))
    children = _merge_demands(children)
    return PegNode(
        "supply",
        r["supply_kind"],
        r["supply_ref"],
        r["item_id"],
        r["warehouse_id"],
        _date(r["supply_date"]),
        float(r["qty"]),
        level,
        p.due(r["supply_ref"]),
        tuple(children),
    )


def _demand_below(p: _Pegging, r: Any, level: int, depth: int, budget: _Budget) -> PegNode:
    """A caused requirement (one pegging row ``r`` of it) and its supply."""
    supply = _supply_node(p, r, level, depth, budget)
    return PegNode(
        "demand",
        r["demand_kind"],
        r["demand_ref"],
        r["item_id"],
        r["warehouse_id"],
        _date(r["demand_date"]),
        float(r["qty"]),
        level,
        None,
        (supply,),
    )


def _merge_demands(nodes: list[PegNode]) -> list[PegNode]:
    """One node per requirement: its takes as children, its qty their sum."""
    merged: dict[tuple[str, str, str], PegNode] = {}
    for n in nodes:
        key = (n.ref, n.item_id, n.warehouse_id)
        have = merged.get(key)
        if have is None:
            merged[key] = n
        else:
            merged[key] = PegNode(
                n.role,
                n.kind,
                n.ref,
                n.item_id,
                n.warehouse_id,
                n.date,
                have.qty + n.qty,
                n.level,
                None,
                have.children + n.children,
            )
    return list(merged.values())


def _up_demand(p: _Pegging, r: Any, level: int, depth: int, budget: _Budget) -> PegNode:
    """A requirement a supply served (row ``r``) and the supplies above it."""
    children: list[PegNode] = []
    if level < depth and r["demand_kind"] not in _END_KINDS and budget.take():
        for c in p.causes(r["demand_kind"], r["demand_ref"], r["item_id"], r["warehouse_id"]):
            children.append(_up_supply(p, c, level + 1, depth, budget))
    return PegNode(
        "demand",
        r["demand_kind"],
        r["demand_ref"],
        r["item_id"],
        r["warehouse_id"],
        _date(r["demand_date"]),
        float(r["qty"]),
        level,
        None,
        tuple(_merge_supplies(children)),
    )


def _up_supply(p: _Pegging, r: Any, level: int, depth: int, budget: _Budget) -> PegNode:
    """A supply one level up (row ``r``: one of its takes) and the end demand of that take."""
    demand = _up_demand(p, r, level, depth, budget)
    return PegNode(
        "supply",
        r["supply_kind"],
        r["supply_ref"],
        r["item_id"],
        r["warehouse_id"],
        _date(r["supply_date"]),
        float(r["qty"]),
        level,
        p.due(r["supply_ref"]),
        (demand,),
    )


def _merge_supplies(nodes: list[PegNode]) -> list[PegNode]:
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
    return list(merged.values())


def _root_demand(p: _Pegging, conn: Connection, plan_id: str, ref: str) -> PegNode | None:
    takes = p.takes(ref)
    if takes:
        first = takes[0]
        skus = {(r["item_id"], r["warehouse_id"]) for r in takes}
        if len(skus) > 1:
            # A dependent requirement's ref is unique per SKU only.
            takes = [r for r in takes if (r["item_id"], r["warehouse_id"]) == skus.pop()]
        return PegNode(
            "demand",
            first["demand_kind"],
            ref,
            first["item_id"],
            first["warehouse_id"],
            _date(first["demand_date"]),
            sum(float(r["qty"]) for r in takes),
            0,
            None,
            (),
        )
    dm = sql_table("delay_messages")
    row = (
        conn.execute(sa.select(dm).where(dm.c.plan_id == plan_id, dm.c.demand_ref == ref))
        .mappings()
        .first()
    )
    if row is None:
        return None
    # A demand that took nothing: its node has no supply (its shortfall).
    return PegNode(
        "demand",
        row["demand_kind"],
        ref,
        row["item_id"],
        row["warehouse_id"],
        _date(row["requirement_date"]),
        0.0,
        0,
        None,
        (),
    )


def pegging_tree(
    bind: Engine | Connection,
    ref: str,
    up: bool = False,
    plan_id: str = "main",
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_nodes: int = MAX_NODES,
) -> PegNode:
    """The pegging tree of a demand (down to purchased parts and on-hand) or,
    with ``up``, of a supply (up to every end demand it serves).

    ``ref`` is a §4 ref (``SO:1001/1``, ``PL:FG/W1/1``, ``PO:7/2``). Down
    from a demand, each supply it took from carries the requirements it
    caused one level lower; ``max_depth`` counts those levels. A demand that
    took nothing is a node without children (its shortfall).

    Raises:
        ViewError: The plan has no written run.
        NotInPlan: No pegging row (or delay message) names ``ref``.
    """
    budget = _Budget(max_nodes)
    with _reading(bind) as conn:
        current_run(conn, plan_id)
        p = _Pegging(conn, plan_id)
        if not up:
            root = _root_demand(p, conn, plan_id, ref)
            if root is None:
                raise NotInPlan(f"no demand {ref!r} in the current plan of {plan_id!r}")
            takes = p.takes(ref, root.item_id, root.warehouse_id)
            children = tuple(_supply_node(p, r, 0, max_depth, budget) for r in takes)
            return PegNode(
                root.role,
                root.kind,
                root.ref,
                root.item_id,
                root.warehouse_id,
                root.date,
                root.qty,
                0,
                None,
                children,
            )
        served = p.served(ref)
        if not served:
            raise NotInPlan(f"no supply {ref!r} in the current plan of {plan_id!r}")
        first = served[0]
        served = [
            r
            for r in served
            if (r["item_id"], r["warehouse_id"]) == (first["item_id"], first["warehouse_id"])
        ]
        return PegNode(
            "supply",
            first["supply_kind"],
            ref,
            first["item_id"],
            first["warehouse_id"],
            _date(first["supply_date"]),
            sum(float(r["qty"]) for r in served),
            0,
            p.due(ref),
            tuple(_up_demand(p, r, 0, max_depth, budget) for r in served),
        )


# -- why a demand is late -----------------------------------------------------


#: "Never available" in the delay arithmetic (a shortfall below).
_NEVER = dt.date.max


class _Futures:
    """§5.7 on the written plan: when each supply can be there and when each
    requirement is covered, memoised over one view.

    A planned production or transfer order is there at the later of its due
    date and, for each requirement it caused that is delayed, that
    requirement's futures date plus the order's lead time, taken here as its
    due date minus its order date in calendar days (the result tables hold
    no lead time). A SKU that counts its lead time in working days adds
    working days instead, so a date can then differ by
    the idle days in between. The tests hold every computed futures date of
    the spec's worked examples and the demo database to its delay message.
    """

    def __init__(self, p: _Pegging, t0: dt.date) -> None:
        self.p, self.t0 = p, t0
        self._avail: dict[tuple[str, str, str], dt.date] = {}
        self._futures: dict[tuple[str, str, str], dt.date] = {}
        self._orders: dict[str, Any] = {}

    def order(self, ref: str) -> Any:
        """(order_type, order_date, due_date, qty) of planned order ``ref``
        (the run's, or a firmed one), or None."""
        if ref not in self._orders:
            po, fp = self.p.po, sql_table("firmed_planned_orders")
            cols = ("order_type", "order_date", "due_date", "qty")
            row = self.p.conn.execute(
                sa.select(*(po.c[c] for c in cols)).where(
                    po.c.plan_id == self.p.plan_id, po.c.planned_order_id == ref[3:]
                )
            ).first()
            if row is None:
                row = self.p.conn.execute(
                    sa.select(*(fp.c[c] for c in cols)).where(fp.c.planned_order_id == ref[3:])
                ).first()
            self._orders[ref] = row
        return self._orders[ref]

    def due(self, ref: str) -> dt.date | None:
        """A planned order's due date as the plan used it (not before ``T0``)."""
        row = self.order(ref) if ref.startswith("PL:") else None
        return None if row is None else max(_date(row.due_date), self.t0)

    def available(self, r: Any) -> dt.date:
        """When the supply of pegging row ``r`` can be there."""
        key = (r["supply_ref"], r["item_id"], r["warehouse_id"])
        if key in self._avail:
            return self._avail[key]
        day = _date(r["supply_date"])
        self._avail[key] = day  # what a cycle back to it reads
        row = self.order(r["supply_ref"]) if r["supply_kind"] == "pl" else None
        if row is not None:
            due = max(_date(row.due_date), self.t0)
            day = due
            if row.order_type != "purchase":
                lead = due - max(_date(row.order_date), self.t0)
                for c in self.late_below(r):
                    f = self.futures(c)
                    day = _NEVER if f == _NEVER or day == _NEVER else max(day, f + lead)
        self._avail[key] = day
        return day

    def futures(self, r: Any) -> dt.date:
        """When the requirement of pegging row ``r`` is covered: its latest supply."""
        key = (r["demand_ref"], r["item_id"], r["warehouse_id"])
        if key not in self._futures:
            self._futures[key] = _date(r["demand_date"])  # what a cycle back to it reads
            takes = self.p.takes(*key)
            self._futures[key] = max((self.available(t) for t in takes), default=_NEVER)
        return self._futures[key]

    def late_below(self, r: Any) -> list[Any]:
        """The requirements the supply of row ``r`` caused that are delayed
        (one pegging row each)."""
        caused = self.p.caused(r["supply_kind"], r["supply_ref"], r["item_id"], r["warehouse_id"])
        firsts = {(c["demand_ref"], c["item_id"], c["warehouse_id"]): c for c in caused}
        return [c for c in firsts.values() if self.futures(c) > _date(c["demand_date"])]


def delay_path(bind: Engine | Connection, ref: str, plan_id: str = "main") -> DelayPath:
    """Why demand ``ref`` is late: from it, at each level the supply that is
    there last (§5.7), and below a planned order made late by what it needs,
    the requirement it caused that is covered last, down to a supply late by
    its own lead time or date, or to a requirement that took from nothing.

    Raises:
        ViewError: The plan has no written run.
        NotInPlan: ``ref`` is no late demand of the plan (no delay message).
    """
    dm = sql_table("delay_messages")
    with _reading(bind) as conn:
        run = current_run(conn, plan_id)
        row = (
            conn.execute(sa.select(dm).where(dm.c.plan_id == plan_id, dm.c.demand_ref == ref))
            .mappings()
            .first()
        )
        if row is None:
            raise NotInPlan(
                f"{ref!r} is not late in the current plan of {plan_id!r} (no delay message)"
            )
        demand = _delay(row)
        p = _Pegging(conn, plan_id)
        f = _Futures(p, run.plan_date)
        steps: list[DelayStep] = []
        kind, dref, item, wh = demand.demand_kind, ref, demand.item_id, demand.warehouse_id
        day = demand.requirement_date
        seen: set[tuple[str, str, str]] = set()
        while True:
            seen.add((dref, item, wh))
            takes = p.takes(dref, item, wh)
            if not takes:
                steps.append(DelayStep(len(steps), kind, dref, item, wh, day, None, None, None))
                cause = (
                    f"{dref} of item {item} at {wh} took from no supply: it stays short "
                    "(its SKU plans no orders for it)"
                )
                break
            last = max(takes, key=lambda r: (f.available(r), r["supply_ref"]))
            avail = f.available(last)
            steps.append(
                DelayStep(
                    len(steps),
                    kind,
                    dref,
                    item,
                    wh,
                    day,
                    last["supply_kind"],
                    last["supply_ref"],
                    None if avail == _NEVER else avail,
                )
            )
            due = f.due(last["supply_ref"]) if last["supply_kind"] == "pl" else None
            below = [
                c
                for c in f.late_below(last)
                if (c["demand_ref"], c["item_id"], c["warehouse_id"]) not in seen
            ]
            if below and due is not None and (avail == _NEVER or avail > due):
                nxt = max(below, key=lambda c: (f.futures(c), c["demand_ref"]))
                kind, dref = nxt["demand_kind"], nxt["demand_ref"]
                item, wh, day = nxt["item_id"], nxt["warehouse_id"], _date(nxt["demand_date"])
                continue
            if avail == _NEVER:
                cause = (
                    f"{last['supply_ref']} of item {item} at {wh} caused a requirement that "
                    "took from no supply (a `manual` SKU below it stays short)"
                )
            else:
                order = f.order(last["supply_ref"]) if last["supply_kind"] == "pl" else None
                cause = _own_lead(last, order, avail, day)
            break
    return DelayPath(demand, tuple(steps), cause)


def _own_lead(r: Any, order: Any, avail: dt.date, day: dt.date) -> str:
    """The cause, in words, of a supply late by itself."""
    ref, kind = r["supply_ref"], r["supply_kind"]
    sku = f"item {r['item_id']} at {r['warehouse_id']}"
    if kind == "pl" and order is not None:
        return (
            f"planned {order.order_type} order {ref} of {sku} for {float(order.qty):g} is "
            f"released {_date(order.order_date)} at the earliest and due {avail}: its lead "
            f"time ends after the requirement date {day}"
        )
    what = {
        "po": "purchase line",
        "prd": "production order",
        "trr": "transfer receipt",
        "oh": "on-hand",
        "pl": "firmed planned order",
    }.get(kind, "receipt")
    return f"{what} {ref} of {sku} arrives {avail}, after {day}"


# -- the report -----------------------------------------------------------------


def _item_coverage(conn: Connection, item: str, wh: str) -> tuple[Any, Any, Any]:
    ic = sql_table("item_coverage")
    row = conn.execute(
        sa.select(ic.c.safety_stock_qty, ic.c.min_qty, ic.c.max_qty).where(
            ic.c.item_id == item, ic.c.warehouse_id == wh
        )
    ).first()
    return (None, None, None) if row is None else (row[0], row[1], row[2])


def _series(view: NetRequirements, coverage: tuple[Any, Any, Any]) -> InventorySeries:
    by_date: dict[dt.date, float] = {}
    for line in view.lines:
        by_date[line.date] = line.projected
    ss, lo, hi = (None if v is None else float(v) for v in coverage)
    return InventorySeries(
        view.item_id,
        view.warehouse_id,
        tuple(by_date),
        tuple(by_date.values()),
        ss or None,
        lo if lo else None,
        hi if hi else None,
    )


def _late_first(d: DelayMessageRow) -> tuple[Any, ...]:
    never = d.futures_date is None
    return (not never, -(d.delay_days or 0), d.requirement_date, d.demand_ref)


def plan_report(
    bind: Engine | Connection, plan_id: str = "main", top: int = 10, charts: int = 6
) -> PlanReport:
    """What ``masterplan report`` draws: the run, the ``top`` most delayed
    demands with their paths, the messages, the worst delay's pegging tree and
    projected inventory of up to ``charts`` critical SKUs (those of the worst
    delays' causes and demands, then those with the most action messages).

    Raises:
        ViewError: The plan has no written run.
    """
    dm, am, pm = (
        sql_table("delay_messages"),
        sql_table("action_messages"),
        sql_table("plan_messages"),
    )
    with _reading(bind) as conn:
        run = current_run(conn, plan_id)
        delays = sorted(
            (
                _delay(r)
                for r in conn.execute(sa.select(dm).where(dm.c.plan_id == plan_id)).mappings()
            ),
            key=_late_first,
        )
        actions = [
            _action(r)
            for r in conn.execute(
                sa.select(am)
                .where(am.c.plan_id == plan_id)
                .order_by(am.c.action, am.c.receipt_date, am.c.supply_ref)
            ).mappings()
        ]
        messages = [
            _plan_message(r)
            for r in conn.execute(
                sa.select(pm).where(pm.c.plan_id == plan_id).order_by(pm.c.code, pm.c.item_id)
            ).mappings()
        ]
        paths = tuple(delay_path(conn, d.demand_ref, plan_id) for d in delays[:top])
        worst = pegging_tree(conn, delays[0].demand_ref, plan_id=plan_id) if delays else None
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
                view = net_requirements(conn, item, wh, plan_id)
            except NotInPlan:
                continue
            series.append(_series(view, _item_coverage(conn, item, wh)))
    return PlanReport(run, paths, tuple(actions), tuple(messages), worst, tuple(series))
