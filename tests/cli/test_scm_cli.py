"""``masterplan scm init`` and ``masterplan scm check`` on a database."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from masterplan.client.cli import main
from masterplan.contract.tables import INPUT_TABLES, RESULT_TABLES
from tests.backends import database_url


def test_scm_init_creates_every_table_and_is_idempotent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'scm.db'}"
    assert main(["scm", "init", "--db", url]) == 0
    con = sqlite3.connect(tmp_path / "scm.db")
    con.execute("INSERT INTO items (item_id) VALUES ('A')")
    con.commit()
    assert main(["scm", "init", "--db", url]) == 0  # again: nothing dropped
    assert con.execute("SELECT COUNT(*) FROM items").fetchone() == (1,)
    con.close()
    inspector = sa.inspect(sa.create_engine(url))
    tables = set(inspector.get_table_names())
    assert set(INPUT_TABLES) | set(RESULT_TABLES) <= tables
    for name, spec in {**INPUT_TABLES, **RESULT_TABLES}.items():
        assert {c["name"] for c in inspector.get_columns(name)} == set(spec.column_names), name


def test_scm_check_reports_what_planning_would_say(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'scm.db'}"
    assert main(["scm", "init", "--db", url]) == 0
    con = sqlite3.connect(tmp_path / "scm.db")
    con.executescript(
        """
        INSERT INTO warehouses (warehouse_id, site_id) VALUES ('W1', 'S');
        INSERT INTO items (item_id, default_order_type) VALUES ('A', 'production'), ('B', 'production');
        INSERT INTO boms (bom_id, item_id, batch_qty) VALUES ('BA', 'A', 1), ('BB', 'B', 1);
        INSERT INTO bom_lines (bom_id, line_no, component_item_id, qty_per) VALUES ('BA', 1, 'B', 1), ('BB', 1, 'A', 1);
        INSERT INTO sales_lines (order_id, line_no, item_id, warehouse_id, qty, requested_date, priority)
            VALUES ('S', 1, 'A', 'W1', 1, '2026-01-10', 0), ('S', 2, 'GHOST', 'W1', 1, '2026-01-10', 0),
                   ('S', 3, 'A', 'W1', -4, '2026-01-10', 0);
        """
    )
    con.commit()
    con.close()
    code = main(["scm", "check", "--db", url, "--plan-date", "2026-01-05", "--json"])
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["messages"]
    found = sorted((m["severity"], m["code"], m["item_id"]) for m in report)
    assert found == [
        ("error", "BOM_CYCLE", None),
        ("warning", "INVALID_QTY", "A"),
        ("warning", "UNKNOWN_ITEM", "GHOST"),
    ]
    assert code == 1  # an error-severity finding fails the check
    # nothing was planned or written
    con = sqlite3.connect(tmp_path / "scm.db")
    assert con.execute("SELECT COUNT(*) FROM plan_runs").fetchone() == (0,)
    con.close()


@pytest.mark.postgres
def test_scm_init_json_never_prints_the_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It printed the URL as given, password and all. (The test server trusts
    local connections, so any password connects.)"""
    database = database_url("postgresql", tmp_path)
    url = next(database)  # (held: closing it drops the test's schema)
    try:
        secret = "s3cret-Pa55word"
        with_password = make_url(url).set(password=secret).render_as_string(hide_password=False)
        assert main(["scm", "init", "--db", with_password, "--json"]) == 0
        out = capsys.readouterr()
        assert secret not in out.out + out.err
        shown = make_url(json.loads(out.out)["db"])
        assert shown.password == "***"
        assert (shown.host, shown.database) == (make_url(url).host, make_url(url).database)
    finally:
        database.close()


@pytest.mark.parametrize("command", [["scm", "check"], ["run", "--plan-date", "2026-01-05"]])
def test_a_sqlite_path_that_does_not_exist_is_refused_not_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    """SQLite creates a missing file: ``scm check`` reported an empty data set
    and ``run`` failed on a missing table, with an empty file left behind."""
    missing = tmp_path / "typo.db"
    with pytest.raises(SystemExit) as raised:
        main([*command, "--db", f"sqlite:///{missing}"])
    assert raised.value.code == f"masterplan: no SQLite database at {missing} " + (
        "(masterplan scm init --db URL creates one)"
    )
    assert not missing.exists()


def test_a_database_error_is_one_line_without_sqlalchemys_background_link(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file that is no SQLite database: the driver's error in one line,
    not the statement, its parameters and a link on lines of their own."""
    bad = tmp_path / "scm.db"
    bad.write_bytes(b"this is not a database" * 100)
    assert main(["scm", "check", "--db", f"sqlite:///{bad}"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("masterplan: ")
    assert "not a database" in err
    assert "Background on this error" not in err and "[SQL:" not in err
