"""What a run keeps so that a later net change can reuse it (SPEC §6).

A net change re-plans the SKUs a change reaches and takes everything else
from the previous run. For that it needs more than the result tables: the
data the run planned (to find what changed), the SKU graph (to find what a
change reaches, also along edges that the change removed), the delayed
dependent requirements (to know whether the re-planned SKUs move the
futures of the orders above them) and the netting's own plan messages (the
other messages are recomputed from the data every run). :class:`PlanBasis`
holds exactly that, keyed by SKU numbers, which stay the same from run to
run as long as the master data does (a net change checks that first).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from masterplan.contract.coded import Coded
from masterplan.server.engine.delays import Delays
from masterplan.server.engine.front import Front
from masterplan.server.engine.kinds import K_PL
from masterplan.server.engine.layers import PatchedTable
from masterplan.server.engine.messages import Messages
from masterplan.server.engine.netting import Netting
from masterplan.server.engine.skus import Masters, SkuSettings
from masterplan.server.engine.types import ResultTable, TableMap

__all__ = ["PlanBasis", "message_skus", "plan_basis", "sorted_edges"]


@dataclass(frozen=True, slots=True)
class PlanBasis:
    """A run's result with what a net change needs to reuse it.

    Attributes
    ----------
    data : TableMap
        The input tables the run planned (held, not copied).
    plan_date, default_group
        The run's parameters: another value is another plan.
    tables : dict of ResultTable
        The run's five output tables.
    sku : int64 (S,)
        The plan's SKU numbers, sorted.
    edge_src, edge_dst : int64 (E,)
        The SKU graph's edges parent -> component, as SKU numbers, sorted
        by parent (what finds the SKUs below a change).
    late : PatchedTable
        Every delayed dependent requirement (kind ``pl``), by its own SKU:
        ``parent`` (int64, the SKU of the order whose explosion made it),
        ``sku`` (int64, its own), ``ref`` (object,
        ``PL:{planned_order_id}[/{line_no}]``) and ``futures`` (int64, its
        futures date, ``NO_DATE`` for never). Patched by net changes as the
        result tables are.
    net_messages : Messages
        The plan messages the netting wrote (``NO_BOM`` of planned orders).
    net_message_sku : int64 (M,)
        The SKU number of each.
    front : Front
        The run's input checks, SKU index, graph and levels: a net change
        takes what its changes leave alone from there.
    """

    data: TableMap
    plan_date: dt.date
    default_group: str | None
    tables: Mapping[str, ResultTable]
    sku: np.ndarray
    edge_src: np.ndarray
    edge_dst: np.ndarray
    late: PatchedTable
    net_messages: Messages
    net_message_sku: np.ndarray
    front: Front

    @property
    def arrays_nbytes(self) -> int:
        """Bytes of what the basis holds beyond its data and result tables
        (of its front: the SKU numbers of the rows, the id positions and key
        hashes of the checks, the graph and the levels; its checked tables
        share the data's arrays where no row was left out)."""
        late = self.late
        refs = 0
        arrays = [self.sku, self.edge_src, self.edge_dst, self.net_message_sku]
        arrays += [late.base_sku, late.base_order, late.base_start, late.patch_sku, late.gone]
        for piece in late.pieces():
            arrays += [piece["parent"], piece["sku"], piece["futures"]]  # type: ignore[list-item]
            refs += len(piece["ref"])
        front = self.front
        kept = [
            *(getattr(front.index.rows, f.name) for f in dataclasses.fields(front.index.rows)),
            front.index.named,
            front.graph.src,
            front.graph.dst,
            front.levels.llc,
            front.levels.component,
            *front.validated.codes.values(),
            *front.validated.key_hashes.values(),
        ]
        # Object refs: the pointer and a short Python string each.
        held = sum(a.nbytes for a in (*arrays, *kept))
        return held + 80 * refs


def message_skus(m: Masters, messages: Messages) -> np.ndarray:
    """int64 (M,): the SKU number each message names (-1 where it names none)."""
    return m.known_sku(messages.item_id, messages.warehouse_id)


def plan_basis(
    data: TableMap,
    plan_date: dt.date,
    default_group: str | None,
    tables: dict[str, ResultTable],
    m: Masters,
    s: SkuSettings,
    edges: tuple[np.ndarray, np.ndarray],
    net: Netting,
    delays: Delays,
    front: Front,
) -> PlanBasis:
    """The basis of a run from its phases' results.

    ``edges`` are the SKU graph's edges as SKU positions. The refs of the
    delayed dependent requirements are read from the pegging table's
    ``demand_ref`` dictionary, which holds every requirement ref of the run.
    """
    req = net.requirements
    rows = np.flatnonzero(delays.delayed & (req.kind == K_PL) & (req.cause != -1))
    cause = req.cause[rows]
    by_order = cause <= -2
    parent = np.where(
        by_order,
        net.orders.sidx[np.where(by_order, -2 - cause, 0)] if len(net.orders) else -1,
        net.receipts.sidx[np.where(by_order, 0, cause)] if len(net.receipts) else -1,
    )
    demand_ref = tables["pegging"]["demand_ref"]
    assert isinstance(demand_ref, Coded)
    refs = Coded(req.ref[rows], demand_ref.values).to_array()
    late_sku = s.sku[req.sidx[rows]]
    late = {
        "parent": s.sku[parent],
        "sku": late_sku,
        "ref": refs,
        "futures": delays.futures[rows],
    }
    src, dst = sorted_edges(s.sku[edges[0]], s.sku[edges[1]])
    return PlanBasis(
        data=data,
        plan_date=plan_date,
        default_group=default_group,
        tables=tables,
        sku=s.sku.copy(),
        edge_src=src,
        edge_dst=dst,
        late=PatchedTable.of(late, late_sku, len(m.item_ids) * m.n_wh),
        net_messages=net.messages,
        net_message_sku=message_skus(m, net.messages),
        front=front,
    )


def sorted_edges(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Edges ``src -> dst`` sorted by ``src`` (stable), as :class:`PlanBasis` keeps them."""
    order = np.argsort(src, kind="stable")
    return src[order], dst[order]
