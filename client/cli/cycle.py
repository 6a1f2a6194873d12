"""The connector's whole cycle: read the SCM database, upload, plan, write back.

Every step either completes or leaves the SCM database as it was: the write is
one transaction (see :mod:`connector.writer`), and nothing is written unless
the run's stream ended with its summary.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from masterplan.client import errors
from masterplan.client.cli.progress import CycleProgress
from masterplan.client.cli.syncing import (
    SyncReport,
    load_prior,
    stream_snapshot,
    sync_dataset,
    sync_store,
)
from masterplan.client.cli.writing import WriteAsItArrives
from masterplan.client.client import ClientTls, MasterplanClient, RunOutcome
from masterplan.connector.changes import SourceRead, read_source, reads_by_change
from masterplan.connector.errors import BaseRunChanged
from masterplan.connector.profile import SourceProfile
from masterplan.connector.reader import stream_input
from masterplan.connector.schema import create_engine
from masterplan.connector.sync import SyncState, default_state_dir
from masterplan.connector.writer import (
    RunMode,
    check_result_layout,
    current_run_id,
    prune_runs,
    writes_in_index_order,
)
from masterplan.contract.columns import Table, table_length
from masterplan.contract.tables import PLAN_OUTPUT_TABLES
from masterplan.server.embedded import embedded_server

__all__ = ["CycleOptions", "CycleReport", "run_cycle"]


@dataclass(frozen=True, slots=True)
class CycleOptions:
    """What ``masterplan run`` was asked to do.

    Attributes:
        db_url: SQLAlchemy URL of the SCM database (the source: nothing is
            written into it when ``results_db_url`` names another).
        server: ``host:port`` of a running server, or None for an embedded one.
        api_key: The tenant key (with ``server``).
        tenant: The tenant id in the plan's resource name; None uses ``-``,
            the tenant of the key.
        plan: The plan's id (``plans.plan_id``).
        plan_date: ``T0``; None for today.
        mode: ``regeneration`` or ``net_change``.
        default_group: Coverage group of SKUs that name none.
        tls: TLS material for the channel.
        keep_runs: After writing, keep only this plan's newest N runs in
            ``plan_runs`` (never the current one); 0 keeps all.
        full: Send a snapshot even for a net change (``--full``).
        state_dir: Where the delta sync keeps its state (with ``server``);
            None for :func:`connector.sync.default_state_dir`.
        recover_seconds: After a lost RunPlan stream, how long to wait for
            the server to answer again before giving the run up.
        source: Read through this source profile instead of the reference
            tables (SPEC §4).
        results_db_url: Where the result tables are (``--results-db``);
            None for the source database.
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
    full: bool = False
    state_dir: Path | None = None
    recover_seconds: float = 30.0
    source: SourceProfile | None = None
    results_db_url: str | None = None


@dataclass(slots=True)
class CycleReport:
    """What a completed cycle did, for the CLI's summary and ``--json``."""

    run_id: str
    plan: str
    plan_date: dt.date
    written: bool
    mode: str = "regeneration"
    #: The run whose plan the write changed by a difference; None for a full write.
    base_run_id: str | None = None
    rows_added: int = 0
    rows_removed: int = 0
    #: Why a net change was planned as a regeneration; empty when it was not.
    fallback_reason: str = ""
    skus_planned: int = 0
    skus_total: int = 0
    #: How the data reached the server (delta or snapshot, and why).
    sync: SyncReport | None = None
    input_rows: dict[str, int] = field(default_factory=dict)
    output_rows: dict[str, int] = field(default_factory=dict)
    phase_seconds: dict[str, float] = field(default_factory=dict)
    engine_seconds: dict[str, float] = field(default_factory=dict)
    #: The written plan's plan messages by severity (``error``, ``warning``).
    messages: dict[str, int] = field(default_factory=dict)
    #: Whether the run's stream was lost and its kept results were read again.
    read_again: bool = False


def plan_message_counts(engine: sa.Engine, plan: str) -> dict[str, int]:
    """The current plan's plan messages by severity, as the database holds them."""
    query = sa.text(
        "SELECT severity, COUNT(*) FROM plan_messages WHERE plan_id = :plan GROUP BY severity"
    )
    with engine.connect() as conn:
        return {str(sev): int(n) for sev, n in conn.execute(query, {"plan": plan})}


def _shown(pieces: Iterator[tuple[str, Table]], show: CycleProgress) -> Iterator[tuple[str, Table]]:
    """``pieces``, each counted on the read bar as it comes."""
    for name, piece in pieces:
        show.advance("read", table_length(piece))
        yield name, piece


def run_cycle(options: CycleOptions, progress: CycleProgress | None = None) -> CycleReport:
    """Read, upload, plan and write back; returns the report.

    Raises:
        connector.errors.SchemaMismatch: a table or column is missing.
        client.errors.MasterplanClientError: the server refused or failed.
    """
    show = progress or CycleProgress()
    source_engine = create_engine(options.db_url)
    # The source is only read: with a results database of its own, a
    # read-only role is enough for it.
    engine = create_engine(options.results_db_url) if options.results_db_url else source_engine
    times: dict[str, float] = {}
    plan_date = options.plan_date or dt.date.today()
    run_id = uuid.uuid4().hex
    read_again = False
    started_at = dt.datetime.now(dt.UTC)
    try:
        # The result tables first: a database in an old layout fails here,
        # before anything is read or planned. Those missing are created when
        # the plan is written (WriteAsItArrives): a run that fails before
        # writes nothing (SPEC §5.9).
        check_result_layout(engine, missing_ok=True)
        base_run_id = current_run_id(engine, options.plan)
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
            if options.server:
                # The server, the key and the tenant are checked before the
                # database is read: a wrong key is refused in milliseconds,
                # not after reading every table.
                client.list_runs(parent)
            # An embedded server starts empty: no state to keep for it.
            store = (
                sync_store(
                    options.state_dir or default_state_dir(),
                    address,
                    options.tenant,
                    key or "",
                    options.plan,
                    options.db_url,
                )
                if options.server
                else None
            )
            want_delta = options.mode == "net_change" and not options.full
            # Loaded before the read: tables with a change column are read
            # against it, only their keys and changed rows.
            prior = load_prior(store, want_delta=want_delta)

            def read(state: SyncState | None) -> SourceRead:
                return read_source(
                    source_engine,
                    options.source,
                    state,
                    on_chunk=lambda name, n: show.advance("read", n),
                )

            t = time.perf_counter()
            show.begin("read")
            if prior.state is None and not reads_by_change(options.source):
                # A snapshot: each piece goes to the server while the next
                # is read, and the connector never holds the data set.
                show.begin("upload")
                streamed = stream_snapshot(
                    client,
                    parent,
                    _shown(stream_input(source_engine, source=options.source), show),
                    store,
                    reason=prior.reason if want_delta else "",
                    on_chunk=lambda name, n: show.advance("upload", n),
                )
                show.end("read")
                show.end("upload")
                synced = streamed.report
                input_rows = streamed.table_rows
                times["read"] = streamed.read_seconds
                times["detect"] = synced.detect_seconds
                times["upload"] = (
                    time.perf_counter() - t - streamed.read_seconds - synced.detect_seconds
                )
            else:
                got = read(prior.state)
                show.end("read")
                times["read"] = time.perf_counter() - t
                input_rows = got.table_rows
                t = time.perf_counter()
                show.begin("upload", sum(input_rows.values()))
                synced = sync_dataset(
                    client,
                    parent,
                    got,
                    store,
                    prior=prior,
                    want_delta=want_delta,
                    read_whole=lambda: read(None),
                    on_chunk=lambda name, n: show.advance("upload", n),
                )
                # The tables are on the server now: not held while it plans.
                del got
                show.end("upload")
                times["detect"] = synced.detect_seconds
                times["upload"] = time.perf_counter() - t - synced.detect_seconds
            t = time.perf_counter()
            show.begin("plan")
            show.begin("stream back")

            # Rows the bars count for the stream now read: a lost stream's
            # are taken back off them when the kept run is read again.
            counted = {"stream back": 0, "write": 0}

            def count(bar: str, n: int) -> None:
                counted[bar] += n
                show.advance(bar, n)

            def on_chunk(name: str, n: int) -> None:
                count("stream back", n)

            announced: list[int] = []

            def on_announced(rows: int) -> None:
                if not announced:  # once, also when a lost stream is read again
                    announced.append(rows)
                    show.end("plan")
                    show.begin("write", rows)

            def write_sink() -> WriteAsItArrives:
                return stack.enter_context(
                    WriteAsItArrives(
                        engine,
                        run_id=run_id,
                        plan_id=options.plan,
                        mode=options.mode,
                        plan_date=plan_date,
                        started_at=started_at,
                        on_begin=on_announced,
                        on_rows=lambda name, n: count("write", n),
                    )
                )

            # The result is written as it streams back, in one transaction
            # that commits once the stream ended with its summary.
            sink = write_sink()
            ordered = writes_in_index_order(engine)

            def read_kept(base: str) -> RunOutcome | None:
                """The kept run's results read again, written from the start."""
                nonlocal sink
                sink.close()
                for bar, n in counted.items():
                    count(bar, -n)
                sink = write_sink()
                return client.kept_results_after_drop(
                    f"{parent}/runs/{run_id}",
                    base_run_id=base,
                    wait_seconds=options.recover_seconds,
                    on_chunk=on_chunk,
                    sink=sink,
                    index_order=ordered,
                )

            try:
                try:
                    outcome = client.run_plan(
                        parent,
                        plan_date=plan_date,
                        mode=options.mode,
                        default_group=options.default_group,
                        run_id=run_id,
                        base_run_id=base_run_id or "",
                        on_progress=lambda phase, frac: show.fraction("plan", frac, phase),
                        on_chunk=on_chunk,
                        sink=sink,
                        index_order=ordered,
                    )
                except (errors.Unavailable, errors.Internal, errors.Unknown, ConnectionError):
                    # The stream was lost, not necessarily the run: a run that
                    # succeeded is kept by the server, and its results are read
                    # again instead of planning again.
                    kept = read_kept(base_run_id or "")
                    if kept is None:
                        raise
                    outcome, read_again = kept, True
            except BaseRunChanged:
                # Another run was written to the plan since this one read
                # its current run: the difference no longer fits the plan the
                # database holds. The run is kept (it succeeded before its
                # results were sent): its whole result replaces the plan's
                # rows (SPEC §4: a database changed by other hands).
                kept = read_kept("")
                if kept is None:
                    raise
                outcome, read_again = kept, True
            report = sink.commit()
            end = time.perf_counter()
            show.end("stream back")
            show.end("write")
            begun = sink.begun_at if sink.begun_at is not None else end
            times["plan"] = begun - t
            times["stream_and_write"] = end - begun
        t = time.perf_counter()
        run = outcome.run
        plan_rows = {name: int(run.row_counts.get(name, 0)) for name in PLAN_OUTPUT_TABLES}
        if options.keep_runs:
            prune_runs(engine, options.plan, options.keep_runs)
        times["prune"] = time.perf_counter() - t
        return CycleReport(
            run_id=run_id,
            plan=options.plan,
            plan_date=plan_date,
            written=report.written,
            mode=options.mode,
            base_run_id=run.base_run_id if report.difference else None,
            rows_added=report.rows_added,
            rows_removed=report.rows_removed,
            fallback_reason=run.fallback_reason,
            sync=synced,
            skus_planned=run.skus_planned,
            skus_total=run.skus_total,
            input_rows=input_rows,
            output_rows=plan_rows,
            phase_seconds=times,
            engine_seconds=dict(run.phase_seconds),
            messages=plan_message_counts(engine, options.plan),
            read_again=read_again,
        )
    finally:
        show.close()
        engine.dispose()
        source_engine.dispose()
