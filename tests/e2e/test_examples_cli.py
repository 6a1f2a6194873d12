"""Every worked example of SPEC §5 through ``masterplan run`` end to end.

Each example's input is loaded with plain SQL into a fresh SQLite database
(tables without key constraints, so that the duplicate-key example can hold
its duplicates); ``masterplan run`` plans it through an embedded server and
writes it back; the written rows of the current run must equal the
example's expected plan.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from masterplan.client.cli import main
from tests.e2e.scm_sql import INPUT_DDL
from tests.reference.compare import diff_results

EXAMPLES = sorted((Path(__file__).parents[1] / "data" / "examples").glob("*.json"))
RESULT_COLUMNS = {
    "planned_orders": "planned_order_id, item_id, warehouse_id, order_type, qty, order_date, due_date,"
    " requirement_date, from_warehouse_id, vendor_id, bom_id, firmed",
    "pegging": "item_id, warehouse_id, supply_kind, supply_ref, supply_date, demand_kind, demand_ref,"
    " demand_date, qty",
    "action_messages": "supply_kind, supply_ref, item_id, warehouse_id, action, receipt_date, receipt_qty,"
    " suggested_date, suggested_qty",
    "delay_messages": "demand_kind, demand_ref, item_id, warehouse_id, requirement_date, futures_date,"
    " delay_days",
    "plan_messages": "severity, code, item_id, warehouse_id, text",
}


def load(path: Path, example: dict[str, Any], skip_table: str | None = None) -> str:
    con = sqlite3.connect(path)
    for ddl in INPUT_DDL:
        table = ddl.split()[2]
        if table != skip_table:
            con.execute(ddl.replace(" PRIMARY KEY", ""))
    for table, rows in example["input"].items():
        for row in rows:
            cols = ", ".join(row)
            marks = ", ".join("?" for _ in row)
            con.execute(f"INSERT INTO {table} ({cols}) VALUES ({marks})", list(row.values()))
    con.commit()
    con.close()
    return f"sqlite:///{path}"


def written_plan(path: Path) -> dict[str, list[dict[str, Any]]]:
    con = sqlite3.connect(path)
    con.row_factory = sqlite3.Row
    try:
        assert con.execute("SELECT current_run_id FROM plans WHERE plan_id = 'main'").fetchone()
        return {
            table: [
                dict(r) for r in con.execute(f"SELECT {cols} FROM {table} WHERE plan_id = 'main'")
            ]
            for table, cols in RESULT_COLUMNS.items()
        }
    finally:
        con.close()


def run_args(url: str, example: dict[str, Any]) -> list[str]:
    args = ["run", "--db", url, "--plan-date", example["plan_date"], "--json"]
    if example.get("default_group"):
        args += ["--default-group", example["default_group"]]
    return args


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_through_masterplan_run(
    path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    example = json.loads(path.read_text())
    db = tmp_path / "scm.db"
    assert main(run_args(load(db, example), example)) == 0
    assert json.loads(capsys.readouterr().out)["written"] is True
    problems = diff_results(written_plan(db), example["expected"])
    assert not problems, "\n".join(problems)


def test_missing_table_fails_the_run_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    example = json.loads((EXAMPLES[0].parent / "missing_table_and_column_1.json").read_text())
    url = load(tmp_path / "scm.db", example, skip_table="calendar_exceptions")
    assert main(run_args(url, example)) == 1
    err = capsys.readouterr().err
    assert "calendar_exceptions" in err and len(err.strip().splitlines()) == 1


def test_missing_column_fails_the_run_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    example = json.loads((EXAMPLES[0].parent / "missing_table_and_column_2.json").read_text())
    db = tmp_path / "scm.db"
    url = load(db, example)
    con = sqlite3.connect(db)
    con.execute("ALTER TABLE items DROP COLUMN default_vendor_id")
    con.commit()
    con.close()
    assert main(run_args(url, example)) == 1
    err = capsys.readouterr().err
    assert "items" in err and "default_vendor_id" in err
