"""Independent clusters of a data set, packed into balanced partitions (SPEC §2).

Two SKUs interact only through the SKU graph: a BOM line (parent item and
component item) or a refill transfer (one item between warehouses). An item
whose rows share no BOM with another item's plans alone, so the items split
into **clusters**, the connected components of the graph whose edges are:

- a BOM's item and its lines' components (``bom_lines.bom_id``);
- a production order's item and its lines' components
  (``production_lines.order_id``): the order's explosion is such an edge even
  where no BOM names it;
- the items of rows that share a key in a keyed table: the duplicate check
  (§5.9) leaves out every row of a shared key, so they must be checked
  together.

Every row of a table that names an item goes with its item's cluster
(``bom_lines`` and ``production_lines`` with their component's, which the
edges above put beside their parent's); an unknown or NULL item id is a
cluster like any other, whose rows validation leaves out where they are.
The master tables that name no item (warehouses, calendars, calendar
exceptions, coverage groups) go to every partition.

Clusters are packed into partitions largest first, each into the lightest
partition, by rows: a plan's work grows with its rows. A cluster larger than
a partition's share stays whole (splitting one is the exchange of dependent
demand between levels, not this module's).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from masterplan.contract.columns import Table, TableMap, table_length, take
from masterplan.contract.tables import INPUT_TABLES
from masterplan.server.engine.kernels import factorize
from masterplan.server.engine.validate import ITEM_COLUMN, key_hashes

__all__ = ["SHARED_TABLES", "Split", "lopsided", "split"]

#: Input tables that name no item: every partition gets all their rows.
SHARED_TABLES: tuple[str, ...] = tuple(n for n in INPUT_TABLES if n not in ITEM_COLUMN)

#: (lines table, its column naming the header, header table, the header's key column).
_HEADERS = (
    ("bom_lines", "bom_id", "boms", "bom_id"),
    ("production_lines", "order_id", "production_orders", "order_id"),
)

#: A cluster at least this share of a partition's rows is placed one by one,
#: largest first; smaller ones fill what is left in runs (see :func:`_pack`).
_BIG = 0.125


@dataclass(frozen=True, slots=True)
class Split:
    """A data set cut into partitions that plan without exchange.

    Attributes
    ----------
    parts : list of TableMap
        The input tables of each non-empty partition; every one holds the
        shared tables whole. ``parts[0]`` is the one whose plan reports the
        shared tables' input checks.
    clusters : int
        Independent clusters found (of a cut not made because one cluster
        was too large, possibly before rows sharing a key joined some).
    largest : float
        Share of the item rows in the largest cluster (the same).
    rows : int64 (P,)
        Item rows per partition.
    """

    parts: list[TableMap]
    clusters: int
    largest: float
    rows: np.ndarray


def _node_codes(columns: Sequence[np.ndarray]) -> list[np.ndarray]:
    """int64 codes of the values of ``columns`` (item ids): equal values equal
    codes, by hash. Two ids whose hashes collide share a code, which can only
    join two clusters that could have stayed apart."""
    hashes = np.concatenate(
        [np.fromiter(map(hash, c.tolist()), dtype=np.int64, count=len(c)) for c in columns]
    )
    codes = factorize(hashes, len(columns[0]))
    ends = np.cumsum([len(c) for c in columns])[:-1]
    return np.split(codes, ends)


def _duplicate_edges(table: Table, key: tuple[str, ...], node: np.ndarray) -> np.ndarray:
    """(2, E): the items of rows that share a key (by hash: a collision only
    joins two clusters that could have stayed apart)."""
    h = key_hashes(table, key)
    order = np.argsort(h, kind="stable")
    hs = h[order]
    same = np.flatnonzero(hs[1:] == hs[:-1])
    return np.stack([node[order[same]], node[order[same + 1]]])


def _header_edges(
    line_keys: np.ndarray, line_node: np.ndarray, head_keys: np.ndarray, head_node: np.ndarray
) -> np.ndarray:
    """(2, E): each line's item and its header's (any header of that key)."""
    heads = dict(zip(head_keys.tolist(), head_node.tolist(), strict=True))
    parent = np.fromiter(
        map(heads.get, line_keys.tolist(), itertools.repeat(-1)),
        dtype=np.int64,
        count=len(line_keys),
    )
    found = parent >= 0
    return np.stack([line_node[found], parent[found]])


def _pack(weights: np.ndarray, n: int) -> np.ndarray:
    """int64 (C,): the partition of each cluster, balancing ``weights``.

    The big clusters go one by one into the lightest partition (longest
    processing time first); the many small ones then fill each partition up
    to an equal share, in runs, without a Python step per cluster.
    """
    load = np.zeros(n, dtype=np.int64)
    out = np.zeros(len(weights), dtype=np.int64)
    total = int(weights.sum())
    share = total / n
    order = np.argsort(-weights, kind="stable")
    big = order[weights[order] >= _BIG * share]
    heap = [(0, p) for p in range(n)]
    for c in big.tolist():
        w, p = heapq.heappop(heap)
        out[c] = p
        w += int(weights[c])
        load[p] = w
        heapq.heappush(heap, (w, p))
    small = order[len(big) :]
    if len(small):
        room = np.maximum(np.ceil(share) - load, 0)
        ends = np.cumsum(room)
        cum = np.cumsum(weights[small]) - weights[small]
        out[small] = np.minimum(np.searchsorted(ends, cum, side="right"), n - 1)
    return out


class _Clusters(NamedTuple):
    """The connected components of the item graph."""

    #: How many there are.
    number: int
    #: Each node's (item code's) component.
    label: np.ndarray
    #: Each component's rows (those of every table, by their item codes).
    weights: np.ndarray


def _clusters(edges: list[np.ndarray], nodes: dict[str, np.ndarray], n_nodes: int) -> _Clusters:
    """The connected components of the graph of ``edges`` over ``n_nodes``
    item codes, weighed by the rows of ``nodes`` (each table's item codes)."""
    src, dst = np.concatenate(edges, axis=1)
    graph = coo_matrix((np.ones(len(src), dtype=np.int8), (src, dst)), shape=(n_nodes, n_nodes))
    n_clusters, label = connected_components(graph, directed=False)
    weights = np.zeros(n_clusters, dtype=np.int64)
    for codes in nodes.values():
        weights += np.bincount(label[codes], minlength=n_clusters)
    return _Clusters(n_clusters, label, weights)


def lopsided(rows: np.ndarray, inline_share: float) -> bool:
    """Whether partitions of ``rows`` rows are not worth planning apart:
    fewer than two, or one above ``inline_share`` of the rows (the rest would
    wait on it)."""
    return len(rows) < 2 or bool(rows.max() > inline_share * rows.sum())


def split(data: TableMap, n: int, inline_share: float | None = None) -> Split:
    """``data`` cut into at most ``n`` partitions of whole clusters.

    With ``inline_share``, a cut whose largest partition would hold more
    than that share of the rows is not made: the one part is ``data`` itself
    (copying the tables into partitions that will not be planned apart was
    a quarter of the cut's time at 1M SKUs). Where one cluster of the BOMs'
    and production orders' edges alone holds more than that share, the
    duplicate keys' edges are not looked for (they would only join it to
    others): ``clusters`` and ``largest`` then count without them.
    """
    owned = [name for name in ITEM_COLUMN if name in data and table_length(data[name])]
    anchors = [np.asarray(data[name][ITEM_COLUMN[name]]) for name in owned]
    if not owned:
        return Split([dict(data)], 0, 0.0, np.zeros(1, dtype=np.int64))
    nodes = dict(zip(owned, _node_codes(anchors), strict=True))
    n_nodes = int(max(int(c.max()) for c in nodes.values())) + 1
    edges = [np.zeros((2, 0), dtype=np.int64)]
    for lines, line_col, head, head_col in _HEADERS:
        if lines in nodes and head in nodes:
            edges.append(
                _header_edges(
                    np.asarray(data[lines][line_col]),
                    nodes[lines],
                    np.asarray(data[head][head_col]),
                    nodes[head],
                )
            )
    found = None
    if inline_share is not None:
        # The duplicate keys' edges only join clusters: a cluster above the
        # share without them is one with them, and the cut is not made.
        found = _clusters(edges, nodes, n_nodes)
        largest = float(found.weights.max() / found.weights.sum())
        if largest > inline_share:
            return Split([dict(data)], found.number, largest, found.weights.sum(keepdims=True))
    duplicates = [
        _duplicate_edges(data[name], key, nodes[name])
        for name in owned
        if (key := INPUT_TABLES[name].key) and ITEM_COLUMN[name] not in key
    ]
    if found is None or any(pairs.shape[1] for pairs in duplicates):
        found = _clusters([*edges, *duplicates], nodes, n_nodes)
    n_clusters, label, weights = found
    part_of_node = _pack(weights, max(1, n))[label]
    row_part = {name: part_of_node[codes] for name, codes in nodes.items()}
    rows = np.zeros(max(1, n), dtype=np.int64)
    for parts in row_part.values():
        rows += np.bincount(parts, minlength=len(rows))
    used = np.flatnonzero(rows)
    largest = float(weights.max() / weights.sum())
    if inline_share is not None and lopsided(rows[used], inline_share):
        return Split([dict(data)], n_clusters, largest, rows[used].sum(keepdims=True))
    out: list[TableMap] = []
    for p in used.tolist():
        part: dict[str, Table] = {}
        for name, table in data.items():
            if name in row_part:
                part[name] = take(table, np.flatnonzero(row_part[name] == p))
            else:
                part[name] = table
        out.append(part)
    return Split(out, n_clusters, largest, rows[used])
