"""``masterplan show``, ``peg``, ``why`` and ``report`` on the demo database.

The views' numbers are held to the result tables in
``tests/connector/test_views.py``; here the commands: what a planner reads on
the terminal, what a script reads with ``--json``, the report file, and the
one-line refusals.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from masterplan.connector.demo import build_demo_database

ROOT = Path(__file__).parents[2]
PLAN_DATE = "2026-01-05"


def masterplan(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "masterplan.client.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    path = tmp_path_factory.mktemp("views") / "demo.db"
    url = f"sqlite:///{path}"
    build_demo_database(url, dt.date.fromisoformat(PLAN_DATE))
    done = masterplan("run", "--db", url, "--plan-date", PLAN_DATE)
    assert done.returncode == 0, done.stderr
    return path, url


def _one(path: Path, sql: str) -> tuple[object, ...]:
    con = sqlite3.connect(path)
    try:
        row = con.execute(sql).fetchone()
        assert row is not None
        return tuple(row)
    finally:
        con.close()


def _wide() -> dict[str, str]:
    """The environment with a wide terminal, so that a table's refs stay on one line."""
    return {**os.environ, "COLUMNS": "200"}


def test_show_lists_the_skus_lines_and_orders(demo: tuple[Path, str]) -> None:
    path, url = demo
    item, wh, ref, qty = _one(
        path,
        "SELECT item_id, warehouse_id, demand_ref, SUM(qty) FROM pegging "
        "WHERE demand_kind = 'so' GROUP BY item_id, warehouse_id, demand_ref LIMIT 1",
    )
    done = masterplan("show", str(item), "--warehouse", str(wh), "--db", url, env=_wide())
    assert done.returncode == 0, done.stderr
    assert f"{item} at {wh}" in done.stdout
    assert re.search(
        rf"requirement\s+│\s+so\s+│\s+{re.escape(str(ref))}\s+│\s+-{qty:g}\s", done.stdout
    )
    (orders,) = _one(
        path,
        f"SELECT COUNT(*) FROM planned_orders WHERE item_id = '{item}' AND warehouse_id = '{wh}'",
    )
    if orders:
        assert "Planned orders" in done.stdout
    as_json = masterplan("show", str(item), "--warehouse", str(wh), "--db", url, "--json")
    view = json.loads(as_json.stdout)
    assert view["item_id"] == item and len(view["planned_orders"]) == orders
    assert any(line["ref"] == ref and line["qty"] == pytest.approx(qty) for line in view["lines"])


def test_show_without_a_warehouse_shows_each_of_the_items_skus(demo: tuple[Path, str]) -> None:
    path, url = demo
    done = masterplan("show", "FG-001", "--db", url, "--json")
    assert done.returncode == 0, done.stderr
    views = json.loads(done.stdout)
    warehouses = {
        r[0]
        for r in sqlite3.connect(path).execute(
            "SELECT warehouse_id FROM pegging WHERE item_id = 'FG-001' UNION "
            "SELECT warehouse_id FROM planned_orders WHERE item_id = 'FG-001'"
        )
    }
    assert [v["warehouse_id"] for v in views] == sorted(warehouses) and len(warehouses) > 1


def test_peg_down_and_up(demo: tuple[Path, str]) -> None:
    path, url = demo
    (ref,) = _one(
        path,
        "SELECT demand_ref FROM pegging WHERE demand_kind = 'so' AND supply_kind = 'pl' "
        "ORDER BY demand_ref LIMIT 1",
    )
    down = masterplan("peg", str(ref), "--db", url, env=_wide())
    assert down.returncode == 0, down.stderr
    assert down.stdout.splitlines()[0].startswith(f"needs {ref}")
    assert "covered by PL:" in down.stdout
    tree = json.loads(masterplan("peg", str(ref), "--db", url, "--json").stdout)
    supply = tree["children"][0]["ref"]
    up = json.loads(masterplan("peg", supply, "--up", "--db", url, "--json").stdout)
    assert up["ref"] == supply and up["role"] == "supply"
    # The sales line is among the demands the supply serves.
    assert ref in {c["ref"] for c in up["children"]}
    shallow = json.loads(masterplan("peg", str(ref), "--db", url, "--json", "--depth", "0").stdout)
    assert all(not s["children"] for s in shallow["children"])


def test_why_explains_the_most_delayed_demand(demo: tuple[Path, str]) -> None:
    path, url = demo
    ref, futures, days = _one(
        path,
        "SELECT demand_ref, futures_date, delay_days FROM delay_messages "
        "WHERE futures_date IS NOT NULL ORDER BY delay_days DESC, demand_ref LIMIT 1",
    )
    done = masterplan("why", str(ref), "--db", url, env=_wide())
    assert done.returncode == 0, done.stderr
    assert f"covered {futures}: {days} days late" in done.stdout
    assert "Cause: " in done.stdout
    path_json = json.loads(masterplan("why", str(ref), "--db", url, "--json").stdout)
    assert path_json["demand"]["demand_ref"] == ref
    assert path_json["steps"][0]["available_date"] == futures
    assert path_json["steps"][-1]["supply_ref"] in path_json["cause"]


def test_report_writes_one_self_contained_file(demo: tuple[Path, str], tmp_path: Path) -> None:
    _path, url = demo
    out = tmp_path / "plan.html"
    done = masterplan("report", "--db", url, "--out", str(out), "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["out"] == str(out) and summary["charts"] > 0 and summary["delays"] > 0
    html = out.read_text()
    assert html.count("<svg") >= summary["charts"]
    assert not re.search(r"""(src|href)=["']?https?://""", html)


def test_the_database_url_may_come_from_the_environment(demo: tuple[Path, str]) -> None:
    _path, url = demo
    done = masterplan("show", "FG-001", "--json", env={**_wide(), "MASTERPLAN_DB_URL": url})
    assert done.returncode == 0, done.stderr


def test_refusals_are_one_line(demo: tuple[Path, str], tmp_path: Path) -> None:
    _path, url = demo
    for args, says in (
        (("show", "NOPE", "--db", url), "nothing for item 'NOPE'"),
        (("peg", "SO:NOPE/1", "--db", url), "no demand 'SO:NOPE/1'"),
        (("why", "SO:NOPE/1", "--db", url), "is not late"),
        (("show", "FG-001", "--db", f"sqlite:///{tmp_path / 'missing.db'}"), "no SQLite database"),
    ):
        done = masterplan(*args)
        assert done.returncode == 1, done.stdout
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and says in lines[0], lines
    no_db = masterplan(
        "show", "FG-001", env={k: v for k, v in _wide().items() if k != "MASTERPLAN_DB_URL"}
    )
    assert no_db.returncode == 2 and "MASTERPLAN_DB_URL" in no_db.stderr


def test_the_same_answers_from_a_server(tmp_path: Path) -> None:
    """With --server the commands ask about the plan's newest kept run: the
    same answers as the database the run was written to."""
    from tests.served import Served

    path = tmp_path / "demo.db"
    url = f"sqlite:///{path}"
    build_demo_database(url, dt.date.fromisoformat(PLAN_DATE))
    served = Served(tmp_path)
    try:
        key = served.install("acme")
        done = masterplan(
            "run",
            "--db",
            url,
            "--plan-date",
            PLAN_DATE,
            "--server",
            served.address,
            "--api-key",
            key,
        )
        assert done.returncode == 0, done.stderr
        env = {**_wide(), "MASTERPLAN_API_KEY": key}
        ref, item, wh = _one(
            path,
            "SELECT demand_ref, item_id, warehouse_id FROM delay_messages "
            "ORDER BY delay_days DESC, demand_ref LIMIT 1",
        )
        for args in (
            ("why", str(ref)),
            ("peg", str(ref)),
            ("show", str(item), "--warehouse", str(wh)),
        ):
            from_db = json.loads(masterplan(*args, "--db", url, "--json").stdout)
            asked = masterplan(*args, "--server", served.address, "--json", env=env)
            assert asked.returncode == 0, asked.stderr
            from_server = json.loads(asked.stdout)
            for view in (from_db, from_server):
                view.pop("run", None)
                _drop_due_dates(view)
            assert from_server == from_db, args
        report = tmp_path / "served.html"
        done = masterplan("report", "--server", served.address, "--out", str(report), env=env)
        assert done.returncode == 0, done.stderr
        assert report.read_text().count("<svg") > 0
        no_key = masterplan("why", str(ref), "--server", served.address)
        assert no_key.returncode == 2 and "MASTERPLAN_API_KEY" in no_key.stderr
        no_wh = masterplan("show", str(item), "--server", served.address, env=env)
        assert no_wh.returncode == 2 and "--warehouse" in no_wh.stderr
    finally:
        served.stop()


def _drop_due_dates(view: object) -> None:
    """A pegging tree from GetPegging carries no due dates (the database's
    does), and may list a node's children in another order."""
    if isinstance(view, dict):
        view.pop("due_date", None)
        for v in view.values():
            _drop_due_dates(v)
        if "children" in view:
            view["children"].sort(key=lambda c: json.dumps(c, sort_keys=True))
    elif isinstance(view, list):
        for v in view:
            _drop_due_dates(v)
