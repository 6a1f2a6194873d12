"""Independent requirements and existing receipts of a run (SPEC §5.4).

On-hand, sales, purchase, production and transfer lines, safety stock,
forecasts (with ``transactions_period`` reduction) and firmed planned orders,
as columns filed into the planner; their dependent demand comes from
:meth:`server.engine.plan._Planner._explode`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from masterplan.server.engine.arrays import as_text, date_text, days, number_text, text
from masterplan.server.engine.columns import Requirements
from masterplan.server.engine.kinds import (
    K_FC,
    K_OH,
    K_PRDL,
    K_SO,
    K_SS,
    K_TRI,
    R_FIRM,
    R_OH,
    R_PO,
    R_PRD,
    R_TRR,
)

if TYPE_CHECKING:
    from masterplan.server.engine.plan import _Planner

__all__ = ["forecasts", "independent_requirements", "sku_ref"]


def independent_requirements(p: _Planner) -> None:
    """Independent requirements and existing receipts (§5.4)."""
    t, s = p.t, p.s
    p.reqs = Requirements()
    rec_sku, rec_date, rec_qty, rec_kind, rec_ref = [], [], [], [], []

    def receipt(
        sku: np.ndarray, date: np.ndarray, qty: np.ndarray, kind: int, ref: np.ndarray
    ) -> None:
        keep = qty > 0
        rec_sku.append(sku[keep])
        rec_date.append(date[keep])
        rec_qty.append(qty[keep])
        rec_kind.append(np.full(int(keep.sum()), kind, dtype=np.int64))
        rec_ref.append(as_text(ref)[keep])

    def req(
        sku: np.ndarray,
        date: np.ndarray,
        qty: np.ndarray,
        kind: int,
        ref: np.ndarray,
        prio: np.ndarray | None = None,
    ) -> None:
        keep = qty > 0
        p.reqs.add(
            sku[keep],
            p.eff(date[keep]),
            qty[keep],
            kind,
            p.refs.book.add_text(as_text(ref)[keep]),
            None if prio is None else prio[keep],
        )

    # On-hand: several rows of one SKU add up.
    oh = t["on_hand"]
    oh_sku = p.table_sku("on_hand", "item_id", "warehouse_id")
    uniq, inv = np.unique(oh_sku, return_inverse=True)
    total = np.bincount(inv.ravel(), weights=np.nan_to_num(oh["qty"]), minlength=len(uniq))
    oh_ref = sku_ref(p, "OH:", uniq)
    t0 = np.full(len(uniq), p.t0, dtype=np.int64)
    receipt(uniq, t0, total, R_OH, oh_ref)
    req(uniq, t0, -total, K_OH, oh_ref)

    so = t["sales_lines"]
    req(
        p.table_sku("sales_lines", "item_id", "warehouse_id"),
        days(so["requested_date"]),
        np.nan_to_num(so["qty"]),
        K_SO,
        text("SO:", so["order_id"], "/", number_text(so["line_no"])),
        np.nan_to_num(so["priority"]),
    )
    po = t["purchase_lines"]
    receipt(
        p.table_sku("purchase_lines", "item_id", "warehouse_id"),
        p.eff(days(po["delivery_date"])),
        np.nan_to_num(po["qty"]),
        R_PO,
        text("PO:", po["order_id"], "/", number_text(po["line_no"])),
    )
    pr = t["production_orders"]
    receipt(
        p.table_sku("production_orders", "item_id", "warehouse_id"),
        p.eff(days(pr["end_date"])),
        np.nan_to_num(pr["qty"]),
        R_PRD,
        text("PRD:", pr["order_id"]),
    )
    pl = t["production_lines"]
    req(
        p.table_sku("production_lines", "component_item_id", "warehouse_id"),
        days(pl["required_date"]),
        np.nan_to_num(pl["qty"]),
        K_PRDL,
        text("PRDL:", pl["order_id"], "/", number_text(pl["line_no"])),
    )
    tl = t["transfer_lines"]
    tref = text(tl["order_id"], "/", number_text(tl["line_no"]))
    receipt(
        p.table_sku("transfer_lines", "item_id", "to_warehouse_id"),
        p.eff(days(tl["receive_date"])),
        np.nan_to_num(tl["qty"]),
        R_TRR,
        text("TRR:", tref),
    )
    req(
        p.table_sku("transfer_lines", "item_id", "from_warehouse_id"),
        days(tl["ship_date"]),
        np.nan_to_num(tl["qty"]),
        K_TRI,
        text("TRI:", tref),
    )

    # Safety stock: one requirement at T0 or T0 plus the lead time.
    ss = np.flatnonzero(s.ss_qty > 0)
    ss_date = np.where(s.ss_today[ss], p.t0, p.lead_add(np.full(len(ss), p.t0), ss))
    req(s.sku[ss], ss_date, s.ss_qty[ss], K_SS, sku_ref(p, "SS:", s.sku[ss]))

    forecasts(p, req)

    # Firmed planned orders: receipts at their due date, and their explosion.
    f = t["firmed_planned_orders"]
    fref = text("PL:", f["planned_order_id"])
    n_before = sum(len(x) for x in rec_sku)
    receipt(p.f_sku, p.eff(p.f_due), np.nan_to_num(f["qty"]), R_FIRM, fref)
    p.rec = {
        "sku": np.concatenate(rec_sku),
        "date": np.concatenate(rec_date),
        "qty": np.concatenate(rec_qty),
        "kind": np.concatenate(rec_kind),
        "ref": np.concatenate(rec_ref),
    }
    # Receipt row of each firmed order (those with qty > 0).
    fkeep = np.nan_to_num(f["qty"]) > 0
    f_rec = np.full(len(fkeep), -1, dtype=np.int64)
    f_rec[fkeep] = n_before + np.arange(int(fkeep.sum()))
    p.f_rec = f_rec
    p._explode_firmed(f, fkeep)
    p.s_idx_rec = s.index(p.rec["sku"])


def sku_ref(p: _Planner, prefix: str, sku: np.ndarray) -> np.ndarray:
    m = p.m
    return text(
        prefix,
        m.item_str[sku // m.n_wh],
        "/",
        m.wh_str[sku % m.n_wh],
    )


def forecasts(p: _Planner, req: Callable[..., None]) -> None:
    """Forecast lines on or after T0, optionally reduced by sales (§5.4)."""
    t, m, s = p.t, p.m, p.s
    fc = t["forecasts"]
    sku = p.table_sku("forecasts", "item_id", "warehouse_id")
    d = days(fc["forecast_date"])
    q = np.nan_to_num(fc["qty"])
    keep = d >= p.t0
    sku, d, q = sku[keep], d[keep], q[keep]
    # Several lines of one SKU and date add up.
    if len(sku):
        # One integer per (SKU, date), SKU-major: sorting it sorts by both.
        key = sku * (1 << 24) + (d + (1 << 23))
        order = np.argsort(key, kind="stable")
        key = key[order]
        first = np.r_[True, key[1:] != key[:-1]]
        q = np.add.reduceat(q[order], np.flatnonzero(first))
        key = key[first]
        sku, d = key >> 24, (key & ((1 << 24) - 1)) - (1 << 23)
    # Zero-quantity lines play no part at all, also not as period bounds.
    nz = q > 0
    sku, d, q = sku[nz], d[nz], q[nz]
    sidx = s.index(sku)
    inc = s.include_fc[sidx]
    sku, d, q, sidx = sku[inc], d[inc], q[inc], sidx[inc]
    red = s.reduce_fc[sidx]
    if red.any():
        # A line's period ends at the next later line of its SKU (lines are
        # sorted by SKU and date), the last line's after 30 days.
        nxt = d + 30
        nxt[:-1] = np.where(sku[1:] == sku[:-1], d[1:], nxt[:-1])
        so = t["sales_lines"]
        so_sku = p.table_sku("sales_lines", "item_id", "warehouse_id")
        so_d = p.eff(days(so["requested_date"]))
        so_q = np.nan_to_num(so["qty"])
        pos = so_q > 0
        so_sku, so_d, so_q = so_sku[pos], so_d[pos], so_q[pos]
        order = np.lexsort((so_d, so_sku))
        so_sku, so_d, so_q = so_sku[order], so_d[order], so_q[order]
        csum = np.r_[0.0, np.cumsum(so_q)]

        def key(k: np.ndarray, day: np.ndarray) -> np.ndarray:  # SKU-major, date-minor
            return k * (1 << 24) + (day + (1 << 23))

        key_s = key(so_sku, so_d)
        lo = np.searchsorted(key_s, key(sku, d), "left")
        hi = np.searchsorted(key_s, key(sku, nxt), "left")
        sold = csum[hi] - csum[lo]
        q = np.where(red, np.maximum(q - sold, 0.0), q)
    ref = text(
        "FC:",
        m.item_str[sku // m.n_wh],
        "/",
        m.wh_str[sku % m.n_wh],
        "/",
        date_text(d),
    )
    req(sku, d, q, K_FC, ref)
