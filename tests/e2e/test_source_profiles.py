"""Planning an ERP's own tables (SPEC §4, source profiles): on SQLite,
PostgreSQL and MariaDB, data read through a profile or through views plans
exactly as the same data in the reference tables, the plan goes into a
database of its own, and a profile that does not fit is reported table by
table, column by column.

The "ERP" here is the demo manufacturer moved into tables of other names
(``erp_items``, ...) with the reference tables dropped, so that a read that
missed the profile would fail rather than pass by accident.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from masterplan.client.cli.cycle import CycleOptions, run_cycle
from masterplan.client.cli.main import main
from masterplan.connector.demo import build_demo_database
from masterplan.connector.errors import ColumnDataError
from masterplan.connector.profile import ProfileError, parse_profile, source_problems
from masterplan.connector.reader import read_input
from masterplan.connector.schema import create_engine
from masterplan.contract.tables import INPUT_TABLES, RESULT_TABLES
from tests.backends import BACKENDS, database_url
from tests.e2e.test_backends_same_plan import result_rows

T0 = dt.date(2026, 12, 7)


@pytest.fixture(params=BACKENDS)
def backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from database_url(request.param, tmp_path)


def erp_profile(extra_where: dict[str, str] | None = None, params: str = "") -> str:
    """A profile reading every input table from ``erp_<table>``: the columns
    in reverse order under their §4 names, plus a column §4 does not know."""
    parts = ['[profile]\nname = "erp"\n', f"[parameters]\n{params}\n"]
    for name, spec in INPUT_TABLES.items():
        columns = ", ".join(reversed(spec.column_names))
        where = (extra_where or {}).get(name, "")
        query = f"SELECT {columns}, 'note' AS erp_note FROM erp_{name} {where}"
        parts.append(f'[tables.{name}]\nquery = """\n{query}\n"""\n')
    return "\n".join(parts)


def move_into_erp_tables(url: str) -> None:
    """Copy every input table to ``erp_<name>`` and drop the original and the
    result tables: the database then holds only the "ERP"'s tables."""
    engine = create_engine(url)
    with engine.begin() as conn:
        for name in INPUT_TABLES:
            conn.exec_driver_sql(f"CREATE TABLE erp_{name} AS SELECT * FROM {name}")
            conn.exec_driver_sql(f"DROP TABLE {name}")
        for name in RESULT_TABLES:
            conn.exec_driver_sql(f"DROP TABLE {name}")
    engine.dispose()


def tables_equal(a: dict[str, dict[str, np.ndarray]], b: dict[str, dict[str, np.ndarray]]) -> None:
    """Same rows per table, whatever their order."""

    def rows(t: dict[str, np.ndarray], columns: tuple[str, ...]) -> list[tuple[str, ...]]:
        return sorted(zip(*(map(str, t[c]) for c in columns), strict=True))

    for name, spec in INPUT_TABLES.items():
        assert rows(a[name], spec.column_names) == rows(b[name], spec.column_names), name


def test_a_profile_reads_what_the_reference_tables_held(backend_url: str, tmp_path: Path) -> None:
    build_demo_database(backend_url, T0)
    engine = create_engine(backend_url)
    reference = read_input(engine)
    move_into_erp_tables(backend_url)
    profile = parse_profile(erp_profile(), "erp.toml")
    through = read_input(engine, source=profile)
    tables_equal(reference, through)

    # A parameter narrows what a query reads, and is bound, not pasted.
    filtered = parse_profile(
        erp_profile({"sales_lines": "WHERE warehouse_id <> :skip"}, params='skip = "none"\n'),
        "erp.toml",
        {"skip": "DC"},
    )
    sales = read_input(engine, source=filtered)["sales_lines"]
    kept = reference["sales_lines"]["warehouse_id"] != "DC"
    assert 0 < len(sales["order_id"]) == int(kept.sum()) < len(kept)
    engine.dispose()


def test_run_through_a_profile_writes_the_same_plan_into_a_database_of_its_own(
    backend_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reference_url = f"sqlite:///{tmp_path / 'reference.db'}"
    build_demo_database(reference_url, T0)
    expected = run_cycle(CycleOptions(db_url=reference_url, plan_date=T0))

    build_demo_database(backend_url, T0)
    move_into_erp_tables(backend_url)
    profile = tmp_path / "erp.toml"
    profile.write_text(erp_profile(), encoding="utf-8")
    results_url = f"sqlite:///{tmp_path / 'plan.db'}"
    code = main(
        [
            "run",
            "--source",
            str(profile),
            "--db",
            backend_url,
            "--results-db",
            results_url,
            "--plan-date",
            T0.isoformat(),
            "--json",
        ]
    )
    assert code == 0
    got = json.loads(capsys.readouterr().out)
    assert result_rows(results_url, got["run_id"]) == result_rows(reference_url, expected.run_id)
    assert got["output_rows"]["planned_orders"] > 0

    # Nothing was written into the source: no result table was made there.
    engine = create_engine(backend_url)
    assert not set(RESULT_TABLES) & set(sa.inspect(engine).get_table_names())
    with engine.connect() as conn:
        stocked = (
            conn.execute(sa.text("SELECT item_id FROM erp_on_hand WHERE qty > 0 ORDER BY 1"))
            .scalars()
            .first()
        )
    engine.dispose()

    # The planner's views read the plan there and the inputs through the
    # profile, and show what they show for the reference database.
    with sa.create_engine(results_url).connect() as conn:
        bought = (
            conn.execute(
                sa.text("SELECT supply_ref FROM pegging WHERE supply_kind = 'pl' ORDER BY 1")
            )
            .scalars()
            .first()
        )
    through = ["--db", backend_url, "--source", str(profile), "--results-db", results_url]
    for view in (["show", str(stocked)], ["peg", str(bought), "--up"]):
        assert main([*view, *through, "--json"]) == 0
        got_view = json.loads(capsys.readouterr().out)
        assert main([*view, "--db", reference_url, "--json"]) == 0
        assert without_run(got_view) == without_run(json.loads(capsys.readouterr().out)), view
        assert got_view
        if view[0] == "show":  # its on-hand, an input row, read through the profile
            assert any(line["kind"] == "oh" for sku in got_view for line in sku["lines"])


def without_run(view: object) -> object:
    """A view's JSON less the run that wrote the plan (its id and times differ)."""
    if isinstance(view, list):
        return [without_run(v) for v in view]
    if isinstance(view, dict):
        return {k: v for k, v in view.items() if k != "run"}
    return view


def test_views_are_read_wherever_a_table_is(backend_url: str, tmp_path: Path) -> None:
    reference_url = f"sqlite:///{tmp_path / 'reference.db'}"
    build_demo_database(reference_url, T0)
    expected = run_cycle(CycleOptions(db_url=reference_url, plan_date=T0))

    build_demo_database(backend_url, T0)
    engine = create_engine(backend_url)
    with engine.begin() as conn:
        for name in ("items", "sales_lines", "on_hand"):
            conn.exec_driver_sql(f"CREATE TABLE erp_{name} AS SELECT * FROM {name}")
            conn.exec_driver_sql(f"DROP TABLE {name}")
            columns = ", ".join(INPUT_TABLES[name].column_names)
            conn.exec_driver_sql(f"CREATE VIEW {name} AS SELECT {columns} FROM erp_{name}")
    engine.dispose()
    report = run_cycle(CycleOptions(db_url=backend_url, plan_date=T0))
    assert result_rows(backend_url, report.run_id) == result_rows(reference_url, expected.run_id)


def test_a_profile_that_does_not_fit_is_reported_by_table_and_column(
    backend_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build_demo_database(backend_url, T0)
    move_into_erp_tables(backend_url)
    text = erp_profile()
    # A column left out, a table that does not exist, text where a number goes.
    text = text.replace("lead_time_days, ", "", 1)
    text = text.replace("FROM erp_forecasts", "FROM erp_forecast")
    on_hand = ", ".join(reversed(INPUT_TABLES["on_hand"].column_names))
    text = text.replace(
        f"SELECT {on_hand}, 'note' AS erp_note FROM erp_on_hand",
        "SELECT 'lots' AS qty, warehouse_id, item_id FROM erp_on_hand",
    )
    path = tmp_path / "broken.toml"
    path.write_text(text, encoding="utf-8")
    profile = parse_profile(text, str(path))
    engine = create_engine(backend_url)
    with engine.connect() as conn, conn.begin():
        problems = source_problems(conn, profile)
    found = {(p.table, p.column): p.message for p in problems}
    assert "the query returns no column 'lead_time_days'" in found[("items", "lead_time_days")]
    assert "the query fails" in found[("forecasts", None)]
    if engine.dialect.name != "sqlite":  # SQLite's results carry no types
        assert "column 'qty' is text, expected a number" in found[("on_hand", "qty")]
        assert len(problems) == 3
    else:
        assert len(problems) == 2

    # The command line lists every problem and plans nothing.
    with pytest.raises(SystemExit) as exit_info:
        main(["scm", "check", "--source", str(path), "--db", backend_url])
    assert exit_info.value.code == 1
    out = capsys.readouterr().out
    assert "table 'items'" in out and "table 'forecasts'" in out
    assert f"{len(problems)} problem(s) in source profile 'erp'" in out

    if engine.dialect.name == "sqlite":
        # Where types are unknown until read, the read names table and column.
        fixed = erp_profile().replace(
            f"SELECT {on_hand}, 'note' AS erp_note FROM erp_on_hand",
            "SELECT 'lots' AS qty, warehouse_id, item_id FROM erp_on_hand",
        )
        with pytest.raises(ColumnDataError, match="table 'on_hand', column 'qty'"):
            read_input(engine, source=parse_profile(fixed, "fixed.toml"))
    engine.dispose()


def test_check_runs_each_query_once_and_checks_what_it_read(
    backend_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``scm check --source`` probes every query once (a probe of an ERP's
    view can cost as much as a read) and checks the data read through them."""
    build_demo_database(backend_url, T0)
    move_into_erp_tables(backend_url)
    path = tmp_path / "erp.toml"
    path.write_text(erp_profile(), encoding="utf-8")
    probes: list[str] = []

    def count(conn: object, cursor: object, statement: str, *rest: object) -> None:
        if "AS src WHERE 1 = 0" in statement:
            probes.append(statement)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", count)
    try:
        code = main(
            ["scm", "check", "--source", str(path), "--db", backend_url, "--plan-date", str(T0)]
        )
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", count)
    assert code == 0
    assert len(probes) == len(INPUT_TABLES)
    assert capsys.readouterr().out.strip().endswith("message(s)")


def test_a_profile_for_another_database_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'erp.db'}"
    build_demo_database(url, T0)
    profile = parse_profile(
        erp_profile().replace('name = "erp"', 'name = "erp"\ndialects = ["postgresql"]'),
        "erp.toml",
    )
    engine = create_engine(url)
    with pytest.raises(ProfileError, match="written for postgresql; the database is sqlite"):
        read_input(engine, source=profile)
    engine.dispose()
