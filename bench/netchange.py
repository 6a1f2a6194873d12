"""Net change and promise figures (issue: net change and what-if).

The product path twice against one server process: a regeneration of the
generated SCM database (which also leaves the connector's sync state), one
sales line changed in the database, then ``masterplan run --mode
net_change``: detect the change, upload the delta, plan, stream the
difference, write it — three times in a row, another line each time (the
median stands for the net change). Then ``promise`` latency: Simulate
calls of one new sales line against the warm server, timed one by one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import multiprocessing as mp
import secrets
import statistics
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

__all__ = ["NET_CHANGES", "run_net_change"]

#: Net-change cycles timed after the regeneration, one changed sales line
#: each; the median one is reported (each cycle's figures are in the report).
NET_CHANGES = 5


def _cycle_figures(report: Any) -> dict[str, Any]:
    """What one cycle report says, rounded for the JSON report."""
    seconds = {k: round(v, 3) for k, v in report.phase_seconds.items()}
    engine = {k: round(v, 3) for k, v in report.engine_seconds.items()}
    sync = report.sync
    return {
        "seconds": seconds,
        "total_seconds": round(sum(report.phase_seconds.values()), 3),
        "engine_seconds": round(_engine_total(report.engine_seconds), 3),
        "engine_phase_seconds": engine,
        "sync": None
        if sync is None
        else {
            "kind": sync.kind,
            "reason": sync.reason,
            "rows_upserted": sync.rows_upserted,
            "rows_deleted": sync.rows_deleted,
            "detect_seconds": round(sync.detect_seconds, 3),
        },
        "written_as": "difference" if report.base_run_id else "whole plan",
        "rows_written": report.rows_added + report.rows_removed,
        "rows_added": report.rows_added,
        "rows_removed": report.rows_removed,
        "plan_rows": report.output_rows,
        "skus_planned": report.skus_planned,
        "skus_total": report.skus_total,
        "fallback_reason": report.fallback_reason,
    }


def _engine_total(phases: dict[str, float]) -> float:
    """The engine's time of a run from its phases. A run planned over
    partitions reports, beside its cut (``split``), its tasks' wall time
    (``partitions``) and its ``join``, each engine phase's slowest
    partition, which the tasks' wall time already holds."""
    if "partitions" in phases:
        return sum(phases.get(name, 0.0) for name in ("split", "partitions", "join"))
    return sum(phases.values())


def _change_one_sales_line(engine: sa.Engine, k: int = 0) -> str:
    """Add 1 to the quantity of the ``k``-th sales line (by order id, every
    97th line); return its ref."""
    with engine.begin() as conn:
        order_id, line_no, qty = conn.execute(
            sa.text(
                "SELECT order_id, line_no, qty FROM sales_lines ORDER BY order_id, line_no "
                "LIMIT 1 OFFSET :k"
            ),
            {"k": 97 * k},
        ).one()
        conn.execute(
            sa.text("UPDATE sales_lines SET qty = :q WHERE order_id = :o AND line_no = :n"),
            {"q": float(qty) + 1.0, "o": order_id, "n": line_no},
        )
    return f"SO:{order_id}/{int(line_no)}"


def _promise_latency(
    address: str, api_key: str, plan_date: dt.date, item: str, warehouse: str, calls: int
) -> dict[str, Any]:
    """Seconds per Simulate of one new sales line, ``calls`` times in a row."""
    from masterplan.client.client import MasterplanClient
    from masterplan.contract.rows import from_rows
    from masterplan.contract.tables import INPUT_TABLES

    line = from_rows(
        INPUT_TABLES["sales_lines"],
        [
            {
                "order_id": "PROMISE",
                "line_no": 1,
                "item_id": item,
                "warehouse_id": warehouse,
                "qty": 40.0,
                "requested_date": plan_date.isoformat(),
                "priority": 0,
            }
        ],
    )
    times: list[float] = []
    answer = None
    with MasterplanClient(address, api_key) as client:
        for _ in range(calls):
            t = time.perf_counter()
            answer = client.simulate(
                "tenants/-/plans/main",
                upserts=[("sales_lines", line)],
                plan_date=plan_date,
                demand_refs=["SO:PROMISE/1"],
            )
            times.append(time.perf_counter() - t)
    assert answer is not None
    p = answer.promises[0]
    return {
        "calls": calls,
        "p50_seconds": round(statistics.median(times), 4),
        "p99_seconds": round(float(np.percentile(times, 99)), 4),
        "max_seconds": round(max(times), 4),
        "item": item,
        "warehouse": warehouse,
        "futures_date": p.futures_date,
        "delay_days": p.delay_days,
    }


def run_net_change(
    n_skus: int,
    seed: int,
    plan_date: dt.date,
    backend: str,
    workdir: Path,
    promise_calls: int,
    clusters: int = 1,
    serve: Sequence[str] = (),
) -> dict[str, Any]:
    """Regeneration, one changed sales line, net change, promise latency;
    ``clusters`` copies of the model, on a server started with ``serve``
    options (``--workers N``: the regeneration is planned over partitions)."""
    from bench.run import (
        BENCH_SCHEMA,
        _engine_url,
        _install_tenant,
        _prepare_database,
        _start_server,
        _stop,
        _vm_hwm_bytes,
        backend_engine,
    )
    from masterplan.client.cli.cycle import CycleOptions, run_cycle

    engine = backend_engine(backend, workdir)
    url, connect_args = _engine_url(engine)
    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
        prepared: dict[str, Any] = pool.submit(
            _prepare_database, n_skus, seed, plan_date, url, connect_args, False, clusters
        ).result()
    admin_key = secrets.token_urlsafe(32)
    proc, address = _start_server(workdir, admin_key, serve)
    try:
        api_key = _install_tenant(address, admin_key, proc)
        db_url = engine.url
        if engine.dialect.name == "postgresql":  # the bench schema, as the engine has it
            db_url = db_url.update_query_dict({"options": f"-csearch_path={BENCH_SCHEMA}"})
        options = CycleOptions(
            db_url=db_url.render_as_string(hide_password=False),
            server=address,
            api_key=api_key,
            plan_date=plan_date,
            state_dir=workdir / "state",
        )
        regeneration = run_cycle(options)
        # Several changes in a row, one sales line each: the first net change
        # after a regeneration also converts the plan's ref dictionaries once.
        nets, changed = [], []
        for k in range(NET_CHANGES):
            changed.append(_change_one_sales_line(engine, k))
            nets.append(run_cycle(dataclasses.replace(options, mode="net_change")))
        with engine.connect() as conn:
            item, warehouse = conn.execute(
                sa.text("SELECT item_id, warehouse_id FROM sales_lines ORDER BY order_id LIMIT 1")
            ).one()
        promise = _promise_latency(address, api_key, plan_date, item, warehouse, promise_calls)
        server_peak = _vm_hwm_bytes(proc.pid)
    finally:
        _stop(proc)
        engine.dispose()
    regen = _cycle_figures(regeneration)
    changes = [_cycle_figures(net) for net in nets]
    # The median cycle by total time stands for the net change.
    change = sorted(changes, key=lambda c: c["total_seconds"])[len(changes) // 2]
    engine_median = sorted(c["engine_seconds"] for c in changes)[len(changes) // 2]
    return {
        "mode": "net_change",
        "backend": backend,
        "clusters_generated": clusters,
        "serve_options": list(serve),
        **prepared,
        "skus": regeneration.skus_total,
        "changed": changed,
        "regeneration": regen,
        "net_change": change,
        "net_changes": changes,
        # Against the median engine time of the net changes (the cycle that
        # stands for them is the median by total time, whose engine time
        # may be any of theirs).
        "engine_seconds_median": engine_median,
        "engine_speedup": round(regen["engine_seconds"] / engine_median, 2)
        if engine_median
        else None,
        "cycle_speedup": round(regen["total_seconds"] / change["total_seconds"], 2)
        if change["total_seconds"]
        else None,
        "promise": promise,
        "server_peak_rss_bytes": server_peak,
    }
