"""A plan result packed for a trip across a process boundary.

A partition planned in another process (a process pool's, a Dask worker's)
sends its result back pickled. Pickled as they are, the result's
``StringDType`` arrays (planned-order ids, supply and demand refs) cost about
0.2 us a string each way, and made pickling a 50k-SKU partition's result
0.34 s, half its engine time (docs/scaling.md). Packed, the same result
pickles in 0.05 s:

- a ``StringDType`` array of ASCII text travels as fixed-width bytes, one
  buffer, and is cast back on arrival (about 15 ms per 300k refs);
- a coded column's codes travel in the narrowest integer type that holds
  its dictionary (a warehouse or kind column in one byte a row) and are
  widened back to ``int64``.

Arrays shared by several columns (a run's demand refs, in pegging and delay
messages) stay shared, which the join relies on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from numpy.dtypes import StringDType

from masterplan.contract.coded import Coded
from masterplan.server.engine.types import PlanResult

__all__ = ["pack", "unpack"]

_STR = StringDType()


@dataclass(frozen=True, slots=True)
class _Ascii:
    """A ``StringDType`` array of ASCII text held as fixed-width bytes."""

    data: np.ndarray


def pack(result: PlanResult) -> PlanResult:
    """``result`` with its text arrays and codes packed, for :func:`unpack`
    on the other side of a pickle."""
    memo: dict[int, object] = {}

    def text(values: np.ndarray) -> object:
        key = id(values)
        if key not in memo:
            memo[key] = _to_ascii(values)
        return memo[key]

    return _map(result, text, _narrow)


def unpack(result: PlanResult) -> PlanResult:
    """The inverse of :func:`pack`; a result that was never packed comes back equal."""
    memo: dict[int, object] = {}

    def text(values: object) -> object:
        if not isinstance(values, _Ascii):
            return values
        key = id(values)
        if key not in memo:
            memo[key] = values.data.astype(_STR)
        return memo[key]

    def codes(values: np.ndarray) -> np.ndarray:
        return values.astype(np.int64, copy=False)

    return _map(result, text, codes)


def _to_ascii(values: np.ndarray) -> object:
    """``values`` as :class:`_Ascii` where that keeps every string, else as is."""
    if values.dtype != _STR or len(values) == 0:
        return values
    width = max(int(np.strings.str_len(values).max()), 1)
    try:
        data = values.astype(f"S{width}")
    except UnicodeEncodeError:
        return values
    # Fixed-width bytes drop trailing NUL characters (which ``str_len`` does
    # not count either): such an array stays as it is.
    return _Ascii(data) if (data.astype(_STR) == values).all() else values


def _narrow(codes: np.ndarray) -> np.ndarray:
    """``codes`` (-1 for NULL) in the narrowest signed type that holds them."""
    if len(codes) == 0 or codes.dtype.kind != "i":
        return codes
    top = int(codes.max())
    for dtype in (np.int8, np.int16, np.int32):
        if top <= np.iinfo(dtype).max:
            return codes.astype(dtype)
    return codes


def _map(
    result: PlanResult,
    text: Callable[[np.ndarray], object],
    codes: Callable[[np.ndarray], np.ndarray],
) -> PlanResult:
    """``result`` with ``text`` applied to each plain column and coded
    column's values, and ``codes`` to each coded column's codes."""
    tables = {
        name: {
            col: (
                Coded(codes(c.codes), text(c.values))  # type: ignore[arg-type]
                if isinstance(c, Coded)
                else text(c)
            )
            for col, c in table.items()
        }
        for name, table in result.tables.items()
    }
    return replace(result, tables=tables)  # type: ignore[arg-type]
