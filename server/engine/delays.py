"""Delays (SPEC §5.7): futures dates, computed bottom-up.

Every receipt has an available date; a requirement's futures date is the
latest available date among what it took from (never, with a shortfall),
and it is delayed when that is never or after its own date. A delayed
requirement pushes the availability of the production or transfer order
whose explosion caused it to its futures date plus that order's lead time,
which in turn may delay what took from that order one level up. So the
levels are visited from the highest low-level code (the components) to 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from masterplan.server.engine.arrays import NO_DATE, gather
from masterplan.server.engine.graph import Levels
from masterplan.server.engine.kernels import EPS
from masterplan.server.engine.netting import Netting
from masterplan.server.engine.skus import SkuSettings

__all__ = ["Delays", "compute_delays"]


@dataclass(frozen=True, slots=True)
class Delays:
    """Futures of the walked requirements.

    Attributes
    ----------
    futures : int64 (R,)
        Futures date of each requirement of ``Netting.requirements``;
        :data:`~masterplan.server.engine.arrays.NO_DATE` for never; ``-NO_DATE``
        for a requirement that took nothing and has no shortfall.
    delayed : bool (R,)
        Futures never or after the requirement's date.
    receipt_available : int64 (N,)
        Available date of each receipt of ``Netting.receipts`` (a firmed
        production or transfer order's pushed by its delayed requirements).
    order_available : int64 (K,)
        Available date of each planned order: its due date, pushed likewise.
    """

    futures: np.ndarray
    delayed: np.ndarray
    receipt_available: np.ndarray
    order_available: np.ndarray


def compute_delays(net: Netting, s: SkuSettings, levels: Levels) -> Delays:
    """Futures dates and available dates, bottom-up (§5.7).

    Parameters
    ----------
    net : Netting
        Receipts, requirements, planned orders and pegging of the run.
    s : SkuSettings
        Lead times and calendars of the SKUs.
    levels : Levels
        Low-level codes.
    """
    rec, po, req, peg = net.receipts, net.orders, net.requirements, net.pegging
    llc = levels.llc
    # Available dates: receipts their effective date; planned orders their due date.
    rec_avail = rec.date.astype(np.int64)
    # int64 whatever the due dates' width: a pushed date may be NO_DATE.
    po_avail = po.due.astype(np.int64)
    futures = np.full(len(req.sidx), -NO_DATE, dtype=np.int64)
    req_lvl = llc[req.sidx] if len(req.sidx) else np.empty(0, np.int64)
    peg_lvl = req_lvl[peg.req] if len(peg.req) else np.empty(0, np.int64)
    cause = req.cause
    delayed = np.zeros(len(req.sidx), dtype=bool)
    for lvl in range(levels.n_levels - 1, -1, -1):
        # 1. Supplies at this level: pushed by the delayed requirements they caused.
        caused = np.flatnonzero(delayed & (cause != -1))
        if len(caused):
            c = cause[caused]
            is_po = c <= -2
            k = -2 - c[is_po]
            lvl_ok = llc[po.sidx[k]] == lvl
            push = s.lead_add(futures[caused[is_po]][lvl_ok], po.sidx[k][lvl_ok])
            np.maximum.at(po_avail, k[lvl_ok], push)
            rr = c[~is_po]
            lvl_ok = llc[rec.sidx[rr]] == lvl
            push = s.lead_add(futures[caused[~is_po]][lvl_ok], rec.sidx[rr][lvl_ok])
            np.maximum.at(rec_avail, rr[lvl_ok], push)
        # 2. Futures of this level's requirements.
        sel = np.flatnonzero(peg_lvl == lvl)
        src = peg.src[sel]
        avail = np.where(
            src >= 0,
            gather(rec_avail, np.where(src >= 0, src, -1), 0),
            gather(po_avail, np.where(src < 0, -1 - src, -1), 0),
        )
        np.maximum.at(futures, peg.req[sel], avail)
        here = req_lvl == lvl
        short = here & (req.short > EPS)
        futures[short] = NO_DATE
        delayed |= here & ((futures >= NO_DATE) | (futures > req.date))
    return Delays(futures, delayed, rec_avail, po_avail)
