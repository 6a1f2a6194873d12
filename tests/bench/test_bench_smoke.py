"""Smoke test of the benchmark: ``python -m bench --skus 1000`` runs end to end.

It checks that every phase of the product path ran and moved rows, and that
the synthetic data set makes the engine plan something. No timing assertions:
the figures depend on the machine.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from masterplan.server.memory import _glibc

REPO = Path(__file__).resolve().parents[2]
PHASES = ("read", "upload", "plan", "stream_and_write")


def _bench(out: Path, *args: str) -> dict:
    """Run ``python -m bench --skus 1000 ARGS --out OUT``; the report, checked to
    be both printed and written."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--skus", "1000", *args, "--out", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert json.loads(proc.stdout) == report
    return report


def test_bench_smoke(tmp_path: Path) -> None:
    report = _bench(tmp_path / "report.json")
    assert report["server_release_memory"] is False
    for phase in PHASES:
        assert report["phases"][phase]["rows"] > 0, phase
    assert report["planned_orders"] > 0
    # The snapshot goes as it is read: the two phases share one wall time.
    both = report["phases"]["read_and_upload"]
    assert both["rows"] == report["phases"]["read"]["rows"] == report["phases"]["upload"]["rows"]
    parts = report["phases"]["read"]["seconds"] + report["phases"]["upload"]["seconds"]
    assert abs(parts - both["seconds"]) <= 0.002
    assert report["output_rows"]["planned_orders"] == report["planned_orders"]
    assert report["engine_phase_seconds"]
    assert report["memory"]["server_peak_rss_bytes"] > 0
    assert report["memory"]["connector_peak_rss_bytes"] > 0
    # The plain driver's floor beside the phases that read and write the database.
    for phase in ("read", "stream_and_write"):
        figures = report["phases"][phase]
        assert figures["floor_seconds"] > 0, phase
        # The ratio of the unrounded times, within the rounding of both.
        low = max(figures["seconds"] - 0.0005, 0) / (figures["floor_seconds"] + 0.0005)
        high = (figures["seconds"] + 0.0005) / (figures["floor_seconds"] - 0.0005)
        assert low - 0.005 <= figures["floor_ratio"] <= high + 0.005, phase
    # The write floor commits, as the write does, and says what its commit took.
    write = report["phases"]["stream_and_write"]
    assert 0 < write["floor_commit_seconds"] < write["floor_seconds"]
    assert write["floor_ratio_uncommitted"] >= write["floor_ratio"]
    # SQLite: the floor loads each table before its indexes, as the writer
    # does; the rows inserted into the indexes as they go are quoted beside.
    assert report["backend"] == "sqlite" and write["floor_indexed_seconds"] > 0


def test_bench_rounds_report_the_medians_of_paired_rounds(tmp_path: Path) -> None:
    """``--rounds 3``: each round writes the whole plan into empty result
    tables and measures its floors; every phase is the rounds' median, a
    ratio the median of each round's own, end to end the median of the
    rounds' sums."""
    report = _bench(tmp_path / "report.json", "--rounds", "3")
    rounds = report["rounds"]
    assert len(rounds) == 3
    median = statistics.median
    for phase in PHASES:
        for key in ("seconds", "floor_seconds", "floor_ratio"):
            values = [r["phases"][phase][key] for r in rounds if key in r["phases"][phase]]
            if values:
                assert report["phases"][phase][key] == pytest.approx(median(values)), (phase, key)
    write = report["phases"]["stream_and_write"]
    assert all(r["phases"]["stream_and_write"]["rows"] == write["rows"] for r in rounds)
    assert write["rows"] == sum(report["output_rows"].values()) > 0
    for r in rounds:
        parts = ("read_and_upload", "plan", "stream_and_write")
        total = sum(r["phases"][p]["seconds"] for p in parts)
        assert r["end_to_end_seconds"] == pytest.approx(total, abs=0.002)
        assert r["server_peak_rss_bytes"] > 0
    assert report["end_to_end_seconds"] == pytest.approx(
        median(r["end_to_end_seconds"] for r in rounds), abs=0.002
    )
    assert report["memory"]["server_peak_rss_bytes"] == max(
        r["server_peak_rss_bytes"] for r in rounds
    )


def test_bench_engine_only_repeats_runs_like_a_serving_process(tmp_path: Path) -> None:
    """``--engine-only --runs 3``: every run is listed with its page faults and
    phases, the report's plan time is the warm run's, and memory is kept as
    ``masterplan serve`` keeps it."""
    report = _bench(tmp_path / "report.json", "--engine-only", "--runs", "3")
    runs = report["plan_runs"]
    assert len(runs) == 3
    assert all(r["page_faults"] >= 0 and r["engine_phase_seconds"]["netting"] >= 0 for r in runs)
    assert report["warm_plan_runs"] == 1
    assert report["phases"]["plan"]["seconds"] == runs[2]["seconds"]
    assert report["first_plan_seconds"] == runs[0]["seconds"]
    assert report["phases"]["plan"]["rows"] == sum(report["output_rows"].values()) > 0
    assert report["freed_memory_kept"] is True
    assert report["freed_memory_released"] is False


def test_bench_ceiling_makes_the_same_plan_each_way_it_times(tmp_path: Path) -> None:
    """``--engine-only --ceiling``: the bound on what the cores give is the
    same plan made in sequence, side by side in processes and on threads;
    every one of them must have made the whole plan, or the speed-ups
    compare different work."""
    report = _bench(
        tmp_path / "ceiling.json", "--engine-only", "--ceiling", "--workers", "2", "--runs", "3"
    )
    assert report["mode"] == "ceiling" and report["workers"] == 2
    rows = report["result_rows"]
    assert len(rows["sequential"]) == len(rows["processes"]) == len(rows["threads"]) == 6
    assert len({*rows["sequential"], *rows["processes"], *rows["threads"]}) == 1
    assert rows["sequential"][0] > 0
    rounds = report["rounds"]
    assert len(rounds) == 3
    for way in ("processes", "threads"):
        for r in rounds:
            # Taken before the seconds are rounded to milliseconds (a
            # 1k-SKU plan takes a few of them).
            assert r[f"{way}_speedup"] == pytest.approx(
                r["sequential_seconds"] / r[f"{way}_seconds"], rel=0.1
            )
        assert report[f"{way}_speedup"] == statistics.median(r[f"{way}_speedup"] for r in rounds)


def test_bench_release_memory_gives_freed_memory_back_in_both_modes(tmp_path: Path) -> None:
    """``--release-memory``: the engine-only process sets the allocator as
    ``masterplan serve --release-memory`` does, and the full cycle starts its
    server with that option (the cycle still writes the whole plan)."""
    engine = _bench(tmp_path / "engine.json", "--engine-only", "--runs", "1", "--release-memory")
    assert engine["freed_memory_kept"] is False
    assert engine["freed_memory_released"] is (_glibc() is not None)
    full = _bench(tmp_path / "full.json", "--release-memory")
    assert full["server_release_memory"] is True
    assert full["phases"]["stream_and_write"]["rows"] == sum(full["output_rows"].values()) > 0


def test_bench_scale_out_compares_partitioned_runs_with_inline_ones(tmp_path: Path) -> None:
    """``--clusters 2 --workers 2 --executor threads,processes --dask local``:
    two product families, cut into two partitions and planned on two threads,
    two processes and a two-worker LocalCluster the benchmark starts; each
    speed-up is the warm time of the inline runs made between that
    executor's runs over its own."""
    report = _bench(
        tmp_path / "report.json",
        "--engine-only",
        "--runs",
        "3",
        "--clusters",
        "2",
        "--workers",
        "2",
        "--executor",
        "threads,processes",
        "--dask",
        "local",
    )
    entries = report["scale_out"]
    assert [e["executor"] for e in entries] == ["threads", "processes", "dask"]
    assert entries[2]["address"].startswith("tcp://")
    for scale in entries:
        assert scale["workers"] == 2
        assert scale["clusters"] >= 2 and scale["partitions"] == 2
        assert len(scale["partition_rows"]) == 2 and min(scale["partition_rows"]) > 0
        assert len(scale["runs"]) == len(scale["inline_runs"]) == 3
        warm = scale["runs"][2]["seconds"]
        assert scale["partitioned_seconds"] == warm
        assert scale["inline_seconds"] == scale["inline_runs"][2]["seconds"]
        assert abs(scale["speedup"] - scale["inline_seconds"] / warm) < 0.02
        assert scale["split_by"] == "clusters"
        assert scale["phases"]["netting"]["partitioned_seconds"] > 0
        assert {"split", "partitions", "join"} <= set(scale["phases"])


def test_bench_scale_out_of_one_cluster_walks_its_levels(tmp_path: Path) -> None:
    """The benchmark's own model is one cluster: no cut into partitions is
    made, and the report says the runs were split by levels."""
    report = _bench(tmp_path / "report.json", "--engine-only", "--runs", "1", "--workers", "2")
    (scale,) = report["scale_out"]
    assert scale["split_by"] == "levels" and scale["largest_cluster_share"] > 0.8
    assert "partitions" not in scale["phases"] and "split" in scale["phases"]
    assert scale["inline_seconds"] > 0 and scale["partitioned_seconds"] > 0


def test_bench_rejects_an_unknown_executor(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--skus",
            "10",
            "--engine-only",
            "--workers",
            "2",
            "--executor",
            "threads,gpu",
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "not threads or processes: gpu" in proc.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rounds", "0"], "--rounds must be at least 1"),
        (["--rounds", "2", "--engine-only"], "--rounds repeats the full cycle"),
        (["--rounds", "3", "--embedded"], "--rounds repeats the full cycle"),
        (["--ceiling"], "--ceiling plans in process: it needs --engine-only"),
    ],
)
def test_bench_refuses_rounds_it_would_not_run(args: list[str], message: str) -> None:
    """``--rounds`` is the full cycle's: elsewhere it would be silently
    ignored, and a report would claim medians it does not hold."""
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--skus", "10", *args],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and message in proc.stderr


def test_bench_net_change_reports_every_cycle_and_the_median(tmp_path: Path) -> None:
    """``--net-change``: five net changes after the regeneration, each a
    delta of one row written as a difference; the speedup is the
    regeneration's engine time over the median net change's."""
    report = _bench(tmp_path / "report.json", "--net-change", "--promise-calls", "3")
    changes = report["net_changes"]
    assert len(changes) == 5
    for change in changes:
        assert change["sync"]["kind"] == "delta"
        assert change["sync"]["rows_upserted"] == 1
        assert change["fallback_reason"] == ""
        assert change["written_as"] == "difference"
        assert 0 < change["skus_planned"] < change["skus_total"]
    median = sorted(c["engine_seconds"] for c in changes)[2]
    assert report["engine_seconds_median"] == median
    assert report["engine_speedup"] == round(report["regeneration"]["engine_seconds"] / median, 2)
    assert report["net_change"] in changes
    assert report["promise"]["calls"] == 3


def test_bench_net_change_after_a_plan_made_over_partitions(tmp_path: Path) -> None:
    """``--net-change --clusters 2 --workers 2``: the server plans the
    regeneration over partitions, and every net change reuses it."""
    report = _bench(
        tmp_path / "report.json",
        "--net-change",
        "--promise-calls",
        "1",
        "--clusters",
        "2",
        "--workers",
        "2",
    )
    assert report["serve_options"] == ["--workers", "2", "--executor", "threads"]
    phases = report["regeneration"]["engine_phase_seconds"]
    assert phases["partitions"] > 0
    # The engine's time is the cut, the tasks and the join; the per-phase
    # figures are the slowest partition's, inside the tasks' time.
    assert report["regeneration"]["engine_seconds"] == pytest.approx(
        phases["split"] + phases["partitions"] + phases["join"], abs=0.002
    )
    for change in report["net_changes"]:
        assert change["fallback_reason"] == ""
        assert 0 < change["skus_planned"] < change["skus_total"]
        assert "partitions" not in change["engine_phase_seconds"]
