"""The last phases of a run: delays (SPEC §5.7), action messages (§5.8) and
the output tables, computed from the state the netting left in the planner."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from masterplan.contract.coded import Coded
from masterplan.server.engine.arrays import NO_DATE, as_objects, as_text, gather, text, to_datetime
from masterplan.server.engine.kinds import (
    K_FC,
    K_SO,
    K_SS,
    K_TRI,
    R_FIRM,
    R_PO,
    R_PRD,
    R_TRR,
    REC_KIND_NAMES,
    REQ_KIND_NAMES,
)
from masterplan.server.engine.model import ORDER_PURCHASE, ORDER_TRANSFER, ORDER_TYPE_NAMES
from masterplan.server.engine.types import ResultTable, Table

if TYPE_CHECKING:
    from masterplan.server.engine.plan import _Planner

__all__ = ["build_tables", "compute_delays"]


# -- delays (§5.7) -----------------------------------------------------------
def compute_delays(p: _Planner) -> None:
    rec, po, req, peg = p.rec, p.po, p.req, p.peg
    # Available dates: receipts their effective date; planned orders their due date.
    rec_avail = rec["date"].copy()
    po_avail = po["due"].copy()
    futures = np.full(len(req["sidx"]), -NO_DATE, dtype=np.int64)
    req_lvl = p.llc[req["sidx"]] if len(req["sidx"]) else np.empty(0, np.int64)
    peg_lvl = req_lvl[peg["req"]] if len(peg["req"]) else np.empty(0, np.int64)
    cause = req["cause"]
    # The SKU (index) and type of each cause.
    rec_sidx_all = p.s_idx_rec
    n_lvl = int(p.llc.max()) + 1 if len(p.llc) else 0
    delayed = np.zeros(len(req["sidx"]), dtype=bool)
    for lvl in range(n_lvl - 1, -1, -1):
        # 1. Supplies at this level: pushed by delayed requirements they caused.
        caused = np.flatnonzero(delayed & (cause != -1))
        if len(caused):
            c = cause[caused]
            is_po = c <= -2
            k = -2 - c[is_po]
            lvl_ok = p.llc[po["sidx"][k]] == lvl
            push = p.lead_add(futures[caused[is_po]][lvl_ok], po["sidx"][k][lvl_ok])
            np.maximum.at(po_avail, k[lvl_ok], push)
            rr = c[~is_po]
            lvl_ok = p.llc[rec_sidx_all[rr]] == lvl
            push = p.lead_add(futures[caused[~is_po]][lvl_ok], rec_sidx_all[rr][lvl_ok])
            np.maximum.at(rec_avail, rr[lvl_ok], push)
        # 2. Futures of this level's requirements.
        sel = np.flatnonzero(peg_lvl == lvl)
        src = peg["src"][sel]
        avail = np.where(
            src >= 0,
            gather(rec_avail, np.where(src >= 0, src, -1), 0),
            gather(po_avail, np.where(src < 0, -1 - src, -1), 0),
        )
        np.maximum.at(futures, peg["req"][sel], avail)
        here = req_lvl == lvl
        short = here & (req["short"] > 1e-9)
        futures[short] = NO_DATE
        delayed |= here & ((futures >= NO_DATE) | (futures > req["date"]))
    p.futures = futures
    p.delayed = delayed
    p.rec_avail = rec_avail
    p.po_avail = po_avail


# -- output ------------------------------------------------------------------
def build_tables(p: _Planner) -> None:
    """The output tables; id, kind and ref columns are :class:`Coded` into
    arrays the run already holds (no text is gathered row by row)."""
    s, m, rec, po, req, peg = p.s, p.m, p.rec, p.po, p.req, p.peg
    tables: dict[str, ResultTable] = {}
    po_sidx = po["sidx"]
    otype = po["type"]
    # Planned order ids and refs are spelled once, here.
    ids = p.refs.ids(po_sidx, po["num"])
    pl_ids = text("PL:", ids)
    req_refs = p.refs.values(pl_ids)
    tables["planned_orders"] = {
        "planned_order_id": ids,
        "item_id": Coded(s.item[po_sidx], m.item_ids),
        "warehouse_id": Coded(s.wh[po_sidx], m.warehouse_ids),
        "order_type": Coded(otype, ORDER_TYPE_NAMES),
        "qty": po["qty"],
        "order_date": to_datetime(po["order"]),
        "due_date": to_datetime(po["due"]),
        "requirement_date": to_datetime(po["netting"]),
        "from_warehouse_id": Coded(
            np.where((otype == ORDER_TRANSFER) & (po["source"] >= 0), po["source"] % m.n_wh, -1),
            m.warehouse_ids,
        ),
        "vendor_id": Coded(np.where(otype == ORDER_PURCHASE, po_sidx, -1), s.vendor),
        "bom_id": Coded(po["bom"], m.boms["bom_id"]),
        "firmed": po["firmed"].astype(np.float64),
    }
    # Pegging: a supply is a receipt (src >= 0) or planned order -1 - src.
    src = peg["src"]
    is_rec = src >= 0
    ri = np.where(is_rec, src, -1)
    pk = np.where(is_rec, -1, -1 - src)
    rq = peg["req"]
    r_sidx = req["sidx"][rq]
    n_rec = len(rec["ref"])
    supply_refs = np.concatenate([as_text(rec["ref"]), pl_ids])
    tables["pegging"] = {
        "item_id": Coded(s.item[r_sidx], m.item_ids),
        "warehouse_id": Coded(s.wh[r_sidx], m.warehouse_ids),
        # A planned order's supply kind is "pl", the name of firmed receipts.
        "supply_kind": Coded(np.where(is_rec, gather(rec["kind"], ri, 0), R_FIRM), REC_KIND_NAMES),
        "supply_ref": Coded(np.where(is_rec, ri, n_rec + pk), supply_refs),
        "supply_date": to_datetime(
            np.where(is_rec, gather(rec["date"], ri, 0), gather(po["netting"], pk, 0))
        ),
        "demand_kind": Coded(req["kind"][rq], REQ_KIND_NAMES),
        "demand_ref": Coded(req["ref"][rq], req_refs),
        "demand_date": to_datetime(req["date"][rq]),
        "qty": peg["qty"],
    }
    tables["action_messages"] = _actions(p)
    # Delay messages for delayed so, fc, tri and ss requirements.
    dm = np.flatnonzero(p.delayed & np.isin(req["kind"], [K_SO, K_FC, K_TRI, K_SS]))
    fut = p.futures[dm]
    never = fut >= NO_DATE
    d_sidx = req["sidx"][dm]
    tables["delay_messages"] = {
        "demand_kind": Coded(req["kind"][dm], REQ_KIND_NAMES),
        "demand_ref": Coded(req["ref"][dm], req_refs),
        "item_id": Coded(s.item[d_sidx], m.item_ids),
        "warehouse_id": Coded(s.wh[d_sidx], m.warehouse_ids),
        "requirement_date": to_datetime(req["date"][dm]),
        "futures_date": to_datetime(np.where(never, NO_DATE, fut)),
        "delay_days": np.where(never, np.nan, (fut - req["date"][dm]).astype(np.float64)),
    }
    tables["plan_messages"] = p.msgs.table()
    p.tables = tables


def _actions(p: _Planner) -> Table:
    """Action messages for existing receipts inside their coverage fence (§5.8)."""
    s, rec, req, peg = p.s, p.rec, p.req, p.peg
    n_rec = len(rec["sku"])
    taken = np.zeros(n_rec)
    earliest = np.full(n_rec, NO_DATE, dtype=np.int64)
    to_rec = peg["src"] >= 0
    np.add.at(taken, peg["src"][to_rec], peg["qty"][to_rec])
    np.minimum.at(earliest, peg["src"][to_rec], req["date"][peg["req"][to_rec]])
    sidx = p.s_idx_rec
    existing = np.isin(rec["kind"], [R_PO, R_PRD, R_TRR])
    fenced_in = rec["date"] <= p.t0 + s.fence[sidx] if n_rec else np.empty(0, bool)
    cand = existing & fenced_in
    cancel = cand & (taken <= 1e-9)
    decrease = cand & ~cancel & (taken < rec["qty"] - 1e-9)
    advance = cand & ~cancel & (earliest < rec["date"])
    postpone = cand & ~cancel & (earliest > rec["date"] + s.tolerance[sidx] if n_rec else cand)
    parts = []
    for mask, action, has_date, has_qty in (
        (cancel, "cancel", False, True),
        (decrease, "decrease", False, True),
        (advance, "advance", True, False),
        (postpone, "postpone", True, False),
    ):
        i = np.flatnonzero(mask)
        item, wh = p.sku_text(sidx[i])
        sug_qty = (
            np.where(action == "cancel", 0.0, taken[i]) if has_qty else np.full(len(i), np.nan)
        )
        parts.append(
            {
                "supply_kind": REC_KIND_NAMES[rec["kind"][i]],
                "supply_ref": as_objects(rec["ref"][i]),
                "item_id": item,
                "warehouse_id": wh,
                "action": np.full(len(i), action, dtype=object),
                "receipt_date": to_datetime(rec["date"][i]),
                "receipt_qty": rec["qty"][i],
                "suggested_date": to_datetime(
                    earliest[i] if has_date else np.full(len(i), NO_DATE)
                ),
                "suggested_qty": sug_qty,
            }
        )
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
