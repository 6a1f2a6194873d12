"""The benchmark's floors read and write the product's rows, and change nothing."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from bench.floors import load_floor, read_floor, settle, write_floor
from bench.generate import generate_tables, write_database
from masterplan.client.cli.cycle import CycleOptions, run_cycle
from masterplan.contract.tables import PLAN_OUTPUT_TABLES
from tests.backends import BACKENDS, database_url

T0 = dt.date(2026, 1, 5)


def _counts(path: Path) -> dict[str, int]:
    con = sqlite3.connect(path)
    try:
        return {
            n: con.execute(f"SELECT COUNT(*) FROM {n}").fetchone()[0] for n in PLAN_OUTPUT_TABLES
        }
    finally:
        con.close()


def test_the_floors_move_the_phases_rows_and_leave_every_table_as_it_was(
    tmp_path: Path,
) -> None:
    db = tmp_path / "scm.db"
    inputs = write_database(generate_tables(1_000, seed=3, plan_date=T0), f"sqlite:///{db}")
    run_cycle(CycleOptions(db_url=f"sqlite:///{db}", plan_date=T0))
    before = _counts(db)
    assert sum(before.values()) > 1000
    engine = sa.create_engine(f"sqlite:///{db}")
    try:
        read_s, read_rows = read_floor(engine)
        floor = write_floor(engine, tmp_path)
        load = load_floor(engine, tmp_path)
    finally:
        engine.dispose()
    assert read_s > 0 and read_rows == sum(inputs.values())
    assert floor.rows == sum(before.values())
    assert 0 < floor.commit_seconds < floor.seconds
    assert _counts(db) == before
    # Written into a scratch file of its own, removed afterwards.
    assert not (tmp_path / "masterplan_floor_rows.db").exists()
    # The load floor moves the same rows, its indexes made after them.
    assert load.rows == floor.rows and 0 < load.commit_seconds < load.seconds
    assert not (tmp_path / "masterplan_floor_load.db").exists()


@pytest.fixture(params=BACKENDS)
def backend_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    for url in database_url(request.param, tmp_path):
        engine = sa.create_engine(url)
        try:
            yield engine
        finally:
            engine.dispose()


def test_a_timed_postgresql_write_starts_at_a_checkpoint(backend_engine: sa.Engine) -> None:
    """``settle`` makes a checkpoint on PostgreSQL (a fresh one: its place in
    the WAL moves past what was written before it), and nowhere else."""
    postgres = backend_engine.dialect.name == "postgresql"
    with backend_engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE scratch (n integer)")
        conn.exec_driver_sql("INSERT INTO scratch VALUES (1), (2), (3)")
    if not postgres:
        assert settle(backend_engine) is False
        return
    with backend_engine.connect() as conn:
        written = conn.exec_driver_sql("SELECT pg_current_wal_lsn()").scalar_one()
    assert settle(backend_engine) is True
    with backend_engine.connect() as conn:
        after = conn.exec_driver_sql(
            "SELECT checkpoint_lsn >= %(w)s::pg_lsn FROM pg_control_checkpoint()", {"w": written}
        ).scalar_one()
    assert after is True


def test_the_load_floor_leaves_out_null_columns_and_stores_the_rows_it_read() -> None:
    """The load floor, as the writer, leaves a row's NULL columns out of its
    statement and puts several rows in one; each group's statements store
    its rows as they were read, NULLs included."""
    from bench.floors import _several_a_statement, _without_nulls
    from masterplan.connector.schema import create_result_tables
    from masterplan.contract.tables import RESULT_TABLES

    engine = sa.create_engine("sqlite://")
    create_result_tables(engine)
    columns = ["plan_id", "run_id"] + [
        c for c in RESULT_TABLES["planned_orders"].column_names if c not in ("plan_id", "run_id")
    ]
    marks = ["'floor'", "'r1'"] + ["?"] * (len(columns) - 2)

    def row(k: int, transfer: str | None, vendor: str | None, bom: str | None) -> tuple:
        fields = {
            "planned_order_id": f"P{k}",
            "item_id": "I",
            "warehouse_id": "W",
            "order_type": "purchase",
            "qty": 1.5 * k,
            "order_date": "2026-01-05",
            "due_date": "2026-01-06",
            "requirement_date": "2026-01-07",
            "from_warehouse_id": transfer,
            "vendor_id": vendor,
            "bom_id": bom,
            "firmed": k % 2,
        }
        return tuple(fields[c] for c in columns[2:])

    rows = [
        row(1, None, "V1", None),
        row(2, "DC", None, None),
        row(3, None, None, "B3"),
        row(4, None, "V4", None),
        row(5, None, None, None),
        row(6, "DC", "V6", "B6"),
        *(row(k, None, f"V{k}", None) for k in range(7, 14)),
    ]
    groups = _without_nulls(engine, rows, columns, marks, "planned_orders")
    assert sum(len(group) for _, group in groups) == len(rows)
    assert len(groups) == 5  # the NULL patterns of the rows
    raw = engine.raw_connection()
    try:
        driver = raw.driver_connection
        # As the writer: statements of several rows (three here), then the
        # rows left over one a statement.
        several = _several_a_statement(driver, groups, 3)
        assert sum(len(g) for _, g in several) < len(rows)
        cur = driver.cursor()  # type: ignore[union-attr]
        for statement, group in several:
            assert statement.count("?") == len(group[0])
            cur.executemany(statement, group)
        stored = cur.execute(
            f"SELECT {', '.join(columns)} FROM planned_orders ORDER BY planned_order_id"
        ).fetchall()
    finally:
        raw.close()
        engine.dispose()
    assert stored == sorted([("floor", "r1", *r) for r in rows], key=lambda r: r[2])


def test_a_later_round_finds_empty_result_tables_and_no_free_pages(tmp_path: Path) -> None:
    """A round after the first writes into empty result tables that grow the
    file as the first round's write did: the pages of the dropped tables are
    not left free for it to reuse (a faster write than the first's)."""
    from bench.run import _empty_result_tables

    db = tmp_path / "scm.db"
    write_database(generate_tables(1_000, seed=3, plan_date=T0), f"sqlite:///{db}")
    run_cycle(CycleOptions(db_url=f"sqlite:///{db}", plan_date=T0))
    assert sum(_counts(db).values()) > 1000
    engine = sa.create_engine(f"sqlite:///{db}")
    try:
        _empty_result_tables(engine)
    finally:
        engine.dispose()
    assert _counts(db) == dict.fromkeys(PLAN_OUTPUT_TABLES, 0)
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA freelist_count").fetchone()[0] == 0
    finally:
        con.close()
