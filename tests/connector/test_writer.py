"""Tests of connector.writer: atomic, idempotent write-back of plan results."""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
import tempfile
from collections.abc import Mapping
from itertools import pairwise
from typing import Any
from unittest import mock

import numpy as np
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from masterplan.connector import writer
from masterplan.connector.errors import InvalidResult, SchemaMismatch
from masterplan.connector.reader import read_table
from masterplan.connector.schema import (
    ID_LENGTH,
    PLANNED_ORDER_ID_LENGTH,
    create_all,
    sql_table,
)
from masterplan.connector.writer import RunRecord, prune_runs, write_run
from masterplan.contract.coded import Coded
from masterplan.contract.tables import PLAN_OUTPUT_TABLES, RESULT_TABLES, ColumnKind

Results = dict[str, dict[str, np.ndarray]]

T0 = dt.date(2024, 3, 1)


def _dates(days: np.ndarray) -> np.ndarray:
    return np.datetime64(T0, "D") + days.astype("timedelta64[D]")


def make_results(n: int, tag: str = "r") -> Results:
    """Synthetic results of ``n`` rows per table, with NULLs where §4 allows them."""
    i = np.arange(n)
    ids = np.array([f"{tag}-{k}" for k in i], dtype=object)
    some_null = np.array([None if k % 3 == 0 else f"V{k}" for k in i], dtype=object)
    qty = i * 1.25 + 0.1
    nat_every_4th = _dates(i).copy()
    nat_every_4th[i % 4 == 0] = np.datetime64("NaT")
    nan_every_4th = np.where(i % 4 == 0, np.nan, qty)
    item = np.array([f"I{k % 7}" for k in i], dtype=object)
    wh = np.full(n, "W1", dtype=object)
    return {
        "planned_orders": {
            "planned_order_id": ids,
            "item_id": item,
            "warehouse_id": wh,
            "order_type": np.full(n, "purchase", dtype=object),
            "qty": qty,
            "order_date": _dates(i),
            "due_date": _dates(i + 2),
            "requirement_date": _dates(i + 3),
            "from_warehouse_id": np.full(n, None, dtype=object),
            "vendor_id": some_null,
            "bom_id": some_null,
            "firmed": (i % 2).astype(np.float64),
        },
        "pegging": {
            "item_id": item,
            "warehouse_id": wh,
            "supply_kind": np.full(n, "pl", dtype=object),
            "supply_ref": np.array([f"PL:{x}" for x in ids], dtype=object),
            "supply_date": _dates(i),
            "demand_kind": np.full(n, "so", dtype=object),
            "demand_ref": np.array([f"SO:{tag}/{k}" for k in i], dtype=object),
            "demand_date": _dates(i + 1),
            "qty": qty,
        },
        "action_messages": {
            "supply_kind": np.full(n, "po", dtype=object),
            "supply_ref": np.array([f"PO:{tag}/{k}" for k in i], dtype=object),
            "item_id": item,
            "warehouse_id": wh,
            "action": np.full(n, "advance", dtype=object),
            "receipt_date": _dates(i),
            "receipt_qty": qty,
            "suggested_date": nat_every_4th,
            "suggested_qty": nan_every_4th,
        },
        "delay_messages": {
            "demand_kind": np.full(n, "so", dtype=object),
            "demand_ref": np.array([f"SO:{tag}/{k}" for k in i], dtype=object),
            "item_id": item,
            "warehouse_id": wh,
            "requirement_date": _dates(i),
            "futures_date": nat_every_4th,
            "delay_days": np.where(i % 4 == 0, np.nan, i.astype(np.float64)),
        },
        "plan_messages": {
            "severity": np.full(n, "warning", dtype=object),
            "code": np.full(n, "UNKNOWN_ITEM", dtype=object),
            "item_id": some_null,
            "warehouse_id": some_null,
            "text": np.array(
                [f"message {k}: ünïcode, tab\tand newline\n" for k in i], dtype=object
            ),
        },
    }


def run_record(run_id: str, plan_id: str = "main", minute: int = 0) -> RunRecord:
    start = dt.datetime(2024, 3, 1, 8, minute, tzinfo=dt.UTC)
    return RunRecord(
        run_id=run_id,
        plan_id=plan_id,
        mode="regeneration",
        plan_date=T0,
        started_at=start,
        finished_at=start + dt.timedelta(seconds=30),
    )


def current_run(engine: Engine, plan_id: str = "main") -> str | None:
    plans = sql_table("plans")
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(plans.c.current_run_id).where(plans.c.plan_id == plan_id)
        ).first()
    return None if row is None else row[0]


def rows_of_run(engine: Engine, table: str, run_id: str) -> int:
    t = sql_table(table)
    with engine.connect() as conn:
        return conn.execute(
            sa.select(sa.func.count()).select_from(t).where(t.c.run_id == run_id)
        ).scalar_one()


def _rows(table: Mapping[str, np.ndarray], columns: list[str]) -> list[tuple[Any, ...]]:
    """Rows as comparable tuples (NaN -> None, NaT -> None), sorted."""

    def norm(v: Any) -> Any:
        if isinstance(v, float) and np.isnan(v):
            return None
        if isinstance(v, np.datetime64):
            return None if np.isnat(v) else str(v)
        return v

    return sorted(
        (tuple(norm(table[c][k]) for c in columns) for k in range(len(table[columns[0]]))),
        key=repr,
    )


@pytest.fixture
def scm(engine: Engine) -> Engine:
    create_all(engine)
    return engine


@pytest.mark.parametrize("n", [0, 1, 57])
def test_write_and_read_back(scm: Engine, n: int) -> None:
    results = make_results(n)
    assert write_run(scm, run_record("run-1"), results, batch_rows=10).written

    for name in PLAN_OUTPUT_TABLES:
        stored = read_table(scm, name)
        assert set(stored["run_id"].tolist()) <= {"run-1"}
        assert set(stored["plan_id"].tolist()) <= {"main"}
        columns = [c for c in RESULT_TABLES[name].column_names if c not in ("run_id", "plan_id")]
        assert _rows(stored, columns) == _rows(results[name], columns), name

    runs = read_table(scm, "plan_runs")
    assert runs["run_id"].tolist() == ["run-1"]
    assert runs["plan_id"].tolist() == ["main"]
    assert runs["mode"].tolist() == ["regeneration"]
    assert runs["status"].tolist() == ["completed"]
    assert runs["plan_date"].tolist() == [T0]
    assert runs["started_at"].tolist() == ["2024-03-01T08:00:00.000000+00:00"]
    assert runs["finished_at"].tolist() == ["2024-03-01T08:00:30.000000+00:00"]
    for column in (
        "planned_order_count",
        "pegging_count",
        "action_message_count",
        "delay_message_count",
        "plan_message_count",
    ):
        assert runs[column].tolist() == [float(n)]
    assert runs["rows_added"].tolist() == [5.0 * n]
    assert runs["rows_removed"].tolist() == [0.0]
    assert runs["base_run_id"].tolist() == [None]
    assert current_run(scm) == "run-1"


def test_integer_columns_are_written_as_integers(scm: Engine) -> None:
    write_run(scm, run_record("run-1"), make_results(5))
    delays, orders = sql_table("delay_messages"), sql_table("planned_orders")
    with scm.connect() as conn:
        days = conn.execute(sa.select(delays.c.delay_days)).scalars().all()
        firmed = conn.execute(sa.select(orders.c.firmed)).scalars().all()
        raw = conn.exec_driver_sql("SELECT firmed FROM planned_orders").scalars().all()
    assert sorted(days, key=lambda d: -1 if d is None else d) == [None, None, 1, 2, 3]
    assert all(type(d) is int for d in days if d is not None)
    assert sorted(firmed) == [0, 0, 0, 1, 1]
    assert all(type(f) is int for f in raw)  # not 1.0 stored as REAL on SQLite


def test_a_full_write_replaces_the_plan_and_leaves_other_plans(scm: Engine) -> None:
    assert write_run(scm, run_record("run-1"), make_results(4, "a"))
    report = write_run(scm, run_record("run-2", minute=5), make_results(6, "b"))
    assert (report.difference, report.rows_added, report.rows_removed) == (False, 30, 20)
    assert current_run(scm) == "run-2"
    # The result tables hold the current plan: run-1's rows are gone.
    assert rows_of_run(scm, "pegging", "run-1") == 0
    assert rows_of_run(scm, "pegging", "run-2") == 6
    # Another plan lives beside it, untouched by the writes of "main".
    assert write_run(scm, run_record("run-3", plan_id="what-if"), make_results(1, "c"))
    assert write_run(scm, run_record("run-4", minute=9), make_results(2, "d"))
    assert current_run(scm) == "run-4"
    assert current_run(scm, "what-if") == "run-3"
    assert rows_of_run(scm, "pegging", "run-3") == 1
    runs = read_table(scm, "plan_runs")
    removed = dict(zip(runs["run_id"].tolist(), runs["rows_removed"].tolist(), strict=True))
    assert removed == {"run-1": 0, "run-2": 20, "run-3": 0, "run-4": 30}


def test_replay_is_a_no_op(scm: Engine) -> None:
    assert write_run(scm, run_record("run-1"), make_results(3, "a")).written
    assert write_run(scm, run_record("run-2", minute=5), make_results(2, "b")).written
    # Replaying run-1 (even with other content) changes nothing, not even the
    # current run.
    assert not write_run(scm, run_record("run-1"), make_results(9, "z"))
    assert current_run(scm) == "run-2"
    assert rows_of_run(scm, "planned_orders", "run-2") == 2
    assert rows_of_run(scm, "planned_orders", "run-1") == 0
    assert rows_of_run(scm, "plan_runs", "run-1") == 1


def _fail_on_third_table(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make the writer fail right after it inserted the rows of its 3rd table."""
    real = writer._Inserter.write
    done: list[str] = []

    def insert_then_fail(self: Any, *args: Any, **kwargs: Any) -> None:
        real(self, *args, **kwargs)
        done.append(self.spec.name)
        if len(done) == 3:
            raise RuntimeError(f"injected failure after {self.spec.name}")

    monkeypatch.setattr(writer._Inserter, "write", insert_then_fail)
    return done


def test_failure_midway_keeps_previous_plan(scm: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    assert write_run(scm, run_record("run-1"), make_results(4, "a"))
    done = _fail_on_third_table(monkeypatch)
    with pytest.raises(RuntimeError, match="injected failure after action_messages"):
        write_run(scm, run_record("run-2", minute=5), make_results(25, "b"), batch_rows=10)
    assert done == ["planned_orders", "pegging", "action_messages"]

    assert current_run(scm) == "run-1"
    for name in (*PLAN_OUTPUT_TABLES, "plan_runs"):
        assert rows_of_run(scm, name, "run-2") == 0, name
        assert rows_of_run(scm, name, "run-1") == (1 if name == "plan_runs" else 4), name

    # Nothing was left behind: the same run can be written afterwards.
    monkeypatch.undo()
    assert write_run(scm, run_record("run-2", minute=5), make_results(25, "b")).written
    assert current_run(scm) == "run-2"
    assert rows_of_run(scm, "pegging", "run-2") == 25


def test_failure_of_a_first_run_leaves_no_plan(
    scm: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fail_on_third_table(monkeypatch)
    with pytest.raises(RuntimeError):
        write_run(scm, run_record("run-1"), make_results(3))
    with scm.connect() as conn:
        for name in (*PLAN_OUTPUT_TABLES, "plan_runs", "plans"):
            count = conn.execute(sa.select(sa.func.count()).select_from(sql_table(name)))
            assert count.scalar_one() == 0, name


def test_database_refusal_rolls_back(scm: Engine) -> None:
    # Rows that pass the writer's validation but that the database refuses:
    # an integrator's plan_messages with a CHECK that rejects every warning,
    # hit by the last output table (after four tables' rows went in).
    assert write_run(scm, run_record("run-1"), make_results(2, "a"))
    with scm.begin() as conn:
        conn.exec_driver_sql("DROP TABLE plan_messages")
        conn.exec_driver_sql(
            "CREATE TABLE plan_messages (plan_id VARCHAR(255), run_id VARCHAR(255), "
            "severity VARCHAR(255), "
            "code VARCHAR(255), item_id VARCHAR(255), warehouse_id VARCHAR(255), "
            "text VARCHAR(255), CHECK (severity <> 'warning'))"
        )
    with pytest.raises(sa.exc.DBAPIError):
        write_run(scm, run_record("run-2", minute=5), make_results(3, "b"))
    assert current_run(scm) == "run-1"
    for name in (*PLAN_OUTPUT_TABLES, "plan_runs"):
        assert rows_of_run(scm, name, "run-2") == 0, name
    # The previous plan's rows are all there still (their delete was rolled back).
    for name in PLAN_OUTPUT_TABLES[:-1]:
        assert rows_of_run(scm, name, "run-1") == 2, name


@pytest.mark.parametrize(
    ("mutate", "table", "column"),
    [
        (lambda r: r.pop("pegging"), "pegging", None),
        (
            lambda r: r["delay_messages"].pop("requirement_date"),
            "delay_messages",
            "requirement_date",
        ),
        (
            lambda r: r["plan_messages"].__setitem__("run_id", np.full(3, "x", dtype=object)),
            "plan_messages",
            "run_id",
        ),
        (lambda r: r["plan_messages"].__setitem__("typo", np.zeros(3)), "plan_messages", "typo"),
        (lambda r: r["pegging"].__setitem__("qty", np.zeros(2)), "pegging", "qty"),
        (
            lambda r: r["planned_orders"]["item_id"].__setitem__(1, None),
            "planned_orders",
            "item_id",
        ),
        (lambda r: r["planned_orders"]["qty"].__setitem__(1, np.nan), "planned_orders", "qty"),
        # Cast to int64, these wrapped to -2**63 and were written.
        (
            lambda r: r["planned_orders"]["firmed"].__setitem__(2, 2.0**63),
            "planned_orders",
            "firmed",
        ),
        (
            lambda r: r["delay_messages"]["delay_days"].__setitem__(1, -np.inf),
            "delay_messages",
            "delay_days",
        ),
        (
            lambda r: r["action_messages"]["receipt_date"].__setitem__(0, np.datetime64("NaT")),
            "action_messages",
            "receipt_date",
        ),
    ],
)
def test_invalid_results_write_nothing(
    scm: Engine, mutate: Any, table: str, column: str | None
) -> None:
    results = make_results(3)
    mutate(results)
    with pytest.raises(InvalidResult) as info:
        write_run(scm, run_record("run-1"), results)
    assert (info.value.table, info.value.column) == (table, column)
    assert repr(table) in str(info.value)
    assert rows_of_run(scm, "plan_runs", "run-1") == 0
    assert current_run(scm) is None


def test_missing_result_table_is_named(engine: Engine) -> None:
    with pytest.raises(SchemaMismatch) as info:
        write_run(engine, run_record("run-1"), make_results(1))
    assert (info.value.table, info.value.column) == ("plans", None)


def test_prune_keeps_newest_and_current(scm: Engine) -> None:
    # Finish times: run-4 is the oldest although written last (so current).
    for run_id, minute in (("run-1", 10), ("run-2", 20), ("run-3", 30), ("run-4", 5)):
        write_run(scm, run_record(run_id, minute=minute), make_results(3, run_id))
    write_run(scm, run_record("other", plan_id="what-if", minute=1), make_results(3, "o"))

    deleted = prune_runs(scm, "main", keep=1)

    assert sorted(deleted) == ["run-1", "run-2"]
    assert current_run(scm) == "run-4"
    for run_id, expected in (("run-1", 0), ("run-2", 0), ("run-3", 1), ("run-4", 1), ("other", 1)):
        assert rows_of_run(scm, "plan_runs", run_id) == expected, run_id
    # The plans' rows are untouched: pruning bounds the history, not a plan.
    assert rows_of_run(scm, "pegging", "run-4") == 3
    assert rows_of_run(scm, "pegging", "other") == 3

    assert prune_runs(scm, "main", keep=0) == ["run-3"]
    assert prune_runs(scm, "main", keep=0) == []
    assert rows_of_run(scm, "pegging", "run-4") == 3
    with pytest.raises(ValueError, match="keep"):
        prune_runs(scm, "main", keep=-1)


def test_postgres_writes_through_binary_copy(scm: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """The project's own result tables take every value in binary: each
    table's rows go down its COPY as binary payloads, none as text."""
    if scm.dialect.name != "postgresql":
        pytest.skip("COPY is the PostgreSQL path")
    sent = {"binary": 0, "text": 0}
    binary, text = writer.copy_binary, writer.copy_text

    def counting_binary(columns: Any, wires: Any, table: Any, *args: Any) -> bytes:
        sent["binary"] += len(table[columns[0].name])
        return binary(columns, wires, table, *args)

    def counting_text(columns: Any, table: Any, *args: Any) -> str:
        sent["text"] += len(table[columns[0].name])
        return text(columns, table, *args)

    monkeypatch.setattr(writer, "copy_binary", counting_binary)
    monkeypatch.setattr(writer, "copy_text", counting_text)
    results = make_results(57)
    assert write_run(scm, run_record("run-1"), results).written
    assert sent == {"binary": 57 * len(PLAN_OUTPUT_TABLES), "text": 0}
    for name in PLAN_OUTPUT_TABLES:
        assert rows_of_run(scm, name, "run-1") == 57, name


def test_a_copy_the_server_refuses_leaves_the_previous_plan(scm: Engine) -> None:
    """PostgreSQL checks a COPY's rows as they arrive and at its end; a value
    it refuses there fails the write like a refused INSERT does."""
    if scm.dialect.name != "postgresql":
        pytest.skip("COPY is the PostgreSQL path")
    assert write_run(scm, run_record("run-1"), make_results(3, "a")).written
    results = make_results(40, "b")
    too_long = np.array(["X" * (ID_LENGTH + 1)] * 40, dtype=object)
    results["delay_messages"]["item_id"] = too_long
    with pytest.raises(sa.exc.DataError, match="too long"):
        write_run(scm, run_record("run-2", minute=5), results)
    assert current_run(scm) == "run-1"
    for name in PLAN_OUTPUT_TABLES:
        assert rows_of_run(scm, name, "run-2") == 0, name
        assert rows_of_run(scm, name, "run-1") == 3, name


@pytest.mark.parametrize("where", ["server", "connector"])
def test_a_copy_failing_after_payloads_were_sent_leaves_the_previous_plan(
    scm: Engine, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """A refusal the server sends for a later payload of a table's COPY
    (``server``), or a payload the connector cannot make after earlier ones
    went (``connector``), fails the write with its own error and rolls it
    back; the connection goes back to the pool usable."""
    if scm.dialect.name != "postgresql":
        pytest.skip("COPY is the PostgreSQL path")
    assert write_run(scm, run_record("run-1"), make_results(3, "a")).written
    monkeypatch.setattr(writer, "_COPY_ROWS", 7)  # 40 rows: six payloads a table
    results = make_results(40, "b")
    if where == "server":
        # The second payload of delay_messages holds a value the column refuses.
        too_long = results["delay_messages"]["item_id"].copy()
        too_long[9] = "X" * (ID_LENGTH + 1)
        results["delay_messages"]["item_id"] = too_long
        expected: type[Exception] = sa.exc.DataError
        match = "too long"
    else:
        made = {"n": 0}
        binary = writer.copy_binary

        def failing_binary(*args: Any) -> bytes:
            made["n"] += 1
            if made["n"] == 10:  # the fourth payload of the second table
                raise ValueError("pegging.qty: cannot be made")
            return binary(*args)

        monkeypatch.setattr(writer, "copy_binary", failing_binary)
        expected, match = ValueError, "cannot be made"
    with pytest.raises(expected, match=match):
        write_run(scm, run_record("run-2", minute=5), results)
    assert current_run(scm) == "run-1"
    for name in PLAN_OUTPUT_TABLES:
        assert rows_of_run(scm, name, "run-2") == 0, name
        assert rows_of_run(scm, name, "run-1") == 3, name
    # The connection went back to the pool usable: the next write lands.
    assert write_run(scm, run_record("run-3", minute=9), make_results(40, "c")).written
    assert current_run(scm) == "run-3"
    assert rows_of_run(scm, "pegging", "run-3") == 40


def test_mariadb_writes_through_inserts_unless_the_url_opts_in(scm: Engine) -> None:
    if scm.dialect.name not in ("mysql", "mariadb"):
        pytest.skip("multi-row INSERTs and LOAD DATA are the MariaDB paths")
    with scm.connect() as conn:
        assert writer._load_data_writer(conn) is None
        assert writer._mysql_writer(conn) is not None


def test_awkward_text_survives_every_write_path(scm: Engine) -> None:
    results = make_results(4)
    awkward = ["tab\there", "new\nline", "back\\slash \\N", "quote ' \" ü €"]
    results["plan_messages"]["text"] = np.array(awkward, dtype=object)
    assert write_run(scm, run_record("run-1"), results).written
    stored = read_table(scm, "plan_messages")
    assert sorted(stored["text"].tolist()) == sorted(awkward)
    assert read_table(scm, "planned_orders")["vendor_id"].tolist().count(None) == 2


@pytest.mark.parametrize(
    ("run_id", "plan_id"),
    [
        ("run-'1'", "o'plan; DROP TABLE pegging; --"),
        ("run\x00nul", "plan\x00nul"),
        ("rün €", "pläne"),
    ],
)
def test_every_row_holds_the_run_and_plan_ids_as_given(
    scm: Engine, run_id: str, plan_id: str
) -> None:
    """SQLite's statement spells the ids as literals (a NUL character: bound
    instead); every path must store them as they are, quotes and all."""
    if "\x00" in run_id and scm.dialect.name == "postgresql":
        pytest.skip("PostgreSQL's text holds no NUL character")
    results = make_results(3)
    assert write_run(scm, run_record(run_id, plan_id), results).written
    for name in PLAN_OUTPUT_TABLES:
        stored = read_table(scm, name)
        assert stored["run_id"].tolist() == [run_id] * 3, name
        assert stored["plan_id"].tolist() == [plan_id] * 3, name
    assert current_run(scm, plan_id) == run_id


def test_the_longest_ids_make_planned_order_ids_and_refs_the_columns_hold(scm: Engine) -> None:
    """An item and a warehouse id of the full id length make a planned order
    id ``{item}/{warehouse}/{n}`` longer than two ids: 512 characters held
    none with a number."""
    results = make_results(2)
    item, wh = "I" * ID_LENGTH, "W" * ID_LENGTH
    ids = [f"{item}/{wh}/{n}" for n in (1, 10**19)]  # (up to 20 digits)
    assert len(ids[1]) == PLANNED_ORDER_ID_LENGTH
    po, peg = results["planned_orders"], results["pegging"]
    po["planned_order_id"] = np.array(ids, dtype=object)
    for table in (po, peg):
        table["item_id"] = np.array([item, item], dtype=object)
        table["warehouse_id"] = np.array([wh, wh], dtype=object)
    peg["supply_ref"] = np.array([f"PL:{x}/99" for x in ids], dtype=object)
    assert write_run(scm, run_record("run-1"), results).written
    assert sorted(read_table(scm, "planned_orders")["planned_order_id"].tolist()) == sorted(ids)
    assert sorted(read_table(scm, "pegging")["supply_ref"].tolist()) == sorted(
        peg["supply_ref"].tolist()
    )


def test_run_record_validation() -> None:
    with pytest.raises(ValueError, match="mode"):
        RunRecord("r", "main", "sometimes", T0, dt.datetime.now(dt.UTC), dt.datetime.now(dt.UTC))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="plan_date"):
        RunRecord(
            "r",
            "main",
            "net_change",
            dt.datetime(2024, 1, 1),
            dt.datetime.now(dt.UTC),
            dt.datetime.now(dt.UTC),
        )  # type: ignore[arg-type]
    naive = dt.datetime(2024, 1, 1, 12)
    assert writer.format_timestamp(naive) == "2024-01-01T12:00:00.000000+00:00"
    cet = dt.datetime(2024, 1, 1, 13, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert writer.format_timestamp(cet) == "2024-01-01T12:00:00.000000+00:00"


def test_result_kinds_are_covered() -> None:
    # make_results must give every result column of every output table.
    results = make_results(2)
    for name in PLAN_OUTPUT_TABLES:
        spec = RESULT_TABLES[name]
        assert set(results[name]) == set(spec.column_names) - {"run_id", "plan_id"}
        for column in spec.columns:
            if column.kind is ColumnKind.DATE and column.name in results[name]:
                assert results[name][column.name].dtype == np.dtype("datetime64[D]")


def test_a_null_stays_null_where_the_column_has_a_default(scm: Engine) -> None:
    """SQLite leaves a row's NULL columns out of its statement, to their
    default; a column whose table gives it another default (a DBA's own
    DDL) is bound NULL instead, and the rows read back as written."""
    if scm.dialect.name != "sqlite":
        pytest.skip("the statements without NULL columns are SQLite's path")
    with scm.begin() as conn:
        (ddl,) = conn.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'planned_orders'"
        ).one()
        with_default = re.sub(r"(\bvendor_id \w+(\(\d+\))?)", r"\1 DEFAULT 'V-DEFAULT'", ddl)
        assert with_default != ddl
        conn.exec_driver_sql("DROP TABLE planned_orders")
        conn.exec_driver_sql(with_default)
    with scm.connect() as conn:
        info = conn.exec_driver_sql("PRAGMA table_info(planned_orders)").all()
    assert {row[1]: row[4] for row in info}["vendor_id"] == "'V-DEFAULT'"

    results = make_results(57)
    assert write_run(scm, run_record("run-1"), results, batch_rows=10).written
    stored = read_table(scm, "planned_orders")
    columns = [
        c for c in RESULT_TABLES["planned_orders"].column_names if c not in ("run_id", "plan_id")
    ]
    assert _rows(stored, columns) == _rows(results["planned_orders"], columns)
    assert stored["vendor_id"].tolist().count(None) == 19  # rows 0, 3, ..., 54


@given(
    st.integers(0, 3).flatmap(
        lambda k: st.lists(st.tuples(*(st.booleans() for _ in range(k))), max_size=40)
    ),
    st.integers(1, 9),
)
def test_a_batch_grouped_by_its_null_columns_holds_each_row_once(
    rows: list[tuple[bool, ...]], batch_rows: int
) -> None:
    """Each group holds rows of one batch that are NULL in the same columns
    (the group's pattern), in the batch's order; the groups follow the
    batches and hold every row once."""
    width = len(rows[0]) if rows else 0
    nulls = [np.array([row[j] for row in rows], dtype=bool) for j in range(width)]
    seen: list[int] = []
    last_batch = 0
    for pattern, where in writer._null_groups(nulls, len(rows), batch_rows):
        group = np.arange(len(rows))[where].tolist()
        assert group, "an empty group"
        assert group == sorted(group)
        batch = group[0] // batch_rows
        assert group[-1] // batch_rows == batch
        assert batch >= last_batch
        last_batch = batch
        for i in group:
            assert pattern == sum(1 << j for j in range(width) if rows[i][j])
        seen.extend(group)
    assert sorted(seen) == list(range(len(rows)))


def _sqlite_binding_at_most(path: str, max_variables: int | None) -> Engine:
    """An engine on the SQLite file ``path`` whose connections bind at most
    ``max_variables`` variables a statement (None: SQLite's own limit)."""
    engine = sa.create_engine(f"sqlite:///{path}")
    if max_variables is not None:

        @sa.event.listens_for(engine, "connect")
        def _fewer_variables(dbapi_conn: Any, _: Any) -> None:
            dbapi_conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, max_variables)

    return engine


_VENDORS = st.lists(st.one_of(st.none(), st.sampled_from(["V1", "V2", "v'3"])), max_size=60)


@settings(max_examples=60)
@given(
    st.data(),
    _VENDORS,
    st.integers(1, 25),
    st.sampled_from(["run-1", "run\x00nul"]),
    st.integers(1, 7),
    st.sampled_from([None, 16, 40]),
)
def test_sqlite_rows_grouped_by_their_nulls_read_back_as_streamed(
    data: st.DataObject,
    vendors: list[str | None],
    batch_rows: int,
    run_id: str,
    per_statement: int,
    max_variables: int | None,
) -> None:
    """Chunks as they cross the wire (text coded, a dictionary that holds a
    None, negative codes), NULL in any mix of the nullable columns, written
    in batches of any size on SQLite's path, statements of several rows and
    the rows left over: every row reads back as it was, in its order, with
    the run's keys spelled or (a NUL character) bound; a connection that
    binds fewer variables a statement than the rows would take gets
    statements of fewer rows."""
    n = len(vendors)
    results = make_results(n)["planned_orders"]
    results["vendor_id"] = np.array(vendors, dtype=object)
    for name in ("from_warehouse_id", "bom_id"):
        nulls = data.draw(st.lists(st.booleans(), min_size=n, max_size=n))
        results[name] = np.array(
            [None if k else f"{name}-{i}" for i, k in enumerate(nulls)], object
        )
    dictionary = np.array([None, "V1", "V2", "v'3", "unused"], dtype=object)
    codes = [
        -1 if v is None and i % 2 else [None, "V1", "V2", "v'3"].index(v)
        for i, v in enumerate(vendors)
    ]
    coded: dict[str, np.ndarray | Coded] = dict(results)
    coded["vendor_id"] = Coded(np.array(codes, dtype=np.int32), dictionary)
    cuts = sorted(data.draw(st.lists(st.integers(0, n), max_size=3)))
    with tempfile.TemporaryDirectory() as tmp:
        engine = _sqlite_binding_at_most(f"{tmp}/scm.db", max_variables)
        try:
            create_all(engine)
            counts = {name: 0 for name in PLAN_OUTPUT_TABLES} | {"planned_orders": n}
            record = run_record(run_id)
            with (
                mock.patch.object(writer, "SQLITE_ROWS_PER_STATEMENT", per_statement),
                writer.ResultWrite(
                    engine, record, plan_counts=counts, rows_added=n, batch_rows=batch_rows
                ) as write,
            ):
                for start, stop in pairwise([0, *cuts, n]):
                    if stop > start:
                        write.add("planned_orders", {k: v[start:stop] for k, v in coded.items()})
                assert write.commit().written
            stored = read_table(engine, "planned_orders")
            with engine.connect() as conn:
                in_order = conn.exec_driver_sql(
                    "SELECT planned_order_id FROM planned_orders ORDER BY rowid"
                ).scalars()
                stored_order = list(in_order)
        finally:
            engine.dispose()
    columns = list(results)
    assert _rows(stored, columns) == _rows(results, columns)
    assert stored["run_id"].tolist() == [run_id] * n
    # The rows went in in the order they were given: a chunk's batches
    # after each other, a batch's NULL patterns' groups after each other.
    nulls = [
        np.array([v is None for v in results[c.name]], dtype=bool)
        for c in RESULT_TABLES["planned_orders"].columns
        if c.nullable
    ]
    ids = results["planned_order_id"]
    expected = []
    for start, stop in pairwise([0, *cuts, n]):
        chunk = [mask[start:stop] for mask in nulls]
        for _, where in writer._null_groups(chunk, stop - start, batch_rows):
            expected.extend(ids[start:stop][where].tolist())
    assert stored_order == expected


@settings(max_examples=40)
@given(st.integers(0, 60), st.integers(1, 25), st.integers(1, 7), st.sampled_from([None, 16, 40]))
def test_sqlite_statements_of_several_rows_keep_the_rows_and_their_order(
    n: int, batch_rows: int, per_statement: int, max_variables: int | None
) -> None:
    """Rows with no NULL, one group a batch: each batch goes in as
    statements of several rows and the rows left over, and the table holds
    every row once, in the order given; a connection that binds fewer
    variables a statement gets statements of fewer rows, never an error."""
    results = make_results(n)["planned_orders"]
    for name in ("from_warehouse_id", "vendor_id", "bom_id"):
        results[name] = np.array([f"{name}-{i}" for i in range(n)], dtype=object)
    with tempfile.TemporaryDirectory() as tmp:
        engine = _sqlite_binding_at_most(f"{tmp}/scm.db", max_variables)
        try:
            create_all(engine)
            counts = {name: 0 for name in PLAN_OUTPUT_TABLES} | {"planned_orders": n}
            with (
                mock.patch.object(writer, "SQLITE_ROWS_PER_STATEMENT", per_statement),
                writer.ResultWrite(
                    engine,
                    run_record("run-1"),
                    plan_counts=counts,
                    rows_added=n,
                    batch_rows=batch_rows,
                ) as write,
            ):
                write.add("planned_orders", results)
                assert write.commit().written
            with engine.connect() as conn:
                stored = conn.exec_driver_sql(
                    "SELECT planned_order_id, vendor_id, qty FROM planned_orders ORDER BY rowid"
                ).all()
        finally:
            engine.dispose()
    assert [tuple(row) for row in stored] == list(
        zip(results["planned_order_id"], results["vendor_id"], results["qty"], strict=True)
    )


@given(
    st.lists(
        st.lists(st.integers(-(2**63), 2**63 - 1), min_size=12, max_size=12),
        min_size=1,
        max_size=4,
    ),
    st.integers(0, 12),
    st.integers(1, 5),
)
def test_statement_parameters_lay_each_row_out_after_the_one_before(
    columns: list[list[int]], n: int, per: int
) -> None:
    """Statements of ``per`` rows each, their parameters one after the other
    the rows' values row by row, then the rows left over, each its values:
    every row once, in order, numbers as Python ``int``."""
    cells = [np.array(column[:n], dtype=np.int64) for column in columns]
    several, single = writer.statement_parameters(cells, per)
    assert all(len(params) == per * len(columns) for params in several)
    assert all(len(params) == len(columns) for params in single)
    assert len(single) == (n % per if per > 1 else n)
    flat = [value for params in [*several, *single] for value in params]
    assert flat == [column[i] for i in range(n) for column in columns]
    assert all(type(value) is int for value in flat)


def test_a_table_the_backend_names_otherwise_is_not_a_result_table(engine: Engine) -> None:
    """A table whose name only differs in case is the result table where
    the backend matches names so (SQLite: ``PLANS`` is ``plans``) and
    another table where it does not (PostgreSQL's quoted ``"Plans"``, a
    MariaDB table on a case-sensitive file system): the run's checks then
    see no ``plans`` table, where they looked for one and failed to read it."""
    from masterplan.connector.schema import present_tables

    quote = engine.dialect.identifier_preparer.quote_identifier
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE {quote('Plans')} (plan_id VARCHAR(20))")
    folds = engine.dialect.name == "sqlite"
    assert present_tables(engine, ["plans", "pegging"]) == (["plans"] if folds else [])
    if not folds:
        assert writer.current_run_id(engine, "main") is None
        writer.check_result_layout(engine, missing_ok=True)  # nothing to check yet
