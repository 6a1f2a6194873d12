"""The planner's views of the current plan, read from the SCM database (SPEC §8).

``masterplan show``, ``peg``, ``why`` and ``report`` answer from what the
connector wrote: the plan's rows in the result tables (§4) and the run that
wrote them (``plans.current_run_id``). :class:`SqlPlanRows` reads the rows a
view needs, with indexed queries, and :mod:`masterplan.contract.explain`
turns them into the view (the server does the same from a kept run). Each
view reads in one transaction, so that it sees one plan even while a run
writes the next one.

The few input rows a view shows beside the plan (on-hand and open receipts,
BOM and production lines, coverage) are read where the run read them: the
same database, or the ERP's through a source profile when the plan was
written into a results database of its own (:class:`Inputs`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from masterplan.connector.errors import ConnectorError
from masterplan.connector.profile import SourceProfile, check_dialect, source_from
from masterplan.connector.schema import sql_table
from masterplan.contract import explain
from masterplan.contract.explain import (
    DEFAULT_MAX_DEPTH,
    MAX_NODES,
    RECEIPT_SOURCES,
    PegRow,
    ref_part,
)
from masterplan.contract.tables import INPUT_TABLES
from masterplan.contract.views import (
    ActionMessageRow,
    DelayMessageRow,
    DelayPath,
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
    "InputSource",
    "Inputs",
    "NotInPlan",
    "SqlPlanRows",
    "ViewError",
    "current_run",
    "delay_path",
    "net_requirements",
    "pegging_tree",
    "plan_report",
    "sku_warehouses",
]

T = TypeVar("T")


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


class Inputs:
    """Where a view reads input rows: a connection, and the reference tables
    or a source profile's queries over an ERP's tables."""

    def __init__(self, conn: Connection, source: SourceProfile | None = None) -> None:
        if source is not None:
            check_dialect(source, conn)
        self.conn, self.source = conn, source

    def table(self, name: str) -> sa.FromClause:
        """Input table ``name``, with its §4 columns under ``.c``."""
        if self.source is None:
            return sql_table(name)
        return source_from(self.source, INPUT_TABLES[name])


#: A database holding the inputs, and the profile to read them through
#: (None for the reference tables), when they are not where the plan is.
InputSource = tuple[Engine, SourceProfile | None]


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


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


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
    found: set[str] = set()
    with _reading(bind) as conn:
        for t in (peg, po):
            found.update(
                conn.execute(
                    sa.select(t.c.warehouse_id)
                    .where(t.c.plan_id == plan_id, t.c.item_id == item_id)
                    .distinct()
                ).scalars()
            )
    return sorted(found)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class SqlPlanRows:
    """:class:`~masterplan.contract.explain.PlanRows` of one plan in the SCM
    database, read on ``conn`` (one transaction for one view)."""

    def __init__(
        self, conn: Connection, plan_id: str, plan_date: dt.date, inputs: Inputs | None = None
    ) -> None:
        self.conn, self.plan_id, self._t0 = conn, plan_id, plan_date
        self.inputs = inputs or Inputs(conn)
        self._orders: dict[str, PlannedOrderRow | None] = {}
        self._firmed: set[str] = set()  # ids found among the inputs' firmed orders

    @property
    def plan_date(self) -> dt.date:
        return self._t0

    # -- pegging

    def _pegging(self, *where: Any) -> list[PegRow]:
        t = sql_table("pegging")
        rows = self.conn.execute(
            sa.select(
                t.c.item_id,
                t.c.warehouse_id,
                t.c.supply_kind,
                t.c.supply_ref,
                t.c.supply_date,
                t.c.demand_kind,
                t.c.demand_ref,
                t.c.demand_date,
                t.c.qty,
            )
            .where(t.c.plan_id == self.plan_id, *where)
            .order_by(t.c.supply_date, t.c.supply_ref, t.c.demand_date, t.c.demand_ref)
        )
        return [
            PegRow(r[0], r[1], r[2], r[3], _date(r[4]), r[5], r[6], _date(r[7]), float(r[8]))
            for r in rows
        ]

    def _sku(self, t: sa.Table, item_id: str | None, warehouse_id: str | None) -> list[Any]:
        if item_id is None:
            return []
        return [t.c.item_id == item_id, t.c.warehouse_id == warehouse_id]

    def takes(
        self, demand_ref: str, item_id: str | None = None, warehouse_id: str | None = None
    ) -> list[PegRow]:
        t = sql_table("pegging")
        return self._pegging(t.c.demand_ref == demand_ref, *self._sku(t, item_id, warehouse_id))

    def served(
        self, supply_ref: str, item_id: str | None = None, warehouse_id: str | None = None
    ) -> list[PegRow]:
        t = sql_table("pegging")
        return self._pegging(t.c.supply_ref == supply_ref, *self._sku(t, item_id, warehouse_id))

    def demands_named(self, refs: Sequence[str], prefix: str | None) -> list[PegRow]:
        t = sql_table("pegging")
        exact = list(refs)
        lines = self._line_refs(prefix) if prefix is not None else None
        if lines is not None:
            exact += lines
        conds = [t.c.demand_ref.in_(exact)] if exact else []
        if prefix is not None and lines is None:
            # A prefix search no index serves: only where the lines are unknown.
            conds.append(t.c.demand_ref.like(_escape_like(prefix) + "%", escape="\\"))
        return self._pegging(sa.or_(*conds)) if conds else []

    def _line_refs(self, prefix: str) -> list[str] | None:
        """The refs ``{prefix}{line}`` of an order's lines, from the lines
        themselves: a planned order's BOM lines, a production order's lines.
        A search of the pegging by exact refs uses its index where a prefix
        search (LIKE) reads every row. None where the lines are unknown (a
        firmed planned order's BOM is chosen by the run)."""
        head = prefix[:-1]
        if prefix.startswith("PL:"):
            order = self.order(head[3:])
            if order is None or order.order_type != "production":
                return [] if order is not None else None
            if order.bom_id is None:
                # The run's own order without a valid BOM draws on nothing; a
                # firmed order of the inputs has its BOM chosen by the run.
                return None if head[3:] in self._firmed else []
            bl = self.inputs.table("bom_lines")
            numbers = self.inputs.conn.execute(
                sa.select(bl.c.line_no).where(bl.c.bom_id == order.bom_id)
            ).scalars()
        elif prefix.startswith("PRDL:"):
            pl = self.inputs.table("production_lines")
            numbers = self.inputs.conn.execute(
                sa.select(pl.c.line_no).where(pl.c.order_id == head[len("PRDL:") :])
            ).scalars()
        else:
            return None
        return [f"{prefix}{ref_part('line_no', n)}" for n in numbers if n is not None]

    def supplies_named(self, refs: Sequence[str]) -> list[PegRow]:
        t = sql_table("pegging")
        return self._pegging(t.c.supply_ref.in_(list(refs))) if refs else []

    def sku_pegging(self, item_id: str, warehouse_id: str) -> list[PegRow]:
        return self._pegging(*self._sku(sql_table("pegging"), item_id, warehouse_id))

    # -- result rows

    def _result(
        self,
        name: str,
        make: Callable[[Any], T],
        item_id: str | None,
        warehouse_id: str | None,
        *where: Any,
    ) -> list[T]:
        t = sql_table(name)
        rows = self.conn.execute(
            sa.select(t).where(
                t.c.plan_id == self.plan_id, *self._sku(t, item_id, warehouse_id), *where
            )
        ).mappings()
        return [make(r) for r in rows]

    @staticmethod
    def _planned_order(r: Any) -> PlannedOrderRow:
        return PlannedOrderRow(
            planned_order_id=r["planned_order_id"],
            item_id=r["item_id"],
            warehouse_id=r["warehouse_id"],
            order_type=r["order_type"],
            qty=float(r["qty"]),
            order_date=_date(r["order_date"]),
            due_date=_date(r["due_date"]),
            requirement_date=_date(r["requirement_date"]),
            from_warehouse_id=r["from_warehouse_id"],
            vendor_id=r["vendor_id"],
            bom_id=r["bom_id"],
            firmed=bool(r["firmed"]),
        )

    def planned_orders(self, item_id: str, warehouse_id: str) -> list[PlannedOrderRow]:
        return self._result("planned_orders", self._planned_order, item_id, warehouse_id)

    def order(self, planned_order_id: str) -> PlannedOrderRow | None:
        if planned_order_id not in self._orders:
            po = sql_table("planned_orders")
            found = self._result(
                "planned_orders",
                self._planned_order,
                None,
                None,
                po.c.planned_order_id == planned_order_id,
            )
            if not found:
                fp = self.inputs.table("firmed_planned_orders")
                row = (
                    self.inputs.conn.execute(
                        sa.select(fp).where(fp.c.planned_order_id == planned_order_id)
                    )
                    .mappings()
                    .first()
                )
                if (
                    row is not None
                    and row["order_date"] is not None
                    and row["due_date"] is not None
                ):
                    found = [
                        PlannedOrderRow(
                            planned_order_id,
                            row["item_id"],
                            row["warehouse_id"],
                            row["order_type"] or "",
                            float(row["qty"] or 0.0),
                            _date(row["order_date"]),
                            _date(row["due_date"]),
                            _date(row["due_date"]),
                            row["from_warehouse_id"],
                            None,
                            None,
                            True,
                        )
                    ]
                    self._firmed.add(planned_order_id)
            self._orders[planned_order_id] = found[0] if found else None
        return self._orders[planned_order_id]

    def action_messages(
        self, item_id: str | None = None, warehouse_id: str | None = None
    ) -> list[ActionMessageRow]:
        def make(r: Any) -> ActionMessageRow:
            return ActionMessageRow(
                supply_kind=r["supply_kind"],
                supply_ref=r["supply_ref"],
                item_id=r["item_id"],
                warehouse_id=r["warehouse_id"],
                action=r["action"],
                receipt_date=_date(r["receipt_date"]),
                receipt_qty=float(r["receipt_qty"]),
                suggested_date=_opt_date(r["suggested_date"]),
                suggested_qty=_opt_float(r["suggested_qty"]),
            )

        return self._result("action_messages", make, item_id, warehouse_id)

    @staticmethod
    def _delay(r: Any) -> DelayMessageRow:
        return DelayMessageRow(
            demand_kind=r["demand_kind"],
            demand_ref=r["demand_ref"],
            item_id=r["item_id"],
            warehouse_id=r["warehouse_id"],
            requirement_date=_date(r["requirement_date"]),
            futures_date=_opt_date(r["futures_date"]),
            delay_days=None if r["delay_days"] is None else int(r["delay_days"]),
        )

    def delay_messages(
        self, item_id: str | None = None, warehouse_id: str | None = None
    ) -> list[DelayMessageRow]:
        return self._result("delay_messages", self._delay, item_id, warehouse_id)

    def delay(self, demand_ref: str) -> DelayMessageRow | None:
        dm = sql_table("delay_messages")
        found = self._result(
            "delay_messages", self._delay, None, None, dm.c.demand_ref == demand_ref
        )
        return found[0] if found else None

    def plan_messages(
        self, item_id: str | None = None, warehouse_id: str | None = None
    ) -> list[PlanMessageRow]:
        pm = sql_table("plan_messages")
        where = []
        if item_id is not None:
            where = [
                pm.c.item_id == item_id,
                sa.or_(pm.c.warehouse_id == warehouse_id, pm.c.warehouse_id.is_(None)),
            ]

        def make(r: Any) -> PlanMessageRow:
            return PlanMessageRow(
                r["severity"], r["code"], r["item_id"], r["warehouse_id"], r["text"]
            )

        return self._result("plan_messages", make, None, None, *where)

    # -- inputs

    def existing_receipts(
        self, item_id: str, warehouse_id: str
    ) -> dict[str, tuple[dt.date, float]]:
        out: dict[str, tuple[dt.date, float]] = {}
        t0 = self._t0
        oh = self.inputs.table("on_hand")
        total = self.inputs.conn.execute(
            sa.select(sa.func.sum(oh.c.qty)).where(
                oh.c.item_id == item_id, oh.c.warehouse_id == warehouse_id
            )
        ).scalar()
        if total is not None and float(total) > 0:
            out[f"OH:{item_id}/{warehouse_id}"] = (t0, float(total))
        for name, prefix, ids, wh_col, date_col in RECEIPT_SOURCES:
            t = self.inputs.table(name)
            rows = self.inputs.conn.execute(
                sa.select(*(t.c[c] for c in (*ids, "qty", date_col))).where(
                    t.c.item_id == item_id, t.c[wh_col] == warehouse_id
                )
            ).mappings()
            for r in rows:
                if r["qty"] is None or float(r["qty"]) <= 0 or r[date_col] is None:
                    continue  # no receipt (§5.9 leaves bad rows out; zero is nothing)
                if any(r[c] is None for c in ids):
                    continue
                key = "/".join(ref_part(c, r[c]) for c in ids)
                out[f"{prefix}:{key}"] = (max(_date(r[date_col]), t0), float(r["qty"]))
        return out

    def coverage(
        self, item_id: str, warehouse_id: str
    ) -> tuple[float | None, float | None, float | None]:
        ic = self.inputs.table("item_coverage")
        row = self.inputs.conn.execute(
            sa.select(ic.c.safety_stock_qty, ic.c.min_qty, ic.c.max_qty).where(
                ic.c.item_id == item_id, ic.c.warehouse_id == warehouse_id
            )
        ).first()
        if row is None:
            return None, None, None
        return _opt_float(row[0]), _opt_float(row[1]), _opt_float(row[2])


@contextmanager
def _plan(
    bind: Engine | Connection, plan_id: str, inputs: InputSource | None = None
) -> Iterator[tuple[SqlPlanRows, RunInfo]]:
    """The plan's rows and current run, in one transaction (and the inputs
    in one of their own where they are elsewhere); the contract's NotInPlan
    becomes the connector's, naming the plan."""
    with _reading(bind) as conn, ExitStack() as stack:
        run = current_run(conn, plan_id)
        if inputs is None:
            reader = Inputs(conn)
        else:
            reader = Inputs(stack.enter_context(_reading(inputs[0])), inputs[1])
        try:
            yield SqlPlanRows(conn, plan_id, run.plan_date, reader), run
        except explain.NotInPlan as exc:
            raise NotInPlan(
                str(exc).replace("the plan", f"the current plan of {plan_id!r}", 1)
            ) from None


def net_requirements(
    bind: Engine | Connection,
    item_id: str,
    warehouse_id: str,
    plan_id: str = "main",
    inputs: InputSource | None = None,
) -> NetRequirements:
    """One SKU of the current plan (:func:`masterplan.contract.explain.net_requirements`).

    Raises:
        ViewError: The plan has no written run.
        NotInPlan: The plan has nothing for this SKU.
    """
    with _plan(bind, plan_id, inputs) as (rows, run):
        return explain.net_requirements(rows, run, item_id, warehouse_id)


def pegging_tree(
    bind: Engine | Connection,
    ref: str,
    up: bool = False,
    plan_id: str = "main",
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_nodes: int = MAX_NODES,
    inputs: InputSource | None = None,
) -> PegNode:
    """The pegging tree of a demand, or with ``up`` of a supply
    (:func:`masterplan.contract.explain.pegging_tree`).

    Raises:
        ViewError: The plan has no written run.
        NotInPlan: No pegging row (or delay message) names ``ref``.
    """
    with _plan(bind, plan_id, inputs) as (rows, _run):
        return explain.pegging_tree(rows, ref, up, max_depth, max_nodes)


def delay_path(
    bind: Engine | Connection,
    ref: str,
    plan_id: str = "main",
    inputs: InputSource | None = None,
) -> DelayPath:
    """Why demand ``ref`` is late (:func:`masterplan.contract.explain.delay_path`).

    Raises:
        ViewError: The plan has no written run.
        NotInPlan: ``ref`` is no late demand of the plan (no delay message).
    """
    with _plan(bind, plan_id, inputs) as (rows, _run):
        return explain.delay_path(rows, ref)


def plan_report(
    bind: Engine | Connection,
    plan_id: str = "main",
    top: int = 10,
    charts: int = 6,
    inputs: InputSource | None = None,
) -> PlanReport:
    """What ``masterplan report`` draws (:func:`masterplan.contract.explain.plan_report`).

    Raises:
        ViewError: The plan has no written run.
    """
    with _plan(bind, plan_id, inputs) as (rows, run):
        return explain.plan_report(rows, run, top, charts)
