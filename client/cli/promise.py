"""``masterplan promise``: when could a new sales line be delivered (SPEC §6, §8)?

The command simulates one new sales line on the plan's data and prints the
date the plan could cover it, the supplies pegged to it and how many planned
orders the plan would change for it. Nothing changes anywhere: neither the
server's data set and runs nor the SCM database.

Two ways to reach the data:

- ``--server ADDR``: the server holds the plan's data set already; the
  simulation runs there against the plan's newest succeeded run. The client
  does not see the data, so ``--warehouse`` is required, and the new line's
  order id is checked against the demands of that run only.
- ``--db URL``: the SCM database is read, uploaded to an embedded server on
  loopback, planned once as it is (so that the difference is against the
  current data, not against an empty plan), and the new line simulated on
  top. The warehouse defaults to the only one the item has SKUs in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from masterplan.client import errors
from masterplan.client.cli.progress import CycleProgress
from masterplan.client.cli.usage import UsageError
from masterplan.client.client import ClientTls, MasterplanClient
from masterplan.connector.profile import SourceProfile
from masterplan.connector.reader import read_input
from masterplan.connector.schema import create_engine
from masterplan.contract.columns import Table, table_length
from masterplan.contract.rows import from_rows
from masterplan.contract.tables import INPUT_TABLES
from masterplan.server.embedded import embedded_server
from masterplan.v1 import planning_pb2

__all__ = [
    "PROMISE_ORDER",
    "PromiseError",
    "PromiseOptions",
    "PromiseReport",
    "choose_warehouse",
    "format_report",
    "free_order_id",
    "item_warehouses",
    "promise",
    "report_json",
]

#: Order id of the simulated sales line; ``PROMISE-2``, ``PROMISE-3``, ...
#: when the data holds a sales line with that id already (line 1).
PROMISE_ORDER = "PROMISE"

#: Order ids tried before giving up (a database full of PROMISE-n lines).
MAX_ORDER_TRIES = 1000

#: Tables and columns whose rows name a SKU (SPEC §5.2), for the warehouse
#: default: (table, item column, warehouse columns).
_SKU_COLUMNS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("item_coverage", "item_id", ("warehouse_id",)),
    ("on_hand", "item_id", ("warehouse_id",)),
    ("sales_lines", "item_id", ("warehouse_id",)),
    ("purchase_lines", "item_id", ("warehouse_id",)),
    ("production_orders", "item_id", ("warehouse_id",)),
    ("production_lines", "component_item_id", ("warehouse_id",)),
    ("transfer_lines", "item_id", ("from_warehouse_id", "to_warehouse_id")),
    ("forecasts", "item_id", ("warehouse_id",)),
    ("firmed_planned_orders", "item_id", ("warehouse_id", "from_warehouse_id")),
)


class PromiseError(Exception):
    """The question cannot be asked as given (an unknown item, no warehouse)."""


@dataclass(frozen=True, slots=True)
class PromiseOptions:
    """What ``masterplan promise`` was asked.

    Attributes:
        item: The item of the new sales line.
        qty: Its quantity.
        warehouse: Its warehouse; None for the only one of the item (``--db``).
        date: Its requested date; None for the plan date.
        plan: The plan's id.
        plan_date: T0; None for the plan date of the plan's newest succeeded
            run (``--server``) or today.
        default_group: Coverage group of SKUs that name none.
        db_url: The SCM database, planned on an embedded server.
        source: Read ``db_url`` through this source profile (SPEC §4).
        server: A server that holds the plan's data set.
        api_key: The tenant key (with ``server``).
        tenant: The tenant in resource names; None for the key's own.
        tls: TLS material for the channel to ``server``.
    """

    item: str
    qty: float
    warehouse: str | None = None
    date: dt.date | None = None
    plan: str = "main"
    plan_date: dt.date | None = None
    default_group: str | None = None
    db_url: str | None = None
    server: str | None = None
    api_key: str | None = None
    tenant: str | None = None
    tls: ClientTls | None = None
    source: SourceProfile | None = None


@dataclass(slots=True)
class PromiseReport:
    """The answer, for the readable block and ``--json``."""

    item: str
    warehouse: str
    qty: float
    order_id: str
    requested_date: dt.date
    plan: str
    plan_date: str
    promise: planning_pb2.DemandPromise
    base_run_id: str
    planned_orders_added: int
    planned_orders_removed: int
    rows_added: int
    rows_removed: int
    supplies: list[dict[str, Any]] = field(default_factory=list)
    #: Planned on an embedded server (``--db``): the base run is the plan of
    #: the database's data as it is, made for this question and gone after.
    embedded: bool = False

    @property
    def ref(self) -> str:
        return f"SO:{self.order_id}/1"

    @property
    def planned_orders_net(self) -> int:
        """How many more planned orders the plan would hold.

        Planned order ids count per SKU in creation order, so one new line
        renumbers the orders after it: rows added and removed overstate
        what changed, their balance does not.
        """
        return self.planned_orders_added - self.planned_orders_removed


# -- the data side (--db) ------------------------------------------------------------
def _strings(column: np.ndarray) -> list[str]:
    return [v for v in column.tolist() if isinstance(v, str)]


def item_warehouses(tables: dict[str, Table], item: str) -> list[str]:
    """The warehouses the item has SKUs in: every warehouse a row of it names (SPEC §5.2)."""
    found: set[str] = set()
    for name, item_col, wh_cols in _SKU_COLUMNS:
        table = tables[name]
        mine = table[item_col] == item
        for col in wh_cols:
            found.update(_strings(table[col][mine]))
    return sorted(found)


def choose_warehouse(tables: dict[str, Table], item: str, asked: str | None) -> str:
    """``asked``, or the item's only warehouse.

    Raises:
        PromiseError: the item is unknown, or has SKUs in no or several
            warehouses and none was asked for (the message lists them).
    """
    if item not in set(_strings(tables["items"]["item_id"])):
        raise PromiseError(f"item {item!r} is not in the items table")
    if asked:
        return asked
    found = item_warehouses(tables, item)
    if len(found) == 1:
        return found[0]
    if not found:
        known = ", ".join(sorted(set(_strings(tables["warehouses"]["warehouse_id"]))))
        raise PromiseError(
            f"item {item!r} has no SKU in any warehouse: give --warehouse W (warehouses: {known})"
        )
    raise PromiseError(
        f"item {item!r} is in several warehouses, give --warehouse W: {', '.join(found)}"
    )


def _order_ids() -> Iterator[str]:
    """``PROMISE``, ``PROMISE-2``, ``PROMISE-3``, ... (:data:`MAX_ORDER_TRIES` of them)."""
    yield PROMISE_ORDER
    for n in range(2, MAX_ORDER_TRIES + 1):
        yield f"{PROMISE_ORDER}-{n}"


def free_order_id(taken: set[str]) -> str:
    """The first of :func:`_order_ids` whose line 1 is not in ``taken`` (refs).

    Raises:
        PromiseError: every one is taken.
    """
    for order_id in _order_ids():
        if f"SO:{order_id}/1" not in taken:
            return order_id
    raise PromiseError(f"sales lines {PROMISE_ORDER} to {order_id} exist already")


def _sales_refs(lines: Table) -> set[str]:
    """Refs of the data's sales lines whose line number is 1 (the only one we take)."""
    ones = lines["line_no"] == 1
    return {f"SO:{order}/1" for order in _strings(lines["order_id"][ones])}


def _sales_line(order_id: str, item: str, warehouse: str, qty: float, date: dt.date) -> Table:
    return from_rows(
        INPUT_TABLES["sales_lines"],
        [
            {
                "order_id": order_id,
                "line_no": 1,
                "item_id": item,
                "warehouse_id": warehouse,
                "qty": qty,
                "requested_date": date,
                "priority": 0,
            }
        ],
    )


# -- the server side (--server) ---------------------------------------------------------
def _taken_on_server(client: MasterplanClient, run: planning_pb2.PlanRun | None) -> set[str]:
    """The candidate refs that are demands of the server's newest plan.

    The server does not hand its data set out; a ref that the run pegs is a
    sales line of it. A line the run did not peg (zero quantity, beyond the
    coverage fence) goes unseen: then the simulation would replace it.
    """
    if run is None:
        return set()
    taken: set[str] = set()
    for order_id in _order_ids():
        ref = f"SO:{order_id}/1"
        try:
            client.get_pegging(run.name, ref, max_depth=1, max_nodes=1)
        except (errors.NotFound, errors.FailedPrecondition):
            # not a demand of the run, or its results are no longer held
            return taken
        taken.add(ref)
    return taken


# -- the question ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Target:
    """Where the simulation runs and what the new line looks like there."""

    client: MasterplanClient
    parent: str
    warehouse: str
    plan_date: dt.date
    taken: set[str]


def _on_server(options: PromiseOptions, stack: ExitStack) -> _Target:
    """The server that holds the plan's data set; it answers for its newest run."""
    if not options.warehouse:
        raise UsageError("with --server, give --warehouse W: the data set is on the server")
    assert options.server is not None
    client = stack.enter_context(MasterplanClient(options.server, options.api_key, tls=options.tls))
    parent = f"tenants/{options.tenant or '-'}/plans/{options.plan}"
    base = client.newest_succeeded_run(parent)
    plan_date = options.plan_date or (
        dt.date.fromisoformat(base.plan_date) if base is not None else dt.date.today()
    )
    return _Target(client, parent, options.warehouse, plan_date, _taken_on_server(client, base))


def _embedded(options: PromiseOptions, stack: ExitStack, show: CycleProgress) -> _Target:
    """An embedded server holding the database's data, planned once as it is
    (read, upload and plan shown as ``run`` shows them)."""
    assert options.db_url is not None
    show.begin("read")
    tables = _read(options.db_url, options.source, lambda _name, n: show.advance("read", n))
    show.end("read")
    warehouse = choose_warehouse(tables, options.item, options.warehouse)
    plan_date = options.plan_date or dt.date.today()
    emb = stack.enter_context(embedded_server())
    client = stack.enter_context(MasterplanClient(emb.address, emb.api_key))
    parent = f"tenants/{emb.tenant}/plans/{options.plan}"
    show.begin("upload", sum(table_length(t) for t in tables.values()))
    client.upload(
        parent,
        tables.items(),
        on_chunk=lambda _name, n: show.advance("upload", n),
        checks=False,  # planned at once: the run reports the same
    )
    show.end("upload")
    show.begin("plan")
    _plan_as_is(client, parent, plan_date, options.default_group, show)
    show.end("plan")
    return _Target(client, parent, warehouse, plan_date, _sales_refs(tables["sales_lines"]))


def promise(options: PromiseOptions, progress: CycleProgress | None = None) -> PromiseReport:
    """Simulate the new sales line and collect the answer; ``progress``
    shows the reading, planning and simulating (SPEC §8: long work shows
    progress on a terminal).

    Raises:
        PromiseError: the question cannot be asked of the plan's data
            (an unknown item, no warehouse).
        UsageError: the question is given wrongly (a quantity that is not
            positive, neither or both of a server and a database).
        connector.errors.SchemaMismatch: a table or column is missing (``--db``).
        client.errors.MasterplanClientError: the server refused or failed.
    """
    if options.qty <= 0:
        raise UsageError(f"the quantity must be positive, not {options.qty:g}")
    if bool(options.server) == bool(options.db_url):
        raise UsageError("give either --server ADDR (with --api-key) or --db URL")
    show = progress or CycleProgress()
    try:
        with ExitStack() as stack:
            target = (
                _on_server(options, stack) if options.server else _embedded(options, stack, show)
            )
            order_id = free_order_id(target.taken)
            requested = options.date or target.plan_date
            line = _sales_line(order_id, options.item, target.warehouse, options.qty, requested)
            show.begin("simulate")
            response = target.client.simulate(
                target.parent,
                upserts=[("sales_lines", line)],
                plan_date=target.plan_date,
                default_group=options.default_group,
                demand_refs=[f"SO:{order_id}/1"],
            )
            show.end("simulate")
    finally:
        show.close()
    return _report(options, target.warehouse, order_id, requested, response)


def _report(
    options: PromiseOptions,
    warehouse: str,
    order_id: str,
    requested: dt.date,
    response: planning_pb2.SimulateResponse,
) -> PromiseReport:
    (answer,) = response.promises
    return PromiseReport(
        item=options.item,
        warehouse=warehouse,
        qty=options.qty,
        order_id=order_id,
        requested_date=requested,
        plan=options.plan,
        plan_date=response.plan_date,
        promise=answer,
        base_run_id=response.base_run_id,
        planned_orders_added=response.added_counts.get("planned_orders", 0),
        planned_orders_removed=response.removed_counts.get("planned_orders", 0),
        rows_added=response.rows_added,
        rows_removed=response.rows_removed,
        supplies=[
            {"kind": s.kind, "ref": s.ref, "date": s.date, "qty": s.qty, "planned": s.planned}
            for s in answer.supplies
        ],
        embedded=not options.server,
    )


def _read(
    url: str, source: SourceProfile | None, on_chunk: Callable[[str, int], None] | None = None
) -> dict[str, Table]:
    """Every input table of the SCM database; reading writes nothing."""
    engine = create_engine(url)
    try:
        return read_input(engine, on_chunk=on_chunk, source=source)
    finally:
        engine.dispose()


def _plan_as_is(
    client: MasterplanClient,
    parent: str,
    plan_date: dt.date,
    default_group: str | None,
    show: CycleProgress,
) -> None:
    """Plan the uploaded data once, so that the simulation has a run to compare with.

    The result stays on the embedded server; its chunks are read off the
    stream and dropped. The engine's progress goes to ``show``.
    """
    request = planning_pb2.RunPlanRequest(
        parent=parent, plan_date=plan_date.isoformat(), default_group=default_group or ""
    )
    for event in client.run_plan_events(request):
        if event.WhichOneof("event") == "progress":
            show.fraction("plan", event.progress.fraction, event.progress.phase)


# -- output ---------------------------------------------------------------------------------
def _qty(value: float) -> str:
    return f"{value:g}"


def format_report(report: PromiseReport) -> str:
    """The readable block: the date, the pegged supplies, the planned orders changed."""
    p = report.promise
    requested = report.requested_date.isoformat()
    if p.never_covered or p.unknown:
        answer = f"cannot be covered (requested {requested})"
    elif p.delay_days > 0:
        answer = (
            f"can be delivered on {p.futures_date} "
            f"({p.delay_days} days after the requested {p.requirement_date})"
        )
    else:
        answer = f"on time, on {p.futures_date}"
    if p.requirement_date and p.requirement_date != requested:
        answer += f"; requested {requested}, counted from the plan date {p.requirement_date}"
    lines = [f"{report.item} x {_qty(report.qty)} at {report.warehouse}: {answer}"]
    if report.supplies:
        lines.append("  pegged supplies:")
        for s in report.supplies:
            label = "planned" if s["planned"] else "existing"
            lines.append(f"    {label:8}  {s['ref']:32} {s['date']:10} {_qty(s['qty']):>12}")
    else:
        lines.append("  no supply is pegged to it")
    if report.embedded:
        against = "the data as it is"
    else:
        against = f"run {report.base_run_id}" if report.base_run_id else "an empty plan"
    lines.append(
        f"  the plan would have {report.planned_orders_net:+d} planned order(s): "
        f"{report.planned_orders_added} added, {report.planned_orders_removed} removed "
        f"(plan {report.plan} on {report.plan_date}, against {against})"
    )
    return "\n".join(lines)


def report_json(report: PromiseReport) -> dict[str, Any]:
    """The machine-readable answer of ``--json``."""
    p = report.promise
    never = p.never_covered or p.unknown
    return {
        "item": report.item,
        "warehouse": report.warehouse,
        "qty": report.qty,
        "ref": report.ref,
        "requested_date": report.requested_date.isoformat(),
        "requirement_date": p.requirement_date or None,
        "futures_date": p.futures_date or None,
        "delay_days": p.delay_days,
        "on_time": not never and p.delay_days == 0,
        "never_covered": never,
        "supplies": report.supplies,
        "plan": report.plan,
        "plan_date": report.plan_date,
        "base_run_id": None if report.embedded else report.base_run_id or None,
        "planned_orders_added": report.planned_orders_added,
        "planned_orders_removed": report.planned_orders_removed,
        "planned_orders_net": report.planned_orders_net,
        "rows_added": report.rows_added,
        "rows_removed": report.rows_removed,
    }
