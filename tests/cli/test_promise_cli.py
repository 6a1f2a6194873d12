"""``masterplan promise`` as a subprocess: a simulated sales line, and nothing written.

The bicycle below, planned on 2026-01-05, worked out by hand from SPEC §5
(requirement coverage, calendar days, no fences): a new line of 5 BIKE
requested on 01-08 takes the 1 on hand and a planned BIKE/W1/1 of 4 due
01-08, ordered 01-06. That order needs 4 FRAME on 01-06: FRAME/W1/1 of 4
ordered 01-03, clamped to T0 (01-05) and so due 01-08; it needs 12 TUBE on
01-05, of which 2 are on hand: TUBE/W1/1 of 10 ordered at T0 arrives 01-10
(SPEC §5.6). Futures (SPEC §5.7): the TUBE requirement is covered 01-10, so
FRAME/W1/1 is available 01-10 + 3 = 01-13, BIKE/W1/1 01-13 + 2 = 01-15, and
the new line is 7 days late.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from masterplan.client.client import MasterplanClient
from masterplan.connector.demo import build_demo_database
from masterplan.connector.reader import read_input
from masterplan.connector.schema import create_engine
from masterplan.contract.columns import Table, table_length
from tests.served import Served

MASTERPLAN = [sys.executable, "-m", "masterplan.client.cli"]
ROOT = Path(__file__).parents[2]
PARENT = "tenants/acme/plans/main"


def masterplan(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MASTERPLAN, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=180,
        env={**os.environ, **(env or {})},
    )


def make_db(path: Path) -> str:
    """The bicycle in a database made by ``masterplan scm init``.

    A sales line ``PROMISE/1`` (of another item) exists already, so that the
    simulated line must take ``PROMISE-2``.
    """
    url = f"sqlite:///{path}"
    done = masterplan("scm", "init", "--db", url)
    assert done.returncode == 0, done.stderr
    con = sqlite3.connect(path)
    con.executescript(
        """
        INSERT INTO warehouses (warehouse_id, site_id) VALUES ('W1', 'S1');
        INSERT INTO items (item_id, default_order_type, lead_time_days, min_order_qty,
                           max_order_qty, multiple_qty)
        VALUES ('BIKE', 'production', 2, 0, 0, 0), ('FRAME', 'production', 3, 0, 0, 0),
               ('TUBE', 'purchase', 5, 0, 0, 0), ('BELL', 'purchase', 1, 0, 0, 0);
        INSERT INTO boms (bom_id, item_id, batch_qty)
        VALUES ('B-BIKE', 'BIKE', 1), ('B-FRAME', 'FRAME', 1);
        INSERT INTO bom_lines (bom_id, line_no, component_item_id, qty_per, scrap_pct, scrap_const)
        VALUES ('B-BIKE', 10, 'FRAME', 1, 0, 0), ('B-FRAME', 10, 'TUBE', 3, 0, 0);
        INSERT INTO on_hand (item_id, warehouse_id, qty)
        VALUES ('BIKE', 'W1', 1), ('TUBE', 'W1', 2), ('BELL', 'W1', 9);
        INSERT INTO sales_lines (order_id, line_no, item_id, warehouse_id, qty, requested_date,
                                 priority)
        VALUES ('PROMISE', 1, 'BELL', 'W1', 2, '2026-01-06', 0);
        """
    )
    con.commit()
    con.close()
    return url


def content(path: Path) -> tuple[str, dict[str, list[tuple[object, ...]]]]:
    """The database file's digest and every table's rows."""
    con = sqlite3.connect(path)
    try:
        names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        rows = {n: sorted(con.execute(f'SELECT * FROM "{n}"').fetchall(), key=repr) for n in names}
    finally:
        con.close()
    return hashlib.sha256(path.read_bytes()).hexdigest(), rows


@pytest.fixture
def bicycle(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    path = tmp_path / "scm.db"
    url = make_db(path)
    before = content(path)
    yield path, url
    assert content(path) == before, "masterplan promise changed the SCM database"


def test_a_late_promise_by_the_hand_computed_days(bicycle: tuple[Path, str]) -> None:
    _path, url = bicycle
    done = masterplan(
        "promise", "BIKE", "5", "--date", "2026-01-08", "--db", url,
        "--plan-date", "2026-01-05", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["warehouse"] == "W1"  # the item's only warehouse
    assert answer["ref"] == "SO:PROMISE-2/1"  # PROMISE/1 exists
    assert (answer["requirement_date"], answer["futures_date"], answer["delay_days"]) == (
        "2026-01-08",
        "2026-01-15",
        7,
    )
    assert not answer["on_time"] and not answer["never_covered"]
    assert [(s["ref"], s["qty"], s["planned"]) for s in answer["supplies"]] == [
        ("OH:BIKE/W1", 1.0, False),
        ("PL:BIKE/W1/1", 4.0, True),
    ]
    # the data as it is plans nothing for BIKE: three orders more
    assert answer["planned_orders_net"] == 3
    assert answer["plan_date"] == "2026-01-05"


def test_the_readable_block_of_an_on_time_promise(bicycle: tuple[Path, str]) -> None:
    _path, url = bicycle
    done = masterplan(
        "promise", "BIKE", "1", "--date", "2026-01-20", "--db", url, "--plan-date", "2026-01-05"
    )
    assert done.returncode == 0, done.stderr
    first = done.stdout.splitlines()[0]
    assert first == "BIKE x 1 at W1: on time, on 2026-01-20"
    assert "existing  OH:BIKE/W1" in done.stdout
    assert "+0 planned order(s)" in done.stdout


def test_a_late_promise_reads_as_a_date(bicycle: tuple[Path, str]) -> None:
    _path, url = bicycle
    done = masterplan(
        "promise", "BIKE", "5", "--date", "2026-01-08", "--db", url, "--plan-date", "2026-01-05"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(
        "BIKE x 5 at W1: can be delivered on 2026-01-15 (7 days after the requested 2026-01-08)"
    )
    assert re.search(r"planned\s+PL:BIKE/W1/1\s+2026-01-08\s+4", done.stdout)


def test_refusals_are_one_line(bicycle: tuple[Path, str]) -> None:
    _path, url = bicycle
    unknown = masterplan("promise", "NOPE", "1", "--db", url)
    assert unknown.returncode == 1
    assert unknown.stderr.strip().splitlines() == [
        "masterplan: item 'NOPE' is not in the items table"
    ]
    nowhere = masterplan("promise", "BIKE", "-1", "--db", url)
    assert nowhere.returncode == 2  # a usage error
    neither = masterplan("promise", "BIKE", "1")
    assert neither.returncode == 2 and "--db" in neither.stderr  # a usage error
    assert len(neither.stderr.strip().splitlines()) == 1


def test_on_the_demo_database(tmp_path: Path) -> None:
    path = tmp_path / "demo.db"
    url = f"sqlite:///{path}"
    build_demo_database(url, dt.date(2026, 1, 5))
    before = content(path)
    ambiguous = masterplan("promise", "FG-001", "10", "--db", url, "--plan-date", "2026-01-05")
    assert ambiguous.returncode == 1
    assert ambiguous.stderr.strip() == (
        "masterplan: item 'FG-001' is in several warehouses, give --warehouse W: DC, PLANT"
    )
    done = masterplan(
        "promise", "FG-001", "500", "--warehouse", "DC", "--db", url, "--plan-date", "2026-01-05"
    )
    assert done.returncode == 0, done.stderr
    assert re.match(
        r"FG-001 x 500 at DC: can be delivered on \d{4}-\d{2}-\d{2} \(\d+ days after", done.stdout
    )
    assert content(path) == before


def test_against_a_server_that_holds_the_plan(tmp_path: Path, bicycle: tuple[Path, str]) -> None:
    _path, url = bicycle
    served = Served(tmp_path)
    try:
        key = served.install("acme")
        server = ["--server", served.address, "--api-key", key]
        with MasterplanClient(served.address, key) as client:
            client.upload(PARENT, _read(url).items())
            client.run_plan(PARENT, plan_date=dt.date(2026, 1, 5))
        no_warehouse = masterplan("promise", "BIKE", "5", *server)
        assert no_warehouse.returncode == 2 and "--warehouse" in no_warehouse.stderr
        done = masterplan(
            "promise", "BIKE", "5", "--date", "2026-01-08", "--warehouse", "W1", "--json", *server
        )
        assert done.returncode == 0, done.stderr
        answer = json.loads(done.stdout)
        # the plan date is the last run's; PROMISE/1 is a demand of it
        assert answer["plan_date"] == "2026-01-05"
        assert answer["ref"] == "SO:PROMISE-2/1"
        assert (answer["futures_date"], answer["delay_days"]) == ("2026-01-15", 7)
        assert answer["base_run_id"]
        assert answer["planned_orders_net"] == 3
        # nothing stored: the run is still the only one
        with MasterplanClient(served.address, key) as client:
            assert len(client.list_runs(PARENT)) == 1
    finally:
        served.stop()


def _read(url: str) -> dict[str, Table]:
    engine = create_engine(url)
    try:
        return read_input(engine)
    finally:
        engine.dispose()


def test_a_promise_from_a_database_shows_its_progress(bicycle: tuple[Path, str]) -> None:
    """SPEC §8: long work shows progress on a terminal. With ``--db`` the
    whole database is read, uploaded and planned before the question: each
    step reports as ``run``'s do, and the display is closed at the end."""
    from masterplan.client.cli.progress import CycleProgress
    from masterplan.client.cli.promise import PromiseOptions, promise

    class Seen(CycleProgress):
        def __init__(self) -> None:
            self.events: list[tuple[str, str]] = []
            self.totals: dict[str, int | None] = {}
            self.rows: dict[str, int] = {}
            self.fractions: list[float] = []

        def begin(self, phase: str, total: int | None = None) -> None:
            self.events.append(("begin", phase))
            self.totals[phase] = total

        def advance(self, phase: str, rows: int) -> None:
            self.rows[phase] = self.rows.get(phase, 0) + rows

        def fraction(self, phase: str, done: float, note: str = "") -> None:
            self.fractions.append(done)

        def end(self, phase: str) -> None:
            self.events.append(("end", phase))

        def close(self) -> None:
            self.events.append(("close", ""))

    _path, url = bicycle
    seen = Seen()
    report = promise(
        PromiseOptions("BIKE", 2, db_url=url, plan_date=dt.date(2026, 1, 5)), progress=seen
    )
    assert report.promise.futures_date
    phases = ["read", "upload", "plan", "simulate"]
    assert seen.events == [(e, p) for p in phases for e in ("begin", "end")] + [("close", "")]
    rows = sum(table_length(t) for t in _input(url).values())
    assert seen.rows["read"] == seen.rows["upload"] == seen.totals["upload"] == rows
    assert seen.fractions and seen.fractions == sorted(seen.fractions)


def _input(url: str) -> dict[str, Table]:
    engine = create_engine(url)
    try:
        return read_input(engine)
    finally:
        engine.dispose()
