"""Multi-level pegging trees (Planning.GetPegging) from a run's result tables.

From a demand, the tree goes to the supplies pegged to it; from a planned or
firmed planned order, to the dependent requirements its explosion caused
(refs ``PL:{id}/{line}`` for BOM lines, ``PL:{id}`` for a transfer's issue);
and so on down the bill of materials.

:class:`PeggingIndex` sorts the refs once per run (vectorised); each node of
a tree is then two binary searches, so a tree costs its own size, not the
run's.

A tree is bounded whatever the data: a bill of materials that uses one
component twice on every level doubles the number of paths per level, and a
chain of a thousand levels is as legal as one of three. So the walk is
iterative (no recursion limit), breadth first (when a bound stops it, the top
levels are what was sent), sends each demand or supply that several paths
reach once (the later ones refer to it), stops at ``max_nodes`` nodes, and
leaves on each node whose children were not all sent a continuation token
from which a later call goes on. The caller's ``check`` runs every few
hundred nodes, so that a call whose client has gone stops working.
"""

from __future__ import annotations

import base64
import binascii
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from masterplan.contract.coded import Coded, as_array
from masterplan.contract.columns import Table
from masterplan.contract.explain import END_KINDS, cause_candidates, caused_refs
from masterplan.server.errors import InvalidArgument, NotFound

__all__ = [
    "DEFAULT_MAX_NODES",
    "MAX_NODES_CAP",
    "PegNode",
    "PegTree",
    "PeggingIndex",
    "continuation_token",
    "parse_continuation",
    "pegging_tree",
]

#: Nodes of one answer when the request names no bound: about 1 MB on the wire.
DEFAULT_MAX_NODES = 10_000
#: Most nodes one answer may hold, whatever the request asks (about 10 MB).
MAX_NODES_CAP = 100_000
#: Nodes expanded between two calls of ``check``.
CHECK_EVERY = 256

_TOKEN_PREFIX = "p1"


@dataclass(slots=True)
class PegNode:
    """One node of a flat tree: a demand or a supply, and where it hangs.

    ``qty`` is the quantity pegged between the node and its parent (the
    node's own quantity at the root). ``same_as`` is the index of the earlier
    node for the same demand or supply, whose children stand for this node's
    (-1 for that first node). ``continuation`` is set when the node has
    children that were not sent.
    """

    kind: str
    ref: str
    item_id: str
    warehouse_id: str
    date: str
    qty: float
    parent: int = -1
    supply: bool = False
    depth: int = 0
    same_as: int = -1
    continuation: str = ""


@dataclass(slots=True)
class PegTree:
    """A pegging tree as a flat list: parents before their children, the root first."""

    nodes: list[PegNode] = field(default_factory=list)
    #: ``max_nodes`` stopped the walk: some node above ``max_depth`` has a continuation.
    truncated: bool = False

    def children(self) -> list[list[int]]:
        """The indexes of each node's children, in the order they were sent."""
        out: list[list[int]] = [[] for _ in self.nodes]
        for i, n in enumerate(self.nodes):
            if n.parent >= 0:
                out[n.parent].append(i)
        return out


def _iso(value: np.datetime64) -> str:
    return "" if np.isnat(value) else str(value.astype("datetime64[D]"))


def continuation_token(supply: bool, ref: str, skip: int, up: bool = False, level: int = 0) -> str:
    """The opaque token that resumes below one node, after its first ``skip``
    children, in the tree's direction (``up``), the node being ``level`` BOM
    levels from the first root (so that a resumed walk counts on)."""
    side = ("S" if supply else "D") if up else ("s" if supply else "d")
    raw = f"{_TOKEN_PREFIX}|{side}|{skip}|{level}|{ref}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def parse_continuation(token: str) -> tuple[bool, str, int, bool, int]:
    """``(supply, ref, skip, up, level)`` of a token this module issued.

    Raises:
        InvalidArgument: the token is not one of ours.
    """
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        prefix, side, skip, level, ref = raw.split("|", 4)
        if prefix != _TOKEN_PREFIX or side not in ("s", "d", "S", "D") or not ref:
            raise ValueError(raw)
        return side in ("s", "S"), ref, int(skip), side in ("S", "D"), int(level)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidArgument(
            "continuation is not a token this server issued", field="continuation"
        ) from None


@dataclass(slots=True)
class _Child:
    supply: bool
    ref: str
    row: int  # a supply's pegging row under its demand; -1 for a demand


class PeggingIndex:
    """The pegging rows of one run, searchable by demand ref and by supply ref."""

    def __init__(
        self,
        pegging: Mapping[str, np.ndarray | Coded],
        delay_messages: Mapping[str, np.ndarray | Coded] | None = None,
    ) -> None:
        # Plain arrays: the engine may hand over dictionary-coded columns.
        self._p: dict[str, np.ndarray] = {name: as_array(col) for name, col in pegging.items()}
        # A late demand that took nothing has a delay message and no pegging row.
        self._late: dict[str, np.ndarray] = (
            {name: as_array(col) for name, col in delay_messages.items()}
            if delay_messages is not None
            else {}
        )
        # Object arrays of str, not numpy strings: numpy 2.4's searchsorted on
        # StringDType fails ("Failed to load string in string comparison")
        # for longer strings.
        demand = np.asarray(self._p["demand_ref"]).astype(object)
        supply = np.asarray(self._p["supply_ref"]).astype(object)
        self._d_order = np.argsort(demand, kind="stable")
        self._d_sorted = demand[self._d_order]
        self._s_order = np.argsort(supply, kind="stable")
        self._s_sorted = supply[self._s_order]

    def demand_rows(self, ref: str) -> np.ndarray:
        """Pegging rows whose demand ref is ``ref``."""
        return self._demand_rows(ref)

    def supply_rows(self, ref: str) -> np.ndarray:
        """Pegging rows whose supply ref is ``ref``."""
        return self._supply_rows(ref)

    def demand_prefix_rows(self, prefix: str) -> np.ndarray:
        """Pegging rows whose demand ref starts with ``prefix``."""
        return self._d_order[self._prefix_range(prefix)]

    def _prefix_range(self, prefix: str) -> slice:
        """Where the sorted demand refs that start with ``prefix`` lie."""
        lo = np.searchsorted(self._d_sorted, prefix, "left")
        hi = np.searchsorted(self._d_sorted, prefix + "\U0010ffff", "left")
        return slice(int(lo), int(hi))

    def _demand_rows(self, ref: str) -> np.ndarray:
        lo = np.searchsorted(self._d_sorted, ref, "left")
        hi = np.searchsorted(self._d_sorted, ref, "right")
        return self._d_order[lo:hi]

    def _supply_rows(self, ref: str) -> np.ndarray:
        lo = np.searchsorted(self._s_sorted, ref, "left")
        hi = np.searchsorted(self._s_sorted, ref, "right")
        return self._s_order[lo:hi]

    def _caused(self, supply_ref: str) -> list[str]:
        """Refs of the requirements a supply caused one level lower: a
        (firmed) planned order's ``ref/{line}`` (BOM lines) and ``ref`` (a
        transfer's issue), a production order's lines, a transfer receipt's
        issue (SPEC §4 refs)."""
        kind = supply_ref.split(":", 1)[0].lower()
        exact, prefix = caused_refs(kind, supply_ref)
        out: list[str] = []
        for ref in exact:
            if len(self._demand_rows(ref)):
                out.append(ref)
        if prefix is not None:
            for ref in dict.fromkeys(self._d_sorted[self._prefix_range(prefix)].tolist()):
                if ref[len(prefix) :].isdigit():  # one more segment, the line
                    out.append(ref)
        return out

    def _causes(self, demand_ref: str) -> list[str]:
        """Refs of the supplies one level higher that caused a requirement."""
        rows = self._demand_rows(demand_ref)
        if not len(rows):
            return []
        kind = str(self._p["demand_kind"][rows[0]])
        sku = (self._p["item_id"][rows[0]], self._p["warehouse_id"][rows[0]])
        out = []
        for ref in cause_candidates(kind, demand_ref):
            found = self._supply_rows(ref)
            if (
                len(found)
                and (self._p["item_id"][found[0]], self._p["warehouse_id"][found[0]]) != sku
            ):
                out.append(ref)
        return out

    def _children(self, node: PegNode, up: bool) -> list[_Child]:
        p = self._p
        if up:
            if node.supply:
                rows = self._supply_rows(node.ref)
                return [_Child(False, d, -1) for d in dict.fromkeys(p["demand_ref"][rows].tolist())]
            if node.kind in END_KINDS:
                return []
            return [_Child(True, s, -1) for s in self._causes(node.ref)]
        if node.supply:
            return [_Child(False, d, -1) for d in self._caused(node.ref)]
        return [_Child(True, str(p["supply_ref"][j]), int(j)) for j in self._demand_rows(node.ref)]

    def _has_children(self, node: PegNode, up: bool) -> bool:
        if up:
            return (
                True if node.supply else bool(node.kind not in END_KINDS and self._causes(node.ref))
            )
        # Every demand of the index with a pegging row has a supply.
        return bool(self._caused(node.ref)) if node.supply else len(self._demand_rows(node.ref)) > 0

    def _demand(self, ref: str, rows: np.ndarray) -> PegNode:
        p, i = self._p, rows[0]
        return PegNode(
            str(p["demand_kind"][i]),
            ref,
            str(p["item_id"][i]),
            str(p["warehouse_id"][i]),
            _iso(p["demand_date"][i]),
            float(p["qty"][rows].sum()),
        )

    def _supply(self, ref: str, row: int, qty: float) -> PegNode:
        p = self._p
        return PegNode(
            str(p["supply_kind"][row]),
            ref,
            str(p["item_id"][row]),
            str(p["warehouse_id"][row]),
            _iso(p["supply_date"][row]),
            qty,
            supply=True,
        )

    def _root(self, ref: str, supply: bool | None) -> PegNode:
        if supply is not True:
            rows = self._demand_rows(ref)
            if len(rows):
                return self._demand(ref, rows)
        if supply is not False:
            rows = self._supply_rows(ref)
            if len(rows):
                return self._supply(ref, int(rows[0]), float(self._p["qty"][rows].sum()))
        if supply is not True and self._late:
            # A late demand that took nothing (a manual SKU's shortfall): its
            # node alone, quantity 0.
            late = np.flatnonzero(np.asarray(self._late["demand_ref"] == ref, dtype=bool))
            if len(late):
                d, i = self._late, late[0]
                return PegNode(
                    str(d["demand_kind"][i]),
                    ref,
                    str(d["item_id"][i]),
                    str(d["warehouse_id"][i]),
                    _iso(d["requirement_date"][i]),
                    0.0,
                )
        raise NotFound(f"ref {ref!r} appears in no pegging row of this run", field="ref")

    def tree(
        self,
        ref: str = "",
        max_depth: int = 0,
        max_nodes: int = DEFAULT_MAX_NODES,
        *,
        continuation: str = "",
        shared: bool = True,
        up: bool = False,
        check: Callable[[], None] | None = None,
    ) -> PegTree:
        """The tree below ``ref`` (a demand or supply ref), or below a continuation.

        Down from a demand: the supplies it took from, the requirements they
        caused one BOM level (or transfer) lower, their supplies, and so on.
        With ``up``, from a supply: the requirements it served, the supplies
        one level higher that those requirements are part of, and so on up
        to end demands.

        Args:
            ref: A demand ref, or a supply ref (a demand of that ref wins;
                with ``up``, a supply wins).
            max_depth: BOM levels (and transfers) below the root to follow;
                0 for no limit. A node's ``depth`` counts these levels.
            max_nodes: Most nodes of the answer (at least the root).
            continuation: A node's token from an earlier answer; replaces
                ``ref`` and ``up``.
            shared: Send a demand or supply that several paths reach once
                (the later nodes refer to it); False repeats its subtree.
            up: Walk up from a supply instead of down from a demand.
            check: Called every :data:`CHECK_EVERY` nodes; raises to stop.

        Raises:
            NotFound: the ref appears in no pegging row (nor, for a demand,
                in a delay message).
            InvalidArgument: the continuation is not a token of this module.
        """
        skip, base = 0, 0
        side: bool | None = None
        if continuation:
            side, ref, skip, up, base = parse_continuation(continuation)
        elif up:
            side = True if len(self._supply_rows(ref)) else None
        max_nodes = max(1, max_nodes)
        root = self._root(ref, side)
        root.depth = base
        out = PegTree([root])
        first: dict[tuple[bool, str], int] = {(root.supply, root.ref): 0}
        queue: deque[int] = deque([0])
        expanded = 0

        def token(n: PegNode, skip: int) -> str:
            return continuation_token(n.supply, n.ref, skip, up, n.depth)

        while queue:
            i = queue.popleft()
            node = out.nodes[i]
            expanded += 1
            if check is not None and expanded % CHECK_EVERY == 0:
                check()
            # Down, a supply's children are one level lower; up, a demand's
            # children are one level higher.
            crossing = node.supply != up
            depth = node.depth + (1 if crossing else 0)
            if max_depth and depth - base > max_depth:
                if self._has_children(node, up):
                    node.continuation = token(node, 0)
                continue
            offset = skip if i == 0 else 0
            children = self._children(node, up)[offset:]
            room = max_nodes - len(out.nodes)
            if len(children) > room:
                # The bound: what fits of this node's children, a token for the
                # rest, and a token on every node still waiting in the queue.
                children = children[: max(room, 0)]
                node.continuation = token(node, offset + len(children))
                out.truncated = True
            for c in children:
                if c.supply and c.row >= 0:
                    child = self._supply(c.ref, c.row, float(self._p["qty"][c.row]))
                elif c.supply:
                    rows = self._supply_rows(c.ref)
                    child = self._supply(c.ref, int(rows[0]), float(self._p["qty"][rows].sum()))
                elif up:
                    # The requirement the parent supply served: what it took from it.
                    rows = self._demand_rows(c.ref)
                    took = rows[self._p["supply_ref"][rows] == node.ref]
                    child = self._demand(c.ref, rows)
                    child.qty = float(self._p["qty"][took].sum())
                else:
                    child = self._demand(c.ref, self._demand_rows(c.ref))
                child.parent, child.depth = i, depth
                key = (child.supply, child.ref)
                at = first.get(key) if shared else None
                if at is not None:
                    child.same_as = at
                else:
                    first.setdefault(key, len(out.nodes))
                    queue.append(len(out.nodes))
                out.nodes.append(child)
            if out.truncated:
                break
        for k, j in enumerate(queue):  # left over when the bound stopped the walk
            if check is not None and k % CHECK_EVERY == CHECK_EVERY - 1:
                check()
            n = out.nodes[j]
            if self._has_children(n, up):
                n.continuation = token(n, 0)
        return out


def pegging_tree(pegging: Table, ref: str, max_depth: int = 0) -> PegTree:
    """The tree below ``ref``; builds a one-off :class:`PeggingIndex`."""
    return PeggingIndex(pegging).tree(ref, max_depth)
