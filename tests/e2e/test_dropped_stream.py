"""``masterplan run`` finishes its write after the run's stream is cut mid-results.

A real server process, a proxy between it and the connector that resets the
connection halfway through the result chunks, and a real SCM database: the
run is planned once, its kept results are read again, and the written plan
equals the plan of an uncut run of the same data.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.generate import generate_tables, write_database
from masterplan.client.client import MasterplanClient
from tests.e2e.test_net_change_sequences import plan_rows
from tests.faultproxy import CuttingProxy
from tests.served import CLI, ROOT, Served

T0 = dt.date(2026, 1, 5)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    srv = Served(tmp_path)
    try:
        yield srv
    finally:
        srv.stop()


def test_a_stream_cut_halfway_through_the_results_is_read_again_and_written(
    served: Served, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'scm.db'}"
    write_database(generate_tables(2_000, seed=7, plan_date=T0), url)
    key = served.install("acme")
    proxy = CuttingProxy(served.address)
    env_args = [*("--db", url, "--server", proxy.address, "--api-key", key)]
    args = [*CLI, "run", *env_args, "--plan-date", T0.isoformat(), "--json"]
    try:
        before = proxy.sent
        probe = subprocess.run(
            [*args, "--plan", "probe"], cwd=ROOT, capture_output=True, text=True, timeout=300
        )
        assert probe.returncode == 0, probe.stderr
        whole_cycle = proxy.sent - before
        # Most of what a cycle receives is its result chunks: half of it is
        # well inside them.
        proxy.cut_in(whole_cycle // 2)
        done = subprocess.run(
            [*args, "--plan", "main"], cwd=ROOT, capture_output=True, text=True, timeout=300
        )
        assert proxy.cuts == 1, "the proxy never cut the stream"
    finally:
        proxy.close()
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["read_again"] is True
    assert summary["written"] is True
    written = plan_rows(url, "main")
    assert written == plan_rows(url, "probe")
    assert sum(len(rows) for rows in written.values()) > 1000
    # Planned once: the server holds one run of the plan, the one written.
    with MasterplanClient(served.address, key) as c:
        runs = c.list_runs("tenants/acme/plans/main")
    assert [r.run_id for r in runs] == [summary["run_id"]]
    assert runs[0].state == runs[0].SUCCEEDED


def test_the_bars_count_each_row_once_when_a_cut_stream_is_read_again(
    served: Served, tmp_path: Path
) -> None:
    """The rows of the lost stream are taken back off the stream-back and
    write bars: after the kept run is read again, each counts the plan's rows."""
    from masterplan.client.cli.cycle import CycleOptions, run_cycle
    from tests.cli.test_cycle_progress import Recorder

    url = f"sqlite:///{tmp_path / 'scm.db'}"
    write_database(generate_tables(2_000, seed=7, plan_date=T0), url)
    key = served.install("acme")
    proxy = CuttingProxy(served.address)
    options = CycleOptions(
        db_url=url,
        server=proxy.address,
        api_key=key,
        plan_date=T0,
        state_dir=tmp_path / "state",
    )
    try:
        before = proxy.sent
        run_cycle(dataclasses.replace(options, plan="probe"))
        proxy.cut_in((proxy.sent - before) // 2)
        rec = Recorder()
        report = run_cycle(options, rec)
        assert proxy.cuts == 1, "the proxy never cut the stream"
    finally:
        proxy.close()
    assert report.read_again and report.written
    outputs = sum(report.output_rows.values())
    assert rec.rows["stream back"] == outputs == rec.rows["write"] == rec.totals["write"]
