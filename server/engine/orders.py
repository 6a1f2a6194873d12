"""Planned orders (SPEC §5.6): quantities, type, ids, dates, BOM choice and explosion.

The netting (:mod:`~masterplan.server.engine.netting`) decides when a SKU
needs how much; this module turns needs into orders and orders into the
dependent requirements of their components. Firmed planned orders, which the
run does not create but explodes the same way, are read here too.

The split of a need into order quantities runs inside the compiled walk; it
is :func:`~masterplan.server.engine.kernels.split_quantity`, re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.dtypes import StringDType

from masterplan.server.engine.arrays import as_objects, days, is_null, join, text
from masterplan.server.engine.calendar import effective
from masterplan.server.engine.columns import Requirements
from masterplan.server.engine.kernels import split_quantity
from masterplan.server.engine.kinds import K_PL, ORDER_PRODUCTION, ORDER_TRANSFER
from masterplan.server.engine.messages import Messages
from masterplan.server.engine.orderrefs import OrderRefs
from masterplan.server.engine.refs import RefBook
from masterplan.server.engine.skus import (
    Masters,
    SkuIndex,
    SkuSettings,
    order_type_codes,
    sku_ids,
)
from masterplan.server.engine.types import Table

__all__ = [
    "FirmedOrders",
    "PlannedOrders",
    "RefMaker",
    "bom_candidates",
    "bom_lines",
    "choose_bom",
    "explode",
    "explode_firmed",
    "firmed_messages",
    "firmed_orders",
    "firmed_source",
    "firmed_sources",
    "make_orders",
    "split_quantity",
]

_STR = StringDType()

#: Gives ref codes to the requirements an explosion makes: called with the
#: book, the exploded orders (positions in the explosion's arrays) and BOM line
#: rows (-1 for a transfer); returns the grown book and the codes.
RefMaker = Callable[[RefBook, np.ndarray, np.ndarray], tuple[RefBook, np.ndarray]]


# -- BOM choice ----------------------------------------------------------------
def bom_candidates(m: Masters, item: np.ndarray, wh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i, BOM row), int64, of the BOMs of ``item[i]`` that may serve
    warehouse ``wh[i]``: the item's BOMs for that warehouse or for any (§5.3)."""
    b = m.boms
    li, bi = join(item, b["item"])
    ok = (b["wh"][bi] < 0) | (b["wh"][bi] == wh[li])
    return li[ok], bi[ok]


def choose_bom(m: Masters, item: np.ndarray, wh: np.ndarray, on: np.ndarray) -> np.ndarray:
    """int64 (N,): the BOM row each order uses (§5.6), -1 when none is valid.

    The BOM of ``item[i]`` valid on day ``on[i]`` (``valid_from <= on <=
    valid_to``, open ends unbounded); warehouse-specific BOMs come before
    generic ones, then the lowest ``bom_id``.
    """
    b = m.boms
    li, bi = bom_candidates(m, item, wh)
    ok = (b["from"][bi] <= on[li]) & (on[li] <= b["to"][bi])
    li, bi = li[ok], bi[ok]
    out = np.full(len(item), -1, dtype=np.int64)
    if len(li):
        generic = (b["wh"][bi] < 0).astype(np.int64)
        # BOM rows are sorted by (item, bom_id): the row number ranks the ids.
        order = np.lexsort((bi, generic, li))
        li, bi = li[order], bi[order]
        first = np.ones(len(li), dtype=bool)
        first[1:] = li[1:] != li[:-1]
        out[li[first]] = bi[first]
    return out


def bom_lines(m: Masters, bom_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i, line row), int64, of the lines of BOM ``bom_rows[i]``, in line order."""
    return join(bom_rows, m.lines["bom"])


# -- firmed planned orders -------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FirmedOrders:
    """The rows of ``firmed_planned_orders``, as the run reads them.

    Attributes
    ----------
    sku : int64 (F,)
        SKU number of each row.
    live : bool (F,)
        Quantity above zero. A zero-quantity firmed order names its SKUs and
        nothing else: no receipt, no explosion, no graph edge, no message.
    otype : int64 (F,)
        The row's ``order_type`` as ``ORDER_*``; unknown or NULL is purchase.
    order_date, due_date : int64 (F,)
        The row's dates (days), before any clamping.
    bom : int64 (F,)
        BOM row of a production order, chosen by its own order date; -1 for
        none or another type.
    from_sku : int64 (F,)
        SKU number of the row's ``from_warehouse_id``, -1 when NULL; the
        refill warehouse stands in for it once settings exist
        (:func:`firmed_source`).
    """

    sku: np.ndarray
    live: np.ndarray
    otype: np.ndarray
    order_date: np.ndarray
    due_date: np.ndarray
    bom: np.ndarray
    from_sku: np.ndarray


def firmed_orders(tables: dict[str, Table], index: SkuIndex) -> FirmedOrders:
    """Read the validated ``firmed_planned_orders``: types, dates, BOMs, sources."""
    f = tables["firmed_planned_orders"]
    m = index.masters
    sku = index.rows.firmed_planned_orders
    otype = order_type_codes(f["order_type"])
    order_date = days(f["order_date"])
    prod = otype == ORDER_PRODUCTION
    bom = np.full(len(otype), -1, dtype=np.int64)
    if prod.any():
        bom[prod] = choose_bom(m, sku[prod] // m.n_wh, sku[prod] % m.n_wh, order_date[prod])
    from_sku = np.full(len(otype), -1, dtype=np.int64)
    has_from = ~is_null(f["from_warehouse_id"])
    from_sku[has_from] = sku[has_from] // m.n_wh * m.n_wh + np.searchsorted(
        m.warehouse_ids.astype(str), f["from_warehouse_id"][has_from].astype(str)
    )
    return FirmedOrders(
        sku=sku,
        live=np.nan_to_num(f["qty"]) > 0,
        otype=otype,
        order_date=order_date,
        due_date=days(f["due_date"]),
        bom=bom,
        from_sku=from_sku,
    )


def firmed_source(f: FirmedOrders, s: SkuSettings, rows: np.ndarray) -> np.ndarray:
    """int64 (N,): source SKU of firmed transfers ``rows``: their from-warehouse,
    else their SKU's refill warehouse, else -1 (§5.6)."""
    src = f.from_sku[rows].copy()
    missing = src < 0
    if missing.any():
        fs = f.sku[rows][missing]
        pos = np.searchsorted(s.sku, fs)
        pos = np.minimum(pos, max(len(s.sku) - 1, 0))
        known = (len(s.sku) > 0) & (s.sku[pos] == fs) if len(s.sku) else np.zeros(len(fs), bool)
        # The refill of a SKU whose order type was switched to purchase is still its refill.
        src[missing] = np.where(known, s.refill[pos] if len(s.sku) else -1, -1)
    return src


# -- the run's planned orders ----------------------------------------------------
def _ints() -> np.ndarray:
    return np.empty(0, dtype=np.int64)


@dataclass(frozen=True, slots=True)
class PlannedOrders:
    """The run's planned orders, in creation order (the global number ``k``).

    Attributes
    ----------
    sidx : int64 (K,)
        SKU position.
    num : int64 (K,)
        ``n`` of the id ``{item}/{warehouse}/{n}``: the SKU's orders counted
        from 1 in creation order.
    qty : float64 (K,)
        Quantity.
    netting : int64 (K,)
        Netting date: the requirement date the order was planned for.
    due, order : int64 (K,)
        Due and order date, after the freeze fence.
    firmed : bool (K,)
        Order date inside the firming fence.
    otype : int64 (K,)
        ``ORDER_*`` type, the SKU's.
    bom : int64 (K,)
        BOM row of a production order valid on its order date, -1 for none.
    source : int64 (K,)
        Refill SKU number of a transfer, -1 otherwise.
    """

    sidx: np.ndarray
    num: np.ndarray
    qty: np.ndarray
    netting: np.ndarray
    due: np.ndarray
    order: np.ndarray
    firmed: np.ndarray
    otype: np.ndarray
    bom: np.ndarray
    source: np.ndarray

    def __len__(self) -> int:
        return len(self.sidx)

    @classmethod
    def empty(cls) -> PlannedOrders:
        """No orders."""
        return cls(
            _ints(),
            _ints(),
            np.empty(0),
            _ints(),
            _ints(),
            _ints(),
            np.empty(0, dtype=bool),
            _ints(),
            _ints(),
            _ints(),
        )

    @classmethod
    def concat(cls, parts: Sequence[PlannedOrders]) -> PlannedOrders:
        """The orders of ``parts``, in order (numbers follow on)."""
        if not parts:
            return cls.empty()
        return cls(
            *(
                np.concatenate([getattr(p, name) for p in parts])
                for name in cls.__dataclass_fields__
            )
        )


def make_orders(
    m: Masters,
    s: SkuSettings,
    refs: OrderRefs,
    sidx: np.ndarray,
    netting: np.ndarray,
    qty: np.ndarray,
    t0: int,
) -> tuple[PlannedOrders, Messages]:
    """Numbers, dates, types, BOMs and sources of new planned orders (§5.6).

    Parameters
    ----------
    m, s : Masters, SkuSettings
        The run's masters and SKUs.
    refs : OrderRefs
        Spells the ids of orders without a valid BOM.
    sidx : int64 (K,)
        SKU position of each order; the orders of one SKU are consecutive,
        in creation order.
    netting : int64 (K,)
        The requirement date each order is due.
    qty : float64 (K,)
        Order quantities.
    t0 : int
        The plan date.

    Returns
    -------
    PlannedOrders
        The orders.
    Messages
        A ``NO_BOM`` warning per production order with no valid BOM.
    """
    n = len(sidx)
    first = np.r_[True, sidx[1:] != sidx[:-1]] if n else np.empty(0, bool)
    start = np.maximum.accumulate(np.where(first, np.arange(n), 0)) if n else _ints()
    num = np.arange(n) - start + 1
    # Order date = due minus the lead time; one before the freeze fence moves
    # to the fence and takes its due date along.
    order = s.lead_sub(netting, sidx)
    frz = t0 + s.freeze[sidx]
    moved = order < frz
    order = np.where(moved, frz, order)
    due = np.where(moved, s.lead_add(order, sidx), netting)
    firmed = order < t0 + s.firming[sidx]
    otype = s.order_type[sidx]
    bom = np.full(n, -1, dtype=np.int64)
    msgs = Messages()
    prod = np.flatnonzero(otype == ORDER_PRODUCTION)
    if len(prod):
        bom[prod] = choose_bom(m, s.item[sidx[prod]], s.wh[sidx[prod]], order[prod])
        nb = prod[bom[prod] < 0]
        if len(nb):
            item, wh = sku_ids(m, s, sidx[nb])
            pid = refs.ids(sidx[nb], num[nb])
            msgs = Messages.of(
                "warning",
                "NO_BOM",
                item,
                wh,
                as_objects(text("planned production order PL:", pid, " has no valid BOM")),
            )
    source = np.where(otype == ORDER_TRANSFER, s.refill[sidx], -1)
    orders = PlannedOrders(
        sidx=sidx,
        num=num,
        qty=qty,
        netting=netting,
        due=due,
        order=order,
        firmed=firmed,
        otype=otype,
        bom=bom,
        source=source,
    )
    return orders, msgs


# -- explosion -------------------------------------------------------------------
def _dependent(
    s: SkuSettings,
    cycle: np.ndarray,
    t0: int,
    parent: np.ndarray,
    comp: np.ndarray,
    date: np.ndarray,
    qty: np.ndarray,
    ref: np.ndarray,
    cause: np.ndarray,
) -> Requirements:
    pi, ci = s.index(parent), s.index(comp)
    d = effective(date, t0)
    # Edges inside a cycle carry no dependent demand (§5.3); requirements
    # beyond the component's coverage fence are ignored entirely (§5.4).
    keep = (cycle[pi] != cycle[ci]) & (qty > 0) & (d <= t0 + s.fence[ci])
    return Requirements.of(comp[keep], d[keep], qty[keep], K_PL, ref[keep], cause=cause[keep])


def explode(
    m: Masters,
    s: SkuSettings,
    cycle: np.ndarray,
    t0: int,
    book: RefBook,
    refs: RefMaker,
    *,
    sku: np.ndarray,
    qty: np.ndarray,
    order_date: np.ndarray,
    bom: np.ndarray,
    otype: np.ndarray,
    source: np.ndarray,
    cause: np.ndarray,
) -> tuple[Requirements, RefBook]:
    """Dependent requirements of production and transfer orders (§5.6).

    A production order of ``q`` with BOM row ``bom`` needs ``q / batch_qty ×
    qty_per × (1 + scrap_pct/100) + scrap_const`` of each line's component
    at its order date; a transfer needs ``q`` at its source SKU.

    Parameters
    ----------
    m, s : Masters, SkuSettings
        The run's masters and SKUs.
    cycle : int64 (S,)
        Strongly connected component of each SKU (``Levels.component``).
    t0 : int
        The plan date.
    book : RefBook
        The run's refs so far.
    refs : RefMaker
        Gives the new requirements their ref codes.
    sku, qty, order_date, bom, otype, source, cause : (K,)
        The orders: SKU number, quantity, order date, BOM row (-1 none),
        ``ORDER_*`` type, source SKU of a transfer (-1 none), and the cause
        code their requirements carry.

    Returns
    -------
    Requirements
        Production lines first, then transfers, each in order.
    RefBook
        ``book`` with the refs of every exploded line.
    """
    prod = np.flatnonzero((otype == ORDER_PRODUCTION) & (bom >= 0))
    pi, lr = bom_lines(m, bom[prod])
    o = prod[pi]
    b, ln = m.boms, m.lines
    per = np.nan_to_num(ln["qty_per"][lr])
    # A long chain of large factors can pass the largest float: the netting
    # fails the run on such a requirement (naming it), so no warning here.
    with np.errstate(over="ignore", invalid="ignore"):
        q = qty[o] / b["batch"][bom[o]] * per * (
            1 + np.nan_to_num(ln["scrap_pct"][lr]) / 100
        ) + np.nan_to_num(ln["scrap_const"][lr])
    lwh = ln["wh"][lr]
    comp = ln["item"][lr] * m.n_wh + np.where(lwh >= 0, lwh, sku[o] % m.n_wh)
    book, codes = refs(book, o, lr)
    lines = _dependent(s, cycle, t0, sku[o], comp, order_date[o], q, codes, cause[o])
    tr = np.flatnonzero((otype == ORDER_TRANSFER) & (source >= 0))
    book, codes = refs(book, tr, np.full(len(tr), -1, dtype=np.int64))
    transfers = _dependent(
        s, cycle, t0, sku[tr], source[tr], order_date[tr], qty[tr], codes, cause[tr]
    )
    return Requirements.concat([lines, transfers]), book


def explode_firmed(
    m: Masters,
    s: SkuSettings,
    cycle: np.ndarray,
    t0: int,
    book: RefBook,
    refs: OrderRefs,
    table: Table,
    f: FirmedOrders,
    receipt_row: np.ndarray,
) -> tuple[Requirements, RefBook, Messages]:
    """Dependent requirements of the live firmed planned orders (§5.6).

    A firmed order's type is its row's; it explodes by the BOM valid on its
    own order date (production) or from its source warehouse (transfer), at
    its order date, with refs ``PL:{planned_order_id}[/{line_no}]``.

    Parameters
    ----------
    m, s, cycle, t0, book
        As for :func:`explode`.
    refs : OrderRefs
        Spells BOM line suffixes.
    table : Table
        The validated ``firmed_planned_orders``.
    f : FirmedOrders
        The same rows, read.
    receipt_row : int64 (F,)
        Receipt row of each live firmed order (-1 for the others): the cause
        its requirements carry.

    Returns
    -------
    Requirements
        The dependent requirements.
    RefBook
        ``book`` with their refs.
    Messages
        ``NO_REFILL_WAREHOUSE`` per firmed transfer without a source and
        ``NO_BOM`` per firmed production order without a valid BOM.
    """
    n = len(f.live)
    if n == 0:
        return Requirements(), book, Messages()
    source = firmed_sources(f, s)
    msgs = firmed_messages(table, f, source)
    ok = np.flatnonzero(f.live)
    ids = text("PL:", table["planned_order_id"][ok])
    suffix = np.r_[refs.line_suffix(), np.array([""], dtype=_STR)]  # row -1: no line

    def firmed_refs(
        book: RefBook, orders: np.ndarray, lines: np.ndarray
    ) -> tuple[RefBook, np.ndarray]:
        return book.add_text(text(ids[orders], suffix[lines]))

    demand, book = explode(
        m,
        s,
        cycle,
        t0,
        book,
        firmed_refs,
        sku=f.sku[ok],
        qty=np.nan_to_num(table["qty"])[ok],
        order_date=f.order_date[ok],
        bom=f.bom[ok],
        otype=f.otype[ok],
        source=source[ok],
        cause=receipt_row[ok],
    )
    return demand, book, msgs


def firmed_sources(f: FirmedOrders, s: SkuSettings) -> np.ndarray:
    """int64 (F,): source SKU of each firmed transfer (-1 for none and for
    the other orders)."""
    source = np.full(len(f.live), -1, dtype=np.int64)
    tr = np.flatnonzero(f.otype == ORDER_TRANSFER)
    source[tr] = firmed_source(f, s, tr)
    return source


def firmed_messages(table: Table, f: FirmedOrders, source: np.ndarray) -> Messages:
    """``NO_REFILL_WAREHOUSE`` per live firmed transfer without a source and
    ``NO_BOM`` per live firmed production order without a valid BOM (§5.6).

    Parameters
    ----------
    table : Table
        The validated ``firmed_planned_orders``.
    f : FirmedOrders
        The same rows, read.
    source : int64 (F,)
        :func:`firmed_sources`.
    """
    msgs = []
    tr = np.flatnonzero(f.otype == ORDER_TRANSFER)
    no_src = tr[(source[tr] < 0) & f.live[tr]]
    if len(no_src):
        msgs.append(
            Messages.of(
                "warning",
                "NO_REFILL_WAREHOUSE",
                table["item_id"][no_src],
                table["warehouse_id"][no_src],
                as_objects(
                    text(
                        "firmed transfer PL:",
                        table["planned_order_id"][no_src],
                        " has no source warehouse",
                    )
                ),
            )
        )
    nb = np.flatnonzero((f.otype == ORDER_PRODUCTION) & (f.bom < 0) & f.live)
    if len(nb):
        msgs.append(
            Messages.of(
                "warning",
                "NO_BOM",
                table["item_id"][nb],
                table["warehouse_id"][nb],
                as_objects(
                    text(
                        "firmed planned order PL:",
                        table["planned_order_id"][nb],
                        " has no valid BOM",
                    )
                ),
            )
        )
    return Messages.concat(msgs)
