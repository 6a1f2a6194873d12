"""SIGKILL of ``masterplan run`` at seeded random points of its upload, on every backend.

The client process reads the SCM database, streams the data set to a served
tenant, plans and writes the plan back. Killed while it uploads, the server
must keep the data set it held (the previous version, whole) or, if the
stream had arrived whole, the new one, whole: never the chunks that arrived
before the kill. The SCM database must hold one complete plan after every
kill.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from bench.generate import generate_tables, write_database
from masterplan.client import errors
from masterplan.client.client import MasterplanClient
from tests.backends import BACKENDS, database_url
from tests.served import CLI, ROOT, Served

T0 = dt.date(2026, 1, 5)
PLAN = "tenants/acme/plans/main"
KILLS = 3


@pytest.fixture(params=BACKENDS)
def scm_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from database_url(request.param, tmp_path)


def one_complete_plan(url: str) -> str | None:
    """The SCM database's current run, after checking the plan's rows are all there.

    The result tables hold the current plan (SPEC §4): its rows count what
    the current run's ``plan_runs`` row says, and every row names a run the
    history lists.
    """
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            current = conn.execute(
                sa.text("SELECT current_run_id FROM plans WHERE plan_id = 'main'")
            ).scalar()
            runs = dict(
                conn.execute(sa.text("SELECT run_id, planned_order_count FROM plan_runs")).all()
            )
            rows = dict(
                conn.execute(
                    sa.text(
                        "SELECT run_id, COUNT(*) FROM planned_orders WHERE plan_id = 'main' "
                        "GROUP BY run_id"
                    )
                ).all()
            )
    finally:
        engine.dispose()
    assert current in runs, (current, runs)
    assert set(rows) <= set(runs), "planned orders of a run the database does not list"
    assert sum(rows.values()) == runs[current], f"run {current}: {rows} of {runs[current]} orders"
    return str(current)


def held(address: str, key: str) -> tuple[int, int]:
    """(data-set version, planned orders) of the plan the server holds now.

    A kill that landed in the killed client's run leaves that run to end on
    the server (it notices the dropped stream): until then the plan is busy.
    """
    deadline = time.monotonic() + 60
    with MasterplanClient(address, key, stream_timeout=120) as c:
        while True:
            try:
                outcome = c.run_plan(PLAN, plan_date=T0)
                break
            except errors.Aborted:
                assert time.monotonic() < deadline, "the killed client's run never ended"
                time.sleep(0.2)
    return outcome.run.dataset_version, len(outcome.tables["planned_orders"]["item_id"])


def upload_seconds(log: Path) -> float:
    found = re.findall(r"upload finished .*?seconds=([0-9.]+)", log.read_text())
    return float(found[-1])


def uploads_started(log: Path) -> int:
    return log.read_text().count("upload started")


def test_sigkill_of_the_client_mid_upload_keeps_a_whole_data_set(
    scm_url: str, tmp_path: Path
) -> None:
    rng = random.Random(20261203)
    srv = Served(tmp_path)
    try:
        key = srv.install("acme")
        args = [
            *CLI,
            *("run", "--db", scm_url, "--server", srv.address, "--api-key", key),
            *("--plan-date", T0.isoformat(), "--json"),
        ]

        def run_cli() -> subprocess.CompletedProcess[str]:
            return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)

        write_database(generate_tables(2_000, seed=1, plan_date=T0), scm_url)
        done = run_cli()
        assert done.returncode == 0, done.stderr
        first_orders = json.loads(done.stdout)["output_rows"]["planned_orders"]
        assert held(srv.address, key) == (1, first_orders)
        one_complete_plan(scm_url)
        # A larger data set: a partial upload of it would plan another number of orders.
        write_database(generate_tables(20_000, seed=2, plan_date=T0), scm_url)
        # How long its upload takes, from a run of another plan: the kills
        # land at random points within that time after the upload started.
        probe = subprocess.run(
            [*args, "--plan", "probe"], cwd=ROOT, capture_output=True, text=True, timeout=300
        )
        assert probe.returncode == 0, probe.stderr
        seconds = upload_seconds(srv.log)
        seen: list[tuple[int, int]] = []
        for _ in range(KILLS):
            started = uploads_started(srv.log)
            proc = subprocess.Popen(
                args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            deadline = time.monotonic() + 120
            while uploads_started(srv.log) == started and proc.poll() is None:
                assert time.monotonic() < deadline, "the client never started its upload"
                time.sleep(0.005)
            time.sleep(rng.uniform(0.0, seconds))
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
            seen.append(held(srv.address, key))
            one_complete_plan(scm_url)
        done = run_cli()
        assert done.returncode == 0, done.stderr
        new_orders = json.loads(done.stdout)["output_rows"]["planned_orders"]
        assert new_orders != first_orders
        assert one_complete_plan(scm_url) == json.loads(done.stdout)["run_id"]
        # Each kill left version 1 with its plan, or a later version, whole.
        for version, orders in seen:
            assert orders == (first_orders if version == 1 else new_orders), seen
        print(f"kills left (version, planned orders): {seen}; an upload takes {seconds} s")
    finally:
        srv.stop()
