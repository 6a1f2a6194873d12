"""Multi-level pegging trees (Planning.GetPegging) from a run's result tables.

From a demand, the tree goes to the supplies pegged to it; from a planned or
firmed planned order, to the dependent requirements its explosion caused
(refs ``PL:{id}/{line}`` for BOM lines, ``PL:{id}`` for a transfer's issue);
and so on down the bill of materials.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from server.engine.types import Table
from server.errors import NotFound

__all__ = ["PegNode", "pegging_tree"]


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


def pegging_tree(pegging: Table, ref: str, max_depth: int = 0) -> PegNode:
    """The tree below ``ref`` (a demand or a supply ref). ``max_depth`` 0 = no limit."""
    by_demand: dict[str, list[int]] = defaultdict(list)
    by_supply: dict[str, list[int]] = defaultdict(list)
    caused: dict[str, set[str]] = defaultdict(set)
    demand_ref = pegging["demand_ref"]
    supply_ref = pegging["supply_ref"]
    for i, (d, s) in enumerate(zip(demand_ref.tolist(), supply_ref.tolist(), strict=True)):
        by_demand[d].append(i)
        by_supply[s].append(i)
    for i in np.flatnonzero(pegging["demand_kind"] == "pl"):
        d = demand_ref[i]
        # PL:{id}/{line} or PL:{id}: the order's id is the ref minus a last
        # numeric segment when that names an order, else the whole ref.
        head, _, tail = d.rpartition("/")
        parent = head if tail.isdigit() and head.count("/") >= 2 else d
        caused[parent].add(d)

    def demand_node(d: str, depth: int, seen: frozenset[str]) -> PegNode:
        rows = by_demand[d]
        i = rows[0]
        node = PegNode(
            str(pegging["demand_kind"][i]),
            d,
            str(pegging["item_id"][i]),
            str(pegging["warehouse_id"][i]),
            _iso(pegging["demand_date"][i]),
            float(sum(pegging["qty"][j] for j in rows)),
        )
        if max_depth and depth >= max_depth:
            return node
        for j in rows:
            s = str(supply_ref[j])
            child = supply_node(s, j, depth + 1, seen | {d})
            child.qty = float(pegging["qty"][j])
            node.children.append(child)
        return node

    def supply_node(s: str, row: int, depth: int, seen: frozenset[str]) -> PegNode:
        node = PegNode(
            str(pegging["supply_kind"][row]),
            s,
            str(pegging["item_id"][row]),
            str(pegging["warehouse_id"][row]),
            _iso(pegging["supply_date"][row]),
            float(sum(pegging["qty"][j] for j in by_supply[s])),
        )
        if (max_depth and depth >= max_depth) or s in seen:
            return node
        for d in sorted(caused.get(s, ())):
            if d not in seen:
                node.children.append(demand_node(d, depth + 1, seen | {s}))
        return node

    if ref in by_demand:
        return demand_node(ref, 0, frozenset())
    if ref in by_supply:
        return supply_node(ref, by_supply[ref][0], 0, frozenset())
    raise NotFound(f"ref {ref!r} appears in no pegging row of this run", field="ref")
