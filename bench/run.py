"""Run the benchmark: the product path through a real server process, or the engine alone.

The full mode measures what an operator sees (SPEC §9): the connector's
phases read, upload, plan, stream back and write, each timed here from the
same building blocks :func:`masterplan.client.cli.cycle.run_cycle` uses, against a
server started as its own process (``masterplan serve``) so that its peak
memory is the server's alone. The SCM database is generated and written in a
separate child process, so the connector's peak RSS is not inflated by the
generator. ``--engine-only`` calls :func:`server.engine.plan` in process.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import os
import resource
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from bench.floors import (
    copy_binary_floor,
    copy_load_floor,
    copy_text_floor,
    load_floor,
    read_blocks_floor,
    read_floor,
    settle,
    write_floor,
)
from bench.generate import (
    DEFAULT_PLAN_DATE,
    generate_clusters,
    generate_tables,
    sku_count,
    write_database,
)
from masterplan.connector.schema import create_engine
from masterplan.contract.tables import PLAN_OUTPUT_TABLES, RESULT_TABLES
from masterplan.server.executors import ExecutorConfig, open_executor

__all__ = ["backend_engine", "main", "run_engine_only", "run_full"]

REPO = Path(__file__).resolve().parent.parent
DEFAULT_URLS = {
    "postgres": "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    "mariadb": "mysql+pymysql://root@127.0.0.1:3306/test",
}
URL_ENV = {
    "postgres": "MASTERPLAN_TEST_POSTGRES_URL",
    "mariadb": "MASTERPLAN_TEST_MARIADB_URL",
}
BENCH_SCHEMA = "bench"


def _rows(tables: dict[str, dict[str, Any]]) -> dict[str, int]:
    return {name: len(next(iter(t.values()))) if t else 0 for name, t in tables.items()}


def _ratio(seconds: float, floor: float) -> float | None:
    """How many times its floor a phase took."""
    return round(seconds / floor, 2) if floor > 0 else None


def _rate(rows: int, seconds: float) -> float:
    return round(rows / seconds, 1) if seconds > 0 else 0.0


def _maxrss_bytes() -> int:
    """Peak RSS of this process (``ru_maxrss`` is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _vm_hwm_bytes(pid: int) -> int | None:
    """Peak RSS of another live process, from ``/proc/<pid>/status``."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


# -- databases --------------------------------------------------------------------
def backend_engine(backend: str, workdir: Path) -> sa.Engine:
    """An engine on a fresh, empty SCM database for ``backend``.

    SQLite: a new file in ``workdir``. PostgreSQL: schema ``bench`` (dropped
    and recreated) as the connection's ``search_path``. MariaDB: database
    ``bench`` (dropped and recreated). A fresh place each time keeps runs
    comparable and never touches the test databases' own tables.
    """
    if backend == "sqlite":
        return sa.create_engine(f"sqlite:///{workdir / 'scm.db'}")
    url = sa.make_url(os.environ.get(URL_ENV[backend], DEFAULT_URLS[backend]))
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if backend == "postgres":
                conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {BENCH_SCHEMA} CASCADE")
                conn.exec_driver_sql(f"CREATE SCHEMA {BENCH_SCHEMA}")
            else:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {BENCH_SCHEMA}")
                conn.exec_driver_sql(f"CREATE DATABASE {BENCH_SCHEMA} CHARACTER SET utf8mb4")
    finally:
        admin.dispose()
    if backend == "postgres":
        return sa.create_engine(url, connect_args={"options": f"-csearch_path={BENCH_SCHEMA}"})
    # As the connector makes it (LOAD DATA LOCAL enabled for the writer).
    return create_engine(url.set(database=BENCH_SCHEMA).render_as_string(hide_password=False))


def _engine_url(engine: sa.Engine) -> tuple[str, dict[str, Any]]:
    """URL (with password) and connect args, to rebuild the engine in a child."""
    args: dict[str, Any] = {}
    if engine.dialect.name == "postgresql":
        args = {"options": f"-csearch_path={BENCH_SCHEMA}"}
    return engine.url.render_as_string(hide_password=False), args


def _prepare_database(
    n_skus: int,
    seed: int,
    plan_date: dt.date,
    url: str,
    connect_args: dict[str, Any],
    dense: bool = False,
    clusters: int = 1,
) -> dict[str, Any]:
    """Child process: generate and write the SCM database (``clusters``
    independent copies of the model); returns timings."""
    t = time.perf_counter()
    if clusters > 1:
        tables = generate_clusters(n_skus, clusters, seed, plan_date, dense)
    else:
        tables = generate_tables(n_skus, seed, plan_date, dense)
    gen_s = time.perf_counter() - t
    engine = sa.create_engine(url, connect_args=connect_args)
    try:
        t = time.perf_counter()
        counts = write_database(tables, engine)
        write_s = time.perf_counter() - t
    finally:
        engine.dispose()
    total = sum(counts.values())
    return {
        "generate": {"seconds": round(gen_s, 3), "rows": total},
        "write_database": {
            "seconds": round(write_s, 3),
            "rows": total,
            "rows_per_second": _rate(total, write_s),
        },
        "input_rows": counts,
        "generator_peak_rss_bytes": _maxrss_bytes(),
    }


# -- the server process -------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_server(
    workdir: Path, admin_key: str, options: Sequence[str] = ()
) -> tuple[subprocess.Popen[bytes], str]:
    """``masterplan serve`` on a free port, with ``options`` (``--workers N``, say)."""
    port = _free_port()
    env = {**os.environ, "MASTERPLAN_ADMIN_KEY": admin_key}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    log = (workdir / "server.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "masterplan.client.cli",
            "serve",
            "--port",
            str(port),
            "--registry",
            f"sqlite:///{workdir / 'registry.db'}",
            *options,
        ],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return proc, f"127.0.0.1:{port}"


def _install_tenant(address: str, admin_key: str, proc: subprocess.Popen[bytes]) -> str:
    """Install tenant ``bench`` once the server answers; returns its API key."""
    from masterplan.client.client import MasterplanClient

    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with status {proc.returncode}")
        try:
            with MasterplanClient(address, admin_key, timeout=5) as admin:
                return admin.install_tenant("bench").api_key
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# -- modes ------------------------------------------------------------------------------
def run_engine_only(
    n_skus: int,
    seed: int,
    plan_date: dt.date,
    runs: int = 5,
    keep_memory: bool = True,
    clusters: int = 1,
    executors: Sequence[ExecutorConfig] = (),
    dense: bool = False,
) -> dict[str, Any]:
    """Generate in memory and time :func:`server.engine.plan` alone, ``runs`` times.

    Set up as ``masterplan serve`` is: kernels loaded first, and (unless
    ``keep_memory`` is False) freed memory kept for the next run. The first
    run of a fresh process faults in every page of its working set, and the
    second grows the heap to hold a run beside the previous run's results;
    from the third on, runs show what a serving process that has planned
    before takes. ``phases.plan`` is the median of those warm runs,
    ``first_plan_seconds`` the first run; every run is listed.

    ``clusters`` > 1 plans that many independent copies of the model
    (:func:`~bench.generate.generate_clusters`). For each of ``executors``,
    the same runs are then made partitioned on it, and ``scale_out`` lists
    their comparisons with the inline runs (:func:`_scale_out`).
    """
    from masterplan.server.engine import PlanParams, plan, warm_up
    from masterplan.server.memory import keep_freed_memory, release_freed_memory

    kept = keep_freed_memory() if keep_memory else False
    released = False if keep_memory else release_freed_memory()
    warm_s = warm_up()
    t = time.perf_counter()
    if clusters > 1:
        tables = generate_clusters(n_skus, clusters, seed, plan_date, dense)
    else:
        tables = generate_tables(n_skus, seed, plan_date, dense)
    gen_s = time.perf_counter() - t
    timings: list[dict[str, Any]] = []
    for _ in range(max(runs, 1)):
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t = time.perf_counter()
        result = plan(tables, PlanParams(plan_date))
        plan_s = time.perf_counter() - t
        timings.append(
            {
                "seconds": round(plan_s, 3),
                "page_faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults,
                "engine_phase_seconds": {k: round(v, 3) for k, v in result.phase_seconds.items()},
            }
        )
    out_rows = result.row_counts()
    warm = _warm_runs(timings)
    warm_plan_s = _warm_median(timings)
    scale_out = [
        _scale_out(tables, plan_date, runs, config, result.sku_count) for config in executors
    ]
    return {
        "mode": "engine-only",
        "skus": result.sku_count,
        "clusters_generated": clusters,
        "scale_out": scale_out,
        "kernel_warm_up_seconds": round(warm_s, 3),
        "freed_memory_kept": kept,
        "freed_memory_released": released,
        "generate": {"seconds": round(gen_s, 3), "rows": sum(_rows(tables).values())},
        "input_rows": _rows(tables),
        "phases": {"plan": {"seconds": round(warm_plan_s, 3), "rows": sum(out_rows.values())}},
        "first_plan_seconds": timings[0]["seconds"],
        "warm_plan_runs": len(warm),
        "plan_runs": timings,
        "output_rows": out_rows,
        "planned_orders": out_rows["planned_orders"],
        "engine_phase_seconds": timings[-1]["engine_phase_seconds"],
        "memory": {"peak_rss_bytes": _maxrss_bytes()},
    }


def _warm_runs(timings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The runs after the first two: the heap has grown to hold a run next
    to the previous run's results, as in a serving process."""
    return timings[2:] or timings[1:] or timings


def _warm_median(timings: list[dict[str, Any]], key: str | None = None) -> Any:
    """The median over the warm runs (:func:`_warm_runs`) of each run's
    seconds, or with ``key`` of each phase of ``key``."""
    warm = _warm_runs(timings)
    if key is None:
        return float(np.median([t["seconds"] for t in warm]))
    phases = warm[-1][key]
    return {p: float(np.median([t[key].get(p, 0.0) for t in warm])) for p in phases}


def _scale_out(
    tables: dict[str, Any],
    plan_date: dt.date,
    runs: int,
    config: ExecutorConfig,
    skus: int,
) -> dict[str, Any]:
    """The runs of :func:`run_engine_only` again, partitioned on ``config``'s
    executor: the speed-up over the inline runs and the efficiency (speed-up
    per worker), in all and per engine phase (inline against the slowest
    partition's), with the cut's clusters and the memory per SKU.

    Each partitioned run follows an inline run of its own, and the two lists
    are compared: on a machine whose speed drifts over minutes (a shared
    VM's), a batch of inline runs followed by a batch of partitioned ones
    measured the drift as much as the executor.
    """
    from masterplan.server.engine import PlanParams, plan
    from masterplan.server.engine.partition import split
    from masterplan.server.engine.partitioned import balanced, plan_partitioned

    def timed(run: Any) -> dict[str, Any]:
        t = time.perf_counter()
        result = run()
        return {
            "seconds": round(time.perf_counter() - t, 3),
            "engine_phase_seconds": {k: round(v, 3) for k, v in result.phase_seconds.items()},
        }

    timings: list[dict[str, Any]] = []
    paired: list[dict[str, Any]] = []
    params = PlanParams(plan_date)
    with _opened(config) as (pool, workers, address):
        # What the cut finds, for the report; its partitions' tables (a
        # copy of the data set) go before the runs, so that the peak is the
        # runs' own. Held through them, they were a tenth of it at 1M SKUs.
        cut = split(tables, workers)
        found = {
            "clusters": cut.clusters,
            # Balanced clusters are planned apart; else the netting's levels
            # are walked in runs on the executor.
            "split_by": "clusters" if balanced(cut) else "levels",
            "partitions": len(cut.parts),
            "largest_cluster_share": round(cut.largest, 4),
            "partition_rows": cut.rows.tolist(),
        }
        del cut
        for _ in range(max(runs, 1)):
            paired.append(timed(lambda: plan(tables, params)))
            timings.append(timed(lambda: plan_partitioned(tables, params, pool, workers)))
    one, many = _warm_median(paired), _warm_median(timings)
    one_phases = _warm_median(paired, "engine_phase_seconds")
    many_phases = _warm_median(timings, "engine_phase_seconds")
    speedup = one / many if many else None
    per_phase = {
        phase: {
            "inline_seconds": round(seconds, 3),
            "partitioned_seconds": round(many_phases.get(phase, 0.0), 3),
            "speedup": round(seconds / many_phases[phase], 2) if many_phases.get(phase) else None,
        }
        for phase, seconds in one_phases.items()
    }
    for phase in ("split", "partitions", "join"):
        if phase in many_phases:
            per_phase[phase] = {"partitioned_seconds": round(many_phases[phase], 3)}
    peak = _maxrss_bytes()
    return {
        "executor": config.kind,
        "address": address,
        "workers": workers,
        **found,
        "inline_seconds": round(one, 3),
        "partitioned_seconds": round(many, 3),
        "speedup": round(speedup, 2) if speedup else None,
        "efficiency": round(speedup / workers, 2) if speedup else None,
        "phases": per_phase,
        "runs": timings,
        "inline_runs": paired,
        "peak_rss_bytes_per_sku": round(peak / max(skus, 1)),
    }


@contextmanager
def _opened(config: ExecutorConfig) -> Iterator[tuple[Executor, int, str | None]]:
    """``config``'s executor, its partitions and its Dask address; for the
    address ``local``, on a ``distributed.LocalCluster`` of ``config.workers``
    one-thread worker processes started here (and stopped after)."""
    if config.kind != "dask" or config.address != "local":
        with open_executor(config) as (pool, workers):
            yield pool, workers, config.address
        return
    from distributed import LocalCluster

    n = config.workers or os.cpu_count() or 1
    with LocalCluster(n_workers=n, threads_per_worker=1, dashboard_address=None) as cluster:
        address = cluster.scheduler_address
        with open_executor(ExecutorConfig("dask", address=address)) as (pool, workers):
            yield pool, workers, address


def run_full(
    n_skus: int,
    seed: int,
    plan_date: dt.date,
    backend: str,
    workdir: Path,
    dense: bool = False,
    release_memory: bool = False,
    rounds: int = 1,
) -> dict[str, Any]:
    """The product path: SCM database -> connector -> server process -> SCM database.

    ``release_memory``: the server runs with ``--release-memory``.
    ``rounds``: the cycle and its floors run this many times on the one
    database, each round with a fresh server and empty result tables; the
    report's phases are the rounds' medians (:func:`_median_phases`) and
    ``rounds`` lists each. On a machine whose disk and neighbours vary, one
    write and one floor can each be a quarter off; paired rounds show it.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, not {rounds}")
    engine = backend_engine(backend, workdir)
    url, connect_args = _engine_url(engine)
    # spawn: a clean child, so the generator's memory is not this process's.
    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
        report: dict[str, Any] = pool.submit(
            _prepare_database, n_skus, seed, plan_date, url, connect_args, dense
        ).result()
    report = {"mode": "full", "backend": backend, "server_release_memory": release_memory, **report}
    done: list[dict[str, Any]] = []
    try:
        for _ in range(rounds):
            if done:
                _empty_result_tables(engine)
            done.append(_full_round(engine, workdir, plan_date, release_memory))
    finally:
        engine.dispose()
    first = done[0]
    for later in done[1:]:
        if later["output_rows"] != first["output_rows"]:
            raise RuntimeError(
                f"the rounds planned {first['output_rows']} and {later['output_rows']} rows"
            )
    skus = 2 * ((n_skus + 1) // 2)
    phases = _median_phases([r["phases"] for r in done])
    server_peak = max((r["server_peak"] for r in done if r["server_peak"]), default=None)
    # This process's peak before the first round's floors, which hold whole
    # payloads: the connector's alone (a later round's would count them).
    connector_peak = first["connector_peak"]
    bytes_held = first["bytes_held"]
    report.update(
        skus=skus,
        phases=phases,
        end_to_end_seconds=round(float(np.median([r["end_to_end"] for r in done])), 3),
        output_rows=first["output_rows"],
        planned_orders=first["output_rows"]["planned_orders"],
        engine_phase_seconds={
            k: round(float(np.median([r["engine"].get(k, 0.0) for r in done])), 3)
            for k in first["engine"]
        },
        memory={
            "server_peak_rss_bytes": server_peak,
            "server_peak_bytes_per_sku": round(server_peak / skus, 1)
            if server_peak and skus
            else None,
            "connector_peak_rss_bytes": connector_peak,
            "bytes_held": bytes_held,
            "bytes_held_per_sku": round(bytes_held / skus, 1) if skus else None,
        },
    )
    if rounds > 1:
        report["rounds"] = [
            {
                "phases": r["phases"],
                "end_to_end_seconds": round(r["end_to_end"], 3),
                "server_peak_rss_bytes": r["server_peak"],
            }
            for r in done
        ]
    return report


def _empty_result_tables(engine: sa.Engine) -> None:
    """Drop the result tables and make them again, empty: the next round
    writes into what the first found.

    SQLite keeps the dropped tables' pages in its file as free pages, and a
    write that reuses them is faster than one that grows the file (40.0 and
    36.2 s against 42.1 and 44.6 s for the 1M result, in one process): the
    file is vacuumed, so that a later round's write grows it as the first
    round's did, and as the floors' fresh files grow.
    """
    from masterplan.connector.schema import METADATA, create_result_tables

    tables = [METADATA.tables[name] for name in RESULT_TABLES]
    with engine.begin() as conn:
        METADATA.drop_all(conn, tables=tables)
    create_result_tables(engine)
    if engine.dialect.name == "sqlite":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM")


#: Phase fields that are not times: the rows, from the first round, and
#: their rate, made again from the median time.
_NOT_TIMES = frozenset({"rows", "rows_per_second", "checkpointed"})


def _median_phases(rounds: Sequence[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Each phase's fields as the rounds' medians. A ratio is the median of
    each round's own ratio (a phase over its floor measured minutes apart
    on the same disk), not the ratio of two medians; a rate is the rows
    over the median time."""
    if len(rounds) == 1:
        return rounds[0]
    out: dict[str, dict[str, Any]] = {}
    for name, first in rounds[0].items():
        fields: dict[str, Any] = {}
        for key, value in first.items():
            values = [r[name][key] for r in rounds]
            if key in _NOT_TIMES or any(v is None for v in values):
                fields[key] = value
            else:
                fields[key] = round(float(np.median(values)), 3 if "ratio" not in key else 2)
        if "rows_per_second" in fields:
            fields["rows_per_second"] = _rate(fields["rows"], fields["seconds"])
        out[name] = fields
    return out


def _full_round(
    engine: sa.Engine, workdir: Path, plan_date: dt.date, release_memory: bool
) -> dict[str, Any]:
    """One round of :func:`run_full`: a server started, the data set read
    and uploaded, planned, the result streamed back and written; then the
    floors on the same rows."""
    from masterplan.client.cli.syncing import stream_snapshot
    from masterplan.client.cli.writing import WriteAsItArrives
    from masterplan.client.client import MasterplanClient
    from masterplan.connector.reader import stream_input
    from masterplan.connector.schema import create_result_tables
    from masterplan.connector.writer import writes_in_index_order

    admin_key = secrets.token_urlsafe(32)
    # A fresh registry: the round installs its tenant as the first did.
    (workdir / "registry.db").unlink(missing_ok=True)
    proc, address = _start_server(workdir, admin_key, ["--release-memory"] * release_memory)
    phases: dict[str, dict[str, Any]] = {}
    try:
        api_key = _install_tenant(address, admin_key, proc)
        parent = "tenants/bench/plans/main"

        with MasterplanClient(address, api_key) as client:
            # As ``masterplan run`` sends a snapshot: each piece goes to the
            # server while the next is read. ``read`` is the time spent
            # waiting for the database's pieces, ``upload`` the rest.
            t = time.perf_counter()
            sent = stream_snapshot(client, parent, stream_input(engine), None)
            both_s = time.perf_counter() - t
            read_s = sent.read_seconds
            up_s = both_s - read_s
            in_rows = sum(sent.table_rows.values())
            phases["read"] = {
                "seconds": round(read_s, 3),
                "rows": in_rows,
                "rows_per_second": _rate(in_rows, read_s),
            }
            phases["upload"] = {
                "seconds": round(up_s, 3),
                "rows": sent.report.rows_upserted,
                "rows_per_second": _rate(sent.report.rows_upserted, up_s),
            }
            phases["read_and_upload"] = {"seconds": round(both_s, 3), "rows": in_rows}
            bytes_held = sent.bytes_held

            # As ``masterplan run`` does: the result is written as it streams
            # back, in one transaction. Planning ends when the server
            # announces the finished run, before its first chunk.
            create_result_tables(engine)
            run_id = uuid.uuid4().hex
            checkpointed = settle(engine)
            t = time.perf_counter()
            with WriteAsItArrives(
                engine,
                run_id=run_id,
                plan_id="main",
                mode="regeneration",
                plan_date=plan_date,
                started_at=dt.datetime.now(dt.UTC),
            ) as sink:
                outcome = client.run_plan(
                    parent,
                    plan_date=plan_date,
                    run_id=run_id,
                    sink=sink,
                    index_order=writes_in_index_order(engine),
                )
                written = sink.commit()
            end = time.perf_counter()
            split = sink.begun_at if sink.begun_at is not None else end
            if not written:
                raise RuntimeError(f"run {run_id} was not written")
            out_rows = {k: int(outcome.run.row_counts.get(k, 0)) for k in PLAN_OUTPUT_TABLES}
            total_out = sum(out_rows.values())
            phases["plan"] = {"seconds": round(split - t, 3), "rows": total_out}
            phases["stream_and_write"] = {
                "seconds": round(end - split, 3),
                "rows": total_out,
                "rows_per_second": _rate(total_out, end - split),
                # The write and its floors each began at a checkpoint.
                "checkpointed": checkpointed,
            }
        server_peak = _vm_hwm_bytes(proc.pid)
    finally:
        _stop(proc)
    connector_peak = _maxrss_bytes()

    # The plain driver on the same rows, beside the phases that use it.
    floor_read, floor_read_rows = read_floor(engine)
    floor = write_floor(engine, workdir)
    if (floor_read_rows, floor.rows) != (in_rows, total_out):
        raise RuntimeError(
            f"the floors moved {floor_read_rows} and {floor.rows} rows, "
            f"the phases {in_rows} and {total_out}"
        )
    phases["read"].update(
        floor_seconds=round(floor_read, 3), floor_ratio=_ratio(read_s, floor_read)
    )
    if engine.dialect.name == "postgresql":
        # The reader asks for runs of heap blocks: the plain driver on the
        # same stream is the floor of that path (lower than the rows').
        floor_blocks, floor_blocks_rows = read_blocks_floor(engine)
        if floor_blocks_rows != in_rows:
            raise RuntimeError(f"the blocks floor counted {floor_blocks_rows} rows, not {in_rows}")
        phases["read"].update(
            floor_blocks_seconds=round(floor_blocks, 3),
            floor_blocks_ratio=_ratio(read_s, floor_blocks),
        )
    write_s = end - split
    if engine.dialect.name == "postgresql":
        # The writer sends COPY payloads made column by column, binary where
        # the tables' types take it (the project's own tables do), and loads
        # a table holding no other plan's rows (every table here) before its
        # indexes: the floor is the server storing ready payloads that way;
        # the payloads into the indexes as they go, text, and row-by-row
        # COPY are quoted beside it.
        phases["stream_and_write"]["floor_rows_seconds"] = round(floor.seconds, 3)
        text_floor = copy_text_floor(engine, workdir)
        binary_floor = copy_binary_floor(engine, workdir)
        load = copy_load_floor(engine, workdir)
        for other in (text_floor, binary_floor, load):
            if other.rows != total_out:
                raise RuntimeError(f"a COPY floor moved {other.rows} rows, not {total_out}")
        phases["stream_and_write"]["floor_text_seconds"] = round(text_floor.seconds, 3)
        phases["stream_and_write"]["floor_binary_seconds"] = round(binary_floor.seconds, 3)
        phases["stream_and_write"]["floor_load_seconds"] = round(load.seconds, 3)
        floor = load if _writes_binary(engine) else text_floor
    elif engine.dialect.name == "sqlite":
        # The writer loads a table that its rows are most of (every table
        # here) with the indexes made after the rows: so does the floor;
        # the rows inserted into the indexes as they go are quoted beside.
        # The writer's statements carry many rows each: so do the floor's;
        # one row a statement, the floor before they did, beside.
        phases["stream_and_write"]["floor_indexed_seconds"] = round(floor.seconds, 3)
        single = load_floor(engine, workdir, most_rows=1)
        floor = load_floor(engine, workdir)
        if (floor.rows, single.rows) != (total_out, total_out):
            raise RuntimeError(f"the load floors moved {floor.rows} rows, not {total_out}")
        phases["stream_and_write"]["floor_single_row_seconds"] = round(single.seconds, 3)
        phases["stream_and_write"]["floor_single_row_ratio"] = _ratio(write_s, single.seconds)
    phases["stream_and_write"].update(
        floor_seconds=round(floor.seconds, 3),
        floor_ratio=_ratio(write_s, floor.seconds),
        # Both floors commit, as the write does; without the commit:
        floor_commit_seconds=round(floor.commit_seconds, 3),
        floor_ratio_uncommitted=_ratio(write_s, floor.seconds - floor.commit_seconds),
    )
    end_to_end = (
        phases["read_and_upload"]["seconds"]
        + phases["plan"]["seconds"]
        + phases["stream_and_write"]["seconds"]
    )
    return {
        "phases": phases,
        "end_to_end": end_to_end,
        "output_rows": out_rows,
        "engine": dict(outcome.run.phase_seconds),
        "server_peak": server_peak,
        "connector_peak": connector_peak,
        "bytes_held": bytes_held,
    }


def _writes_binary(engine: sa.Engine) -> bool:
    """Whether the writer sends binary COPY into ``engine``'s result tables."""
    from masterplan.connector.copybinary import wire_types
    from masterplan.connector.schema import sql_table

    with engine.connect() as conn:
        return all(
            wire_types(conn, sql_table(name), RESULT_TABLES[name].columns) is not None
            for name in PLAN_OUTPUT_TABLES
        )


def run_embedded(
    n_skus: int, seed: int, plan_date: dt.date, workdir: Path, dense: bool = False
) -> dict[str, Any]:
    """``masterplan run`` as a user runs it on a SQLite database: one process,
    the embedded server beside the connector; its peak memory per SKU and
    per result row, from the kernel's record of the child (``wait4``)."""
    db = workdir / "scm.db"
    url = f"sqlite:///{db}"
    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
        prepared: dict[str, Any] = pool.submit(
            _prepare_database, n_skus, seed, plan_date, url, {}, dense
        ).result()
    cmd = [
        sys.executable,
        "-m",
        "masterplan.client.cli",
        "run",
        "--db",
        url,
        "--plan-date",
        plan_date.isoformat(),
        "--json",
    ]
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.stdout.read(), proc.stderr.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"masterplan run failed ({proc.returncode}): {err.decode()[-2000:]}")
    summary = json.loads(out)
    peak = usage.ru_maxrss * 1024
    skus = sku_count(n_skus)
    out_rows = sum(int(v) for v in summary["output_rows"].values())
    in_rows = int(summary["input_rows"])
    return {
        "mode": "embedded",
        "model": "dense" if dense else "standard",
        **prepared,
        "skus": skus,
        "command": " ".join(["masterplan", *cmd[3:]]),
        "seconds": round(seconds, 3),
        "phase_seconds": summary.get("seconds"),
        "input_rows": in_rows,
        "output_rows": summary["output_rows"],
        "result_rows_per_sku": round(out_rows / skus, 2),
        "memory": {
            "peak_rss_bytes": peak,
            "peak_bytes_per_sku": round(peak / skus, 1),
            "peak_bytes_per_result_row": round(peak / max(out_rows, 1), 1),
        },
    }


def _executors(text: str) -> tuple[str, ...]:
    """``--executor``: a comma-separated list of ``threads`` and ``processes``."""
    kinds = tuple(k.strip() for k in text.split(","))
    unknown = [k for k in kinds if k not in ("threads", "processes")]
    if unknown or not kinds:
        raise argparse.ArgumentTypeError(f"not threads or processes: {', '.join(unknown)}")
    return kinds


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bench``: run one benchmark and print its JSON report."""
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--skus", type=int, required=True, help="number of SKUs (items x 2 warehouses)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--backend", choices=("sqlite", "postgres", "mariadb"), default="sqlite")
    p.add_argument("--plan-date", type=dt.date.fromisoformat, default=DEFAULT_PLAN_DATE)
    p.add_argument("--out", help="also write the report to this file")
    p.add_argument("--engine-only", action="store_true", help="time server.engine.plan alone")
    p.add_argument(
        "--runs",
        type=int,
        default=5,
        help="engine-only: plan this many times in one process (default 5; the median "
        "from the third run on is reported)",
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="full cycle: run it and its floors this many times on the one database "
        "(default 1); the phases are the rounds' medians, each round is listed",
    )
    p.add_argument(
        "--release-memory",
        action="store_true",
        help="freed memory given back to the OS: engine-only as serve --release-memory does; "
        "full cycle: the server is started with it",
    )
    p.add_argument(
        "--dense",
        action="store_true",
        help="the dense model: six levels, 10-30 sales lines per finished good (bench/README.md)",
    )
    p.add_argument(
        "--embedded",
        action="store_true",
        help="masterplan run on a SQLite database, its embedded server in the same process",
    )
    p.add_argument(
        "--clusters",
        type=int,
        default=1,
        help="engine-only and net-change: that many independent copies of the model "
        "(product families)",
    )
    p.add_argument(
        "--workers",
        type=int,
        help="engine-only: also plan partitioned on this many workers, and compare; "
        "net-change: the server plans over this many partitions",
    )
    p.add_argument(
        "--executor",
        type=_executors,
        default=("threads",),
        help="with --workers: threads (default), processes, or both as "
        "threads,processes: a thread pool, a process pool, each compared in turn",
    )
    p.add_argument(
        "--dask",
        metavar="ADDR",
        help="engine-only: also plan partitioned on the Dask cluster at ADDR, and compare; "
        "'local' starts a LocalCluster of --workers one-thread processes",
    )
    p.add_argument(
        "--ceiling",
        action="store_true",
        help="engine-only: instead of the runs, the most --workers cores give (default 2): "
        "whole plans in sequence, side by side in processes, and on threads, --runs rounds "
        "(bench/ceiling.py)",
    )
    p.add_argument(
        "--net-change",
        action="store_true",
        help="a regeneration, one changed sales line, a net change, and promise latency",
    )
    p.add_argument(
        "--promise-calls", type=int, default=100, help="net-change: Simulate calls to time"
    )
    args = p.parse_args(argv)
    if args.rounds < 1:
        p.error("--rounds must be at least 1")
    if args.rounds > 1 and (args.engine_only or args.embedded or args.net_change):
        p.error("--rounds repeats the full cycle; --engine-only has --runs")
    if args.ceiling and not args.engine_only:
        p.error("--ceiling plans in process: it needs --engine-only")
    started = time.perf_counter()
    if args.net_change:
        from bench.netchange import run_net_change

        with tempfile.TemporaryDirectory(prefix="masterplan-bench-") as tmp:
            serve = []
            if args.workers:
                serve = ["--workers", str(args.workers), "--executor", args.executor[0]]
            report = run_net_change(
                args.skus,
                args.seed,
                args.plan_date,
                args.backend,
                Path(tmp),
                args.promise_calls,
                args.clusters,
                serve,
            )
    elif args.embedded:
        with tempfile.TemporaryDirectory(prefix="masterplan-bench-") as tmp:
            report = run_embedded(args.skus, args.seed, args.plan_date, Path(tmp), args.dense)
    elif args.engine_only and args.ceiling:
        from bench.ceiling import measure_ceiling

        ceiling = measure_ceiling(
            args.skus,
            args.seed,
            args.plan_date,
            args.workers or 2,
            args.dense,
            not args.release_memory,
            args.runs,
        )
        report = {"mode": "ceiling", "skus": args.skus, **ceiling}
    elif args.engine_only:
        configs = [ExecutorConfig(kind, args.workers) for kind in args.executor if args.workers]
        if args.dask:
            configs.append(ExecutorConfig("dask", args.workers or 0, args.dask))
        report = run_engine_only(
            args.skus,
            args.seed,
            args.plan_date,
            args.runs,
            not args.release_memory,
            args.clusters,
            configs,
            args.dense,
        )
    else:
        with tempfile.TemporaryDirectory(prefix="masterplan-bench-") as tmp:
            report = run_full(
                args.skus,
                args.seed,
                args.plan_date,
                args.backend,
                Path(tmp),
                args.dense,
                args.release_memory,
                args.rounds,
            )
    report = {
        "requested_skus": args.skus,
        "seed": args.seed,
        "plan_date": args.plan_date.isoformat(),
        **report,
        "total_seconds": round(time.perf_counter() - started, 3),
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0
