"""RunPlan with base_run_id over loopback: the stream is the difference to the base run."""

from __future__ import annotations

import copy
import datetime as dt
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from masterplan.client.client import RunOutcome
from masterplan.contract.columns import Table, table_length
from masterplan.contract.rows import from_rows
from masterplan.contract.tables import INPUT_TABLES, PLAN_OUTPUT_TABLES, RESULT_OUTPUT_SPECS
from masterplan.v1 import columnar_pb2, planning_pb2

EXAMPLE = Path(__file__).parents[1] / "data" / "examples" / "multilevel_bom.json"
MAIN = "tenants/acme/plans/main"


def scm() -> tuple[dict[str, list[dict]], dt.date]:
    """The multi-level BOM example with three sales lines on three dates.

    Changing the last line's quantity changes some rows of the plan and
    leaves the others as they were, so that a difference is not the whole.
    """
    example = json.loads(EXAMPLE.read_text())
    data = copy.deepcopy(example["input"])
    line = data["sales_lines"][0]
    data["sales_lines"] = [
        dict(line, order_id=f"SO{i}", requested_date=f"2024-01-{10 + 5 * i:02d}") for i in (1, 2, 3)
    ]
    return data, dt.date.fromisoformat(example["plan_date"])


def tables(data: dict[str, list[dict]]) -> list[tuple[str, Table]]:
    return [(n, from_rows(INPUT_TABLES[n], data.get(n, []))) for n in INPUT_TABLES]


def rows(table: Table, name: str) -> Counter[tuple]:
    """A result table as a multiset of comparable rows (NULLs as None)."""

    def value(v: Any) -> Any:
        if isinstance(v, float):
            return None if math.isnan(v) else v + 0.0
        if isinstance(v, np.datetime64):
            return None if np.isnat(v) else str(v)
        return v

    columns = [table[c] for c in RESULT_OUTPUT_SPECS[name].column_names]
    return Counter(
        zip(*(map(value, c.tolist() if c.dtype.kind != "M" else c) for c in columns), strict=True)
    )


def applied(base: RunOutcome, diff: RunOutcome) -> dict[str, Counter[tuple]]:
    """The base's result with every copy of each removed row deleted and the added rows inserted."""
    out = {}
    for name in PLAN_OUTPUT_TABLES:
        gone = rows(diff.removed[name], name)
        kept = Counter({r: k for r, k in rows(base.tables[name], name).items() if r not in gone})
        out[name] = kept + rows(diff.tables[name], name)
    return out


def whole(outcome: RunOutcome) -> dict[str, Counter[tuple]]:
    return {name: rows(outcome.tables[name], name) for name in PLAN_OUTPUT_TABLES}


def test_a_run_against_a_held_base_streams_the_difference(live) -> None:  # type: ignore[no-untyped-def]
    data, t0 = scm()
    with live.client("acme") as c:
        c.upload(MAIN, tables(data))
        first = c.run_plan(MAIN, plan_date=t0, run_id="r1")
        assert not first.is_difference and first.run.base_run_id == ""
        assert first.run.rows_added == sum(first.run.row_counts.values())
        assert first.run.rows_removed == 0

        data["sales_lines"][2]["qty"] = 7
        c.upload(MAIN, tables(data))
        second = c.run_plan(MAIN, plan_date=t0, run_id="r2", base_run_id="r1")
        assert second.is_difference and second.run.base_run_id == "r1"
        added = sum(table_length(t) for t in second.tables.values())
        removed = sum(table_length(t) for t in second.removed.values())
        assert (second.run.rows_added, second.run.rows_removed) == (added, removed)
        assert 0 < added < sum(second.run.row_counts.values())
        assert c.get_run(f"{MAIN}/runs/r2").base_run_id == "r1"

        regenerated = c.run_plan(MAIN, plan_date=t0, run_id="r3")
        assert not regenerated.is_difference
        assert applied(first, second) == whole(regenerated)


def test_delete_chunks_come_before_the_added_rows_of_each_table(live) -> None:  # type: ignore[no-untyped-def]
    data, t0 = scm()
    with live.client("acme") as c:
        c.upload(MAIN, tables(data))
        c.run_plan(MAIN, plan_date=t0, run_id="r1")
        data["sales_lines"][2]["qty"] = 7
        c.upload(MAIN, tables(data))
        request = planning_pb2.RunPlanRequest(
            parent=MAIN, plan_date=t0.isoformat(), run_id="r2", base_run_id="r1", chunk_rows=1
        )
        chunks = [
            (e.result_chunk.table, e.result_chunk.change)
            for e in c.run_plan_events(request)
            if e.WhichOneof("event") == "result_chunk"
        ]
    delete, upsert = columnar_pb2.CHANGE_KIND_DELETE, columnar_pb2.CHANGE_KIND_UPSERT
    assert {change for _, change in chunks} == {delete, upsert}
    tables_in_order = [t for t, _ in chunks]
    assert tables_in_order == sorted(tables_in_order, key=PLAN_OUTPUT_TABLES.index)
    for name in PLAN_OUTPUT_TABLES:
        kinds = [change for table, change in chunks if table == name]
        assert kinds == sorted(kinds, key=lambda k: k != delete)


def test_a_base_the_server_does_not_hold_gives_the_whole_result(live) -> None:  # type: ignore[no-untyped-def]
    data, t0 = scm()
    with live.client("acme") as c:
        c.upload(MAIN, tables(data))
        c.upload("tenants/acme/plans/other", tables(data))
        other = c.run_plan("tenants/acme/plans/other", plan_date=t0, run_id="o1")
        first = c.run_plan(MAIN, plan_date=t0, run_id="r1")
        # r1 keeps no results once r2 succeeded; o1 is another plan's run.
        c.run_plan(MAIN, plan_date=t0, run_id="r2")
        for run_id, base in (("r3", "unknown"), ("r4", "o1"), ("r5", "r1")):
            out = c.run_plan(MAIN, plan_date=t0, run_id=run_id, base_run_id=base)
            assert not out.is_difference and out.run.base_run_id == ""
            assert whole(out) == whole(first) == whole(other)
            assert out.run.rows_added == sum(out.run.row_counts.values()) > 0
            assert out.run.rows_removed == 0
            assert all(table_length(t) == 0 for t in out.removed.values())


def test_an_unchanged_plan_against_its_base_streams_nothing(live) -> None:  # type: ignore[no-untyped-def]
    data, t0 = scm()
    with live.client("acme") as c:
        c.upload(MAIN, tables(data))
        c.run_plan(MAIN, plan_date=t0, run_id="r1")
        again = c.run_plan(MAIN, plan_date=t0, run_id="r2", base_run_id="r1")
        assert again.is_difference
        assert (again.run.rows_added, again.run.rows_removed) == (0, 0)
        assert sum(again.run.row_counts.values()) > 0


def test_a_net_change_replans_what_a_delta_reaches_and_says_why_when_it_cannot(live) -> None:  # type: ignore[no-untyped-def]
    """A net change after a delta of one sales line re-plans the SKUs it
    reaches only and gives a regeneration's result; after a change of the
    master data it is planned as a regeneration and says why."""
    t0 = dt.date(2024, 1, 8)
    data: dict[str, list[dict]] = {
        "warehouses": [{"warehouse_id": "W", "site_id": "S"}],
        "items": [{"item_id": i, "lead_time_days": 2} for i in ("A", "B", "C")],
        "sales_lines": [
            {
                "order_id": f"SO-{i}",
                "line_no": 1,
                "item_id": i,
                "warehouse_id": "W",
                "qty": 5,
                "requested_date": "2024-01-15",
            }
            for i in ("A", "B", "C")
        ],
    }
    with live.client("acme") as c:
        etag = c.upload(MAIN, tables(data)).etag
        first = c.run_plan(MAIN, plan_date=t0, run_id="r1", mode="net_change")
        assert first.run.fallback_reason == "no previous run of this plan is held by the server"
        assert first.run.skus_planned == first.run.skus_total == 3

        line = dict(data["sales_lines"][0], qty=7)
        changed = from_rows(INPUT_TABLES["sales_lines"], [line])
        etag = c.upload(MAIN, [("sales_lines", changed)], mode="delta", base_etag=etag).etag
        second = c.run_plan(MAIN, plan_date=t0, run_id="r2", mode="net_change", base_run_id="r1")
        assert second.run.fallback_reason == ""
        assert (second.run.skus_planned, second.run.skus_total) == (1, 3)
        regenerated = c.run_plan(MAIN, plan_date=t0, run_id="r3")
        assert applied(first, second) == whole(regenerated)

        item = dict(data["items"][0], lead_time_days=9)
        c.upload(
            MAIN,
            [("items", from_rows(INPUT_TABLES["items"], [item]))],
            mode="delta",
            base_etag=etag,
        )
        third = c.run_plan(MAIN, plan_date=t0, run_id="r4", mode="net_change")
        assert third.run.fallback_reason == "the master data changed (items)"
        assert third.run.skus_planned == third.run.skus_total
