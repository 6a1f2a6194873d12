"""The compiled kernels of the netting walk (SPEC §5.5) and the order split (§5.6).

Arrays in, arrays out. The walk visits each SKU's requirements in walk order
and takes first-in-first-out from two queues that are both sorted by netting
date — the existing receipts (on-hand, open orders, firmed planned orders)
and the run's planned orders, which are created in non-decreasing date order
because requirements are walked by date. At equal dates an existing receipt
comes before a planned order, as the receipt order of §5.5 requires.

Everything numba compiles lives in this one module, constants included:
numba's on-disk cache is invalidated only when the compiled function's own
source file changes, so a kernel calling into, or reading a constant from,
another module could run stale machine code after that module changed. The
Python driver (per-level batching, orders, explosion) is
:mod:`~masterplan.server.engine.netting`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.dtypes import StringDType

from masterplan.server.engine._jit import kernel
from masterplan.server.engine.types import DEFAULT_MAX_PLANNED_ORDERS, PlanTooLarge

__all__ = [
    "CODE_MANUAL",
    "CODE_MIN_MAX",
    "CODE_PERIOD",
    "CODE_REQUIREMENT",
    "EPS",
    "ByteTable",
    "LevelResult",
    "WalkSettings",
    "byte_table",
    "factorize",
    "net_level",
    "spell_numbered",
    "split_quantity",
]

# Coverage codes (§5.5), as the walk branches on them.
CODE_REQUIREMENT = 0
CODE_PERIOD = 1
CODE_MIN_MAX = 2
CODE_MANUAL = 3

#: Quantities at or below this count as nothing (SPEC §5: tolerance 1e-9).
EPS = 1e-9

#: A SKU's ``positive_days`` when its group leaves them NULL (unlimited). Any
#: number of days is a limit, a negative one too (``r - a <= -2``: a receipt
#: at least two days after the requirement), so the sentinel lies below
#: every day count the input checks let through, and ``r - NO_POSITIVE_DAYS``
#: still fits an int64.
NO_POSITIVE_DAYS = -(1 << 40)


@kernel
def _split(
    q: float, min_oq: float, max_oq: float, mult: float, room: int
) -> tuple[float, int, float]:
    """The order quantities of need ``q`` (SPEC §5.6): ``full`` orders of
    ``max_oq``, then one of ``tail`` where ``tail`` is above zero.

    Returns ``(wanted, full, tail)``. ``wanted`` is 0, or, when ``q`` would
    become more than ``room`` orders, how many it would become (at least),
    with no orders. The count is known before any order is made, so a huge
    need with a tiny maximum never loops long; and within ``room`` (far
    below 2**52) each subtraction of ``max_oq`` shrinks ``rest``, so the
    loop ends. The orders are counted rather than listed: a list made for
    every need cost the walk an allocation per need, and walks of one level
    on threads then waited for each other in the allocator.
    """
    rest = q
    full = 0
    if max_oq > 0.0:
        count = np.ceil((q - EPS) / max_oq)
        if not count <= room:
            return (count if count > 1.0 else 1.0), 0, 0.0
        while rest > max_oq + EPS:
            full += 1
            rest -= max_oq
    tail = 0.0
    if rest > EPS:
        x = max(rest, min_oq)
        if mult > 0.0:
            x = np.ceil((x - EPS) / mult) * mult
        tail = x
    return 0.0, full, tail


@kernel
def _more_ints(a: np.ndarray, n: int) -> np.ndarray:
    """The first ``n`` values of ``a`` in an array twice its size."""
    grown = np.empty(2 * len(a), dtype=np.int64)
    grown[:n] = a[:n]
    return grown


@kernel
def _more_floats(a: np.ndarray, n: int) -> np.ndarray:
    """The first ``n`` values of ``a`` in an array twice its size."""
    grown = np.empty(2 * len(a), dtype=np.float64)
    grown[:n] = a[:n]
    return grown


@kernel
def _peg_room(n_e: int, eh: int, n_p: int, ph: int) -> int:
    """The most takes one requirement can make: each but its last uses up
    a receipt or planned order at or after the heads."""
    return (n_e - eh) + (n_p - ph) + 1


@kernel
def _take(
    need: float,
    hi: int,
    has_lo: bool,
    lo: int,
    e_date: np.ndarray,
    e_left: np.ndarray,
    eh: int,
    p_date: np.ndarray,
    p_left: np.ndarray,
    ph: int,
    n_p: int,
    k: int,
    e_base: int,
    p_base: int,
    record: bool,
    peg_req: np.ndarray,
    peg_src: np.ndarray,
    peg_qty: np.ndarray,
    n_peg: int,
) -> tuple[float, int, int, int]:
    """FIFO takes of one requirement from the SKU's two receipt queues.

    ``e_*`` are the existing receipts (sorted by date and class), ``p_*`` the
    planned orders (``n_p`` of them, in creation order, dates non-decreasing).
    Receipts before the heads ``eh``/``ph`` are used up or too early for the
    positive days; since the bounds only rise along the walk they stay so.
    With ``record``, each take is written at row ``n_peg`` of the pegging
    arrays, which the caller has made room in (:func:`_peg_room`). Returns
    the quantity still missing, the new heads and the pegging's rows.
    """
    ne = len(e_date)
    while need > EPS:
        while eh < ne and (e_left[eh] <= EPS or (has_lo and e_date[eh] < lo)):
            eh += 1
        while ph < n_p and (p_left[ph] <= EPS or (has_lo and p_date[ph] < lo)):
            ph += 1
        use_e = eh < ne and e_date[eh] <= hi
        use_p = ph < n_p and p_date[ph] <= hi
        if use_e and use_p and p_date[ph] < e_date[eh]:
            use_e = False
        if use_e:
            t = min(need, e_left[eh])
            e_left[eh] -= t
            if record:
                peg_req[n_peg] = k
                peg_src[n_peg] = e_base + eh
                peg_qty[n_peg] = t
                n_peg += 1
            need -= t
        elif use_p:
            t = min(need, p_left[ph])
            p_left[ph] -= t
            if record:
                peg_req[n_peg] = k
                peg_src[n_peg] = -1 - (p_base + ph)
                peg_qty[n_peg] = t
                n_peg += 1
            need -= t
        else:
            break
    return need, eh, ph, n_peg


@kernel
def _min_max_qty(p: float, shortfall: float, min_qty: float, max_qty: float, m: float) -> float:
    """The min_max order quantity of SPEC §5.5 (0 when none is due)."""
    if not (shortfall > EPS or p < min_qty - EPS):
        return 0.0
    if m > 0.0:
        q = np.floor((max_qty - p + EPS) / m) * m
        if p + q < min_qty - EPS:
            q += m
        if shortfall > EPS:
            q = max(q, np.ceil((shortfall - EPS) / m) * m)
    else:
        q = max(max_qty - p, shortfall)
    return q


@kernel
def _walk_from(
    s0: int,
    n_peg: int,
    n_po: int,
    peg_req: np.ndarray,
    peg_src: np.ndarray,
    peg_qty: np.ndarray,
    po_sku: np.ndarray,
    po_date: np.ndarray,
    po_qty: np.ndarray,
    shortfall: np.ndarray,
    t0: int,
    req_ptr: np.ndarray,
    req_date: np.ndarray,
    req_qty: np.ndarray,
    rec_ptr: np.ndarray,
    rec_date: np.ndarray,
    rec_qty: np.ndarray,
    rec_left: np.ndarray,
    bound_base: np.ndarray,
    neg_days: np.ndarray,
    pos_days: np.ndarray,
    code: np.ndarray,
    period: np.ndarray,
    min_qty: np.ndarray,
    max_qty: np.ndarray,
    min_oq: np.ndarray,
    max_oq: np.ndarray,
    mult: np.ndarray,
    room: int,
    stop: np.ndarray,
) -> tuple[int, int, int, float]:
    """The walk of SKUs ``s0``.. (see :func:`_walk`), its takes and planned
    orders written from rows ``n_peg`` and ``n_po`` of their arrays.

    Returns the SKU it stopped at (``n_sku`` when done, stopped or over
    ``room``), the rows filled and ``over``. A SKU whose rows would not fit
    is undone (its receipts' quantities, shortfalls and rows) and returned:
    the caller grows the arrays and walks on from it. The arrays are never
    replaced here: a variable that may be rebound inside the loop made each
    take pay for its reference counting (the walk was 1.6x slower).
    """
    cap = 16
    p_date = np.zeros(cap, dtype=np.int64)
    p_left = np.zeros(cap, dtype=np.float64)
    # The period code's copies of the remaining quantities, made again for
    # every need: kept in buffers grown like ``p_left``, so that a need costs
    # no allocation (walks of one level on threads share the allocator).
    sim_e_buf = np.zeros(cap, dtype=np.float64)
    sim_p_buf = np.zeros(cap, dtype=np.float64)
    n_sku = len(req_ptr) - 1
    # Orders wanted beyond ``room``: the walk stops at the first need that
    # would pass it, before making its orders.
    over = 0.0
    for s in range(s0, n_sku):
        if over > 0.0 or stop[0] != 0:
            break
        peg_start = n_peg
        po_start = n_po
        e0 = rec_ptr[s]
        e_date = rec_date[e0 : rec_ptr[s + 1]]
        e_qty = rec_qty[e0 : rec_ptr[s + 1]]
        e_left = rec_left[e0 : rec_ptr[s + 1]]
        eh = 0
        ph = 0
        n_p = 0
        p_base = n_po
        has_lo = pos_days[s] != NO_POSITIVE_DAYS
        # min_max: existing receipts and planned orders counted so far
        # (netting date <= bound: a negative ``negative_days`` leaves out
        # the orders of the last days), requirement quantity walked so far.
        counted = 0
        in_bound = 0.0
        p_counted = 0
        walked = 0.0
        first = req_ptr[s]
        last = req_ptr[s + 1]
        for k in range(first - 1, last):
            if stop[0] != 0:
                break
            if k < first:
                # The min_max check before the first requirement: r = T0.
                if code[s] != CODE_MIN_MAX:
                    continue
                r = t0
                need = 0.0
            else:
                r = req_date[k]
                need = req_qty[k]
            hi = max(r, bound_base[s]) + neg_days[s]
            lo = r - pos_days[s]
            if k >= first:
                if n_peg + _peg_room(len(e_date), eh, n_p, ph) > len(peg_req):
                    _undo(rec_left, rec_qty, shortfall, e0, rec_ptr[s + 1], first, last)
                    return s, peg_start, po_start, 0.0
                need, eh, ph, n_peg = _take(
                    need,
                    hi,
                    has_lo,
                    lo,
                    e_date,
                    e_left,
                    eh,
                    p_date,
                    p_left,
                    ph,
                    n_p,
                    k,
                    e0,
                    p_base,
                    True,
                    peg_req,
                    peg_src,
                    peg_qty,
                    n_peg,
                )
                walked += req_qty[k]
            q = 0.0
            if code[s] == CODE_REQUIREMENT:
                if need > EPS:
                    q = need
            elif code[s] == CODE_PERIOD:
                if need > EPS:
                    # Shortfalls of the later requirements of the period, on
                    # copies of the remaining quantities, without a new order.
                    q = need
                    if len(e_left) > len(sim_e_buf):
                        sim_e_buf = np.zeros(2 * len(e_left), dtype=np.float64)
                    if n_p > len(sim_p_buf):
                        sim_p_buf = np.zeros(cap, dtype=np.float64)
                    sim_e = sim_e_buf[: len(e_left)]
                    sim_e[:] = e_left
                    sim_p = sim_p_buf[:n_p]
                    sim_p[:] = p_left[:n_p]
                    seh = eh
                    sph = ph
                    for j in range(k + 1, last):
                        if stop[0] != 0:
                            break
                        rj = req_date[j]
                        if rj >= r + period[s]:
                            break
                        short, seh, sph, _ = _take(
                            req_qty[j],
                            max(rj, bound_base[s]) + neg_days[s],
                            has_lo,
                            rj - pos_days[s],
                            e_date,
                            sim_e,
                            seh,
                            p_date,
                            sim_p,
                            sph,
                            n_p,
                            j,
                            e0,
                            p_base,
                            False,
                            peg_req,
                            peg_src,
                            peg_qty,
                            n_peg,
                        )
                        if short > EPS:
                            q += short
            elif code[s] == CODE_MIN_MAX:
                while counted < len(e_date) and e_date[counted] <= hi:
                    in_bound += e_qty[counted]
                    counted += 1
                while p_counted < n_p and p_date[p_counted] <= hi:
                    in_bound += po_qty[p_base + p_counted]
                    p_counted += 1
                q = _min_max_qty(
                    in_bound - walked,
                    need if need > EPS else 0.0,
                    min_qty[s],
                    max_qty[s],
                    mult[s],
                )
            if q > EPS:
                left = room - n_po
                wanted, full, tail = _split(q, min_oq[s], max_oq[s], mult[s], left)
                made = full + 1 if tail > 0.0 else full
                if wanted == 0.0 and made > left:
                    wanted = float(made)
                if wanted > 0.0:
                    over = n_po + wanted
                    break
                for i in range(made):
                    x = max_oq[s] if i < full else tail
                    if n_p == cap:
                        cap *= 2
                        grown_d = np.zeros(cap, dtype=np.int64)
                        grown_l = np.zeros(cap, dtype=np.float64)
                        grown_d[:n_p] = p_date[:n_p]
                        grown_l[:n_p] = p_left[:n_p]
                        p_date = grown_d
                        p_left = grown_l
                    p_date[n_p] = r
                    p_left[n_p] = x
                    n_p += 1
                    if n_po == len(po_sku):
                        _undo(rec_left, rec_qty, shortfall, e0, rec_ptr[s + 1], first, last)
                        return s, peg_start, po_start, 0.0
                    po_sku[n_po] = s
                    po_date[n_po] = r
                    po_qty[n_po] = x
                    n_po += 1
                if k >= first and need > EPS:
                    if n_peg + _peg_room(len(e_date), eh, n_p, ph) > len(peg_req):
                        _undo(rec_left, rec_qty, shortfall, e0, rec_ptr[s + 1], first, last)
                        return s, peg_start, po_start, 0.0
                    need, eh, ph, n_peg = _take(
                        need,
                        hi,
                        has_lo,
                        lo,
                        e_date,
                        e_left,
                        eh,
                        p_date,
                        p_left,
                        ph,
                        n_p,
                        k,
                        e0,
                        p_base,
                        True,
                        peg_req,
                        peg_src,
                        peg_qty,
                        n_peg,
                    )
            if k >= first and need > EPS:
                shortfall[k] = need
    return n_sku, n_peg, n_po, over


@kernel
def _undo(
    rec_left: np.ndarray,
    rec_qty: np.ndarray,
    shortfall: np.ndarray,
    e0: int,
    e1: int,
    first: int,
    last: int,
) -> None:
    """A SKU's walk undone: its receipts' quantities and shortfalls as before."""
    rec_left[e0:e1] = rec_qty[e0:e1]
    shortfall[first:last] = 0.0


@kernel
def _walk(
    t0: int,
    req_ptr: np.ndarray,
    req_date: np.ndarray,
    req_qty: np.ndarray,
    rec_ptr: np.ndarray,
    rec_date: np.ndarray,
    rec_qty: np.ndarray,
    rec_left: np.ndarray,
    bound_base: np.ndarray,
    neg_days: np.ndarray,
    pos_days: np.ndarray,
    code: np.ndarray,
    period: np.ndarray,
    min_qty: np.ndarray,
    max_qty: np.ndarray,
    min_oq: np.ndarray,
    max_oq: np.ndarray,
    mult: np.ndarray,
    room: int,
    stop: np.ndarray,
) -> tuple[
    np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, float
]:
    # The pegging and the planned orders in arrays sized first for a take
    # per requirement and receipt, grown twice as large when a SKU's rows do
    # not fit (:func:`_walk_from` stops there). Lists grew by a quarter at a
    # time, each growth copying the list inside the allocator's lock, which
    # the runs of one level walked on threads then waited for.
    n_sku = len(req_ptr) - 1
    peg_cap = max(16, len(req_date) + len(rec_date))
    peg_req = np.empty(peg_cap, dtype=np.int64)
    peg_src = np.empty(peg_cap, dtype=np.int64)
    peg_qty = np.empty(peg_cap, dtype=np.float64)
    po_cap = max(16, len(req_date) // 2)
    po_sku = np.empty(po_cap, dtype=np.int64)
    po_date = np.empty(po_cap, dtype=np.int64)
    po_qty = np.empty(po_cap, dtype=np.float64)
    shortfall = np.zeros(len(req_date), dtype=np.float64)
    s = 0
    n_peg = 0
    n_po = 0
    over = 0.0
    while True:
        s, n_peg, n_po, over = _walk_from(
            s,
            n_peg,
            n_po,
            peg_req,
            peg_src,
            peg_qty,
            po_sku,
            po_date,
            po_qty,
            shortfall,
            t0,
            req_ptr,
            req_date,
            req_qty,
            rec_ptr,
            rec_date,
            rec_qty,
            rec_left,
            bound_base,
            neg_days,
            pos_days,
            code,
            period,
            min_qty,
            max_qty,
            min_oq,
            max_oq,
            mult,
            room,
            stop,
        )
        if s >= n_sku:
            break
        # SKU ``s`` did not fit: both kinds of rows get twice the room.
        peg_req = _more_ints(peg_req, n_peg)
        peg_src = _more_ints(peg_src, n_peg)
        peg_qty = _more_floats(peg_qty, n_peg)
        po_sku = _more_ints(po_sku, n_po)
        po_date = _more_ints(po_date, n_po)
        po_qty = _more_floats(po_qty, n_po)
    return (
        peg_req[:n_peg].copy(),
        peg_src[:n_peg].copy(),
        peg_qty[:n_peg].copy(),
        po_sku[:n_po].copy(),
        po_date[:n_po].copy(),
        po_qty[:n_po].copy(),
        shortfall,
        over,
    )


@kernel
def _split_one(q: float, min_oq: float, max_oq: float, mult: float, room: int) -> np.ndarray:
    wanted, full, tail = _split(q, min_oq, max_oq, mult, room)
    if wanted > 0.0:
        return np.empty(0, dtype=np.float64)
    out = np.full(full + 1 if tail > 0.0 else full, max_oq, dtype=np.float64)
    if tail > 0.0:
        out[full] = tail
    return out


def split_quantity(
    q: float, min_oq: float, max_oq: float, mult: float, room: int = DEFAULT_MAX_PLANNED_ORDERS
) -> np.ndarray:
    """The planned-order quantities a need of ``q`` becomes (SPEC §5.6).

    The rule the walk applies to every need, compiled from the same kernel.

    Parameters
    ----------
    q : float
        The needed quantity.
    min_oq, max_oq, mult : float
        Minimum and maximum order quantity and multiple (0 = none for the
        maximum and the multiple).
    room : int
        Most orders the need may become.

    Returns
    -------
    float64 (K,)
        One quantity per order, in creation order; empty when ``q`` is nothing.

    Raises
    ------
    PlanTooLarge
        When the need would become more than ``room`` orders.
    """
    out = _split_one(float(q), float(min_oq), float(max_oq), float(mult), int(room))
    if len(out) == 0 and q > EPS:
        count = float(np.ceil((q - EPS) / max_oq))
        raise PlanTooLarge("planned_orders", room, int(min(count, 2.0**62)))
    return out


@dataclass(frozen=True, slots=True)
class WalkSettings:
    """The settings the walk reads, one entry per SKU of a batch.

    Attributes
    ----------
    bound_base : int64 (S,)
        ``T0`` plus the SKU's lead time on its calendar: a receipt dated up
        to ``max(r, bound_base) + neg_days`` may serve a requirement of date
        ``r`` (dynamic negative days).
    neg_days, pos_days : int64 (S,)
        Negative days; positive days, :data:`NO_POSITIVE_DAYS` for unlimited.
    code : int64 (S,)
        Coverage code (``CODE_*``).
    period : int64 (S,)
        Coverage period in days (``period`` code).
    min_qty, max_qty : float64 (S,)
        Minimum and maximum of the ``min_max`` code.
    min_oq, max_oq, mult : float64 (S,)
        Order quantity modifiers (0 = none for the maximum and the multiple).
    """

    bound_base: np.ndarray
    neg_days: np.ndarray
    pos_days: np.ndarray
    code: np.ndarray
    period: np.ndarray
    min_qty: np.ndarray
    max_qty: np.ndarray
    min_oq: np.ndarray
    max_oq: np.ndarray
    mult: np.ndarray


@dataclass(frozen=True, slots=True)
class LevelResult:
    """What :func:`net_level` returns.

    Attributes
    ----------
    peg_req : int64 (P,)
        Requirement position (in the batch's walk order) of each take.
    peg_src : int64 (P,)
        Receipt position when >= 0, else ``-1 - k`` for planned order ``k``
        of this batch.
    peg_qty : float64 (P,)
        Quantity taken.
    po_sku : int64 (K,)
        SKU (position in the batch) of each planned order, in creation order.
    po_date : int64 (K,)
        Its netting date (the requirement date).
    po_qty : float64 (K,)
        Its quantity.
    shortfall : float64 (R,)
        Quantity each requirement could not take.
    over : float
        0, or the planned orders the batch would have needed (at least) when
        that is more than ``room``; the walk stopped there and the other
        fields are partial.
    """

    peg_req: np.ndarray
    peg_src: np.ndarray
    peg_qty: np.ndarray
    po_sku: np.ndarray
    po_date: np.ndarray
    po_qty: np.ndarray
    shortfall: np.ndarray
    over: float = 0.0


def net_level(
    t0: int,
    req_ptr: np.ndarray,
    req_date: np.ndarray,
    req_qty: np.ndarray,
    rec_ptr: np.ndarray,
    rec_date: np.ndarray,
    rec_qty: np.ndarray,
    settings: WalkSettings,
    room: int = DEFAULT_MAX_PLANNED_ORDERS,
    stop: np.ndarray | None = None,
) -> LevelResult:
    """Net the requirements of a batch of SKUs against their receipts.

    Parameters
    ----------
    t0 : int
        The plan date (days), for the min_max check before the first requirement.
    req_ptr, rec_ptr : int64 (S+1,)
        CSR offsets: SKU ``s`` owns requirements ``req_ptr[s]:req_ptr[s+1]``
        (in walk order) and receipts ``rec_ptr[s]:rec_ptr[s+1]`` (in receipt
        order).
    req_date, rec_date : int64
        Effective dates (days); receipts' netting dates.
    req_qty, rec_qty : float64
        Quantities, all above zero. ``rec_qty`` is not changed: the walk
        consumes a copy.
    settings : WalkSettings
        The SKUs' settings.
    room : int
        Planned orders the batch may create (see :attr:`LevelResult.over`).
    stop : int8 (1,), optional
        Another thread sets ``stop[0]`` to stop the walk within one step (the
        walk holds no GIL); the result is then partial and to be dropped.
    """

    def i64(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(a, dtype=np.int64)

    def f64(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(a, dtype=np.float64)

    s = settings
    out = _walk(
        t0,
        i64(req_ptr),
        i64(req_date),
        f64(req_qty),
        i64(rec_ptr),
        i64(rec_date),
        f64(rec_qty),
        np.array(rec_qty, dtype=np.float64),  # a copy: the walk consumes it
        i64(s.bound_base),
        i64(s.neg_days),
        i64(s.pos_days),
        i64(s.code),
        i64(s.period),
        f64(s.min_qty),
        f64(s.max_qty),
        f64(s.min_oq),
        f64(s.max_oq),
        f64(s.mult),
        int(room),
        np.zeros(1, dtype=np.int8) if stop is None else stop,
    )
    return LevelResult(*out)


@kernel
def _factorize(hashes: np.ndarray, bits: int) -> tuple[np.ndarray, int]:
    """Codes 0.. of ``hashes`` in order of first appearance, by an open
    addressing table of ``2**bits`` slots; ``(codes, -1)`` when more than half
    the slots would fill (the caller retries with more)."""
    size = 1 << bits
    mask = size - 1
    keys = np.empty(size, dtype=np.int64)
    slot_code = np.full(size, -1, dtype=np.int64)
    codes = np.empty(len(hashes), dtype=np.int64)
    n = 0
    for i in range(len(hashes)):
        h = hashes[i]
        j = h & mask
        while slot_code[j] >= 0 and keys[j] != h:
            j = (j + 1) & mask
        if slot_code[j] < 0:
            if 2 * (n + 1) > size:
                return codes, -1
            keys[j] = h
            slot_code[j] = n
            n += 1
        codes[i] = slot_code[j]
    return codes, n


def factorize(hashes: np.ndarray, expected: int) -> np.ndarray:
    """int64 codes of ``hashes`` (int64, well mixed: Python's ``str`` hashes
    are): equal hashes equal codes, numbered 0.. in order of first appearance.

    One pass through a hash table sized for ``expected`` distinct values
    (doubled until they fit): a sort of millions of hashes, or a Python dict
    of their strings, took three to four times as long.
    """
    bits = max(int(expected * 2 - 1).bit_length(), 4)
    while True:
        codes, n = _factorize(hashes, bits)
        if n >= 0:
            return codes
        bits += 1


@kernel
def _spell_numbered(
    heads: np.ndarray,
    head_len: np.ndarray,
    index: np.ndarray,
    num: np.ndarray,
    tails: np.ndarray,
    tail_len: np.ndarray,
    tail_index: np.ndarray,
    width: int,
    out: np.ndarray,
) -> None:
    """Row ``i`` of ``out`` (``width`` bytes a row, zeroed): the bytes of
    head ``index[i]`` (a row of ``heads``, ``head_len`` of them), then
    ``num[i]`` (at least 0) in decimal digits, then tail ``tail_index[i]``
    (none where it is negative or ``tail_index`` is empty)."""
    with_tails = len(tail_index) > 0
    for i in range(len(index)):
        h = index[i]
        n = head_len[h]
        base = i * width
        out[base : base + n] = heads[h, :n]
        v = num[i]
        digits = 1
        t = v
        while t >= 10:
            t //= 10
            digits += 1
        end = base + n + digits
        at = end - 1
        for _ in range(digits):
            out[at] = 48 + v % 10
            v //= 10
            at -= 1
        if with_tails and tail_index[i] >= 0:
            k = tail_index[i]
            m = tail_len[k]
            out[end : end + m] = tails[k, :m]


#: Rows spelled per call of the kernel: bounds the byte buffer.
_SPELL_ROWS = 1 << 20


#: Texts as bytes: a uint8 (N, W) table, a row each, and their lengths.
ByteTable = tuple[np.ndarray, np.ndarray]


def byte_table(texts: np.ndarray) -> ByteTable | None:
    """``texts`` (StringDType) as a :data:`ByteTable`; None where one is not
    ASCII.

    Each text is cast with a mark after it: numpy's fixed-width bytes drop
    trailing NUL characters, and so does its ``str_len``, but not before
    the mark.
    """
    marked = np.strings.add(texts, "\x01")
    lengths = np.strings.str_len(marked).astype(np.int64)
    width = max(int(lengths.max(initial=0)), 1)
    try:
        raw = marked.astype(f"S{width}")
    except UnicodeEncodeError:
        return None
    return raw.view(np.uint8).reshape(len(raw), width), lengths - 1


def spell_numbered(
    heads: ByteTable,
    index: np.ndarray,
    num: np.ndarray,
    tails: ByteTable | None = None,
    tail_index: np.ndarray | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray | None:
    """StringDType (N,): head ``index[i]``, then ``num[i]`` in decimal,
    then tail ``tail_index[i]`` where that is not negative, as numpy's
    ``strings.add`` spells them; None where a number is negative or a tail
    ends with a NUL character (the caller spells those with numpy, as texts
    that are not ASCII, which :func:`byte_table` declines).

    The bytes are written by a compiled loop, a million rows at a time, and
    each block cast to text once: numpy's gather and concatenation of
    StringDType allocate every string twice, two to three times as long
    for a run's millions of planned-order ids.

    ``out`` (StringDType (N,), a slice of a larger array, say) takes the
    text in place of a new array; it is left as it was where the spelling
    is declined. Text copied from one StringDType array into another is
    stored again, string by string, so a dictionary spelled in parts is
    spelled into its own places.
    """
    index = np.asarray(index, dtype=np.int64)
    num = np.asarray(num, dtype=np.int64)
    if out is None:
        out = np.empty(len(index), dtype=StringDType())
    if len(index) == 0:
        return out
    if int(num.min()) < 0:
        return None
    table, lengths = heads
    width = table.shape[1] + len(str(int(num.max())))
    tail_table, tail_len = np.zeros((1, 1), dtype=np.uint8), np.zeros(1, dtype=np.int64)
    picks = np.empty(0, dtype=np.int64)
    if tails is not None and tail_index is not None and len(tails[1]):
        tail_table, tail_len = tails
        last = tail_table[np.arange(len(tail_len)), np.maximum(tail_len - 1, 0)]
        if ((tail_len > 0) & (last == 0)).any():
            return None  # the cast to text would drop a NUL that ends a row
        picks = np.asarray(tail_index, dtype=np.int64)
        width += tail_table.shape[1]
    # One block for all, not a new one per million rows allocated among
    # the reallocations of ``out``'s growing string storage.
    whole = np.empty(min(len(index), _SPELL_ROWS) * width, dtype=np.uint8)
    for start in range(0, len(index), _SPELL_ROWS):
        stop = min(start + _SPELL_ROWS, len(index))
        block = whole[: (stop - start) * width]
        block.fill(0)
        _spell_numbered(
            table,
            lengths,
            index[start:stop],
            num[start:stop],
            tail_table,
            tail_len,
            picks[start:stop] if len(picks) else picks,
            width,
            block,
        )
        out[start:stop] = block.view(f"S{width}")
    return out
