"""Tests of connector.writer.ResultWrite: a result written chunk by chunk as it arrives.

The connector writes a run's result while the server streams it, so that it
never holds the whole plan. Written in pieces, the plan must be exactly the
plan :func:`write_run` writes at once, and until the commit a failure of
any kind leaves the previous plan current (on every backend).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pytest
from sqlalchemy.engine import Engine

from masterplan.connector.errors import BaseRunChanged, InvalidResult
from masterplan.connector.reader import read_table
from masterplan.connector.schema import create_all
from masterplan.connector.writer import ResultWrite, write_run
from masterplan.contract.columns import take
from masterplan.contract.tables import PLAN_OUTPUT_TABLES, RESULT_TABLES
from tests.connector.test_writer import (
    Results,
    _rows,
    current_run,
    make_results,
    rows_of_run,
    run_record,
)


@pytest.fixture
def scm(engine: Engine) -> Engine:
    create_all(engine)
    return engine


def _pieces(table: Mapping[str, np.ndarray], size: int) -> list[dict[str, np.ndarray]]:
    n = len(next(iter(table.values())))
    return [take(dict(table), np.arange(k, min(k + size, n))) for k in range(0, n, size)]


def _counts(results: Results) -> dict[str, int]:
    return {name: len(results[name]["item_id"]) for name in PLAN_OUTPUT_TABLES}


def _plan(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    out = {}
    for name in PLAN_OUTPUT_TABLES:
        columns = [c for c in RESULT_TABLES[name].column_names if c not in ("run_id", "plan_id")]
        out[name] = _rows(read_table(engine, name), columns)
    return out


def _stream(write: ResultWrite, results: Results, size: int) -> None:
    for name in PLAN_OUTPUT_TABLES:
        for piece in _pieces(results[name], size):
            write.add(name, piece)


def test_a_result_written_in_chunks_is_the_result_written_at_once(scm: Engine) -> None:
    results = make_results(23, "a")
    counts = _counts(results)
    with ResultWrite(
        scm, run_record("run-1"), plan_counts=counts, rows_added=sum(counts.values())
    ) as write:
        _stream(write, results, 4)
        report = write.commit()
    assert report.written and report.rows_added == sum(counts.values())
    assert current_run(scm) == "run-1"
    chunked = _plan(scm)
    write_run(scm, run_record("run-2", minute=5), results)
    assert _plan(scm) == chunked


def test_a_difference_written_in_chunks_changes_only_its_rows(scm: Engine) -> None:
    first = make_results(12, "a")
    assert write_run(scm, run_record("run-1"), first)
    # Remove rows 0-4 of every table, add 3 new ones.
    removed = {name: take(first[name], np.arange(5)) for name in PLAN_OUTPUT_TABLES}
    added = make_results(3, "n")
    expected = {
        name: {c: np.concatenate([v[5:], added[name][c]]) for c, v in first[name].items()}
        for name in PLAN_OUTPUT_TABLES
    }
    plan_counts = {name: 10 for name in PLAN_OUTPUT_TABLES}
    with ResultWrite(
        scm,
        run_record("run-2", minute=5),
        plan_counts=plan_counts,
        rows_added=3 * len(PLAN_OUTPUT_TABLES),
        base_run_id="run-1",
        rows_removed=5 * len(PLAN_OUTPUT_TABLES),
    ) as write:
        for name in PLAN_OUTPUT_TABLES:
            for piece in _pieces(removed[name], 2):
                write.remove(name, piece)
            write.add(name, added[name])
        report = write.commit()
    assert report.difference and report.rows_removed == 5 * len(PLAN_OUTPUT_TABLES)
    assert current_run(scm) == "run-2"
    written = _plan(scm)
    assert write_run(scm, run_record("run-3", minute=9), expected)
    assert _plan(scm) == written


@pytest.mark.parametrize("how", ["exception", "short", "no commit"])
def test_a_write_that_does_not_finish_leaves_the_previous_plan(scm: Engine, how: str) -> None:
    assert write_run(scm, run_record("run-1"), make_results(6, "a"))
    before = _plan(scm)
    results = make_results(30, "b")
    counts = _counts(results)
    record = run_record("run-2", minute=5)
    write = ResultWrite(scm, record, plan_counts=counts, rows_added=sum(counts.values()))
    with pytest.raises((RuntimeError, InvalidResult)) as failed, write as w:
        # Half of the chunks are in the open transaction already.
        for name in PLAN_OUTPUT_TABLES[:3]:
            for piece in _pieces(results[name], 7):
                w.add(name, piece)
        if how == "exception":
            raise RuntimeError("the stream broke off")
        if how == "short":
            w.commit()  # fewer rows than the run declared
        else:
            raise RuntimeError("left without a commit")
    if how == "short":
        assert "declared" in str(failed.value)
    assert current_run(scm) == "run-1"
    assert _plan(scm) == before
    for name in (*PLAN_OUTPUT_TABLES, "plan_runs"):
        assert rows_of_run(scm, name, "run-2") == 0, name
    # Nothing of it stayed: the same run writes afterwards.
    assert write_run(scm, record, results).written
    assert current_run(scm) == "run-2"


def test_removed_rows_after_their_tables_added_rows_are_refused(scm: Engine) -> None:
    first = make_results(4, "a")
    assert write_run(scm, run_record("run-1"), first)
    counts = _counts(first)
    with (
        pytest.raises(InvalidResult, match="removed rows after"),
        ResultWrite(
            scm,
            run_record("run-2", minute=5),
            plan_counts=counts,
            rows_added=1,
            base_run_id="run-1",
            rows_removed=1,
        ) as write,
    ):
        write.add("pegging", take(first["pegging"], np.arange(1)))
        write.remove("pegging", take(first["pegging"], np.arange(1)))
    assert current_run(scm) == "run-1"


def test_a_difference_against_a_plan_the_database_no_longer_holds_is_refused_at_once(
    scm: Engine,
) -> None:
    assert write_run(scm, run_record("run-1"), make_results(4, "a"))
    assert write_run(scm, run_record("run-2", minute=5), make_results(4, "b"))
    counts = {name: 4 for name in PLAN_OUTPUT_TABLES}
    write = ResultWrite(
        scm, run_record("run-3", minute=9), plan_counts=counts, rows_added=0, base_run_id="run-1"
    )
    # Refused when it opens, before a single chunk is written.
    with pytest.raises(BaseRunChanged), write:
        pass
    assert current_run(scm) == "run-2"
    assert rows_of_run(scm, "plan_runs", "run-3") == 0


def test_a_replayed_run_ignores_its_chunks(scm: Engine) -> None:
    results = make_results(5, "a")
    assert write_run(scm, run_record("run-1"), results)
    other = make_results(9, "z")
    counts = _counts(other)
    with ResultWrite(
        scm, run_record("run-1"), plan_counts=counts, rows_added=sum(counts.values())
    ) as write:
        assert not write.written
        _stream(write, other, 4)
        assert not write.commit()
    assert rows_of_run(scm, "planned_orders", "run-1") == 5


def test_a_chunk_of_the_wrong_shape_is_refused_naming_its_table_and_column(
    scm: Engine,
) -> None:
    results = make_results(3, "a")
    counts = _counts(results)
    bad = dict(results["pegging"])
    del bad["qty"]
    with (
        pytest.raises(InvalidResult, match="'pegging' lacks column 'qty'"),
        ResultWrite(
            scm, run_record("run-1"), plan_counts=counts, rows_added=sum(counts.values())
        ) as write,
    ):
        write.add("planned_orders", results["planned_orders"])
        write.add("pegging", bad)
    assert current_run(scm) is None
