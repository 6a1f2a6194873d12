"""A plan computed over partitions of its SKUs, on an executor (SPEC §2 scale-out).

The data set is cut into independent clusters packed into balanced
partitions (:mod:`.partition`); each partition is planned by the same engine
(:func:`~masterplan.server.engine.plan.plan_part`) as one task of a
:class:`concurrent.futures.Executor`: a thread pool, a process pool, or
Dask's (``distributed.Client.get_executor``). A partition's data goes to its
worker once, with its task; its result tables come back and are joined.

Every result row belongs to one SKU (a pegging row and a delay message to
their demand's, an input check's message to its row's), and no SKU's plan
reads another cluster's rows, so the joined tables hold exactly the inline
plan's rows: planned-order ids count a SKU's own orders (§5.6), whatever
else is planned beside it. The order of the rows differs: a result table is
a set.

A failed partition fails the run with its error; the other partitions'
tasks are cancelled and their results dropped, so no partial plan leaves.

A partition's input and result that cross a process boundary travel packed
(:mod:`.packing`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import (
    FIRST_COMPLETED,
    Executor,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    wait,
)

import numpy as np

from masterplan.contract.coded import CODE_DTYPE, Coded
from masterplan.server.engine.levelsplit import LevelSplit
from masterplan.server.engine.packing import (
    PackedColumn,
    Spilled,
    discard,
    is_packed,
    join_arrays,
    load,
    pack,
    pack_tables,
    spill,
    spill_directory,
    unpack_codes,
    unpack_tables,
)
from masterplan.server.engine.partbasis import PartitionedBasis, take_pieces
from masterplan.server.engine.partition import Split, lopsided, split
from masterplan.server.engine.plan import plan, plan_part
from masterplan.server.engine.types import (
    PlanParams,
    PlanResult,
    PlanTooLarge,
    ResultTable,
    TableMap,
)

__all__ = ["INLINE_SHARE", "balanced", "plan_cut", "plan_partitioned", "regenerate_cut"]

#: A cut whose largest partition holds more than this share of the rows is
#: planned inline: the partitions could at best save what the others hold,
#: less the cut and the join (measured: a 95 % cluster on two threads made
#: the run 1.28x slower than inline, docs/scaling.md).
INLINE_SHARE = 0.8

#: Progress callback: a phase name and the fraction of the run done.
Progress = Callable[[str, float], None]


def plan_partitioned(
    data: TableMap,
    params: PlanParams,
    executor: Executor,
    partitions: int,
    progress: Progress | None = None,
    inline_share: float = INLINE_SHARE,
) -> PlanResult:
    """Plan ``data`` as :func:`~masterplan.server.engine.plan.plan` does, its
    independent clusters in up to ``partitions`` tasks on ``executor``.

    ``phase_seconds`` holds the coordinator's ``split`` and ``join``, the
    wall time of the tasks together (``partitions``), and per engine phase
    the slowest partition's time. A data set that cannot be cut in balance
    (one cluster, or one partition above ``inline_share`` of the rows) is
    planned whole, each netting level's SKUs walked in runs on ``executor``
    (:mod:`.levelsplit`), with no cut and no join.
    """
    start = time.perf_counter()
    cut = split(data, partitions, inline_share)
    split_seconds = time.perf_counter() - start
    if not balanced(cut, inline_share):
        result = plan(data, params, progress, LevelSplit(executor, partitions))
    else:
        result = plan_cut(cut, params, executor, progress)
    result.phase_seconds["split"] = split_seconds
    return result


def balanced(cut: Split, inline_share: float = INLINE_SHARE) -> bool:
    """Whether ``cut`` is worth planning over its partitions: more than one,
    none above ``inline_share`` of the rows."""
    return not lopsided(cut.rows, inline_share)


def plan_cut(
    cut: Split,
    params: PlanParams,
    executor: Executor,
    progress: Progress | None = None,
) -> PlanResult:
    """The plan of ``cut``'s partitions, each a task on ``executor``, joined.

    ``phase_seconds`` as :func:`plan_partitioned` gives them, less ``split``.
    """
    return _plan_cut(cut, params, executor, progress, pieces=False)[0]


def regenerate_cut(
    cut: Split,
    data: TableMap,
    params: PlanParams,
    executor: Executor,
    progress: Progress | None = None,
) -> tuple[PlanResult, PartitionedBasis]:
    """:func:`plan_cut` of ``cut`` (made from ``data``), and the basis a later
    net change of the plan reuses (:mod:`.partbasis`)."""
    result, pieces = _plan_cut(cut, params, executor, progress, pieces=True)
    basis = PartitionedBasis(data, params.plan_date, params.default_group, result.tables, pieces)
    return result, basis


def _plan_cut(
    cut: Split,
    params: PlanParams,
    executor: Executor,
    progress: Progress | None,
    pieces: bool,
) -> tuple[PlanResult, dict[str, ResultTable]]:
    report = progress or (lambda phase, fraction: None)
    report("validate", 0.0)
    start = time.perf_counter()
    results = _run_tasks(cut, params, executor, report, pieces)
    parallel_seconds = time.perf_counter() - start
    report("messages", 0.9)
    start = time.perf_counter()
    joined: dict[tuple[int, ...], np.ndarray] = {}
    tables = {name: _join([r.tables[name] for r in results], joined) for name in results[0].tables}
    taken: dict[str, ResultTable] = {}
    if pieces:
        tables, taken = take_pieces(tables)
    seconds = _slowest(results)
    seconds.update(partitions=parallel_seconds, join=time.perf_counter() - start)
    result = PlanResult(tables, seconds, sum(r.sku_count for r in results))
    _check_size(result, params)
    return result, taken


def _run_tasks(
    cut: Split, params: PlanParams, executor: Executor, report: Progress, pieces: bool = False
) -> list[PlanResult]:
    """Each partition's plan, in partition order; the first failure raised."""
    # A thread's input and result are handed over as they are; another
    # process's are packed, and a result on this machine (a process pool's)
    # comes through a spill file. Each partition is packed just before it is
    # submitted, so that the first ones travel while the next are packed.
    packed = not isinstance(executor, ThreadPoolExecutor)
    directory = spill_directory() if isinstance(executor, ProcessPoolExecutor) else None
    tasks: list[Future[PlanResult | Spilled]] = [
        executor.submit(
            _plan_task,
            pack_tables(part) if packed else part,
            params,
            i == 0,
            pieces,
            packed,
            directory,
        )
        for i, part in enumerate(cut.parts)
    ]
    pending: set[Future[PlanResult | Spilled]] = set(tasks)
    results: dict[Future[PlanResult | Spilled], PlanResult] = {}
    try:
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for task in done:
                error = task.exception()
                if error is not None:
                    raise error
                # Received as it comes, while other partitions still plan.
                results[task] = _received(task.result())
            report("netting", 0.1 + 0.8 * (len(tasks) - len(pending)) / len(tasks))
    except BaseException:
        # A cancellation (raised by ``report``) or a failed partition: stop
        # the others. A thread's task sees ``params.stop``; a task that has
        # started elsewhere runs out, and its result is dropped (its spill
        # file removed).
        for task in tasks:
            if task not in results:
                task.cancel()
                task.add_done_callback(_drop)
        if params.stop is not None:
            params.stop[0] = 1
        raise
    return [results[task] for task in tasks]


def _plan_task(
    data: TableMap | dict[str, dict[str, PackedColumn]],
    params: PlanParams,
    report_shared: bool,
    pieces: bool,
    packed: bool,
    directory: str | None,
) -> PlanResult | Spilled:
    """One partition's task: its plan (of ``data``, packed or not, with the
    basis's ``pieces`` where asked), :func:`pack`-ed where it is to be
    pickled, and spilled into ``directory`` where that is given."""
    result = plan_part(unpack_tables(data), params, report_shared, pieces)
    if not packed:
        return result
    result = pack(result)
    if directory is None:
        return result
    try:
        return spill(result, directory)
    except OSError:
        # No room in the directory (a container's /dev/shm is 64 MB unless
        # it is given more): the result goes through the pipe instead.
        return result


def _received(result: PlanResult | Spilled) -> PlanResult:
    """A task's result as the join takes it: its text still packed."""
    return unpack_codes(load(result) if isinstance(result, Spilled) else result)


def _drop(task: Future[PlanResult | Spilled]) -> None:
    """Done callback of a task whose result is not wanted: remove its spill file."""
    if not task.cancelled() and task.exception() is None:
        discard(task.result())


def _slowest(results: Sequence[PlanResult]) -> dict[str, float]:
    """Per engine phase, the longest any partition took."""
    out: dict[str, float] = {}
    for r in results:
        for phase, seconds in r.phase_seconds.items():
            out[phase] = max(out.get(phase, 0.0), seconds)
    return out


def _check_size(result: PlanResult, params: PlanParams) -> None:
    """The joined plan's size against the run's limits (each partition's
    plan met them alone; together they may not)."""
    orders = result.tables["planned_orders"]
    made = int(np.count_nonzero(np.asarray(orders["firmed"]) == 0))
    if made > params.max_planned_orders:
        raise PlanTooLarge("planned_orders", params.max_planned_orders, made)
    rows = sum(result.row_counts().values())
    if rows > params.max_result_rows:
        raise PlanTooLarge("result_rows", params.max_result_rows, rows)


def _join(tables: Sequence[ResultTable], joined: dict[tuple[int, ...], np.ndarray]) -> ResultTable:
    """The rows of ``tables`` (one result table of each partition), in order;
    ``joined`` holds the dictionaries joined so far (see :func:`_join_column`)."""
    return {col: _join_column([t[col] for t in tables], joined) for col in tables[0]}


def _join_column(
    columns: Sequence[np.ndarray | Coded], joined: dict[tuple[int, ...], np.ndarray]
) -> np.ndarray | Coded:
    """One column of several partitions' rows.

    Coded columns stay coded: each partition's codes are moved past the
    dictionaries before it (partitions planned in other processes have
    dictionaries of their own, even for the same values). Columns that
    shared a dictionary in every partition (a run's requirement refs, in
    pegging and delay messages) share the joined one: it is joined once.
    Text that another process sent packed is joined packed and cast once
    (:func:`~.packing.join_arrays`).
    """
    if all(isinstance(c, Coded) for c in columns):
        coded = [c for c in columns if isinstance(c, Coded)]
        first = coded[0].values
        same = all(c.values is first for c in coded)
        if same and not is_packed(first):
            return Coded(np.concatenate([c.codes for c in coded]), first)
        key = (id(first),) if same else tuple(id(c.values) for c in coded)
        values = joined.get(key)
        if values is None:
            values = joined[key] = join_arrays([first] if same else [c.values for c in coded])
        if same:
            return Coded(np.concatenate([c.codes for c in coded]), values)
        offsets = np.cumsum([0] + [len(c.values) for c in coded[:-1]])
        # Added in int64 and narrowed piece by piece: narrowed once joined
        # (as ``Coded`` would), the join would hold every piece twice as wide.
        codes = [
            np.where(c.codes >= 0, c.codes.astype(np.int64) + off, -1).astype(CODE_DTYPE)
            for c, off in zip(coded, offsets.tolist(), strict=True)
        ]
        return Coded(np.concatenate(codes), values)
    return join_arrays([_plain(c) for c in columns])


def _plain(column: np.ndarray | Coded) -> np.ndarray:
    """``column`` uncoded (text that travelled packed may stay packed)."""
    if not isinstance(column, Coded):
        return column
    if is_packed(column.values):
        return Coded(column.codes, join_arrays([column.values])).to_array()
    return column.to_array()
