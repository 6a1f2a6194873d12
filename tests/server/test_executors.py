"""Partitioned plans on every executor (SPEC §2): a thread pool, a process
pool and a Dask ``LocalCluster`` of two worker processes give the inline
plan, table by table; a Dask worker killed while it plans a partition costs
the run a retry elsewhere, not a row; a cluster that loses more workers than
Dask allows fails the run with no plan."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from bench.generate import DEFAULT_PLAN_DATE, generate_clusters
from masterplan.contract.columns import Table
from masterplan.server.engine import PlanParams, plan
from masterplan.server.engine.partition import split
from masterplan.server.engine.partitioned import plan_partitioned
from masterplan.server.executors import ExecutorConfig, open_executor
from tests.engine.test_partitioned import _canonical

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
