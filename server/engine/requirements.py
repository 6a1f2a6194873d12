"""Requirements and receipts of a run (SPEC §5.4).

Independent requirements (sales, production lines, transfer issues, negative
on-hand, safety stock, forecasts with their ``transactions_period``
reduction) and existing receipts (on-hand, purchase lines, production
orders, transfer receipts, firmed planned orders), plus the dependent
requirements of firmed planned orders, which exist before any netting. The
dependent requirements of the run's own planned orders come level by level
from :mod:`~masterplan.server.engine.netting`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from masterplan.server.engine.arrays import as_text, date_text, days, number_text, text
from masterplan.server.engine.calendar import effective
from masterplan.server.engine.columns import Requirements
from masterplan.server.engine.graph import Levels
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
from masterplan.server.engine.messages import Messages
from masterplan.server.engine.orderrefs import OrderRefs
from masterplan.server.engine.orders import FirmedOrders, explode_firmed
from masterplan.server.engine.refs import RefBook
from masterplan.server.engine.skus import Masters, SkuSettings, TableSkus
from masterplan.server.engine.types import Table

__all__ = [
    "Receipts",
    "RequirementsAndReceipts",
    "forecast_requirements",
    "requirements_and_receipts",
    "sku_ref",
]


@dataclass(frozen=True, slots=True)
class Receipts:
    """Receipts as columns, one entry per receipt with a quantity.

    Attributes
    ----------
    sku, sidx : int64 (N,)
        SKU number and position.
    date : int64 (N,)
        Effective date, which is also the netting date (days).
    qty : float64 (N,)
        Quantity, above zero.
    kind : int64 (N,)
        ``R_*`` kind code (:mod:`~masterplan.server.engine.kinds`).
    ref : StringDType (N,)
        The ref (``PO:{order}/{line}``, ``PL:{planned_order_id}``, ...).
    """

    sku: np.ndarray
    sidx: np.ndarray
    date: np.ndarray
    qty: np.ndarray
    kind: np.ndarray
    ref: np.ndarray

    def __len__(self) -> int:
        return len(self.sku)

    def take(self, rows: np.ndarray) -> Receipts:
        """The receipts ``rows`` (positions), in that order."""
        return Receipts(
            self.sku[rows],
            self.sidx[rows],
            self.date[rows],
            self.qty[rows],
            self.kind[rows],
            self.ref[rows],
        )


@dataclass(frozen=True, slots=True)
class RequirementsAndReceipts:
    """What the netting starts from.

    Attributes
    ----------
    requirements : Requirements
        Independent requirements (in the order on-hand, sales, production
        lines, transfer issues, safety stock, forecasts) and the dependent
        requirements of firmed planned orders, whose ``cause`` is the
        firmed order's row in ``receipts``. Requirements beyond their SKU's
        coverage time fence are still here; the netting ignores them.
    receipts : Receipts
        On-hand, purchase lines, production orders, transfer receipts and
        firmed planned orders, in that order (not yet in receipt order).
    book : RefBook
        The refs of ``requirements``.
    messages : Messages
        Warnings about firmed orders (no source warehouse, no valid BOM).
    """

    requirements: Requirements
    receipts: Receipts
    book: RefBook
    messages: Messages


def sku_ref(m: Masters, prefix: str, sku: np.ndarray) -> np.ndarray:
    """StringDType (N,): ``{prefix}{item}/{warehouse}`` of SKU numbers ``sku``."""
    return text(prefix, m.item_str[sku // m.n_wh], "/", m.wh_str[sku % m.n_wh])


def requirements_and_receipts(
    tables: dict[str, Table],
    rows: TableSkus,
    m: Masters,
    s: SkuSettings,
    levels: Levels,
    firmed: FirmedOrders,
    refs: OrderRefs,
    t0: int,
) -> RequirementsAndReceipts:
    """Independent requirements, existing receipts and the firmed orders'
    dependent requirements (§5.4, §5.6).

    Rows without a quantity make neither: a zero or NULL quantity is nothing.

    Parameters
    ----------
    tables : dict of Table
        The validated input tables.
    rows : TableSkus
        SKU number of their rows.
    m, s : Masters, SkuSettings
        The run's masters and (closed) SKU set.
    levels : Levels
        Cycles, for the firmed orders' explosion.
    firmed : FirmedOrders
        The firmed planned orders, read.
    refs : OrderRefs
        Spells BOM line suffixes of firmed explosions.
    t0 : int
        The plan date.
    """
    t = tables
    book = RefBook()
    req_parts: list[Requirements] = []
    rec_sku: list[np.ndarray] = []
    rec_date: list[np.ndarray] = []
    rec_qty: list[np.ndarray] = []
    rec_kind: list[np.ndarray] = []
    rec_ref: list[np.ndarray] = []

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
        nonlocal book
        keep = qty > 0
        book, codes = book.add_text(as_text(ref)[keep])
        req_parts.append(
            Requirements.of(
                sku[keep],
                effective(date[keep], t0),
                qty[keep],
                kind,
                codes,
                None if prio is None else prio[keep],
            )
        )

    # On-hand: several rows of one SKU add up; a negative total is a requirement.
    oh = t["on_hand"]
    uniq, inv = np.unique(rows.on_hand, return_inverse=True)
    total = np.bincount(inv.ravel(), weights=np.nan_to_num(oh["qty"]), minlength=len(uniq))
    oh_ref = sku_ref(m, "OH:", uniq)
    at_t0 = np.full(len(uniq), t0, dtype=np.int64)
    receipt(uniq, at_t0, total, R_OH, oh_ref)
    req(uniq, at_t0, -total, K_OH, oh_ref)

    so = t["sales_lines"]
    req(
        rows.sales_lines,
        days(so["requested_date"]),
        np.nan_to_num(so["qty"]),
        K_SO,
        text("SO:", so["order_id"], "/", number_text(so["line_no"])),
        np.nan_to_num(so["priority"]),
    )
    po = t["purchase_lines"]
    receipt(
        rows.purchase_lines,
        effective(days(po["delivery_date"]), t0),
        np.nan_to_num(po["qty"]),
        R_PO,
        text("PO:", po["order_id"], "/", number_text(po["line_no"])),
    )
    pr = t["production_orders"]
    receipt(
        rows.production_orders,
        effective(days(pr["end_date"]), t0),
        np.nan_to_num(pr["qty"]),
        R_PRD,
        text("PRD:", pr["order_id"]),
    )
    pl = t["production_lines"]
    req(
        rows.production_lines,
        days(pl["required_date"]),
        np.nan_to_num(pl["qty"]),
        K_PRDL,
        text("PRDL:", pl["order_id"], "/", number_text(pl["line_no"])),
    )
    tl = t["transfer_lines"]
    tref = text(tl["order_id"], "/", number_text(tl["line_no"]))
    receipt(
        rows.transfer_to,
        effective(days(tl["receive_date"]), t0),
        np.nan_to_num(tl["qty"]),
        R_TRR,
        text("TRR:", tref),
    )
    req(
        rows.transfer_from,
        days(tl["ship_date"]),
        np.nan_to_num(tl["qty"]),
        K_TRI,
        text("TRI:", tref),
    )

    # Safety stock: one requirement at T0 or T0 plus the lead time.
    ss = np.flatnonzero(s.ss_qty > 0)
    ss_date = np.where(s.ss_today[ss], t0, s.lead_add(np.full(len(ss), t0), ss))
    req(s.sku[ss], ss_date, s.ss_qty[ss], K_SS, sku_ref(m, "SS:", s.sku[ss]))

    fc_sku, fc_date, fc_qty, fc_ref = forecast_requirements(t, rows, m, s, t0)
    req(fc_sku, fc_date, fc_qty, K_FC, fc_ref)

    # Firmed planned orders: receipts at their due date, and their explosion.
    f = t["firmed_planned_orders"]
    n_before = sum(len(x) for x in rec_sku)
    receipt(
        firmed.sku,
        effective(firmed.due_date, t0),
        np.nan_to_num(f["qty"]),
        R_FIRM,
        text("PL:", f["planned_order_id"]),
    )
    rec_all = np.concatenate(rec_sku)
    receipts = Receipts(
        sku=rec_all,
        sidx=s.index(rec_all),
        date=np.concatenate(rec_date),
        qty=np.concatenate(rec_qty),
        kind=np.concatenate(rec_kind),
        ref=np.concatenate(rec_ref),
    )
    # Receipt row of each live firmed order: the cause of its requirements.
    receipt_row = np.full(len(firmed.live), -1, dtype=np.int64)
    receipt_row[firmed.live] = n_before + np.arange(int(firmed.live.sum()))
    dependent, book, msgs = explode_firmed(
        m, s, levels.component, t0, book, refs, f, firmed, receipt_row
    )
    req_parts.append(dependent)
    return RequirementsAndReceipts(Requirements.concat(req_parts), receipts, book, msgs)


def forecast_requirements(
    tables: dict[str, Table], rows: TableSkus, m: Masters, s: SkuSettings, t0: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Forecast requirements (§5.4): lines on or after ``T0``, per SKU and date,
    of SKUs that include forecasts, reduced by sales where the SKU says so.

    A line's period runs from its date up to, not including, the next later
    line of its SKU (30 days for the last); ``transactions_period`` reduces
    it, not below zero, by the SKU's sales lines whose effective date lies in
    it. Zero-quantity lines play no part, also not as period bounds.

    Returns
    -------
    sku : int64 (N,)
        SKU numbers, sorted, with ``date`` (int64 days) sorted within a SKU.
    date : int64 (N,)
    qty : float64 (N,)
        Quantities after the reduction (zero where fully consumed).
    ref : StringDType (N,)
        ``FC:{item}/{warehouse}/{date}``.
    """
    t = tables
    fc = t["forecasts"]
    sku = rows.forecasts
    d = days(fc["forecast_date"])
    q = np.nan_to_num(fc["qty"])
    keep = d >= t0
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
        so_sku = rows.sales_lines
        so_d = effective(days(so["requested_date"]), t0)
        so_q = np.nan_to_num(so["qty"])
        pos = so_q > 0
        so_sku, so_d, so_q = so_sku[pos], so_d[pos], so_q[pos]
        order = np.lexsort((so_d, so_sku))
        so_sku, so_d, so_q = so_sku[order], so_d[order], so_q[order]
        csum = np.r_[0.0, np.cumsum(so_q)]

        def key_of(k: np.ndarray, day: np.ndarray) -> np.ndarray:  # SKU-major, date-minor
            return k * (1 << 24) + (day + (1 << 23))

        key_s = key_of(so_sku, so_d)
        lo = np.searchsorted(key_s, key_of(sku, d), "left")
        hi = np.searchsorted(key_s, key_of(sku, nxt), "left")
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
    return sku, d, q, ref
