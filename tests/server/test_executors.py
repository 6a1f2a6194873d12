"""Partitioned plans on every executor (SPEC §2): a thread pool, a process
pool and a Dask ``LocalCluster`` of two worker processes give the inline
plan, table by table, for the benchmark's model, the worked examples and
random models (``tests/engine/test_partitioned.py`` plans those on threads
and through pickle), and a data set of one cluster with its netting levels
walked in runs on the workers; a Dask worker killed while it plans a
partition costs the run a retry elsewhere, not a row; a cluster that loses
more workers than Dask allows fails the run with no plan."""

from __future__ import annotations

import datetime as dt
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from bench.generate import DEFAULT_PLAN_DATE, generate_clusters, generate_tables
from masterplan.contract.columns import Table
from masterplan.server.engine import PlanParams, levelsplit, plan
from masterplan.server.engine.partition import split
from masterplan.server.engine.partitioned import plan_partitioned
from masterplan.server.executors import ExecutorConfig, open_executor
from tests.differential.strategies import models
from tests.engine.test_levelsplit import _Counting, _rows
from tests.engine.test_partitioned import EXAMPLES, _canonical, _data, _same_plan, example_input

distributed = pytest.importorskip("distributed", reason="the dask extra is not installed")


@pytest.fixture(scope="module")
def data() -> dict[str, Table]:
    return generate_clusters(9000, 3, seed=7)


@pytest.fixture(scope="module")
def inline(data: dict[str, Table]) -> Any:
    return _canonical(plan(data, PlanParams(DEFAULT_PLAN_DATE)).tables)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as c:
        yield c


@pytest.fixture(scope="module")
def processes() -> Iterator[Executor]:
    with open_executor(ExecutorConfig("processes", 2)) as (pool, _):
        yield pool


@pytest.fixture(scope="module")
def dask_pool(cluster: Any) -> Iterator[Executor]:
    with open_executor(ExecutorConfig("dask", address=cluster.scheduler_address)) as (pool, _):
        yield pool


def test_the_data_set_has_several_clusters(data: dict[str, Table]) -> None:
    assert len(split(data, 3).parts) == 3


@pytest.mark.parametrize("kind", ["threads", "processes"])
def test_pools_give_the_inline_plan(data: dict[str, Table], inline: Any, kind: str) -> None:
    with open_executor(ExecutorConfig(kind, 2)) as (pool, n):  # type: ignore[arg-type]
        assert n == 2
        result = plan_partitioned(data, PlanParams(DEFAULT_PLAN_DATE), pool, 3)
    assert result.phase_seconds["partitions"] > 0
    assert _canonical(result.tables) == inline


def test_dask_gives_the_inline_plan(data: dict[str, Table], inline: Any, cluster: Any) -> None:
    with open_executor(ExecutorConfig("dask", address=cluster.scheduler_address)) as (pool, n):
        assert n == 2
        result = plan_partitioned(data, PlanParams(DEFAULT_PLAN_DATE), pool, n + 1)
    assert _canonical(result.tables) == inline


@pytest.mark.parametrize("kind", ["processes", "dask_pool"])
def test_one_cluster_walked_in_runs_on_other_processes(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """A data set that is one cluster, its netting levels walked in runs in
    other processes (each run's slices sent with its task): the inline plan,
    row for row and in the same order."""
    monkeypatch.setattr(levelsplit, "MIN_SPLIT_ROWS", 0)
    pool: Executor = request.getfixturevalue(kind)
    one = generate_tables(3000, seed=5)
    params = PlanParams(DEFAULT_PLAN_DATE)
    counting = _Counting(pool)
    walked = plan_partitioned(one, params, counting, 2)
    assert "partitions" not in walked.phase_seconds
    assert counting.tasks >= 2
    assert _rows(walked.tables) == _rows(plan(one, params).tables)


def _kill_a_busy_worker(client: Any, pids: dict[str, int], killed: list[str]) -> None:
    """SIGKILL the first worker seen planning a partition."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for address, tasks in client.processing().items():
            if tasks and address in pids:
                os.kill(pids[address], signal.SIGKILL)
                killed.append(address)
                return
        time.sleep(0.005)


def test_a_killed_dask_worker_costs_a_retry_not_a_row(
    data: dict[str, Table], inline: Any, cluster: Any
) -> None:
    with distributed.Client(cluster) as client:
        pids = client.run(os.getpid)
        killed: list[str] = []
        killer = threading.Thread(target=_kill_a_busy_worker, args=(client, pids, killed))
        with open_executor(ExecutorConfig("dask", address=cluster.scheduler_address)) as (pool, _):
            killer.start()
            result = plan_partitioned(data, PlanParams(DEFAULT_PLAN_DATE), pool, 3)
        killer.join()
    assert killed, "no worker was seen planning"
    assert _canonical(result.tables) == inline


def test_a_run_that_loses_more_workers_than_allowed_fails(data: dict[str, Table]) -> None:
    """With no failure allowed, the killed worker's task fails the run
    (``KilledWorker``): no plan comes back, partial or whole."""
    import dask

    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 0}),
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as strict,
        distributed.Client(strict) as client,
    ):
        pids = client.run(os.getpid)
        killed: list[str] = []
        killer = threading.Thread(target=_kill_a_busy_worker, args=(client, pids, killed))
        with open_executor(ExecutorConfig("dask", address=strict.scheduler_address)) as (pool, _):
            killer.start()
            with pytest.raises(distributed.KilledWorker):
                plan_partitioned(data, PlanParams(DEFAULT_PLAN_DATE), pool, 3)
        killer.join()
    assert killed


@pytest.mark.parametrize("kind", ["processes", "dask_pool"])
@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_worked_examples_on_other_processes(
    request: pytest.FixtureRequest, kind: str, path: Path
) -> None:
    """Each worked example, cut into every cluster it holds, planned in
    other processes: their input goes packed and their result comes back
    packed (through a spill file from a process pool, through Dask's
    transfer from its workers)."""
    pool: Executor = request.getfixturevalue(kind)
    data, params = example_input(path)
    _same_plan(data, params, pool, 4)


@settings(
    max_examples=max(10, settings.default.max_examples // 10),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    deadline=None,
)
@given(models())
def test_random_models_on_other_processes(
    processes: Executor, dask_pool: Executor, model: Any
) -> None:
    rows, plan_date, group = model
    data = _data(rows)
    params = PlanParams(dt.date.fromisoformat(plan_date), group)
    _same_plan(data, params, processes, 2)
    _same_plan(data, params, dask_pool, 3)
