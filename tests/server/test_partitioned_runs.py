"""A server that plans over partitions (``masterplan serve --workers N``,
``--executor processes``, ``--dask ADDR``; SPEC §2): a regeneration of a data
set of several product families is planned over them and streams exactly
the inline server's plan; the next net change reuses it, re-planning only
what its change reaches; a data set of one cluster is planned whole, each
netting level walked in runs on the workers, with its basis."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench.generate import DEFAULT_PLAN_DATE, generate_clusters, generate_tables
from masterplan.client.client import MasterplanClient
from masterplan.contract.columns import Table
from masterplan.server.app import start_server
from masterplan.server.config import ServerConfig
from masterplan.server.engine import PlanParams, levelsplit, plan
from masterplan.tenancy.keys import AdminCredential
from tests.engine.test_partitioned import _canonical

PARENT = "tenants/acme/plans/main"


@contextmanager
def _server(tmp_path: Path, **config: Any) -> Iterator[MasterplanClient]:
    admin_key = secrets.token_urlsafe(24)
    running = start_server(
        ServerConfig(
            port=0,
            registry_url=f"sqlite:///{tmp_path / secrets.token_hex(4)}.db",
            grace_seconds=1,
            **config,
        ),
        AdminCredential.from_key(admin_key),
    )
    try:
        assert running.warmed_up.wait(60)
        with MasterplanClient(running.address, admin_key) as admin:
            key = admin.install_tenant("acme").api_key
        with MasterplanClient(running.address, key) as client:
            yield client
    finally:
        running.stop(grace=1)


def _plan(client: MasterplanClient, data: dict[str, Table], mode: str = "regeneration") -> Any:
    client.upload(PARENT, data.items())
    return client.run_plan(PARENT, plan_date=DEFAULT_PLAN_DATE, mode=mode)


@pytest.fixture(scope="module")
def families() -> dict[str, Table]:
    return generate_clusters(6000, 3, seed=11)


@pytest.fixture(scope="module")
def inline_plan(families: dict[str, Table], tmp_path_factory: pytest.TempPathFactory) -> Any:
    with _server(tmp_path_factory.mktemp("inline")) as client:
        outcome = _plan(client, families)
    assert "partitions" not in outcome.run.phase_seconds
    return _canonical(outcome.tables)


@pytest.mark.parametrize("executor", ["threads", "processes"])
def test_workers_plan_the_families_apart_and_stream_the_inline_plan(
    tmp_path: Path, families: dict[str, Table], inline_plan: Any, executor: str
) -> None:
    with _server(tmp_path, plan_workers=3, plan_executor=executor) as client:
        first = _plan(client, families)
        assert first.run.phase_seconds["partitions"] > 0
        # The cut is part of the run's time, and reported with it.
        assert first.run.phase_seconds["split"] > 0
        assert _canonical(first.tables) == inline_plan
        # One sales line more: the net change reuses the plan made over the
        # partitions, and re-plans only what the line reaches.
        changed = _one_more_sales_line(families)
        again = _plan(client, changed, mode="net_change")
    assert again.run.fallback_reason == ""
    assert "partitions" not in again.run.phase_seconds
    assert 0 < again.run.skus_planned < first.run.skus_planned // 10
    assert _canonical(again.tables) == _canonical(
        plan(changed, PlanParams(DEFAULT_PLAN_DATE)).tables
    )


def _one_more_sales_line(data: dict[str, Table]) -> dict[str, Table]:
    """``data`` with its first sales line repeated under a new order id and a large quantity."""
    lines = data["sales_lines"]
    extra = {col: values[:1].copy() for col, values in lines.items()}
    extra["order_id"][0] = "SO-NEW"
    extra["qty"][0] = 5000.0
    return {**data, "sales_lines": {c: np.concatenate([v, extra[c]]) for c, v in lines.items()}}


def test_one_cluster_is_planned_whole_its_levels_in_runs_and_keeps_its_basis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No cut into partitions (one cluster holds most rows): each netting
    level's SKUs are walked in runs on the workers, and the plan is the
    inline plan, with its basis for the next net change."""
    data = generate_tables(2000, seed=3)
    monkeypatch.setattr(levelsplit, "MIN_SPLIT_ROWS", 0)  # split however small
    walked: list[int] = []
    real = levelsplit.net_level

    def counted(*args: Any, **kwargs: Any) -> Any:
        walked.append(len(args[1]) - 1)  # the run's SKUs
        return real(*args, **kwargs)

    monkeypatch.setattr(levelsplit, "net_level", counted)
    with _server(tmp_path, plan_workers=2) as client:
        first = _plan(client, data)
        assert "partitions" not in first.run.phase_seconds
        assert first.run.phase_seconds["split"] > 0  # the cut that found it lopsided
        assert len(walked) > 2 and sum(walked) > 0
        changed = client.run_plan(PARENT, plan_date=DEFAULT_PLAN_DATE, mode="net_change")
        assert changed.run.fallback_reason == ""
        # Master data changed: the net change falls back to a regeneration,
        # walked in runs on the same workers.
        walked.clear()
        longer = _longer_lead_time(data)
        fallback = _plan(client, longer, mode="net_change")
    assert "master data" in fallback.run.fallback_reason
    assert len(walked) > 2 and sum(walked) > 0
    assert _canonical(first.tables) == _canonical(plan(data, PlanParams(DEFAULT_PLAN_DATE)).tables)
    assert _canonical(fallback.tables) == _canonical(
        plan(longer, PlanParams(DEFAULT_PLAN_DATE)).tables
    )


def _longer_lead_time(data: dict[str, Table]) -> dict[str, Table]:
    """``data`` with its first item's lead time one day longer."""
    items = {col: values.copy() for col, values in data["items"].items()}
    items["lead_time_days"][0] = items["lead_time_days"][0] + 1
    return {**data, "items": items}


def test_a_dask_cluster_plans_the_partitions(
    tmp_path: Path, families: dict[str, Table], inline_plan: Any
) -> None:
    distributed = pytest.importorskip("distributed", reason="the dask extra is not installed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        _server(tmp_path, dask_address=cluster.scheduler_address) as client,
    ):
        outcome = _plan(client, families)
    assert outcome.run.phase_seconds["partitions"] > 0
    assert _canonical(outcome.tables) == inline_plan


def test_an_unreachable_dask_scheduler_stops_the_start(tmp_path: Path) -> None:
    """Dask's connect timeout (30 s by default) is shortened: the start must
    fail the same way, sooner."""
    dask = pytest.importorskip("dask", reason="the dask extra is not installed")
    with (
        dask.config.set({"distributed.comm.timeouts.connect": "2s"}),
        pytest.raises(OSError),
        _server(tmp_path, dask_address="tcp://127.0.0.1:9"),
    ):
        pass


def test_a_failed_run_on_partitions_leaves_the_previous_plan(tmp_path: Path) -> None:
    """Every partition refuses an unknown default group: the run fails with
    the engine's error, and the previous run stays the plan's newest."""
    from masterplan.client import errors
    from masterplan.v1 import planning_pb2

    data = generate_clusters(3000, 3, seed=2)
    with _server(tmp_path, plan_workers=3) as client:
        ok = _plan(client, data)
        assert ok.run.phase_seconds["partitions"] > 0
        with pytest.raises(errors.MasterplanClientError, match="NOSUCH"):
            client.run_plan(PARENT, plan_date=DEFAULT_PLAN_DATE, default_group="NOSUCH")
        runs = {r.name: r for r in client.list_runs(PARENT)}
        newest = client.newest_succeeded_run(PARENT)
    failed = [r for r in runs.values() if r.state == planning_pb2.PlanRun.FAILED]
    assert len(failed) == 1 and "NOSUCH" in failed[0].error
    assert newest is not None and newest.name == ok.run.name
