"""Process-level faults: SIGTERM drains, SIGKILL of the server mid-run and of
the connector mid-write; each followed by a successful rerun, and the SCM
database always holding one complete plan."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from masterplan.client import errors
from masterplan.client.client import MasterplanClient
from masterplan.contract.rows import from_rows
from masterplan.contract.tables import INPUT_TABLES
from masterplan.v1 import planning_pb2
from tests.e2e.scm_sql import INPUT_DDL
from tests.served import CLI, ROOT, Served, free_port


@pytest.fixture
def serve(tmp_path: Path) -> Iterator:  # type: ignore[no-untyped-def]
    started: list[Served] = []

    def start(port: int | None = None, *extra: str) -> Served:
        s = Served(tmp_path, *extra, port=port)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


def big_tables(n: int) -> list[tuple[str, dict]]:
    """n purchased items with two sales lines each: enough work to be caught mid-run."""
    import numpy as np

    items = np.array([f"I{i:06d}" for i in range(n)], dtype=object)
    tables = {name: from_rows(INPUT_TABLES[name], []) for name in INPUT_TABLES}
    tables["warehouses"] = from_rows(
        INPUT_TABLES["warehouses"], [{"warehouse_id": "W1", "site_id": "S"}]
    )
    tables["items"] = from_rows(INPUT_TABLES["items"], [])
    tables["items"] = {
        c: np.full(n, np.nan) if v.dtype.kind == "f" else np.full(n, None, dtype=object)
        for c, v in tables["items"].items()
    }
    tables["items"]["item_id"] = items
    tables["items"]["lead_time_days"] = np.full(n, 3.0)
    m = 2 * n
    tables["sales_lines"] = {
        "order_id": np.repeat(items, 2),
        "line_no": np.tile([1.0, 2.0], n),
        "item_id": np.repeat(items, 2),
        "warehouse_id": np.full(m, "W1", dtype=object),
        "qty": np.full(m, 5.0),
        "requested_date": np.datetime64("2026-01-10") + np.arange(m) % 60,
        "priority": np.zeros(m),
    }
    return list(tables.items())


def test_sigterm_drains_in_flight_runs_and_health_turns_not_serving(serve) -> None:  # type: ignore[no-untyped-def]
    srv = serve(None, "--drain", "8", "--grace", "60")
    key = srv.install("acme")
    with MasterplanClient(srv.address, key) as c:
        c.upload("tenants/acme/plans/main", big_tables(20_000))
        events = c.run_plan_events(
            planning_pb2.RunPlanRequest(parent="tenants/acme/plans/main", plan_date="2026-01-05")
        )
        assert next(events).WhichOneof("event") == "started"
        srv.proc.send_signal(signal.SIGTERM)
        seen = []
        with grpc.insecure_channel(srv.address) as ch:
            health = health_pb2_grpc.HealthStub(ch)
            for _ in range(70):  # within the 8 s drain window, on a loaded machine too
                seen.append(health.Check(health_pb2.HealthCheckRequest(), timeout=5).status)
                if seen[-1] == health_pb2.HealthCheckResponse.NOT_SERVING:
                    break
                time.sleep(0.1)
        assert seen[-1] == health_pb2.HealthCheckResponse.NOT_SERVING, seen
        kinds = [e.WhichOneof("event") for e in events]
        assert kinds[-1] == "summary"  # the in-flight run finished
        assert "result_chunk" in kinds
    assert srv.proc.wait(60) == 0


def make_scm(path: Path, n: int) -> str:
    con = sqlite3.connect(path)
    for ddl in INPUT_DDL:
        con.execute(ddl)
    con.execute("INSERT INTO warehouses VALUES ('W1', 'S1', NULL)")
    con.executemany(
        "INSERT INTO items VALUES (?, 'purchase', NULL, 3, 0, 0, 0, NULL)",
        [(f"I{i:06d}",) for i in range(n)],
    )
    con.executemany(
        "INSERT INTO sales_lines VALUES (?, 1, ?, 'W1', 4, ?, 0)",
        [(f"S{i}", f"I{i:06d}", f"2026-01-{10 + i % 20:02d}") for i in range(n)],
    )
    con.commit()
    con.close()
    return f"sqlite:///{path}"


def plan_state(path: Path) -> tuple[str | None, bool]:
    """(current run, whether the plan's rows are those of a complete run).

    The result tables hold the current plan (SPEC §4): its rows count what
    the current run's ``plan_runs`` row says the whole plan holds, and every
    row names a run the history lists (no run is pruned here).
    """
    con = sqlite3.connect(path)
    try:
        cur = con.execute("SELECT current_run_id FROM plans WHERE plan_id = 'main'").fetchone()
        runs = dict(con.execute("SELECT run_id, planned_order_count FROM plan_runs").fetchall())
        rows = dict(
            con.execute(
                "SELECT run_id, COUNT(*) FROM planned_orders WHERE plan_id = 'main' GROUP BY run_id"
            ).fetchall()
        )
    finally:
        con.close()
    current = cur[0] if cur else None
    if current is None:
        return None, not rows
    complete = set(rows) <= set(runs) and sum(rows.values()) == runs.get(current)
    return current, complete


def test_sigkill_of_the_server_mid_run_then_a_rerun(serve, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    srv = serve(port)
    key = srv.install("acme")
    db = tmp_path / "scm.db"
    url = make_scm(db, 2_000)
    env = {**os.environ, "MASTERPLAN_API_KEY": key}
    done = subprocess.run(
        [*CLI, "run", "--db", url, "--server", srv.address, "--plan-date", "2026-01-05"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    before = plan_state(db)
    with MasterplanClient(srv.address, key) as c:
        c.upload("tenants/acme/plans/main", big_tables(20_000))
        events = c.run_plan_events(
            planning_pb2.RunPlanRequest(parent="tenants/acme/plans/main", plan_date="2026-01-05")
        )
        assert next(events).WhichOneof("event") == "started"
        srv.proc.kill()
        with pytest.raises(errors.MasterplanClientError):
            list(events)
    srv.proc.wait(30)
    done = subprocess.run(
        [*CLI, "run", "--db", url, "--server", srv.address, "--plan-date", "2026-01-05"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0 and "UNAVAILABLE" in done.stderr
    assert plan_state(db) == before
    serve(port)  # the same registry: the tenant and its key survive a restart
    done = subprocess.run(
        [
            *CLI,
            "run",
            "--db",
            url,
            "--server",
            f"127.0.0.1:{port}",
            "--plan-date",
            "2026-01-05",
            "--json",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    current, complete = plan_state(db)
    assert current == json.loads(done.stdout)["run_id"] and current != before[0] and complete


def test_sigkill_of_the_connector_at_any_moment_leaves_one_complete_plan(tmp_path: Path) -> None:
    db = tmp_path / "scm.db"
    url = make_scm(db, 30_000)
    args = [*CLI, "run", "--db", url, "--plan-date", "2026-01-05"]
    start = time.monotonic()
    assert subprocess.run(args, cwd=ROOT, capture_output=True, timeout=300).returncode == 0
    duration = time.monotonic() - start
    first, complete = plan_state(db)
    assert first and complete
    seen = {first}
    for fraction in (0.5, 0.75, 0.9, 0.97):
        proc = subprocess.Popen(
            args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(duration * fraction)
        proc.kill()
        proc.wait(30)
        current, complete = plan_state(db)
        assert complete, f"a kill at {fraction:.0%} left a partial run"
        assert current in seen or current is not None
        seen.add(current)
    assert subprocess.run(args, cwd=ROOT, capture_output=True, timeout=300).returncode == 0
    current, complete = plan_state(db)
    assert complete and current not in (None, first)
