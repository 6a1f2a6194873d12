"""What the machine's cores give at most: whole plans side by side.

A partitioned run can at best plan its partitions as fast as the same
number of independent plans run side by side, with nothing to cut, ship,
exchange or join. This measures that bound for ``workers`` cores
(``python -m bench --engine-only --ceiling``): the same data set planned
``workers`` times one after the other in one process, then once in each of
``workers`` processes started together, then on ``workers`` threads of one
process, in each of several rounds. The speed-ups are throughputs against
the plans in sequence of the same round; the report gives their medians.

Processes show what the cores and the memory they share allow; threads,
what the GIL leaves of that (the phases that hold it run one at a time).
Each process generates its own copy of the data set, loads the kernels and
plans once untimed, as the parent did, before all start together.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import time
from concurrent.futures import ThreadPoolExecutor
from statistics import median
from typing import Any

from bench.generate import generate_tables

__all__ = ["measure_ceiling"]


def _plan_seconds(tables: Any, plan_date: dt.date) -> tuple[float, int]:
    """Seconds one plan of ``tables`` took, and its result rows."""
    from masterplan.server.engine import PlanParams, plan

    start = time.perf_counter()
    result = plan(tables, PlanParams(plan_date))
    return time.perf_counter() - start, sum(result.row_counts().values())


def _ready(n_skus: int, seed: int, plan_date: dt.date, dense: bool, keep_memory: bool) -> Any:
    """The data set, with the kernels loaded and one plan made untimed (as
    a serving process that has planned before)."""
    from masterplan.server.engine import warm_up
    from masterplan.server.memory import keep_freed_memory

    if keep_memory:
        keep_freed_memory()
    warm_up()
    tables = generate_tables(n_skus, seed, plan_date, dense)
    _plan_seconds(tables, plan_date)
    return tables


def _side_by_side(
    n_skus: int,
    seed: int,
    plan_date: dt.date,
    dense: bool,
    keep_memory: bool,
    rounds: int,
    start: Any,
    out: Any,
) -> None:
    """One process of the side-by-side plans: ready (then waits for the
    others, and the parent), then in each round waits for them again, plans
    once, and reports the seconds and rows."""
    tables = _ready(n_skus, seed, plan_date, dense, keep_memory)
    start.wait()
    for _ in range(rounds):
        start.wait()
        out.put(_plan_seconds(tables, plan_date))


def measure_ceiling(
    n_skus: int,
    seed: int,
    plan_date: dt.date,
    workers: int = 2,
    dense: bool = False,
    keep_memory: bool = True,
    rounds: int = 3,
) -> dict[str, Any]:
    """``workers`` whole plans in sequence, in processes and on threads,
    each way once a round, ``rounds`` rounds.

    Returns each round's wall seconds per way and speed-ups against that
    round's sequence, their medians, and each plan's result rows (the same
    in every way: the same plan was made). The ways alternate within a
    round, so that a slower minute of a shared machine falls on all three
    rather than on one.
    """
    tables = _ready(n_skus, seed, plan_date, dense, keep_memory)
    context = mp.get_context("spawn")
    start = context.Barrier(workers + 1)
    out = context.Queue()
    procs = [
        context.Process(
            target=_side_by_side,
            args=(n_skus, seed, plan_date, dense, keep_memory, rounds, start, out),
        )
        for _ in range(workers)
    ]
    for proc in procs:
        proc.start()
    # The first sequence once every process is ready: one that still
    # generates its data set would slow it down.
    start.wait()
    listed: list[dict[str, Any]] = []
    rows: dict[str, list[int]] = {"sequential": [], "processes": [], "threads": []}
    try:
        with ThreadPoolExecutor(workers) as pool:
            for _ in range(rounds):
                sequence = [_plan_seconds(tables, plan_date) for _ in range(workers)]
                start.wait()
                began = time.perf_counter()
                in_processes = [out.get() for _ in procs]
                processes = time.perf_counter() - began
                began = time.perf_counter()
                on_threads = list(
                    pool.map(lambda _: _plan_seconds(tables, plan_date), range(workers))
                )
                threads = time.perf_counter() - began
                sequential = sum(seconds for seconds, _ in sequence)
                listed.append(
                    {
                        "sequential_seconds": round(sequential, 3),
                        "processes_seconds": round(processes, 3),
                        "processes_speedup": round(sequential / processes, 2),
                        "threads_seconds": round(threads, 3),
                        "threads_speedup": round(sequential / threads, 2),
                    }
                )
                for way, made in (
                    ("sequential", sequence),
                    ("processes", in_processes),
                    ("threads", on_threads),
                ):
                    rows[way].extend(r for _, r in made)
    finally:
        for proc in procs:
            proc.join()
    return {
        "workers": workers,
        **{key: median(r[key] for r in listed) for key in listed[0]},
        "rounds": listed,
        "result_rows": rows,
    }
