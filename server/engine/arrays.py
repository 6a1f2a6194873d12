"""Small vectorised helpers shared by the engine's phases.

Conventions: ids are ``object`` arrays of ``str`` (``None`` for NULL), numbers
``float64`` (``NaN`` for NULL), dates ``int64`` days since 1970-01-01 inside
the engine (``datetime64[D]`` at its boundary).
"""

from __future__ import annotations

import itertools

import numpy as np
from numpy.dtypes import StringDType

__all__ = [
    "NO_DATE",
    "as_objects",
    "as_text",
    "date_text",
    "days",
    "factorize",
    "find_sorted",
    "first_rows",
    "gather",
    "group_codes",
    "is_null",
    "join",
    "lookup",
    "member",
    "narrow",
    "number_text",
    "positions",
    "text",
    "to_datetime",
    "unique_ints",
    "unique_strings",
]

#: Sentinel for "no date" in int64 day arrays (far beyond any real date).
NO_DATE = np.iinfo(np.int64).max // 4
_STR = StringDType()
#: ``None`` as a 0-d object array: comparing with it is numpy's element-wise
#: ``is None`` test, spelled so that the type checker sees an array operand.
_NONE = np.array(None, dtype=object)


def is_null(values: np.ndarray) -> np.ndarray:
    """bool (N,): whether each entry of an id column is NULL (``None``)."""
    return np.asarray(np.equal(values, _NONE), dtype=bool)


def join(left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All pairs ``(i, j)`` with ``left[i] == right[j]`` (int keys), grouped by ``i``.

    Within one ``i`` the ``j`` come in ascending order. Vectorised: a sort of
    ``right`` and a ``searchsorted`` of ``left``.

    Returns
    -------
    i, j : int64 (P,)
        Positions in ``left`` and ``right`` of each matching pair.
    """
    order = np.argsort(right, kind="stable")
    rs = right[order]
    lo = np.searchsorted(rs, left, "left")
    hi = np.searchsorted(rs, left, "right")
    counts = hi - lo
    total = int(counts.sum())
    li = np.repeat(np.arange(len(left), dtype=np.int64), counts)
    starts = np.repeat(lo - (np.cumsum(counts) - counts), counts)
    ri = order[starts + np.arange(total, dtype=np.int64)]
    return li, ri


def days(values: np.ndarray) -> np.ndarray:
    """``datetime64[D]`` (NaT allowed) to int64 days; NaT becomes :data:`NO_DATE`."""
    d = values.astype("datetime64[D]")
    out = d.astype(np.int64)
    out[np.isnat(d)] = NO_DATE
    return out


def to_datetime(values: np.ndarray) -> np.ndarray:
    """Integer days to ``datetime64[D]``; :data:`NO_DATE` becomes NaT.

    Narrower days (:func:`narrow`) are cast as they are, without an int64
    copy: they cannot hold ``NO_DATE``.
    """
    values = np.asarray(values)
    if values.dtype.kind not in "iu":
        values = values.astype(np.int64)
    out = values.astype("datetime64[D]")
    if values.dtype.itemsize == 8:
        out[values >= NO_DATE] = np.datetime64("NaT")
    return out


_INT64_MAX = int(np.iinfo(np.int64).max)


_INT32 = np.iinfo(np.int32)


def narrow(values: np.ndarray) -> np.ndarray:
    """``values`` as int32 where it is an int64 array whose every value fits
    one, else ``values`` itself.

    For arrays a run holds to its end (the netting's requirements, planned
    orders and pegging: 0.83 KB per SKU at int64, most of what the output
    phase, the run's peak, holds beside the tables it builds). Positions,
    codes and real days fit int32; a code that computes with a narrowed
    array widens it first where its results may not (``NO_DATE``).
    """
    if values.dtype != np.int64 or not len(values):
        return values
    if values.min() < _INT32.min or values.max() > _INT32.max:
        return values
    return values.astype(np.int32)


def unique_ints(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values of an integer array.

    Values within a range not much wider than their count (SKU numbers, row
    positions) are marked in a table of that range and read back in order:
    two passes instead of a sort. Others are sorted: ``np.unique`` without
    an inverse takes a hash-table path in numpy 2.4 that is ten times slower
    on millions of values.
    """
    v = np.asarray(values)
    if len(v) and v.dtype.kind in "iu":
        lo, hi = int(v.min()), int(v.max())
        if hi - lo < 4 * len(v) + 4096 and hi <= _INT64_MAX:
            seen = np.zeros(hi - lo + 1, dtype=bool)
            # (in int64: a narrower type could wrap around subtracting ``lo``)
            seen[v.astype(np.int64, copy=False) - lo] = True
            return (np.flatnonzero(seen) + lo).astype(v.dtype, copy=False)
    s = np.sort(v)
    if len(s) == 0:
        return s
    keep = np.empty(len(s), dtype=bool)
    keep[0] = True
    np.not_equal(s[1:], s[:-1], out=keep[1:])
    return s[keep]


def unique_strings(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted uniques of a StringDType array and the inverse (int64 codes).

    Uses a *stable* argsort on purpose: numpy's default sort of StringDType
    arrays crashes the process (segfault, numpy 2.4) on some inputs, e.g. two
    sorted runs of the same ids, the order a database returns item_coverage
    rows by warehouse. Stable sorting takes another code path.
    """
    values = as_text(values)
    n = len(values)
    if n == 0:
        return values, np.empty(0, dtype=np.int64)
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    first = np.empty(n, dtype=bool)
    first[0] = True
    first[1:] = ordered[1:] != ordered[:-1]
    inverse = np.empty(n, dtype=np.int64)
    inverse[order] = np.cumsum(first) - 1
    return ordered[first], inverse


def factorize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes and sorted uniques of an id array; ``None`` sorts first as its own value.

    Hashing in C (``dict`` over the distinct ids) instead of sorting every row:
    a factorization is one pass over the rows plus a sort of the distinct ids.

    Returns:
        ``(codes, uniques)`` with ``uniques[codes] == values`` (``None`` kept).
    """
    rows = np.asarray(values, dtype=object).tolist()
    distinct = dict.fromkeys(rows)
    distinct.pop(None, None)
    uniques = np.empty(len(distinct) + 1, dtype=object)
    uniques[0] = None
    uniques[1:] = sorted(distinct)
    position = {u: i for i, u in enumerate(uniques)}
    codes = np.fromiter(map(position.__getitem__, rows), dtype=np.int64, count=len(rows))
    return codes, uniques


def first_rows(values: np.ndarray) -> tuple[np.ndarray, dict[object, int]]:
    """For each row, the row where its value first appears; and ``{value: that row}``.

    Equal exactly where the values are equal: codes for duplicate checks and
    grouping, from one hash operation per row (``dict.setdefault`` in C).
    """
    rows = np.asarray(values, dtype=object).tolist()
    first: dict[object, int] = {}
    codes = np.fromiter(
        map(first.setdefault, rows, itertools.count()), dtype=np.int64, count=len(rows)
    )
    return codes, first


def group_codes(*columns: np.ndarray) -> np.ndarray:
    """One int64 code per row, equal exactly when all the given columns are equal.

    Float columns compare by value (NaN equals NaN); id columns by string.
    """
    n = len(columns[0])
    if n == 0:
        return np.empty(0, dtype=np.int64)
    parts = []
    for col in columns:
        if col.dtype == object:
            parts.append(first_rows(col)[0])
        else:
            _, inv = np.unique(col, return_inverse=True, equal_nan=True)
            parts.append(inv.astype(np.int64))
    code = parts[0]
    for part in parts[1:]:
        # Mixed radix: unique while the product of the distinct counts fits
        # in int64; compact again after each column so that it always does.
        code = code * (int(part.max()) + 1) + part
        _, code = np.unique(code, return_inverse=True)
        code = code.reshape(-1).astype(np.int64)
    return code


def positions(ids: np.ndarray) -> dict[object, int]:
    """``{id: index}`` of unique ids, for repeated :func:`lookup` calls."""
    return {u: i for i, u in enumerate(np.asarray(ids, dtype=object).tolist())}


def lookup(keys: np.ndarray, ids: np.ndarray | dict[object, int]) -> np.ndarray:
    """Index of each key in ``ids`` (unique str objects, or their
    :func:`positions`), -1 when absent or None.

    A hash lookup per key in C (``map`` over ``dict.get``), no Python loop
    and no string sort.
    """
    rows = np.asarray(keys, dtype=object).tolist()
    position = ids if isinstance(ids, dict) else positions(ids)
    return np.fromiter(
        map(position.get, rows, itertools.repeat(-1)), dtype=np.int64, count=len(rows)
    )


def member(values: np.ndarray, known: np.ndarray | set[object]) -> np.ndarray:
    """Whether each value is one of ``known`` (hash lookups in C)."""
    rows = np.asarray(values, dtype=object).tolist()
    known_set = known if isinstance(known, set) else set(np.asarray(known, dtype=object).tolist())
    return np.fromiter(map(known_set.__contains__, rows), dtype=bool, count=len(rows))


def number_text(values: np.ndarray) -> np.ndarray:
    """Numbers as text, integers without a fraction (``1`` not ``1.0``, SPEC §4)."""
    values = np.asarray(values, dtype=np.float64)
    integral = np.isfinite(values) & (values == np.round(values))
    out = np.empty(len(values), dtype=_STR)
    out[integral] = values[integral].astype(np.int64).astype(_STR)
    rest = ~integral
    if rest.any():
        out[rest] = np.array([repr(float(v)) for v in values[rest]], dtype=_STR)
    return out


def as_text(values: object) -> np.ndarray:
    """``values`` as a StringDType array, without copying one that already is.

    Every StringDType instance keeps its own string storage, so
    ``astype(StringDType())`` or ``asarray(..., dtype=StringDType())`` on an
    array that is already StringDType copies every string (~0.1 us each).
    """
    arr = np.asarray(values)
    return arr if isinstance(arr.dtype, StringDType) else arr.astype(_STR)


def text(*parts: np.ndarray | str) -> np.ndarray:
    """Concatenate string scalars and arrays element-wise into a StringDType array."""
    out: np.ndarray | str = ""
    for p in parts:
        out = np.strings.add(out, p if isinstance(p, str) else as_text(p))
    return as_text(out)


def date_text(day_values: np.ndarray) -> np.ndarray:
    """int64 days as ISO date text."""
    return np.datetime_as_string(
        np.asarray(day_values, dtype=np.int64).astype("datetime64[D]")
    ).astype(_STR)


def as_objects(values: np.ndarray) -> np.ndarray:
    """A StringDType (or any) array as an object array of ``str``."""
    return np.asarray(values).astype(object)


def gather(values: np.ndarray, index: np.ndarray, fill: object = None) -> np.ndarray:
    """``values[index]``, with ``fill`` where ``index`` is negative (or ``values`` is empty)."""
    index = np.asarray(index)
    if index.dtype.kind not in "iu":
        index = index.astype(np.int64)
    ok = index >= 0
    if fill is not None and values.dtype != object and len(values) and ok.all():
        # No row to fill: no filled copy, no copy of the index (the output's
        # row-sized gathers are the run's peak).
        return values[index]
    if values.dtype == object or fill is None:
        out = np.full(len(index), fill, dtype=object if fill is None else values.dtype)
    else:
        out = np.full(len(index), fill, dtype=values.dtype)
    if ok.any():
        out[ok] = values[index[ok]]
    return out


def find_sorted(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Position of each key in the sorted int array ``sorted_keys``, -1 when absent."""
    if len(sorted_keys) == 0:
        return np.full(len(keys), -1, dtype=np.int64)
    pos = np.searchsorted(sorted_keys, keys)
    pos_c = np.minimum(pos, len(sorted_keys) - 1)
    return np.where(sorted_keys[pos_c] == keys, pos_c, -1).astype(np.int64)
