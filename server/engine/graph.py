"""The SKU graph, low-level codes and cycles (SPEC §5.3).

Edges run from a parent SKU to the SKUs its orders draw on: a production SKU
to the components of every BOM that may serve it, a transfer SKU to its
refill-warehouse SKU, and a SKU with live firmed planned orders to what those
draw on. The run's SKU set is closed under these edges (:func:`close_skus`,
§5.2), and SKUs are planned level by level in low-level-code order
(:func:`levels`), computed with ``scipy.sparse.csgraph``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from numpy.dtypes import StringDType
from scipy.sparse import csr_array
from scipy.sparse.csgraph import connected_components

from masterplan.server.engine.arrays import find_sorted, text, unique_ints
from masterplan.server.engine.columns import rank
from masterplan.server.engine.kinds import ORDER_PRODUCTION, ORDER_TRANSFER
from masterplan.server.engine.messages import Messages
from masterplan.server.engine.orders import (
    FirmedOrders,
    bom_candidates,
    bom_lines,
    firmed_source,
)
from masterplan.server.engine.skus import (
    Masters,
    SkuIndex,
    SkuSettings,
    no_refill_messages,
    resolve_settings,
    sku_ids,
)

__all__ = [
    "Levels",
    "SkuGraph",
    "close_skus",
    "levels",
    "levels_and_cycles",
    "sku_edges",
]

_STR = StringDType()


@dataclass(frozen=True, slots=True)
class SkuGraph:
    """The run's SKUs, closed under the graph, with their settings and edges.

    Attributes
    ----------
    settings : SkuSettings
        Settings of every SKU of the closed set (§5.2).
    src, dst : int64 (E,)
        Edges parent -> component as SKU positions (duplicates allowed).
    messages : Messages
        ``NO_REFILL_WAREHOUSE`` per transfer SKU without a valid refill
        warehouse (§5.6).
    """

    settings: SkuSettings
    src: np.ndarray
    dst: np.ndarray
    messages: Messages


def sku_edges(m: Masters, s: SkuSettings, f: FirmedOrders) -> tuple[np.ndarray, np.ndarray]:
    """Edges parent -> component of SKUs ``s``, as int64 SKU numbers (§5.3).

    A component may lie outside ``s``: that is how the closure finds SKUs no
    row names.
    """
    src_parts, dst_parts = [], []
    # Production SKUs: the lines of every BOM that may serve them, any validity.
    prod = np.flatnonzero(s.order_type == ORDER_PRODUCTION)
    li, bi = bom_candidates(m, s.item[prod], s.wh[prod])
    pi, lr = bom_lines(m, bi)
    parent = s.sku[prod][li][pi]
    lwh = m.lines["wh"][lr]
    comp_wh = np.where(lwh >= 0, lwh, parent % m.n_wh)
    src_parts.append(parent)
    dst_parts.append(m.lines["item"][lr] * m.n_wh + comp_wh)
    # Transfer SKUs: their refill warehouse.
    tr = s.order_type == ORDER_TRANSFER
    src_parts.append(s.sku[tr])
    dst_parts.append(s.refill[tr])
    # Firmed planned orders draw on their BOM lines or their source warehouse.
    fp = np.flatnonzero((f.bom >= 0) & f.live)
    pi, lr = bom_lines(m, f.bom[fp])
    parent = f.sku[fp][pi]
    lwh = m.lines["wh"][lr]
    src_parts.append(parent)
    dst_parts.append(m.lines["item"][lr] * m.n_wh + np.where(lwh >= 0, lwh, parent % m.n_wh))
    ft = np.flatnonzero((f.otype == ORDER_TRANSFER) & f.live)
    fsrc = firmed_source(f, s, ft)
    src_parts.append(f.sku[ft][fsrc >= 0])
    dst_parts.append(fsrc[fsrc >= 0])
    return np.concatenate(src_parts), np.concatenate(dst_parts)


def close_skus(index: SkuIndex, f: FirmedOrders, default_group: str | None) -> SkuGraph:
    """The SKUs the rows name, closed under the SKU graph (§5.2, §5.3).

    A component SKU no row names joins the set with its own settings, which
    may add edges in turn; repeated until no edge leaves the set.
    """
    m = index.masters
    sku = index.named
    while True:
        s = resolve_settings(m, sku, default_group)
        src, dst = sku_edges(m, s, f)
        new = unique_ints(dst[find_sorted(sku, dst) < 0])
        if len(new) == 0:
            break
        sku = unique_ints(np.concatenate([sku, new]))
    return SkuGraph(s, s.index(src), s.index(dst), no_refill_messages(m, s))


def levels_and_cycles(
    n: int, src: np.ndarray, dst: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Low-level codes and cycles of a graph (SPEC §5.3).

    Parameters
    ----------
    n : int
        Number of SKUs (graph nodes ``0..n-1``).
    src, dst : int64 (E,)
        Edges parent -> component (duplicates allowed).

    Returns
    -------
    llc : int64 (n,)
        Longest path length from a SKU without parent, ignoring edges inside
        a strongly connected component.
    component : int64 (n,)
        Strongly connected component label of each SKU.
    in_cycle : bool (n,)
        Whether the SKU belongs to a cycle (a component of two or more SKUs,
        or a SKU with an edge to itself).
    """
    if n == 0:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, np.empty(0, dtype=bool)
    graph = csr_array((np.ones(len(src), dtype=np.int8), (src, dst)), shape=(n, n))
    _, comp = connected_components(graph, directed=True, connection="strong")
    comp = comp.astype(np.int64)
    size = np.bincount(comp, minlength=n)
    in_cycle = size[comp] > 1
    self_loop = src == dst
    in_cycle[src[self_loop]] = True
    keep = comp[src] != comp[dst]
    s, d = src[keep], dst[keep]
    # Kahn's algorithm layer by layer: a node's level is the step at which its
    # last parent is removed, i.e. its longest path from a root.
    dag = csr_array((np.ones(len(s), dtype=np.int64), (s, d)), shape=(n, n))
    dag.sum_duplicates()
    dag.data[:] = 1
    indeg = np.asarray(dag.sum(axis=0)).ravel().astype(np.int64)
    llc = np.zeros(n, dtype=np.int64)
    frontier = np.flatnonzero(indeg == 0)
    level = 0
    indptr, indices = dag.indptr, dag.indices
    while len(frontier):
        llc[frontier] = level
        starts, ends = indptr[frontier], indptr[frontier + 1]
        counts = ends - starts
        idx = np.repeat(starts - (np.cumsum(counts) - counts), counts) + np.arange(counts.sum())
        children = indices[idx]
        np.subtract.at(indeg, children, 1)
        frontier = unique_ints(children[indeg[children] == 0])
        level += 1
    return llc, comp, in_cycle


@dataclass(frozen=True, slots=True)
class Levels:
    """Low-level codes and cycles of the run's SKUs.

    Attributes
    ----------
    llc : int64 (S,)
        Low-level code of each SKU: level 0 is planned first.
    component : int64 (S,)
        Strongly connected component of each SKU; an edge between two SKUs
        of one component carries no dependent demand.
    in_cycle : bool (S,)
        SKUs of a cycle.
    messages : Messages
        One ``BOM_CYCLE`` error per cycle, naming its SKUs ``item@warehouse``
        in code-point order.
    """

    llc: np.ndarray
    component: np.ndarray
    in_cycle: np.ndarray
    messages: Messages

    @property
    def n_levels(self) -> int:
        """Number of levels (0 without SKUs)."""
        return int(self.llc.max()) + 1 if len(self.llc) else 0


def levels(graph: SkuGraph, m: Masters) -> Levels:
    """Low-level codes and cycles of the run's SKU graph (§5.3)."""
    s = graph.settings
    llc, comp, in_cycle = levels_and_cycles(len(s.sku), graph.src, graph.dst)
    cyc = np.flatnonzero(in_cycle)
    msgs = Messages()
    if len(cyc):
        item, wh = sku_ids(m, s, cyc)
        names = text(item.astype(_STR), "@", wh.astype(_STR))
        labels = comp[cyc]
        order = np.lexsort((rank(names), labels))
        labels, names = labels[order], names[order]
        bounds = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1], True])
        # One text per cycle, not per row: cycles are few.
        texts = [",".join(names[a:b].tolist()) for a, b in itertools.pairwise(bounds)]
        k = len(texts)
        msgs = Messages.of(
            "error",
            "BOM_CYCLE",
            np.full(k, None, object),
            np.full(k, None, object),
            np.array(texts, dtype=object),
        )
    return Levels(llc, comp, in_cycle, msgs)
