"""Net change end to end: after every change, the written plan is a regeneration's.

A random model is written into an SCM database and planned with ``masterplan
run --mode net_change`` against one long-lived server, so that every later
cycle syncs a delta (or falls back to a snapshot, saying so), plans, streams
the difference to the plan the database holds and writes it as one. Then
rows of every input table are deleted, added and replaced at random — sales,
purchase, production and transfer lines, production orders, BOMs and their
lines, on-hand, forecasts, coverage settings, calendar exceptions, firmed
orders — and the plan date moves now and then. After each step the plan in
the database must equal, row for row, a regeneration of the same data
written into a fresh database.

Runs on SQLite always, on PostgreSQL and MariaDB when reachable.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from masterplan.client.cli.cycle import CycleOptions, run_cycle
from masterplan.client.errors import InvalidArgument
from masterplan.connector.schema import create_engine
from masterplan.contract.tables import INPUT_TABLES, PLAN_OUTPUT_TABLES, RESULT_TABLES, ColumnKind
from masterplan.server.embedded import EmbeddedServer, embedded_server
from tests.backends import database_url
from tests.differential.strategies import INPUT_TABLE_NAMES, Model, models

Rows = dict[str, list[dict[str, Any]]]
Step = tuple[Rows, str, str | None]

#: Examples per backend, a 25th of the profile's (20 in CI, 200 when hunting):
#: each plans a few steps twice through a real server and database.
EXAMPLES = max(settings.default.max_examples // 25, 4)


@st.composite
def sequences(draw: st.DrawFn) -> list[Step]:
    """A first model, then 1-3 steps, each keeping a random part of the rows
    before it and adding a random part of a fresh model's (so rows are
    deleted, added, and replaced under the same key)."""
    first: Model = draw(models())
    steps: list[Step] = [first]
    for _ in range(draw(st.integers(1, 3))):
        rows, plan_date, group = steps[-1]
        fresh, fresh_date, fresh_group = draw(models())
        mixed: Rows = {}
        for name in INPUT_TABLE_NAMES:
            old, new = rows.get(name, []), fresh.get(name, [])
            keep = draw(st.lists(st.booleans(), min_size=len(old), max_size=len(old)))
            take = draw(st.lists(st.booleans(), min_size=len(new), max_size=len(new)))
            mixed[name] = [r for r, k in zip(old, keep, strict=True) if k]
            mixed[name] += [r for r, t in zip(new, take, strict=True) if t]
        if draw(st.integers(0, 4)) == 0:
            plan_date, group = fresh_date, fresh_group
        groups = {g.get("group_id") for g in mixed.get("coverage_groups", [])}
        if group not in groups:
            group = None  # an unknown default group fails every run alike
        steps.append((mixed, plan_date, group))
    return steps


def _sql_type(dialect: str, kind: ColumnKind) -> str:
    # Quantities as doubles: the models hold values past the validation
    # bounds (2e12), which NUMERIC(18,6) cannot.
    return {
        ColumnKind.STR: "TEXT" if dialect == "sqlite" else "VARCHAR(100)",
        ColumnKind.FLOAT: "DOUBLE PRECISION" if dialect != "sqlite" else "REAL",
        ColumnKind.INT: "INTEGER",
        ColumnKind.DATE: "DATE",
    }[kind]


def create_inputs(url: str) -> None:
    """The §4 input tables without key constraints, so duplicates can be held."""
    engine = create_engine(url)
    quote = engine.dialect.identifier_preparer.quote
    with engine.begin() as conn:
        for spec in INPUT_TABLES.values():
            columns = ", ".join(
                f"{quote(c.name)} {_sql_type(engine.dialect.name, c.kind)}" for c in spec.columns
            )
            conn.exec_driver_sql(f"CREATE TABLE {quote(spec.name)} ({columns})")
    engine.dispose()


def _value(kind: ColumnKind, value: Any) -> Any:
    if value is None:
        return None
    if kind is ColumnKind.DATE:
        return dt.date.fromisoformat(value)
    if kind is ColumnKind.INT and isinstance(value, float) and not _int_column_holds(value):
        # An INTEGER column cannot hold a line number of 1.5 or 1e19 (the
        # servers round or refuse it): NULL is the bad line number it can.
        return None
    if kind in (ColumnKind.FLOAT, ColumnKind.INT) and isinstance(value, float):
        # inf is past the bounds as 3e12 is; MariaDB has no infinity.
        return value if math.isfinite(value) else math.copysign(3e12, value)
    return value


def _int_column_holds(value: float) -> bool:
    return math.isfinite(value) and value.is_integer() and abs(value) < 2**31


def replace_inputs(url: str, rows: Rows) -> None:
    """Make the input tables hold exactly ``rows`` (in one transaction)."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            for spec in INPUT_TABLES.values():
                table = sa.table(spec.name, *(sa.column(c) for c in spec.column_names))
                conn.execute(table.delete())
                batch = [
                    {c.name: _value(c.kind, row.get(c.name)) for c in spec.columns}
                    for row in rows.get(spec.name, [])
                ]
                if batch:
                    conn.execute(table.insert(), batch)
    finally:  # (a failing example must not keep its connection open)
        engine.dispose()


def _norm(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if value is None or isinstance(value, str):
        return value
    return round(float(value), 9)


def plan_rows(url: str, plan: str) -> dict[str, list[tuple[Any, ...]]]:
    """The plan's rows of every output table, bookkeeping columns left out, sorted."""
    engine = create_engine(url)
    out = {}
    try:
        with engine.connect() as conn:
            for name in PLAN_OUTPUT_TABLES:
                cols = [
                    c.name
                    for c in RESULT_TABLES[name].columns
                    if c.name not in ("run_id", "plan_id")
                ]
                rows = conn.execute(
                    sa.text(f"SELECT {', '.join(cols)} FROM {name} WHERE plan_id = :p"), {"p": plan}
                ).all()
                out[name] = sorted((tuple(_norm(v) for v in row) for row in rows), key=repr)
    finally:
        engine.dispose()
    return out


@pytest.fixture(scope="module")
def server() -> Iterator[EmbeddedServer]:
    with embedded_server() as emb:
        yield emb


@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "mariadb"])
def test_net_change_writes_what_a_regeneration_writes(
    backend: str, server: EmbeddedServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    base = tmp_path_factory.mktemp(backend)
    urls = database_url(backend, base)
    url = next(urls)  # skips with the reason when the backend is unreachable
    try:
        create_inputs(url)
        _check_sequences(url, server, base)
    finally:
        next(urls, None)


def _check_sequences(url: str, server: EmbeddedServer, base: Path) -> None:
    counter = iter(range(1_000_000))

    @settings(
        max_examples=EXAMPLES,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(sequences())
    def check(steps: list[Step]) -> None:
        n = next(counter)
        plan = f"seq-{n}"
        differences = steps_written = 0
        for k, (rows, plan_date, group) in enumerate(steps):
            replace_inputs(url, rows)
            # The reference: a regeneration written into a fresh database.
            fresh = f"sqlite:///{base / f'fresh-{n}-{k}.db'}"
            create_inputs(fresh)
            replace_inputs(fresh, rows)
            common = {
                "server": server.address,
                "api_key": server.api_key,
                "tenant": server.tenant,
                "plan_date": dt.date.fromisoformat(plan_date),
                "default_group": group,
                "state_dir": base / "state",
            }
            try:
                regen = run_cycle(CycleOptions(db_url=fresh, plan=f"fresh-{n}-{k}", **common))
            except InvalidArgument as exc:
                # Data no plan can be made of (a default group the data
                # drops): the net change is refused alike, nothing written.
                with pytest.raises(InvalidArgument) as refused:
                    run_cycle(CycleOptions(db_url=url, plan=plan, mode="net_change", **common))
                assert refused.value.message == exc.message
                continue
            assert regen.base_run_id is None
            report = run_cycle(CycleOptions(db_url=url, plan=plan, mode="net_change", **common))
            assert report.written
            differences += report.base_run_id is not None
            steps_written += 1
            got, want = plan_rows(url, plan), plan_rows(fresh, f"fresh-{n}-{k}")
            for name in PLAN_OUTPUT_TABLES:
                assert got[name] == want[name], f"step {k}: {name}"
        # Every written cycle after the first had a plan to write a difference to.
        assert differences == max(steps_written - 1, 0)

    check()
