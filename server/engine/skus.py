"""SKUs and their settings (SPEC §5.2).

A SKU is a pair (item, warehouse). Items and warehouses are numbered by the
code-point order of their ids, and a SKU by ``item * n_warehouses +
warehouse``, so that sorting SKU numbers sorts SKUs by (item, warehouse) —
the tie order §5.3 asks for. The phase here indexes the master data and
finds the SKUs the input rows name (:func:`index_skus`);
:func:`resolve_settings` gives any set of SKUs its settings, and
:mod:`~masterplan.server.engine.graph` closes the set under the SKU graph.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import cast

import numpy as np
from numpy.dtypes import StringDType

from masterplan.server.engine.arrays import (
    NO_DATE,
    as_objects,
    days,
    factorize,
    find_sorted,
    first_rows,
    gather,
    is_null,
    lookup,
    positions,
    text,
    unique_ints,
)
from masterplan.server.engine.calendar import Calendars, calendars_of
from masterplan.server.engine.kernels import (
    CODE_MANUAL,
    CODE_MIN_MAX,
    CODE_PERIOD,
    CODE_REQUIREMENT,
    NO_POSITIVE_DAYS,
)
from masterplan.server.engine.kinds import ORDER_PURCHASE, ORDER_TRANSFER, ORDER_TYPES
from masterplan.server.engine.messages import Messages
from masterplan.server.engine.types import InvalidPlanInput, Table
from masterplan.server.engine.validate import ValidatedData

__all__ = [
    "Masters",
    "SkuIndex",
    "SkuSettings",
    "TableSkus",
    "check_default_group",
    "index_skus",
    "no_refill_messages",
    "order_type_codes",
    "resolve_settings",
    "sku_ids",
]

_STR = StringDType()

_CODES = {
    "requirement": CODE_REQUIREMENT,
    "period": CODE_PERIOD,
    "min_max": CODE_MIN_MAX,
    "manual": CODE_MANUAL,
}


def _codes_of(values: np.ndarray, mapping: dict[str, int], default: int) -> np.ndarray:
    """Map a text column through ``mapping`` (per distinct value); NULL is -1."""
    codes, first = first_rows(values)
    table = np.full(len(codes), -1, dtype=np.int64)  # by the row a value first appears in
    for value, row in first.items():
        if value is not None:
            table[row] = mapping.get(value, default) if isinstance(value, str) else default
    return table[codes]


def order_type_codes(values: np.ndarray) -> np.ndarray:
    """int64 (N,): ``ORDER_*`` codes of an order type column; unknown or NULL is purchase."""
    codes = _codes_of(values, ORDER_TYPES, ORDER_PURCHASE)
    codes[codes < 0] = ORDER_PURCHASE
    return codes


@dataclass(frozen=True, slots=True)
class Masters:
    """Master data indexed for vectorised lookups.

    Attributes
    ----------
    item_ids, warehouse_ids, group_ids : object (I,), (W,), (G,)
        Sorted unique ids.
    items, groups : Table
        Their tables, rows aligned with the sorted ids.
    coverage : Table
        ``item_coverage`` rows sorted by SKU number ``cov_sku`` (int64).
    boms : Table
        BOM rows with ``item`` index, ``wh`` index (-1 = any), ``from`` and
        ``to`` validity days (open ends as far-away days) and ``batch``
        (float64, NULL = 1), sorted by (item, bom_id).
    lines : Table
        BOM line rows with ``bom`` (row in ``boms``), ``item`` and ``wh``
        (-1 = the parent's), sorted by (bom, line_no).
    calendars : Calendars
        The working-day calendars.
    wh_calendar : int64 (W,)
        Calendar number of each warehouse, -1 for none.
    item_pos, wh_pos : dict
        ``{id: position}`` of the sorted ids.
    codes : dict
        Positions validation found, by (table, column) (see
        :class:`~masterplan.server.engine.validate.ValidatedData`).
    item_str, wh_str : StringDType (I,), (W,)
        The ids as numpy strings, for building refs and ids.
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
    item_pos: dict[object, int]
    wh_pos: dict[object, int]
    codes: dict[tuple[str, str], np.ndarray]
    item_str: np.ndarray
    wh_str: np.ndarray

    @property
    def n_wh(self) -> int:
        """The SKU numbering's radix: the number of warehouses (at least 1)."""
        return max(len(self.warehouse_ids), 1)

    def sku(self, item_ids: np.ndarray, warehouse_ids: np.ndarray) -> np.ndarray:
        """int64 (N,): SKU numbers of id pairs (all known: validation ran first)."""
        return lookup(item_ids, self.item_pos) * self.n_wh + lookup(warehouse_ids, self.wh_pos)

    def ids(self, sku: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """object (N,) twice: the item and warehouse ids of SKU numbers
        ``sku`` (the inverse of :meth:`sku`)."""
        return self.item_ids[sku // self.n_wh], self.warehouse_ids[sku % self.n_wh]

    def known_sku(self, item_ids: np.ndarray, warehouse_ids: np.ndarray) -> np.ndarray:
        """int64 (N,): SKU numbers of id pairs, -1 where either is unknown or NULL."""
        item, wh = lookup(item_ids, self.item_pos), lookup(warehouse_ids, self.wh_pos)
        return np.where((item >= 0) & (wh >= 0), item * self.n_wh + wh, -1)

    def table_sku(self, t: dict[str, Table], table: str, item_col: str, wh_col: str) -> np.ndarray:
        """int64 (N,): SKU numbers of a validated table's rows, from the positions
        validation found."""
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
        (:class:`~masterplan.server.engine.validate.ValidatedData`): with
        them, items and warehouses are already sorted by id and no id is
        looked up twice.
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

        calendars = calendars_of(t["calendars"], t["calendar_exceptions"])
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
            item_ids=item_ids,
            warehouse_ids=warehouse_ids,
            group_ids=group_ids,
            items=items,
            groups=groups,
            coverage=cov,
            cov_sku=cov_sku,
            boms=boms,
            lines=lines,
            calendars=calendars,
            wh_calendar=wh_calendar,
            item_pos=item_pos,
            wh_pos=wh_pos,
            codes=known,
            item_str=item_ids.astype(_STR),
            wh_str=warehouse_ids.astype(_STR),
        )


@dataclass(frozen=True, slots=True)
class TableSkus:
    """SKU number (int64) of each validated row of the tables that name SKUs.

    Looked up once per run: the SKU set, the requirements and receipts and
    the firmed orders all read them.

    Attributes
    ----------
    item_coverage, on_hand, sales_lines, purchase_lines, production_orders : int64
        (item_id, warehouse_id) of each row.
    production_lines : int64
        (component_item_id, warehouse_id).
    transfer_from, transfer_to : int64
        A transfer line's (item_id, from_warehouse_id) and (item_id, to_warehouse_id).
    forecasts, firmed_planned_orders : int64
        (item_id, warehouse_id).
    """

    item_coverage: np.ndarray
    on_hand: np.ndarray
    sales_lines: np.ndarray
    purchase_lines: np.ndarray
    production_orders: np.ndarray
    production_lines: np.ndarray
    transfer_from: np.ndarray
    transfer_to: np.ndarray
    forecasts: np.ndarray
    firmed_planned_orders: np.ndarray


@dataclass(frozen=True, slots=True)
class SkuIndex:
    """The master data indexed, and the SKUs the input rows name.

    Attributes
    ----------
    masters : Masters
        Master data for vectorised lookups.
    rows : TableSkus
        SKU number of each transaction row.
    named : int64 (N,)
        Sorted unique SKU numbers named by a row (§5.2), before the closure
        under the SKU graph.
    """

    masters: Masters
    rows: TableSkus
    named: np.ndarray


def check_default_group(tables: Mapping[str, Table], default_group: str | None) -> None:
    """Fail the run when no row of ``coverage_groups`` names its default
    coverage group (§5.2): the run's own parameter is wrong, as a bad plan
    date is, and a plan without the group its caller asked for would be
    planned on other settings. A group whose row the checks of §5.9 leave
    out serves as none, as a group an item names does: its row's
    ``INVALID_ROW`` says why. ``tables``: the data set as given, before the
    checks.

    Raises
    ------
    InvalidPlanInput
        When ``default_group`` is given and not in ``coverage_groups``.
    """
    if default_group is not None and default_group not in set(
        tables["coverage_groups"]["group_id"].tolist()
    ):
        raise InvalidPlanInput(f"default group {default_group!r} is not in coverage_groups")


#: The table each field of :class:`TableSkus` is about.
_ROWS_TABLE = {
    "item_coverage": "item_coverage",
    "on_hand": "on_hand",
    "sales_lines": "sales_lines",
    "purchase_lines": "purchase_lines",
    "production_orders": "production_orders",
    "production_lines": "production_lines",
    "transfer_from": "transfer_lines",
    "transfer_to": "transfer_lines",
    "forecasts": "forecasts",
    "firmed_planned_orders": "firmed_planned_orders",
}


def index_skus(
    validated: ValidatedData,
    before: SkuIndex | None = None,
    unchanged: Collection[str] = (),
) -> SkuIndex:
    """Index the masters and find the SKUs every input row names (§5.2).

    Every (item, warehouse) of ``item_coverage``, ``on_hand``, order lines
    (both warehouses of a transfer), ``production_orders``, ``forecasts``
    with a quantity, and ``firmed_planned_orders`` (with a firmed transfer's
    ``from_warehouse_id``), whatever the quantity otherwise.

    ``before``, when given, is the index of an earlier version of the data
    with the same master tables (``item_coverage`` included): its masters are
    reused, with this version's positions of the rows' ids, and so are the
    rows' SKU numbers of the tables in ``unchanged`` (whose checked rows are
    the same).
    """
    t = validated.tables
    if before is not None:
        m = dataclasses.replace(before.masters, codes=validated.codes)
    else:
        m = Masters.build(t, validated.id_positions, validated.codes)

    reuse = before.rows if before is not None else None

    def rows(field: str, item_col: str = "item_id", wh_col: str = "warehouse_id") -> np.ndarray:
        table = _ROWS_TABLE[field]
        if reuse is not None and table in unchanged:
            return cast(np.ndarray, getattr(reuse, field))
        return m.table_sku(t, table, item_col, wh_col)

    r = TableSkus(
        item_coverage=rows("item_coverage"),
        on_hand=rows("on_hand"),
        sales_lines=rows("sales_lines"),
        purchase_lines=rows("purchase_lines"),
        production_orders=rows("production_orders"),
        production_lines=rows("production_lines", "component_item_id"),
        transfer_from=rows("transfer_from", wh_col="from_warehouse_id"),
        transfer_to=rows("transfer_to", wh_col="to_warehouse_id"),
        forecasts=rows("forecasts"),
        firmed_planned_orders=rows("firmed_planned_orders"),
    )
    # Zero-quantity forecast lines play no part at all, not even naming a SKU.
    fc_named = np.nan_to_num(t["forecasts"]["qty"]) != 0
    f = t["firmed_planned_orders"]
    has_from = np.equal(f["order_type"], "transfer") & ~is_null(f["from_warehouse_id"])
    parts = [
        r.item_coverage,
        r.on_hand,
        r.sales_lines,
        r.purchase_lines,
        r.production_orders,
        r.production_lines,
        r.transfer_from,
        r.transfer_to,
        r.firmed_planned_orders,
        r.forecasts[fc_named],
        m.sku(f["item_id"][has_from], f["from_warehouse_id"][has_from]),
    ]
    return SkuIndex(m, r, unique_ints(np.concatenate(parts)))


@dataclass(frozen=True, slots=True)
class SkuSettings:
    """Per-SKU settings after §5.2's resolution, one entry per SKU.

    Attributes
    ----------
    sku : int64 (S,)
        Sorted SKU numbers; a SKU's position here is its index everywhere.
    item, wh : int64 (S,)
        Item and warehouse positions.
    order_type : int64 (S,)
        ``ORDER_*``; a transfer SKU without a valid refill warehouse plans
        purchase orders (§5.6).
    no_refill : bool (S,)
        Transfer SKUs without a valid refill warehouse.
    refill : int64 (S,)
        SKU number of the refill-warehouse SKU, -1 for none.
    code : int64 (S,)
        Coverage code (``CODE_*`` of :mod:`~masterplan.server.engine.kernels`).
    lead : int64 (S,)
        Lead time in days (working days with ``calendar`` >= 0).
    min_oq, max_oq, mult : float64 (S,)
        Order quantity modifiers (0 = none for the maximum and the multiple).
    vendor : object (S,)
        Vendor of purchase orders, ``None`` for none.
    min_qty, max_qty, ss_qty : float64 (S,)
        ``min_max`` bounds and safety stock.
    ss_today : bool (S,)
        Safety stock due at ``T0`` rather than ``T0`` plus the lead time.
    period, fence, freeze, firming, neg, tolerance : int64 (S,)
        Coverage period, coverage/freeze/firming time fences, negative days
        and postpone tolerance, in calendar days.
    pos : int64 (S,)
        Positive days, -1 for unlimited.
    working_days : bool (S,)
        ``use_working_days`` of the SKU's group.
    calendar : int64 (S,)
        Calendar of lead-time arithmetic, -1 for calendar days.
    include_fc, reduce_fc : bool (S,)
        Forecasts included; reduced by sales (``transactions_period``).
    calendars : Calendars
        The run's calendars, for :meth:`lead_add` and :meth:`lead_sub`.
    dense_pos : int64 (max SKU + 1,) or None
        Position of each SKU number, when SKU numbers are dense enough for
        a direct table.
    """

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
    calendars: Calendars
    dense_pos: np.ndarray | None

    def index(self, sku: np.ndarray) -> np.ndarray:
        """int64 (N,): position of each SKU number in this (sorted) set.

        A direct table when SKU numbers are dense enough (a gather instead of
        a binary search per row), else a binary search.
        """
        if self.dense_pos is not None:
            return self.dense_pos[sku]
        return np.searchsorted(self.sku, sku)

    def lead_add(self, d: np.ndarray, sidx: np.ndarray) -> np.ndarray:
        """int64 (N,): ``d`` plus the lead times of SKUs ``sidx`` on their
        calendars (§5.1); no date stays no date."""
        return self.calendars.shift(d, self.lead[sidx], self.calendar[sidx], 1)

    def lead_sub(self, d: np.ndarray, sidx: np.ndarray) -> np.ndarray:
        """int64 (N,): ``d`` minus the lead times of SKUs ``sidx`` on their calendars."""
        return self.calendars.shift(d, self.lead[sidx], self.calendar[sidx], -1)


def _dense_positions(sku: np.ndarray) -> np.ndarray | None:
    if len(sku) == 0:
        return None
    top = int(sku[-1]) + 1
    if top > 8 * len(sku) + 1024:
        return None
    pos = np.full(top, -1, dtype=np.int64)
    pos[sku] = np.arange(len(sku))
    return pos


def _num(values: np.ndarray, default: float) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    return np.where(np.isnan(v), default, v)


def _first(*candidates: np.ndarray) -> np.ndarray:
    """Element-wise first non-NULL of object or float arrays."""
    out = candidates[0].copy()
    for c in candidates[1:]:
        missing = is_null(out) if out.dtype == object else np.isnan(out)
        out[missing] = c[missing]
    return out


def resolve_settings(m: Masters, sku: np.ndarray, default_group: str | None) -> SkuSettings:
    """Settings of each SKU, SPEC §5.2.

    Parameters
    ----------
    m : Masters
        The indexed master data.
    sku : int64 (S,)
        Sorted unique SKU numbers.
    default_group : str or None
        Coverage group of SKUs that name none.
    """
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
        group_id[is_null(group_id)] = default_group
    grow = lookup(group_id, m.group_ids)
    has_g = grow >= 0

    def per_group(values: np.ndarray, fill: object) -> np.ndarray:
        """``values`` (one per group, worked out once for the few groups
        rather than for every SKU) gathered by SKU; ``fill`` without one."""
        out = np.full(n, fill, dtype=values.dtype)
        out[has_g] = values[grow[has_g]]
        return out

    def grp(col: str, default: float) -> np.ndarray:
        return _num(per_group(np.asarray(m.groups[col], dtype=np.float64), np.nan), default)

    def grp_is(col: str, value: str) -> np.ndarray:
        return per_group(np.equal(m.groups[col], value).astype(bool), False)

    group_code = _codes_of(m.groups["coverage_code"], _CODES, CODE_REQUIREMENT)
    group_code[group_code < 0] = CODE_REQUIREMENT
    code = per_group(group_code, CODE_REQUIREMENT)
    order_type = _codes_of(
        _first(cov("order_type", object), itm("default_order_type")), ORDER_TYPES, ORDER_PURCHASE
    )
    order_type[order_type < 0] = ORDER_PURCHASE
    refill_id = cov("refill_warehouse_id", object)
    refill_wh = lookup(refill_id, m.warehouse_ids)
    refill = np.where(refill_wh >= 0, item * m.n_wh + refill_wh, -1)
    no_refill = (order_type == ORDER_TRANSFER) & (refill < 0)
    order_type = np.where(no_refill, ORDER_PURCHASE, order_type)
    pos_days = grp("positive_days", np.nan)  # NULL: unlimited
    working_days = grp("use_working_days", 0) != 0
    return SkuSettings(
        sku=sku,
        item=item,
        wh=wh,
        order_type=order_type,
        no_refill=no_refill,
        refill=refill,
        code=code.astype(np.int64),
        # A negative lead time counts as 0 (§5.2).
        lead=np.maximum(
            _num(_first(cov("lead_time_days", float), itm("lead_time_days")), 0), 0
        ).astype(np.int64),
        min_oq=_num(_first(cov("min_order_qty", float), itm("min_order_qty")), 0.0),
        max_oq=_num(_first(cov("max_order_qty", float), itm("max_order_qty")), 0.0),
        mult=_num(_first(cov("multiple_qty", float), itm("multiple_qty")), 0.0),
        vendor=_first(cov("vendor_id", object), itm("default_vendor_id")),
        min_qty=_num(cov("min_qty", float), 0.0),
        max_qty=_num(cov("max_qty", float), 0.0),
        ss_qty=_num(cov("safety_stock_qty", float), 0.0),
        ss_today=grp_is("safety_stock_fulfillment", "today"),
        period=grp("coverage_period_days", 1).astype(np.int64),
        fence=grp("coverage_time_fence_days", 100).astype(np.int64),
        freeze=grp("freeze_time_fence_days", 0).astype(np.int64),
        firming=grp("firming_time_fence_days", 0).astype(np.int64),
        neg=grp("negative_days", 0).astype(np.int64),
        pos=np.where(np.isnan(pos_days), NO_POSITIVE_DAYS, pos_days).astype(np.int64),
        working_days=working_days,
        calendar=np.where(working_days, gather(m.wh_calendar, wh, -1), -1) if n else wh,
        include_fc=grp("include_forecast", 1) != 0,
        reduce_fc=grp_is("forecast_reduction", "transactions_period"),
        tolerance=grp("postpone_tolerance_days", 0).astype(np.int64),
        calendars=m.calendars,
        dense_pos=_dense_positions(sku),
    )


def sku_ids(m: Masters, s: SkuSettings, sidx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """object (N,) twice: the item and warehouse ids of SKUs ``sidx``."""
    return m.item_ids[s.item[sidx]], m.warehouse_ids[s.wh[sidx]]


def no_refill_messages(m: Masters, s: SkuSettings) -> Messages:
    """One ``NO_REFILL_WAREHOUSE`` warning per transfer SKU without a valid
    refill warehouse; it plans purchase orders (§5.6)."""
    nr = np.flatnonzero(s.no_refill)
    if not len(nr):
        return Messages()
    item, wh = sku_ids(m, s, nr)
    return Messages.of(
        "warning",
        "NO_REFILL_WAREHOUSE",
        item,
        wh,
        as_objects(
            text(
                "transfer SKU ",
                item.astype(_STR),
                "@",
                wh.astype(_STR),
                " has no valid refill warehouse; planned as purchase",
            )
        ),
    )
