"""Writing a run as a difference to the plan the database holds (SPEC §4).

The current plan of a plan is its rows in the result tables; a run whose
result is a difference to that plan deletes the rows removed and inserts the
rows added, in one transaction with the ``plans.current_run_id`` switch.
These tests compute the differences with plain Python (a multiset of row
tuples) and check the database's rows afterwards.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from masterplan.connector.errors import BaseRunChanged, SchemaMismatch
from masterplan.connector.reader import read_table
from masterplan.connector.schema import create_all, old_layout_tables, sql_table
from masterplan.connector.writer import write_run
from masterplan.contract.tables import PLAN_OUTPUT_TABLES, RESULT_OUTPUT_SPECS, RESULT_TABLES
from tests.connector.test_writer import Results, current_run, make_results, rows_of_run, run_record

Row = tuple[Any, ...]


def _norm(v: Any) -> Any:
    if isinstance(v, float) and np.isnan(v):
        return None
    if isinstance(v, np.datetime64):
        return None if np.isnat(v) else str(v)
    if hasattr(v, "isoformat"):
        return v.isoformat()
    if isinstance(v, int | np.integer) and not isinstance(v, bool):
        return float(v)
    return v


def rows(table: dict[str, np.ndarray], name: str) -> Counter[Row]:
    columns = RESULT_OUTPUT_SPECS[name].column_names
    n = len(table[columns[0]])
    return Counter(tuple(_norm(table[c][k]) for c in columns) for k in range(n))


def plan_rows(engine: Engine, name: str, plan_id: str = "main") -> Counter[Row]:
    stored = read_table(engine, name)
    keep = np.asarray([p == plan_id for p in stored["plan_id"]], dtype=bool)
    return rows({c: np.asarray(v)[keep] for c, v in stored.items()}, name)


def take(table: dict[str, np.ndarray], index: list[int]) -> dict[str, np.ndarray]:
    return {c: np.asarray(v)[np.asarray(index, dtype=np.int64)] for c, v in table.items()}


def _picks(table: dict[str, np.ndarray], name: str, changed: set[Row]) -> list[int]:
    """Positions of the rows of ``table`` that are in ``changed``."""
    columns = RESULT_OUTPUT_SPECS[name].column_names
    n = len(table[columns[0]])
    return [k for k in range(n) if tuple(_norm(table[c][k]) for c in columns) in changed]


def difference(old: Results, new: Results) -> tuple[Results, Results]:
    """Removed and added rows, every copy of a row whose count changed."""
    removed: Results = {}
    added: Results = {}
    for name in PLAN_OUTPUT_TABLES:
        before, after = rows(old[name], name), rows(new[name], name)
        changed = {r for r in before.keys() | after.keys() if before[r] != after[r]}
        removed[name] = take(old[name], _picks(old[name], name, changed))
        added[name] = take(new[name], _picks(new[name], name, changed))
    return removed, added


def edited(results: Results) -> Results:
    """``results`` with a few rows changed, one removed, one duplicated."""
    new = {name: {c: np.array(v, copy=True) for c, v in t.items()} for name, t in results.items()}
    new["planned_orders"]["qty"][1] += 1.0
    new["pegging"]["demand_date"][2] += np.timedelta64(3, "D")
    drop = np.arange(len(new["delay_messages"]["demand_ref"])) != 0
    new["delay_messages"] = {c: v[drop] for c, v in new["delay_messages"].items()}
    # Action message 0 has NULL suggestions: it is removed and added back twice.
    new["action_messages"] = {
        c: np.concatenate([v, v[:1]]) for c, v in new["action_messages"].items()
    }
    new["plan_messages"]["text"][4] = "changed text"
    return new


@pytest.fixture
def scm(engine: Engine) -> Engine:
    create_all(engine)
    return engine


def test_a_difference_changes_only_the_rows_that_differ(scm: Engine) -> None:
    old = make_results(8)
    assert write_run(scm, run_record("run-1"), old).written
    new = edited(old)
    removed, added = difference(old, new)
    counts = {name: sum(rows(new[name], name).values()) for name in PLAN_OUTPUT_TABLES}
    report = write_run(
        scm,
        run_record("run-2", minute=5),
        added,
        removed=removed,
        base_run_id="run-1",
        plan_counts=counts,
    )
    assert report.written and report.difference
    assert report.rows_added == sum(sum(rows(added[n], n).values()) for n in PLAN_OUTPUT_TABLES)
    assert report.rows_removed == sum(sum(rows(removed[n], n).values()) for n in PLAN_OUTPUT_TABLES)
    assert current_run(scm) == "run-2"
    for name in PLAN_OUTPUT_TABLES:
        assert plan_rows(scm, name) == rows(new[name], name), name
    # Rows that did not change still name the run that wrote them.
    assert rows_of_run(scm, "planned_orders", "run-1") == 7
    assert rows_of_run(scm, "planned_orders", "run-2") == 1
    assert rows_of_run(scm, "action_messages", "run-2") == 2
    history = read_table(scm, "plan_runs")
    last = list(history["run_id"]).index("run-2")
    assert history["base_run_id"][last] == "run-1"
    assert history["rows_added"][last] == report.rows_added
    assert history["rows_removed"][last] == report.rows_removed
    assert history["delay_message_count"][last] == 7
    assert history["action_message_count"][last] == 9


def test_a_difference_to_another_plan_writes_nothing(scm: Engine) -> None:
    old = make_results(5)
    write_run(scm, run_record("run-1"), old)
    write_run(scm, run_record("run-2", minute=3), make_results(5, "other"))
    removed, added = difference(old, edited(old))
    with pytest.raises(BaseRunChanged, match="run-1"):
        write_run(
            scm,
            run_record("run-3", minute=5),
            added,
            removed=removed,
            base_run_id="run-1",
            plan_counts=dict.fromkeys(PLAN_OUTPUT_TABLES, 0),
        )
    assert current_run(scm) == "run-2"
    assert rows_of_run(scm, "plan_runs", "run-3") == 0
    assert rows_of_run(scm, "pegging", "run-2") == 5


def test_a_difference_reaches_only_its_plan(scm: Engine) -> None:
    old = make_results(6)
    write_run(scm, run_record("run-1"), old)
    write_run(scm, run_record("w-1", plan_id="what-if"), old)
    new = edited(old)
    removed, added = difference(old, new)
    write_run(
        scm,
        run_record("run-2", minute=5),
        added,
        removed=removed,
        base_run_id="run-1",
        plan_counts=dict.fromkeys(PLAN_OUTPUT_TABLES, 0),
    )
    for name in PLAN_OUTPUT_TABLES:
        assert plan_rows(scm, name, "what-if") == rows(old[name], name), name
        assert plan_rows(scm, name, "main") == rows(new[name], name), name


def _old_layout(engine: Engine) -> None:
    """Result tables as masterplan 0.1 created them: no plan_id, rows per run."""
    quote = engine.dialect.identifier_preparer.quote
    with engine.begin() as conn:
        for name, spec in RESULT_TABLES.items():
            old_columns = [
                c
                for c in spec.columns
                if c.name not in ("base_run_id", "rows_added", "rows_removed")
                and not (c.name == "plan_id" and name != "plans" and name != "plan_runs")
            ]
            types = {"str": "VARCHAR(255)", "float": "DOUBLE PRECISION", "int": "INTEGER"}
            ddl = ", ".join(
                f"{quote(c.name)} {types.get(c.kind.value, 'DATE')}" for c in old_columns
            )
            if spec.primary_key:
                ddl += f", PRIMARY KEY ({', '.join(map(quote, spec.primary_key))})"
            conn.exec_driver_sql(f"CREATE TABLE {quote(name)} ({ddl})")
        conn.execute(
            sql_table("plans").insert(),
            [
                {"plan_id": "main", "current_run_id": "r2"},
                {"plan_id": "b", "current_run_id": "b1"},
            ],
        )
        for run_id, plan_id in (("r1", "main"), ("r2", "main"), ("b1", "b")):
            conn.exec_driver_sql(
                "INSERT INTO plan_runs (run_id, plan_id, mode, plan_date, status, started_at, "
                "finished_at, planned_order_count, pegging_count, action_message_count, "
                "delay_message_count, plan_message_count) VALUES "
                f"('{run_id}', '{plan_id}', 'regeneration', '2024-03-01', 'completed', "
                "'2024-03-01T08:00:00', '2024-03-01T08:01:00', 0, 0, 0, 0, 1)"
            )
            for k in range(2):
                conn.exec_driver_sql(
                    "INSERT INTO plan_messages (run_id, severity, code, item_id, warehouse_id, "
                    f"text) VALUES ('{run_id}', 'warning', 'X', NULL, NULL, 'm{k}')"
                )


def test_old_layout_is_refused_then_migrated(engine: Engine) -> None:
    _old_layout(engine)
    assert set(old_layout_tables(engine)) == {*PLAN_OUTPUT_TABLES, "plan_runs"}
    with pytest.raises(SchemaMismatch, match="scm init"):
        write_run(engine, run_record("run-9"), make_results(1))

    steps = create_all(engine)
    assert any("plan_messages: deleted 2 rows" in s for s in steps), steps
    assert old_layout_tables(engine) == []
    messages = read_table(engine, "plan_messages")
    kept = sorted(zip(messages["plan_id"], messages["run_id"], strict=True))
    assert kept == [("b", "b1"), ("b", "b1"), ("main", "r2"), ("main", "r2")]
    assert create_all(engine) == []  # a second init has nothing to do

    # The migrated database takes a difference to its current run like any.
    assert write_run(engine, run_record("run-9"), make_results(2)).written
    assert plan_rows(engine, "plan_messages", "b") == Counter(
        {("warning", "X", None, None, "m0"): 1, ("warning", "X", None, None, "m1"): 1}
    )
    with engine.connect() as conn:
        held = conn.execute(
            sa.select(sa.func.count()).select_from(sql_table("plan_messages"))
        ).scalar_one()
    assert held == 4
