"""``masterplan show``, ``peg``, ``why`` and ``report``: the planner's views (SPEC §8).

Each reads the current plan from the SCM database through
:mod:`masterplan.connector.views` or, with ``--server``, asks the server about
a kept run (the same views, computed there), and prints it for a person (rich
tables and trees) or, with ``--json``, for a script. ``report`` writes one
self-contained HTML file.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table as RichTable
from rich.tree import Tree

from masterplan.client.cli.usage import UsageError
from masterplan.contract.views import (
    DelayPath,
    NetRequirements,
    PegNode,
    as_json,
)

__all__ = ["add_view_commands", "format_qty", "peg_label"]


def format_qty(qty: float) -> str:
    """A quantity as a planner reads it: up to 6 significant digits, no float noise."""
    return f"{qty:.6g}" if abs(qty) < 1e15 else f"{qty:.6e}"


def _server(args: argparse.Namespace) -> str | None:
    """The server to ask (``--server``, else ``MASTERPLAN_SERVER`` when no
    ``--db`` is given); None to read the SCM database."""
    if args.server:
        return str(args.server)
    if args.db:
        return None
    return os.environ.get("MASTERPLAN_SERVER")


def _kept_run(args: argparse.Namespace, read: Callable[[Any, str], Any]) -> Any:
    """Ask the server about a kept run: ``--run``, else the plan's newest
    succeeded one. The server's refusals are one line and exit 1 (the
    command line's handler of client errors)."""
    from masterplan.client.cli.main import _client_tls
    from masterplan.client.client import MasterplanClient

    server = _server(args)
    assert server is not None
    key = args.api_key or os.environ.get("MASTERPLAN_API_KEY")
    if not key:
        raise UsageError("--server needs --api-key KEY or MASTERPLAN_API_KEY")
    parent = f"tenants/{args.tenant or '-'}/plans/{args.plan}"
    with MasterplanClient(server, key, tls=_client_tls(args)) as client:
        if args.run:
            name = f"{parent}/runs/{args.run}"
        else:
            kept = client.newest_succeeded_run(parent)
            if kept is None:
                raise SystemExit(f"masterplan: the server holds no succeeded run of {parent}")
            name = kept.name
        return read(client, name)


def _db(args: argparse.Namespace) -> Any:
    from masterplan.client.cli.main import _existing_sqlite
    from masterplan.connector.schema import create_engine

    url = args.db or os.environ.get("MASTERPLAN_DB_URL")
    if not url:
        raise UsageError(
            f"{args.command}: --db URL (or MASTERPLAN_DB_URL) is required, "
            "or --server ADDR (or MASTERPLAN_SERVER) to ask a server"
        )
    _existing_sqlite(url)
    return create_engine(url)


def _answer(args: argparse.Namespace, read: Callable[[Any, Any], Any]) -> Any:
    """Run a view on the database; a view that cannot answer is one line and exit 1.

    The plan is read from ``--results-db`` where the run wrote it there, and
    the inputs the view shows beside it from ``--db``, through ``--source``
    when the run read through a profile; otherwise both from ``--db``.
    """
    from masterplan.client.cli.main import _source
    from masterplan.connector.schema import create_engine
    from masterplan.connector.views import ViewError

    engine = _db(args)
    source = _source(args)
    results_url = args.results_db or os.environ.get("MASTERPLAN_RESULTS_DB_URL")
    plan_engine = create_engine(results_url) if results_url else engine
    inputs = (engine, source) if results_url or source is not None else None
    try:
        return read(plan_engine, inputs)
    except ViewError as exc:
        raise SystemExit(f"masterplan: {exc}") from None
    finally:
        engine.dispose()
        plan_engine.dispose()


# -- show ---------------------------------------------------------------------


#: Columns whose values are never cut: dates and quantities stay on one line,
#: ids and refs fold onto the next rather than lose their ends.
_DATES = {"date", "order date", "due date", "for", "needed", "there", "covered", "type", "kind"}
_DATES |= {"action", "level", "firmed", ""}


def _table(title: str | None, columns: Sequence[str], right: Sequence[str] = ()) -> RichTable:
    t = RichTable(title=title, title_justify="left")
    for col in columns:
        if col in _DATES:
            t.add_column(col, no_wrap=True)
        elif col in right:
            t.add_column(col, justify="right", no_wrap=True)
        else:
            t.add_column(col, overflow="fold")
    return t


def _show_one(console: Console, view: NetRequirements) -> None:
    run = view.run
    console.rule(f"[bold]{escape(view.item_id)}[/bold] at [bold]{escape(view.warehouse_id)}[/bold]")
    console.print(
        f"plan {escape(run.plan_id)}, run {run.run_id} ({run.mode}), plan date {run.plan_date}"
    )
    t = _table(
        "Net requirements",
        ("date", "", "kind", "ref", "qty", "projected"),
        right=("qty", "projected"),
    )
    for line in view.lines:
        receipt = line.side == "receipt"
        proj = format_qty(line.projected)
        t.add_row(
            str(line.date),
            "[green]receipt[/green]" if receipt else "requirement",
            line.kind,
            escape(line.ref),
            ("+" if receipt else "-") + format_qty(line.qty),
            f"[red]{proj}[/red]" if line.projected < 0 else proj,
        )
    console.print(t)
    if view.planned_orders:
        po = _table(
            "Planned orders",
            ("id", "type", "qty", "order date", "due date", "for", "firmed", "source"),
            right=("qty",),
        )
        for o in view.planned_orders:
            late = o.due_date > o.requirement_date
            due = f"[red]{o.due_date}[/red]" if late else str(o.due_date)
            source = o.bom_id or o.vendor_id or o.from_warehouse_id or ""
            po.add_row(
                escape(o.planned_order_id),
                o.order_type,
                format_qty(o.qty),
                str(o.order_date),
                due,
                str(o.requirement_date),
                "yes" if o.firmed else "",
                escape(source),
            )
        console.print(po)
    if view.action_messages:
        am = _table(
            "Action messages", ("action", "receipt", "date", "qty", "suggested"), right=("qty",)
        )
        for a in view.action_messages:
            suggested = (
                str(a.suggested_date) if a.suggested_date else format_qty(a.suggested_qty or 0.0)
            )
            am.add_row(
                a.action,
                escape(a.supply_ref),
                str(a.receipt_date),
                format_qty(a.receipt_qty),
                suggested,
            )
        console.print(am)
    if view.delay_messages:
        dm = _table(
            "Late demands", ("demand", "date", "covered", "days late"), right=("days late",)
        )
        for d in view.delay_messages:
            dm.add_row(
                escape(d.demand_ref),
                str(d.requirement_date),
                str(d.futures_date) if d.futures_date else "[red]never[/red]",
                str(d.delay_days) if d.delay_days is not None else "-",
            )
        console.print(dm)
    for m in view.plan_messages:
        console.print(f"[yellow]{m.severity}[/yellow] {m.code}: {escape(m.text)}")


def cmd_show(args: argparse.Namespace) -> int:
    from masterplan.connector import views

    def read(engine: Any, inputs: Any) -> list[NetRequirements]:
        warehouses = [args.warehouse] if args.warehouse else None
        if warehouses is None:
            warehouses = views.sku_warehouses(engine, args.item, args.plan)
            if not warehouses:
                views.current_run(engine, args.plan)  # no plan at all says so first
                raise views.NotInPlan(
                    f"nothing for item {args.item!r} in the current plan of {args.plan!r}"
                )
        return [
            views.net_requirements(engine, args.item, wh, args.plan, inputs) for wh in warehouses
        ]

    if _server(args):
        if not args.warehouse:
            raise UsageError("with --server, give --warehouse W")
        found = [
            _kept_run(
                args,
                lambda client, name: client.get_net_requirements(name, args.item, args.warehouse),
            )
        ]
    else:
        found = _answer(args, read)
    if args.json:
        print(json.dumps(as_json(found if len(found) > 1 else found[0])))
        return 0
    console = Console()
    for view in found:
        _show_one(console, view)
    return 0


# -- peg ----------------------------------------------------------------------


def peg_label(node: PegNode) -> str:
    """One line of a pegging tree (rich markup)."""
    sku = f"{escape(node.item_id)}@{escape(node.warehouse_id)}"
    what = f"{sku} {format_qty(node.qty)} on {node.date}"
    if node.role == "demand":
        if node.level == 0 and not node.children and node.qty == 0:
            return f"needs {escape(node.ref)}  [dim]{sku} on {node.date}[/dim]  [red]took nothing[/red]"
        return f"needs {escape(node.ref)}  [dim]{what}[/dim]"
    due = ""
    if node.due_date is not None:
        late = node.due_date > node.date
        due = f"  due [red]{node.due_date} (late)[/red]" if late else f"  due {node.due_date}"
    return f"covered by [bold]{escape(node.ref)}[/bold]  [dim]{what}[/dim]{due}"


def _tree(node: PegNode, into: Tree | None = None) -> Tree:
    branch = Tree(peg_label(node)) if into is None else into.add(peg_label(node))
    for child in node.children:
        _tree(child, branch)
    return branch


def cmd_peg(args: argparse.Namespace) -> int:
    from masterplan.connector import views

    if _server(args):
        from masterplan.viewcodec import peg_tree_from_nodes

        def ask(client: Any, name: str) -> PegNode:
            answer = client.get_pegging(
                name, args.ref, args.depth, max_nodes=views.MAX_NODES, up=args.up
            )
            return peg_tree_from_nodes(list(answer.nodes), up=args.up)

        tree = _kept_run(args, ask)
    else:
        tree = _answer(
            args,
            lambda engine, inputs: views.pegging_tree(
                engine,
                args.ref,
                up=args.up,
                plan_id=args.plan,
                max_depth=args.depth,
                inputs=inputs,
            ),
        )
    if args.json:
        print(json.dumps(as_json(tree)))
        return 0
    Console().print(_tree(tree))
    return 0


# -- why ----------------------------------------------------------------------


def print_path(console: Console, path: DelayPath) -> None:
    """A delay path as a planner reads it: the demand, each step down, the cause."""
    d = path.demand
    covered = str(d.futures_date) if d.futures_date else "never"
    late = f"{d.delay_days} days late" if d.delay_days is not None else "never covered"
    console.print(
        f"[bold]{escape(d.demand_ref)}[/bold] ({escape(d.item_id)} at {escape(d.warehouse_id)}) "
        f"needed {d.requirement_date}, covered {covered}: [red]{late}[/red]"
    )
    t = _table(None, ("level", "requirement", "SKU", "needed", "latest supply", "there"))
    for s in path.steps:
        there = str(s.available_date) if s.available_date else "never"
        if s.available_date is None or s.available_date > s.requirement_date:
            there = f"[red]{there}[/red]"
        t.add_row(
            str(s.level),
            escape(s.demand_ref),
            f"{escape(s.item_id)}@{escape(s.warehouse_id)}",
            str(s.requirement_date),
            escape(s.supply_ref or "none"),
            there,
        )
    console.print(t)
    console.print(f"Cause: {escape(path.cause)}")


def cmd_why(args: argparse.Namespace) -> int:
    from masterplan.connector import views

    if _server(args):
        path = _kept_run(args, lambda client, name: client.explain_delay(name, args.ref))
    else:
        path = _answer(
            args, lambda engine, inputs: views.delay_path(engine, args.ref, args.plan, inputs)
        )
    if args.json:
        print(json.dumps(as_json(path)))
        return 0
    print_path(Console(), path)
    return 0


# -- report -------------------------------------------------------------------


def cmd_report(args: argparse.Namespace) -> int:
    from masterplan.client.report import render_report
    from masterplan.connector import views

    if _server(args):
        report = _kept_run(
            args, lambda client, name: client.get_plan_report(name, args.top, args.charts)
        )
    else:
        report = _answer(
            args,
            lambda engine, inputs: views.plan_report(
                engine, args.plan, args.top, args.charts, inputs
            ),
        )
    out = Path(args.out)
    out.write_text(render_report(report), encoding="utf-8")
    if args.json:
        print(
            json.dumps(
                {
                    "out": str(out),
                    "run_id": report.run.run_id,
                    "delays": len(report.delays),
                    "charts": len(report.charts),
                }
            )
        )
    else:
        print(
            f"wrote {out}: run {report.run.run_id}, {len(report.delays)} delayed demand(s), "
            f"{len(report.action_messages)} action message(s), {len(report.charts)} chart(s)"
        )
    return 0


# -- the parsers --------------------------------------------------------------


def _common(p: argparse.ArgumentParser) -> None:
    from masterplan.client.cli.main import _add_source, _add_tls_client

    p.add_argument("--db", help="SQLAlchemy URL of the SCM database (or MASTERPLAN_DB_URL)")
    p.add_argument(
        "--results-db",
        help="where `run --results-db` wrote the plan (or MASTERPLAN_RESULTS_DB_URL; "
        "default: --db)",
    )
    _add_source(p)
    p.add_argument(
        "--server", help="host:port of a server to ask about a kept run (or MASTERPLAN_SERVER)"
    )
    p.add_argument("--api-key", help="tenant API key, with --server (or MASTERPLAN_API_KEY)")
    p.add_argument("--tenant", help="tenant id in resource names (default: the key's own)")
    p.add_argument(
        "--run", help="with --server, the run to ask about (default: the plan's newest succeeded)"
    )
    p.add_argument("--plan", default="main", help="plan id (default: main)")
    p.add_argument("--json", action="store_true", help="print a machine-readable answer")
    _add_tls_client(p)


def _depth(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def add_view_commands(sub: Any) -> None:
    """Add ``show``, ``peg``, ``why`` and ``report`` to the command line."""
    from masterplan.connector.views import DEFAULT_MAX_DEPTH

    p = sub.add_parser(
        "show",
        help="an item's net requirements in the current plan (requirements, receipts, "
        "projected quantity, planned orders, messages)",
    )
    p.add_argument("item", help="item id")
    p.add_argument("--warehouse", help="one warehouse (default: every warehouse of the item)")
    _common(p)
    p.set_defaults(func=cmd_show)

    p = sub.add_parser(
        "peg",
        help="the pegging tree of a demand down to purchased parts and on-hand, or "
        "of a supply up to the end demands it serves (--up)",
    )
    p.add_argument("ref", help="a demand or supply ref, e.g. SO:1001/1 or PL:FG/W1/1")
    p.add_argument("--up", action="store_true", help="from a supply up to its end demands")
    p.add_argument(
        "--depth",
        type=_depth,
        default=DEFAULT_MAX_DEPTH,
        help=f"BOM levels to follow (default: {DEFAULT_MAX_DEPTH})",
    )
    _common(p)
    p.set_defaults(func=cmd_peg)

    p = sub.add_parser("why", help="why a demand is late: the path of delays down to its cause")
    p.add_argument("ref", help="a late demand's ref, e.g. SO:1001/1")
    _common(p)
    p.set_defaults(func=cmd_why)

    p = sub.add_parser(
        "report", help="one self-contained HTML report of the current plan, with charts"
    )
    p.add_argument("--out", default="plan.html", help="file to write (default: plan.html)")
    p.add_argument("--top", type=_depth, default=10, help="delayed demands to explain (default 10)")
    p.add_argument("--charts", type=_depth, default=6, help="SKUs to chart (default 6)")
    _common(p)
    p.set_defaults(func=cmd_report)
