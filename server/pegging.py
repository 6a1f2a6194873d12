"""Multi-level pegging trees (Planning.GetPegging) from a run's result tables.

From a demand, the tree goes to the supplies pegged to it; from a planned or
firmed planned order, to the dependent requirements its explosion caused
(refs ``PL:{id}/{line}`` for BOM lines, ``PL:{id}`` for a transfer's issue);
and so on down the bill of materials.

:class:`PeggingIndex` sorts the refs once per run (vectorised); each node of
a tree is then two binary searches, so a tree costs its own size, not the
run's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from masterplan.contract.coded import Coded, as_array
from masterplan.contract.columns import Table
from masterplan.server.errors import NotFound

__all__ = ["PegNode", "PeggingIndex", "pegging_tree"]


@dataclass(slots=True)
class PegNode:
    kind: str
    ref: str
    item_id: str
    warehouse_id: str
    date: str
    qty: float
    children: list[PegNode] = field(default_factory=list)


def _iso(value: np.datetime64) -> str:
    return "" if np.isnat(value) else str(value.astype("datetime64[D]"))


class PeggingIndex:
    """The pegging rows of one run, searchable by demand ref and by supply ref."""

    def __init__(self, pegging: Mapping[str, np.ndarray | Coded]) -> None:
        # Plain arrays: the engine may hand over dictionary-coded columns.
        self._p: dict[str, np.ndarray] = {name: as_array(col) for name, col in pegging.items()}
        # Object arrays of str, not numpy strings: numpy 2.4's searchsorted on
        # StringDType fails ("Failed to load string in string comparison")
        # for longer strings.
        demand = np.asarray(self._p["demand_ref"]).astype(object)
        supply = np.asarray(self._p["supply_ref"]).astype(object)
        self._d_order = np.argsort(demand, kind="stable")
        self._d_sorted = demand[self._d_order]
        self._s_order = np.argsort(supply, kind="stable")
        self._s_sorted = supply[self._s_order]

    def _demand_rows(self, ref: str) -> np.ndarray:
        lo = np.searchsorted(self._d_sorted, ref, "left")
        hi = np.searchsorted(self._d_sorted, ref, "right")
        return self._d_order[lo:hi]

    def _supply_rows(self, ref: str) -> np.ndarray:
        lo = np.searchsorted(self._s_sorted, ref, "left")
        hi = np.searchsorted(self._s_sorted, ref, "right")
        return self._s_order[lo:hi]

    def _caused(self, supply_ref: str) -> list[str]:
        """Dependent demand refs of a (firmed) planned order: ``ref/{line}`` and ``ref``."""
        if not supply_ref.startswith("PL:"):
            return []
        out: list[str] = []
        exact = self._demand_rows(supply_ref)
        if len(exact) and np.any(self._p["demand_kind"][exact] == "pl"):
            out.append(supply_ref)
        # refs starting with "ref/": the range up to "ref0" ("0" follows "/")
        lo = np.searchsorted(self._d_sorted, supply_ref + "/", "left")
        hi = np.searchsorted(self._d_sorted, supply_ref + "0", "left")
        prefix = len(supply_ref) + 1
        for ref in dict.fromkeys(self._d_sorted[lo:hi].tolist()):
            if ref[prefix:].isdigit():  # one more segment, the BOM line
                out.append(ref)
        return out

    def tree(self, ref: str, max_depth: int = 0) -> PegNode:
        """The tree below ``ref`` (a demand or supply ref); ``max_depth`` 0 = no limit.

        Raises:
            NotFound: the ref appears in no pegging row.
        """
        p = self._p

        def demand_node(d: str, rows: np.ndarray, depth: int, seen: frozenset[str]) -> PegNode:
            i = rows[0]
            node = PegNode(
                str(p["demand_kind"][i]),
                d,
                str(p["item_id"][i]),
                str(p["warehouse_id"][i]),
                _iso(p["demand_date"][i]),
                float(p["qty"][rows].sum()),
            )
            if max_depth and depth >= max_depth:
                return node
            for j in rows:
                child = supply_node(str(p["supply_ref"][j]), j, depth + 1, seen | {d})
                child.qty = float(p["qty"][j])
                node.children.append(child)
            return node

        def supply_node(s: str, row: int, depth: int, seen: frozenset[str]) -> PegNode:
            node = PegNode(
                str(p["supply_kind"][row]),
                s,
                str(p["item_id"][row]),
                str(p["warehouse_id"][row]),
                _iso(p["supply_date"][row]),
                float(p["qty"][self._supply_rows(s)].sum()),
            )
            if (max_depth and depth >= max_depth) or s in seen:
                return node
            for d in self._caused(s):
                if d not in seen:
                    node.children.append(
                        demand_node(d, self._demand_rows(d), depth + 1, seen | {s})
                    )
            return node

        rows = self._demand_rows(ref)
        if len(rows):
            return demand_node(ref, rows, 0, frozenset())
        rows = self._supply_rows(ref)
        if len(rows):
            return supply_node(ref, int(rows[0]), 0, frozenset())
        raise NotFound(f"ref {ref!r} appears in no pegging row of this run", field="ref")


def pegging_tree(pegging: Table, ref: str, max_depth: int = 0) -> PegNode:
    """The tree below ``ref``; builds a one-off :class:`PeggingIndex`."""
    return PeggingIndex(pegging).tree(ref, max_depth)
