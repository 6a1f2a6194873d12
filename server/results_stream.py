"""What a RunPlan streams: the whole result, or its difference to a run the client holds.

A connector writes a run's result as a difference to the plan its database
holds (SPEC §4). When the client names that run (``base_run_id``) and this
server still holds its result, streaming only the rows removed and added
saves the client both the transfer and the comparison. Anything else (no
base named, an unknown run, a run of another plan, a run whose results were
dropped) streams the whole result, and the run's ``base_run_id`` stays empty
so that the client knows which one it got.

Where the client asks (``index_order``), each table's rows are streamed in
the order of the index its result table has in the database
(``TableSpec.indexes``: ``demand_ref`` for pegging, ``planned_order_id``
for planned orders, ...), so that a writer that stores them as they arrive
adds each index entry beside the one before, not at a random place in the
index. On PostgreSQL, 100k SKUs' 1.25M rows took 3.5 s to ``COPY`` in that
order against 5.0–5.5 s in the engine's (``docs/performance.md``). SQLite
and MariaDB stored them in the same time either way, so the sort (of each
table's key, 0.15 s at 100k SKUs, about 5 s at 1M) is not paid unasked.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from masterplan.codec import encode_table
from masterplan.contract.coded import Coded, CodedTable
from masterplan.contract.columns import table_length
from masterplan.contract.difference import difference
from masterplan.contract.tables import (
    BOOKKEEPING_COLUMNS,
    PLAN_OUTPUT_TABLES,
    RESULT_TABLES,
    TableSpec,
)
from masterplan.server.engine.arrays import unique_strings
from masterplan.server.errors import NotFound
from masterplan.server.logs import fields
from masterplan.server.store import TenantStore
from masterplan.v1 import columnar_pb2

__all__ = ["Parts", "ResultStream", "base_results", "index_order", "result_stream"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ResultStream:
    """The result chunks of one run, and what they amount to.

    Attributes:
        added: Per table, the rows added (a difference) or every row (whole).
        removed: Per table, the rows removed; empty for a whole result.
        base_run_id: The run the difference is against; empty for a whole result.
        ordered: Each table's rows in the order of its index (:func:`index_order`).
    """

    added: Mapping[str, CodedTable]
    removed: Mapping[str, CodedTable] = field(default_factory=dict)
    base_run_id: str = ""
    ordered: bool = False

    @property
    def rows_added(self) -> int:
        return sum(table_length(t) for t in self.added.values())

    @property
    def rows_removed(self) -> int:
        return sum(table_length(t) for t in self.removed.values())

    def chunks(
        self,
        chunk_rows: int,
        into: Callable[[], columnar_pb2.ColumnarChunk] = columnar_pb2.ColumnarChunk,
    ) -> Iterator[columnar_pb2.ColumnarChunk]:
        """Per table: the removed rows (``CHANGE_KIND_DELETE``), then the added rows.

        Each chunk is encoded into the message ``into()`` returns
        (:func:`~masterplan.codec.encode_table`).

        A whole result's chunks leave the change kind unset (upsert), as
        before differences existed; a difference marks its added rows
        ``CHANGE_KIND_UPSERT``.

        Where :attr:`ordered`, each table's order is sorted out on a thread
        of its own, table after table, while the tables before it stream: a
        large plan's sorts (about 5 s at 1M SKUs, most of it pegging's) then
        hold up the stream only for the first table's. A stream closed early
        leaves the sorts not yet begun undone.
        """
        upsert = (
            columnar_pb2.CHANGE_KIND_UPSERT
            if self.base_run_id
            else columnar_pb2.CHANGE_KIND_UNSPECIFIED
        )
        parts: list[tuple[str, CodedTable, columnar_pb2.ChangeKind.ValueType]] = []
        for name in PLAN_OUTPUT_TABLES:
            if name in self.removed:
                parts.append((name, self.removed[name], columnar_pb2.CHANGE_KIND_DELETE))
            parts.append((name, self.added[name], upsert))
        if not self.ordered:
            for name, table, change in parts:
                yield from encode_table(name, table, chunk_rows, change=change, into=into)
            return
        # One worker: the sorts run in the order submitted, and only it
        # touches ``ranked``.
        ranked: Ranked = {}
        sorter = ThreadPoolExecutor(1, thread_name_prefix="result-order")
        try:
            orders = [
                sorter.submit(index_order, RESULT_TABLES[name], table, ranked)
                for name, table, _ in parts
            ]
            for (name, table, change), order in zip(parts, orders, strict=True):
                yield from encode_table(
                    name, table, chunk_rows, change=change, order=order.result(), into=into
                )
        finally:
            sorter.shutdown(wait=False, cancel_futures=True)


#: Ranks of whole dictionaries, by their kind (equal values equal ranks, or
#: places: equal values neighbouring ranks) and the dictionary's ``id``.
Ranked = dict[tuple[str, int], np.ndarray]


def index_order(
    spec: TableSpec, table: CodedTable, ranked: Ranked | None = None
) -> np.ndarray | None:
    """Positions of ``table``'s rows sorted by the columns of ``spec``'s first
    index, but ``plan_id`` and ``run_id`` (one value per write); ``None``
    where ``spec`` has no index or ``table`` lacks one of its columns.

    Text sorts by code point, as PostgreSQL's ``C`` collation and SQLite's
    ``BINARY`` do; NULL first. In another collation the rows still come
    grouped by their key's text, most of the locality an index gains from.
    ``ranked`` keeps the ranks of whole dictionaries by ``id``, for the
    tables after this one that share them (a plan's pegging and delay
    messages share its requirement refs); the caller keeps those
    dictionaries alive as long as it keeps ``ranked``.

    Rows of equal keys keep their order, but where a coded key's dictionary
    holds a text twice: its rows then come together, those of one code
    after those of the other.
    """
    if not spec.indexes or table_length(table) == 0:
        return None
    columns = [c for c in spec.indexes[0] if c not in BOOKKEEPING_COLUMNS]
    if not columns or any(c not in table for c in columns):
        return None
    cache: Ranked = {} if ranked is None else ranked
    if len(columns) == 1:  # every result table's index
        return np.argsort(_column_places(table[columns[0]], cache), kind="stable")
    # lexsort's last key is the primary one.
    return np.lexsort([_column_ranks(table[c], cache) for c in reversed(columns)])


def _column_places(column: np.ndarray | Coded, ranked: Ranked) -> np.ndarray:
    """int64: a key that sorts the rows as their column's values sort, NULL
    first, for a column that is the whole sort key.

    Of numpy strings without NULL (the engine's), each value's place in the
    sorted values, with no further step: equal values need not have equal
    ranks for the rows to come grouped and in order, so the sorted strings
    are neither gathered nor compared (:func:`_ranks`' two steps, half of
    the sorts' 0.36 s for the 100k benchmark's result).
    """
    values = column.values if isinstance(column, Coded) else np.asarray(column)
    if not _plain_strings(values):
        return _column_ranks(column, ranked)
    if not isinstance(column, Coded):
        return _places(values)
    return _coded_keys(column, ranked, "places", _places)


def _plain_strings(values: np.ndarray) -> bool:
    """Whether ``values`` are numpy strings that cannot hold NULL."""
    return values.dtype.kind == "T" and not hasattr(values.dtype, "na_object")


def _places(values: np.ndarray) -> np.ndarray:
    """int64: each value's position among ``values`` sorted (stable: numpy's
    default sort of strings can crash, see ``unique_strings``)."""
    places = np.empty(len(values), dtype=np.int64)
    places[np.argsort(values, kind="stable")] = np.arange(len(values))
    return places


def _column_ranks(column: np.ndarray | Coded, ranked: Ranked) -> np.ndarray:
    """int64: each row's rank in its column's order, equal values equal
    ranks, NULL -1 (first)."""
    if not isinstance(column, Coded):
        return _ranks(np.asarray(column))
    return _coded_keys(column, ranked, "ranks", _ranks)


def _coded_keys(
    column: Coded, ranked: Ranked, kind: str, keys: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """Each row's key from its value's: ``keys`` of the dictionary (NULL -1,
    first), kept in ``ranked`` under ``kind`` for the tables after this one."""
    codes, values = column.codes, column.values
    of_values = ranked.get((kind, id(values)))
    if of_values is None:
        used = np.zeros(len(values), dtype=bool)
        used[codes[codes >= 0]] = True
        of_values = np.full(len(values) + 1, -1, dtype=np.int64)
        if 2 * np.count_nonzero(used) >= len(values):
            # Most of the dictionary: keyed whole, once for every table.
            of_values[:-1] = keys(values)
            ranked[(kind, id(values))] = of_values
        else:
            # A few of its values (a difference's rows): those only.
            where = np.flatnonzero(used)
            of_values[where] = keys(values[where])
    return of_values[np.where(codes >= 0, codes, -1)]


def _ranks(values: np.ndarray) -> np.ndarray:
    """int64: each value's rank among ``values``, equal values equal ranks,
    NULL -1."""
    if values.dtype.kind == "T":  # numpy strings: no NULL
        return unique_strings(values)[1]
    ranks = np.full(len(values), -1, dtype=np.int64)
    if values.dtype == object:
        known = values != None  # noqa: E711 (element-wise)
        # As numpy strings, which sort in C; str objects compare through Python.
        ranks[known] = unique_strings(values[known])[1]
    else:
        known = ~_is_null(values)
        ranks[known] = np.unique(values[known], return_inverse=True)[1].reshape(-1)
    return ranks


def _is_null(values: np.ndarray) -> np.ndarray:
    """Where a plain column holds NULL (NaN, NaT); text of numpy strings has none."""
    if values.dtype.kind in "fcmM":
        return np.isnan(values)
    return np.zeros(len(values), dtype=bool)


def base_results(
    store: TenantStore, plan_id: str, base_run_id: str
) -> Mapping[str, CodedTable] | None:
    """The results the store still holds of run ``base_run_id`` of ``plan_id``, if any.

    Runs are looked up under ``plan_id`` only: another plan's run of the
    same id is not this plan's base.
    """
    if not base_run_id:
        return None
    try:
        base = store.run(plan_id, base_run_id)
    except NotFound:
        return None
    return base.results


#: A net change's changed rows: the run they were taken from, and per table
#: that run's rows that may have changed and the rows that replace them.
Parts = tuple[str, Mapping[str, CodedTable], Mapping[str, CodedTable]]


def result_stream(
    store: TenantStore,
    plan_id: str,
    base_run_id: str,
    result: Mapping[str, CodedTable],
    parts: Parts | None = None,
    index_order: bool = False,
) -> ResultStream:
    """What to stream for ``result``: its difference to ``base_run_id`` where possible.

    Args:
        store: The tenant's store, holding the base run's results if any.
        plan_id: The plan of the run.
        base_run_id: The run whose result the client holds; empty for none.
        result: The run's result tables (coded text allowed).
        parts: When the run is a net change of run ``parts[0]``: every other
            row is the same in both, so the difference to that run is the
            difference between ``parts[1]`` and ``parts[2]``, computed on
            the few rows the change reached instead of the whole plan.
        index_order: Stream each table's rows in the order of its index.
    """
    base = base_results(store, plan_id, base_run_id)
    if base is None:
        if base_run_id:
            log.info("base run not held: whole result", extra=fields(base_run=base_run_id))
        return ResultStream(added=result, ordered=index_order)
    if parts is not None and parts[0] == base_run_id:
        diff = difference(parts[1], parts[2])
    else:
        diff = difference(base, result)
    return ResultStream(
        added=diff.added, removed=diff.removed, base_run_id=base_run_id, ordered=index_order
    )
