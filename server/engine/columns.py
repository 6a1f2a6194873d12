"""Column helpers of the planning phases: requirement rows, selecting rows, walk order.

Requirements travel between phases as :class:`Requirements`, equally long
1-D arrays ("columns"); inside the netting they are dicts of such columns,
filed by level. These helpers select from them and order them the way SPEC
§5.5 walks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from masterplan.server.engine.arrays import unique_strings

__all__ = ["Requirements", "packed_keys", "rank", "select", "walk_order"]


def select(cols: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, np.ndarray]:
    """The rows ``mask`` (a mask or positions) of every column."""
    return {k: v[mask] for k, v in cols.items()}


def walk_order(
    keys: tuple[np.ndarray, ...], refs: np.ndarray | Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """The order of ``np.lexsort((rank of refs, *keys))``, ranking refs only where needed.

    ``keys`` are integer or float columns, most significant last (as for
    ``np.lexsort``); refs break the remaining ties in code-point order.
    ``refs`` is the rows' refs as strings, or a function giving, for given
    rows, integer ranks in the code-point order of their refs (requirements
    carry ref codes and rank them without spelling them where they can).
    Ranking is the expensive part, so only the rows that tie on all ``keys``
    have their refs ranked: usually a small share.
    """
    packed = packed_keys(keys)
    # One stable sort of one integer per row instead of a sort per key.
    order = np.lexsort(keys) if packed is None else np.argsort(packed, kind="stable")
    n = len(order)
    if n < 2:
        return order
    if packed is not None:
        ordered = packed[order]
        same = ordered[1:] == ordered[:-1]
    else:
        same = np.ones(n - 1, dtype=bool)
        for key in keys:
            ordered = key[order]
            same &= ordered[1:] == ordered[:-1]
    if not same.any():
        return order
    tied = np.zeros(n, dtype=bool)
    tied[1:] |= same
    tied[:-1] |= same
    group = np.cumsum(np.r_[True, ~same])  # tie group of each sorted position
    at = np.flatnonzero(tied)
    rows = order[at]
    rank = unique_strings(refs[rows])[1] if isinstance(refs, np.ndarray) else refs(rows)
    # Tie groups are contiguous and in order: sorting the tied positions by
    # (group, rank) reorders each group in place.
    order[at] = order[at][np.lexsort((rank, group[at]))]
    return order


def packed_keys(keys: tuple[np.ndarray, ...]) -> np.ndarray | None:
    """One int64 per row that orders (and ties) like ``np.lexsort(keys)``, or
    None when the keys' value ranges do not fit in 62 bits or a key has NaN.

    Integer keys, and float keys holding whole numbers, are offset by their
    minimum; other float keys are replaced by their rank among their
    distinct values.
    """
    code: np.ndarray | None = None
    span_product = 1
    for key in reversed(keys):  # most significant first
        if len(key) == 0:
            return None
        whole = key.dtype.kind == "f" and bool(np.all(key == np.floor(key)))  # no NaN or inf
        if key.dtype.kind in "iu" or (whole and float(key.max()) - float(key.min()) < 1 << 40):
            lo = int(key.min())
            span = int(key.max()) - lo + 1
            part = key.astype(np.int64) - lo
        elif key.dtype.kind == "f" and not np.isnan(key).any():
            distinct, part = np.unique(key, return_inverse=True)
            span = len(distinct)
            part = part.reshape(-1).astype(np.int64)
        else:
            return None
        span_product *= span
        if span_product >= 1 << 62:
            return None
        code = part if code is None else code * span + part
    return code


def rank(values: np.ndarray) -> np.ndarray:
    """Rank of each string in code-point order (equal strings, equal rank)."""
    if len(values) == 0:
        return np.empty(0, dtype=np.int64)
    return unique_strings(values)[1]


def _ints() -> np.ndarray:
    return np.empty(0, dtype=np.int64)


def _floats() -> np.ndarray:
    return np.empty(0, dtype=np.float64)


@dataclass(frozen=True, slots=True)
class Requirements:
    """Requirements (SPEC §5.4) as columns, one entry per requirement.

    Attributes
    ----------
    sku : int64 (R,)
        SKU number.
    date : int64 (R,)
        Effective date (days).
    qty : float64 (R,)
        Quantity, above zero.
    kind : int64 (R,)
        ``K_*`` kind code (:mod:`~masterplan.server.engine.kinds`).
    prio : float64 (R,)
        Sales priority (0 for other kinds and NULL).
    ref : int64 (R,)
        Code of the ref in the run's :class:`~masterplan.server.engine.refs.RefBook`.
    cause : int64 (R,)
        The firmed order's receipt row (>= 0) or the planned order ``k``
        (``-2 - k``) whose explosion made the requirement; -1 for none.
    """

    sku: np.ndarray = field(default_factory=_ints)
    date: np.ndarray = field(default_factory=_ints)
    qty: np.ndarray = field(default_factory=_floats)
    kind: np.ndarray = field(default_factory=_ints)
    prio: np.ndarray = field(default_factory=_floats)
    ref: np.ndarray = field(default_factory=_ints)
    cause: np.ndarray = field(default_factory=_ints)

    @classmethod
    def of(
        cls,
        sku: np.ndarray,
        date: np.ndarray,
        qty: np.ndarray,
        kind: int,
        ref: np.ndarray,
        prio: np.ndarray | None = None,
        cause: np.ndarray | None = None,
    ) -> Requirements:
        """Requirements of one kind; no priority and no cause unless given."""
        n = len(sku)
        return cls(
            np.asarray(sku, dtype=np.int64),
            np.asarray(date, dtype=np.int64),
            np.asarray(qty, dtype=np.float64),
            np.full(n, kind, dtype=np.int64),
            np.zeros(n) if prio is None else np.asarray(prio, dtype=np.float64),
            np.asarray(ref, dtype=np.int64),
            np.full(n, -1, dtype=np.int64) if cause is None else cause,
        )

    @classmethod
    def concat(cls, parts: Sequence[Requirements]) -> Requirements:
        """The rows of ``parts``, in order."""
        rows = [p for p in parts if len(p)]
        if not rows:
            return cls()
        return cls(
            *(np.concatenate([getattr(p, name) for p in rows]) for name in _REQUIREMENT_COLUMNS)
        )

    def __len__(self) -> int:
        return len(self.sku)

    def columns(self) -> dict[str, np.ndarray]:
        """The columns by name (a new dict; the arrays are shared)."""
        return {name: getattr(self, name) for name in _REQUIREMENT_COLUMNS}


_REQUIREMENT_COLUMNS = ("sku", "date", "qty", "kind", "prio", "ref", "cause")
