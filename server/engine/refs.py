"""Requirement refs as integer codes until the output.

A requirement's ref is text (``SO:...``, ``PL:{planned order}/{line}``, ...)
that matters twice: it breaks ties in the walk order (SPEC §5.5) and it is
printed in pegging and delay messages. Between the two, requirements are
filtered, sorted and filed by level many times; carrying numpy strings through
that costs ~0.2 us a row per gather, and the refs of dependent requirements
would have to be built level by level for planned orders whose ids are not
needed yet. So the netting carries an int64 code per requirement; this book
says what each code stands for:

- a *text* segment: refs given as strings (independent requirements, the
  explosion of firmed orders);
- a *planned* segment: ``PL:{id}/{line_no}`` of planned order ``k`` and BOM
  line row ``line`` (-1: a transfer's ``PL:{id}``), built only when needed.

Codes are dense, in the order refs were added.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.dtypes import StringDType

from masterplan.server.engine.arrays import as_text, narrow, text

__all__ = ["RefBook"]

_STR = StringDType()

#: ``PL:{id}`` of planned orders ``k`` (global numbers), as strings.
PlannedIds = Callable[[np.ndarray], np.ndarray]

#: Spells ``PL:{id}/{line_no}`` of planned orders ``k`` and BOM line rows
#: (-1: no line) whole into the given StringDType array; False where the
#: speller declines (and wrote nothing).
PlannedRefs = Callable[[np.ndarray, np.ndarray, np.ndarray], bool]


@dataclass(frozen=True, slots=True)
class RefBook:
    """The refs behind requirement codes; see the module docstring.

    A value: adding refs returns a new book (sharing the old one's segments)
    and the new codes, so that a phase's book never changes after it is
    returned.

    Attributes
    ----------
    starts : tuple of int
        First code of each segment.
    texts : tuple of (StringDType (n,) or None)
        A text segment's refs; None for a planned segment.
    orders, lines : tuple of (int64 (n,) or None)
        A planned segment's planned orders (global numbers) and BOM line rows
        (-1: a transfer, no line); None for a text segment.
    size : int
        Number of codes given out.
    """

    starts: tuple[int, ...] = ()
    texts: tuple[np.ndarray | None, ...] = ()
    orders: tuple[np.ndarray | None, ...] = ()
    lines: tuple[np.ndarray | None, ...] = ()
    size: int = 0

    def _append(
        self, n: int, texts: np.ndarray | None, orders: np.ndarray | None, lines: np.ndarray | None
    ) -> tuple[RefBook, np.ndarray]:
        codes = np.arange(self.size, self.size + n, dtype=np.int64)
        if not n:
            return self, codes
        book = RefBook(
            (*self.starts, self.size),
            (*self.texts, texts),
            (*self.orders, orders),
            (*self.lines, lines),
            self.size + n,
        )
        return book, codes

    def add_text(self, refs: np.ndarray) -> tuple[RefBook, np.ndarray]:
        """The book with refs given as text added, and their codes (int64)."""
        return self._append(len(refs), as_text(refs), None, None)

    def add_planned(self, orders: np.ndarray, lines: np.ndarray) -> tuple[RefBook, np.ndarray]:
        """The book with ``PL:{id of order k}/{line_no of BOM line row}`` (row -1:
        no line) added, and their codes (int64)."""
        # Held to the end of the run: in int32 where the values fit.
        return self._append(
            len(orders),
            None,
            narrow(np.asarray(orders, np.int64)),
            narrow(np.asarray(lines, np.int64)),
        )

    def planned(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """``(orders, line rows)`` (int64) behind ``codes``; None when a code is a text ref."""
        codes = np.asarray(codes, dtype=np.int64)
        orders = np.empty(len(codes), dtype=np.int64)
        lines = np.empty(len(codes), dtype=np.int64)
        if len(codes) == 0:
            return orders, lines
        seg = np.searchsorted(np.asarray(self.starts), codes, "right") - 1
        for s in np.unique(seg):
            seg_orders, seg_lines = self.orders[s], self.lines[s]
            if seg_orders is None or seg_lines is None:
                return None
            at = np.flatnonzero(seg == s)
            offset = codes[at] - self.starts[s]
            orders[at] = seg_orders[offset]
            lines[at] = seg_lines[offset]
        return orders, lines

    def text(self, codes: np.ndarray, planned_ids: PlannedIds, suffix: np.ndarray) -> np.ndarray:
        """StringDType (N,): the refs of ``codes`` as strings.

        Parameters
        ----------
        codes : int64 (N,)
            Codes of this book.
        planned_ids : callable
            ``PL:{id}`` of given planned orders.
        suffix : StringDType (L,)
            ``/{line_no}`` of every BOM line row.
        """
        codes = np.asarray(codes, dtype=np.int64)
        out = np.empty(len(codes), dtype=_STR)
        if len(codes) == 0:
            return out
        seg = np.searchsorted(np.asarray(self.starts), codes, "right") - 1
        for s in np.unique(seg):
            at = np.flatnonzero(seg == s)
            offset = codes[at] - self.starts[s]
            out[at] = self._segment_text(int(s), offset, planned_ids, suffix)
        return out

    def values(
        self, planned_ids: PlannedIds, suffix: np.ndarray, spell: PlannedRefs | None = None
    ) -> np.ndarray:
        """Every ref in code order: ``values()[code]`` is the ref of ``code``.
        ``spell``, where given, spells a planned segment's refs whole (where
        it declines, they are ``planned_ids`` and ``suffix`` joined).

        Each segment is spelled into its place: all of them joined at the
        end were held twice over, at the top of the output phase, the run's
        peak (0.1 KB per SKU). ``spell`` writes straight into the place, so
        that the planned segments' strings, most of the refs, are not stored
        in an array of their own first and then again: each StringDType
        array keeps its strings in a buffer that grows by reallocation, and
        at 1M SKUs the heap grew most where those buffers did.
        """
        out = np.empty(self.size, dtype=_STR)
        stops = (*self.starts[1:], self.size)[: len(self.starts)]
        for s, (start, stop) in enumerate(zip(self.starts, stops, strict=True)):
            orders, lines = self.orders[s], self.lines[s]
            into = out[start:stop]
            if (
                spell is not None
                and orders is not None
                and lines is not None
                and spell(orders, lines, into)
            ):
                continue
            into[...] = self._segment_text(s, None, planned_ids, suffix)
        return out

    def _segment_text(
        self,
        s: int,
        offset: np.ndarray | None,
        planned_ids: PlannedIds,
        suffix: np.ndarray,
    ) -> np.ndarray:
        texts = self.texts[s]
        if texts is not None:
            return texts if offset is None else texts[offset]
        orders, lines = self.orders[s], self.lines[s]
        assert orders is not None and lines is not None
        if offset is not None:
            orders, lines = orders[offset], lines[offset]
        ids = planned_ids(orders)
        # A segment is one explosion: all BOM lines, or all transfers.
        if (lines >= 0).all():
            return text(ids, suffix[lines])
        if (lines < 0).all():
            return ids
        return text(ids, np.r_[suffix, np.array([""], dtype=_STR)][lines])
