"""A delta that reads less (SPEC §6): ``masterplan run --mode net_change``
through a source profile whose tables name a change column, against a real
server, on SQLite, PostgreSQL and MariaDB.

The "ERP" is the demo manufacturer moved into tables of its own
(``erp_<table>``), each row with a ``write_date``. After a regeneration,
rows are changed, added and deleted (their ``write_date`` moved), and one row
is changed without touching its ``write_date``, which lies within the
margin before the latest value the last read saw. The net change must read
only those rows of the keyed tables, and write exactly the plan that a
regeneration of the same data, written into a fresh database, writes. When
the server no longer holds the data set the delta was made against, the
snapshot sent instead is of every table read again, whole.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bench.generate import write_database
from masterplan.client.cli.cycle import CycleOptions, run_cycle
from masterplan.client.cli.main import main
from masterplan.connector.demo import build_demo_database
from masterplan.connector.profile import parse_profile
from masterplan.connector.reader import read_input
from masterplan.connector.schema import create_engine
from masterplan.connector.sync import key_columns
from masterplan.contract.tables import INPUT_TABLES
from tests.backends import BACKENDS, database_url
from tests.e2e.test_net_change_sequences import plan_rows
from tests.e2e.test_source_profiles import move_into_erp_tables
from tests.served import Served

T0 = dt.date(2026, 12, 7)
OLD = "2025-12-01 00:00:00"
#: The last row of every keyed table: the watermark of those tables, with
#: the other rows (OLD) further back than the margin.
MARK = "2025-12-15 00:00:00"
#: The latest write before the first run: the watermark of ``purchase_lines``.
LATEST = "2026-01-05 10:00:00"
#: Written before ``LATEST`` by less than the margin (a transaction that
#: committed late): its row is read by every net change until the watermark moves.
LATE = "2026-01-05 09:30:00"
LATER = "2026-01-06 08:00:00"


@pytest.fixture(params=BACKENDS)
def backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from database_url(request.param, tmp_path)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    srv = Served(tmp_path_factory.mktemp("served"))
    try:
        yield srv
    finally:
        srv.stop()


def profile_text() -> str:
    """Every input table from ``erp_<table>``, with its ``write_date`` as change column."""
    parts = ['[profile]\nname = "erp"\nchange_margin_minutes = 60\n']
    for name, spec in INPUT_TABLES.items():
        query = f"SELECT {', '.join(spec.column_names)}, write_date FROM erp_{name}"
        parts.append(f'[tables.{name}]\nquery = "{query}"\nchange_column = "write_date"\n')
    return "\n".join(parts)


def build_erp(url: str) -> None:
    build_demo_database(url, T0)
    move_into_erp_tables(url)
    engine = create_engine(url)
    stamp = {"sqlite": "TEXT", "postgresql": "TIMESTAMP"}.get(engine.dialect.name, "DATETIME")
    with engine.begin() as conn:
        for name, spec in INPUT_TABLES.items():
            conn.exec_driver_sql(f"ALTER TABLE erp_{name} ADD COLUMN write_date {stamp}")
            conn.execute(sa.text(f"UPDATE erp_{name} SET write_date = :w"), {"w": OLD})
            if spec.key:
                keys = ", ".join(spec.key)
                last = conn.execute(sa.text(f"SELECT {keys} FROM erp_{name} ORDER BY {keys}")).all()
                if last:
                    stamp_row(conn, name, tuple(last[-1]), MARK)
        first, second = purchase_keys(conn)[:2]
        stamp_row(conn, "purchase_lines", first, LATE)
        stamp_row(conn, "purchase_lines", second, LATEST)
    engine.dispose()


def purchase_keys(conn: sa.Connection) -> list[tuple[Any, ...]]:
    return [
        tuple(r)
        for r in conn.execute(
            sa.text("SELECT order_id, line_no FROM erp_purchase_lines ORDER BY order_id, line_no")
        )
    ]


def where_key(name: str, key: tuple[Any, ...]) -> tuple[str, dict[str, Any]]:
    columns = key_columns(INPUT_TABLES[name])
    clause = " AND ".join(f"{c} = :k{i}" for i, c in enumerate(columns))
    return clause, {f"k{i}": v for i, v in enumerate(key)}


def stamp_row(conn: sa.Connection, name: str, key: tuple[Any, ...], when: str) -> None:
    clause, params = where_key(name, key)
    conn.execute(
        sa.text(f"UPDATE erp_{name} SET write_date = :w WHERE {clause}"), {"w": when, **params}
    )


def change_the_erp(url: str) -> None:
    """Change, add and delete rows as an ERP would (moving their ``write_date``),
    and change one row without touching it."""
    engine = create_engine(url)
    with engine.begin() as conn:
        lines = conn.execute(
            sa.text("SELECT * FROM erp_sales_lines ORDER BY order_id, line_no")
        ).mappings()
        first, second, *_ = (dict(r) for r in lines)
        conn.execute(
            sa.text(
                "UPDATE erp_sales_lines SET qty = qty + 7, write_date = :w "
                "WHERE order_id = :o AND line_no = :n"
            ),
            {"w": LATER, "o": first["order_id"], "n": first["line_no"]},
        )
        conn.execute(
            sa.text("DELETE FROM erp_sales_lines WHERE order_id = :o AND line_no = :n"),
            {"o": second["order_id"], "n": second["line_no"]},
        )
        added = {**first, "order_id": "SO-NEW", "qty": 11, "write_date": LATER}
        columns = ", ".join(added)
        conn.execute(
            sa.text(f"INSERT INTO erp_sales_lines ({columns}) VALUES (:{', :'.join(added)})"),
            added,
        )
        item = conn.execute(sa.text("SELECT item_id FROM erp_items ORDER BY 1")).scalar()
        conn.execute(
            sa.text(
                "UPDATE erp_items SET lead_time_days = lead_time_days + 9, write_date = :w "
                "WHERE item_id = :i"
            ),
            {"w": LATER, "i": item},
        )
        # Committed late: its write_date stays LATE, within the margin.
        clause, params = where_key("purchase_lines", purchase_keys(conn)[0])
        conn.execute(sa.text(f"UPDATE erp_purchase_lines SET qty = qty + 5 WHERE {clause}"), params)
        conn.execute(sa.text("UPDATE erp_on_hand SET qty = qty + 1"))
    engine.dispose()


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert main([*args, "--json"]) == 0
    out: dict[str, Any] = json.loads(capsys.readouterr().out)
    return out


def regeneration_of(url: str, profile_path: Path, fresh: str) -> dict[str, list[tuple[Any, ...]]]:
    """The plan a regeneration writes for the ERP's data, written into a fresh database."""
    profile = parse_profile(profile_path.read_text(encoding="utf-8"), str(profile_path))
    engine = create_engine(url)
    tables = read_input(engine, source=profile)
    engine.dispose()
    write_database(tables, fresh)
    run_cycle(CycleOptions(db_url=fresh, plan_date=T0))
    return plan_rows(fresh, "main")


def test_a_net_change_reads_only_the_changed_rows_and_writes_a_regenerations_plan(
    backend_url: str,
    served: Served,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    build_erp(backend_url)
    profile = tmp_path / "erp.toml"
    profile.write_text(profile_text(), encoding="utf-8")
    key = served.install(f"acme-{uuid.uuid4().hex[:8]}")
    results = f"sqlite:///{tmp_path / 'plan.db'}"
    state_dir = tmp_path / "state"
    common = [
        "run",
        "--source",
        str(profile),
        "--db",
        backend_url,
        "--results-db",
        results,
        "--server",
        served.address,
        "--api-key",
        key,
        "--plan-date",
        T0.isoformat(),
        "--state-dir",
        str(state_dir),
    ]
    engine = create_engine(backend_url)
    with engine.connect() as conn:
        held = {
            n: conn.execute(sa.text(f"SELECT COUNT(*) FROM erp_{n}")).scalar_one()
            for n in INPUT_TABLES
        }
    engine.dispose()
    first = run(common, capsys)
    sync = first["sync"]
    assert sync["kind"] == "snapshot" and sync["read_by_change"] == []
    total = sync["rows_read"]
    assert total == first["input_rows"] > 100

    change_the_erp(backend_url)
    second = run([*common, "--mode", "net_change"], capsys)
    sync = second["sync"]
    assert sync["kind"] == "delta", sync
    keyed = {n for n, spec in INPUT_TABLES.items() if spec.key}
    assert set(sync["read_by_change"]) == keyed
    assert set(sync["read_whole"]) == {"on_hand", "forecasts"}
    per_table = sync["rows_read_per_table"]
    # Of a keyed table, the rows at or after its watermark less the margin:
    # the row holding the watermark; and the changed and added sales lines,
    # the changed item, the purchase line changed without touching its
    # write_date (within the margin). Nothing else.
    expected = {n: int(held[n] > 0) for n in keyed}
    expected["sales_lines"] += 2
    expected["items"] += 1
    expected["purchase_lines"] += 1
    assert {n: per_table[n] for n in keyed} == expected
    unkeyed = per_table["on_hand"] + per_table["forecasts"]
    assert sync["rows_read"] == sum(expected.values()) + unkeyed < total / 2
    assert sync["keys_read"] == second["input_rows"] - unkeyed
    # Sent: the changed sales line, the new one and the delete; the item;
    # the late purchase line; on-hand rows as deletes and upserts.
    assert sync["rows_upserted"] >= 4 and sync["rows_deleted"] >= 1
    assert second["base_run_id"] == first["run_id"]
    want = regeneration_of(backend_url, profile, f"sqlite:///{tmp_path / 'fresh-1.db'}")
    assert plan_rows(results, "main") == want

    # Another upload to the same plan: the server no longer holds the data set
    # the state describes, so the delta is refused and a snapshot is sent,
    # of every table read again whole (never of the rows read by change).
    engine = create_engine(backend_url)
    with engine.begin() as conn:
        stamp_row(conn, "purchase_lines", purchase_keys(conn)[2], LATER)
        conn.execute(sa.text("UPDATE erp_purchase_lines SET qty = qty + 1"))
    engine.dispose()
    other = f"sqlite:///{tmp_path / 'other.db'}"
    write_database({}, other)
    run(
        [
            "run",
            "--db",
            other,
            "--server",
            served.address,
            "--api-key",
            key,
            "--plan-date",
            T0.isoformat(),
            "--state-dir",
            str(tmp_path / "other-state"),
        ],
        capsys,
    )
    third = run([*common, "--mode", "net_change"], capsys)
    sync = third["sync"]
    assert sync["kind"] == "snapshot"
    assert "another data set" in sync["reason"] and "read again, whole" in sync["reason"]
    assert sync["read_by_change"] == []
    assert sync["rows_upserted"] == third["input_rows"]
    assert sync["rows_read"] > third["input_rows"]  # by change, then again whole
    want = regeneration_of(backend_url, profile, f"sqlite:///{tmp_path / 'fresh-2.db'}")
    assert plan_rows(results, "main") == want

    # The state that snapshot left reads by change column again.
    fourth = run([*common, "--mode", "net_change"], capsys)
    assert fourth["sync"]["kind"] == "delta"
    assert set(fourth["sync"]["read_by_change"]) == keyed
    assert fourth["sync"]["rows_upserted"] == fourth["sync"]["rows_deleted"] == 0
    assert plan_rows(results, "main") == want
