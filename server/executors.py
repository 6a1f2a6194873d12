"""Where a partitioned plan's tasks run (SPEC §2 scale-out): threads, processes or Dask.

:func:`~masterplan.server.engine.partitioned.plan_partitioned` takes any
:class:`concurrent.futures.Executor`; this module opens the one a
configuration names and says how many partitions suit it:

- ``threads``: a thread pool in this process. No data is copied, but only
  the parts of a plan that hold no GIL (the compiled walk, large numpy
  operations) overlap.
- ``processes``: a process pool on this machine; each partition's data is
  pickled to its worker once, with its task, and its result back.
- ``dask``: the workers of a Dask distributed cluster, through the client's
  executor. Dask schedules the tasks, moves the data, and runs a task again
  elsewhere when its worker is lost (up to its ``allowed-failures``; then
  the run fails with ``KilledWorker`` and no plan).

``distributed`` is imported only for a Dask executor: it is an optional
dependency (``pip install 'masterplan[dask]'``).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

__all__ = ["ExecutorConfig", "open_executor"]

Kind = Literal["threads", "processes", "dask"]


@dataclass(frozen=True, slots=True)
class ExecutorConfig:
    """An executor to open.

    Attributes:
        kind: ``threads``, ``processes`` or ``dask``.
        workers: Threads or processes of a pool (0: one per core); for Dask,
            ignored (the cluster's worker threads count).
        address: The Dask scheduler's address (``tcp://host:8786``).
    """

    kind: Kind = "threads"
    workers: int = 0
    address: str | None = None


@contextmanager
def open_executor(config: ExecutorConfig) -> Iterator[tuple[Executor, int]]:
    """The executor of ``config`` and the partitions to cut a plan into,
    closed (the pool shut down, the Dask client disconnected) on exit."""
    if config.kind == "dask":
        if not config.address:
            raise ValueError("a Dask executor needs the scheduler's address")
        with _dask(config.address) as opened:
            yield opened
        return
    workers = config.workers or os.cpu_count() or 1
    pool: Executor
    if config.kind == "processes":
        # Spawned, not forked: a fork of a process with gRPC's (or any
        # other library's) threads running can deadlock in the child.
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    elif config.kind == "threads":
        pool = ThreadPoolExecutor(workers, thread_name_prefix="masterplan-partition")
    else:
        raise ValueError(f"unknown executor {config.kind!r}: threads, processes or dask")
    with pool:
        yield pool, workers


@contextmanager
def _dask(address: str) -> Iterator[tuple[Executor, int]]:
    try:
        from distributed import Client
    except ImportError as error:  # pragma: no cover - depends on the install
        raise RuntimeError(
            "a Dask executor needs the distributed package: pip install 'masterplan[dask]'"
        ) from error
    with Client(address) as client:
        threads = sum(client.nthreads().values()) or 1
        # pure=False: a partition's tables are not hashed to name its task.
        yield client.get_executor(pure=False), threads
