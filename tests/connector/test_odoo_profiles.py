"""The Odoo source profiles (``connector/profiles/odoo*.toml``) against Odoo's
own tables, per version: a small manufacturer (:mod:`tests.odoo.data`) in
tables made as Odoo's ORM makes them (:mod:`tests.odoo.schema`).

- Each input table read through the profile is exactly what a planner
  expects from that Odoo data (written by hand, not by running the profile).
- The plan of the Odoo database equals the plan of the same business written
  into the reference tables, in every result table.
- A read-only database role is enough on the Odoo side.
- ``scm check`` passes the fixture and names the table and the problem when
  a column the profile reads is gone.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from masterplan.client.cli.main import main
from masterplan.connector.profile import load_profile
from masterplan.connector.reader import read_input
from masterplan.connector.schema import create_all, create_engine
from masterplan.contract.tables import INPUT_TABLES, PLAN_OUTPUT_TABLES, RESULT_TABLES, ColumnKind
from tests.backends import POSTGRES_URL, _postgres_url
from tests.odoo.data import EXPECTED, PARAMS, PLAN_DATE, write_odoo
from tests.odoo.schema import VERSIONS, create_odoo_tables

pytestmark = pytest.mark.postgres

_PARAM_ARGS = [arg for name, value in PARAMS.items() for arg in ("--param", f"{name}={value}")]


@pytest.fixture(params=VERSIONS, ids=[f"odoo{v}" for v in VERSIONS])
def version(request: pytest.FixtureRequest) -> int:
    return int(request.param)


@pytest.fixture
def odoo_url(version: int) -> Iterator[str]:
    """A PostgreSQL schema of its own holding the manufacturer's Odoo tables."""
    for url in _postgres_url():
        engine = sa.create_engine(url)
        try:
            with engine.begin() as conn:
                create_odoo_tables(conn, version)
                write_odoo(conn, version)
        finally:
            engine.dispose()
        yield url


# --- comparing rows ------------------------------------------------------------------


def _cell(value: Any, kind: ColumnKind) -> Any:
    """A read or hand-written value in one comparable form."""
    if value is None:
        return None
    if kind is ColumnKind.DATE:
        if isinstance(value, np.datetime64):
            return None if np.isnat(value) else value.astype("datetime64[D]").item()
        return value
    if kind in (ColumnKind.FLOAT, ColumnKind.INT):
        number = float(value)
        return None if math.isnan(number) else number
    return str(value)


def _sort_key(row: Sequence[Any]) -> tuple[str, ...]:
    return tuple("" if v is None else f"{v:.6f}" if isinstance(v, float) else str(v) for v in row)


def _same_rows(table: str, got: list[tuple[Any, ...]], want: list[tuple[Any, ...]]) -> None:
    """Equal as sorted row sets; numbers within 1e-9."""
    got, want = sorted(got, key=_sort_key), sorted(want, key=_sort_key)
    assert len(got) == len(want), f"{table}: {len(got)} rows read, {len(want)} expected\n{got}"
    for a, b in zip(got, want, strict=True):
        same = all(
            math.isclose(x, y, rel_tol=0, abs_tol=1e-9)
            if isinstance(x, float) and isinstance(y, float)
            else x == y
            for x, y in zip(a, b, strict=True)
        )
        assert same, f"{table}: read {a}, expected {b}"


def _read_rows(columns: Mapping[str, np.ndarray], table: str) -> list[tuple[Any, ...]]:
    spec = INPUT_TABLES[table]
    arrays = [columns[c.name] for c in spec.columns]
    return [
        tuple(_cell(v, c.kind) for v, c in zip(values, spec.columns, strict=True))
        for values in zip(*arrays, strict=True)
    ]


def _expected_rows(table: str) -> list[tuple[Any, ...]]:
    spec = INPUT_TABLES[table]
    return [tuple(_cell(row[c.name], c.kind) for c in spec.columns) for row in EXPECTED[table]]


# --- 1. each table ---------------------------------------------------------------------


def test_every_input_table_reads_as_the_planner_expects(odoo_url: str, version: int) -> None:
    profile = load_profile(f"odoo{version}", PARAMS)
    engine = create_engine(odoo_url)
    try:
        data = read_input(engine, source=profile)
    finally:
        engine.dispose()
    assert set(data) == set(INPUT_TABLES)
    for table in INPUT_TABLES:
        _same_rows(table, _read_rows(data[table], table), _expected_rows(table))


def test_parameters_change_what_is_read(odoo_url: str, version: int) -> None:
    engine = create_engine(odoo_url)
    try:
        # The defaults: days in UTC, drafts read as firmed planned orders.
        utc = read_input(engine, source=load_profile(f"odoo{version}"))
        other = read_input(
            engine,
            source=load_profile(f"odoo{version}", {"include_drafts": "false", "company_id": "2"}),
        )
    finally:
        engine.dispose()
    # Read in UTC, the sale confirmed at 00:30 in Brussels is one of the day before.
    sales = utc["sales_lines"]
    days = dict(zip(sales["order_id"], sales["requested_date"].astype(object), strict=True))
    assert days["S00007"] == dt.date(2026, 12, 6)
    assert days["S00002"] == dt.date(2026, 12, 9)
    assert len(utc["firmed_planned_orders"]["planned_order_id"]) == 2
    # Company 2: its own warehouse and order only; no drafts.
    assert list(other["warehouses"]["warehouse_id"]) == ["OTH"]
    assert list(other["sales_lines"]["order_id"]) == ["S00006"]
    assert list(other["on_hand"]["item_id"]) == ["310"]
    assert len(other["firmed_planned_orders"]["planned_order_id"]) == 0


# --- 2. the same plan ------------------------------------------------------------------


def _reference_database(url: str) -> None:
    """The hand-written §4 rows in a reference schema made by ``scm init``."""
    engine = create_engine(url)
    try:
        create_all(engine)
        metadata = sa.MetaData()
        metadata.reflect(engine, only=list(INPUT_TABLES))
        with engine.begin() as conn:
            for table, rows in EXPECTED.items():
                if rows:
                    conn.execute(metadata.tables[table].insert(), [dict(r) for r in rows])
    finally:
        engine.dispose()


def _plan_rows(url: str, run_id: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every result row of the run's plan, without run and plan ids, sorted."""
    engine = sa.create_engine(url)
    out: dict[str, list[tuple[Any, ...]]] = {}
    try:
        with engine.connect() as conn:
            plan = conn.execute(
                sa.text("SELECT plan_id FROM plan_runs WHERE run_id = :r"), {"r": run_id}
            ).scalar_one()
            for name in PLAN_OUTPUT_TABLES:
                spec = RESULT_TABLES[name]
                columns = [c for c in spec.columns if c.name not in ("run_id", "plan_id")]
                rows = conn.execute(
                    sa.text(
                        f"SELECT {', '.join(c.name for c in columns)} FROM {name} "
                        "WHERE plan_id = :p"
                    ),
                    {"p": plan},
                ).all()
                out[name] = [
                    tuple(_result_cell(v, c.kind) for v, c in zip(row, columns, strict=True))
                    for row in rows
                ]
    finally:
        engine.dispose()
    return out


def _result_cell(value: Any, kind: ColumnKind) -> Any:
    if kind is ColumnKind.DATE:  # SQLite keeps dates as ISO text
        return value.isoformat() if isinstance(value, dt.date) else value
    return _cell(value, kind)


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    code = main(["run", "--plan-date", PLAN_DATE.isoformat(), "--json", *args])
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out)


def test_the_plan_equals_the_plan_of_the_reference_tables(
    odoo_url: str, version: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reference_url = f"sqlite:///{tmp_path / 'reference.db'}"
    _reference_database(reference_url)
    expected = _run(["--db", reference_url], capsys)

    results_url = f"sqlite:///{tmp_path / 'plan.db'}"
    got = _run(
        [
            "--source",
            f"odoo{version}",
            *_PARAM_ARGS,
            "--db",
            odoo_url,
            "--results-db",
            results_url,
        ],
        capsys,
    )
    plan = _plan_rows(results_url, got["run_id"])
    want = _plan_rows(reference_url, expected["run_id"])
    for table in PLAN_OUTPUT_TABLES:
        _same_rows(table, plan[table], want[table])

    # Not a trivial plan: made and bought, pegged, with messages for the planner.
    columns = [c.name for c in RESULT_TABLES["planned_orders"].columns]
    order_type = [c for c in columns if c not in ("run_id", "plan_id")].index("order_type")
    assert {row[order_type] for row in plan["planned_orders"]} == {"production", "purchase"}
    assert plan["pegging"]
    assert plan["delay_messages"] and plan["action_messages"]

    # Nothing was written into Odoo's schema.
    engine = sa.create_engine(odoo_url)
    try:
        assert not set(RESULT_TABLES) & set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


# --- 3. read-only ------------------------------------------------------------------------


@pytest.fixture
def read_only_url(odoo_url: str) -> Iterator[str]:
    """``odoo_url`` as a role that may only read the schema's tables."""
    url = make_url(odoo_url)
    schema = str(url.query["options"]).removeprefix("-csearch_path=")
    role = f"mp_odoo_ro_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE ROLE "{role}" LOGIN')
            conn.exec_driver_sql(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"')
            conn.exec_driver_sql(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{schema}" TO "{role}"')
        yield url.set(username=role, password=None).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = :r"
                ),
                {"r": role},
            )
            conn.exec_driver_sql(f'DROP OWNED BY "{role}"')
            conn.exec_driver_sql(f'DROP ROLE "{role}"')
        admin.dispose()


def test_a_read_only_role_is_enough_on_the_odoo_side(
    read_only_url: str, version: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = sa.create_engine(read_only_url)
    try:
        with engine.connect() as conn, pytest.raises(sa.exc.ProgrammingError):
            conn.exec_driver_sql("CREATE TABLE planned_orders (x integer)")
    finally:
        engine.dispose()
    results_url = f"sqlite:///{tmp_path / 'plan.db'}"
    got = _run(
        [
            "--source",
            f"odoo{version}",
            *_PARAM_ARGS,
            "--db",
            read_only_url,
            "--results-db",
            results_url,
        ],
        capsys,
    )
    assert _plan_rows(results_url, got["run_id"])["planned_orders"]


# --- 4. scm check ------------------------------------------------------------------------


def test_scm_check_passes_the_fixture_and_names_a_missing_column(
    odoo_url: str, version: int, capsys: pytest.CaptureFixture[str]
) -> None:
    check = ["scm", "check", "--source", f"odoo{version}", "--db", odoo_url, *_PARAM_ARGS]
    assert main([*check, "--plan-date", PLAN_DATE.isoformat()]) == 0
    capsys.readouterr()

    engine = sa.create_engine(odoo_url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE sale_order_line DROP COLUMN qty_delivered")
    finally:
        engine.dispose()
    with pytest.raises(SystemExit) as exit_info:
        main([*check, "--json"])
    assert exit_info.value.code == 1
    report = json.loads(capsys.readouterr().out)
    assert [p["table"] for p in report["problems"]] == ["sales_lines"]
    assert "qty_delivered" in report["problems"][0]["text"]
    assert "the query fails" in report["problems"][0]["text"]
