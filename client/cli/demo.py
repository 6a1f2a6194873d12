"""``masterplan demo``: a sample manufacturer planned end to end, then a summary.

Builds the sample SCM database, runs the real cycle (connector, a server on
loopback, the engine, the atomic write-back) and prints what a planner looks
at first, read back from the written result tables. Then it edits one sales
line in the database, runs a net change (a delta synced, the difference
written) and asks when a new sales line could be delivered (a promise).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from rich.console import Console
from rich.markup import escape
from rich.table import Table as RichTable
from rich.tree import Tree

from masterplan.client.cli.cycle import CycleOptions, CycleReport, run_cycle
from masterplan.client.cli.promise import (
    PromiseOptions,
    PromiseReport,
    format_report,
    promise,
    report_json,
)
from masterplan.connector.demo import build_demo_database
from masterplan.server.embedded import embedded_server
from masterplan.server.pegging import PeggingIndex, PegNode, PegTree

__all__ = ["run_demo"]


def _pegging_arrays(rows: Sequence[Any]) -> dict[str, np.ndarray]:
    cols = (
        "item_id",
        "warehouse_id",
        "supply_kind",
        "supply_ref",
        "supply_date",
        "demand_kind",
        "demand_ref",
        "demand_date",
        "qty",
    )
    out: dict[str, np.ndarray] = {}
    for i, c in enumerate(cols):
        values = [r[i] for r in rows]
        if c.endswith("_date"):
            out[c] = np.array([np.datetime64(v, "D") for v in values], dtype="datetime64[D]")
        elif c == "qty":
            out[c] = np.array(values, dtype=np.float64)
        else:
            out[c] = np.array(values, dtype=object)
    return out


def _deepest_chain(tree: PegTree) -> list[PegNode]:
    """The longest root-to-leaf path: the first deepest node and its parents.

    The tree is walked breadth first with shared subtrees repeated, so that
    the deepest node is a node of the list, and its path is its parents'.
    """
    deepest = max(range(len(tree.nodes)), key=lambda i: tree.nodes[i].depth)
    path: list[PegNode] = []
    i = deepest
    while i >= 0:
        path.append(tree.nodes[i])
        i = tree.nodes[i].parent
    return path[::-1]


def run_demo(db_url: str, as_json: bool = False) -> int:
    """Plan the sample, then a net change after one edited sales line, then a promise.

    One server on loopback serves all three, as a long-running server would:
    the net change syncs a delta and writes the difference to the plan the
    first run wrote.
    """
    plan_date = dt.date.today()
    counts = build_demo_database(db_url, plan_date)
    with embedded_server() as emb, tempfile.TemporaryDirectory() as state:
        options = CycleOptions(
            db_url=db_url,
            server=emb.address,
            api_key=emb.api_key,
            tenant=emb.tenant,
            plan_date=plan_date,
            state_dir=Path(state),
        )
        report = run_cycle(options)
        summary = _summary(db_url)
        edit = _edit_one_sales_line(db_url)
        net = run_cycle(dataclasses.replace(options, mode="net_change"))
        item, warehouse = edit.item, edit.warehouse
        answer = promise(
            PromiseOptions(
                item=item,
                qty=PROMISE_QTY,
                warehouse=warehouse,
                plan_date=plan_date,
                server=emb.address,
                api_key=emb.api_key,
                tenant=emb.tenant,
            )
        )
    if as_json:
        print(json.dumps(_json(counts, report, summary, edit, net, answer)))
        return 0
    _print(Console(), counts, plan_date, report, summary)
    _print_net_change(Console(), edit, net, answer)
    return 0


#: Quantity of the new sales line the demo asks a promise for.
PROMISE_QTY = 40.0


@dataclasses.dataclass(frozen=True, slots=True)
class _Edit:
    """The sales line the demo edits before its net change."""

    ref: str
    item: str
    warehouse: str
    qty_before: float
    qty_after: float


def _edit_one_sales_line(db_url: str) -> _Edit:
    """Raise the quantity of the first sales line, as a planner's ERP would."""
    engine = sa.create_engine(db_url)
    try:
        with engine.begin() as conn:
            order_id, line_no, item, warehouse, qty = conn.execute(
                sa.text(
                    "SELECT order_id, line_no, item_id, warehouse_id, qty FROM sales_lines "
                    "ORDER BY order_id, line_no LIMIT 1"
                )
            ).one()
            after = float(qty) + 25.0
            conn.execute(
                sa.text("UPDATE sales_lines SET qty = :q WHERE order_id = :o AND line_no = :n"),
                {"q": after, "o": order_id, "n": line_no},
            )
    finally:
        engine.dispose()
    return _Edit(f"SO:{order_id}/{int(line_no)}", item, warehouse, float(qty), after)


@dataclasses.dataclass(frozen=True, slots=True)
class _Summary:
    """What the demo reads back from the written plan."""

    current: str
    delays: list[Any]
    actions: list[Any]
    chain: list[PegNode]


def _summary(db_url: str) -> _Summary:
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            current = conn.execute(
                sa.text("SELECT current_run_id FROM plans WHERE plan_id = 'main'")
            ).scalar_one()
            delays = conn.execute(
                sa.text(
                    "SELECT demand_ref, item_id, warehouse_id, requirement_date, futures_date, delay_days "
                    "FROM delay_messages WHERE plan_id = 'main' AND demand_kind = 'so' "
                    "ORDER BY delay_days IS NULL DESC, delay_days DESC, demand_ref LIMIT 5"
                )
            ).all()
            peg_rows = conn.execute(
                sa.text(
                    "SELECT item_id, warehouse_id, supply_kind, supply_ref, supply_date, demand_kind, "
                    "demand_ref, demand_date, qty FROM pegging WHERE plan_id = 'main'"
                )
            ).all()
            actions = conn.execute(
                sa.text(
                    "SELECT action, COUNT(*) FROM action_messages WHERE plan_id = 'main' "
                    "GROUP BY action"
                )
            ).all()
    finally:
        engine.dispose()
    pegging = _pegging_arrays(peg_rows)
    chain: list[PegNode] = []
    index = PeggingIndex(pegging)
    for ref in sorted({r[6] for r in peg_rows if r[5] == "so"}):
        path = _deepest_chain(index.tree(ref, shared=False))
        if len(path) > len(chain):
            chain = path
    return _Summary(current, list(delays), list(actions), chain)


def _json(
    counts: dict[str, int],
    report: CycleReport,
    summary: _Summary,
    edit: _Edit,
    net: CycleReport,
    answer: PromiseReport,
) -> dict[str, Any]:
    return {
        "run_id": summary.current,
        "input_rows": counts,
        "output_rows": report.output_rows,
        "seconds": {k: round(v, 4) for k, v in report.phase_seconds.items()},
        "most_delayed_sales_orders": [
            {"ref": d[0], "item_id": d[1], "warehouse_id": d[2], "delay_days": d[5]}
            for d in summary.delays
        ],
        "pegging_chain": [
            {"kind": n.kind, "ref": n.ref, "item_id": n.item_id, "qty": n.qty}
            for n in summary.chain
        ],
        "net_change": {
            "edited": dataclasses.asdict(edit),
            "run_id": net.run_id,
            "base_run_id": net.base_run_id,
            "sync": dataclasses.asdict(net.sync) if net.sync else None,
            "rows_added": net.rows_added,
            "rows_removed": net.rows_removed,
            "fallback_reason": net.fallback_reason,
            "seconds": {k: round(v, 4) for k, v in net.phase_seconds.items()},
        },
        "promise": report_json(answer),
    }


def _print(
    console: Console,
    counts: dict[str, int],
    plan_date: dt.date,
    report: CycleReport,
    summary: _Summary,
) -> None:
    current, delays, actions, chain = (
        summary.current,
        summary.delays,
        summary.actions,
        summary.chain,
    )
    console.rule("[bold]masterplan demo[/bold]")
    console.print(
        f"Sample manufacturer: {counts.get('items', 0)} items, 2 warehouses, "
        f"{counts.get('sales_lines', 0)} sales lines, {counts.get('purchase_lines', 0)} purchase lines, "
        f"{counts.get('forecasts', 0)} forecast lines; plan date {plan_date}."
    )
    total = sum(report.phase_seconds.values())
    console.print(
        f"Planned through a server on loopback and written back as run [bold]{current}[/bold] "
        f"in {total:.2f} s."
    )
    t = RichTable(title="Plan")
    t.add_column("result")
    t.add_column("rows", justify="right")
    for name, n in report.output_rows.items():
        t.add_row(name.replace("_", " "), str(n))
    for action, n in actions:
        t.add_row(f"  action: {action}", str(n))
    console.print(t)
    d = RichTable(title="Most delayed sales orders")
    for col in ("sales order", "item", "warehouse", "requested", "available", "days late"):
        d.add_column(col)
    for ref, item, wh, req, fut, days in delays:
        d.add_row(
            ref,
            item,
            wh,
            str(req),
            str(fut) if fut else "never",
            str(days) if days is not None else "-",
        )
    console.print(d if delays else "No sales order is delayed.")
    if chain:
        # The chain alternates: a demand, the supply pegged to it, the demand
        # that supply's explosion caused, and so on.
        def label(n: PegNode, depth: int) -> str:
            what = f"{n.item_id}@{n.warehouse_id} {n.qty:g} on {n.date}"
            if depth % 2 == 0:
                return f"needs {what}  [dim]{escape(n.ref)}[/dim]"
            return f"covered by {escape(n.ref)}  [dim]{what}[/dim]"

        tree = Tree(label(chain[0], 0))
        node = tree
        for depth, peg in enumerate(chain[1:], start=1):
            node = node.add(label(peg, depth))
        console.print("Pegging chain from a sales order down the bill of materials:")
        console.print(tree)


def _print_net_change(
    console: Console, edit: _Edit, net: CycleReport, answer: PromiseReport
) -> None:
    console.rule("[bold]net change[/bold]")
    console.print(
        f"Sales line {escape(edit.ref)} ({edit.item} at {edit.warehouse}) changed in the "
        f"SCM database: quantity {edit.qty_before:g} -> {edit.qty_after:g}."
    )
    sync = net.sync
    if sync is not None and sync.kind == "delta":
        sent = (
            f"synced a delta of {sync.rows_upserted} changed row(s) and "
            f"{sync.rows_deleted} removed (found in {sync.detect_seconds:.2f} s)"
        )
    else:
        reason = f" ({sync.reason})" if sync is not None and sync.reason else ""
        sent = f"sent a snapshot{reason}"
    how = f"a difference to run {net.base_run_id}" if net.base_run_id else "a whole plan"
    console.print(
        f"masterplan run --mode net_change {sent}, planned {net.skus_planned} SKUs and wrote "
        f"{how}: {net.rows_added} rows added, {net.rows_removed} removed, "
        f"in {sum(net.phase_seconds.values()):.2f} s."
    )
    if net.fallback_reason:
        console.print(f"[dim]Planned as a regeneration: {escape(net.fallback_reason)}.[/dim]")
    console.rule("[bold]promise[/bold]")
    console.print(
        f"masterplan promise {answer.item} {answer.qty:g} --warehouse {answer.warehouse} "
        "(a simulation: nothing changes)"
    )
    console.print(escape(format_report(answer)))
