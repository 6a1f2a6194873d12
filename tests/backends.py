"""Databases for tests: SQLite always; PostgreSQL and MariaDB when reachable.

The server URLs come from ``MASTERPLAN_TEST_POSTGRES_URL`` and
``MASTERPLAN_TEST_MARIADB_URL``. Tests share those servers (and the database
``test``) with other test runs, so each test gets its own PostgreSQL schema or
MariaDB database, dropped afterwards; an unreachable server skips the test
with the reason.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

POSTGRES_URL = os.environ.get(
    "MASTERPLAN_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
MARIADB_URL = os.environ.get(
    "MASTERPLAN_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test"
)

_reachability: dict[str, str | None] = {}


def _unreachable_reason(url: str, label: str, env: str) -> str | None:
    """Return why the server at ``url`` cannot be used, or ``None`` if it can.

    Checked once per session, with a short connect timeout so that a stopped
    server costs seconds, not minutes.
    """
    if url not in _reachability:
        try:
            engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
            with engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
            engine.dispose()
            _reachability[url] = None
        except Exception as exc:  # any driver error means "not usable here"
            shown = make_url(url).render_as_string(hide_password=True)
            first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            _reachability[url] = f"{label} not reachable at {shown} (set {env}): {first_line}"
    return _reachability[url]


def _postgres_url() -> Iterator[str]:
    reason = _unreachable_reason(POSTGRES_URL, "PostgreSQL", "MASTERPLAN_TEST_POSTGRES_URL")
    if reason:
        pytest.skip(reason)
    schema = f"mp_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        # psycopg passes `options` to the server: every connection of the
        # test's engines then resolves unqualified names in its own schema.
        yield (
            make_url(POSTGRES_URL)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()


def _mariadb_url() -> Iterator[str]:
    reason = _unreachable_reason(MARIADB_URL, "MariaDB", "MASTERPLAN_TEST_MARIADB_URL")
    if reason:
        pytest.skip(reason)
    database = f"mp_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(MARIADB_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4")
    try:
        yield make_url(MARIADB_URL).set(database=database).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{database}`")
        admin.dispose()


BACKENDS = [
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.postgres),
    pytest.param("mariadb", marks=pytest.mark.mariadb),
]


def database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """URL of an empty database of its own on ``backend`` (a generator for fixtures)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'scm.db'}"
    elif backend == "postgresql":
        yield from _postgres_url()
    else:
        yield from _mariadb_url()
