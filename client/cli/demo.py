"""``masterplan demo``: a sample manufacturer planned end to end, then a summary.

Builds the sample SCM database, runs the real cycle (connector, a server on
loopback, the engine, the atomic write-back) and prints what a planner looks
at first, read back from the written result tables.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import sqlalchemy as sa
from rich.console import Console
from rich.markup import escape
from rich.table import Table as RichTable
from rich.tree import Tree

from masterplan.client.cli.cycle import CycleOptions, run_cycle
from masterplan.connector.demo import build_demo_database
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
    console = Console()
    plan_date = dt.date.today()
    counts = build_demo_database(db_url, plan_date)
    report = run_cycle(CycleOptions(db_url=db_url, plan_date=plan_date))
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            current = conn.execute(
                sa.text("SELECT current_run_id FROM plans WHERE plan_id = 'main'")
            ).scalar_one()
            delays = conn.execute(
                sa.text(
                    "SELECT demand_ref, item_id, warehouse_id, requirement_date, futures_date, delay_days "
                    "FROM delay_messages WHERE run_id = :r AND demand_kind = 'so' "
                    "ORDER BY delay_days IS NULL DESC, delay_days DESC, demand_ref LIMIT 5"
                ),
                {"r": current},
            ).all()
            peg_rows = conn.execute(
                sa.text(
                    "SELECT item_id, warehouse_id, supply_kind, supply_ref, supply_date, demand_kind, "
                    "demand_ref, demand_date, qty FROM pegging WHERE run_id = :r"
                ),
                {"r": current},
            ).all()
            actions = conn.execute(
                sa.text(
                    "SELECT action, COUNT(*) FROM action_messages WHERE run_id = :r GROUP BY action"
                ),
                {"r": current},
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
    if as_json:
        print(
            json.dumps(
                {
                    "run_id": current,
                    "input_rows": counts,
                    "output_rows": report.output_rows,
                    "seconds": {k: round(v, 4) for k, v in report.phase_seconds.items()},
                    "most_delayed_sales_orders": [
                        {"ref": d[0], "item_id": d[1], "warehouse_id": d[2], "delay_days": d[5]}
                        for d in delays
                    ],
                    "pegging_chain": [
                        {"kind": n.kind, "ref": n.ref, "item_id": n.item_id, "qty": n.qty}
                        for n in chain
                    ],
                }
            )
        )
        return 0
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
    return 0
