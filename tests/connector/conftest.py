"""Fixtures for the connector tests: one database per test on each backend.

``db_url`` runs a test on SQLite (a file in ``tmp_path``, always), on
PostgreSQL and on MariaDB (when reachable). The server URLs come from
``MASTERPLAN_TEST_POSTGRES_URL`` and ``MASTERPLAN_TEST_MARIADB_URL``. Tests
share those servers (and the database ``test``) with other test runs, so each
test gets its own PostgreSQL schema or MariaDB database, dropped afterwards.

``create_plain_tables`` builds §4 tables with hand-written SQL DDL, never
through ``connector.schema``, so that the reader and ``verify_schema`` are
tested against tables the way an integrator would create them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from masterplan.connector.schema import create_engine
from masterplan.contract.tables import INPUT_TABLES, RESULT_TABLES, ColumnKind, TableSpec
from tests.backends import BACKENDS, database_url


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    """URL of an empty database of its own for this test, on each backend."""
    yield from database_url(request.param, tmp_path)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """Engine on ``db_url`` as the connector makes it, disposed after the test."""
    eng = create_engine(db_url)
    try:
        yield eng
    finally:
        eng.dispose()


# --- plain-SQL tables ----------------------------------------------------------------


def _plain_type(dialect: str, kind: ColumnKind) -> str:
    # NUMERIC on the servers exercises the Decimal path of the reader; on
    # SQLite, NUMERIC affinity stores 2.0 as the integer 2 (the int path).
    return {
        ColumnKind.STR: "TEXT" if dialect == "sqlite" else "VARCHAR(200)",
        ColumnKind.FLOAT: "NUMERIC(18, 6)",
        ColumnKind.INT: "INTEGER",
        ColumnKind.DATE: "DATE",
    }[kind]


def plain_ddl(
    engine: Engine,
    spec: TableSpec,
    *,
    without: Iterable[str] = (),
    types: Mapping[str, str] | None = None,
) -> str:
    """Hand-written ``CREATE TABLE`` for ``spec`` (all columns nullable)."""
    quote = engine.dialect.identifier_preparer.quote
    skip = set(without)
    overrides = dict(types or {})
    columns = [
        f"{quote(c.name)} {overrides.get(c.name) or _plain_type(engine.dialect.name, c.kind)}"
        for c in spec.columns
        if c.name not in skip
    ]
    return f"CREATE TABLE {quote(spec.name)} ({', '.join(columns)})"


CreatePlain = Callable[..., None]


@pytest.fixture
def create_plain_tables(engine: Engine) -> CreatePlain:
    """Create §4 tables with plain SQL.

    Call as ``create_plain_tables(names=None, skip_tables=(), without={table:
    [columns]}, types={table: {column: sql_type}})``; ``names`` defaults to
    every input table.
    """

    def create(
        names: Sequence[str] | None = None,
        *,
        skip_tables: Iterable[str] = (),
        without: Mapping[str, Iterable[str]] | None = None,
        types: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        specs = {**INPUT_TABLES, **RESULT_TABLES}
        skipped = set(skip_tables)
        with engine.begin() as conn:
            for name in names or list(INPUT_TABLES):
                if name in skipped:
                    continue
                ddl = plain_ddl(
                    engine,
                    specs[name],
                    without=(without or {}).get(name, ()),
                    types=(types or {}).get(name),
                )
                conn.exec_driver_sql(ddl)

    return create


def insert_plain(engine: Engine, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert rows with a plain-SQL ``INSERT`` (dates given as ISO strings)."""
    if not rows:
        return
    quote = engine.dialect.identifier_preparer.quote
    names = list(rows[0])
    statement = sa.text(
        f"INSERT INTO {quote(table)} ({', '.join(quote(n) for n in names)}) "
        f"VALUES ({', '.join(':' + n for n in names)})"
    )
    with engine.begin() as conn:
        conn.execute(statement, [dict(r) for r in rows])


@pytest.fixture
def insert_rows(engine: Engine) -> Callable[[str, Sequence[Mapping[str, Any]]], None]:
    """``insert_rows(table, rows)``: plain-SQL insert into the test's database."""

    def insert(table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        insert_plain(engine, table, rows)

    return insert
