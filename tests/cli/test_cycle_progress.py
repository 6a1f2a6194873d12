"""The cycle's progress events and run retention, on a real embedded server."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections import defaultdict
from pathlib import Path

from masterplan.client.cli.cycle import CycleOptions, run_cycle
from masterplan.client.cli.progress import CycleProgress
from tests.cli.test_run_cli import make_db


class Recorder(CycleProgress):
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.rows: dict[str, int] = defaultdict(int)
        self.totals: dict[str, int | None] = {}
        self.fractions: list[float] = []
        self.closed = False

    def begin(self, phase: str, total: int | None = None) -> None:
        self.events.append(("begin", phase))
        self.totals[phase] = total

    def advance(self, phase: str, rows: int) -> None:
        self.rows[phase] += rows

    def fraction(self, phase: str, done: float, note: str = "") -> None:
        self.fractions.append(done)

    def end(self, phase: str) -> None:
        self.events.append(("end", phase))

    def close(self) -> None:
        self.closed = True


def test_progress_counts_every_row_of_every_phase(tmp_path: Path) -> None:
    url = make_db(tmp_path / "scm.db")
    rec = Recorder()
    report = run_cycle(CycleOptions(db_url=url, plan_date=dt.date(2026, 1, 5)), rec)
    inputs = sum(report.input_rows.values())
    outputs = sum(report.output_rows.values())
    # A snapshot is sent as it is read: the upload's total is not known
    # before the last table is read.
    assert rec.rows["read"] == inputs == rec.rows["upload"]
    assert rec.totals["upload"] is None and report.sync.kind == "snapshot"
    assert rec.rows["stream back"] == outputs == rec.rows["write"] == rec.totals["write"]
    assert [p for kind, p in rec.events if kind == "end"] == [
        "read",
        "upload",
        "plan",
        "stream back",
        "write",
    ]
    assert rec.fractions and rec.fractions == sorted(rec.fractions) and rec.closed


def test_keep_runs_prunes_older_runs_but_never_the_current(tmp_path: Path) -> None:
    db = tmp_path / "scm.db"
    url = make_db(db)
    runs = [
        run_cycle(CycleOptions(db_url=url, plan_date=dt.date(2026, 1, 5), keep_runs=2)).run_id
        for _ in range(3)
    ]
    con = sqlite3.connect(db)
    kept = {r for (r,) in con.execute("SELECT run_id FROM plan_runs")}
    with_rows = {r for (r,) in con.execute("SELECT DISTINCT plan_id FROM pegging")}
    current = con.execute("SELECT current_run_id FROM plans").fetchone()[0]
    con.close()
    # The history keeps two runs; the result tables hold the current plan.
    assert kept == set(runs[1:]) and current == runs[2] and with_rows == {"main"}
