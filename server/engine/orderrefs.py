"""Planned-order ids and requirement refs of one run: spelled on demand, ranked without spelling.

A planned order's id is ``{item}/{warehouse}/{n}`` (SPEC §5.6), where ``n``
counts the SKU's orders; the refs of the requirements its explosion makes are
``PL:{id}/{line_no}`` (``PL:{id}`` for a transfer). The netting keeps only
the integers these are made of, the SKU position and ``n`` of each order
(:class:`OrderLog`) and a :class:`~masterplan.server.engine.refs.RefBook`
code per requirement, and :class:`OrderRefs` turns them into text where text
is needed: the refs of rows that tie in the walk order (when they cannot be
ranked by integers) and the output.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.dtypes import StringDType

from masterplan.server.engine.arrays import gather, number_text, text, unique_strings
from masterplan.server.engine.columns import packed_keys
from masterplan.server.engine.kernels import ByteTable, byte_table, spell_numbered
from masterplan.server.engine.refs import RefBook
from masterplan.server.engine.skus import Masters, SkuSettings

#: The per-SKU and per-line texts :meth:`OrderRefs.as_bytes` makes bytes of.
Spelled = Literal["id_prefix", "pl_prefix", "line_suffix"]

__all__ = ["OrderLog", "OrderRefs"]

_STR = StringDType()


def _numbered(
    heads: np.ndarray, head_bytes: ByteTable | None, index: np.ndarray, num: np.ndarray
) -> np.ndarray:
    """StringDType (N,): ``heads[index]`` followed by ``num`` in decimal:
    by the compiled speller from ``head_bytes`` (the heads as bytes), or by
    numpy where there are none (text that is not ASCII)."""
    spelled = None if head_bytes is None else spell_numbered(head_bytes, index, num)
    return text(heads[index], num.astype(_STR)) if spelled is None else spelled


class OrderLog:
    """SKU position and number ``n`` of every planned order made so far.

    The netting's working record, level after level: the global number of an
    order is its position here. The arrays are joined once per size, when a
    ref is spelled or ranked.
    """

    def __init__(self) -> None:
        self._sidx: list[np.ndarray] = []
        self._num: list[np.ndarray] = []
        self._size = 0
        self._joined: tuple[np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        return self._size

    def add(self, sidx: np.ndarray, num: np.ndarray) -> None:
        """Record the next planned orders (int64 SKU positions and ``n``)."""
        self._sidx.append(sidx)
        self._num.append(num)
        self._size += len(sidx)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """int64 (K,) twice: SKU position and ``n`` of every order recorded."""
        if self._joined is None or len(self._joined[0]) != self._size:
            self._joined = (
                np.concatenate(self._sidx) if self._sidx else np.empty(0, np.int64),
                np.concatenate(self._num) if self._num else np.empty(0, np.int64),
            )
        return self._joined


class OrderRefs:
    """What spells and ranks planned-order ids and refs, for one SKU set.

    Pieces shared by many refs (id prefixes per SKU, line suffixes, code-point
    ranks of ids) are built once, when first needed; the object holds no other
    state, so every phase may use the same one.

    Parameters
    ----------
    m : Masters
        The run's masters (ids, BOM lines).
    s : SkuSettings
        The run's SKUs.
    """

    def __init__(self, m: Masters, s: SkuSettings) -> None:
        self.m, self.s = m, s
        self._suffix: np.ndarray | None = None
        self._prefix: np.ndarray | None = None
        self._pl: np.ndarray | None = None
        self._no_slash: bool | None = None
        self._ranks: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        #: The prefixes, ``PL:`` prefixes and line suffixes as bytes for the
        #: compiled speller (None: not ASCII), made once.
        self._bytes: dict[Spelled, ByteTable | None] = {}

    # -- what ids and refs are made of ------------------------------------------
    def line_suffix(self) -> np.ndarray:
        """StringDType (L,): ``/{line_no}`` of every BOM line row."""
        if self._suffix is None:
            self._suffix = text("/", number_text(self.m.lines["line_no"]))
        return self._suffix

    def id_prefix(self) -> np.ndarray:
        """StringDType (S,): ``{item}/{warehouse}/`` of every SKU."""
        if self._prefix is None:
            m, s = self.m, self.s
            self._prefix = text(m.item_str[s.item], "/", m.wh_str[s.wh], "/")
        return self._prefix

    def pl_prefix(self) -> np.ndarray:
        """StringDType (S,): ``PL:{item}/{warehouse}/`` of every SKU."""
        if self._pl is None:
            self._pl = text("PL:", self.id_prefix())
        return self._pl

    def as_bytes(self, name: Spelled) -> ByteTable | None:
        """``id_prefix``, ``pl_prefix`` or ``line_suffix`` as bytes (None:
        not ASCII), made at the first call."""
        if name not in self._bytes:
            table = {
                "id_prefix": self.id_prefix,
                "pl_prefix": self.pl_prefix,
                "line_suffix": self.line_suffix,
            }[name]()
            self._bytes[name] = byte_table(table)
        return self._bytes[name]

    def release(self) -> None:
        """Drop the pieces built so far; a later call builds them again.

        The output calls it once every id and ref of the run is spelled:
        the prefixes, their bytes and the ranks were 0.14 KB per SKU of the
        output phase, the run's peak, with no use left.
        """
        self._suffix = self._prefix = self._pl = None
        self._ranks = None
        self._bytes.clear()

    def ids(self, sidx: np.ndarray, num: np.ndarray) -> np.ndarray:
        """StringDType (N,): planned order ids of SKU positions ``sidx`` and numbers ``num``."""
        return _numbered(self.id_prefix(), self.as_bytes("id_prefix"), sidx, num)

    def planned_ids(self, orders: OrderLog, k: np.ndarray) -> np.ndarray:
        """StringDType (N,): ``PL:{id}`` of recorded planned orders ``k``."""
        sidx, num = orders.arrays()
        return _numbered(self.pl_prefix(), self.as_bytes("pl_prefix"), sidx[k], num[k])

    def supply_values(
        self, receipt_refs: np.ndarray, sidx: np.ndarray, num: np.ndarray
    ) -> np.ndarray:
        """StringDType (R + N,): the receipts' refs, then ``PL:{id}`` of the
        planned orders of SKU positions ``sidx`` and numbers ``num``: every
        supply ref of a run, spelled into one array (the ids, most of them,
        are not stored in an array of their own first and then copied)."""
        n = len(receipt_refs)
        out = np.empty(n + len(sidx), dtype=_STR)
        out[:n] = receipt_refs
        into = out[n:]
        heads = self.as_bytes("pl_prefix")
        if heads is None or spell_numbered(heads, sidx, num, out=into) is None:
            into[...] = _numbered(self.pl_prefix(), None, np.asarray(sidx), np.asarray(num))
        return out

    # -- refs -----------------------------------------------------------------
    def text(self, book: RefBook, orders: OrderLog, codes: np.ndarray) -> np.ndarray:
        """StringDType (N,): the refs of ``codes``, spelled."""
        return book.text(codes, lambda k: self.planned_ids(orders, k), self.line_suffix())

    def rank(self, book: RefBook, orders: OrderLog, codes: np.ndarray) -> np.ndarray:
        """int64 (N,): ranks of ``codes`` in the code-point order of their refs.

        Refs of planned orders, ``PL:{item}/{warehouse}/{n}[/{line_no}]``,
        are ranked by integers when no item or warehouse id holds a ``/``:
        then comparing two such refs compares ``item + "/"``, then
        ``warehouse + "/"``, then ``n`` and ``line_no`` as text (a digit
        string that is a prefix of another sorts first, as ``/`` and the end
        of the string sort before digits). Otherwise, and when a ref was
        given as text, the refs are spelled out and sorted as strings.
        """
        planned = book.planned(codes) if self._slash_free() else None
        if planned is None:
            return unique_strings(self.text(book, orders, codes))[1]
        lines = planned[1]
        sidx, num = orders.arrays()
        sidx, num = sidx[planned[0]], num[planned[0]]
        item_rank, wh_rank, line_rank = self._id_ranks()
        uniq_num, num_code = np.unique(num, return_inverse=True)
        num_rank = unique_strings(uniq_num.astype(_STR))[1][num_code]
        keys = (
            gather(line_rank, lines, -1),  # -1: a transfer's ref has no line
            num_rank,
            wh_rank[self.s.wh[sidx]],
            item_rank[self.s.item[sidx]],
        )
        packed = packed_keys(keys)
        order = np.lexsort(keys) if packed is None else np.argsort(packed, kind="stable")
        step = np.zeros(len(order), dtype=np.int64)
        if len(order) > 1:
            differs = np.zeros(len(order) - 1, dtype=bool)
            for key in keys:
                k = key[order]
                differs |= k[1:] != k[:-1]
            step[1:] = differs
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.cumsum(step)
        return rank

    def values(
        self, book: RefBook, planned_ids: np.ndarray, sidx: np.ndarray, num: np.ndarray
    ) -> np.ndarray:
        """StringDType (size,): every ref of ``book`` in code order, given
        ``PL:{id}`` of all planned orders and their SKU positions and numbers
        (from which the compiled speller spells the refs whole)."""
        suffix = self.line_suffix()

        def spell(orders: np.ndarray, lines: np.ndarray, out: np.ndarray) -> bool:
            heads, tails = self.as_bytes("pl_prefix"), self.as_bytes("line_suffix")
            if heads is None or tails is None:
                return False
            spelled = spell_numbered(heads, sidx[orders], num[orders], tails, lines, out)
            return spelled is not None

        return book.values(lambda k: planned_ids[k], suffix, spell)

    def _slash_free(self) -> bool:
        if self._no_slash is None:
            m = self.m
            self._no_slash = not (
                np.strings.find(m.item_str, "/").max(initial=-1) >= 0
                or np.strings.find(m.wh_str, "/").max(initial=-1) >= 0
            )
        return self._no_slash

    def _id_ranks(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Code-point ranks of ``item + "/"``, ``warehouse + "/"`` and BOM line numbers."""
        if self._ranks is None:
            m = self.m
            self._ranks = (
                unique_strings(text(m.item_str, "/"))[1],
                unique_strings(text(m.wh_str, "/"))[1],
                unique_strings(self.line_suffix())[1],
            )
        return self._ranks
