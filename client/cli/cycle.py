"""The connector's whole cycle: read the SCM database, upload, plan, write back.

Every step either completes or leaves the SCM database as it was: the write is
one transaction (see :mod:`connector.writer`), and nothing is written unless
the run's stream ended with its summary.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field

from masterplan.client.cli.progress import CycleProgress
from masterplan.client.client import ClientTls, MasterplanClient
from masterplan.connector.reader import read_input
from masterplan.connector.schema import create_engine, create_result_tables
from masterplan.connector.writer import RunMode, RunRecord, prune_runs, write_run
from masterplan.contract.columns import table_length
from masterplan.server.embedded import embedded_server

__all__ = ["CycleOptions", "CycleReport", "run_cycle"]


@dataclass(frozen=True, slots=True)
class CycleOptions:
    """What ``masterplan run`` was asked to do.

    Attributes:
        db_url: SQLAlchemy URL of the SCM database.
        server: ``host:port`` of a running server, or None for an embedded one.
        api_key: The tenant key (with ``server``).
        tenant: The tenant id in the plan's resource name; None uses ``-``,
            the tenant of the key.
        plan: The plan's id (``plans.plan_id``).
        plan_date: ``T0``; None for today.
        mode: ``regeneration`` or ``net_change``.
        default_group: Coverage group of SKUs that name none.
        tls: TLS material for the channel.
        keep_runs: After writing, keep only this plan's newest N runs in the
            result tables (never the current one); 0 keeps all.
    """

    db_url: str
    server: str | None = None
    api_key: str | None = None
    tenant: str | None = None
    plan: str = "main"
    plan_date: dt.date | None = None
    mode: RunMode = "regeneration"
    default_group: str | None = None
    tls: ClientTls | None = None
    keep_runs: int = 0


@dataclass(slots=True)
class CycleReport:
    """What a completed cycle did, for the CLI's summary and ``--json``."""

    run_id: str
    plan: str
    plan_date: dt.date
    written: bool
    input_rows: dict[str, int] = field(default_factory=dict)
    output_rows: dict[str, int] = field(default_factory=dict)
    phase_seconds: dict[str, float] = field(default_factory=dict)
    engine_seconds: dict[str, float] = field(default_factory=dict)


def run_cycle(options: CycleOptions, progress: CycleProgress | None = None) -> CycleReport:
    """Read, upload, plan and write back; returns the report.

    Raises:
        connector.errors.SchemaMismatch: a table or column is missing.
        client.errors.MasterplanClientError: the server refused or failed.
    """
    show = progress or CycleProgress()
    engine = create_engine(options.db_url)
    times: dict[str, float] = {}
    plan_date = options.plan_date or dt.date.today()
    run_id = uuid.uuid4().hex
    started_at = dt.datetime.now(dt.UTC)
    try:
        t = time.perf_counter()
        show.begin("read")
        tables = read_input(engine, on_chunk=lambda name, n: show.advance("read", n))
        show.end("read")
        times["read"] = time.perf_counter() - t
        input_rows = sum(table_length(v) for v in tables.values())
        with ExitStack() as stack:
            if options.server:
                address, key = options.server, options.api_key
                # "-" names the caller's own tenant (the key decides which).
                tenant = options.tenant or "-"
            else:
                emb = stack.enter_context(embedded_server())
                address, key, tenant = emb.address, emb.api_key, emb.tenant
            client = stack.enter_context(MasterplanClient(address, key, tls=options.tls))
            parent = f"tenants/{tenant}/plans/{options.plan}"
            t = time.perf_counter()
            show.begin("upload", input_rows)
            client.upload(
                parent, tables.items(), on_chunk=lambda name, n: show.advance("upload", n)
            )
            show.end("upload")
            times["upload"] = time.perf_counter() - t
            t = time.perf_counter()
            show.begin("plan")
            show.begin("stream back")
            outcome = client.run_plan(
                parent,
                plan_date=plan_date,
                mode=options.mode,
                default_group=options.default_group,
                run_id=run_id,
                on_progress=lambda phase, frac: show.fraction("plan", frac, phase),
                on_chunk=lambda name, n: show.advance("stream back", n),
            )
            show.end("plan")
            show.end("stream back")
            times["plan_and_stream"] = time.perf_counter() - t
        t = time.perf_counter()
        output_rows = {k: table_length(v) for k, v in outcome.tables.items()}
        show.begin("write", sum(output_rows.values()))
        record = RunRecord(
            run_id=run_id,
            plan_id=options.plan,
            mode=options.mode,
            plan_date=plan_date,
            started_at=started_at,
            finished_at=dt.datetime.now(dt.UTC),
        )
        create_result_tables(engine)
        written = write_run(
            engine, record, outcome.tables, on_rows=lambda name, n: show.advance("write", n)
        )
        if options.keep_runs:
            prune_runs(engine, options.plan, options.keep_runs)
        show.end("write")
        times["write"] = time.perf_counter() - t
        return CycleReport(
            run_id=run_id,
            plan=options.plan,
            plan_date=plan_date,
            written=written,
            input_rows={k: table_length(v) for k, v in tables.items()},
            output_rows=output_rows,
            phase_seconds=times,
            engine_seconds=dict(outcome.run.phase_seconds),
        )
    finally:
        show.close()
        engine.dispose()
