"""The results header: a client learns what a run's chunks are before the first one.

So that a connector writes each chunk as it arrives, holding one at a time:
the header says whether the chunks are a difference or the whole result and
what they amount to, and a client with a sink hands each chunk over before
it reads the next one. A server too old to send the header still works.
"""

from __future__ import annotations

from collections import Counter

from masterplan.client.client import MasterplanClient
from masterplan.contract.coded import Coded, as_array
from masterplan.contract.columns import Table
from masterplan.contract.tables import PLAN_OUTPUT_TABLES, RESULT_OUTPUT_SPECS, ColumnKind
from masterplan.v1 import planning_pb2
from tests.server.test_run_difference import MAIN, rows, scm, tables, whole


class Sink:
    """The sink protocol over a log, as a connector would implement it."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str]] = []
        self.run: planning_pb2.PlanRun | None = None
        self.got_added: dict[str, Counter[tuple]] = {n: Counter() for n in PLAN_OUTPUT_TABLES}
        self.got_removed: dict[str, Counter[tuple]] = {n: Counter() for n in PLAN_OUTPUT_TABLES}

    def begin(self, run: planning_pb2.PlanRun) -> None:
        self.log.append(("begin", ""))
        self.run = run

    def removed(self, table: str, chunk: Table) -> None:
        self.log.append(("removed", table))
        self.got_removed[table] += rows(chunk, table)

    def added(self, table: str, chunk: Table) -> None:
        self.log.append(("added", table))
        self.got_added[table] += rows(chunk, table)


def test_the_header_comes_before_the_first_chunk_and_is_the_summarys_run(live) -> None:  # type: ignore[no-untyped-def]
    data, t0 = scm()
    with live.client("acme") as c:
        c.upload(MAIN, tables(data))
        events = list(
            c.run_plan_events(
                planning_pb2.RunPlanRequest(parent=MAIN, plan_date=t0.isoformat(), chunk_rows=3)
            )
        )
    kinds = [e.WhichOneof("event") for e in events]
    first_chunk = kinds.index("result_chunk")
    assert kinds.count("results_header") == 1
    assert kinds.index("results_header") == first_chunk - 1
    header, summary = events[first_chunk - 1].results_header.run, events[-1].summary.run
    assert header == summary
    chunks = [e.result_chunk for e in events if e.WhichOneof("event") == "result_chunk"]
    assert header.rows_added == sum(chunk.row_count for chunk in chunks) > 3


def test_a_sink_takes_each_chunk_before_the_next_one_arrives(live) -> None:  # type: ignore[no-untyped-def]
    data, t0 = scm()
    with live.client("acme") as c:
        c.upload(MAIN, tables(data))
        sink = Sink()
        streamed = c.run_plan(
            MAIN,
            plan_date=t0,
            run_id="r1",
            sink=sink,
            chunk_rows=2,
            on_chunk=lambda table, n: sink.log.append(("received", table)),
        )
        # The same data collected whole, for comparison.
        other = "tenants/acme/plans/other"
        c.upload(other, tables(data))
        collected = c.run_plan(other, plan_date=t0, run_id="r1")
    # The outcome holds the run only: the rows went to the sink.
    assert all(not t for t in streamed.tables.values())
    assert sink.run == streamed.run
    assert sink.got_added == whole(collected)
    # The sink is told first, then takes every chunk as it is received.
    assert sink.log[0] == ("begin", "")
    pairs = sink.log[1:]
    assert len(pairs) > 2 * len(PLAN_OUTPUT_TABLES)
    assert pairs[0::2] == [("added", t) for _, t in pairs[1::2]]
    assert pairs[1::2] == [("received", t) for _, t in pairs[0::2]]


class CodedSink(Sink):
    """A sink that takes text as it crosses the wire."""

    accepts_coded_text = True

    def __init__(self) -> None:
        super().__init__()
        self.coded: set[str] = set()

    def added(self, table: str, chunk: Table) -> None:
        self.coded |= {f"{table}.{k}" for k, v in chunk.items() if isinstance(v, Coded)}
        super().added(table, {k: as_array(v) for k, v in chunk.items()})


def test_a_sink_that_takes_coded_text_gets_the_same_rows_coded(live) -> None:  # type: ignore[no-untyped-def]
    data, t0 = scm()
    with live.client("acme") as c:
        c.upload(MAIN, tables(data))
        plain, coded = Sink(), CodedSink()
        c.run_plan(MAIN, plan_date=t0, run_id="r1", sink=plain, chunk_rows=2)
        c.run_plan(MAIN, plan_date=t0, run_id="r2", sink=coded, chunk_rows=2)
    assert coded.got_added == plain.got_added
    text = {
        f"{name}.{c.name}"
        for name in PLAN_OUTPUT_TABLES
        for c in RESULT_OUTPUT_SPECS[name].columns
        if c.kind is ColumnKind.STR and plain.got_added[name]
    }
    assert text and coded.coded == text


def test_a_difference_reaches_the_sink_removed_rows_first(live) -> None:  # type: ignore[no-untyped-def]
    data, t0 = scm()
    with live.client("acme") as c:
        c.upload(MAIN, tables(data))
        base = c.run_plan(MAIN, plan_date=t0, run_id="r1")
        data["sales_lines"][2]["qty"] = 7
        c.upload(MAIN, tables(data))
        sink = Sink()
        c.run_plan(MAIN, plan_date=t0, run_id="r2", base_run_id="r1", sink=sink, chunk_rows=1)
    assert sink.run is not None and sink.run.base_run_id == "r1"
    assert sink.run.rows_removed == sum(sum(c.values()) for c in sink.got_removed.values()) > 0
    assert sink.run.rows_added == sum(sum(c.values()) for c in sink.got_added.values()) > 0
    for name in PLAN_OUTPUT_TABLES:
        kinds = [kind for kind, table in sink.log if table == name]
        assert kinds == sorted(kinds, key=lambda k: k != "removed"), name
    # Applied to the base, the difference is the new plan.
    after = {
        name: whole(base)[name] - sink.got_removed[name] + sink.got_added[name]
        for name in PLAN_OUTPUT_TABLES
    }
    assert sum(sum(c.values()) for c in after.values()) == sum(sink.run.row_counts.values())


def test_a_server_without_the_header_still_fills_the_sink_at_the_end(live) -> None:  # type: ignore[no-untyped-def]
    data, t0 = scm()
    with live.client("acme") as c:
        c.upload(MAIN, tables(data))
        events = c.run_plan_events(
            planning_pb2.RunPlanRequest(parent=MAIN, plan_date=t0.isoformat(), chunk_rows=2)
        )
        # As an older server sends it: no header.
        older = (e for e in events if e.WhichOneof("event") != "results_header")
        sink = Sink()
        outcome = MasterplanClient._collect(older, None, None, sink)
        other = "tenants/acme/plans/other"
        c.upload(other, tables(data))
        collected = c.run_plan(other, plan_date=t0)
    assert sink.log[0] == ("begin", "") and sink.run == outcome.run
    assert sink.got_added == whole(collected)
    # Once per table, at the end, in table order.
    assert [t for kind, t in sink.log[1:]] == list(PLAN_OUTPUT_TABLES)
