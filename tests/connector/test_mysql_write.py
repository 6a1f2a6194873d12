"""Writes on MariaDB/MySQL: multi-row INSERTs by default, LOAD DATA LOCAL
INFILE only where the URL opts in, and a fallback where the server refuses it.

The server's ``local_infile`` is switched off for some tests (MySQL 8's
default) and always put back as it was.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from masterplan.connector import writer
from masterplan.connector.reader import read_table
from masterplan.connector.schema import create_all, create_engine
from masterplan.connector.writer import write_run
from masterplan.contract.tables import PLAN_OUTPUT_TABLES, RESULT_TABLES
from tests.backends import MARIADB_URL, database_url
from tests.connector.test_writer import make_results, run_record

pytestmark = pytest.mark.mariadb

_LOCAL_FILES = 128  # PyMySQL's CLIENT.LOCAL_FILES capability flag


@pytest.fixture
def mariadb_url(tmp_path: Path) -> Iterator[str]:
    """A database of its own on the MariaDB server (skips when unreachable)."""
    yield from database_url("mariadb", tmp_path)


def _opt_in(url: str) -> str:
    return make_url(url).update_query_dict({"local_infile": "1"}).render_as_string(False)


def _set_local_infile(on: bool) -> None:
    admin = sa.create_engine(MARIADB_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"SET GLOBAL local_infile = {int(on)}")
    finally:
        admin.dispose()


@pytest.fixture
def server_local_infile(mariadb_url: str) -> Iterator[Any]:
    """Switch the server's ``local_infile``; the value it had comes back after
    the test, whatever happens."""
    admin = sa.create_engine(MARIADB_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        before = int(conn.exec_driver_sql("SELECT @@GLOBAL.local_infile").scalar_one())
        try:
            conn.exec_driver_sql(f"SET GLOBAL local_infile = {before}")
        except sa.exc.DBAPIError as exc:
            admin.dispose()
            pytest.skip(f"cannot set the server's local_infile: {exc.orig}")
    admin.dispose()
    try:
        yield _set_local_infile
    finally:
        _set_local_infile(bool(before))


@pytest.fixture
def engines() -> Iterator[list[Engine]]:
    """Engines a test makes, disposed after it."""
    made: list[Engine] = []
    yield made
    for engine in made:
        engine.dispose()


def _engine(engines: list[Engine], url: str) -> Engine:
    engine = create_engine(url)
    engines.append(engine)
    return engine


def _capabilities(engine: Engine) -> tuple[bool, int]:
    with engine.connect() as conn:
        driver = conn.connection.driver_connection
        return bool(getattr(driver, "_local_infile", False)), driver.client_flag & _LOCAL_FILES


def _awkward_results(n: int, tag: str) -> dict[str, dict[str, np.ndarray]]:
    """Results with floats of every magnitude and text that needs escapes."""
    results = make_results(n, tag)
    rng = np.random.default_rng(7)
    floats = rng.standard_normal(n) * 10.0 ** rng.integers(-300, 300, n)
    special = [0.1 + 0.2, -0.0, 1e-310, 123456789.12345679, 5e-324, 1.7976931348623157e308]
    floats[: len(special)] = special[:n]
    results["planned_orders"]["qty"] = floats
    texts = ["quote ' and \" ", "back\\slash \\N", "nul \x00 sub \x1a", "cr\r lf\n tab\t", "ü € 𝄞"]
    results["plan_messages"]["text"] = np.array(
        [texts[k % len(texts)] + str(k) for k in range(n)], dtype=object
    )
    return results


def _plan_rows(engine: Engine, plan_id: str) -> dict[str, list[tuple[Any, ...]]]:
    """Each output table's rows of one plan, without the bookkeeping columns, sorted."""
    out = {}
    for name in PLAN_OUTPUT_TABLES:
        table = read_table(engine, name)
        columns = [c for c in RESULT_TABLES[name].column_names if c not in ("plan_id", "run_id")]
        mine = table["plan_id"] == plan_id
        rows = zip(*(table[c][mine].tolist() for c in columns), strict=True)
        out[name] = sorted((tuple(map(_comparable, row)) for row in rows), key=repr)
    return out


def _comparable(value: Any) -> Any:
    """NaN as None, and floats by their bits (but ``-0.0``, which MariaDB
    stores as ``0.0`` whatever the path, as ``0.0``)."""
    if isinstance(value, float):
        return None if value != value else (value + 0.0).hex()
    return value


def _expected_rows(results: dict[str, dict[str, np.ndarray]]) -> dict[str, list[tuple[Any, ...]]]:
    out = {}
    for name in PLAN_OUTPUT_TABLES:
        columns = [c for c in RESULT_TABLES[name].column_names if c not in ("plan_id", "run_id")]
        values = []
        for c in columns:
            array = results[name][c]
            if array.dtype.kind == "M":
                values.append(array.astype(object).tolist())
            else:
                values.append(array.tolist())
        rows = zip(*values, strict=True)
        out[name] = sorted((tuple(map(_comparable, row)) for row in rows), key=repr)
    return out


def test_a_default_url_never_asks_for_local_infile(mariadb_url: str, engines: list[Engine]) -> None:
    assert _capabilities(_engine(engines, mariadb_url)) == (False, 0)
    assert _capabilities(_engine(engines, _opt_in(mariadb_url))) == (True, _LOCAL_FILES)
    off = make_url(mariadb_url).update_query_dict({"local_infile": "0"})
    assert _capabilities(_engine(engines, off.render_as_string(False))) == (False, 0)


@pytest.mark.parametrize("opt_in", [False, True], ids=["default", "opt-in"])
def test_a_write_succeeds_where_the_server_refuses_local_infile(
    mariadb_url: str,
    server_local_infile: Any,
    engines: list[Engine],
    opt_in: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With ``local_infile`` off on the server, a whole write goes through,
    and its rows equal those of a write done with LOAD DATA."""
    results = _awkward_results(2500, "r")
    loaded = _engine(engines, _opt_in(mariadb_url))
    create_all(loaded)
    server_local_infile(True)
    with loaded.connect() as conn:
        assert writer._load_data_writer(conn) is not None
    assert write_run(loaded, run_record("by-load", plan_id="loaded"), results, batch_rows=700)

    server_local_infile(False)
    engine = _engine(engines, _opt_in(mariadb_url) if opt_in else mariadb_url)
    with caplog.at_level(logging.WARNING, logger="masterplan.connector.writer"):
        assert write_run(engine, run_record("run-1"), results, batch_rows=700)
        assert write_run(engine, run_record("run-2"), make_results(30, "s"), batch_rows=7)
        assert write_run(engine, run_record("run-3"), results, batch_rows=700)

    assert _plan_rows(engine, "main") == _plan_rows(engine, "loaded") == _expected_rows(results)
    refusals = [r for r in caplog.records if "LOCAL INFILE" in r.getMessage()]
    assert len(refusals) == (1 if opt_in else 0)


def test_a_refusal_in_the_middle_of_a_write_keeps_it_whole(
    mariadb_url: str, server_local_infile: Any, engines: list[Engine]
) -> None:
    """The server stops allowing LOCAL INFILE after the first batch: the rest
    goes through INSERTs in the same transaction, and the plan is complete."""
    results = make_results(900, "m")
    engine = _engine(engines, _opt_in(mariadb_url))
    create_all(engine)
    server_local_infile(True)
    seen: list[str] = []

    def after_batch(name: str, rows: int) -> None:
        if not seen:
            server_local_infile(False)
        seen.append(name)

    assert write_run(engine, run_record("run-1"), results, batch_rows=400, on_rows=after_batch)
    assert engine in writer._infile_refused
    assert _plan_rows(engine, "main") == _expected_rows(results)


def test_statements_stay_under_the_size_limit(
    mariadb_url: str, engines: list[Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer, "_INSERT_STATEMENT_BYTES", 2048)
    engine = _engine(engines, mariadb_url)
    create_all(engine)
    results = _awkward_results(300, "p")
    results["plan_messages"]["text"][0] = "long " * 1000  # one row alone over the limit
    sizes: list[int] = []
    original = writer._statements

    def spy(head: bytes, rows: list[bytes], limit: int) -> Iterator[tuple[bytes, int]]:
        for statement, n in original(head, rows, limit):
            sizes.append(len(statement) if n > 1 else 0)
            yield statement, n

    monkeypatch.setattr(writer, "_statements", spy)
    assert write_run(engine, run_record("run-1"), results)
    assert sizes and max(sizes) <= 2048
    assert _plan_rows(engine, "main") == _expected_rows(results)


@pytest.mark.parametrize("opt_in", [False, True], ids=["default", "opt-in"])
def test_text_is_escaped_for_a_server_without_backslash_escapes(
    mariadb_url: str, engines: list[Engine], opt_in: bool
) -> None:
    engine = _engine(engines, _opt_in(mariadb_url) if opt_in else mariadb_url)

    @sa.event.listens_for(engine, "connect")
    def _no_backslash_escapes(dbapi_conn: Any, record: Any) -> None:
        with dbapi_conn.cursor() as cursor:
            cursor.execute("SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES')")

    create_all(engine)
    results = _awkward_results(40, "q")
    assert write_run(engine, run_record("run-1"), results)
    assert _plan_rows(engine, "main") == _expected_rows(results)


def test_statements_split_rows_by_bytes() -> None:
    head = b"INSERT INTO t (a) VALUES "
    rows = [b"1", b"'\xc3\xbc\xc3\xbc'", b"3" * 50, b"4", b"5"]
    out = list(writer._statements(head, rows, len(head) + 20))
    assert [n for _, n in out] == [2, 1, 2]
    assert out[0][0] == head + b"(1),('\xc3\xbc\xc3\xbc')"
    assert out[2][0] == head + b"(4),(5)"
    assert all(len(s) <= len(head) + 20 for s, n in out if n > 1)
