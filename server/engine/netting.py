"""Netting (SPEC §5.5): the walk over all SKUs, level by level.

SKUs of one low-level code depend only on the requirements the levels above
them cause, so each level is netted in one call of the compiled walk
(:func:`~masterplan.server.engine.kernels.net_level`) over all its SKUs. The
level's planned orders (§5.6) are then exploded into dependent requirements,
which wait in the bucket of their component's level. This module is the
Python driver: it files requirements by level, puts them in walk order and
receipts in receipt order, and numbers orders, requirements and pegging
across levels.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import TypeVar

import numpy as np

from masterplan.server.engine.arrays import gather, narrow
from masterplan.server.engine.columns import Requirements, select, walk_order
from masterplan.server.engine.graph import Levels
from masterplan.server.engine.kernels import WalkSettings, net_level
from masterplan.server.engine.kinds import REC_CLASS
from masterplan.server.engine.levelsplit import LevelSplit
from masterplan.server.engine.messages import Messages
from masterplan.server.engine.orderrefs import OrderLog, OrderRefs
from masterplan.server.engine.orders import PlannedOrders, RefMaker, explode, make_orders
from masterplan.server.engine.refs import RefBook
from masterplan.server.engine.requirements import Receipts, RequirementsAndReceipts
from masterplan.server.engine.skus import Masters, SkuSettings, sku_ids
from masterplan.server.engine.types import (
    DEFAULT_MAX_PLANNED_ORDERS,
    DEFAULT_MAX_RESULT_ROWS,
    InvalidPlanInput,
    PlanTooLarge,
    RunStopped,
)

__all__ = ["Netting", "Pegging", "WalkedRequirements", "net_levels", "walk_settings"]


def _ints() -> np.ndarray:
    return np.empty(0, dtype=np.int64)


@dataclass(frozen=True, slots=True)
class WalkedRequirements:
    """The requirements the walk visited (those inside their coverage fence),
    level by level and in walk order within a level.

    Attributes
    ----------
    date : int64 (R,)
        Effective date.
    kind : int64 (R,)
        ``K_*`` kind code.
    ref : int64 (R,)
        Ref code in :attr:`Netting.book`.
    cause : int64 (R,)
        Receipt row (>= 0, in :attr:`Netting.receipts`) of the firmed order,
        or ``-2 - k`` for planned order ``k``, whose explosion made it; -1
        for none.
    short : float64 (R,)
        Shortfall: what the requirement could not take.
    sidx : int64 (R,)
        SKU position.
    """

    date: np.ndarray
    kind: np.ndarray
    ref: np.ndarray
    cause: np.ndarray
    short: np.ndarray
    sidx: np.ndarray

    def __len__(self) -> int:
        return len(self.sidx)

    @classmethod
    def concat(cls, parts: Sequence[WalkedRequirements]) -> WalkedRequirements:
        """The rows of ``parts``, in order."""
        if not parts:
            return cls(_ints(), _ints(), _ints(), _ints(), np.empty(0), _ints())
        return cls(
            *(
                np.concatenate([getattr(p, name) for p in parts])
                for name in ("date", "kind", "ref", "cause", "short", "sidx")
            )
        )


@dataclass(frozen=True, slots=True)
class Pegging:
    """One row per take of a requirement from a receipt or planned order.

    Attributes
    ----------
    req : int64 (P,)
        Requirement position in :attr:`Netting.requirements`.
    src : int64 (P,)
        Receipt row (>= 0) in :attr:`Netting.receipts`, or ``-1 - k`` for
        planned order ``k``.
    qty : float64 (P,)
        Quantity taken.
    """

    req: np.ndarray
    src: np.ndarray
    qty: np.ndarray

    def __len__(self) -> int:
        return len(self.req)

    @classmethod
    def concat(cls, parts: Sequence[Pegging]) -> Pegging:
        """The rows of ``parts``, in order."""
        if not parts:
            return cls(_ints(), _ints(), np.empty(0))
        return cls(
            np.concatenate([p.req for p in parts]),
            np.concatenate([p.src for p in parts]),
            np.concatenate([p.qty for p in parts]),
        )


@dataclass(frozen=True, slots=True)
class Netting:
    """What the netting of all levels produces.

    Attributes
    ----------
    receipts : Receipts
        The existing receipts in receipt order (§5.5: netting date, class,
        SKU, ref); pegging and causes name rows of this order.
    requirements : WalkedRequirements
        The walked requirements with their shortfalls.
    orders : PlannedOrders
        The run's planned orders; ``k`` is the position here.
    pegging : Pegging
        Every take.
    book : RefBook
        Refs of all requirements, those of planned orders' explosions included.
    messages : Messages
        ``NO_BOM`` per planned production order without a valid BOM.

    The integer columns of ``requirements``, ``orders`` and ``pegging``,
    int64 while the levels are walked, are int32 here wherever their
    values fit (:func:`~masterplan.server.engine.arrays.narrow`): a code
    that reads them widens what may outgrow int32.
    """

    receipts: Receipts
    requirements: WalkedRequirements
    orders: PlannedOrders
    pegging: Pegging
    book: RefBook
    messages: Messages


def walk_settings(s: SkuSettings, skus: np.ndarray, t0: int) -> WalkSettings:
    """The settings the walk reads for SKU positions ``skus``."""
    return WalkSettings(
        bound_base=s.lead_add(np.full(len(skus), t0, dtype=np.int64), skus),
        neg_days=s.neg[skus],
        pos_days=s.pos[skus],
        code=s.code[skus],
        period=s.period[skus],
        min_qty=s.min_qty[skus],
        max_qty=s.max_qty[skus],
        min_oq=s.min_oq[skus],
        max_oq=s.max_oq[skus],
        mult=s.mult[skus],
    )


def _check_finite(m: Masters, s: SkuSettings, qty: np.ndarray, sidx: np.ndarray) -> None:
    """Fail the run on a requirement quantity that overflowed.

    Input quantities are bounded by validation, but a BOM chain multiplies
    them level by level and can pass the largest float; such a plan has no
    meaningful quantities, and an ``inf`` would reach no database, so the run
    stops naming the first SKU it met.
    """
    bad = ~np.isfinite(qty)
    if bad.any():
        first = int(np.argmax(bad))
        item, wh = sku_ids(m, s, sidx[first : first + 1])
        raise InvalidPlanInput(
            f"the dependent requirement of item {item[0]!r} at warehouse {wh[0]!r} overflows "
            "(the BOM quantities multiplied along its chain pass the largest number); "
            "check the qty_per, batch_qty and scrap of the BOMs above it"
        )


def _ranker(
    refs: OrderRefs, book: RefBook, log: OrderLog, codes: np.ndarray
) -> Callable[[np.ndarray], np.ndarray]:
    """Ranks of the refs of rows of ``codes``, for :func:`walk_order`'s ties."""
    return lambda rows: refs.rank(book, log, codes[rows])


def _planned_refs(base: int) -> RefMaker:
    """Refs ``PL:{id}/{line}`` of the level's orders, whose global numbers start at ``base``."""
    return lambda book, orders, lines: book.add_planned(base + orders, lines)


def net_levels(
    given: RequirementsAndReceipts,
    m: Masters,
    s: SkuSettings,
    levels: Levels,
    refs: OrderRefs,
    t0: int,
    on_level: Callable[[int, int], None] | None = None,
    max_orders: int = DEFAULT_MAX_PLANNED_ORDERS,
    max_rows: int = DEFAULT_MAX_RESULT_ROWS,
    stop: np.ndarray | None = None,
    split: LevelSplit | None = None,
) -> Netting:
    """Net every SKU, level by level from level 0 (§5.5, §5.6).

    Parameters
    ----------
    given : RequirementsAndReceipts
        Independent and firmed requirements, and the receipts.
    m, s : Masters, SkuSettings
        The run's masters and SKUs.
    levels : Levels
        Low-level codes and cycles.
    refs : OrderRefs
        Ranks refs that tie in the walk order; spells ids for messages.
    t0 : int
        The plan date.
    on_level : callable, optional
        Called with (level, number of levels) before each level; an exception
        it raises (a cancellation) stops the netting there.
    max_orders, max_rows : int
        Planned orders, and planned orders plus pegging rows, the run may
        make; the netting stops with :class:`PlanTooLarge` at the first level
        that would pass one, before that level's orders are made.
    stop : int8 (1,), optional
        Set by another thread to stop the run inside a level's walk
        (:class:`RunStopped`).
    split : LevelSplit, optional
        Walks each level's SKUs in runs on an executor (the same result);
        without it, each level is one call in this thread.
    """
    walk = net_level if split is None else split.net_level
    llc = levels.llc
    n_lvl = levels.n_levels
    rec = given.receipts
    rec_order = walk_order((REC_CLASS[rec.kind], rec.date, rec.sidx), rec.ref)
    rec = rec.take(rec_order)
    rec_lvl = llc[rec.sidx]
    po_parts: list[PlannedOrders] = []
    req_parts: list[WalkedRequirements] = []
    peg_parts: list[Pegging] = []
    msg_parts: list[Messages] = []
    log = OrderLog()
    book = given.book
    n_po = 0
    n_req = 0
    n_peg = 0
    # Requirements wait in one bucket per level until their level is netted.
    buckets: list[list[dict[str, np.ndarray]]] = [[] for _ in range(n_lvl)]

    def file(cols: dict[str, np.ndarray]) -> None:
        cols["sidx"] = s.index(cols["sku"])
        _check_finite(m, s, cols["qty"], cols["sidx"])
        lv = llc[cols["sidx"]]
        order = np.argsort(lv, kind="stable")
        bounds = np.searchsorted(lv[order], np.arange(n_lvl + 1))
        for level in np.flatnonzero(np.diff(bounds)):
            buckets[level].append(select(cols, order[bounds[level] : bounds[level + 1]]))

    first = given.requirements.columns()
    # Causes that name a firmed order's receipt follow the receipts' new order.
    fc = first["cause"] >= 0
    if fc.any():
        inv = np.empty_like(rec_order)
        inv[rec_order] = np.arange(len(rec_order))
        cause = first["cause"].copy()
        cause[fc] = inv[cause[fc]]
        first["cause"] = cause
    file(first)
    empty_r = {**Requirements().columns(), "sidx": _ints()}
    for lvl in range(n_lvl):
        if on_level is not None:
            on_level(lvl, n_lvl)
        parts = buckets[lvl]
        buckets[lvl] = []
        r = {k: np.concatenate([b[k] for b in parts]) for k in parts[0]} if parts else dict(empty_r)
        r_sidx = r.pop("sidx")
        # Coverage time fence: later requirements play no part at all.
        inside = r["date"] <= t0 + s.fence[r_sidx]
        r, r_sidx = select(r, inside), r_sidx[inside]
        order = walk_order(
            (r["prio"], r["kind"], r["date"], r_sidx), _ranker(refs, book, log, r["ref"])
        )
        r, r_sidx = select(r, order), r_sidx[order]
        skus = np.flatnonzero(llc == lvl)
        req_ptr = np.r_[np.searchsorted(r_sidx, skus, "left"), len(r_sidx)]
        rsel = np.flatnonzero(rec_lvl == lvl)
        rec_ptr = np.r_[np.searchsorted(rec.sidx[rsel], skus, "left"), len(rsel)]
        res = walk(
            t0,
            req_ptr,
            r["date"],
            r["qty"],
            rec_ptr,
            rec.date[rsel],
            rec.qty[rsel],
            walk_settings(s, skus, t0),
            max_orders - n_po,
            stop,
        )
        if stop is not None and stop[0] != 0:
            raise RunStopped("the run was stopped inside the netting")
        if res.over > 0.0:
            raise PlanTooLarge("planned_orders", max_orders, int(min(n_po + res.over, 2.0**62)))
        n_peg += len(res.peg_qty)
        if n_po + len(res.po_qty) + n_peg > max_rows:
            raise PlanTooLarge("result_rows", max_rows, n_po + len(res.po_qty) + n_peg)
        # Planned orders of this level (none on most levels of a net
        # change's small plan: then nothing to number or explode).
        made = len(res.po_qty) > 0
        if made:
            po, msgs = make_orders(m, s, refs, skus[res.po_sku], res.po_date, res.po_qty, t0)
            po_parts.append(po)
            msg_parts.append(msgs)
            log.add(po.sidx, po.num)
        # Pegging in global numbering: receipts >= 0, planned orders -1 - k.
        src = np.where(
            res.peg_src >= 0, gather(rsel, res.peg_src, 0), -1 - (n_po + (-1 - res.peg_src))
        )
        peg_parts.append(Pegging(n_req + res.peg_req, src, res.peg_qty))
        # Kept for delays and output only: what those need.
        req_parts.append(
            WalkedRequirements(r["date"], r["kind"], r["ref"], r["cause"], res.shortfall, r_sidx)
        )
        n_req += len(r_sidx)
        if not made:
            continue
        # Explode this level's planned orders into lower levels.
        dependent, book = explode(
            m,
            s,
            levels.component,
            t0,
            book,
            _planned_refs(n_po),
            sku=s.sku[po.sidx],
            qty=po.qty,
            order_date=po.order,
            bom=po.bom,
            otype=po.otype,
            source=po.source,
            cause=-2 - (n_po + np.arange(len(po))),
        )
        file(dependent.columns())
        n_po += len(po)

    return Netting(
        receipts=rec,
        requirements=_take_all(WalkedRequirements, req_parts),
        orders=_take_all(PlannedOrders, po_parts),
        pegging=_take_all(Pegging, peg_parts),
        book=book,
        messages=Messages.concat(msg_parts),
    )


_Parts = TypeVar("_Parts", WalkedRequirements, PlannedOrders, Pegging)


def _take_all(cls: type[_Parts], parts: list[_Parts]) -> _Parts:
    """The rows of ``parts`` in order, emptying ``parts`` as it goes.

    ``cls.concat`` would hold every part beside the whole; here each
    column's pieces are freed once that column is joined, so the netting's
    end holds its rows about once (the three tables twice over were the
    netting's peak, 0.8 KB per SKU).
    """
    if not parts:
        return cls.concat([])
    names = [f.name for f in fields(cls)]
    pieces = {name: [getattr(p, name) for p in parts] for name in names}
    parts.clear()
    columns = {}
    for name in names:
        # Held to the end of the run (and the output phase is its peak): in
        # int32 where the values fit (0.34 KB per SKU off the run's peak).
        columns[name] = narrow(np.concatenate(pieces.pop(name)))
    return cls(**columns)
