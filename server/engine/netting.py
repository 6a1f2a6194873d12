"""The netting walk of SPEC §5.5 for all SKUs of one low level code at once.

Arrays in, arrays out. The walk itself is a compiled kernel (see
:mod:`server.engine._jit`): it visits each SKU's requirements in walk order
and takes first-in-first-out from two queues that are both sorted by netting
date — the existing receipts (on-hand, open orders, firmed planned orders)
and the run's planned orders, which are created in non-decreasing date order
because requirements are walked by date. At equal dates an existing receipt
comes before a planned order, as the receipt order of §5.5 requires.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from server.engine._jit import kernel

__all__ = ["CODE_MANUAL", "CODE_REQUIREMENT", "NettingResult", "net_level"]

CODE_REQUIREMENT = 0
CODE_PERIOD = 1
CODE_MIN_MAX = 2
CODE_MANUAL = 3

#: Quantities at or below this count as nothing (SPEC §5: tolerance 1e-9).
EPS = 1e-9


@dataclass(slots=True)
class NettingResult:
    """Output of :func:`net_level`.

    Attributes:
        peg_req: int64 (P,), requirement position (in the level's sorted order).
        peg_src: int64 (P,), receipt position when >= 0, else ``-1 - k`` for
            planned order ``k`` of this level.
        peg_qty: float64 (P,), quantity taken.
        po_sku: int64 (K,), local SKU of each planned order, in creation order.
        po_date: int64 (K,), its netting date (the requirement date).
        po_qty: float64 (K,), its quantity.
        shortfall: float64 (R,), quantity each requirement could not take.
    """

    peg_req: np.ndarray
    peg_src: np.ndarray
    peg_qty: np.ndarray
    po_sku: np.ndarray
    po_date: np.ndarray
    po_qty: np.ndarray
    shortfall: np.ndarray


@kernel
def _split(q, min_oq, max_oq, mult, out):  # type: ignore[no-untyped-def]
    """Append the order quantities of need ``q`` (SPEC §5.6) to ``out``."""
    rest = q
    if max_oq > 0.0:
        while rest > max_oq + EPS:
            out.append(max_oq)
            rest -= max_oq
    if rest > EPS:
        x = max(rest, min_oq)
        if mult > 0.0:
            x = np.ceil((x - EPS) / mult) * mult
        out.append(x)


@kernel
def _walk(  # type: ignore[no-untyped-def]
    req_ptr,
    req_date,
    req_qty,
    rec_ptr,
    rec_date,
    rec_left,
    bound_base,
    neg_days,
    pos_days,
    code,
    min_oq,
    max_oq,
    mult,
):
    peg_req = [np.int64(0) for _ in range(0)]
    peg_src = [np.int64(0) for _ in range(0)]
    peg_qty = [np.float64(0.0) for _ in range(0)]
    po_sku = [np.int64(0) for _ in range(0)]
    po_date = [np.int64(0) for _ in range(0)]
    po_qty = [np.float64(0.0) for _ in range(0)]
    po_left = [np.float64(0.0) for _ in range(0)]
    split = [np.float64(0.0) for _ in range(0)]
    shortfall = np.zeros(len(req_date), dtype=np.float64)
    n_sku = len(req_ptr) - 1
    for s in range(n_sku):
        eh = rec_ptr[s]
        ee = rec_ptr[s + 1]
        ph = len(po_qty)
        for k in range(req_ptr[s], req_ptr[s + 1]):
            r = req_date[k]
            need = req_qty[k]
            hi = max(r, bound_base[s]) + neg_days[s]
            has_lo = pos_days[s] >= 0
            lo = r - pos_days[s]
            for attempt in range(2):
                while need > EPS:
                    # Drop exhausted receipts, and those too early for the
                    # positive days (the bound only rises along the walk).
                    while eh < ee and (rec_left[eh] <= EPS or (has_lo and rec_date[eh] < lo)):
                        eh += 1
                    while ph < len(po_qty) and (
                        po_left[ph] <= EPS or (has_lo and po_date[ph] < lo)
                    ):
                        ph += 1
                    use_e = eh < ee and rec_date[eh] <= hi
                    use_p = ph < len(po_qty) and po_date[ph] <= hi
                    if use_e and use_p and po_date[ph] < rec_date[eh]:
                        use_e = False
                    if use_e:
                        t = min(need, rec_left[eh])
                        rec_left[eh] -= t
                        peg_req.append(k)
                        peg_src.append(eh)
                        peg_qty.append(t)
                        need -= t
                    elif use_p:
                        t = min(need, po_left[ph])
                        po_left[ph] -= t
                        peg_req.append(k)
                        peg_src.append(-1 - ph)
                        peg_qty.append(t)
                        need -= t
                    else:
                        break
                if attempt == 1 or need <= EPS or code[s] != CODE_REQUIREMENT:
                    break
                split.clear()
                _split(need, min_oq[s], max_oq[s], mult[s], split)
                for x in split:
                    po_sku.append(s)
                    po_date.append(r)
                    po_qty.append(x)
                    po_left.append(x)
            if need > EPS:
                shortfall[k] = need
    return (
        np.array(peg_req, dtype=np.int64),
        np.array(peg_src, dtype=np.int64),
        np.array(peg_qty, dtype=np.float64),
        np.array(po_sku, dtype=np.int64),
        np.array(po_date, dtype=np.int64),
        np.array(po_qty, dtype=np.float64),
        shortfall,
    )


def net_level(
    req_ptr: np.ndarray,
    req_date: np.ndarray,
    req_qty: np.ndarray,
    rec_ptr: np.ndarray,
    rec_date: np.ndarray,
    rec_qty: np.ndarray,
    bound_base: np.ndarray,
    neg_days: np.ndarray,
    pos_days: np.ndarray,
    code: np.ndarray,
    min_oq: np.ndarray,
    max_oq: np.ndarray,
    mult: np.ndarray,
) -> NettingResult:
    """Net the requirements of a batch of SKUs against their receipts.

    Parameters
    ----------
    req_ptr, rec_ptr : int64 (S+1,)
        CSR offsets: SKU ``s`` owns requirements ``req_ptr[s]:req_ptr[s+1]``
        (in walk order) and receipts ``rec_ptr[s]:rec_ptr[s+1]`` (in receipt
        order).
    req_date, rec_date : int64
        Effective dates (days); receipts' netting dates.
    req_qty, rec_qty : float64
        Quantities, all above zero.
    bound_base : int64 (S,)
        ``T0`` plus the SKU's lead time (dynamic negative days).
    neg_days, pos_days : int64 (S,)
        Negative days; positive days or -1 for unlimited.
    code : int64 (S,)
        Coverage code (``CODE_*``).
    min_oq, max_oq, mult : float64 (S,)
        Order quantity modifiers (0 = none for max and multiple).
    """
    out = _walk(
        np.ascontiguousarray(req_ptr, dtype=np.int64),
        np.ascontiguousarray(req_date, dtype=np.int64),
        np.ascontiguousarray(req_qty, dtype=np.float64),
        np.ascontiguousarray(rec_ptr, dtype=np.int64),
        np.ascontiguousarray(rec_date, dtype=np.int64),
        np.array(rec_qty, dtype=np.float64),  # a copy: the walk consumes it
        np.ascontiguousarray(bound_base, dtype=np.int64),
        np.ascontiguousarray(neg_days, dtype=np.int64),
        np.ascontiguousarray(pos_days, dtype=np.int64),
        np.ascontiguousarray(code, dtype=np.int64),
        np.ascontiguousarray(min_oq, dtype=np.float64),
        np.ascontiguousarray(max_oq, dtype=np.float64),
        np.ascontiguousarray(mult, dtype=np.float64),
    )
    return NettingResult(*out)
