"""Ids in the order a database may return them never crash the engine.

numpy's default sort of StringDType arrays segfaults (numpy 2.4) on two
sorted runs of the same ids — e.g. item_coverage rows read warehouse by
warehouse. These run in a subprocess, so that a crash fails the test instead
of killing the test run.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True
    )


def test_factorize_and_codec_on_two_sorted_runs_of_ids() -> None:
    done = run(
        """
        import numpy as np
        from masterplan.codec import decode_chunk, encode_table
        from masterplan.server.engine.arrays import factorize
        from masterplan.contract.tables import INPUT_TABLES
        ids = np.array([f"IT-{i:07d}" for i in list(range(200)) * 2], dtype=object)
        codes, uniq = factorize(ids)
        assert (uniq[codes] == ids).all() and len(uniq) == 201
        table = {"item_id": ids, "warehouse_id": ids, "qty": np.ones(len(ids))}
        chunk = next(encode_table("on_hand", table))
        back = decode_chunk(chunk, INPUT_TABLES["on_hand"])
        assert (back["item_id"] == ids).all()
        print("ok")
        """
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", (
        done.stderr or f"exit {done.returncode}"
    )


def test_plan_with_item_coverage_read_warehouse_by_warehouse() -> None:
    done = run(
        """
        import datetime as dt
        from masterplan.server.engine import PlanParams, plan
        from masterplan.contract.rows import from_rows
        from masterplan.contract.tables import INPUT_TABLES
        items = [f"IT-{i:07d}" for i in range(300)]
        rows = {
            "warehouses": [{"warehouse_id": w, "site_id": "S"} for w in ("DC", "PLANT")],
            "items": [{"item_id": i} for i in items],
            "item_coverage": [{"item_id": i, "warehouse_id": w} for w in ("PLANT", "DC") for i in items],
            "sales_lines": [{"order_id": i, "line_no": 1, "item_id": i, "warehouse_id": "DC", "qty": 1,
                             "requested_date": "2026-01-10"} for i in items],
        }
        data = {n: from_rows(INPUT_TABLES[n], rows.get(n, [])) for n in INPUT_TABLES}
        result = plan(data, PlanParams(dt.date(2026, 1, 5)))
        assert len(result.tables["planned_orders"]["qty"]) == 300
        print("ok")
        """
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", (
        done.stderr or f"exit {done.returncode}"
    )
