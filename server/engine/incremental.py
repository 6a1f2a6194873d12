"""Net change in the engine (SPEC §6): re-plan what a change reaches, reuse the rest.

The result must be exactly a regeneration's, so the work is split where the
rules of §5 allow it:

1. **What changed.** The SKUs named by input rows that differ from the
   previous run's data (:mod:`.rowdiff`), the SKUs that joined or left the
   plan, closed downstream over the SKU graph of both runs: a SKU's netting
   reads only its own rows, its settings and the dependent demand of its
   parents' orders, so a SKU no change reaches nets as before. Master data
   (items, BOMs, groups, calendars, warehouses), another plan date or default
   group reach everything: those are planned as a regeneration.
2. **Re-plan the reached SKUs ``R``** by planning a smaller data set with the
   same engine: the validated rows of ``R``'s SKUs, the masters they use, and
   for every parent ``P`` outside ``R`` of a SKU in ``R`` its previous
   production and transfer orders as firmed planned orders with the same ids
   and dates. A firmed order explodes exactly like a planned one (same BOM,
   same date, same quantity, same ref ``PL:{id}/{line}``), so ``R`` receives
   the dependent demand it received before; ``P`` itself is made a ``manual``
   purchase SKU in that data set, so that it plans nothing of its own.
3. **Delays upstream.** ``R`` is closed downstream, so the futures of its
   requirements are computed exactly in the small plan. They reach the SKUs
   above ``R`` only through the delayed dependent requirements of the
   parents' orders; when those (ref and futures) equal the previous run's,
   nothing above ``R`` moves. When some differ, their parents join ``R``
   (closed downstream again) and the small plan is made again.
4. **Stitch.** Every result row belongs to one SKU: the previous run's rows
   of SKUs outside ``R`` and the small plan's rows of ``R`` make the result.
   The plan messages of the input checks, the graph and the firmed orders are
   recomputed from the whole data set; the netting's own come by SKU.

A change that reaches more than a share of the SKUs is planned as a
regeneration: past that, the small plan costs as much as the whole one.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from masterplan.contract.coded import Coded, as_array
from masterplan.contract.columns import Table, empty_table, table_length, take
from masterplan.contract.tables import INPUT_TABLES
from masterplan.server.engine.arrays import find_sorted, lookup, unique_ints
from masterplan.server.engine.basis import PlanBasis, sorted_edges
from masterplan.server.engine.front import plan_front
from masterplan.server.engine.layers import LayeredTables, PatchedTable, patched_tables
from masterplan.server.engine.levelsplit import LevelSplit
from masterplan.server.engine.messages import Messages
from masterplan.server.engine.orders import firmed_messages, firmed_sources
from masterplan.server.engine.partbasis import PartitionedBasis, RunBasis
from masterplan.server.engine.plan import Clock, Progress, front_messages, regenerate
from masterplan.server.engine.rowdiff import (
    MASTER_TABLES,
    SKU_COLUMNS,
    changed_tables,
    touched_rows,
)
from masterplan.server.engine.skus import Masters, TableSkus
from masterplan.server.engine.stitch import (
    row_skus,
    select_messages,
)
from masterplan.server.engine.types import (
    PlanParams,
    PlanResult,
    PlanTooLarge,
    ResultTable,
    TableMap,
)

__all__ = ["DEFAULT_MAX_SHARE", "NetChange", "net_change", "regeneration"]

#: Share of the plan's SKUs past which a change is planned as a regeneration.
DEFAULT_MAX_SHARE = 0.5

#: Rounds of widening ``R`` for moved delays before giving up on reuse.
_MAX_ROUNDS = 8

#: Output tables whose rows belong to a SKU by their item and warehouse.
_SKU_TABLES = ("planned_orders", "pegging", "action_messages", "delay_messages")


@dataclass(frozen=True, slots=True)
class NetChange:
    """What a net change produced.

    Attributes
    ----------
    result : PlanResult
        The plan: exactly a regeneration's.
    basis : PlanBasis, PartitionedBasis or None
        What the next net change of the plan reuses: for a plan made over
        partitions (:mod:`.partitioned`), what its basis is made from.
    skus_planned : int
        SKUs the engine netted (all of them for a regeneration).
    fallback_reason : str
        Why the previous run could not be reused; empty when it was.
    before, after : dict of ResultTable, or None
        When the previous run was reused: per output table, its rows that
        the net change may have changed (those of the re-planned SKUs, and
        every plan message) and the rows that replace them. Every other row
        is the same in both runs, so the difference between these is the
        difference between the runs, at a fraction of the cost.
    whole : bool
        Whether ``result.tables`` is the whole plan; False for a net change
        asked not to keep its plan (then it is ``after``).
    partitions : int
        The partitions the plan was made over; 0 for one made inline.
    """

    result: PlanResult
    basis: RunBasis | None
    skus_planned: int
    fallback_reason: str = ""
    before: dict[str, ResultTable] | None = None
    after: dict[str, ResultTable] | None = None
    whole: bool = True
    partitions: int = 0


def net_change(
    basis: RunBasis,
    data: TableMap,
    params: PlanParams,
    progress: Progress | None = None,
    max_share: float = DEFAULT_MAX_SHARE,
    touched: Mapping[str, tuple[Table, Table]] | None = None,
    keep: bool = True,
    sources: Mapping[str, np.ndarray] | None = None,
    split: LevelSplit | None = None,
) -> NetChange:
    """Plan ``data`` reusing the run ``basis`` was kept from (SPEC §6).

    Parameters
    ----------
    basis
        The previous run of the plan (for one made over partitions, its
        basis is made first, once, timed in this run's front phases).
    data, params, progress
        As for :func:`~masterplan.server.engine.plan.plan`.
    max_share
        A change that reaches more than this share of the SKUs is planned
        as a regeneration.
    touched
        Per table, the rows that left ``basis.data`` (removed or replaced)
        and the rows that came into ``data``, when the caller knows them
        (the delta that made ``data``); otherwise the tables are compared.
    keep
        False for a plan nobody keeps (a simulation): the previous run's rows
        are not joined with the new ones, ``result.tables`` holds the
        re-planned rows only (``after``, see :class:`NetChange`) and the
        basis is the previous one.
    sources
        Per changed table, when the caller knows it (the delta that made
        ``data``): the row of ``basis.data``'s table that each row is,
        unchanged, -1 for a new or replaced row (each earlier row named once
        at most). Then only the other rows are checked again.
    split
        Walks the netting levels of the re-planned SKUs, or of a
        regeneration it falls back to, in runs on an executor
        (:mod:`.levelsplit`; a level too small to be worth it is walked
        whole).
    """
    clock = Clock(progress)
    with clock.phase("validate"):  # finding what changed counts as checking it
        if touched is None:
            changed = changed_tables(basis.data, data)
        else:
            changed = [n for n, (a, b) in touched.items() if table_length(a) or table_length(b)]
    reason = _refusal(basis, params, changed)
    if reason:
        return regeneration(data, params, progress, reason, split)
    if isinstance(basis, PartitionedBasis):
        basis = basis.plan_basis(clock)
    unchanged = [name for name in INPUT_TABLES if name not in changed]
    front = plan_front(data, params, clock, basis.front, unchanged, sources)
    m, s = front.index.masters, front.graph.settings
    with clock.phase("requirements"):
        # The previous result as patchable layers (after a regeneration: each
        # row's SKU found and the rows grouped by SKU, once).
        layers = patched_tables(m, basis.tables, _SKU_TABLES)
        # The requirements themselves are the small plan's; the firmed orders'
        # messages are the whole plan's.
        firmed = front.firmed
        firmed_msgs = firmed_messages(
            front.validated.tables["firmed_planned_orders"], firmed, firmed_sources(firmed, s)
        )
        seeds = _touched_skus(m, basis.data, data, changed, touched)
        if front.graph is basis.front.graph:
            # The same SKUs and edges as the previous run (its graph reused).
            new_src, new_dst = basis.edge_src, basis.edge_dst
            all_src, all_dst = new_src, new_dst
        else:
            appeared = s.sku[find_sorted(basis.sku, s.sku) < 0]
            vanished = basis.sku[find_sorted(s.sku, basis.sku) < 0]
            seeds = unique_ints(np.concatenate([seeds, appeared, vanished]))
            new_src, new_dst = sorted_edges(s.sku[front.graph.src], s.sku[front.graph.dst])
            # Along the edges of both runs: a removed edge still carries the
            # change to what was below it.
            all_src, all_dst = sorted_edges(
                np.concatenate([basis.edge_src, new_src]), np.concatenate([basis.edge_dst, new_dst])
            )
    total = len(s.sku)
    # The small plans are made of checked rows: a default group whose row the
    # checks left out serves as none (§5.2), and has no row there to name.
    sub_params = params
    if params.default_group is not None and params.default_group not in set(m.group_ids.tolist()):
        sub_params = replace(params, default_group=None)
    with clock.phase("netting"):
        reach = _downstream(seeds, all_src, all_dst)
        for _ in range(_MAX_ROUNDS):
            if len(reach) > max_share * max(total, 1):
                reason = f"the change reaches {len(reach)} of {total} SKUs"
                return regeneration(data, params, progress, reason, split)
            # Whether each SKU number is re-planned: a gather per row, where a
            # search in ``reach`` would cost a binary search.
            in_reach = _flags(m, reach)
            above = new_src[in_reach[new_dst]]
            parents = unique_ints(above[~in_reach[above]])
            sub = _small_data(
                front.validated.tables,
                front.index.rows,
                m,
                in_reach,
                _flags(m, parents),
                layers["planned_orders"],
            )
            if sub is None:
                return regeneration(
                    data,
                    params,
                    progress,
                    "a firmed planned order has the id of a planned order of the previous run",
                    split,
                )
            small, small_basis = regenerate(sub.tables, sub_params, split=split)
            item_map = sub.item_positions
            moved = _moved_parents(m, basis, small_basis, item_map, in_reach)
            if len(moved) == 0:
                break
            reach = _downstream(unique_ints(np.concatenate([reach, moved])), all_src, all_dst)
        else:
            reason = "the change moves delays through too many levels"
            return regeneration(data, params, progress, reason, split)
    with clock.phase("messages"):
        tables, before, after, late, net_messages, net_message_sku = _stitch(
            m,
            basis,
            layers,
            small,
            small_basis,
            item_map,
            in_reach,
            front_messages(front, firmed_msgs),
            join=keep,
        )
        # The plan's size: the previous run's, less the rows replaced, plus
        # the rows replacing them (known without joining the tables).
        size = {
            name: _length(basis.tables, name)
            - table_length(before[name])
            + table_length(after[name])
            for name in after
        }
        rows = sum(size.values())
        if rows > params.max_result_rows:
            raise PlanTooLarge("result_rows", params.max_result_rows, rows)
        if size["planned_orders"] > params.max_planned_orders:
            raise PlanTooLarge("planned_orders", params.max_planned_orders, size["planned_orders"])
        if not keep:
            parts = PlanResult(after, clock.seconds, total)
            return NetChange(parts, basis, len(reach), before=before, after=after, whole=False)
        new_basis = PlanBasis(
            data=data,
            plan_date=params.plan_date,
            default_group=params.default_group,
            tables=tables,
            sku=s.sku.copy(),
            edge_src=new_src,
            edge_dst=new_dst,
            late=late,
            net_messages=net_messages,
            net_message_sku=net_message_sku,
            front=front,
        )
    result = PlanResult(tables, clock.seconds, total)
    return NetChange(result, new_basis, len(reach), before=before, after=after)


def _refusal(basis: RunBasis, params: PlanParams, changed: list[str]) -> str:
    """Why the previous run cannot be reused at all; empty when it can."""
    if basis.plan_date != params.plan_date:
        return f"the plan date changed from {basis.plan_date} to {params.plan_date}"
    if basis.default_group != params.default_group:
        return "the default coverage group changed"
    masters = [name for name in changed if name in MASTER_TABLES]
    if masters:
        return f"the master data changed ({', '.join(masters)})"
    return ""


def regeneration(
    data: TableMap,
    params: PlanParams,
    progress: Progress | None = None,
    reason: str = "",
    split: LevelSplit | None = None,
) -> NetChange:
    """A regeneration, as a :class:`NetChange` that says ``reason``; ``split``
    walks its netting levels in runs on an executor (:mod:`.levelsplit`)."""
    result, basis = regenerate(data, params, progress, split)
    return NetChange(result, basis, result.sku_count, reason)


def _touched_skus(
    m: Masters,
    old: TableMap,
    new: TableMap,
    changed: list[str],
    touched: Mapping[str, tuple[Table, Table]] | None,
) -> np.ndarray:
    """SKU numbers named by the rows that changed, in either version."""
    parts = [np.empty(0, dtype=np.int64)]
    for name in changed:
        pairs = SKU_COLUMNS.get(name)
        if pairs is None:
            continue
        if touched is not None:
            left, came = touched[name]
        else:
            a, b = old.get(name), new.get(name)
            in_a, in_b = touched_rows(name, a, b)
            left = take(a, in_a) if a is not None else {}
            came = take(b, in_b) if b is not None else {}
        for item_col, wh_col in pairs:
            for table in (left, came):
                if table_length(table):
                    sku = m.known_sku(table[item_col], table[wh_col])
                    parts.append(sku[sku >= 0])
    return unique_ints(np.concatenate(parts))


def _downstream(seeds: np.ndarray, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Sorted SKU numbers of ``seeds`` and everything reachable from them
    along the edges ``src -> dst`` (sorted by ``src``)."""
    reach = unique_ints(seeds)
    frontier = reach
    while len(frontier):
        lo = np.searchsorted(src, frontier, "left")
        hi = np.searchsorted(src, frontier, "right")
        counts = hi - lo
        if counts.sum() == 0:
            break
        idx = np.repeat(lo - (np.cumsum(counts) - counts), counts) + np.arange(counts.sum())
        children = unique_ints(dst[idx])
        frontier = children[find_sorted(reach, children) < 0]
        reach = unique_ints(np.concatenate([reach, frontier]))
    return reach


@dataclass(frozen=True, slots=True)
class _SmallData:
    """The data set of the small plan.

    Attributes
    ----------
    tables : TableMap
        Its input tables.
    item_positions : int64 (I,)
        Position in the whole plan's item ids of each item of the small one
        (both sorted, so the small plan's item codes map through this).
    """

    tables: TableMap
    item_positions: np.ndarray


def _item_codes(m: Masters, name: str, table: Table, col: str) -> np.ndarray:
    """int64 (N,): positions of a validated table's item ids among the masters'."""
    known = m.codes.get((name, col))
    if known is not None and len(known) == table_length(table):
        return known
    return lookup(table[col], m.item_pos)


def _small_data(
    t: dict[str, Table],
    rows: TableSkus,
    m: Masters,
    in_reach: np.ndarray,
    in_parents: np.ndarray,
    orders: PatchedTable,
) -> _SmallData | None:
    """The data set that plans the SKUs ``in_reach`` flags as the whole one
    would (see the module docstring), the parents outside them flagged by
    ``in_parents`` (flags as :func:`_flags` makes them); or None when an id
    of a firmed order the small plan needs equals an id of a planned order
    it injects."""
    in_both = in_reach | in_parents
    both = np.flatnonzero(in_both)
    parents = np.flatnonzero(in_parents)

    def inside(sku: np.ndarray, among: np.ndarray = in_reach) -> np.ndarray:
        return among[sku]

    out: dict[str, Table] = {}
    for name in ("warehouses", "calendars", "calendar_exceptions"):
        out[name] = t[name]
    for name in ("on_hand", "sales_lines", "purchase_lines", "production_orders", "forecasts"):
        out[name] = take(t[name], inside(getattr(rows, name)))
    out["production_lines"] = take(t["production_lines"], inside(rows.production_lines))
    out["transfer_lines"] = take(
        t["transfer_lines"], inside(rows.transfer_from) | inside(rows.transfer_to)
    )
    firmed = take(t["firmed_planned_orders"], inside(rows.firmed_planned_orders, in_both))
    injected = _injected_orders(orders, in_parents)
    if np.isin(injected["planned_order_id"], firmed["planned_order_id"]).any():
        return None
    out["firmed_planned_orders"] = _concat("firmed_planned_orders", firmed, injected)
    # The parents plan nothing of their own: a manual coverage group, purchase type.
    groups = t["coverage_groups"]
    neutral = f"net-change-{uuid.uuid4().hex}"
    out["coverage_groups"] = _concat(
        "coverage_groups", groups, _row("coverage_groups", group_id=neutral, coverage_code="manual")
    )
    cov = t["item_coverage"]
    own = inside(rows.item_coverage)
    of_parents = inside(rows.item_coverage, in_parents)
    refill_of = dict(
        zip(
            rows.item_coverage[of_parents].tolist(),
            cov["refill_warehouse_id"][of_parents].tolist(),
            strict=True,
        )
    )
    n_wh = m.n_wh
    parent_items, parent_whs = m.ids(parents)
    neutral_rows = {
        **{
            c.name: _nulls(c.name, "item_coverage", len(parents))
            for c in INPUT_TABLES["item_coverage"].columns
        },
        "item_id": parent_items.astype(object),
        "warehouse_id": parent_whs.astype(object),
        "coverage_group_id": np.full(len(parents), neutral, dtype=object),
        "order_type": np.full(len(parents), "purchase", dtype=object),
        "refill_warehouse_id": np.array([refill_of.get(p) for p in parents.tolist()], dtype=object),
    }
    out["item_coverage"] = _concat("item_coverage", take(cov, own), neutral_rows)
    # Masters: the items of these SKUs and of their BOMs' components.
    item_set = np.zeros(len(m.item_ids), dtype=bool)
    item_set[both // n_wh] = True
    boms = t["boms"]
    bom_keep = item_set[_item_codes(m, "boms", boms, "item_id")]
    lines = t["bom_lines"]
    bom_row = m.codes.get(("bom_lines", "bom_id"))
    if bom_row is None or len(bom_row) != table_length(lines):
        bom_row = lookup(lines["bom_id"], boms["bom_id"])
    line_keep = (bom_row >= 0) & bom_keep[np.maximum(bom_row, 0)]
    comp = _item_codes(m, "bom_lines", lines, "component_item_id")[line_keep]
    item_set[comp[comp >= 0]] = True
    out["boms"] = take(boms, bom_keep)
    out["bom_lines"] = take(lines, line_keep)
    positions = np.flatnonzero(item_set)
    out["items"] = take(t["items"], positions)
    return _SmallData(out, positions)


def _flags(m: Masters, skus: np.ndarray) -> np.ndarray:
    """bool (SKU numbers + 1,): whether each SKU number is one of ``skus``;
    the last slot, where SKU number -1 (none) lands, is False. A gather per
    row instead of a binary search in ``skus``."""
    flags = np.zeros(len(m.item_ids) * m.n_wh + 1, dtype=bool)
    flags[skus] = True
    return flags


def _nulls(col: str, table: str, n: int) -> np.ndarray:
    """``n`` NULLs of a column of an input table, in its dtype."""
    empty = empty_table(INPUT_TABLES[table])[col]
    if empty.dtype == object:
        return np.full(n, None, dtype=object)
    if empty.dtype.kind == "M":
        return np.full(n, np.datetime64("NaT"), dtype=empty.dtype)
    return np.full(n, np.nan, dtype=empty.dtype)


def _row(table: str, **values: object) -> Table:
    """One row of ``table``: the given values, NULL elsewhere."""
    out = {c.name: _nulls(c.name, table, 1) for c in INPUT_TABLES[table].columns}
    for col, value in values.items():
        out[col][0] = value
    return out


def _concat(table: str, first: Table, second: Table) -> Table:
    """The rows of ``first``, then ``second``, in the columns of ``table``."""
    out = {}
    for c in INPUT_TABLES[table].columns:
        a, b = first[c.name], second[c.name]
        if a.dtype != b.dtype:
            a, b = a.astype(object), b.astype(object)
        out[c.name] = np.concatenate([a, b])
    return out


def _injected_orders(orders: PatchedTable, parents: np.ndarray) -> Table:
    """The previous run's production and transfer orders of the SKUs
    ``parents`` flags, as ``firmed_planned_orders`` rows (purchase orders
    explode nothing)."""
    rows = orders.rows_of(parents)
    keep = np.isin(rows["order_type"], ["production", "transfer"])

    def column(name: str) -> np.ndarray:
        return rows[name][keep]

    return {
        "planned_order_id": column("planned_order_id").astype(object),
        "item_id": column("item_id"),
        "warehouse_id": column("warehouse_id"),
        "order_type": column("order_type"),
        "qty": column("qty").astype(np.float64),
        "order_date": column("order_date").astype("datetime64[D]"),
        "due_date": column("due_date").astype("datetime64[D]"),
        "from_warehouse_id": column("from_warehouse_id"),
    }


def _full_skus(sku: np.ndarray, item_positions: np.ndarray, n_wh: int) -> np.ndarray:
    """The small plan's SKU numbers as the whole plan's."""
    if len(sku) == 0:
        return sku
    return item_positions[sku // n_wh] * n_wh + sku % n_wh


def _moved_parents(
    m: Masters,
    basis: PlanBasis,
    small: PlanBasis,
    item_positions: np.ndarray,
    in_reach: np.ndarray,
) -> np.ndarray:
    """Parents outside the re-planned SKUs (flagged by ``in_reach``) whose
    orders' delayed dependent requirements among them differ (ref or
    futures) from the previous run's."""
    n_wh = m.n_wh
    new = small.late.base
    new_parent = _full_skus(new["parent"], item_positions, n_wh)  # type: ignore[arg-type]
    new_sku = _full_skus(new["sku"], item_positions, n_wh)  # type: ignore[arg-type]
    new_rows = in_reach[new_sku] & ~in_reach[new_parent]
    old = basis.late.rows_of(in_reach)
    old_rows = ~in_reach[old["parent"]]
    before = Counter(
        zip(
            old["parent"][old_rows].tolist(),
            old["ref"][old_rows].tolist(),
            old["futures"][old_rows].tolist(),
            strict=True,
        )
    )
    after = Counter(
        zip(
            new_parent[new_rows].tolist(),
            new["ref"][new_rows].tolist(),  # type: ignore[union-attr]
            new["futures"][new_rows].tolist(),  # type: ignore[union-attr]
            strict=True,
        )
    )
    moved = {p for p, _, _ in (before - after) + (after - before)}
    return np.array(sorted(moved), dtype=np.int64)


def _stitch(
    m: Masters,
    basis: PlanBasis,
    layers: dict[str, PatchedTable],
    small: PlanResult,
    small_basis: PlanBasis,
    item_positions: np.ndarray,
    replanned: np.ndarray,
    front: Messages,
    join: bool = True,
) -> tuple[
    LayeredTables,
    dict[str, ResultTable],
    dict[str, ResultTable],
    PatchedTable,
    Messages,
    np.ndarray,
]:
    """The result tables, the rows they replaced and replace them with (see
    :class:`NetChange`), the delayed dependent requirements and the netting
    messages: the previous run's outside the SKUs ``replanned`` flags, the
    small plan's inside.
    Without ``join``, only the replaced and replacing rows are made (the
    tables returned are the previous run's)."""
    n_wh = m.n_wh
    parts: dict[str, PatchedTable | ResultTable] = {}
    before: dict[str, ResultTable] = {}
    after: dict[str, ResultTable] = {}
    for name in _SKU_TABLES:
        layer, new = layers[name], small.tables[name]
        new_item = new["item_id"]
        if isinstance(new_item, Coded):
            item_codes = item_positions[new_item.codes]
            new_sku = item_codes * n_wh + new["warehouse_id"].codes  # type: ignore[union-attr]
        else:
            new_sku = row_skus(m, new)  # plain ids: looked up among the whole plan's
            item_codes = None
        add = np.flatnonzero(replanned[new_sku])
        rows = {col: values[add] for col, values in new.items()}
        before[name] = {**layer.rows_of(replanned)}
        after[name] = {col: as_array(values) for col, values in rows.items()}
        if join:
            if item_codes is not None:
                rows = layer.coded_like_base(rows, item_codes[add])
            parts[name] = layer.replaced(replanned, rows, new_sku[add])
    small_late = small_basis.late.base
    new_sku = _full_skus(small_late["sku"], item_positions, n_wh)  # type: ignore[arg-type]
    new_late = np.flatnonzero(replanned[new_sku])
    late_rows: ResultTable = {
        "parent": _full_skus(small_late["parent"], item_positions, n_wh)[new_late],  # type: ignore[arg-type]
        "sku": new_sku[new_late],
        "ref": small_late["ref"][new_late],
        "futures": small_late["futures"][new_late],
    }
    late = basis.late.replaced(replanned, late_rows, new_sku[new_late]) if join else basis.late
    old_msg = ~replanned[basis.net_message_sku]
    small_msg_sku = small_basis.net_message_sku
    msg_sku = np.where(
        small_msg_sku >= 0, _full_skus(np.maximum(small_msg_sku, 0), item_positions, n_wh), -1
    )
    new_msg = replanned[msg_sku]
    net_messages = Messages.concat(
        [
            select_messages(basis.net_messages, old_msg),
            select_messages(small_basis.net_messages, new_msg),
        ]
    )
    net_message_sku = np.concatenate([basis.net_message_sku[old_msg], msg_sku[new_msg]])
    messages: ResultTable = {**Messages.concat([front, net_messages]).table()}
    before["plan_messages"] = basis.tables["plan_messages"]
    after["plan_messages"] = messages
    parts["plan_messages"] = messages
    tables = LayeredTables(parts) if join else LayeredTables(basis.tables)
    return tables, before, after, late, net_messages, net_message_sku


def _length(tables: Mapping[str, ResultTable], name: str) -> int:
    """Rows of table ``name`` (of a layered result, without joining it)."""
    if isinstance(tables, LayeredTables):
        return tables.length(name)
    return table_length(tables[name])
