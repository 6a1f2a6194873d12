"""A run's work is bounded, a failed run keeps the previous results, run ids
stay taken: each against a real ``masterplan serve`` process on loopback.

Three-row data sets used to exhaust the engine (a sales line of 1e17 split by
``max_order_qty`` 1 looped for ever; 2e6 of them made 2M orders; a lead time
of 1e8 working days took gigabytes; a BOM chain produced ``inf``); a memory
quota hit at the end of a run dropped the previous run's results; a run id
could be reused once 20 newer runs existed.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from masterplan.client import errors
from masterplan.client.client import MasterplanClient
from masterplan.codec import table_nbytes
from masterplan.contract.columns import Table
from masterplan.contract.rows import from_rows
from masterplan.contract.tables import INPUT_TABLES
from masterplan.server.engine import PlanParams, plan
from masterplan.v1 import planning_pb2
from tests.served import Served

PLAN = "tenants/acme/plans/main"
PLAN_DATE = dt.date(2024, 3, 4)

Rows = dict[str, list[dict[str, Any]]]
SUCCEEDED = planning_pb2.PlanRun.SUCCEEDED
FAILED = planning_pb2.PlanRun.FAILED


@pytest.fixture
def serve(tmp_path: Path) -> Iterator:  # type: ignore[no-untyped-def]
    started: list[Served] = []

    def start(*extra: str) -> Served:
        s = Served(tmp_path, *extra, registry=tmp_path / f"reg{len(started)}.db")
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


def _client(srv: Served) -> MasterplanClient:
    # A run that does not end within this fails the test instead of hanging it.
    return MasterplanClient(srv.address, srv.install("acme"), stream_timeout=60)


def _tables(rows: Rows) -> dict[str, Table]:
    return {name: from_rows(spec, rows.get(name, [])) for name, spec in INPUT_TABLES.items()}


def _upload(c: MasterplanClient, rows: Rows) -> int:
    """Upload ``rows``; the bytes the plan's data set takes on the server."""
    return int(c.upload(PLAN, list(_tables(rows).items())).bytes_held)


def _sales(item: str, qty: float, order: str = "S1") -> dict[str, Any]:
    return {
        "order_id": order,
        "line_no": 1,
        "item_id": item,
        "warehouse_id": "W1",
        "qty": qty,
        "requested_date": "2024-03-06",
    }


WAREHOUSE: Rows = {"warehouses": [{"warehouse_id": "W1", "site_id": "S"}]}


def _split(qty: float) -> Rows:
    """The three-row data set of the issue: one item split by max_order_qty 1."""
    return {
        **WAREHOUSE,
        "items": [{"item_id": "A", "max_order_qty": 1}],
        "sales_lines": [_sales("A", qty)],
    }


def _codes(outcome: Any) -> list[str]:
    return [str(c) for c in outcome.tables["plan_messages"]["code"]]


def test_extreme_values_are_plan_messages_and_the_run_goes_on(serve) -> None:  # type: ignore[no-untyped-def]
    srv = serve()
    with _client(srv) as c:
        rows = _split(1e17)
        rows["items"].append({"item_id": "B", "lead_time_days": 1e8})
        rows["sales_lines"].append(_sales("A", 3, "S2"))
        _upload(c, rows)
        outcome = c.run_plan(PLAN, plan_date=PLAN_DATE)
        assert outcome.run.state == SUCCEEDED
        assert sorted(_codes(outcome)) == ["INVALID_QTY", "INVALID_ROW"]
        texts = " ".join(str(t) for t in outcome.tables["plan_messages"]["text"])
        assert "sales_lines" in texts and "S1" in texts and "qty" in texts
        assert "items" in texts and "lead_time_days" in texts
        assert [float(q) for q in outcome.tables["planned_orders"]["qty"]] == [1.0] * 3


def test_a_plan_over_the_planned_orders_quota_fails_naming_it(serve) -> None:  # type: ignore[no-untyped-def]
    srv = serve("--max-planned-orders", "1000")
    with _client(srv) as c:
        _upload(c, _split(2e6))
        with pytest.raises(errors.ResourceExhausted) as caught:
            c.run_plan(PLAN, plan_date=PLAN_DATE)
        assert caught.value.metadata["resource"] == "planned_orders"
        assert caught.value.metadata["limit"] == "1000"
        (run,) = c.list_runs(PLAN)
        assert run.state == FAILED and "planned_orders" in run.error


def test_a_plan_over_the_result_rows_quota_fails_naming_it(serve) -> None:  # type: ignore[no-untyped-def]
    srv = serve("--max-result-rows", "100")
    with _client(srv) as c:
        _upload(c, _split(200))
        with pytest.raises(errors.ResourceExhausted) as caught:
            c.run_plan(PLAN, plan_date=PLAN_DATE)
        assert caught.value.metadata["resource"] == "result_rows"


def _slow(n: int) -> Rows:
    """One SKU whose ``period`` walk is quadratic: ``n`` requirements on
    distinct days, each looking ahead over all later ones (about 30 s of
    engine time for 30,000), all inside one netting level."""
    return {
        **WAREHOUSE,
        "coverage_groups": [
            {
                "group_id": "G",
                "coverage_code": "period",
                "coverage_period_days": 36_500,
                "coverage_time_fence_days": 36_500,
                "positive_days": 0,
            }
        ],
        "items": [{"item_id": "A", "coverage_group_id": "G"}],
        "sales_lines": [
            {
                **_sales("A", 1, f"S{i:05d}"),
                "requested_date": (PLAN_DATE + dt.timedelta(days=1 + i)).isoformat(),
            }
            for i in range(n)
        ],
    }


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_engine_seconds_stop_a_run_inside_its_walk(serve) -> None:  # type: ignore[no-untyped-def]
    srv = serve("--max-engine-seconds", "1")
    with _client(srv) as c:
        _upload(c, _slow(30_000))
        start = time.monotonic()
        with pytest.raises(errors.ResourceExhausted) as caught:
            c.run_plan(PLAN, plan_date=PLAN_DATE)
        assert time.monotonic() - start < 15
        assert caught.value.metadata["resource"] == "engine_seconds"
        # The walk stopped too: the server spends no more CPU on the run.
        time.sleep(0.5)
        before = _cpu_seconds(srv.proc.pid)
        time.sleep(2)
        assert _cpu_seconds(srv.proc.pid) - before < 1
        (run,) = c.list_runs(PLAN)
        assert run.state == FAILED and "engine_seconds" in run.error


def test_an_overflowing_explosion_fails_instead_of_emitting_inf(serve) -> None:  # type: ignore[no-untyped-def]
    names = [f"L{i:02d}" for i in range(31)]
    rows: Rows = {
        **WAREHOUSE,
        "items": [
            {"item_id": n, "default_order_type": "production" if i < 30 else "purchase"}
            for i, n in enumerate(names)
        ],
        "boms": [{"bom_id": f"B{n}", "item_id": n} for n in names[:-1]],
        "bom_lines": [
            {"bom_id": f"B{n}", "line_no": 1, "component_item_id": k, "qty_per": 1e12}
            for n, k in itertools.pairwise(names)
        ],
        "sales_lines": [_sales("L00", 1e12)],
    }
    srv = serve()
    with _client(srv) as c:
        _upload(c, rows)
        with pytest.raises(errors.InvalidArgument, match="overflows"):
            c.run_plan(PLAN, plan_date=PLAN_DATE)


def _many_orders(n: int, each: int = 1) -> Rows:
    """``n`` sales lines, each split into ``each`` orders: results much
    larger than the data set when ``each`` is large."""
    return {
        **WAREHOUSE,
        "items": [{"item_id": "A", "max_order_qty": 1}],
        "sales_lines": [_sales("A", each, f"S{i:05d}") for i in range(n)],
    }


def test_a_memory_quota_hit_at_the_end_keeps_the_previous_results(serve) -> None:  # type: ignore[no-untyped-def]
    small, large = _many_orders(2), _many_orders(100, each=100)
    # How much the tenant holds with the large data set (as the server counts
    # it) and its results (as the engine makes them): one byte more than the
    # quota.
    probe = serve()
    with _client(probe) as c:
        dataset_bytes = _upload(c, large)
    probe.stop()
    result = plan(_tables(large), PlanParams(PLAN_DATE))
    results_bytes = sum(table_nbytes(t) for t in result.tables.values())

    srv = serve("--max-memory-bytes", str(dataset_bytes + results_bytes - 1))
    with _client(srv) as c:
        _upload(c, small)
        first = c.run_plan(PLAN, plan_date=PLAN_DATE, run_id="first")
        assert first.run.state == SUCCEEDED
        _upload(c, large)  # fits: the small run's results are small
        with pytest.raises(errors.ResourceExhausted) as caught:
            c.run_plan(PLAN, plan_date=PLAN_DATE, run_id="second")
        assert caught.value.metadata["resource"] == "memory_bytes"
        second = c.get_run(f"{PLAN}/runs/second")
        assert second.state == FAILED and "memory_bytes" in second.error
        # The previous run's results are whole: its pegging still answers.
        tree = c.get_pegging(f"{PLAN}/runs/first", ref="SO:S00000/1")
        assert tree.ByteSize() > 0
        assert c.get_run(f"{PLAN}/runs/first").state == SUCCEEDED


def test_a_trimmed_run_id_stays_taken(serve) -> None:  # type: ignore[no-untyped-def]
    srv = serve()
    with _client(srv) as c:
        _upload(c, _many_orders(1))
        c.run_plan(PLAN, plan_date=PLAN_DATE, run_id="again")
        for i in range(21):
            c.run_plan(PLAN, plan_date=PLAN_DATE, run_id=f"newer-{i}")
        assert "again" not in [r.name.rsplit("/", 1)[-1] for r in c.list_runs(PLAN)]
        with pytest.raises(errors.AlreadyExists):
            c.run_plan(PLAN, plan_date=PLAN_DATE, run_id="again")
