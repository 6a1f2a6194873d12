"""``masterplan runs list|get|cancel`` and ``masterplan plans list|get|delete``:
the API's read side on the command line (SPEC §3, §8).

Both act as a tenant on a server (``--server`` or ``MASTERPLAN_SERVER``,
``--api-key`` or ``MASTERPLAN_API_KEY``) and print for a person or, with
``--json``, one JSON document for a script.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from typing import Any

from masterplan.client.cli.usage import UsageError

__all__ = ["add_resource_commands", "plan_json", "run_json"]


def _when(ts: Any) -> str | None:
    if not ts.seconds and not ts.nanos:
        return None
    return str(ts.ToDatetime().isoformat() + "Z")


def run_json(run: Any) -> dict[str, Any]:
    """A PlanRun resource as JSON values."""
    from masterplan.v1 import planning_pb2
    from masterplan.viewcodec import mode_name

    return {
        "name": run.name,
        "run_id": run.run_id,
        "state": planning_pb2.PlanRun.State.Name(run.state),
        "mode": mode_name(run.mode),
        "plan_date": run.plan_date,
        "create_time": _when(run.create_time),
        "end_time": _when(run.end_time),
        "dataset_version": run.dataset_version,
        "base_run_id": run.base_run_id or None,
        "rows": dict(run.row_counts),
        "rows_added": run.rows_added,
        "rows_removed": run.rows_removed,
        "skus_planned": run.skus_planned,
        "skus_total": run.skus_total,
        "fallback_reason": run.fallback_reason or None,
        "error": run.error or None,
        "results_kept": run.results_kept,
    }


def plan_json(plan: Any) -> dict[str, Any]:
    """A Plan resource as JSON values."""
    return {
        "name": plan.name,
        "dataset_version": plan.dataset_version,
        "dataset_etag": plan.dataset_etag or None,
        "upload_time": _when(plan.upload_time),
        "input_rows": plan.input_rows,
        "result_rows": plan.result_rows,
        "bytes_held": plan.bytes_held,
        "run_count": plan.run_count,
        "last_run": run_json(plan.last_run) if plan.HasField("last_run") else None,
    }


def _client(args: argparse.Namespace) -> Any:
    from masterplan.client.cli.main import _client_tls
    from masterplan.client.client import MasterplanClient

    server = args.server or os.environ.get("MASTERPLAN_SERVER")
    if not server:
        raise UsageError(f"{args.command}: --server ADDR (or MASTERPLAN_SERVER) is required")
    key = args.api_key or os.environ.get("MASTERPLAN_API_KEY")
    if not key:
        raise UsageError(f"{args.command}: --api-key KEY (or MASTERPLAN_API_KEY) is required")
    return MasterplanClient(server, key, tls=_client_tls(args))


def _run_line(run: dict[str, Any]) -> str:
    rows = sum(run["rows"].values())
    what = f"{run['run_id']}  {run['state']:<9}  {run['mode']:<12}  plan date {run['plan_date']}"
    if run["state"] == "SUCCEEDED":
        what += f"  {rows} rows" + ("  (results kept)" if run["results_kept"] else "")
    if run["error"]:
        what += f"  ({run['error']})"
    return what


def cmd_runs(args: argparse.Namespace) -> int:
    tenant = args.tenant or "-"
    parent = f"tenants/{tenant}/plans/{args.plan}"
    with _client(args) as client:
        if args.action == "list":
            runs = [run_json(r) for r in client.list_runs(parent)]
            if args.json:
                print(json.dumps(runs))
            else:
                for run in runs:
                    print(_run_line(run))
            return 0
        if not args.run:
            raise UsageError(f"runs {args.action} needs a RUN id")
        name = f"{parent}/runs/{args.run}"
        run = run_json(client.get_run(name) if args.action == "get" else client.cancel_run(name))
    if args.json:
        print(json.dumps(run))
    elif args.action == "cancel":
        print(f"run {run['run_id']}: cancel requested ({run['state']})")
    else:
        print(_run_line(run))
        for key in ("create_time", "end_time", "dataset_version", "base_run_id", "fallback_reason"):
            if run[key] is not None:
                print(f"  {key.replace('_', ' ')}: {run[key]}")
        for table, n in run["rows"].items():
            print(f"  {table}: {n} rows")
    return 0


def _plan_line(plan: dict[str, Any]) -> str:
    last = plan["last_run"]
    newest = f"last run {last['run_id']} {last['state']}" if last else "no run"
    return (
        f"{plan['name'].rsplit('/', 1)[-1]}  data set v{plan['dataset_version']}  "
        f"{plan['input_rows']} input rows  {plan['result_rows']} result rows  "
        f"{plan['bytes_held'] / 2**20:.1f} MiB  {newest}"
    )


def cmd_plans(args: argparse.Namespace) -> int:
    tenant = args.tenant or "-"
    with _client(args) as client:
        if args.action == "list":
            plans = [plan_json(p) for p in client.list_plans(f"tenants/{tenant}")]
            print(json.dumps(plans) if args.json else "\n".join(_plan_line(p) for p in plans))
            return 0
        if not args.plan:
            raise UsageError(f"plans {args.action} needs a PLAN id")
        name = f"tenants/{tenant}/plans/{args.plan}"
        if args.action == "get":
            plan = plan_json(client.get_plan(name))
            print(json.dumps(plan) if args.json else _plan_line(plan))
            return 0
        if not args.yes and not _confirmed(f"delete plan {args.plan} with its data and runs?"):
            raise SystemExit("masterplan: not deleted (give --yes to delete without asking)")
        client.delete_plan(name)
    print(
        json.dumps({"plan": args.plan, "deleted": True})
        if args.json
        else f"plan {args.plan} deleted"
    )
    return 0


def _confirmed(question: str, ask: Callable[[str], str] = input) -> bool:
    """Ask on a terminal; without one, the answer is no (scripts give --yes)."""
    import sys

    if not sys.stdin.isatty():
        return False
    try:
        return ask(f"{question} [y/N] ").strip().lower() in ("y", "yes")
    except EOFError:
        return False


def _common(p: argparse.ArgumentParser) -> None:
    from masterplan.client.cli.main import _add_tls_client

    p.add_argument("--server", help="host:port of the server (or MASTERPLAN_SERVER)")
    p.add_argument("--api-key", help="tenant API key (or MASTERPLAN_API_KEY)")
    p.add_argument("--tenant", help="tenant id in resource names (default: the key's own)")
    p.add_argument("--json", action="store_true", help="print a machine-readable answer")
    _add_tls_client(p)


def add_resource_commands(sub: Any) -> None:
    """Add ``runs`` and ``plans`` to the command line."""
    p = sub.add_parser("runs", help="a plan's runs on a server: list, get, cancel")
    p.add_argument("action", choices=("list", "get", "cancel"))
    p.add_argument("run", nargs="?", help="run id (get, cancel)")
    p.add_argument("--plan", default="main", help="plan id (default: main)")
    _common(p)
    p.set_defaults(func=cmd_runs)

    p = sub.add_parser("plans", help="the tenant's plans on a server: list, get, delete")
    p.add_argument("action", choices=("list", "get", "delete"))
    p.add_argument("plan", nargs="?", help="plan id (get, delete)")
    p.add_argument("--yes", action="store_true", help="delete without asking")
    _common(p)
    p.set_defaults(func=cmd_plans)
