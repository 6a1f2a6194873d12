"""The planner's views asked of a real server equal those read from the database.

Each worked example of SPEC §5 (and the demo) is planned by ``masterplan run
--server`` against a server process on loopback, which writes the plan into
SQLite and keeps the run. Then every view is asked both ways — the server's
GetNetRequirements, GetPegging (down and up), ExplainDelay and GetPlanReport,
and the connector's reading of the written plan (itself held to the result
tables in ``tests/connector/test_views.py``) — and must agree.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from masterplan.client import errors
from masterplan.client.cli import main
from masterplan.client.client import MasterplanClient
from masterplan.connector import views
from masterplan.connector.demo import build_demo_database
from masterplan.connector.schema import create_engine
from masterplan.contract.views import PegNode
from masterplan.viewcodec import peg_tree_from_nodes
from tests.connector.test_views import EXISTING, MANUAL
from tests.e2e.test_examples_cli import EXAMPLES, load, run_args
from tests.served import Served

PARENT = "tenants/acme/plans/main"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, str]]:
    s = Served(tmp_path_factory.mktemp("server"))
    try:
        yield s, s.install("acme")
    finally:
        s.stop()


def _plan_on_server(served: tuple[Served, str], path: Path, args: list[str]) -> str:
    """Run ``masterplan run`` through the server; the name of the run it kept."""
    server, key = served
    assert main([*args, "--server", server.address, "--api-key", key]) == 0
    (run_id,) = (
        sqlite3.connect(path)
        .execute("SELECT current_run_id FROM plans WHERE plan_id = 'main'")
        .fetchone()
    )
    return f"{PARENT}/runs/{run_id}"


def _canonical(node: PegNode) -> Any:
    """A tree without what only one side knows (due dates) and in one order."""
    kids = sorted((_canonical(c) for c in node.children), key=lambda t: json.dumps(t, default=str))
    return (
        node.role,
        node.kind,
        node.ref,
        node.item_id,
        node.warehouse_id,
        node.date,
        round(node.qty, 9),
        node.level,
        kids,
    )


def _same_views(client: MasterplanClient, name: str, path: Path) -> int:
    engine = create_engine(f"sqlite:///{path}")
    con = sqlite3.connect(path)
    checked = 0
    skus = con.execute(
        "SELECT item_id, warehouse_id FROM pegging UNION SELECT item_id, warehouse_id "
        "FROM planned_orders"
    ).fetchall()
    for item, wh in skus:
        here = views.net_requirements(engine, item, wh)
        there = client.get_net_requirements(name, item, wh)
        assert there.run.run_id == here.run.run_id
        assert dataclasses.replace(there, run=here.run) == here
        checked += 1
    demands = [
        r[0]
        for r in con.execute(
            "SELECT DISTINCT demand_ref FROM pegging WHERE demand_kind IN ('so', 'fc', 'ss', 'tri')"
        )
    ]
    for ref in demands:
        here_tree = views.pegging_tree(engine, ref)
        there_tree = peg_tree_from_nodes(list(client.get_pegging(name, ref, 20).nodes))
        assert _canonical(there_tree) == _canonical(here_tree), ref
        checked += 1
    for (ref,) in con.execute("SELECT DISTINCT supply_ref FROM pegging"):
        here_tree = views.pegging_tree(engine, ref, up=True)
        answer = client.get_pegging(name, ref, 20, up=True)
        there_tree = peg_tree_from_nodes(list(answer.nodes), up=True)
        assert _canonical(there_tree) == _canonical(here_tree), ref
        checked += 1
    for (ref,) in con.execute("SELECT demand_ref FROM delay_messages"):
        assert client.explain_delay(name, ref) == views.delay_path(engine, ref)
        checked += 1
    here_report = views.plan_report(engine)
    there_report = client.get_plan_report(name)
    assert dataclasses.replace(there_report, run=here_report.run) == here_report
    con.close()
    engine.dispose()
    return checked


def test_every_example_reads_the_same_on_the_server(
    served: tuple[Served, str], tmp_path: Path
) -> None:
    server, key = served
    checked = 0
    with MasterplanClient(server.address, key) as client:
        for file in EXAMPLES:
            example = json.loads(file.read_text())
            path = tmp_path / f"{file.stem}.db"
            name = _plan_on_server(served, path, run_args(load(path, example), example))
            checked += _same_views(client, name, path)
    assert checked > 150


@pytest.mark.parametrize("data", [MANUAL, EXISTING], ids=["manual", "existing"])
def test_shortfalls_and_existing_orders_read_the_same_on_the_server(
    served: tuple[Served, str], tmp_path: Path, data: dict[str, Any]
) -> None:
    server, key = served
    path = tmp_path / "scm.db"
    name = _plan_on_server(served, path, run_args(load(path, data), data))
    with MasterplanClient(server.address, key) as client:
        assert _same_views(client, name, path) > 3
        if data is MANUAL:
            # A late demand that took nothing: its node alone, quantity 0.
            (node,) = client.get_pegging(name, "SO:S/2").nodes
            assert (node.ref, node.qty, node.supply) == ("SO:S/2", 0.0, False)


def test_the_demo_reads_the_same_on_the_server(served: tuple[Served, str], tmp_path: Path) -> None:
    server, key = served
    path = tmp_path / "demo.db"
    url = f"sqlite:///{path}"
    build_demo_database(url, dt.date(2026, 1, 5))
    name = _plan_on_server(served, path, ["run", "--db", url, "--plan-date", "2026-01-05"])
    with MasterplanClient(server.address, key) as client:
        assert _same_views(client, name, path) > 500


def test_refusals(served: tuple[Served, str], tmp_path: Path) -> None:
    server, key = served
    example = json.loads(next(f for f in EXAMPLES if f.stem == "multilevel_bom").read_text())
    path = tmp_path / "scm.db"
    name = _plan_on_server(served, path, run_args(load(path, example), example))
    with MasterplanClient(server.address, key) as client:
        with pytest.raises(errors.NotFound, match="nothing for item 'NOPE'"):
            client.get_net_requirements(name, "NOPE", "W1")
        with pytest.raises(errors.InvalidArgument, match="warehouse_id"):
            client.get_net_requirements(name, "FG", "")
        with pytest.raises(errors.NotFound, match="not late in this run"):
            client.explain_delay(name, "SO:SO1/1")
        with pytest.raises(errors.NotFound):
            client.get_pegging(name, "SO:NOPE/1")
        other = name.rsplit("/", 1)[0] + "/nope"
        with pytest.raises(errors.NotFound):
            client.get_plan_report(other)
