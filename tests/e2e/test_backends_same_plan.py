"""The same seeded model planned from SQLite, PostgreSQL and MariaDB gives
identical result tables (SPEC §4: all three backends must work)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import sqlalchemy as sa

from bench.generate import generate_tables, write_database
from masterplan.client.cli.cycle import CycleOptions, run_cycle
from masterplan.contract.tables import PLAN_OUTPUT_TABLES, RESULT_TABLES
from tests.backends import database_url

T0 = dt.date(2026, 1, 5)


def result_rows(url: str, run_id: str) -> dict[str, list[tuple]]:
    """Every result row of the run, normalised (dates as ISO text, floats rounded), sorted."""
    engine = sa.create_engine(url)
    out: dict[str, list[tuple]] = {}
    try:
        with engine.connect() as conn:
            for name in PLAN_OUTPUT_TABLES:
                cols = [
                    c.name for c in RESULT_TABLES[name].columns if c.name not in ("run_id", "text")
                ]
                rows = conn.execute(
                    sa.text(
                        f"SELECT {', '.join(cols)} FROM {name} WHERE plan_id = "
                        "(SELECT plan_id FROM plan_runs WHERE run_id = :r)"
                    ),
                    {"r": run_id},
                ).all()
                out[name] = sorted(tuple(_norm(v) for v in row) for row in rows)
    finally:
        engine.dispose()
    return out


def _norm(value: object) -> object:
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str) and len(value) == 10 and value[4] == "-" and value[7] == "-":
        return value  # SQLite keeps dates as ISO text
    if value is None or isinstance(value, str):
        return value
    return round(float(value), 6)  # NUMERIC/Decimal/float/int alike


@pytest.fixture
def urls(tmp_path: Path) -> Iterator[dict[str, str]]:
    found: dict[str, str] = {}
    reasons: list[str] = []
    with ExitStack() as stack:
        for backend in ("sqlite", "postgresql", "mariadb"):
            gen = database_url(backend, tmp_path)
            try:
                found[backend] = next(gen)
            except pytest.skip.Exception as exc:
                reasons.append(str(exc))
                continue
            stack.callback(lambda g=gen: next(g, None))
        if len(found) < 2:
            pytest.skip("needs a second backend: " + "; ".join(reasons))
        yield found


def test_the_same_model_gives_the_same_plan_on_every_backend(urls: dict[str, str]) -> None:
    tables = generate_tables(1_000, seed=7, plan_date=T0)
    plans = {}
    for backend, url in urls.items():
        write_database(tables, url)
        report = run_cycle(CycleOptions(db_url=url, plan_date=T0))
        assert report.written
        plans[backend] = result_rows(url, report.run_id)
    reference = plans.pop("sqlite")
    assert sum(len(v) for v in reference.values()) > 1_000
    for backend, got in plans.items():
        for name in PLAN_OUTPUT_TABLES:
            assert got[name] == reference[name], f"{backend}: {name} differs from SQLite"
