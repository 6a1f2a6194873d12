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
    net = summary["net_change"]
    # The net change after the edited sales line is the plan the database holds,
    # written as a difference to the first run after a delta of that one line.
    assert net["run_id"] == run and net["base_run_id"] == summary["run_id"]
    assert net["sync"]["kind"] == "delta"
    assert (net["sync"]["rows_upserted"], net["sync"]["rows_deleted"]) == (1, 0)
    order_id, line_no = net["edited"]["ref"][3:].split("/")
    (qty,) = con.execute(
        "SELECT qty FROM sales_lines WHERE order_id = ? AND line_no = ?", (order_id, line_no)
    ).fetchone()
    assert qty == net["edited"]["qty_after"] != net["edited"]["qty_before"]
    history = con.execute(
        "SELECT base_run_id, rows_added, rows_removed, planned_order_count, pegging_count, "
        "action_message_count, delay_message_count, plan_message_count FROM plan_runs "
        "WHERE run_id = ?",
        (run,),
    ).fetchone()
    assert history[:3] == (summary["run_id"], net["rows_added"], net["rows_removed"])
    assert net["rows_added"] + net["rows_removed"] > 0
    tables = ("planned_orders", "pegging", "action_messages", "delay_messages", "plan_messages")
    counted = dict(zip(tables, history[3:], strict=True))
    for table, n in counted.items():
        assert (
            con.execute(f"SELECT COUNT(*) FROM {table} WHERE plan_id = 'main'").fetchone()[0] == n
        )
    # The promise is an answer, not a change: no sales line was added.
    promised = summary["promise"]
    assert promised["item"] and (promised["futures_date"] or promised["never_covered"])
    assert (
        con.execute("SELECT COUNT(*) FROM sales_lines WHERE order_id LIKE 'PROMISE%'").fetchone()[0]
        == 0
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
