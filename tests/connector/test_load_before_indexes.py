"""A whole result is loaded before its table's indexes (connector.writer).

On SQLite and PostgreSQL a table that a whole result's rows are most of
has its plain indexes dropped inside the write's transaction and made again
after its rows, from the definitions the database kept for them. These
tests hold the write to what users rely on: the same plan and the same
indexes afterwards, a failed write that leaves both as they were, a unique
index that still refuses a duplicate, and tables holding other plans' rows
left indexed as they go. On PostgreSQL, where a dropped index locks its
table until the commit, also: another plan's readers never locked out, a
reader already in a table never waited on for long, a reader of the plan
that reads the new plan whole, and a role that does not own the tables
still able to write.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url

from masterplan.connector import schema, writer
from masterplan.connector.schema import create_all, create_engine
from masterplan.connector.writer import ResultWrite, write_run
from masterplan.contract.tables import PLAN_OUTPUT_TABLES
from tests.backends import database_url
from tests.connector.test_result_write import _counts, _pieces, _plan
from tests.connector.test_writer import current_run, make_results, run_record


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from database_url(request.param, tmp_path)


@pytest.fixture
def pg_url(tmp_path: Path) -> Iterator[str]:
    yield from database_url("postgresql", tmp_path)


def _engine(url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    # The tests' results are small: load every one of them the way a large
    # one is loaded.
    monkeypatch.setattr(writer, "_REBUILD_MIN_ROWS", 0)
    engine = create_engine(url)
    create_all(engine)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def scm(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """The SCM database on SQLite and on PostgreSQL."""
    yield from _engine(db_url, monkeypatch)


@pytest.fixture
def lite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """The SCM database on SQLite."""
    yield from _engine(f"sqlite:///{tmp_path / 'scm.db'}", monkeypatch)


@pytest.fixture
def pg(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """The SCM database on PostgreSQL."""
    yield from _engine(pg_url, monkeypatch)


def _indexes(engine: Engine) -> dict[str, str]:
    """Every index of the result tables that has a definition, by name."""
    listed = list(PLAN_OUTPUT_TABLES)
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            rows = conn.exec_driver_sql(
                "SELECT indexname, indexdef FROM pg_indexes "
                "WHERE schemaname = current_schema() AND tablename = ANY(%s)",
                (listed,),
            ).all()
        else:
            names = ", ".join(f"'{name}'" for name in listed)
            rows = conn.exec_driver_sql(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                f"AND sql IS NOT NULL AND tbl_name IN ({names})"
            ).all()
    return {name: sql for name, sql in rows}


def _dropped(engine: Engine) -> list[str]:
    """The DROP INDEX statements the engine runs from now on, once each has run."""
    seen: list[str] = []

    def spy(conn: object, cursor: object, statement: str, *rest: object) -> None:
        if statement.upper().startswith("DROP INDEX"):
            seen.append(statement)

    event.listen(engine, "after_cursor_execute", spy)
    return seen


def _uses_index(engine: Engine, table: str, column: str, value: str) -> bool:
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            plan = conn.exec_driver_sql(
                f"EXPLAIN SELECT * FROM {table} WHERE plan_id = 'main' AND {column} = %s",
                (value,),
            ).all()
            return any("Index" in str(row[0]) for row in plan)
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
    if scm.dialect.name == "sqlite":
        with scm.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar_one() == "ok"
    loaded = _plan(scm)
    # The same result written into the indexes as they go: the same plan.
    writer._REBUILD_MIN_ROWS = 10**9  # type: ignore[attr-defined]  # undone by monkeypatch
    assert write_run(scm, run_record("run-2", minute=5), results)
    assert len(dropped) == len(PLAN_OUTPUT_TABLES)
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
    assert dropped and not any("ux_planned_order" in statement for statement in dropped)
    assert "ux_planned_order" in _indexes(scm)
    assert current_run(scm) == "run-1"


def test_a_sqlite_table_holding_more_rows_of_other_plans_keeps_its_indexes(lite: Engine) -> None:
    assert write_run(lite, run_record("other-1", plan_id="other"), make_results(50, "o"))
    dropped = _dropped(lite)
    assert write_run(lite, run_record("run-1"), make_results(10, "a"))
    assert dropped == []
    # The plan that is most of its tables is loaded before its indexes.
    assert write_run(lite, run_record("run-2", minute=5), make_results(80, "b"))
    assert len(dropped) == len(PLAN_OUTPUT_TABLES)
    assert current_run(lite) == "run-2" and current_run(lite, "other") == "other-1"


def test_sqlite_makes_the_indexes_on_helper_threads_and_puts_the_setting_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite's sorter may use helper threads while the writer makes a
    table's indexes again; the connection, which goes back to the
    application's pool, has its own setting again afterwards, whether the
    write commits or fails."""
    monkeypatch.setattr(writer, "_REBUILD_MIN_ROWS", 0)
    monkeypatch.setattr(schema, "SORT_THREADS", 3)
    # One connection, so that the one the write used is the one looked at.
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'scm.db'}", poolclass=sa.pool.StaticPool)
    create_all(engine)
    seen: list[int] = []

    def spy(conn: object, cursor: Any, statement: str, *rest: object) -> None:
        if statement.upper().startswith("CREATE INDEX"):
            seen.append(cursor.connection.execute("PRAGMA threads").fetchone()[0])

    event.listen(engine, "before_cursor_execute", spy)
    assert write_run(engine, run_record("run-1"), make_results(40, "a"))
    assert seen == [3] * len(PLAN_OUTPUT_TABLES)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA threads").scalar_one() == 0
    results = make_results(30, "b")
    counts = _counts(results)
    seen.clear()
    write = ResultWrite(
        engine, run_record("run-2", minute=5), plan_counts=counts, rows_added=sum(counts.values())
    )
    with pytest.raises(RuntimeError), write as w:
        for name in PLAN_OUTPUT_TABLES[:2]:
            w.add(name, results[name])
        w.add(PLAN_OUTPUT_TABLES[2], results[PLAN_OUTPUT_TABLES[2]])  # the second's indexes made
        raise RuntimeError("the stream broke off")
    assert seen == [3, 3]
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA threads").scalar_one() == 0
    assert current_run(engine) == "run-1"
    engine.dispose()


@pytest.mark.postgres
def test_an_integrators_partial_index_is_made_again_as_it_was(pg: Engine) -> None:
    # Its definition holds a '%', which the driver would read as a placeholder.
    with pg.begin() as conn:
        conn.exec_driver_sql(
            "CREATE INDEX ix_rush ON planned_orders (item_id) WHERE planned_order_id LIKE 'a%%'"
        )
    before = _indexes(pg)
    dropped = _dropped(pg)
    assert write_run(pg, run_record("run-1"), make_results(30, "a"))
    assert any("ix_rush" in statement for statement in dropped)
    assert _indexes(pg) == before
    assert "'a%'" in before["ix_rush"]


@pytest.mark.postgres
def test_a_postgres_table_holding_another_plans_rows_keeps_its_indexes(pg: Engine) -> None:
    assert write_run(pg, run_record("other-1", plan_id="other"), make_results(5, "o"))
    assert write_run(pg, run_record("zzz-1", plan_id="zzz"), make_results(5, "z"))
    dropped = _dropped(pg)
    # Plans before and after "main" in the index's order: each range is seen.
    assert write_run(pg, run_record("run-1"), make_results(80, "a"))
    assert dropped == []
    assert current_run(pg) == "run-1" and current_run(pg, "other") == "other-1"
    # A plan's own earlier rows do not count: they are replaced.
    assert write_run(pg, run_record("zzz-2", plan_id="zzz", minute=5), make_results(9, "y"))
    assert dropped == []


@pytest.mark.postgres
def test_a_reader_in_a_table_is_not_waited_on_and_the_table_keeps_its_index(pg: Engine) -> None:
    assert write_run(pg, run_record("run-1"), make_results(6, "a"))
    before = _indexes(pg)
    dropped = _dropped(pg)
    reader = pg.connect()
    try:
        reading = reader.begin()
        # A reader's transaction that has read the pegging and not ended:
        # it holds the table until it does.
        assert reader.exec_driver_sql("SELECT count(*) FROM pegging").scalar_one() > 0
        results = make_results(30, "b")
        t = time.perf_counter()
        assert write_run(pg, run_record("run-2", minute=5), results)
        waited = time.perf_counter() - t
        reading.rollback()
    finally:
        reader.close()
    assert not any("pegging" in statement for statement in dropped)
    assert len(dropped) == len(PLAN_OUTPUT_TABLES) - 1
    assert waited < 10  # one lock wait of 0.5 s, not the reader's whole transaction
    assert _indexes(pg) == before
    assert current_run(pg) == "run-2"
    expected = _plan(pg)
    assert write_run(pg, run_record("run-3", minute=9), results)
    assert _plan(pg) == expected


@pytest.mark.postgres
def test_a_reader_of_the_plan_waits_for_the_new_plan_not_a_mix(pg: Engine) -> None:
    """While the indexes are dropped, a reader that comes waits for the
    commit and then reads the new plan whole. (The write's statements run on
    a thread of their own: the reader comes once they hold the table.)"""
    assert write_run(pg, run_record("run-1"), make_results(6, "a"))
    results = make_results(30, "b")
    counts = _counts(results)
    seen: list[int] = []
    started = threading.Event()

    def read() -> None:
        with pg.connect() as conn:
            started.set()
            seen.append(conn.exec_driver_sql("SELECT count(*) FROM pegging").scalar_one())

    with ResultWrite(
        pg, run_record("run-2", minute=5), plan_counts=counts, rows_added=sum(counts.values())
    ) as write:
        for name in PLAN_OUTPUT_TABLES:
            write.add(name, results[name])
        _wait_for_lock_on(pg, "pegging")
        thread = threading.Thread(target=read)
        thread.start()
        started.wait()
        time.sleep(0.3)
        assert seen == []  # waiting for the write's lock
        write.commit()
    thread.join(timeout=30)
    assert seen == [counts["pegging"]]


@pytest.mark.postgres
def test_a_tables_indexes_are_made_while_the_next_tables_rows_are_taken(
    pg: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A COPY write runs its statements on a thread of its own: while the
    database makes one table's indexes again, the next table's rows are
    taken and made into payloads, instead of the stream waiting for the
    index. The plan and its indexes come out as before."""
    before = _indexes(pg)
    results = make_results(30, "b")
    counts = _counts(results)
    building, release = threading.Event(), threading.Event()
    execute = writer._execute_plain

    def slow_index(conn: sa.Connection, statement: str) -> object:
        if statement.upper().startswith("CREATE INDEX") and "planned_orders" in statement:
            building.set()
            assert release.wait(30)
        return execute(conn, statement)

    monkeypatch.setattr(writer, "_execute_plain", slow_index)
    with ResultWrite(
        pg, run_record("run-1"), plan_counts=counts, rows_added=sum(counts.values())
    ) as write:
        write.add("planned_orders", results["planned_orders"])
        write.add("pegging", results["pegging"])  # ends planned_orders: its index
        assert building.wait(30)
        taken = threading.Event()
        # The rest arrive while the planned orders' index is being made.
        adding = threading.Thread(
            target=lambda: (
                [write.add(name, results[name]) for name in PLAN_OUTPUT_TABLES[2:]],
                taken.set(),
            )
        )
        adding.start()
        assert taken.wait(30), "the next tables' rows waited for the index"
        adding.join()
        release.set()
        write.commit()
    assert current_run(pg) == "run-1"
    assert _indexes(pg) == before
    written = _plan(pg)
    assert {name: len(rows) for name, rows in written.items()} == counts
    monkeypatch.setattr(writer, "_execute_plain", execute)
    assert write_run(pg, run_record("run-2", minute=5), results)
    assert _plan(pg) == written


@pytest.mark.postgres
def test_an_abandoned_write_ends_the_copy_whose_end_it_skipped(
    pg: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write abandoned while a table's end is still queued on its thread
    skips that end, and ends the table's open ``COPY`` as failed itself
    before it rolls back: no ``COPY`` is left to the garbage collector,
    and the previous plan stays."""
    assert write_run(pg, run_record("run-1"), make_results(6, "a"))
    before = _plan(pg)
    results = make_results(30, "b")
    counts = _counts(results)
    opened: list[object] = []
    ended: list[tuple[object, bool]] = []
    sending, release = threading.Event(), threading.Event()
    pipe_init, pipe_write, pipe_close = (
        writer._CopyPipe.__init__,
        writer._CopyPipe.write,
        writer._CopyPipe.close,
    )

    def init(self: writer._CopyPipe, *args: object, **kwargs: object) -> None:
        pipe_init(self, *args, **kwargs)  # type: ignore[arg-type]
        opened.append(self)

    def write(self: writer._CopyPipe, payload: bytes) -> None:
        sending.set()
        assert release.wait(30)
        pipe_write(self, payload)

    def close(self: writer._CopyPipe, failed: bool = False) -> None:
        ended.append((self, failed))
        pipe_close(self, failed)

    monkeypatch.setattr(writer._CopyPipe, "__init__", init)
    monkeypatch.setattr(writer._CopyPipe, "write", write)
    monkeypatch.setattr(writer._CopyPipe, "close", close)
    with (
        pytest.raises(RuntimeError, match="broke off"),
        ResultWrite(
            pg, run_record("run-2", minute=5), plan_counts=counts, rows_added=sum(counts.values())
        ) as write_,
    ):
        write_.add("planned_orders", results["planned_orders"])
        assert sending.wait(30)  # its payload is being sent, held
        write_.add("pegging", results["pegging"])  # queues planned_orders' end
        threading.Timer(0.2, release.set).start()
        raise RuntimeError("the stream broke off")
    assert len(opened) == 1  # pegging's COPY was skipped
    assert ended == [(opened[0], True)]
    assert current_run(pg) == "run-1"
    assert _plan(pg) == before


def _wait_for_lock_on(engine: Engine, table: str) -> None:
    """Return once another session holds ``table`` exclusively (its indexes
    dropped); fail after 30 s."""
    deadline = time.monotonic() + 30
    with engine.connect() as conn:
        while time.monotonic() < deadline:
            held = conn.exec_driver_sql(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE relation = to_regclass(%s) "
                "AND mode = 'AccessExclusiveLock' AND granted AND pid <> pg_backend_pid())",
                (table,),
            ).scalar_one()
            conn.rollback()
            if held:
                return
            time.sleep(0.01)
    raise AssertionError(f"no session took {table!r} for its load")


@pytest.fixture
def writer_role(pg_url: str, pg: Engine) -> Iterator[str]:
    """A URL whose connections act as a role that may read and write the
    result tables but does not own them."""
    role = f"mp_writer_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        schema = conn.exec_driver_sql("SELECT current_schema()").scalar_one()
        conn.exec_driver_sql(f"CREATE ROLE {role}")
        conn.exec_driver_sql(f'GRANT USAGE ON SCHEMA "{schema}" TO {role}')
        conn.exec_driver_sql(
            f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "{schema}" TO {role}'
        )
    url = make_url(pg_url)
    options = f"{url.query['options']} -crole={role}"
    try:
        yield url.update_query_dict({"options": options}).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP OWNED BY {role}")
            conn.exec_driver_sql(f"DROP ROLE {role}")
        admin.dispose()


@pytest.mark.postgres
def test_a_role_that_does_not_own_the_tables_writes_into_the_indexes(
    pg: Engine, writer_role: str
) -> None:
    before = _indexes(pg)
    engine = create_engine(writer_role)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT current_user").scalar_one().startswith("mp_writer")
        dropped = _dropped(engine)
        assert write_run(engine, run_record("run-1"), make_results(30, "a"))
        assert dropped == []
    finally:
        engine.dispose()
    assert _indexes(pg) == before
    assert current_run(pg) == "run-1"
