"""A date cell that names no day leaves its row out, not the whole run.

SPEC §5.9: a row that cannot name what it is is left out with one
``INVALID_ROW`` plan message and the run goes on. A date the database holds
but that is no day (``'2026-02-30'`` or ``'soon'`` in SQLite, MariaDB's zero
date, PostgreSQL's ``infinity`` or a year past 9999) is such a row, whether
its column is nullable or not, in ``masterplan run`` and in ``masterplan scm
check`` alike.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from masterplan.client.cli import main
from masterplan.client.cli.cycle import CycleOptions, run_cycle
from masterplan.server.embedded import embedded_server
from tests.backends import database_url
from tests.e2e.scm_sql import INPUT_DDL

MASTERPLAN = [sys.executable, "-m", "masterplan.client.cli"]
ROOT = Path(__file__).parents[2]
T0 = "2026-01-05"

#: The model every backend holds: A is bought, B made; sales of A, a BOM of B.
GOOD_ROWS = [
    "INSERT INTO warehouses VALUES ('W1', 'S1', NULL)",
    "INSERT INTO items VALUES ('A', 'purchase', NULL, 2, 0, 0, 0, NULL)",
    "INSERT INTO items VALUES ('B', 'production', NULL, 1, 0, 0, 0, NULL)",
    "INSERT INTO boms VALUES ('B-B', 'B', NULL, NULL, NULL, 1)",
    "INSERT INTO bom_lines VALUES ('B-B', 1, 'A', 1, 0, 0, NULL)",
    "INSERT INTO sales_lines VALUES ('SO1', 1, 'A', 'W1', 5, '2026-01-20', 0)",
    "INSERT INTO sales_lines VALUES ('SO3', 1, 'B', 'W1', 2, '2026-01-22', 0)",
]


def _bad_rows(sales: list[str], bom_valid_to: str | None = None) -> list[str]:
    """Sales lines SO2/1, SO2/2, ... of A with the dates given (SQL literals),
    and a second BOM of B whose nullable ``valid_to`` holds ``bom_valid_to``."""
    rows = [
        f"INSERT INTO sales_lines VALUES ('SO2', {n}, 'A', 'W1', 3, {date}, 0)"
        for n, date in enumerate(sales, start=1)
    ]
    if bom_valid_to is not None:
        rows.append(f"INSERT INTO boms VALUES ('B-OLD', 'B', NULL, NULL, {bom_valid_to}, 1)")
    return rows


def _expected(n_sales: int, bom: bool) -> list[tuple[str, str | None, str | None, str]]:
    found = [
        (
            "INVALID_ROW",
            "A",
            "W1",
            f"sales line (sales_lines: order_id='SO2', line_no={n}): "
            "requested_date is not a readable date",
        )
        for n in range(1, n_sales + 1)
    ]
    if bom:
        found.append(
            (
                "INVALID_ROW",
                "B",
                None,
                "BOM (boms: bom_id='B-OLD'): valid_to is not a readable date",
            )
        )
    return sorted(found)


def _messages(url: str) -> list[tuple[str, str | None, str | None, str]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT code, item_id, warehouse_id, text FROM plan_messages "
                    "WHERE plan_id = 'main'"
                )
            ).all()
    finally:
        engine.dispose()
    return sorted((r[0], r[1], r[2], r[3]) for r in rows)


def _planned(url: str) -> list[tuple[str, float, str]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT planned_order_id, qty, due_date FROM planned_orders "
                    "WHERE plan_id = 'main'"
                )
            ).all()
    finally:
        engine.dispose()
    return sorted((r[0], float(r[1]), str(r[2])[:10]) for r in rows)


#: The plan of the good rows: 5 A for SO1 on 01-20, 2 B for SO3 on 01-22 and
#: the 2 A that B's BOM asks on 01-21.
GOOD_PLAN = [
    ("A/W1/1", 5.0, "2026-01-20"),
    ("A/W1/2", 2.0, "2026-01-21"),
    ("B/W1/1", 2.0, "2026-01-22"),
]


def _check_messages(
    capsys: pytest.CaptureFixture[str], url: str
) -> list[tuple[str, str | None, str | None, str]]:
    capsys.readouterr()
    assert main(["scm", "check", "--db", url, "--plan-date", T0, "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["messages"]
    return sorted((m["code"], m["item_id"], m["warehouse_id"], m["text"]) for m in report)


def _sqlite_scm(path: Path, statements: list[str]) -> str:
    """A SQLite SCM database at ``path``: the input tables and ``statements``."""
    con = sqlite3.connect(path)
    for ddl in INPUT_DDL:
        con.execute(ddl)
    for statement in statements:
        con.execute(statement)
    con.commit()
    con.close()
    return f"sqlite:///{path}"


def test_run_and_check_leave_out_the_rows_of_unreadable_sqlite_dates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = _sqlite_scm(
        tmp_path / "scm.db", GOOD_ROWS + _bad_rows(["'2026-02-30'", "'soon'", "''"], "'someday'")
    )

    done = subprocess.run(
        [*MASTERPLAN, "run", "--db", url, "--plan-date", T0, "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["messages"] == {"warning": 4}
    assert _planned(url) == GOOD_PLAN
    assert _messages(url) == _expected(3, bom=True)
    assert _check_messages(capsys, url) == _expected(3, bom=True)


@pytest.fixture
def postgres_url(tmp_path: Path) -> Iterator[str]:
    yield from database_url("postgresql", tmp_path)


@pytest.fixture
def mariadb_url(tmp_path: Path) -> Iterator[str]:
    yield from database_url("mariadb", tmp_path)


def _load(url: str, statements: list[str], before: list[str] | None = None) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            for statement in (before or []) + INPUT_DDL + statements:
                conn.exec_driver_sql(statement)
    finally:
        engine.dispose()


def _run(url: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["run", "--db", url, "--plan-date", T0, "--json"]) == 0
    report: dict[str, Any] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    return report


@pytest.mark.postgres
@pytest.mark.parametrize("date_type", ["DATE", "TIMESTAMP"])
def test_postgres_infinite_and_far_dates_leave_their_rows_out(
    postgres_url: str, capsys: pytest.CaptureFixture[str], date_type: str
) -> None:
    """``DATE`` columns are read through ``COPY``, ``TIMESTAMP`` ones row by
    row through psycopg: both leave the rows out."""
    ddl = [s.replace(" DATE", f" {date_type}") for s in INPUT_DDL]
    engine = sa.create_engine(postgres_url)
    try:
        with engine.begin() as conn:
            for statement in ddl + GOOD_ROWS:
                conn.exec_driver_sql(statement)
            sales = ["'infinity'", "'-infinity'", "'10000-01-01'", "'0044-03-15 BC'"]
            for statement in _bad_rows(sales, "'infinity'"):
                conn.exec_driver_sql(statement)
    finally:
        engine.dispose()
    assert _run(postgres_url, capsys)["messages"] == {"warning": 5}
    assert _planned(postgres_url) == GOOD_PLAN
    assert _messages(postgres_url) == _expected(4, bom=True)
    assert _check_messages(capsys, postgres_url) == _expected(4, bom=True)


@pytest.mark.mariadb
def test_mariadb_zero_dates_leave_their_rows_out(
    mariadb_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # A server mode that lets zero dates in, as older MariaDB/MySQL servers had.
    lenient = ["SET SESSION sql_mode = ''"]
    _load(
        mariadb_url,
        GOOD_ROWS + _bad_rows(["'0000-00-00'", "'2026-00-10'", "'2026-02-00'"], "'0000-00-00'"),
        before=lenient,
    )
    assert _run(mariadb_url, capsys)["messages"] == {"warning": 4}
    assert _planned(mariadb_url) == GOOD_PLAN
    assert _messages(mariadb_url) == _expected(3, bom=True)
    assert _check_messages(capsys, mariadb_url) == _expected(3, bom=True)


def test_a_good_date_keeps_planning_as_before(tmp_path: Path) -> None:
    """The dates that read as before: a time of day, blanks before, NULL in
    a nullable column."""
    url = _sqlite_scm(
        tmp_path / "scm.db",
        [
            s.replace("'2026-01-20'", "'2026-01-20 13:45:00'").replace(
                "'2026-01-22'", "' 2026-01-22'"
            )
            for s in GOOD_ROWS
        ],
    )
    assert main(["run", "--db", url, "--plan-date", T0, "--json"]) == 0
    assert _planned(url) == GOOD_PLAN
    assert _messages(url) == []


def test_net_change_sees_a_date_become_readable_and_unreadable(tmp_path: Path) -> None:
    """Through a delta sync and the server's net change: an unreadable date
    travels as a row like any other, so fixing it (or breaking another)
    changes the plan and its messages as a regeneration would."""
    path = tmp_path / "scm.db"
    url = _sqlite_scm(path, GOOD_ROWS + _bad_rows(["'2026-02-30'"]))
    con = sqlite3.connect(path)
    with embedded_server() as server:
        options = CycleOptions(
            db_url=url,
            server=server.address,
            api_key=server.api_key,
            tenant=server.tenant,
            plan_date=dt.date.fromisoformat(T0),
            mode="net_change",
            state_dir=tmp_path / "state",
        )
        run_cycle(options)
        assert _messages(url) == _expected(1, bom=False)

        con.execute("UPDATE sales_lines SET requested_date = '2026-01-27' WHERE order_id = 'SO2'")
        con.commit()
        report = run_cycle(options)
        assert report.base_run_id is not None and report.sync.kind == "delta"
        assert _messages(url) == []
        assert ("A/W1/3", 3.0, "2026-01-27") in _planned(url)

        con.execute("UPDATE sales_lines SET requested_date = 'soon' WHERE order_id = 'SO1'")
        con.commit()
        report = run_cycle(options)
        assert report.base_run_id is not None
        assert [m[3] for m in _messages(url)] == [
            "sales line (sales_lines: order_id='SO1', line_no=1): "
            "requested_date is not a readable date"
        ]
    con.close()
