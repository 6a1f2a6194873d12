"""``masterplan demo`` runs the whole flow and its summary matches what it wrote."""

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_demo_plans_the_sample_and_reports_the_written_plan(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "masterplan.client.cli",
            "demo",
            "--db",
            f"sqlite:///{db}",
            "--json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    con = sqlite3.connect(db)
    run = con.execute("SELECT current_run_id FROM plans WHERE plan_id = 'main'").fetchone()[0]
    assert summary["run_id"] == run
    for table, n in summary["output_rows"].items():
        assert (
            con.execute(f"SELECT COUNT(*) FROM {table} WHERE plan_id = 'main'").fetchone()[0] == n
        )
    assert summary["output_rows"]["planned_orders"] > 0
    # the pegging chain runs from a sales order down to a purchased part
    chain = summary["pegging_chain"]
    assert chain[0]["kind"] == "so" and len(chain) >= 5
    last_item = chain[-1]["item_id"]
    (order_type,) = con.execute(
        "SELECT default_order_type FROM items WHERE item_id = ?", (last_item,)
    ).fetchone()
    assert order_type == "purchase"
