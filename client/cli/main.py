"""The ``masterplan`` command line (SPEC §8).

Exit status 0 on success; on failure one line ``masterplan: <reason>`` on
stderr and a non-zero status (2 for usage errors, 1 otherwise). A refused key
prints ``UNAUTHENTICATED``. ``run --fail-on error|warning`` exits 3 when the
plan it wrote holds plan messages of that severity (``error``: a BOM cycle;
``warning``: any), with one line saying how many: the plan is written all
the same, so a script can tell "not planned" (1) from "planned, look at it" (3).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from masterplan import __version__
from masterplan.client.cli.usage import USAGE_STATUS, Parser, UsageError
from masterplan.client.errors import MasterplanClientError

if TYPE_CHECKING:
    from masterplan.client.cli.cycle import CycleReport
    from masterplan.client.cli.syncing import SyncReport
    from masterplan.server.config import ServerConfig, TlsConfig
    from masterplan.tenancy.quotas import Quotas

__all__ = ["main"]

DEFAULT_SERVER = "127.0.0.1:50151"


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date YYYY-MM-DD: {text!r}") from None


def _plan_date(text: str) -> dt.date:
    """A ``--plan-date``, refused before any work when a plan could not be dated there."""
    from masterplan.contract.dates import plan_date_problem

    day = _date(text)
    problem = plan_date_problem(day)
    if problem is not None:
        raise argparse.ArgumentTypeError(problem)
    return day


def _count(text: str) -> int:
    """A whole number of 0 or more, refused up front (before any work) otherwise."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def _read(path: str | None) -> bytes | None:
    return Path(path).read_bytes() if path else None


def _admin_key(args: argparse.Namespace) -> str:
    if getattr(args, "admin_key_file", None):
        return Path(args.admin_key_file).read_text().strip()
    key = os.environ.get("MASTERPLAN_ADMIN_KEY", "")
    if not key:
        raise UsageError("no admin credential: use --admin-key-file F or MASTERPLAN_ADMIN_KEY")
    return key


def _client_tls(args: argparse.Namespace) -> Any:
    from masterplan.client.client import ClientTls

    if not getattr(args, "tls_ca", None):
        return None
    return ClientTls(_read(args.tls_ca), _read(args.tls_client_cert), _read(args.tls_client_key))


def _add_tls_client(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tls-ca", help="PEM of the CA that signed the server (enables TLS)")
    p.add_argument("--tls-client-cert", help="PEM client certificate, for mutual TLS")
    p.add_argument("--tls-client-key", help="PEM client key, for mutual TLS")


def _add_source(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--source",
        metavar="PROFILE",
        help="read the SCM data through a source profile: a shipped one "
        "(odoo17, odoo18) or a .toml file (SPEC §4)",
    )
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a parameter of the source profile (repeatable)",
    )


def _source(args: argparse.Namespace) -> Any:
    """The source profile ``--source`` names, its ``--param`` values applied."""
    from masterplan.connector.profile import load_profile, parse_params

    if not args.source:
        if args.param:
            raise UsageError("--param needs --source PROFILE")
        return None
    return load_profile(args.source, parse_params(args.param))


def _progress(enabled: bool) -> Any:
    """Progress bars on a terminal, nothing otherwise."""
    from masterplan.client.cli.progress import CycleProgress, TerminalProgress

    return TerminalProgress() if enabled and sys.stderr.isatty() else CycleProgress()


# -- commands -------------------------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    from masterplan.client.cli.cycle import CycleOptions, run_cycle

    # Connection strings and keys may come from the environment (SPEC §8),
    # so that secrets stay off the command line.
    db_url = args.db or os.environ.get("MASTERPLAN_DB_URL")
    if not db_url:
        raise UsageError("run: --db URL (or MASTERPLAN_DB_URL) is required")
    server = args.server or os.environ.get("MASTERPLAN_SERVER")
    api_key = args.api_key or os.environ.get("MASTERPLAN_API_KEY")
    if server and not api_key:
        raise UsageError("--server needs --api-key KEY or MASTERPLAN_API_KEY")
    _existing_sqlite(db_url)
    # The results database may be new: SQLite then creates the file.
    results_db_url = args.results_db or os.environ.get("MASTERPLAN_RESULTS_DB_URL")
    options = CycleOptions(
        db_url=db_url,
        results_db_url=results_db_url,
        source=_source(args),
        server=server,
        api_key=api_key,
        tenant=args.tenant,
        plan=args.plan,
        plan_date=args.plan_date,
        mode=args.mode,
        default_group=args.default_group,
        tls=_client_tls(args),
        keep_runs=args.keep_runs,
        full=args.full,
        state_dir=args.state_dir,
    )
    report = run_cycle(options, _progress(not args.json))
    summary = {
        "run_id": report.run_id,
        "plan": report.plan,
        "plan_date": report.plan_date.isoformat(),
        "written": report.written,
        "mode": report.mode,
        "base_run_id": report.base_run_id,
        "rows_added": report.rows_added,
        "rows_removed": report.rows_removed,
        "fallback_reason": report.fallback_reason,
        "skus_planned": report.skus_planned,
        "skus_total": report.skus_total,
        "sync": dataclasses.asdict(report.sync) if report.sync else None,
        "input_rows": sum(report.input_rows.values()),
        "output_rows": report.output_rows,
        "seconds": {k: round(v, 4) for k, v in report.phase_seconds.items()},
        "engine_seconds": {k: round(v, 4) for k, v in report.engine_seconds.items()},
        "messages": report.messages,
        "read_again": report.read_again,
    }
    if args.json:
        print(json.dumps(summary))
    else:
        counts = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in report.output_rows.items())
        print(f"run {report.run_id} of plan {report.plan} ({report.plan_date}): {counts}")
        if report.sync is not None:
            print(_sync_line(report.sync))
        print(_write_line(report))
    return _fail_on(args.fail_on, report.messages)


#: Exit status of a run that wrote its plan but holds messages ``--fail-on`` names.
EXIT_MESSAGES = 3


def _fail_on(level: str | None, messages: dict[str, int]) -> int:
    """0, or :data:`EXIT_MESSAGES` with one line on stderr when the written
    plan holds messages of ``level`` (``error``; ``warning`` counts errors too)."""
    if level is None:
        return 0
    severities = ("error",) if level == "error" else ("error", "warning")
    found = {sev: messages.get(sev, 0) for sev in severities if messages.get(sev, 0)}
    if not found:
        return 0
    counts = " and ".join(f"{n} {sev} message{'s' if n != 1 else ''}" for sev, n in found.items())
    print(
        f"masterplan: the plan was written and holds {counts} (--fail-on {level})",
        file=sys.stderr,
    )
    return EXIT_MESSAGES


def _sync_line(sync: SyncReport) -> str:
    """How the data reached the server, in one line."""
    if sync.kind == "delta":
        read = (
            f"; read {sync.rows_read} rows and the keys of {len(sync.read_by_change)} "
            "table(s) by change column"
            if sync.read_by_change
            else ""
        )
        return (
            f"synced a delta: {sync.rows_upserted} rows added or changed, "
            f"{sync.rows_deleted} removed (data set version {sync.dataset_version}){read}"
        )
    why = f", because {sync.reason}" if sync.reason else ""
    return f"sent a snapshot of {sync.rows_upserted} rows{why}"


def _write_line(report: CycleReport) -> str:
    """How the run was planned and written, in one line."""
    planned = f"{report.mode.replace('_', ' ')}: planned {report.skus_planned} of "
    planned += f"{report.skus_total} SKUs"
    if report.fallback_reason:
        planned += f" (as a regeneration: {report.fallback_reason})"
    if report.read_again:
        planned += "; its stream was lost, and its results were read again from the server"
    if not report.written:
        return f"{planned}; already written before, nothing changed"
    how = (
        f"a difference to run {report.base_run_id}"
        if report.base_run_id
        else "the whole plan replaced"
    )
    return f"{planned}; written as {how}: {report.rows_added} rows added, {report.rows_removed} removed"


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def cmd_promise(args: argparse.Namespace) -> int:
    from masterplan.client.cli.promise import (
        PromiseError,
        PromiseOptions,
        format_report,
        promise,
        report_json,
    )

    server = args.server or (None if args.db else os.environ.get("MASTERPLAN_SERVER"))
    db_url = args.db or (None if server else os.environ.get("MASTERPLAN_DB_URL"))
    api_key = args.api_key or os.environ.get("MASTERPLAN_API_KEY")
    if server and not api_key:
        raise UsageError("--server needs --api-key KEY or MASTERPLAN_API_KEY")
    if db_url:
        _existing_sqlite(db_url)
    options = PromiseOptions(
        item=args.item,
        qty=args.qty,
        warehouse=args.warehouse,
        date=args.date,
        plan=args.plan,
        plan_date=args.plan_date,
        default_group=args.default_group,
        db_url=db_url,
        server=server,
        api_key=api_key,
        tenant=args.tenant,
        tls=_client_tls(args),
        source=_source(args) if db_url else None,
    )
    try:
        report = promise(options, _progress(not args.json))
    except PromiseError as exc:
        raise SystemExit(f"masterplan: {exc}") from None
    print(json.dumps(report_json(report)) if args.json else format_report(report))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from masterplan.client.cli.settings import apply_serve_settings
    from masterplan.server.app import serve_forever
    from masterplan.server.config import TlsConfig
    from masterplan.tenancy.keys import AdminCredential
    from masterplan.tenancy.quotas import Quotas

    # Host, port, registry and TLS may come from MASTERPLAN_* variables, which
    # `masterplan health` reads too (client/cli/settings.py).
    apply_serve_settings(args, os.environ)
    tls = None
    if args.tls_cert or args.tls_key:
        if not (args.tls_cert and args.tls_key):
            raise UsageError("--tls-cert and --tls-key go together")
        tls = TlsConfig(
            Path(args.tls_cert).read_bytes(), Path(args.tls_key).read_bytes(), _read(args.client_ca)
        )
    quotas = Quotas(**{f.name: getattr(args, f.name) for f in dataclasses.fields(Quotas)})
    try:
        config = _server_config(args, tls, quotas)
    except ValueError as exc:  # the config's own checks, e.g. plaintext off loopback
        raise SystemExit(f"masterplan: {exc}") from None
    admin = AdminCredential.from_key(_admin_key(args))
    serve_forever(config, admin)
    return 0


def _server_config(args: argparse.Namespace, tls: TlsConfig | None, quotas: Quotas) -> ServerConfig:
    from masterplan.server.config import ServerConfig

    return ServerConfig(
        host=args.host,
        port=args.port,
        registry_url=args.registry,
        tls=tls,
        insecure=args.insecure,
        quotas=quotas,
        max_message_bytes=args.max_message_bytes,
        max_concurrent_rpcs=args.max_concurrent_rpcs,
        max_workers=args.max_workers,
        reserved_workers=args.reserved_workers,
        stream_idle_seconds=args.stream_idle_seconds,
        stream_max_seconds=args.stream_max_seconds,
        tenant_sweep_seconds=args.tenant_sweep_seconds,
        grace_seconds=args.grace,
        drain_seconds=args.drain,
        keep_freed_memory=not args.release_memory,
        log_format=args.log_format,
        log_level=args.log_level.upper(),
        metrics_port=args.metrics_port,
        plan_workers=args.workers,
        plan_executor=args.executor,
        dask_address=args.dask,
    )


def cmd_tenant(args: argparse.Namespace) -> int:
    from masterplan.client.client import MasterplanClient

    server = args.server or os.environ.get("MASTERPLAN_SERVER") or DEFAULT_SERVER
    with MasterplanClient(server, _admin_key(args), tls=_client_tls(args)) as client:
        if args.action == "list":
            tenants = client.list_tenants()
            if args.json:
                print(
                    json.dumps(
                        [{"tenant": t.tenant_id, "key_prefix": t.key_prefix} for t in tenants]
                    )
                )
            else:
                for t in tenants:
                    print(t.tenant_id)
            return 0
        if not args.name:
            raise UsageError(f"tenant {args.action} needs a NAME")
        if args.action == "install":
            installed = client.install_tenant(args.name)
            tenant, key = installed.tenant.tenant_id, installed.api_key
            if args.json:
                print(json.dumps({"tenant": tenant, "api_key": key}))
            else:
                print(f"tenant {tenant} installed; API key (shown once): {key}")
        elif args.action == "uninstall":
            from masterplan.client.cli.resources import _confirmed

            question = f"uninstall tenant {args.name} and delete all its plans?"
            if not args.yes and not _confirmed(question):
                raise SystemExit(
                    "masterplan: not uninstalled (give --yes to uninstall without asking)"
                )
            client.uninstall_tenant(args.name)
            print(
                json.dumps({"tenant": args.name, "uninstalled": True})
                if args.json
                else f"tenant {args.name} uninstalled"
            )
        else:
            rotated = client.rotate_api_key(args.name)
            tenant, key = rotated.tenant.tenant_id, rotated.api_key
            if args.json:
                print(json.dumps({"tenant": tenant, "api_key": key}))
            else:
                print(f"tenant {tenant}: new API key (shown once): {key}")
    return 0


def cmd_scm(args: argparse.Namespace) -> int:
    from masterplan.connector.schema import create_all, create_engine

    db_url = args.db or os.environ.get("MASTERPLAN_DB_URL")
    if not db_url:
        raise UsageError(f"scm {args.action}: --db URL (or MASTERPLAN_DB_URL) is required")
    if args.action != "init":
        _existing_sqlite(db_url)
    source = _source(args)
    if source is not None and args.action == "init":
        raise UsageError(
            "scm init: a source profile reads the ERP's own tables, which "
            "init never creates; `masterplan run --results-db URL` creates the result tables"
        )
    engine = create_engine(db_url)
    try:
        if args.action == "init":
            create_all(engine)
            # The database as a URL without its password: output is logged
            # and pasted, secrets must not be.
            shown = engine.url.render_as_string(hide_password=True)
            print(
                json.dumps({"db": shown, "initialized": True})
                if args.json
                else "SCM tables created"
            )
            return 0
        from masterplan.connector.reader import read_input
        from masterplan.server.engine import PlanParams, check

        if source is not None:
            data = _checked_source_input(engine, source, args.json)
        else:
            data = read_input(engine)
        messages = check(data, PlanParams(args.plan_date or dt.date.today(), args.default_group))
    finally:
        engine.dispose()
    rows = [
        {k: messages[k][i] for k in ("severity", "code", "item_id", "warehouse_id", "text")}
        for i in range(len(messages["code"]))
    ]
    if args.json:
        print(json.dumps({"messages": rows}))
    else:
        for r in rows:
            print(
                f"{r['severity']:7} {r['code']:24} {r['item_id'] or '-'}@{r['warehouse_id'] or '-'}  {r['text']}"
            )
        print(f"{len(rows)} message(s)")
    return 1 if any(r["severity"] == "error" for r in rows) else 0


def _checked_source_input(engine: Any, source: Any, as_json: bool) -> dict[str, Any]:
    """The input read through the profile, each of its queries probed once;
    where any does not fit: each problem on a line of its own (table and
    column named), then exit 1, nothing read or checked."""
    from masterplan.connector.reader import read_checked_source

    problems, data = read_checked_source(engine, source)
    if not problems:
        return data
    if as_json:
        rows = [{"table": p.table, "column": p.column, "text": p.message} for p in problems]
        print(json.dumps({"source": source.name, "problems": rows}))
    else:
        for p in problems:
            print(p.message)
        print(f"{len(problems)} problem(s) in {source.describe()}")
    raise SystemExit(1)


def cmd_demo(args: argparse.Namespace) -> int:
    from masterplan.client.cli.demo import run_demo

    if args.db:
        return run_demo(args.db, args.json)
    with tempfile.TemporaryDirectory(prefix="masterplan-demo-") as tmp:
        return run_demo(f"sqlite:///{Path(tmp) / 'demo.db'}", args.json)


# -- parser -------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    from masterplan.tenancy.quotas import Quotas

    parser = Parser(prog="masterplan", description="Open-source master planning (MRP) service.")
    parser.add_argument("--version", action="version", version=f"masterplan {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="plan a sample manufacturer end to end and print a summary")
    p.add_argument(
        "--db", help="SQLAlchemy URL to build the sample in (default: a temporary SQLite file)"
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("run", help="read the SCM database, plan, write the plan back")
    p.add_argument("--db", help="SQLAlchemy URL of the SCM database (or MASTERPLAN_DB_URL)")
    p.add_argument(
        "--server",
        help="host:port of a server (or MASTERPLAN_SERVER; default: an embedded one)",
    )
    p.add_argument("--api-key", help="tenant API key (or MASTERPLAN_API_KEY)")
    p.add_argument("--tenant", help="tenant id in resource names (default: the key's own)")
    p.add_argument("--plan-date", type=_plan_date, help="T0, YYYY-MM-DD (default: today)")
    p.add_argument("--mode", choices=("regeneration", "net_change"), default="regeneration")
    p.add_argument("--plan", default="main", help="plan id (default: main)")
    p.add_argument("--default-group", help="coverage group of SKUs that name none")
    p.add_argument(
        "--keep-runs",
        type=_count,
        default=0,
        help="keep only the newest N runs of the plan in plan_runs (0: all)",
    )
    p.add_argument(
        "--full", action="store_true", help="send a snapshot, not a delta, for a net change"
    )
    p.add_argument(
        "--fail-on",
        choices=("error", "warning"),
        help=f"exit {EXIT_MESSAGES} (the plan still written) when the plan holds plan "
        "messages of this severity or worse: 'error' (a BOM cycle) or 'warning' (any)",
    )
    p.add_argument(
        "--state-dir",
        type=Path,
        help="where the delta sync keeps its state (default: $MASTERPLAN_STATE_DIR, "
        "else $XDG_STATE_HOME/masterplan, else ~/.local/state/masterplan)",
    )
    p.add_argument("--json", action="store_true", help="print a machine-readable summary")
    _add_source(p)
    p.add_argument(
        "--results-db",
        help="SQLAlchemy URL of the database the plan is written into "
        "(or MASTERPLAN_RESULTS_DB_URL; default: --db)",
    )
    _add_tls_client(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "promise", help="when could a new sales line be delivered (a simulation, nothing changes)"
    )
    p.add_argument("item", help="item of the new sales line")
    p.add_argument("qty", type=_positive, help="its quantity")
    p.add_argument(
        "--warehouse", help="its warehouse (default with --db: the item's only warehouse)"
    )
    p.add_argument("--date", type=_date, help="requested date, YYYY-MM-DD (default: plan date)")
    p.add_argument("--plan", default="main", help="plan id (default: main)")
    p.add_argument(
        "--plan-date",
        type=_plan_date,
        help="T0, YYYY-MM-DD (default: that of the plan's last run with --server, else today)",
    )
    p.add_argument("--default-group", help="coverage group of SKUs that name none")
    p.add_argument("--db", help="SCM database to plan on an embedded server (or MASTERPLAN_DB_URL)")
    _add_source(p)
    p.add_argument(
        "--server", help="host:port of a server holding the plan's data (or MASTERPLAN_SERVER)"
    )
    p.add_argument("--api-key", help="tenant API key (or MASTERPLAN_API_KEY)")
    p.add_argument("--tenant", help="tenant id in resource names (default: the key's own)")
    p.add_argument("--json", action="store_true", help="print a machine-readable answer")
    _add_tls_client(p)
    p.set_defaults(func=cmd_promise)

    from masterplan.client.cli.views import add_view_commands

    add_view_commands(sub)

    from masterplan.client.cli.resources import add_resource_commands

    add_resource_commands(sub)

    from masterplan.client.cli.health import add_health_command

    add_health_command(sub)

    # The defaults of host, port, registry, TLS and --insecure are None here:
    # cmd_serve fills them from MASTERPLAN_* variables, else the defaults the
    # help names (client/cli/settings.py).
    p = sub.add_parser("serve", help="run the planning server")
    p.add_argument(
        "--host", help="interface to listen on (or MASTERPLAN_HOST; default: loopback, 127.0.0.1)"
    )
    p.add_argument("--port", type=int, help="TCP port (or MASTERPLAN_PORT; default 50151)")
    p.add_argument(
        "--registry",
        help="tenant registry URL (or MASTERPLAN_REGISTRY; default "
        "sqlite:///masterplan-registry.db)",
    )
    p.add_argument(
        "--workers",
        type=int,
        help="plan a regeneration whose data set cuts into balanced partitions of "
        "independent clusters over this many workers, or walk each netting level of one "
        "that does not in this many runs on them (or MASTERPLAN_WORKERS; default 1: "
        "inline; docs/scaling.md)",
    )
    p.add_argument(
        "--executor",
        choices=("threads", "processes"),
        help="the workers of --workers: threads in the server (default) or spawned "
        "processes (or MASTERPLAN_EXECUTOR)",
    )
    p.add_argument(
        "--dask",
        metavar="ADDR",
        help="plan the partitions on the Dask cluster of this scheduler (tcp://HOST:PORT; "
        "or MASTERPLAN_DASK); needs pip install 'masterplan[dask]'",
    )
    p.add_argument("--admin-key-file", help="file holding the admin key (or MASTERPLAN_ADMIN_KEY)")
    p.add_argument("--tls-cert", help="PEM server certificate chain (or MASTERPLAN_TLS_CERT)")
    p.add_argument("--tls-key", help="PEM server private key (or MASTERPLAN_TLS_KEY)")
    p.add_argument(
        "--client-ca",
        help="PEM CA for client certificates, for mutual TLS (or MASTERPLAN_TLS_CLIENT_CA)",
    )
    p.add_argument(
        "--insecure",
        action="store_true",
        default=None,
        help="allow plaintext on a host that is not loopback, where TLS ends in front of "
        "the server (or MASTERPLAN_INSECURE=1); without it such a host needs --tls-cert/--tls-key",
    )
    # One flag per quota, named and explained by the Quotas dataclass itself,
    # so that a new quota cannot be forgotten on the command line.
    for f in dataclasses.fields(Quotas):
        p.add_argument(
            "--" + f.name.replace("_", "-"),
            type=int,
            default=f.default,
            help=f"per-tenant quota (default {f.default})",
        )
    p.add_argument(
        "--max-message-bytes", type=int, default=64 * 1024 * 1024, help="largest gRPC message"
    )
    p.add_argument(
        "--max-concurrent-rpcs", type=int, default=128, help="calls in progress server-wide"
    )
    p.add_argument("--max-workers", type=int, default=64, help="request threads (default 64)")
    p.add_argument(
        "--reserved-workers",
        type=int,
        default=8,
        help="request threads streams may not take, kept for health, admin and cheap calls; "
        "streams beyond max-workers minus these are refused (default 8)",
    )
    p.add_argument(
        "--stream-idle-seconds",
        type=float,
        default=60.0,
        help="end a stream that waits on its client this long (default 60)",
    )
    p.add_argument(
        "--stream-max-seconds",
        type=float,
        default=3600.0,
        help="end an upload stream open this long (default 3600)",
    )
    p.add_argument(
        "--tenant-sweep-seconds",
        type=float,
        default=30.0,
        help="how often to drop tenants uninstalled by another process (default 30)",
    )
    p.add_argument(
        "--grace", type=float, default=30.0, help="seconds SIGTERM lets in-flight calls finish"
    )
    p.add_argument(
        "--drain", type=float, default=2.0, help="seconds health says NOT_SERVING before stopping"
    )
    p.add_argument(
        "--release-memory",
        action="store_true",
        help="give memory back to the OS as a run frees it (default: keep it for the next run)",
    )
    p.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="stderr log lines as key=value text (default) or one JSON object per line",
    )
    p.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        default="info",
        type=str.lower,
        help="level of the server's own log lines (debug adds plan reads)",
    )
    p.add_argument(
        "--metrics-port",
        type=int,
        help="serve Prometheus metrics at http://HOST:PORT/metrics, plain HTTP on --host "
        "(or MASTERPLAN_METRICS_PORT; default: none)",
    )
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("tenant", help="provision tenants (admin credential)")
    p.add_argument("action", choices=("install", "uninstall", "rotate-key", "list"))
    p.add_argument("name", nargs="?")
    p.add_argument(
        "--server",
        help=f"host:port of the server (or MASTERPLAN_SERVER; default: {DEFAULT_SERVER})",
    )
    p.add_argument("--admin-key-file")
    p.add_argument("--yes", action="store_true", help="uninstall without asking")
    p.add_argument("--json", action="store_true")
    _add_tls_client(p)
    p.set_defaults(func=cmd_tenant)

    p = sub.add_parser("scm", help="manage and check an SCM database")
    p.add_argument("action", choices=("init", "check"))
    p.add_argument("--db", help="SQLAlchemy URL of the SCM database (or MASTERPLAN_DB_URL)")
    _add_source(p)
    p.add_argument("--plan-date", type=_plan_date)
    p.add_argument("--default-group")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_scm)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; the exit status and stderr follow the module's contract."""
    args = build_parser().parse_args(argv)
    # A failure is one line on stderr. The embedded server of `run` and
    # `demo` logs its own account of it, which Python's last-resort handler
    # would print too; `serve` installs a real handler, which still gets
    # every line (records pass this handler by on their way to the root).
    logging.getLogger("masterplan").addHandler(logging.NullHandler())
    try:
        return int(args.func(args))
    except MasterplanClientError as exc:
        print(f"masterplan: {exc.code.name}: {exc.message}", file=sys.stderr)
        return 1
    except UsageError as exc:
        print(f"masterplan: {exc}", file=sys.stderr)
        return USAGE_STATUS
    except KeyboardInterrupt:
        print("masterplan: interrupted", file=sys.stderr)
        return 130
    except SystemExit:
        raise
    except Exception as exc:  # one clear line, never a traceback, for any failure
        name = type(exc).__name__
        print(f"masterplan: {name}: {_first_line(exc)}", file=sys.stderr)
        return 1


def _first_line(exc: BaseException) -> str:
    """The first line of an error's text: SQLAlchemy's add the statement, its
    parameters and a "Background on this error" link on lines of their own,
    which the one-line contract (and the secrets a statement may carry) keep
    off the terminal."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else ""


def _existing_sqlite(url: str) -> None:
    """Refuse a SQLite URL whose file does not exist: SQLite would create an
    empty database, and the command would fail later on a missing table (or,
    for a check, report an empty data set) instead of on the mistyped path."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    path = parsed.database
    if parsed.get_backend_name() != "sqlite" or not path or path == ":memory:":
        return
    if path.startswith("file:") or parsed.query.get("uri"):
        return  # a URI filename: SQLite's own rules apply
    if not Path(path).exists():
        raise SystemExit(
            f"masterplan: no SQLite database at {path} (masterplan scm init --db URL creates one)"
        )
