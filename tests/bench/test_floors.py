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
