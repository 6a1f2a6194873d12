"""Netting levels walked over partitions of their SKUs (SPEC §2 scale-out).

A data set that is one cluster is planned whole, but each netting level's
SKUs are walked in runs on an executor, their results joined before the
level's planned orders are exploded. The plan must be the inline plan row
for row, in the same order: the property test plans random models inline
and split (on threads, and through pickle as a process pool's tasks go),
with every level split however small; the worked examples and the
benchmark's one-cluster model the same way. Also pinned: how a level is cut
into runs, the planned-order limit over the runs together, and a stop.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.generate import DEFAULT_PLAN_DATE, generate_tables
from masterplan.contract.columns import Table
from masterplan.contract.rows import to_rows
from masterplan.contract.tables import PLAN_OUTPUT_TABLES, RESULT_TABLES
from masterplan.server.engine import InvalidPlanInput, PlanParams, PlanTooLarge, levelsplit, plan
from masterplan.server.engine.kernels import net_level
from masterplan.server.engine.levelsplit import LevelSplit, cut_runs
from masterplan.server.engine.partition import split
from masterplan.server.engine.partitioned import plan_partitioned
from masterplan.server.engine.types import RunStopped
from tests.differential.strategies import models
from tests.engine.test_netting import settings_of
from tests.engine.test_partitioned import EXAMPLES, _data, _Pickling, example_input


@pytest.fixture(scope="module")
def threads() -> Iterator[Executor]:
    with ThreadPoolExecutor(3) as pool:
        yield pool


class _Counting(Executor):
    """An executor that hands each task to ``inner`` and counts them."""

    def __init__(self, inner: Executor) -> None:
        self.inner = inner
        self.tasks = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.tasks += 1
        return self.inner.submit(fn, *args, **kwargs)


def _rows(tables: Any) -> dict[str, list[str]]:
    """Every output table's rows, in order, with exact values."""
    return {
        name: [repr(sorted(r.items())) for r in to_rows(tables[name], RESULT_TABLES[name])]
        for name in PLAN_OUTPUT_TABLES
    }


def _outcome(run: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return "plan", _rows(run().tables)
    except (InvalidPlanInput, PlanTooLarge) as error:
        return type(error).__name__, None


def _same_plan(data: dict[str, Table], params: PlanParams, executor: Executor, n: int) -> int:
    """Plans ``data`` inline and with every level walked in up to ``n`` runs
    on ``executor``; asserts the same outcome; returns the runs walked."""
    counting = _Counting(executor)
    inline = _outcome(lambda: plan(data, params))
    walked = _outcome(lambda: plan(data, params, split=LevelSplit(counting, n, min_rows=0)))
    assert walked[0] == inline[0]
    if inline[1] is not None:
        for name in PLAN_OUTPUT_TABLES:
            assert walked[1][name] == inline[1][name], name
    return counting.tasks


@settings(
    max_examples=settings.default.max_examples * 2,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    deadline=None,
)
@given(models())
def test_a_plan_walked_in_runs_is_the_inline_plan(threads: Executor, model: Any) -> None:
    rows, plan_date, group = model
    data = _data(rows)
    params = PlanParams(dt.date.fromisoformat(plan_date), group)
    _same_plan(data, params, threads, 3)
    _same_plan(data, params, _Pickling(), 2)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_worked_examples_walked_in_runs(threads: Executor, path: Path) -> None:
    data, params = example_input(path)
    _same_plan(data, params, threads, 4)


@pytest.fixture(scope="module")
def one_cluster() -> dict[str, Table]:
    return generate_tables(3000, seed=5)


def test_the_benchmark_model_walked_in_runs(threads: Executor, one_cluster: Any) -> None:
    assert len(split(one_cluster, 2).parts) == 1 or split(one_cluster, 2).largest > 0.8
    tasks = _same_plan(one_cluster, PlanParams(DEFAULT_PLAN_DATE), threads, 3)
    assert tasks >= 2 * 3  # the levels were walked in runs, not whole


def test_an_unbalanced_data_set_is_walked_in_runs_on_the_executor(
    threads: Executor, one_cluster: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``plan_partitioned`` of a data set that does not cut into balanced
    partitions plans it whole, its levels in runs on the executor."""
    monkeypatch.setattr(levelsplit, "MIN_SPLIT_ROWS", 0)
    counting = _Counting(threads)
    params = PlanParams(DEFAULT_PLAN_DATE)
    result = plan_partitioned(one_cluster, params, counting, 2)
    assert "partitions" not in result.phase_seconds
    assert counting.tasks >= 2
    assert _rows(result.tables) == _rows(plan(one_cluster, params).tables)


def test_small_levels_are_walked_whole(threads: Executor, one_cluster: Any) -> None:
    counting = _Counting(threads)
    plan(one_cluster, PlanParams(DEFAULT_PLAN_DATE), split=LevelSplit(counting, 2))
    assert counting.tasks == 0  # no level of 3000 SKUs has MIN_SPLIT_ROWS rows


@given(
    st.lists(st.integers(0, 50), min_size=1, max_size=60),
    st.lists(st.integers(0, 50), min_size=1, max_size=60),
    st.integers(1, 8),
)
def test_a_level_is_cut_into_runs_of_about_equal_work(
    reqs: list[int], recs: list[int], pieces: int
) -> None:
    n = min(len(reqs), len(recs))
    req_ptr = np.r_[0, np.cumsum(reqs[:n])]
    rec_ptr = np.r_[0, np.cumsum(recs[:n])]
    bounds = cut_runs(req_ptr, rec_ptr, pieces)
    assert bounds[0] == 0 and bounds[-1] == n
    assert (np.diff(bounds) > 0).all()  # every run holds a SKU
    assert len(bounds) - 1 <= pieces
    work = np.diff(req_ptr + rec_ptr + np.arange(n + 1))
    run_work = np.add.reduceat(work, bounds[:-1])
    # No run holds more than its share and one SKU beyond it.
    assert run_work.max() <= work.sum() / pieces + work.max()


def test_the_planned_order_limit_counts_every_run(threads: Executor, one_cluster: Any) -> None:
    """Each run stays within the limit, the level's runs together pass it:
    the run fails as the inline run does."""
    free = plan(one_cluster, PlanParams(DEFAULT_PLAN_DATE))
    made = int((np.asarray(free.tables["planned_orders"]["firmed"]) == 0).sum())
    params = PlanParams(DEFAULT_PLAN_DATE, max_planned_orders=made - 1)
    with pytest.raises(PlanTooLarge):
        plan(one_cluster, params)
    with pytest.raises(PlanTooLarge) as raised:
        plan(one_cluster, params, split=LevelSplit(threads, 3, min_rows=0))
    assert raised.value.resource == "planned_orders"
    assert raised.value.requested > made - 1


def test_a_stopped_run_stops_inside_a_level_walked_in_runs(
    threads: Executor, one_cluster: Any
) -> None:
    """The stop flag reaches every run's walk (they share it on threads)."""
    stop = np.zeros(1, dtype=np.int8)
    params = PlanParams(DEFAULT_PLAN_DATE, stop=stop)

    def stop_at_netting(phase: str, fraction: float) -> None:
        if phase == "netting":
            stop[0] = 1

    with pytest.raises(RunStopped):
        plan(one_cluster, params, stop_at_netting, split=LevelSplit(threads, 3, min_rows=0))


def _level(seed: int, n: int) -> tuple[Any, ...]:
    """A random level of ``n`` SKUs: requirements and receipts in walk and
    receipt order, and settings of every coverage code."""
    rng = np.random.default_rng(seed)
    reqs, recs = rng.integers(0, 6, n), rng.integers(0, 3, n)
    req_ptr, rec_ptr = np.r_[0, np.cumsum(reqs)], np.r_[0, np.cumsum(recs)]
    req_date = np.concatenate([np.sort(rng.integers(0, 40, k)) for k in reqs])
    rec_date = np.concatenate([np.sort(rng.integers(0, 40, k)) for k in recs])
    req_qty = rng.integers(1, 20, len(req_date)).astype(float)
    rec_qty = rng.integers(1, 20, len(rec_date)).astype(float)
    settings = settings_of(
        n,
        code=rng.integers(0, 3, n),
        period=np.full(n, 7),
        min_qty=rng.choice([0.0, 5.0], n),
        max_qty=rng.choice([0.0, 30.0], n),
        max_oq=rng.choice([0.0, 8.0], n),
        mult=rng.choice([0.0, 3.0], n),
    )
    return 0, req_ptr, req_date, req_qty, rec_ptr, rec_date, rec_qty, settings


@pytest.mark.parametrize("pieces", [2, 3, 7])
@pytest.mark.parametrize("seed", range(5))
def test_a_level_walked_in_runs_gives_the_whole_walk(
    threads: Executor, seed: int, pieces: int
) -> None:
    """Pegging, planned orders and shortfalls, every array equal, with the
    runs' receipt and planned-order numbers shifted to the level's."""
    level = _level(seed, 40)
    whole = net_level(*level)
    runs = LevelSplit(threads, pieces, min_rows=0).net_level(*level, room=10**6)
    assert len(whole.po_qty) > 0 and (whole.peg_src < 0).any() and (whole.peg_src >= 0).any()
    for name in ("peg_req", "peg_src", "peg_qty", "po_sku", "po_date", "po_qty", "shortfall"):
        assert np.array_equal(getattr(runs, name), getattr(whole, name)), name
    assert runs.over == whole.over == 0


def test_a_level_over_the_limit_in_runs_that_are_each_within_it(threads: Executor) -> None:
    """Four SKUs needing an order each, three allowed: every run of one SKU
    is within the limit, the level is not, and says it needs four."""
    one_each = (
        0,
        np.arange(5),
        np.full(4, 3),
        np.full(4, 10.0),
        np.zeros(5, dtype=np.int64),
        np.empty(0, dtype=np.int64),
        np.empty(0),
        settings_of(4),
    )
    assert net_level(*one_each, room=3).over > 0
    runs = LevelSplit(threads, 4, min_rows=0).net_level(*one_each, room=3)
    assert runs.over == 4.0
    assert len(LevelSplit(threads, 4, min_rows=0).net_level(*one_each, room=4).po_qty) == 4
