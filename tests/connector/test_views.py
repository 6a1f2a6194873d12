"""The planner's views (``connector.views``) against the plan written in the database.

Every number a view shows is checked against the result tables, read here
with plain SQL and recomputed in the test: on every worked example of SPEC §5
(small plans that hold each rule: delays pushed through BOM levels,
transfers, firmed orders, manual SKUs that stay short) and on the demo
database.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from masterplan.client.cli import main
from masterplan.connector import views
from masterplan.connector.demo import build_demo_database
from masterplan.connector.schema import create_engine
from masterplan.contract.views import NetRequirements, PegNode
from tests.e2e.test_examples_cli import EXAMPLES, load, run_args

DEMO_DATE = "2026-01-05"


def _rows(path: Path, sql: str, *args: Any) -> list[sqlite3.Row]:
    con = sqlite3.connect(path)
    con.row_factory = sqlite3.Row
    try:
        return list(con.execute(sql, args))
    finally:
        con.close()


def _planned(tmp: Path, example: dict[str, Any]) -> Path:
    path = tmp / "scm.db"
    assert main(run_args(load(path, example), example)) == 0
    return path


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("demo") / "demo.db"
    url = f"sqlite:///{path}"
    build_demo_database(url, dt.date.fromisoformat(DEMO_DATE))
    assert main(["run", "--db", url, "--plan-date", DEMO_DATE]) == 0
    return path


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, Path]]:
    """Every worked example, planned and written."""
    out = []
    for file in EXAMPLES:
        tmp = tmp_path_factory.mktemp(file.stem)
        out.append((file.stem, _planned(tmp, json.loads(file.read_text()))))
    return out


def _engine(path: Path) -> Any:
    return create_engine(f"sqlite:///{path}")


def _skus(path: Path) -> list[tuple[str, str]]:
    rows = _rows(
        path,
        "SELECT item_id, warehouse_id FROM pegging WHERE plan_id = 'main' UNION "
        "SELECT item_id, warehouse_id FROM planned_orders WHERE plan_id = 'main'",
    )
    return sorted((r[0], r[1]) for r in rows)


def _check_net_requirements(path: Path, view: NetRequirements) -> None:
    item, wh = view.item_id, view.warehouse_id
    # Requirements: each demand of the SKU with the quantity it took.
    took: dict[tuple[str, str, str], float] = defaultdict(float)
    for r in _rows(
        path,
        "SELECT demand_kind, demand_ref, demand_date, qty FROM pegging "
        "WHERE plan_id = 'main' AND item_id = ? AND warehouse_id = ?",
        item,
        wh,
    ):
        took[(r[0], r[1], r[2])] += r[3]
    shown = {
        (line.kind, line.ref, line.date.isoformat()): line.qty
        for line in view.lines
        if line.side == "requirement"
    }
    assert shown.keys() == took.keys()
    for key, qty in took.items():
        assert shown[key] == pytest.approx(qty)
    # Receipts: every planned order of the SKU with its quantity, on its
    # requirement date; every pegged supply with at least what it gave.
    orders = {
        f"PL:{r[0]}": (r[1], r[2])
        for r in _rows(
            path,
            "SELECT planned_order_id, requirement_date, qty FROM planned_orders "
            "WHERE plan_id = 'main' AND item_id = ? AND warehouse_id = ?",
            item,
            wh,
        )
    }
    receipts = {line.ref: line for line in view.lines if line.side == "receipt"}
    for ref, (day, qty) in orders.items():
        assert receipts[ref].date.isoformat() == day and receipts[ref].qty == pytest.approx(qty)
    gave: dict[str, float] = defaultdict(float)
    for r in _rows(
        path,
        "SELECT supply_ref, qty FROM pegging WHERE plan_id = 'main' AND item_id = ? "
        "AND warehouse_id = ?",
        item,
        wh,
    ):
        gave[r[0]] += r[1]
    for ref, qty in gave.items():
        assert receipts[ref].qty >= qty - 1e-9
    assert {d.demand_ref for d in view.delay_messages} == {
        r[0]
        for r in _rows(
            path,
            "SELECT demand_ref FROM delay_messages WHERE plan_id = 'main' AND item_id = ? "
            "AND warehouse_id = ?",
            item,
            wh,
        )
    }
    assert len(view.planned_orders) == len(orders)
    # The projection: in date order, each line's projected quantity is the
    # previous one plus a receipt or minus a requirement.
    level = 0.0
    for before, line in zip((None, *view.lines), view.lines, strict=False):
        if before is not None:
            assert before.date <= line.date
        level += line.qty if line.side == "receipt" else -line.qty
        assert line.projected == pytest.approx(level, abs=1e-6)


def _walk(node: PegNode) -> list[PegNode]:
    out = [node]
    for child in node.children:
        out.extend(_walk(child))
    return out


def _pegging(path: Path) -> list[sqlite3.Row]:
    return _rows(path, "SELECT * FROM pegging WHERE plan_id = 'main'")


def _caused_by(demand_kind: str, demand_ref: str, supply_ref: str) -> bool:
    """Whether a requirement's ref names the supply that caused it (SPEC §4 refs)."""
    if demand_kind == "pl":
        head, _, line = demand_ref.rpartition("/")
        return demand_ref == supply_ref or (head == supply_ref and line.isdigit())
    if demand_kind == "prdl":
        return supply_ref == "PRD:" + demand_ref[5:].rpartition("/")[0]
    if demand_kind == "tri":
        return supply_ref == "TRR:" + demand_ref[4:]
    return False


def _check_down(path: Path, root: PegNode) -> None:
    rows = _pegging(path)
    links = defaultdict(float)
    for r in rows:
        links[(r["demand_ref"], r["item_id"], r["warehouse_id"], r["supply_ref"])] += r["qty"]
    # The root's supplies are exactly its pegging rows.
    own = {
        k: q
        for k, q in links.items()
        if k[0] == root.ref and k[1:3] == (root.item_id, root.warehouse_id)
    }
    assert {(root.ref, c.item_id, c.warehouse_id, c.ref) for c in root.children} == set(own)
    assert root.qty == pytest.approx(sum(own.values()))
    for node in _walk(root):
        for child in node.children:
            if node.role == "demand":
                # A demand's child is a supply it took from, by a pegging row.
                key = (node.ref, node.item_id, node.warehouse_id, child.ref)
                assert key in links and child.role == "supply"
                assert child.level == node.level
            else:
                # A supply's child is a requirement it caused, one level lower.
                assert child.role == "demand" and child.level == node.level + 1
                assert _caused_by(child.kind, child.ref, node.ref)
                assert (child.item_id, child.warehouse_id) != (node.item_id, node.warehouse_id)
                took = sum(
                    q
                    for k, q in links.items()
                    if k[:3] == (child.ref, child.item_id, child.warehouse_id)
                )
                assert child.qty == pytest.approx(took)
    # Every requirement caused by a supply in the tree is in the tree.
    for node in _walk(root):
        if node.role != "supply":
            continue
        caused = {
            (r["demand_ref"], r["item_id"], r["warehouse_id"])
            for r in rows
            if _caused_by(r["demand_kind"], r["demand_ref"], node.ref)
            and (r["item_id"], r["warehouse_id"]) != (node.item_id, node.warehouse_id)
        }
        assert {(c.ref, c.item_id, c.warehouse_id) for c in node.children} == caused


def _check_up(path: Path, root: PegNode) -> None:
    rows = _pegging(path)
    served = [r for r in rows if r["supply_ref"] == root.ref]
    assert root.qty == pytest.approx(sum(r["qty"] for r in served))
    for node in _walk(root):
        if node.role == "demand" and not node.children:
            # Leaves are end demands, or requirements of a supply no pegging row names.
            if node.kind in ("so", "fc", "ss", "oh"):
                continue
            assert not any(
                _caused_by(node.kind, node.ref, r["supply_ref"])
                and (r["item_id"], r["warehouse_id"]) != (node.item_id, node.warehouse_id)
                for r in rows
            )
        for child in node.children:
            if node.role == "supply":
                assert any(
                    r["supply_ref"] == node.ref and r["demand_ref"] == child.ref for r in rows
                )
            else:
                assert _caused_by(node.kind, node.ref, child.ref)


def _check_why(path: Path) -> int:
    engine = _engine(path)
    late = _rows(path, "SELECT * FROM delay_messages WHERE plan_id = 'main'")
    (t0,) = _rows(
        path,
        "SELECT r.plan_date FROM plans p JOIN plan_runs r ON r.run_id = p.current_run_id "
        "WHERE p.plan_id = 'main'",
    )[0]
    orders = {
        r["planned_order_id"]: r
        for r in _rows(path, "SELECT * FROM planned_orders WHERE plan_id = 'main'")
    }
    for d in late:
        p = views.delay_path(engine, d["demand_ref"])
        first = p.steps[0]
        assert (first.demand_ref, first.item_id, first.warehouse_id) == (
            d["demand_ref"],
            d["item_id"],
            d["warehouse_id"],
        )
        # The path's top is the plan's futures date (§5.7 recomputed from the
        # written plan); a never-covered demand ends at a shortfall.
        top = first.available_date.isoformat() if first.available_date else None
        assert top == d["futures_date"]
        for above, below in zip(p.steps, p.steps[1:], strict=False):
            assert above.supply_ref is not None
            assert _caused_by(below.demand_kind, below.demand_ref, above.supply_ref)
            assert below.level == above.level + 1
        last = p.steps[-1]
        if last.supply_ref is None:
            assert "took from no supply" in p.cause
        else:
            assert last.supply_ref in p.cause
            assert last.available_date is None or last.available_date > last.requirement_date
            order = orders.get(last.supply_ref[3:]) if last.supply_ref.startswith("PL:") else None
            if order is not None and last.available_date is not None:
                # Late by its own lead time: it is there on its due date.
                assert last.available_date.isoformat() == max(order["due_date"], t0)
    engine.dispose()
    return len(late)


def test_net_requirements_equal_the_written_plan_on_every_example(
    examples: list[tuple[str, Path]],
) -> None:
    checked = 0
    for _name, path in examples:
        engine = _engine(path)
        for item, wh in _skus(path):
            _check_net_requirements(path, views.net_requirements(engine, item, wh))
            checked += 1
        engine.dispose()
    assert checked > 30


def test_pegging_trees_follow_the_written_pegging_on_every_example(
    examples: list[tuple[str, Path]],
) -> None:
    trees = 0
    for _name, path in examples:
        engine = _engine(path)
        rows = _pegging(path)
        for ref in sorted(
            {r["demand_ref"] for r in rows if r["demand_kind"] in ("so", "fc", "ss", "tri")}
        ):
            _check_down(path, views.pegging_tree(engine, ref))
            trees += 1
        for ref in sorted({r["supply_ref"] for r in rows}):
            _check_up(path, views.pegging_tree(engine, ref, up=True))
            trees += 1
        engine.dispose()
    assert trees > 50


def test_every_late_demand_of_every_example_has_its_futures_date_and_cause(
    examples: list[tuple[str, Path]],
) -> None:
    assert sum(_check_why(path) for _name, path in examples) >= 5


def test_the_demo_database(demo: Path) -> None:
    engine = _engine(demo)
    for item, wh in _skus(demo):
        _check_net_requirements(demo, views.net_requirements(engine, item, wh))
    sales = sorted({r["demand_ref"] for r in _pegging(demo) if r["demand_kind"] == "so"})
    for ref in sales[:15]:
        _check_down(demo, views.pegging_tree(engine, ref))
    assert _check_why(demo) > 10
    engine.dispose()


def test_a_sales_line_took_its_whole_quantity(demo: Path) -> None:
    """Nothing in the demo is manual: each sales line's requirement in ``show``
    is its whole quantity, as in the sales_lines table."""
    engine = _engine(demo)
    wanted = {
        f"SO:{r[0]}/{r[1]}": r[2]
        for r in _rows(demo, "SELECT order_id, line_no, qty, item_id FROM sales_lines")
    }
    item, wh = _rows(demo, "SELECT item_id, warehouse_id FROM sales_lines LIMIT 1")[0]
    view = views.net_requirements(engine, item, wh)
    lines = [line for line in view.lines if line.kind == "so"]
    assert lines
    for line in lines:
        assert line.qty == pytest.approx(wanted[line.ref])
    engine.dispose()


#: A manual SKU (no orders): one sales line partly covered by on-hand, one
#: covered by nothing, and a made item above it whose component stays short.
MANUAL = {
    "plan_date": "2024-01-01",
    "input": {
        "warehouses": [{"warehouse_id": "W1", "site_id": "S1"}],
        "coverage_groups": [
            {"group_id": "GMAN", "coverage_code": "manual"},
            {"group_id": "GREQ", "coverage_code": "requirement"},
        ],
        "items": [
            {"item_id": "M", "coverage_group_id": "GMAN"},
            {"item_id": "P", "coverage_group_id": "GREQ", "default_order_type": "production"},
        ],
        "boms": [{"bom_id": "B", "item_id": "P", "batch_qty": 1}],
        "bom_lines": [{"bom_id": "B", "line_no": 10, "component_item_id": "M", "qty_per": 1}],
        "on_hand": [{"item_id": "M", "warehouse_id": "W1", "qty": 3}],
        "sales_lines": [
            {
                "order_id": "S",
                "line_no": 1,
                "item_id": "M",
                "warehouse_id": "W1",
                "qty": 5,
                "requested_date": "2024-01-05",
                "priority": 0,
            },
            {
                "order_id": "S",
                "line_no": 2,
                "item_id": "M",
                "warehouse_id": "W1",
                "qty": 2,
                "requested_date": "2024-01-06",
                "priority": 0,
            },
            {
                "order_id": "S",
                "line_no": 3,
                "item_id": "P",
                "warehouse_id": "W1",
                "qty": 1,
                "requested_date": "2024-01-10",
                "priority": 0,
            },
        ],
    },
}


def test_a_manual_skus_shortfalls(tmp_path: Path) -> None:
    path = _planned(tmp_path, MANUAL)
    never = {
        r[0]
        for r in _rows(path, "SELECT demand_ref FROM delay_messages WHERE futures_date IS NULL")
    }
    assert {"SO:S/1", "SO:S/2", "SO:S/3"} <= never
    engine = _engine(path)
    # Partly covered: it took the on-hand, and stays short of the rest.
    part = views.pegging_tree(engine, "SO:S/1")
    assert part.qty == 3 and [c.ref for c in part.children] == ["OH:M/W1"]
    why = views.delay_path(engine, "SO:S/1")
    assert (
        why.steps[0].supply_ref == "OH:M/W1" and "took 3 from supplies and stays short" in why.cause
    )
    # Covered by nothing: the demand alone, quantity 0; why says so.
    bare = views.pegging_tree(engine, "SO:S/2")
    assert (bare.qty, bare.children) == (0, ())
    assert views.delay_path(engine, "SO:S/2").steps[0].supply_ref is None
    # Above the manual SKU: the order is on time, its component never comes.
    above = views.delay_path(engine, "SO:S/3")
    assert above.steps[0].available_date is None
    assert "took from no supply" in above.cause
    view = views.net_requirements(engine, "M", "W1")
    assert [(line.ref, line.qty) for line in view.lines if line.side == "requirement"] == [
        ("SO:S/1", 3.0)
    ]
    engine.dispose()


#: An existing production order whose line draws on a purchased part, and a
#: transfer line: pegging links them by their refs (PRD -> PRDL, TRR -> TRI).
EXISTING = {
    "plan_date": "2024-01-01",
    "input": {
        "warehouses": [
            {"warehouse_id": "W1", "site_id": "S1"},
            {"warehouse_id": "W2", "site_id": "S1"},
        ],
        "coverage_groups": [{"group_id": "GREQ", "coverage_code": "requirement"}],
        "items": [
            {"item_id": "FG", "coverage_group_id": "GREQ", "default_order_type": "production"},
            {"item_id": "C", "coverage_group_id": "GREQ", "lead_time_days": 10},
        ],
        "production_orders": [
            {
                "order_id": "MO1",
                "item_id": "FG",
                "warehouse_id": "W1",
                "qty": 5,
                "start_date": "2024-01-04",
                "end_date": "2024-01-08",
            },
        ],
        "production_lines": [
            {
                "order_id": "MO1",
                "line_no": 1,
                "component_item_id": "C",
                "warehouse_id": "W1",
                "qty": 10,
                "required_date": "2024-01-04",
            },
        ],
        "transfer_lines": [
            {
                "order_id": "TR1",
                "line_no": 1,
                "item_id": "FG",
                "from_warehouse_id": "W1",
                "to_warehouse_id": "W2",
                "qty": 2,
                "ship_date": "2024-01-09",
                "receive_date": "2024-01-10",
            },
        ],
        "sales_lines": [
            {
                "order_id": "S",
                "line_no": 1,
                "item_id": "FG",
                "warehouse_id": "W1",
                "qty": 3,
                "requested_date": "2024-01-10",
                "priority": 0,
            },
            {
                "order_id": "S",
                "line_no": 2,
                "item_id": "FG",
                "warehouse_id": "W2",
                "qty": 2,
                "requested_date": "2024-01-12",
                "priority": 0,
            },
        ],
    },
}


def test_existing_orders_link_their_lines(tmp_path: Path) -> None:
    path = _planned(tmp_path, EXISTING)
    engine = _engine(path)
    # Down: the sales line at W2 takes the transfer receipt, issued at W1 from
    # the production order, whose line takes the purchased part.
    tree = views.pegging_tree(engine, "SO:S/2")
    _check_down(path, tree)
    chain = []
    node = tree
    while node.children:
        node = node.children[0]
        chain.append(node.ref)
    assert chain == ["TRR:TR1/1", "TRI:TR1/1", "PRD:MO1", "PRDL:MO1/1", "PL:C/W1/1"]
    # Up from the purchased part to both sales lines.
    up = views.pegging_tree(engine, "PL:C/W1/1", up=True)
    _check_up(path, up)
    ends = {n.ref for n in _walk(up) if n.role == "demand" and not n.children}
    assert ends == {"SO:S/1", "SO:S/2"}
    engine.dispose()


def test_refusals_name_what_is_missing(demo: Path, tmp_path: Path) -> None:
    engine = _engine(demo)
    with pytest.raises(views.NotInPlan, match="'NOPE'"):
        views.net_requirements(engine, "NOPE", "DC")
    with pytest.raises(views.NotInPlan, match="no demand 'SO:NOPE/1'"):
        views.pegging_tree(engine, "SO:NOPE/1")
    on_time = next(
        r["demand_ref"]
        for r in _pegging(demo)
        if r["demand_kind"] == "so"
        and not _rows(demo, "SELECT 1 FROM delay_messages WHERE demand_ref = ?", r["demand_ref"])
    )
    with pytest.raises(views.NotInPlan, match="not late"):
        views.delay_path(engine, on_time)
    with pytest.raises(views.NotInPlan, match="no demand"):
        views.pegging_tree(engine, "SO:NOPE/1", plan_id="main")
    empty = tmp_path / "empty.db"
    url = f"sqlite:///{empty}"
    assert main(["scm", "init", "--db", url]) == 0
    with pytest.raises(views.ViewError, match="masterplan run --plan main"):
        views.current_run(create_engine(url))
    engine.dispose()
