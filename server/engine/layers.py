"""A net change's result kept as the previous result plus a patch.

A net change replaces the rows of the SKUs it re-planned, a few hundred of
a plan's million. Copying the plan to replace them cost more than planning
them, so a net change's result table is a :class:`PatchedTable`: a base
table (a regeneration's, or a compacted one), a flag per SKU number whose
base rows are replaced, and a patch with the current rows of those SKUs.
The next net change replaces rows in the patch and flags more SKUs; nothing
the size of the plan is copied. The whole table is made once, when someone
reads it (:class:`LayeredTables`), or when the patch grows past a share of
the base (then the next layer starts from it).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping

import numpy as np

from masterplan.contract.coded import Coded, as_array
from masterplan.server.engine.skus import Masters
from masterplan.server.engine.stitch import join_columns, row_skus
from masterplan.server.engine.types import ResultTable, Table

__all__ = ["LayeredTables", "PatchedTable", "patched_tables"]

#: A patch this large against its base (rows) is joined into a new base.
_COMPACT_SHARE = 0.125
#: ... but never below this many rows, which join in a few milliseconds.
_COMPACT_MIN = 50_000


class PatchedTable:
    """One result table whose rows each belong to a SKU: the base's rows
    of SKUs not replaced, then the patch's rows. Never changed once made.

    Attributes
    ----------
    base : ResultTable
        The rows it started from.
    base_sku : int64 (N,)
        The SKU number of each base row (-1: none).
    gone : bool (SKU numbers + 1,)
        Whether a SKU's base rows are replaced; the last slot (SKU -1)
        stays False.
    gone_rows : int
        How many base rows are replaced.
    base_order, base_start : int64
        The base's rows grouped by SKU: those of SKU number ``k`` are
        ``base_order[base_start[k + 1]:base_start[k + 2]]`` (SKU -1 first),
        so that finding a few SKUs' rows costs their rows, not the table's.
    patch : ResultTable
        The rows of the replaced SKUs, with ``item_id`` and ``warehouse_id``
        coded in the base's dictionaries.
    patch_sku : int64 (P,)
        The SKU number of each patch row.
    """

    __slots__ = (
        "base",
        "base_order",
        "base_sku",
        "base_start",
        "gone",
        "gone_rows",
        "patch",
        "patch_sku",
    )

    def __init__(
        self,
        base: ResultTable,
        base_sku: np.ndarray,
        gone: np.ndarray,
        gone_rows: int,
        patch: ResultTable,
        patch_sku: np.ndarray,
        base_order: np.ndarray,
        base_start: np.ndarray,
    ) -> None:
        self.base = base
        self.base_sku = base_sku
        self.gone = gone
        self.gone_rows = gone_rows
        self.patch = patch
        self.patch_sku = patch_sku
        self.base_order = base_order
        self.base_start = base_start

    @classmethod
    def of(cls, table: ResultTable, sku: np.ndarray, slots: int) -> PatchedTable:
        """``table`` (rows of SKU numbers ``sku``, below ``slots``), unpatched."""
        order = np.argsort(sku, kind="stable")
        start = np.zeros(slots + 2, dtype=np.int64)
        np.cumsum(np.bincount(sku + 1, minlength=slots + 1), out=start[1:])
        gone = np.zeros(slots + 1, dtype=bool)
        return cls(table, sku, gone, 0, _no_rows(table), sku[:0], order, start)

    def __len__(self) -> int:
        return len(self.base_sku) - self.gone_rows + len(self.patch_sku)

    def rows_of(self, flags: np.ndarray) -> Table:
        """The rows of the SKUs ``flags`` marks (a flag per SKU number, as
        :attr:`gone`), decoded into plain arrays."""
        in_base = np.sort(self._base_rows(np.flatnonzero(flags & ~self.gone)))
        in_patch = np.flatnonzero(flags[self.patch_sku])
        out: Table = {}
        for col, values in self.base.items():
            first, second = as_array(values[in_base]), as_array(self.patch[col][in_patch])
            if first.dtype != second.dtype:
                first, second = first.astype(object), second.astype(object)
            out[col] = np.concatenate([first, second])
        return out

    def replaced(self, flags: np.ndarray, rows: ResultTable, sku: np.ndarray) -> PatchedTable:
        """This table with the rows of the SKUs ``flags`` marks replaced by
        ``rows`` (of SKU numbers ``sku``, item and warehouse coded as
        :attr:`patch` is)."""
        newly = len(self._base_rows(np.flatnonzero(flags & ~self.gone)))
        keep = ~flags[self.patch_sku]
        patch = {col: join_columns(values, keep, rows[col]) for col, values in self.patch.items()}
        out = PatchedTable(
            self.base,
            self.base_sku,
            self.gone | flags,
            self.gone_rows + newly,
            patch,
            np.concatenate([self.patch_sku[keep], sku]),
            self.base_order,
            self.base_start,
        )
        if len(out.patch_sku) > max(_COMPACT_MIN, _COMPACT_SHARE * len(self.base_sku)):
            return out.compacted()
        return out

    def _base_rows(self, skus: np.ndarray) -> np.ndarray:
        """Rows of the base that belong to the SKU numbers ``skus`` (in SKU order)."""
        lo, hi = self.base_start[skus + 1], self.base_start[skus + 2]
        counts = hi - lo
        total = int(counts.sum())
        if total == 0:
            return np.empty(0, dtype=np.int64)
        first = np.repeat(lo - (np.cumsum(counts) - counts), counts)
        return self.base_order[first + np.arange(total)]

    def table(self) -> ResultTable:
        """The whole table: one join of the base's kept rows and the patch."""
        if not len(self.patch_sku) and not self.gone_rows:
            return self.base
        keep = ~self.gone[self.base_sku]
        return {
            col: join_columns(values, keep, self.patch[col]) for col, values in self.base.items()
        }

    def compacted(self) -> PatchedTable:
        """The same rows as an unpatched table."""
        if not len(self.patch_sku) and not self.gone_rows:
            return self
        keep = ~self.gone[self.base_sku]
        sku = np.concatenate([self.base_sku[keep], self.patch_sku])
        return PatchedTable.of(self.table(), sku, len(self.gone) - 1)

    def coded_like_base(self, rows: ResultTable, item_codes: np.ndarray) -> ResultTable:
        """``rows`` (a plan's, of the same columns) with ``item_id`` coded by
        ``item_codes`` (positions among the master item ids) and both id
        columns sharing the base's dictionaries, so that joins keep them."""
        out = dict(rows)
        item, wh = self.base["item_id"], self.base["warehouse_id"]
        new_wh = rows["warehouse_id"]
        if isinstance(item, Coded) and isinstance(wh, Coded) and isinstance(new_wh, Coded):
            out["item_id"] = Coded(item_codes, item.values)
            out["warehouse_id"] = Coded(new_wh.codes, wh.values)
        return out

    def pieces(self) -> tuple[ResultTable, ResultTable]:
        """The tables it holds (for counting memory)."""
        return self.base, self.patch

    @property
    def index_nbytes(self) -> int:
        """Bytes of what it holds besides its tables: the SKU numbers of the
        rows and the grouping of the base's rows by SKU."""
        arrays = (self.base_sku, self.base_order, self.base_start, self.gone, self.patch_sku)
        return sum(a.nbytes for a in arrays)


def _no_rows(table: ResultTable) -> ResultTable:
    """An empty table of ``table``'s columns. Coded text starts with an empty
    dictionary (joining rows to the whole plan's refs would convert all of
    them), except the item and warehouse ids, which share the master ids'."""
    out: ResultTable = {}
    for col, values in table.items():
        if isinstance(values, Coded) and col not in ("item_id", "warehouse_id"):
            out[col] = Coded(values.codes[:0], values.values[:0])
        else:
            out[col] = values[:0]
    return out


def patched_tables(
    m: Masters, tables: Mapping[str, ResultTable], names: tuple[str, ...]
) -> dict[str, PatchedTable]:
    """The tables ``names`` of a result as :class:`PatchedTable`: those of a
    :class:`LayeredTables` as they are, plain ones unpatched (their rows'
    SKU numbers looked up once)."""
    if isinstance(tables, LayeredTables):
        return {name: tables.part(name) for name in names}
    slots = len(m.item_ids) * m.n_wh
    return {name: PatchedTable.of(tables[name], row_skus(m, tables[name]), slots) for name in names}


class LayeredTables(Mapping[str, ResultTable]):
    """A result's tables, some of them patched: a table is joined when first
    read, once (the join replaces the patched table, with the same rows).

    Safe to read from several threads.
    """

    def __init__(self, parts: Mapping[str, PatchedTable | ResultTable]) -> None:
        self._parts: dict[str, PatchedTable | ResultTable] = dict(parts)
        self._lock = threading.Lock()

    def part(self, name: str) -> PatchedTable:
        """Table ``name`` as a :class:`PatchedTable`, without joining it."""
        part = self._parts[name]
        if not isinstance(part, PatchedTable):
            raise TypeError(f"table {name!r} is not patched")
        return part

    def __getitem__(self, name: str) -> ResultTable:
        part = self._parts[name]
        if not isinstance(part, PatchedTable):
            return part
        with self._lock:
            part = self._parts[name]
            if isinstance(part, PatchedTable):
                part = part.compacted()
                self._parts[name] = part
                return part.base
            return part

    def joined(self) -> dict[str, ResultTable]:
        """Every table joined, for a reader that reads them once: the joins
        are not kept, the patched tables stay as they are."""
        return {
            name: part.table() if isinstance(part, PatchedTable) else part
            for name, part in list(self._parts.items())
        }

    def __iter__(self) -> Iterator[str]:
        return iter(self._parts)

    def __len__(self) -> int:
        return len(self._parts)

    def length(self, name: str) -> int:
        """Rows of table ``name``, without joining it."""
        part = self._parts[name]
        if isinstance(part, PatchedTable):
            return len(part)
        for values in part.values():
            return len(values)
        return 0

    def pieces(self) -> list[ResultTable]:
        """Every table it holds, bases and patches (for counting memory)."""
        out: list[ResultTable] = []
        for part in list(self._parts.values()):
            out.extend(part.pieces() if isinstance(part, PatchedTable) else (part,))
        return out

    def index_nbytes(self) -> int:
        """Bytes its patched tables hold besides their tables."""
        parts = list(self._parts.values())
        return sum(p.index_nbytes for p in parts if isinstance(p, PatchedTable))
