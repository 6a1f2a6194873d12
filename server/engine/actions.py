"""Action messages (SPEC §5.8): what to do with existing orders.

For each existing receipt (``po``, ``prd``, ``trr``) dated inside its SKU's
coverage time fence, from what took from it: nothing -> ``cancel``; less
than its quantity -> ``decrease`` to what was taken; then, unless cancelled,
with ``e`` the earliest date of the requirements that took from it: ``e``
before the receipt date -> ``advance`` to ``e``; ``e`` more than the
postpone tolerance after it -> ``postpone`` to ``e``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from masterplan.server.engine.arrays import NO_DATE
from masterplan.server.engine.kernels import EPS
from masterplan.server.engine.kinds import R_PO, R_PRD, R_TRR
from masterplan.server.engine.netting import Pegging, WalkedRequirements
from masterplan.server.engine.requirements import Receipts
from masterplan.server.engine.skus import SkuSettings

__all__ = ["ActionMessages", "action_messages"]


@dataclass(frozen=True, slots=True)
class ActionMessages:
    """One entry per action message: all cancels, then decreases, advances
    and postpones, each in receipt order.

    Attributes
    ----------
    receipt : int64 (A,)
        Row of the receipt in ``Netting.receipts``.
    action : object (A,)
        ``"cancel"``, ``"decrease"``, ``"advance"`` or ``"postpone"``.
    suggested_date : int64 (A,)
        The date to move to; :data:`~masterplan.server.engine.arrays.NO_DATE`
        for quantity messages.
    suggested_qty : float64 (A,)
        The quantity to keep (0 for a cancel); NaN for date messages.
    """

    receipt: np.ndarray
    action: np.ndarray
    suggested_date: np.ndarray
    suggested_qty: np.ndarray

    def __len__(self) -> int:
        return len(self.receipt)


def action_messages(
    rec: Receipts,
    req: WalkedRequirements,
    peg: Pegging,
    s: SkuSettings,
    t0: int,
) -> ActionMessages:
    """The action messages of existing receipts (§5.8).

    Parameters
    ----------
    rec : Receipts
        The receipts (``Netting.receipts``).
    req : WalkedRequirements
        The walked requirements, for the dates of what took.
    peg : Pegging
        The takes.
    s : SkuSettings
        Coverage fences and postpone tolerances.
    t0 : int
        The plan date.
    """
    n_rec = len(rec)
    taken = np.zeros(n_rec)
    earliest = np.full(n_rec, NO_DATE, dtype=np.int64)
    to_rec = peg.src >= 0
    np.add.at(taken, peg.src[to_rec], peg.qty[to_rec])
    np.minimum.at(earliest, peg.src[to_rec], req.date[peg.req[to_rec]])
    sidx = rec.sidx
    existing = np.isin(rec.kind, [R_PO, R_PRD, R_TRR])
    fenced_in = rec.date <= t0 + s.fence[sidx] if n_rec else np.empty(0, bool)
    cand = existing & fenced_in
    cancel = cand & (taken <= EPS)
    decrease = cand & ~cancel & (taken < rec.qty - EPS)
    advance = cand & ~cancel & (earliest < rec.date)
    postpone = cand & ~cancel & (earliest > rec.date + s.tolerance[sidx] if n_rec else cand)
    rows, actions, dates, qtys = [], [], [], []
    for mask, action in (
        (cancel, "cancel"),
        (decrease, "decrease"),
        (advance, "advance"),
        (postpone, "postpone"),
    ):
        i = np.flatnonzero(mask)
        rows.append(i)
        actions.append(np.full(len(i), action, dtype=object))
        if action in ("cancel", "decrease"):  # quantity messages
            dates.append(np.full(len(i), NO_DATE, dtype=np.int64))
            qtys.append(np.zeros(len(i)) if action == "cancel" else taken[i])
        else:  # date messages
            dates.append(earliest[i])
            qtys.append(np.full(len(i), np.nan))
    return ActionMessages(
        np.concatenate(rows),
        np.concatenate(actions),
        np.concatenate(dates),
        np.concatenate(qtys),
    )
