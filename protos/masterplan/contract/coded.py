"""Dictionary-encoded string columns of the plan output.

Most text in a plan repeats: a pegging row names an item, a warehouse, a
demand kind and a demand ref that other rows name too. Gathering numpy strings
costs ~0.2 us a row, and a large plan has millions of rows, so the engine
hands its output's id and ref columns over as :class:`Coded`: integer codes
into an array of values, the shape they cross the wire in anyway
(``masterplan.codec``). A gather of codes costs a few nanoseconds a row.

Consumers that want plain arrays call :func:`as_array` (or
:meth:`PlanResult.arrays <server.engine.types.PlanResult.arrays>`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "CODE_DTYPE",
    "Coded",
    "CodedTable",
    "as_array",
    "coded_nbytes",
    "may_hold_none",
    "values_at",
]

#: The dtype of a :class:`Coded` column's codes (the widest; narrower
#: signed integers are kept as they are).
CODE_DTYPE = np.dtype(np.int32)


@dataclass(frozen=True, slots=True)
class Coded:
    """A text column as ``values[codes]``; code -1 (or a ``None`` value) is NULL.

    ``values`` need not be unique nor all used; several columns may share one.
    """

    codes: np.ndarray
    values: np.ndarray

    def __post_init__(self) -> None:
        # Codes are int32 (or a narrower signed type, as a packed result's):
        # a dictionary never holds 2**31 values, and a plan holds millions of
        # coded cells, kept while it is current (half the bytes of int64).
        # Arithmetic on codes (an offset past another dictionary) is done in
        # int64 and cast back.
        # (A spilled result's coded columns hold the codes' place in a file
        # for a while, not an array.)
        if not isinstance(self.codes, np.ndarray):
            return
        dtype = self.codes.dtype
        if dtype.kind != "i" or dtype.itemsize > CODE_DTYPE.itemsize:
            object.__setattr__(self, "codes", self.codes.astype(CODE_DTYPE))

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, index: Any) -> Coded:
        """Rows ``index`` (a slice, positions or a mask), still coded."""
        return Coded(self.codes[index], self.values)

    @property
    def dtype(self) -> np.dtype:
        """The dtype :meth:`to_array` gives (text columns are ``object``)."""
        return np.dtype(object)

    def to_array(self) -> np.ndarray:
        """The column as an object array of ``str`` and ``None``.

        Rows fewer than values (a few refs of a plan's dictionary of all of
        them) are gathered before they are made objects: making the whole
        dictionary objects cost a run's basis 0.1 s and a string object per
        ref at 100k SKUs, for the refs of its few late requirements.
        """
        if len(self.codes) < len(self.values):
            out = np.full(len(self.codes), None, dtype=object)
            valid = self.codes >= 0
            out[valid] = values_at(self.values, self.codes[valid]).astype(object)
            return out
        lookup = np.empty(len(self.values) + 1, dtype=object)
        lookup[:-1] = self.values.astype(object) if self.values.dtype != object else self.values
        lookup[-1] = None
        return lookup[np.where(self.codes < 0, len(self.values), self.codes)]

    def chunk_dictionary(self, start: int, stop: int) -> tuple[np.ndarray, list[str]]:
        """Codes of rows ``start:stop`` renumbered into a dictionary of just
        the values they use (``None`` values as code -1): what one wire chunk
        carries. Integer work only, plus converting the used values to ``str``.
        """
        codes = self.codes[start:stop]
        valid = codes >= 0
        used = codes[valid]
        if len(used) == 0:
            return np.full(len(codes), -1, dtype=np.int32), []
        lo, hi = int(used.min()), int(used.max())
        if hi - lo < 4 * len(used) + 1024:
            # Dense range (refs of one level, kind names): no sort.
            present = np.zeros(hi - lo + 1, dtype=bool)
            present[used - lo] = True
            uniques = np.flatnonzero(present) + lo
            renumber = np.cumsum(present) - 1
            local = renumber[used - lo]
        else:
            uniques, local = np.unique(used, return_inverse=True)
        words = _words_at(self.values, uniques)
        out = np.full(len(codes), -1, dtype=np.int32)
        out[valid] = local
        # Only objects, or numpy strings with a NULL of their own, hold None:
        # the engine's numpy strings are spared a look at every word (a fifth
        # of streaming a result).
        if may_hold_none(self.values) and None in words:
            # A None value is NULL: drop it from the dictionary.
            keep = np.array([w is not None for w in words])
            shift = np.cumsum(keep) - 1
            mapped = np.where(keep, shift, -1)
            out[valid] = mapped[local]
            words = [w for w in words if w is not None]
        return out, words


#: A table whose text columns may be :class:`Coded`: a plan's result as the
#: engine makes it and streams it, and a chunk as it crosses the wire.
CodedTable = Mapping[str, np.ndarray | Coded]


def _words_at(values: np.ndarray, positions: np.ndarray) -> list[Any]:
    """``values[positions]`` as a list.

    numpy strings are read one by one: gathering them first makes each
    value anew before ``tolist`` makes it a ``str`` again, where a large
    dictionary's values are read out of order (a plan's refs, a chunk's
    few in every thousand), 0.2 s against 0.12 s for the 1.2M refs of the
    100k benchmark's pegging chunks.
    """
    if values.dtype.kind == "T":
        return list(map(values.__getitem__, positions.tolist()))
    return values_at(values, positions).tolist()  # type: ignore[no-any-return]


def may_hold_none(values: np.ndarray) -> bool:
    """Whether ``values`` can hold ``None`` (a NULL): object arrays can, and
    numpy strings only with ``None`` as their missing value; the engine's
    plain numpy strings are spared a look at every value."""
    return values.dtype.kind != "T" or getattr(values.dtype, "na_object", 0) is None


def values_at(values: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """``values[codes]`` for valid (non-negative) codes of any integer type.

    The index is taken as ``intp``: NumPy 2.1 fails to gather a
    ``StringDType`` array by an ``int32`` index ("Failed to load string in
    StringDType getitem", numpy/numpy#27710), and a plan's refs are such
    arrays while its codes are ``int32``.
    """
    return values[codes.astype(np.intp, copy=False)]


def as_array(column: np.ndarray | Coded) -> np.ndarray:
    """A plain numpy array of a column, coded or not."""
    return column.to_array() if isinstance(column, Coded) else column


def coded_nbytes(column: Coded) -> int:
    """Bytes the column holds: its codes, plus its values (shared ones counted each time)."""
    values = column.values
    extra = 56 * len(values) if values.dtype == object else 0
    return int(column.codes.nbytes + values.nbytes + extra)
