"""The scale-out section of the engine-only benchmark: its peak memory is
the runs' own, not the report's bookkeeping."""

from __future__ import annotations

import weakref
from typing import Any

import pytest

import masterplan.server.engine as engine
import masterplan.server.engine.partition as partition
import masterplan.server.engine.partitioned  # noqa: F401  (binds the real split and plan first)
from bench.generate import DEFAULT_PLAN_DATE, generate_clusters
from bench.run import _scale_out
from masterplan.server.executors import ExecutorConfig


def test_the_cut_described_in_the_report_is_not_held_through_the_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The report describes the cut (clusters, rows per partition) from a
    cut of its own, whose partitions copy the data set: held while the runs
    plan, it put a tenth on the peak per SKU the report gives (1M SKUs).
    Each run must find those copies gone."""
    tables = generate_clusters(400, 2, 7, DEFAULT_PLAN_DATE)
    originals = {id(column) for table in tables.values() for column in table.values()}
    copies: list[weakref.ref[Any]] = []
    real_split, real_plan = partition.split, engine.plan

    def recording_split(*args: Any, **kwargs: Any) -> Any:
        cut = real_split(*args, **kwargs)
        for part in cut.parts:
            for table in part.values():
                copies.extend(weakref.ref(c) for c in table.values() if id(c) not in originals)
        return cut

    alive_at_runs: list[int] = []

    def checked_plan(*args: Any, **kwargs: Any) -> Any:
        alive_at_runs.append(sum(ref() is not None for ref in copies))
        return real_plan(*args, **kwargs)

    monkeypatch.setattr(partition, "split", recording_split)
    monkeypatch.setattr(engine, "plan", checked_plan)
    report = _scale_out(tables, DEFAULT_PLAN_DATE, 1, ExecutorConfig("threads", 2), 800)

    assert copies, "the report's cut was not made"
    assert report["partitions"] == 2 and min(report["partition_rows"]) > 0
    assert report["split_by"] == "clusters"
    assert alive_at_runs == [0]
