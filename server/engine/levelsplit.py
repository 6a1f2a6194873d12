"""One netting level walked over partitions of its SKUs (SPEC §2 scale-out).

A data set that is one connected cluster (as real data with shared raw
materials usually is) cannot be cut into independent partitions
(:mod:`.partition`). Its levels can: the SKUs of one low-level code depend
only on the requirements the levels above them caused, so a level's SKUs are
cut into contiguous runs, each walked by the compiled walk
(:func:`~masterplan.server.engine.kernels.net_level`) as one task of an
executor, and the runs' results are joined before the level's planned orders
are exploded into the next levels' requirements (the hand-over of the
dependent demand to the SKUs that own it, :mod:`.netting`).

The walk of one SKU reads only that SKU's requirements, receipts and
settings, and a run's results are numbered from its own start; joined in run
order with those numbers shifted by the runs before it, they are exactly the
arrays a walk of the whole level returns. So the plan is the inline plan,
row for row and in the same order.

On a thread pool the runs share the level's arrays (the walk holds no GIL);
another executor (a process pool, Dask) is sent each run's slices with its
task.
"""

from __future__ import annotations

from concurrent.futures import Executor, Future
from dataclasses import dataclass, fields

import numpy as np

from masterplan.server.engine.kernels import LevelResult, WalkSettings, net_level

__all__ = ["MIN_SPLIT_ROWS", "LevelSplit", "cut_runs"]

#: A level with fewer requirements and receipts than this is walked in one
#: call: a task's hand-over costs more than the walk of so few rows.
MIN_SPLIT_ROWS = 50_000


def cut_runs(req_ptr: np.ndarray, rec_ptr: np.ndarray, pieces: int) -> np.ndarray:
    """int64 (k+1,): bounds of up to ``pieces`` contiguous runs of SKUs with
    about as many requirements and receipts each (a SKU counts one more, for
    its settings); every run holds at least one SKU."""
    n = len(req_ptr) - 1
    work = req_ptr + rec_ptr + np.arange(n + 1)
    targets = work[-1] * np.arange(1, pieces) / pieces
    inner = np.searchsorted(work, targets, "left")
    return np.unique(np.r_[0, np.clip(inner, 1, max(n - 1, 1)), n]) if n > 1 else np.r_[0, n]


def _settings(s: WalkSettings, a: int, b: int) -> WalkSettings:
    return WalkSettings(**{f.name: getattr(s, f.name)[a:b] for f in fields(WalkSettings)})


@dataclass(frozen=True, slots=True)
class LevelSplit:
    """Walks each netting level in up to ``pieces`` runs on ``executor``.

    Attributes:
        executor: Where the runs are walked.
        pieces: Runs per level (the executor's workers).
        min_rows: A level with fewer requirements and receipts is walked in
            one call in the caller's thread (None: :data:`MIN_SPLIT_ROWS`).
    """

    executor: Executor
    pieces: int
    min_rows: int | None = None

    def net_level(
        self,
        t0: int,
        req_ptr: np.ndarray,
        req_date: np.ndarray,
        req_qty: np.ndarray,
        rec_ptr: np.ndarray,
        rec_date: np.ndarray,
        rec_qty: np.ndarray,
        settings: WalkSettings,
        room: int,
        stop: np.ndarray | None = None,
    ) -> LevelResult:
        """:func:`~masterplan.server.engine.kernels.net_level`, walked in runs.

        Each run may make up to ``room`` planned orders; when they make more
        together, ``over`` is their total (at least what the level needs, as
        the whole walk's ``over`` is).
        """
        least = MIN_SPLIT_ROWS if self.min_rows is None else self.min_rows
        if self.pieces < 2 or req_ptr[-1] + rec_ptr[-1] < least:
            return net_level(
                t0, req_ptr, req_date, req_qty, rec_ptr, rec_date, rec_qty, settings, room, stop
            )
        bounds = cut_runs(req_ptr, rec_ptr, self.pieces)
        tasks: list[Future[LevelResult]] = []
        for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
            r0, r1, e0, e1 = req_ptr[a], req_ptr[b], rec_ptr[a], rec_ptr[b]
            tasks.append(
                self.executor.submit(
                    net_level,
                    t0,
                    req_ptr[a : b + 1] - r0,
                    req_date[r0:r1],
                    req_qty[r0:r1],
                    rec_ptr[a : b + 1] - e0,
                    rec_date[e0:e1],
                    rec_qty[e0:e1],
                    _settings(settings, a, b),
                    room,
                    stop,
                )
            )
        try:
            parts = [task.result() for task in tasks]
        finally:
            for task in tasks:
                task.cancel()
        return _join(parts, bounds, req_ptr, rec_ptr, room)


def _join(
    parts: list[LevelResult],
    bounds: np.ndarray,
    req_ptr: np.ndarray,
    rec_ptr: np.ndarray,
    room: int,
) -> LevelResult:
    """The runs' results as one walk of the whole level returns them."""
    made = np.array([p.over if p.over > 0 else len(p.po_qty) for p in parts])
    total = float(made.sum())
    if total > room or any(p.over > 0 for p in parts):
        empty = np.empty(0, dtype=np.int64)
        return LevelResult(
            empty, empty, np.empty(0), empty, empty, np.empty(0), np.empty(0), max(total, 1.0)
        )
    po_base = np.r_[0, np.cumsum([len(p.po_qty) for p in parts])[:-1]]
    peg_src = []
    for p, e0, k0 in zip(parts, rec_ptr[bounds[:-1]], po_base, strict=True):
        # Receipts by their position in the level, planned orders by theirs.
        peg_src.append(np.where(p.peg_src >= 0, p.peg_src + e0, p.peg_src - k0))
    return LevelResult(
        peg_req=np.concatenate(
            [p.peg_req + r0 for p, r0 in zip(parts, req_ptr[bounds[:-1]], strict=True)]
        ),
        peg_src=np.concatenate(peg_src),
        peg_qty=np.concatenate([p.peg_qty for p in parts]),
        po_sku=np.concatenate([p.po_sku + a for p, a in zip(parts, bounds[:-1], strict=True)]),
        po_date=np.concatenate([p.po_date for p in parts]),
        po_qty=np.concatenate([p.po_qty for p in parts]),
        shortfall=np.concatenate([p.shortfall for p in parts]),
    )
