"""SKUs, their settings and the SKU graph (SPEC §5.2 and §5.3).

A SKU is a pair (item, warehouse). Items and warehouses are numbered by the
code-point order of their ids, and a SKU by ``item * n_warehouses +
warehouse``, so that sorting SKU numbers sorts SKUs by (item, warehouse) —
the tie order §5.3 asks for.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.dtypes import StringDType
from scipy.sparse import csr_array
from scipy.sparse.csgraph import connected_components

from masterplan.server.engine.arrays import (
    NO_DATE,
    days,
    factorize,
    find_sorted,
    first_rows,
    gather,
    lookup,
    positions,
    unique_ints,
)
from masterplan.server.engine.calendar import Calendars
from masterplan.server.engine.netting import (
    CODE_MANUAL,
    CODE_MIN_MAX,
    CODE_PERIOD,
    CODE_REQUIREMENT,
)
from masterplan.server.engine.types import Table

__all__ = [
    "Masters",
    "SkuSettings",
    "join",
    "levels_and_cycles",
    "order_type_codes",
    "resolve_settings",
]

_STR = StringDType()

ORDER_PURCHASE = 0
ORDER_PRODUCTION = 1
ORDER_TRANSFER = 2
ORDER_TYPE_NAMES = np.array(["purchase", "production", "transfer"], dtype=object)
_ORDER_TYPES = {
    "purchase": ORDER_PURCHASE,
    "production": ORDER_PRODUCTION,
    "transfer": ORDER_TRANSFER,
}
_CODES = {
    "requirement": CODE_REQUIREMENT,
    "period": CODE_PERIOD,
    "min_max": CODE_MIN_MAX,
    "manual": CODE_MANUAL,
}


def join(left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All pairs ``(i, j)`` with ``left[i] == right[j]`` (int keys), grouped by ``i``.

    Within one ``i`` the ``j`` come in ascending order. Vectorised: a sort of
    ``right`` and a ``searchsorted`` of ``left``.
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


def _codes_of(values: np.ndarray, mapping: dict[str, int], default: int) -> np.ndarray:
    """Map a text column through ``mapping`` (per distinct value); NULL is -1."""
    codes, first = first_rows(values)
    table = np.full(len(codes), -1, dtype=np.int64)  # by the row a value first appears in
    for value, row in first.items():
        table[row] = mapping.get(value, default) if value is not None else -1
    return table[codes]


def order_type_codes(values: np.ndarray) -> np.ndarray:
    """``ORDER_*`` codes of an order type column; unknown or NULL is purchase."""
    codes = _codes_of(values, _ORDER_TYPES, ORDER_PURCHASE)
    codes[codes < 0] = ORDER_PURCHASE
    return codes


@dataclass(slots=True)
class Masters:
    """Master data indexed for vectorised lookups.

    Attributes:
        item_ids, warehouse_ids, group_ids: Sorted unique ids (object arrays).
        items, groups: Their tables, rows aligned with the sorted ids.
        coverage: ``item_coverage`` rows sorted by SKU number ``cov_sku``.
        boms: BOM rows with ``item`` index, ``wh`` index (-1 = any) and
            ``valid_from``/``valid_to`` days (open ends as far-away days),
            sorted by (item, bom_id).
        lines: BOM line rows with ``bom`` (row in ``boms``), ``item`` and
            ``wh`` (-1 = the parent's), sorted by (bom, line_no).
        calendars: The working-day calendars.
        wh_calendar: Calendar number of each warehouse, -1 for none.
    """

    item_ids: np.ndarray
    warehouse_ids: np.ndarray
    group_ids: np.ndarray
    items: Table
    groups: Table
    coverage: Table
    cov_sku: np.ndarray
    boms: Table
    lines: Table
    calendars: Calendars
    wh_calendar: np.ndarray
    item_pos: dict[object, int] = field(default_factory=dict)
    wh_pos: dict[object, int] = field(default_factory=dict)
    codes: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    item_str: np.ndarray = field(init=False)
    wh_str: np.ndarray = field(init=False)

    @property
    def n_wh(self) -> int:
        return max(len(self.warehouse_ids), 1)

    def __post_init__(self) -> None:
        # Built once: every table's ids are looked up in these.
        self.item_pos = self.item_pos or positions(self.item_ids)
        self.wh_pos = self.wh_pos or positions(self.warehouse_ids)
        self.item_str = self.item_ids.astype(_STR)
        self.wh_str = self.warehouse_ids.astype(_STR)

    def sku(self, item_ids: np.ndarray, warehouse_ids: np.ndarray) -> np.ndarray:
        """SKU numbers of id pairs (all known: validation ran first)."""
        return lookup(item_ids, self.item_pos) * self.n_wh + lookup(warehouse_ids, self.wh_pos)

    def table_sku(self, t: dict[str, Table], table: str, item_col: str, wh_col: str) -> np.ndarray:
        """SKU numbers of a validated table's rows, from the positions validation found."""
        item, wh = self.codes.get((table, item_col)), self.codes.get((table, wh_col))
        if item is None or wh is None:
            return self.sku(t[table][item_col], t[table][wh_col])
        return item * self.n_wh + wh

    @classmethod
    def build(
        cls,
        t: dict[str, Table],
        id_positions: dict[str, dict[object, int]] | None = None,
        codes: dict[tuple[str, str], np.ndarray] | None = None,
    ) -> Masters:
        """Index the validated tables.

        ``id_positions`` and ``codes`` are what validation found
        (:class:`~server.engine.validate.ValidatedData`): with them, items and
        warehouses are already sorted by id and no id is looked up twice.
        """

        def sort_by(table: Table, col: str) -> tuple[np.ndarray, Table]:
            ids = table[col].astype(str)
            order = np.argsort(ids, kind="stable")
            return table[col][order], {k: v[order] for k, v in table.items()}

        if id_positions is None:
            item_ids, items = sort_by(t["items"], "item_id")
            warehouse_ids, warehouses = sort_by(t["warehouses"], "warehouse_id")
            item_pos, wh_pos = positions(item_ids), positions(warehouse_ids)
        else:
            items, warehouses = t["items"], t["warehouses"]
            item_ids, warehouse_ids = items["item_id"], warehouses["warehouse_id"]
            item_pos, wh_pos = id_positions["items"], id_positions["warehouses"]
        known = codes or {}

        def code(table: str, col: str, pos: dict[object, int]) -> np.ndarray:
            found = known.get((table, col))
            return found if found is not None else lookup(t[table][col], pos)

        calendars = Calendars(t["calendars"], t["calendar_exceptions"])
        wh_calendar = calendars.index(warehouses["calendar_id"])
        group_ids, groups = sort_by(t["coverage_groups"], "group_id")
        n_wh = max(len(warehouse_ids), 1)

        cov = t["item_coverage"]
        cov_sku = code("item_coverage", "item_id", item_pos) * n_wh + code(
            "item_coverage", "warehouse_id", wh_pos
        )
        order = np.argsort(cov_sku, kind="stable")
        cov = {k: v[order] for k, v in cov.items()}
        cov_sku = cov_sku[order]

        boms = dict(t["boms"])
        boms["item"] = code("boms", "item_id", item_pos)
        boms["wh"] = code("boms", "warehouse_id", wh_pos)
        vf = days(boms["valid_from"])
        boms["from"] = np.where(vf == NO_DATE, -NO_DATE, vf)
        boms["to"] = days(boms["valid_to"])
        batch = boms["batch_qty"].astype(np.float64)
        boms["batch"] = np.where(np.isnan(batch), 1.0, batch)
        bom_codes, _ = factorize(boms["bom_id"])
        order = np.lexsort((bom_codes, boms["item"]))
        boms = {k: v[order] for k, v in boms.items()}

        lines = dict(t["bom_lines"])
        bom_row = known.get(("bom_lines", "bom_id"))
        if bom_row is None:
            lines["bom"] = lookup(lines["bom_id"], boms["bom_id"])  # ids are unique: the row
        else:  # validation found each line's BOM row; follow the BOMs' new order
            moved = np.empty(len(order), dtype=np.int64)
            moved[order] = np.arange(len(order))
            lines["bom"] = moved[bom_row]
        lines["item"] = code("bom_lines", "component_item_id", item_pos)
        lines["wh"] = code("bom_lines", "warehouse_id", wh_pos)
        order = np.lexsort((lines["line_no"], lines["bom"]))
        lines = {k: v[order] for k, v in lines.items()}
        return cls(
            item_ids,
            warehouse_ids,
            group_ids,
            items,
            groups,
            cov,
            cov_sku,
            boms,
            lines,
            calendars,
            wh_calendar,
            item_pos,
            wh_pos,
            known,
        )


@dataclass(slots=True)
class SkuSettings:
    """Per-SKU settings after §5.2's resolution, one array entry per SKU."""

    sku: np.ndarray
    item: np.ndarray
    wh: np.ndarray
    order_type: np.ndarray
    no_refill: np.ndarray
    refill: np.ndarray
    code: np.ndarray
    lead: np.ndarray
    min_oq: np.ndarray
    max_oq: np.ndarray
    mult: np.ndarray
    vendor: np.ndarray
    min_qty: np.ndarray
    max_qty: np.ndarray
    ss_qty: np.ndarray
    ss_today: np.ndarray
    period: np.ndarray
    fence: np.ndarray
    freeze: np.ndarray
    firming: np.ndarray
    neg: np.ndarray
    pos: np.ndarray
    working_days: np.ndarray
    calendar: np.ndarray
    include_fc: np.ndarray
    reduce_fc: np.ndarray
    tolerance: np.ndarray
    _dense_pos: np.ndarray | None = None

    def index(self, sku: np.ndarray) -> np.ndarray:
        """Position of each SKU number in this (sorted) set.

        A direct table when SKU numbers are dense enough (a gather instead of
        a binary search per row), else a binary search.
        """
        dense = self._dense()
        if dense is not None:
            return dense[sku]
        return np.searchsorted(self.sku, sku)

    def _dense(self) -> np.ndarray | None:
        if self._dense_pos is None and len(self.sku):
            top = int(self.sku[-1]) + 1
            if top <= 8 * len(self.sku) + 1024:
                pos = np.full(top, -1, dtype=np.int64)
                pos[self.sku] = np.arange(len(self.sku))
                self._dense_pos = pos
        return self._dense_pos


def _num(values: np.ndarray, default: float) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    return np.where(np.isnan(v), default, v)


def _first(*candidates: np.ndarray) -> np.ndarray:
    """Element-wise first non-NULL of object or float arrays."""
    out = candidates[0].copy()
    for c in candidates[1:]:
        missing = np.equal(out, None) if out.dtype == object else np.isnan(out)
        out[missing] = c[missing]
    return out


def resolve_settings(m: Masters, sku: np.ndarray, default_group: str | None) -> SkuSettings:
    """Settings of each SKU (sorted unique SKU numbers), SPEC §5.2."""
    n = len(sku)
    item = sku // m.n_wh
    wh = sku % m.n_wh
    # item_coverage row per SKU, or -1
    cov_row = find_sorted(m.cov_sku, sku)

    def cov(col: str, dtype: type) -> np.ndarray:
        return gather(m.coverage[col], cov_row, None if dtype is object else np.nan)

    def itm(col: str) -> np.ndarray:
        return gather(m.items[col], item)

    group_id = _first(cov("coverage_group_id", object), itm("coverage_group_id"))
    if default_group is not None:
        group_id[np.equal(group_id, None)] = default_group
    grow = lookup(group_id, m.group_ids)
    has_g = grow >= 0

    def grp(col: str, default: float) -> np.ndarray:
        out = np.full(n, np.nan)
        out[has_g] = m.groups[col][grow[has_g]].astype(np.float64)
        return _num(out, default)

    def grp_text(col: str) -> np.ndarray:
        out = np.full(n, None, dtype=object)
        out[has_g] = m.groups[col][grow[has_g]]
        return out

    code = _codes_of(grp_text("coverage_code"), _CODES, CODE_REQUIREMENT)
    code[code < 0] = CODE_REQUIREMENT
    order_type = _codes_of(
        _first(cov("order_type", object), itm("default_order_type")), _ORDER_TYPES, ORDER_PURCHASE
    )
    order_type[order_type < 0] = ORDER_PURCHASE
    refill_id = cov("refill_warehouse_id", object)
    refill_wh = lookup(refill_id, m.warehouse_ids)
    refill = np.where(refill_wh >= 0, item * m.n_wh + refill_wh, -1)
    no_refill = (order_type == ORDER_TRANSFER) & (refill < 0)
    order_type = np.where(no_refill, ORDER_PURCHASE, order_type)
    pos_days = grp("positive_days", -1.0)
    ss_mode = grp_text("safety_stock_fulfillment")
    working_days = grp("use_working_days", 0) != 0
    reduction = grp_text("forecast_reduction")
    return SkuSettings(
        sku=sku,
        item=item,
        wh=wh,
        order_type=order_type,
        no_refill=no_refill,
        refill=refill,
        code=code.astype(np.int64),
        lead=_num(_first(cov("lead_time_days", float), itm("lead_time_days")), 0).astype(np.int64),
        min_oq=_num(_first(cov("min_order_qty", float), itm("min_order_qty")), 0.0),
        max_oq=_num(_first(cov("max_order_qty", float), itm("max_order_qty")), 0.0),
        mult=_num(_first(cov("multiple_qty", float), itm("multiple_qty")), 0.0),
        vendor=_first(cov("vendor_id", object), itm("default_vendor_id")),
        min_qty=_num(cov("min_qty", float), 0.0),
        max_qty=_num(cov("max_qty", float), 0.0),
        ss_qty=_num(cov("safety_stock_qty", float), 0.0),
        ss_today=np.equal(ss_mode, "today"),
        period=grp("coverage_period_days", 1).astype(np.int64),
        fence=grp("coverage_time_fence_days", 100).astype(np.int64),
        freeze=grp("freeze_time_fence_days", 0).astype(np.int64),
        firming=grp("firming_time_fence_days", 0).astype(np.int64),
        neg=grp("negative_days", 0).astype(np.int64),
        pos=np.where(pos_days < 0, -1, pos_days).astype(np.int64),
        working_days=working_days,
        calendar=np.where(working_days, gather(m.wh_calendar, wh, -1), -1) if n else wh,
        include_fc=grp("include_forecast", 1) != 0,
        reduce_fc=np.equal(reduction, "transactions_period"),
        tolerance=grp("postpone_tolerance_days", 0).astype(np.int64),
    )


def levels_and_cycles(
    n: int, src: np.ndarray, dst: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Low-level codes and cycles of the SKU graph (SPEC §5.3).

    Parameters
    ----------
    n : int
        Number of SKUs (graph nodes ``0..n-1``).
    src, dst : int64 (E,)
        Edges parent -> component (duplicates allowed).

    Returns
    -------
    llc : int64 (n,)
        Longest path length from a SKU without parent, ignoring edges inside
        a strongly connected component.
    component : int64 (n,)
        Strongly connected component label of each SKU.
    in_cycle : bool (n,)
        Whether the SKU belongs to a cycle (a component of two or more SKUs,
        or a SKU with an edge to itself).
    """
    if n == 0:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, np.empty(0, dtype=bool)
    graph = csr_array((np.ones(len(src), dtype=np.int8), (src, dst)), shape=(n, n))
    _, comp = connected_components(graph, directed=True, connection="strong")
    comp = comp.astype(np.int64)
    size = np.bincount(comp, minlength=n)
    in_cycle = size[comp] > 1
    self_loop = src == dst
    in_cycle[src[self_loop]] = True
    keep = comp[src] != comp[dst]
    s, d = src[keep], dst[keep]
    # Kahn's algorithm layer by layer: a node's level is the step at which its
    # last parent is removed, i.e. its longest path from a root.
    dag = csr_array((np.ones(len(s), dtype=np.int64), (s, d)), shape=(n, n))
    dag.sum_duplicates()
    dag.data[:] = 1
    indeg = np.asarray(dag.sum(axis=0)).ravel().astype(np.int64)
    llc = np.zeros(n, dtype=np.int64)
    frontier = np.flatnonzero(indeg == 0)
    level = 0
    indptr, indices = dag.indptr, dag.indices
    while len(frontier):
        llc[frontier] = level
        starts, ends = indptr[frontier], indptr[frontier + 1]
        counts = ends - starts
        idx = np.repeat(starts - (np.cumsum(counts) - counts), counts) + np.arange(counts.sum())
        children = indices[idx]
        np.subtract.at(indeg, children, 1)
        frontier = unique_ints(children[indeg[children] == 0])
        level += 1
    return llc, comp, in_cycle
