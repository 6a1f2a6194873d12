"""SQLite loads a whole result before its indexes (connector.writer).

A table that a whole result's rows are most of has its plain indexes
dropped inside the write's transaction and made again after its rows, from
the statements SQLite kept for them. These tests hold the write to what
users rely on: the same plan and the same indexes afterwards, a failed
write that leaves both as they were, a unique index that still refuses a
duplicate, and tables holding other plans' rows left indexed as they go.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

from masterplan.connector import writer
from masterplan.connector.schema import create_all, create_engine
from masterplan.connector.writer import ResultWrite, write_run
from masterplan.contract.tables import PLAN_OUTPUT_TABLES
from tests.connector.test_result_write import _counts, _pieces, _plan
from tests.connector.test_writer import current_run, make_results, run_record


@pytest.fixture
def scm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    # The tests' results are small: load every one of them the way a large
    # one is loaded.
    monkeypatch.setattr(writer, "_REBUILD_MIN_ROWS", 0)
    engine = create_engine(f"sqlite:///{tmp_path / 'scm.db'}")
    create_all(engine)
    try:
        yield engine
    finally:
        engine.dispose()


def _indexes(engine: Engine) -> dict[str, str]:
    """Every index of the result tables that has a statement, by name."""
    listed = ", ".join(f"'{name}'" for name in PLAN_OUTPUT_TABLES)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
            f"AND sql IS NOT NULL AND tbl_name IN ({listed})"
        ).all()
    return {name: sql for name, sql in rows}


def _dropped(engine: Engine) -> list[str]:
    """The DROP INDEX statements the engine runs from now on, as they run."""
    seen: list[str] = []

    def spy(conn: object, cursor: object, statement: str, *rest: object) -> None:
        if statement.upper().startswith("DROP INDEX"):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", spy)
    return seen


def _uses_index(engine: Engine, table: str, column: str, value: str) -> bool:
    with engine.connect() as conn:
        plan = conn.exec_driver_sql(
            f"EXPLAIN QUERY PLAN SELECT * FROM {table} WHERE plan_id = 'main' AND {column} = ?",
            (value,),
        ).all()
    return any("USING INDEX" in str(row[-1]) for row in plan)


def test_a_whole_result_is_loaded_before_its_indexes_which_are_made_again(scm: Engine) -> None:
    before = _indexes(scm)
    assert len(before) == len(PLAN_OUTPUT_TABLES)
    dropped = _dropped(scm)
    results = make_results(40, "a")
    counts = _counts(results)
    with ResultWrite(
        scm, run_record("run-1"), plan_counts=counts, rows_added=sum(counts.values())
    ) as write:
        for name in PLAN_OUTPUT_TABLES:
            for piece in _pieces(results[name], 7):
                write.add(name, piece)
        assert write.commit().written
    assert len(dropped) == len(PLAN_OUTPUT_TABLES)
    assert _indexes(scm) == before
    assert _uses_index(scm, "pegging", "demand_ref", "x")
    with scm.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar_one() == "ok"
    loaded = _plan(scm)
    write_run(scm, run_record("run-2", minute=5), results)
    assert _plan(scm) == loaded


def test_a_load_that_fails_leaves_the_indexes_and_the_previous_plan(scm: Engine) -> None:
    assert write_run(scm, run_record("run-1"), make_results(6, "a"))
    before, plan = _indexes(scm), _plan(scm)
    results = make_results(30, "b")
    counts = _counts(results)
    write = ResultWrite(
        scm, run_record("run-2", minute=5), plan_counts=counts, rows_added=sum(counts.values())
    )
    with pytest.raises(RuntimeError), write as w:
        for name in PLAN_OUTPUT_TABLES[:3]:
            w.add(name, results[name])
        w.add(PLAN_OUTPUT_TABLES[3], _pieces(results[PLAN_OUTPUT_TABLES[3]], 5)[0])
        raise RuntimeError("the stream broke off inside a table")
    assert _indexes(scm) == before
    assert current_run(scm) == "run-1"
    assert _plan(scm) == plan


def test_a_unique_index_an_integrator_added_still_refuses_a_duplicate(scm: Engine) -> None:
    with scm.begin() as conn:
        conn.exec_driver_sql(
            "CREATE UNIQUE INDEX ux_planned_order ON planned_orders (plan_id, planned_order_id)"
        )
    assert write_run(scm, run_record("run-1"), make_results(6, "a"))
    dropped = _dropped(scm)
    results = make_results(20, "b")
    ids = results["planned_orders"]["planned_order_id"].copy()
    ids[7] = ids[3]
    results["planned_orders"] = {**results["planned_orders"], "planned_order_id": ids}
    with pytest.raises(sa.exc.IntegrityError):
        write_run(scm, run_record("run-2", minute=5), results)
    assert not any("ux_planned_order" in statement for statement in dropped)
    assert "ux_planned_order" in _indexes(scm)
    assert current_run(scm) == "run-1"


def test_a_table_holding_more_rows_of_other_plans_keeps_its_indexes(scm: Engine) -> None:
    assert write_run(scm, run_record("other-1", plan_id="other"), make_results(50, "o"))
    dropped = _dropped(scm)
    assert write_run(scm, run_record("run-1"), make_results(10, "a"))
    assert dropped == []
    # The plan that is most of its tables is loaded before its indexes.
    assert write_run(scm, run_record("run-2", minute=5), make_results(80, "b"))
    assert len(dropped) == len(PLAN_OUTPUT_TABLES)
    assert current_run(scm) == "run-2" and current_run(scm, "other") == "other-1"
