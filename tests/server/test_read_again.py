"""A dropped RunPlan stream is no lost run: the kept results are read again (SPEC §3)."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from masterplan.client import errors
from masterplan.client.client import MasterplanClient
from masterplan.v1 import planning_pb2
from tests.server.test_run_difference import MAIN, scm, tables, whole

OTHER = "tenants/acme/plans/other"


def settled(c: MasterplanClient, name: str) -> planning_pb2.PlanRun:
    """The run once it no longer runs (a closed stream ends it from another thread)."""
    deadline = time.monotonic() + 10
    while (run := c.get_run(name)).state == planning_pb2.PlanRun.RUNNING:
        assert time.monotonic() < deadline, "the run did not end"
        time.sleep(0.02)
    return run


def test_a_stream_closed_after_the_engine_keeps_the_run_and_its_results(live) -> None:  # type: ignore[no-untyped-def]
    data, t0 = scm()
    with live.client("acme") as c:
        c.upload(MAIN, tables(data))
        c.upload(OTHER, tables(data))
        events = c.run_plan_events(
            planning_pb2.RunPlanRequest(
                parent=MAIN, plan_date=t0.isoformat(), run_id="r1", chunk_rows=1
            )
        )
        for event in events:
            if event.WhichOneof("event") == "result_chunk":
                break
        events.close()  # the stream is gone after its first result row
        run = settled(c, f"{MAIN}/runs/r1")
        assert run.state == planning_pb2.PlanRun.SUCCEEDED
        assert run.results_kept
        again = c.read_run_results(f"{MAIN}/runs/r1")
        # The same data planned by a stream that nobody closed.
        complete = c.run_plan(OTHER, plan_date=t0, run_id="r1")
        assert whole(again) == whole(complete)
        assert sum(len(rows) for rows in whole(again).values()) > 1
        assert not again.is_difference
        assert again.run.rows_added == sum(again.run.row_counts.values())
        assert dict(again.run.row_counts) == dict(complete.run.row_counts)
        # Read as often as needed: the run stays as it was.
        assert whole(c.read_run_results(f"{MAIN}/runs/r1")) == whole(complete)


def test_reading_again_against_the_run_itself_sends_an_empty_difference(live) -> None:  # type: ignore[no-untyped-def]
    data, t0 = scm()
    with live.client("acme") as c:
        c.upload(MAIN, tables(data))
        c.run_plan(MAIN, plan_date=t0, run_id="r1")
        data["sales_lines"][2]["qty"] = 7
        c.upload(MAIN, tables(data))
        second = c.run_plan(MAIN, plan_date=t0, run_id="r2", base_run_id="r1")
        assert second.is_difference
        # r1's results went when r2 succeeded: the whole result, and the summary says so.
        again = c.read_run_results(f"{MAIN}/runs/r2", base_run_id="r1")
        assert not again.is_difference and again.run.base_run_id == ""
        assert again.run.rows_removed == 0
        same = c.read_run_results(f"{MAIN}/runs/r2", base_run_id="r2")
        assert same.is_difference and same.run.base_run_id == "r2"
        assert same.run.rows_added == same.run.rows_removed == 0
        # The run resource itself still says how its own stream went.
        assert c.get_run(f"{MAIN}/runs/r2").base_run_id == "r1"


def test_only_the_newest_succeeded_run_can_be_read_again(live) -> None:  # type: ignore[no-untyped-def]
    data, t0 = scm()
    with live.client("acme") as c:
        c.upload(MAIN, tables(data))
        c.run_plan(MAIN, plan_date=t0, run_id="r1")
        c.run_plan(MAIN, plan_date=t0, run_id="r2")
        assert not c.get_run(f"{MAIN}/runs/r1").results_kept
        with pytest.raises(errors.FailedPrecondition) as err:
            c.read_run_results(f"{MAIN}/runs/r1")
        assert err.value.reason == "NO_RESULTS"
        with pytest.raises(errors.NotFound):
            c.read_run_results(f"{MAIN}/runs/r9")
        with pytest.raises(errors.InvalidArgument):
            c.read_run_results(f"{MAIN}/runs/r2/x")
    with live.client("globex") as other, pytest.raises(errors.PermissionDenied):
        other.read_run_results(f"{MAIN}/runs/r2")


def test_a_lost_stream_is_recovered_by_the_client(live) -> None:  # type: ignore[no-untyped-def]
    data, t0 = scm()
    with live.client("acme") as c:
        c.upload(MAIN, tables(data))
        events = c.run_plan_events(
            planning_pb2.RunPlanRequest(
                parent=MAIN, plan_date=t0.isoformat(), run_id="r1", chunk_rows=1
            )
        )
        next(e for e in events if e.WhichOneof("event") == "result_chunk")
        events.close()
        kept = c.kept_results_after_drop(f"{MAIN}/runs/r1", wait_seconds=5)
        assert kept is not None and kept.run.run_id == "r1"
        assert kept.run.state == planning_pb2.PlanRun.SUCCEEDED
        # A run the server does not hold is no outcome, not an error.
        assert c.kept_results_after_drop(f"{MAIN}/runs/nope", wait_seconds=1) is None


@pytest.mark.parametrize("day", ["9999-12-31", "1800-06-01"])
def test_a_plan_date_whose_plan_no_database_holds_is_refused_before_the_run(  # type: ignore[no-untyped-def]
    live, day: str
) -> None:
    data, _ = scm()
    with live.client("acme") as c:
        c.upload(MAIN, tables(data))
        with pytest.raises(errors.InvalidArgument) as err:
            c.run_plan(MAIN, plan_date=dt.date.fromisoformat(day), run_id="r1")
        assert "plan date" in str(err.value) and "9899-12-31" in str(err.value)
        assert c.list_runs(MAIN) == []
