"""The last phases of a run: delays (SPEC §5.7), action messages (§5.8) and
the output tables, computed from the state the netting left in the planner."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from server.engine.arrays import NO_DATE, as_objects, gather, to_datetime
from server.engine.columns import either
from server.engine.kinds import (
    K_FC,
    K_SO,
    K_SS,
    K_TRI,
    R_PO,
    R_PRD,
    R_TRR,
    REC_KIND_NAMES,
    REQ_KIND_NAMES,
)
from server.engine.model import ORDER_PURCHASE, ORDER_TRANSFER, ORDER_TYPE_NAMES
from server.engine.types import Table

if TYPE_CHECKING:
    from server.engine.plan import _Planner

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
    s, m, rec, po, req, peg = p.s, p.m, p.rec, p.po, p.req, p.peg
    tables: dict[str, Table] = {}
    item, wh = p.sku_text(po["sidx"])
    otype = po["type"]
    tables["planned_orders"] = {
        "planned_order_id": po["id"],
        "item_id": item,
        "warehouse_id": wh,
        "order_type": ORDER_TYPE_NAMES[otype],
        "qty": po["qty"],
        "order_date": to_datetime(po["order"]),
        "due_date": to_datetime(po["due"]),
        "requirement_date": to_datetime(po["netting"]),
        "from_warehouse_id": np.where(
            otype == ORDER_TRANSFER,
            m.warehouse_ids[np.maximum(po["source"], 0) % m.n_wh] if len(m.warehouse_ids) else None,
            None,
        ),
        "vendor_id": np.where(otype == ORDER_PURCHASE, s.vendor[po["sidx"]], None),
        "bom_id": np.where(
            po["bom"] >= 0,
            m.boms["bom_id"][np.maximum(po["bom"], 0)] if len(m.boms["bom_id"]) else None,
            None,
        ),
        "firmed": po["firmed"].astype(np.float64),
    }
    # Pegging
    src = peg["src"]
    ri = np.where(src >= 0, src, -1)
    pk = np.where(src < 0, -1 - src, -1)
    is_rec = src >= 0
    rq = peg["req"]
    ritem, rwh = p.sku_text(req["sidx"][rq])

    def pick(a: np.ndarray, b: np.ndarray, fill: object) -> np.ndarray:
        return np.where(is_rec, gather(a, ri, fill), gather(b, pk, fill))

    tables["pegging"] = {
        "item_id": ritem,
        "warehouse_id": rwh,
        "supply_kind": np.where(is_rec, gather(REC_KIND_NAMES[rec["kind"]], ri), "pl").astype(
            object
        ),
        "supply_ref": either(rec["ref"], ri, po["id"], pk, "PL:"),
        "supply_date": to_datetime(pick(rec["date"], po["netting"], 0)),
        "demand_kind": REQ_KIND_NAMES[req["kind"][rq]],
        "demand_ref": req["ref"][rq],
        "demand_date": to_datetime(req["date"][rq]),
        "qty": peg["qty"],
    }
    tables["action_messages"] = _actions(p)
    # Delay messages for delayed so, fc, tri and ss requirements.
    dm = np.flatnonzero(p.delayed & np.isin(req["kind"], [K_SO, K_FC, K_TRI, K_SS]))
    fut = p.futures[dm]
    never = fut >= NO_DATE
    ditem, dwh = p.sku_text(req["sidx"][dm])
    tables["delay_messages"] = {
        "demand_kind": REQ_KIND_NAMES[req["kind"][dm]],
        "demand_ref": req["ref"][dm],
        "item_id": ditem,
        "warehouse_id": dwh,
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
