"""``masterplan run`` as a subprocess on a database made with plain SQL.

The bicycle example below is computed by hand from SPEC §5 (requirement
coverage, calendar-day lead times):

* BIKE (production, 2 days) needs 5 on 01-20 and has 1 on hand: planned
  BIKE/W1/1 of 4, ordered 01-18; its BOM asks 1 FRAME (line 10) and 2 WHEEL
  (line 20) each, on 01-18.
* FRAME (production, 3 days): FRAME/W1/1 of 4 due 01-18, ordered 01-15; it
  asks 3 TUBE each on 01-15.
* WHEEL (purchase, 4 days, vendor V2): 8 needed on 01-18; the open purchase
  order P1/1 of 4 on 01-15 covers half, WHEEL/W1/1 of 4 ordered 01-14 the
  rest; P1/1 is needed 3 days later than it comes: postpone to 01-18.
* TUBE (purchase, 5 days, vendor V1): 12 needed on 01-15, 2 on hand:
  TUBE/W1/1 of 10 ordered 01-10.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from masterplan.client.cli import main
from tests.e2e.scm_sql import INPUT_DDL
from tests.served import ADMIN, Served

MASTERPLAN = [sys.executable, "-m", "masterplan.client.cli"]
ROOT = Path(__file__).parents[2]


def make_db(path: Path, skip_table: str | None = None) -> str:
    con = sqlite3.connect(path)
    for ddl in INPUT_DDL:
        if skip_table and ddl.startswith(f"CREATE TABLE {skip_table} "):
            continue
        con.execute(ddl)
    con.executescript(
        """
        INSERT INTO warehouses VALUES ('W1', 'S1', NULL);
        INSERT INTO items VALUES ('BIKE', 'production', NULL, 2, 0, 0, 0, NULL);
        INSERT INTO items VALUES ('FRAME', 'production', NULL, 3, 0, 0, 0, NULL);
        INSERT INTO items VALUES ('TUBE', 'purchase', NULL, 5, 0, 0, 0, 'V1');
        INSERT INTO items VALUES ('WHEEL', 'purchase', NULL, 4, 0, 0, 0, 'V2');
        INSERT INTO boms VALUES ('B-BIKE', 'BIKE', NULL, NULL, NULL, 1);
        INSERT INTO boms VALUES ('B-FRAME', 'FRAME', NULL, NULL, NULL, 1);
        INSERT INTO bom_lines VALUES ('B-BIKE', 10, 'FRAME', 1, 0, 0, NULL);
        INSERT INTO bom_lines VALUES ('B-BIKE', 20, 'WHEEL', 2, 0, 0, NULL);
        INSERT INTO bom_lines VALUES ('B-FRAME', 10, 'TUBE', 3, 0, 0, NULL);
        INSERT INTO on_hand VALUES ('BIKE', 'W1', 1);
        INSERT INTO on_hand VALUES ('TUBE', 'W1', 2);
        INSERT INTO sales_lines VALUES ('SO1', 1, 'BIKE', 'W1', 5, '2026-01-20', 0);
        INSERT INTO purchase_lines VALUES ('P1', 1, 'WHEEL', 'W1', 4, '2026-01-15', NULL);
        """
    )
    con.commit()
    con.close()
    return f"sqlite:///{path}"


def masterplan(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MASTERPLAN, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def query(path: Path, sql: str) -> list[tuple]:
    con = sqlite3.connect(path)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def current_run(path: Path) -> str:
    return query(path, "SELECT current_run_id FROM plans WHERE plan_id = 'main'")[0][0]


def test_run_writes_the_hand_computed_plan(tmp_path: Path) -> None:
    db = tmp_path / "scm.db"
    url = make_db(db)
    done = masterplan("run", "--db", url, "--plan-date", "2026-01-05", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    run = current_run(db)
    assert summary["run_id"] == run and summary["written"] is True
    orders = query(
        db,
        "SELECT planned_order_id, item_id, warehouse_id, order_type, qty, order_date, due_date,"
        " requirement_date, from_warehouse_id, vendor_id, bom_id, firmed FROM planned_orders"
        " WHERE plan_id = 'main' ORDER BY planned_order_id",
    )
    assert orders == [
        (
            "BIKE/W1/1",
            "BIKE",
            "W1",
            "production",
            4.0,
            "2026-01-18",
            "2026-01-20",
            "2026-01-20",
            None,
            None,
            "B-BIKE",
            0,
        ),
        (
            "FRAME/W1/1",
            "FRAME",
            "W1",
            "production",
            4.0,
            "2026-01-15",
            "2026-01-18",
            "2026-01-18",
            None,
            None,
            "B-FRAME",
            0,
        ),
        (
            "TUBE/W1/1",
            "TUBE",
            "W1",
            "purchase",
            10.0,
            "2026-01-10",
            "2026-01-15",
            "2026-01-15",
            None,
            "V1",
            None,
            0,
        ),
        (
            "WHEEL/W1/1",
            "WHEEL",
            "W1",
            "purchase",
            4.0,
            "2026-01-14",
            "2026-01-18",
            "2026-01-18",
            None,
            "V2",
            None,
            0,
        ),
    ]
    pegging = query(
        db,
        "SELECT supply_ref, supply_date, demand_ref, demand_date, qty FROM pegging"
        " WHERE plan_id = 'main' ORDER BY demand_ref, supply_ref",
    )
    assert pegging == [
        ("PL:FRAME/W1/1", "2026-01-18", "PL:BIKE/W1/1/10", "2026-01-18", 4.0),
        ("PL:WHEEL/W1/1", "2026-01-18", "PL:BIKE/W1/1/20", "2026-01-18", 4.0),
        ("PO:P1/1", "2026-01-15", "PL:BIKE/W1/1/20", "2026-01-18", 4.0),
        ("OH:TUBE/W1", "2026-01-05", "PL:FRAME/W1/1/10", "2026-01-15", 2.0),
        ("PL:TUBE/W1/1", "2026-01-15", "PL:FRAME/W1/1/10", "2026-01-15", 10.0),
        ("OH:BIKE/W1", "2026-01-05", "SO:SO1/1", "2026-01-20", 1.0),
        ("PL:BIKE/W1/1", "2026-01-20", "SO:SO1/1", "2026-01-20", 4.0),
    ]
    actions = query(
        db,
        "SELECT supply_ref, action, receipt_date, receipt_qty, suggested_date, suggested_qty"
        f" FROM action_messages WHERE run_id = '{run}'",
    )
    assert actions == [("PO:P1/1", "postpone", "2026-01-15", 4.0, "2026-01-18", None)]
    assert query(db, f"SELECT COUNT(*) FROM delay_messages WHERE run_id = '{run}'") == [(0,)]
    assert query(db, f"SELECT COUNT(*) FROM plan_messages WHERE run_id = '{run}'") == [(0,)]
    assert query(
        db,
        "SELECT mode, plan_date, status, planned_order_count, pegging_count, action_message_count"
        f" FROM plan_runs WHERE run_id = '{run}'",
    ) == [("regeneration", "2026-01-05", "completed", 4, 7, 1)]


def test_bad_rows_become_messages_and_the_run_goes_on(tmp_path: Path) -> None:
    db = tmp_path / "scm.db"
    url = make_db(db)
    con = sqlite3.connect(db)
    con.execute("INSERT INTO sales_lines VALUES ('SO2', 1, 'NOPE', 'W1', 3, '2026-01-20', 0)")
    con.execute("INSERT INTO sales_lines VALUES ('SO3', 1, 'BIKE', 'W1', -2, '2026-01-20', 0)")
    con.commit()
    con.close()
    done = masterplan("run", "--db", url, "--plan-date", "2026-01-05")
    assert done.returncode == 0, done.stderr
    run = current_run(db)
    messages = query(
        db,
        "SELECT severity, code, item_id, warehouse_id FROM plan_messages"
        f" WHERE run_id = '{run}' ORDER BY code",
    )
    assert messages == [
        ("warning", "INVALID_QTY", "BIKE", "W1"),
        ("warning", "UNKNOWN_ITEM", "NOPE", "W1"),
    ]
    texts = [t for (t,) in query(db, f"SELECT text FROM plan_messages WHERE run_id = '{run}'")]
    assert any("SO3" in t and "qty" in t for t in texts) and any(
        "SO2" in t and "item_id" in t for t in texts
    )
    # the bad rows are left out; the plan is the hand-computed one
    assert query(
        db, f"SELECT SUM(qty) FROM planned_orders WHERE run_id = '{run}' AND item_id = 'BIKE'"
    ) == [(4.0,)]


def test_a_missing_table_fails_the_run_and_keeps_the_previous_plan(tmp_path: Path) -> None:
    db = tmp_path / "scm.db"
    url = make_db(db)
    assert masterplan("run", "--db", url, "--plan-date", "2026-01-05").returncode == 0
    before = current_run(db)
    rows_before = query(db, "SELECT COUNT(*) FROM planned_orders")
    sqlite3.connect(db).execute("DROP TABLE forecasts").connection.commit()
    done = masterplan("run", "--db", url, "--plan-date", "2026-01-05")
    assert done.returncode != 0
    assert "forecasts" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert current_run(db) == before
    assert query(db, "SELECT COUNT(*) FROM planned_orders") == rows_before


def test_a_missing_column_is_named(tmp_path: Path) -> None:
    db = tmp_path / "scm.db"
    url = make_db(db)
    con = sqlite3.connect(db)
    con.execute("ALTER TABLE sales_lines DROP COLUMN priority")
    con.commit()
    con.close()
    done = masterplan("run", "--db", url, "--plan-date", "2026-01-05")
    assert done.returncode != 0
    assert "sales_lines" in done.stderr and "priority" in done.stderr


def test_a_bad_plan_date_is_a_usage_error(tmp_path: Path) -> None:
    done = masterplan("run", "--db", make_db(tmp_path / "scm.db"), "--plan-date", "2026-13-01")
    assert done.returncode == 2 and "2026-13-01" in done.stderr


@pytest.mark.parametrize("day", ["9999-12-31", "9900-01-01", "1899-12-31"])
def test_a_plan_date_no_database_can_hold_the_plan_of_is_refused_up_front(
    tmp_path: Path, day: str
) -> None:
    """9999-12-31 wrote integers into SQLite's DATE columns and overflowed
    PostgreSQL after planning; now it is refused before anything is read."""
    db = tmp_path / "scm.db"
    done = masterplan("run", "--db", make_db(db), "--plan-date", day)
    assert done.returncode == 2
    assert f"plan date {day} is outside 1900-01-01..9899-12-31" in done.stderr
    written = query(db, "SELECT name FROM sqlite_master WHERE name = 'plan_runs'")
    assert not written or query(db, "SELECT COUNT(*) FROM plan_runs") == [(0,)]


def test_the_latest_plan_date_writes_every_date_as_a_date(tmp_path: Path) -> None:
    """At the bound, every date the plan derives still fits a DATE column."""
    db = tmp_path / "scm.db"
    done = masterplan("run", "--db", make_db(db), "--plan-date", "9899-12-31")
    assert done.returncode == 0, done.stderr
    dates = query(
        db,
        "SELECT order_date, due_date FROM planned_orders"
        " UNION ALL SELECT requirement_date, futures_date FROM delay_messages",
    )
    assert dates
    for row in dates:
        for value in row:
            # Stored as ISO text, not a number of days.
            assert value is None or dt.date.fromisoformat(value).year >= 9899, row


def test_a_negative_keep_runs_is_a_usage_error_before_anything_runs(tmp_path: Path) -> None:
    """It exited 1 after a successful write; now it is refused up front and
    nothing is planned or written."""
    db = tmp_path / "scm.db"
    done = masterplan("run", "--db", make_db(db), "--plan-date", "2026-01-12", "--keep-runs", "-1")
    assert done.returncode == 2
    assert "--keep-runs" in done.stderr and "0 or more" in done.stderr
    written = query(db, "SELECT name FROM sqlite_master WHERE name = 'plan_runs'")
    assert not written or query(db, "SELECT COUNT(*) FROM plan_runs") == [(0,)]


def test_fail_on_error_exits_3_after_writing_a_plan_with_a_bom_cycle(tmp_path: Path) -> None:
    """A BOM cycle is an error message: ``run`` exited 0 on it while ``scm
    check`` exits 1. The plan is still written; ``--fail-on`` makes the exit
    status say it holds errors, and ``--json`` counts them."""
    db = tmp_path / "scm.db"
    url = make_db(db)
    con = sqlite3.connect(db)
    con.execute("INSERT INTO bom_lines VALUES ('B-FRAME', 20, 'BIKE', 1, 0, 0, NULL)")
    con.commit()
    con.close()
    plain = masterplan("run", "--db", url, "--plan-date", "2026-01-05", "--json")
    assert plain.returncode == 0, plain.stderr
    errors = query(db, "SELECT COUNT(*) FROM plan_messages WHERE severity = 'error'")[0][0]
    assert errors > 0
    assert json.loads(plain.stdout)["messages"]["error"] == errors

    failing = masterplan("run", "--db", url, "--plan-date", "2026-01-05", "--fail-on", "error")
    assert failing.returncode == 3
    assert failing.stderr.strip().splitlines() == [
        f"masterplan: the plan was written and holds {errors} error message"
        f"{'s' if errors != 1 else ''} (--fail-on error)"
    ]
    assert query(db, "SELECT COUNT(*) FROM plan_runs") == [(2,)]  # written both times

    # A plan without messages passes --fail-on warning.
    clean = tmp_path / "clean.db"
    done = masterplan(
        "run", "--db", make_db(clean), "--plan-date", "2026-01-05", "--fail-on", "warning"
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture
def served(tmp_path: Path):  # type: ignore[no-untyped-def]
    """``masterplan serve`` as a process, with the admin key the CLI reads from the environment."""
    srv = Served(tmp_path)
    try:
        yield srv.address, {"MASTERPLAN_ADMIN_KEY": ADMIN}
    finally:
        srv.stop()


def test_run_against_a_served_tenant_and_a_refused_key(tmp_path: Path, served) -> None:  # type: ignore[no-untyped-def]
    address, env = served
    done = masterplan("tenant", "install", "acme", "--server", address, "--json", env=env)
    assert done.returncode == 0, done.stderr
    key = json.loads(done.stdout)["api_key"]
    db = tmp_path / "scm.db"
    url = make_db(db)
    done = masterplan(
        "run", "--db", url, "--server", address, "--api-key", key, "--plan-date", "2026-01-05"
    )
    assert done.returncode == 0, done.stderr
    assert query(db, f"SELECT COUNT(*) FROM planned_orders WHERE run_id = '{current_run(db)}'") == [
        (4,)
    ]
    done = masterplan(
        "run",
        "--db",
        url,
        "--server",
        address,
        "--plan-date",
        "2026-01-05",
        env={"MASTERPLAN_API_KEY": key + "x"},
    )
    assert done.returncode != 0 and "UNAUTHENTICATED" in done.stderr
    listed = masterplan("tenant", "list", "--server", address, "--json", env=env)
    assert [t["tenant"] for t in json.loads(listed.stdout)] == ["acme"]


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["run", "--db", "sqlite:///scm.db", "--plan-date", "2026-13-01"], "2026-13-01"),
        (["run", "--no-such-option"], "--no-such-option"),
        (["run"], "--db URL"),
        (["run", "--db", "sqlite:///scm.db", "--server", "127.0.0.1:1"], "--api-key"),
        (["runs", "get"], "--server ADDR"),
        (["show", "BIKE"], "--db URL"),
        (["promise", "BIKE", "1"], "--db URL"),
        (["serve", "--tls-cert", "cert.pem"], "--tls-key"),
    ],
)
def test_a_usage_error_is_one_line_and_status_2(
    argv: list[str], named: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """SPEC §8 and the README: a failure is one line ``masterplan: <reason>``,
    status 2 for a usage error. argparse printed its usage block first, and
    the usage errors the commands find themselves exited 1."""
    for name in ("MASTERPLAN_DB_URL", "MASTERPLAN_SERVER", "MASTERPLAN_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    try:
        status = main(argv)
    except SystemExit as exc:
        status = exc.code
    lines = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    assert len(lines) == 1, lines
    assert lines[0].startswith("masterplan: ") and named in lines[0]


def test_a_run_that_fails_before_planning_writes_no_table(tmp_path: Path) -> None:
    """SPEC §5.9: a run that cannot plan says why and writes nothing. The
    result tables were created before the read that failed."""
    db = tmp_path / "scm.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE unrelated (x INTEGER)")
    con.commit()
    con.close()
    done = masterplan("run", "--db", f"sqlite:///{db}", "--plan-date", "2026-01-05")
    assert done.returncode == 1 and "warehouses" in done.stderr
    assert query(db, "SELECT name FROM sqlite_master WHERE type = 'table'") == [("unrelated",)]


def test_a_plan_written_by_other_hands_meanwhile_is_replaced_whole(
    tmp_path: Path,
    served,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SPEC §4: where the database no longer holds the plan a result was
    computed against, the plan's rows are replaced. The run read its base,
    another write changed the plan before its own, and the run failed with
    BaseRunChanged, its plan computed and not written."""
    from masterplan.client.cli import cycle
    from masterplan.client.cli.cycle import CycleOptions, run_cycle
    from masterplan.client.client import MasterplanClient

    address, env = served
    with MasterplanClient(address, env["MASTERPLAN_ADMIN_KEY"]) as admin:
        key = admin.install_tenant("acme").api_key
    db = tmp_path / "scm.db"
    url = make_db(db)
    options = CycleOptions(
        db_url=url, server=address, api_key=key, plan_date=dt.date(2026, 1, 5), state_dir=tmp_path
    )
    first = run_cycle(options)
    real = cycle.current_run_id

    def then_changed(engine, plan_id):  # type: ignore[no-untyped-def]
        held = real(engine, plan_id)
        con = sqlite3.connect(db)  # another writer takes the plan over
        con.execute("UPDATE plans SET current_run_id = 'elsewhere' WHERE plan_id = 'main'")
        con.execute("DELETE FROM planned_orders WHERE plan_id = 'main'")
        con.commit()
        con.close()
        return held

    monkeypatch.setattr(cycle, "current_run_id", then_changed)
    second = run_cycle(options)
    assert second.written and second.base_run_id is None  # whole, not a difference
    assert current_run(db) == second.run_id
    orders = "SELECT planned_order_id, qty FROM planned_orders ORDER BY planned_order_id"
    monkeypatch.setattr(cycle, "current_run_id", real)
    assert query(db, orders)
    kept = query(db, orders)
    third = run_cycle(options)  # the plan again, as a difference to the second
    assert third.base_run_id == second.run_id and query(db, orders) == kept
    assert first.run_id != second.run_id


def test_a_net_change_planned_as_a_regeneration_is_recorded_as_one(tmp_path: Path) -> None:
    """SPEC §6: a net change that cannot reuse a previous run falls back to
    a regeneration and says so; ``plan_runs.mode`` records how the plan was
    made (it said ``net_change``, the mode asked for)."""
    db = tmp_path / "scm.db"
    url = make_db(db)
    args = ("run", "--db", url, "--plan-date", "2026-01-05", "--mode", "net_change", "--json")
    first = masterplan(*args)  # the embedded server holds no run yet
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["fallback_reason"]
    modes = query(db, "SELECT mode FROM plan_runs")
    assert modes == [("regeneration",)]
