"""Regeneration (SPEC §5): the engine's entry point, ``plan(data, params)``.

Phases, each vectorised over all SKUs or all rows:

1. ``validate``   — §5.9 checks; bad rows are left out with a message.
2. ``index``      — SKUs from every row, their settings (§5.2), closed under
   the SKU graph.
3. ``levels``     — low-level codes and cycles with ``scipy.sparse.csgraph``.
4. ``netting``    — per level, the compiled netting walk (§5.5) over all SKUs
   of the level, then planned-order dates (§5.6) and the explosion of the
   level's planned orders into dependent requirements of lower levels.
5. ``delays``     — futures dates bottom-up (§5.7).
6. ``messages``   — action messages (§5.8) and the output tables.
"""

from __future__ import annotations

import datetime as dt
import itertools
import time
from collections.abc import Callable

import numpy as np
from numpy.dtypes import StringDType

from masterplan.contract.columns import table_length
from masterplan.server.engine.arrays import (
    as_objects,
    days,
    find_sorted,
    gather,
    text,
    unique_ints,
)
from masterplan.server.engine.columns import Requirements, rank, select, walk_order
from masterplan.server.engine.kinds import (
    K_PL,
    REC_CLASS,
)
from masterplan.server.engine.model import (
    ORDER_PRODUCTION,
    ORDER_TRANSFER,
    Masters,
    SkuSettings,
    join,
    levels_and_cycles,
    order_type_codes,
    resolve_settings,
)
from masterplan.server.engine.netting import net_level
from masterplan.server.engine.orderrefs import OrderRefs
from masterplan.server.engine.requirements import independent_requirements
from masterplan.server.engine.results import build_tables, compute_delays
from masterplan.server.engine.types import PlanParams, PlanResult, Table, TableMap
from masterplan.server.engine.validate import Messages, validate

__all__ = ["InvalidPlanInput", "check", "plan", "warm_up"]

_STR = StringDType()

#: Share of a typical run done when each phase starts, for progress reports.
_PHASE_FRACTION = {
    "validate": 0.0,
    "index": 0.1,
    "levels": 0.2,
    "requirements": 0.25,
    "netting": 0.35,
    "delays": 0.8,
    "messages": 0.9,
}


class InvalidPlanInput(ValueError):
    """The run cannot produce a meaningful plan (SPEC §5.9: the run fails)."""


class _Planner:
    """One regeneration; holds the state the phases pass along."""

    def __init__(
        self, data: TableMap, params: PlanParams, progress: Callable[[str, float], None] | None
    ) -> None:
        self.params = params
        self.progress = progress or (lambda phase, fraction: None)
        self.t0 = int(np.datetime64(params.plan_date, "D").astype(np.int64))
        self.data = data
        self.phase_seconds: dict[str, float] = {}
        self.msgs = Messages()
        self._sku_cache: dict[tuple[str, str, str], np.ndarray] = {}

    # -- helpers -----------------------------------------------------------
    def _timed(self, name: str, fn: Callable[[], None]) -> None:
        self.progress(name, _PHASE_FRACTION[name])
        start = time.perf_counter()
        fn()
        self.phase_seconds[name] = self.phase_seconds.get(name, 0.0) + time.perf_counter() - start

    def eff(self, d: np.ndarray) -> np.ndarray:
        """Effective date: before ``T0`` counts as ``T0``."""
        return np.maximum(d, self.t0)

    def lead_sub(self, d: np.ndarray, sidx: np.ndarray) -> np.ndarray:
        """``d`` minus the SKUs' lead times, on their calendars (§5.1)."""
        return self.m.calendars.shift(d, self.s.lead[sidx], self.s.calendar[sidx], -1)

    def lead_add(self, d: np.ndarray, sidx: np.ndarray) -> np.ndarray:
        """``d`` plus the SKUs' lead times, on their calendars; no date stays no date."""
        return self.m.calendars.shift(d, self.s.lead[sidx], self.s.calendar[sidx], 1)

    def table_sku(self, table: str, item_col: str, wh_col: str) -> np.ndarray:
        """SKU numbers of a table's rows, looked up once per run and column pair."""
        key = (table, item_col, wh_col)
        if key not in self._sku_cache:
            self._sku_cache[key] = self.m.table_sku(self.t, table, item_col, wh_col)
        return self._sku_cache[key]

    def sku_text(self, sidx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        m = self.m
        return m.item_ids[self.s.item[sidx]], m.warehouse_ids[self.s.wh[sidx]]

    # -- phases ------------------------------------------------------------
    def run(self) -> PlanResult:
        self._timed("validate", self.validate)
        self._timed("index", self.index)
        self._timed("levels", self.levels)
        self._timed("requirements", self.requirements)
        self._timed("netting", self.netting)
        self._timed("delays", self.delays)
        self._timed("messages", self.output)
        return PlanResult(self.tables, self.phase_seconds, len(self.s.sku))

    def validate(self) -> None:
        v = self.validated = validate(self.data)
        self.t = v.tables
        self.msgs = v.messages
        dg = self.params.default_group
        if dg is not None and dg not in set(self.t["coverage_groups"]["group_id"].tolist()):
            raise InvalidPlanInput(f"default group {dg!r} is not in coverage_groups")

    def index(self) -> None:
        t = self.t
        v = self.validated
        m = self.m = Masters.build(t, v.id_positions, v.codes)
        pairs = [
            ("item_coverage", "item_id", "warehouse_id"),
            ("on_hand", "item_id", "warehouse_id"),
            ("sales_lines", "item_id", "warehouse_id"),
            ("purchase_lines", "item_id", "warehouse_id"),
            ("production_orders", "item_id", "warehouse_id"),
            ("production_lines", "component_item_id", "warehouse_id"),
            ("transfer_lines", "item_id", "from_warehouse_id"),
            ("transfer_lines", "item_id", "to_warehouse_id"),
            ("forecasts", "item_id", "warehouse_id"),
            ("firmed_planned_orders", "item_id", "warehouse_id"),
        ]
        parts = [self.table_sku(name, i, w) for name, i, w in pairs if name != "forecasts"]
        # Zero-quantity forecast lines play no part at all, not even naming a SKU.
        fc = t["forecasts"]
        named = np.nan_to_num(fc["qty"]) != 0
        parts.append(self.table_sku("forecasts", "item_id", "warehouse_id")[named])
        f = t["firmed_planned_orders"]
        has_from = np.equal(f["order_type"], "transfer") & ~np.equal(f["from_warehouse_id"], None)
        parts.append(m.sku(f["item_id"][has_from], f["from_warehouse_id"][has_from]))
        sku = unique_ints(np.concatenate(parts)) if parts else np.empty(0, np.int64)
        # Firmed orders: their BOM (by their own order date) and their source.
        self._firmed_prepare()
        # Close the SKU set under the graph's edges.
        while True:
            s = resolve_settings(m, sku, self.params.default_group)
            src, dst = self._edges(s)
            new = unique_ints(dst[find_sorted(sku, dst) < 0])
            if len(new) == 0:
                break
            sku = unique_ints(np.concatenate([sku, new]))
        self.s = s
        self.refs = OrderRefs(m, s)
        self.edge_src, self.edge_dst = s.index(src), s.index(dst)
        nr = np.flatnonzero(s.no_refill)
        if len(nr):
            item, wh = self.sku_text(nr)
            self.msgs.add(
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

    def _bom_candidates(self, item: np.ndarray, wh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pairs (i, bom row) of the BOMs of ``item[i]`` that may serve warehouse ``wh[i]``."""
        b = self.m.boms
        li, bi = join(item, b["item"])
        ok = (b["wh"][bi] < 0) | (b["wh"][bi] == wh[li])
        return li[ok], bi[ok]

    def choose_bom(self, item: np.ndarray, wh: np.ndarray, on: np.ndarray) -> np.ndarray:
        """BOM row valid on ``on`` for each order (§5.6), -1 when none.

        Warehouse-specific BOMs come before generic ones, then the lowest id.
        """
        b = self.m.boms
        li, bi = self._bom_candidates(item, wh)
        ok = (b["from"][bi] <= on[li]) & (on[li] <= b["to"][bi])
        li, bi = li[ok], bi[ok]
        out = np.full(len(item), -1, dtype=np.int64)
        if len(li):
            generic = (b["wh"][bi] < 0).astype(np.int64)
            # BOM rows are sorted by (item, bom_id): the row number ranks the ids.
            order = np.lexsort((bi, generic, li))
            li, bi = li[order], bi[order]
            first = np.ones(len(li), dtype=bool)
            first[1:] = li[1:] != li[:-1]
            out[li[first]] = bi[first]
        return out

    def _lines_of(self, bom_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pairs (i, line row) of the lines of BOM ``bom_rows[i]``."""
        return join(bom_rows, self.m.lines["bom"])

    def _firmed_prepare(self) -> None:
        f = self.t["firmed_planned_orders"]
        m = self.m
        self.f_sku = self.table_sku("firmed_planned_orders", "item_id", "warehouse_id")
        # The row's order_type; unknown or NULL is purchase (as for SKUs).
        otype = order_type_codes(f["order_type"])
        # A zero-quantity firmed order names its SKUs and nothing else: no
        # receipt, no explosion, no graph edge, no message.
        self.f_live = np.nan_to_num(f["qty"]) > 0
        self.f_type = otype
        self.f_order = days(f["order_date"])
        self.f_due = days(f["due_date"])
        prod = otype == ORDER_PRODUCTION
        bom = np.full(len(otype), -1, dtype=np.int64)
        if prod.any():
            bom[prod] = self.choose_bom(
                self.f_sku[prod] // m.n_wh, self.f_sku[prod] % m.n_wh, self.f_order[prod]
            )
        self.f_bom = bom
        from_wh = np.full(len(otype), -1, dtype=np.int64)
        has_from = ~np.equal(f["from_warehouse_id"], None)
        from_wh[has_from] = self.f_sku[has_from] // m.n_wh * m.n_wh + np.searchsorted(
            m.warehouse_ids.astype(str), f["from_warehouse_id"][has_from].astype(str)
        )
        self.f_from = from_wh  # completed with the refill warehouse once settings exist

    def _edges(self, s: SkuSettings) -> tuple[np.ndarray, np.ndarray]:
        m = self.m
        src_parts, dst_parts = [], []
        prod = np.flatnonzero(s.order_type == ORDER_PRODUCTION)
        li, bi = self._bom_candidates(s.item[prod], s.wh[prod])
        pi, lr = self._lines_of(bi)
        parent = s.sku[prod][li][pi]
        lwh = m.lines["wh"][lr]
        comp_wh = np.where(lwh >= 0, lwh, parent % m.n_wh)
        src_parts.append(parent)
        dst_parts.append(m.lines["item"][lr] * m.n_wh + comp_wh)
        tr = s.order_type == ORDER_TRANSFER
        src_parts.append(s.sku[tr])
        dst_parts.append(s.refill[tr])
        # Firmed planned orders draw on their BOM lines or their source warehouse.
        fp = np.flatnonzero((self.f_bom >= 0) & self.f_live)
        pi, lr = self._lines_of(self.f_bom[fp])
        parent = self.f_sku[fp][pi]
        lwh = m.lines["wh"][lr]
        src_parts.append(parent)
        dst_parts.append(m.lines["item"][lr] * m.n_wh + np.where(lwh >= 0, lwh, parent % m.n_wh))
        ft = np.flatnonzero((self.f_type == ORDER_TRANSFER) & self.f_live)
        fsrc = self._firmed_source(s, ft)
        src_parts.append(self.f_sku[ft][fsrc >= 0])
        dst_parts.append(fsrc[fsrc >= 0])
        return np.concatenate(src_parts), np.concatenate(dst_parts)

    def _firmed_source(self, s: SkuSettings, ft: np.ndarray) -> np.ndarray:
        """Source SKU of firmed transfers ``ft``: their from-warehouse, else the refill, else -1."""
        src = self.f_from[ft].copy()
        missing = src < 0
        if missing.any():
            fs = self.f_sku[ft][missing]
            pos = np.searchsorted(s.sku, fs)
            pos = np.minimum(pos, max(len(s.sku) - 1, 0))
            known = (len(s.sku) > 0) & (s.sku[pos] == fs) if len(s.sku) else np.zeros(len(fs), bool)
            refill = np.where(known, s.refill[pos] if len(s.sku) else -1, -1)
            # refill of a SKU whose order type was switched to purchase is still its refill
            src[missing] = refill
        return src

    def levels(self) -> None:
        s = self.s
        n = len(s.sku)
        self.llc, self.comp, in_cycle = levels_and_cycles(n, self.edge_src, self.edge_dst)
        cyc = np.flatnonzero(in_cycle)
        if len(cyc):
            item, wh = self.sku_text(cyc)
            names = text(item.astype(_STR), "@", wh.astype(_STR))
            comp = self.comp[cyc]
            order = np.lexsort((rank(names), comp))
            comp, names = comp[order], names[order]
            bounds = np.flatnonzero(np.r_[True, comp[1:] != comp[:-1], True])
            texts = [",".join(names[a:b].tolist()) for a, b in itertools.pairwise(bounds)]
            k = len(texts)
            self.msgs.add(
                "error",
                "BOM_CYCLE",
                np.full(k, None, object),
                np.full(k, None, object),
                np.array(texts, dtype=object),
            )

    def requirements(self) -> None:
        independent_requirements(self)

    def _explode(
        self,
        sku: np.ndarray,
        qty: np.ndarray,
        order_date: np.ndarray,
        bom: np.ndarray,
        otype: np.ndarray,
        source: np.ndarray,
        refs: Callable[[np.ndarray, np.ndarray], np.ndarray],
        cause: np.ndarray,
    ) -> None:
        """Dependent requirements of production and transfer orders (§5.6).

        ``refs(orders, line_rows)`` gives the ref codes of the requirements
        made for ``orders`` (positions in these arrays) and BOM line rows
        (-1 for a transfer).
        """
        m = self.m
        prod = np.flatnonzero((otype == ORDER_PRODUCTION) & (bom >= 0))
        pi, lr = self._lines_of(bom[prod])
        o = prod[pi]
        b, ln = m.boms, m.lines
        per = np.nan_to_num(ln["qty_per"][lr])
        q = qty[o] / b["batch"][bom[o]] * per * (
            1 + np.nan_to_num(ln["scrap_pct"][lr]) / 100
        ) + np.nan_to_num(ln["scrap_const"][lr])
        lwh = ln["wh"][lr]
        comp = ln["item"][lr] * m.n_wh + np.where(lwh >= 0, lwh, sku[o] % m.n_wh)
        self._add_dependent(
            sku[o],
            comp,
            order_date[o],
            q,
            refs(o, lr),
            cause[o],
        )
        tr = np.flatnonzero((otype == ORDER_TRANSFER) & (source >= 0))
        self._add_dependent(
            sku[tr],
            source[tr],
            order_date[tr],
            qty[tr],
            refs(tr, np.full(len(tr), -1, dtype=np.int64)),
            cause[tr],
        )

    def _add_dependent(
        self,
        parent: np.ndarray,
        comp: np.ndarray,
        date: np.ndarray,
        qty: np.ndarray,
        ref: np.ndarray,
        cause: np.ndarray,
    ) -> None:
        s = self.s
        pi, ci = s.index(parent), s.index(comp)
        d = self.eff(date)
        # Edges inside a cycle carry no dependent demand; fenced requirements are ignored.
        keep = (self.comp[pi] != self.comp[ci]) & (qty > 0) & (d <= self.t0 + s.fence[ci])
        self.reqs.add(comp[keep], d[keep], qty[keep], K_PL, ref[keep], cause=cause[keep])

    def _explode_firmed(self, f: Table, fkeep: np.ndarray) -> None:
        s = self.s
        n = len(fkeep)
        if n == 0:
            return
        ft = np.arange(n)
        source = np.full(n, -1, dtype=np.int64)
        tr = np.flatnonzero(self.f_type == ORDER_TRANSFER)
        source[tr] = self._firmed_source(s, tr)
        no_src = tr[(source[tr] < 0) & fkeep[tr]]
        if len(no_src):
            item, wh = f["item_id"][no_src], f["warehouse_id"][no_src]
            self.msgs.add(
                "warning",
                "NO_REFILL_WAREHOUSE",
                item,
                wh,
                as_objects(
                    text(
                        "firmed transfer PL:",
                        f["planned_order_id"][no_src],
                        " has no source warehouse",
                    )
                ),
            )
        nb = np.flatnonzero((self.f_type == ORDER_PRODUCTION) & (self.f_bom < 0) & fkeep)
        if len(nb):
            self.msgs.add(
                "warning",
                "NO_BOM",
                f["item_id"][nb],
                f["warehouse_id"][nb],
                as_objects(
                    text("firmed planned order PL:", f["planned_order_id"][nb], " has no valid BOM")
                ),
            )
        ok = ft[fkeep]
        ids = text("PL:", f["planned_order_id"][ok])
        suffix = np.r_[self.refs.line_suffix(), np.array([""], dtype=_STR)]  # row -1: no line

        def refs(orders: np.ndarray, lines: np.ndarray) -> np.ndarray:
            return self.refs.book.add_text(text(ids[orders], suffix[lines]))

        self._explode(
            self.f_sku[ok],
            np.nan_to_num(f["qty"])[ok],
            self.f_order[ok],
            self.f_bom[ok],
            self.f_type[ok],
            source[ok],
            refs,
            self.f_rec[ok],
        )

    # -- netting -------------------------------------------------------------
    def netting(self) -> None:
        s, rec = self.s, self.rec
        n_lvl = int(self.llc.max()) + 1 if len(self.llc) else 0
        rec_order = walk_order((REC_CLASS[rec["kind"]], rec["date"], self.s_idx_rec), rec["ref"])
        self.rec = rec = {k: v[rec_order] for k, v in rec.items()}
        rec_sidx = self.s_idx_rec = self.s_idx_rec[rec_order]
        rec_lvl = self.llc[rec_sidx]
        po_parts: list[dict[str, np.ndarray]] = []
        req_parts: list[dict[str, np.ndarray]] = []
        peg_parts: list[dict[str, np.ndarray]] = []
        n_po = 0
        n_req = 0
        # Requirements wait in one bucket per level until their level is netted.
        buckets: list[list[dict[str, np.ndarray]]] = [[] for _ in range(n_lvl)]

        def file(cols: dict[str, np.ndarray]) -> None:
            cols["sidx"] = s.index(cols["sku"])
            lv = self.llc[cols["sidx"]]
            order = np.argsort(lv, kind="stable")
            bounds = np.searchsorted(lv[order], np.arange(n_lvl + 1))
            for level in np.flatnonzero(np.diff(bounds)):
                buckets[level].append(select(cols, order[bounds[level] : bounds[level + 1]]))

        first = self.reqs.columns()
        self.reqs = Requirements()
        # Causes that name a firmed order's receipt follow the receipts' new order.
        inv = np.empty_like(rec_order)
        inv[rec_order] = np.arange(len(rec_order))
        fc = first["cause"] >= 0
        first["cause"][fc] = inv[first["cause"][fc]]
        file(first)
        empty_r = {**Requirements().columns(), "sidx": np.empty(0, np.int64)}
        for lvl in range(n_lvl):
            self.progress("netting", 0.35 + 0.45 * lvl / max(n_lvl, 1))
            parts = buckets[lvl]
            buckets[lvl] = []
            r = (
                {k: np.concatenate([b[k] for b in parts]) for k in parts[0]}
                if parts
                else dict(empty_r)
            )
            r_sidx = r.pop("sidx")
            # Coverage time fence: later requirements play no part at all.
            inside = r["date"] <= self.t0 + s.fence[r_sidx]
            r, r_sidx = select(r, inside), r_sidx[inside]
            order = walk_order(
                (r["prio"], r["kind"], r["date"], r_sidx),
                lambda rows, codes=r["ref"]: self.refs.rank(codes[rows]),
            )
            r, r_sidx = select(r, order), r_sidx[order]
            skus = np.flatnonzero(self.llc == lvl)
            req_ptr = np.r_[np.searchsorted(r_sidx, skus, "left"), len(r_sidx)]
            rsel = np.flatnonzero(rec_lvl == lvl)
            rec_ptr = np.r_[np.searchsorted(rec_sidx[rsel], skus, "left"), len(rsel)]
            res = net_level(
                self.t0,
                req_ptr,
                r["date"],
                r["qty"],
                rec_ptr,
                rec["date"][rsel],
                rec["qty"][rsel],
                self.lead_add(np.full(len(skus), self.t0, dtype=np.int64), skus),
                s.neg[skus],
                s.pos[skus],
                s.code[skus],
                s.period[skus],
                s.min_qty[skus],
                s.max_qty[skus],
                s.min_oq[skus],
                s.max_oq[skus],
                s.mult[skus],
            )
            # Planned orders of this level.
            po_s = s.sku[skus[res.po_sku]]  # SKU numbers, as _finish_orders expects
            po = self._finish_orders(po_s, res.po_date, res.po_qty, n_po)
            po_parts.append(po)
            self.refs.add_orders(po["sidx"], po["num"])
            # Pegging in global numbering: receipts >= 0, planned orders -1 - k.
            src = np.where(
                res.peg_src >= 0, gather(rsel, res.peg_src, 0), -1 - (n_po + (-1 - res.peg_src))
            )
            peg_parts.append({"req": n_req + res.peg_req, "src": src, "qty": res.peg_qty})
            # Kept for delays and output only: what those need.
            req_parts.append(
                {
                    "date": r["date"],
                    "kind": r["kind"],
                    "ref": r["ref"],
                    "cause": r["cause"],
                    "short": res.shortfall,
                    "sidx": r_sidx,
                }
            )
            n_req += len(r_sidx)
            # Explode this level's planned orders into lower levels.
            self._explode(
                po_s,
                po["qty"],
                po["order"],
                po["bom"],
                po["type"],
                po["source"],
                lambda orders, lines, base=n_po: self.refs.book.add_planned(base + orders, lines),
                -2 - (n_po + np.arange(len(po_s))),
            )
            file(self.reqs.columns())
            self.reqs = Requirements()
            n_po += len(po_s)

        def cat(
            parts: list[dict[str, np.ndarray]], like: dict[str, np.ndarray]
        ) -> dict[str, np.ndarray]:
            if not parts:
                return {k: v[:0] for k, v in like.items()}
            return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

        empty_po = self._finish_orders(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0), 0)
        self.po = cat(po_parts, empty_po)
        self.req = cat(
            req_parts,
            {k: empty_r[k] for k in ("date", "kind", "ref", "cause", "sidx")}
            | {"short": np.empty(0)},
        )
        self.peg = cat(
            peg_parts,
            {"req": np.empty(0, np.int64), "src": np.empty(0, np.int64), "qty": np.empty(0)},
        )

    def _finish_orders(
        self, sku: np.ndarray, netting: np.ndarray, qty: np.ndarray, offset: int
    ) -> dict[str, np.ndarray]:
        """Ids, types, dates, BOMs and sources of new planned orders (§5.6)."""
        s = self.s
        sidx = s.index(sku)
        # n counts each SKU's orders from 1 in creation order (orders of one
        # SKU are created together, in order).
        n = len(sku)
        first = np.r_[True, sku[1:] != sku[:-1]] if n else np.empty(0, bool)
        start = (
            np.maximum.accumulate(np.where(first, np.arange(n), 0)) if n else np.empty(0, np.int64)
        )
        num = np.arange(n) - start + 1
        due = netting.copy()
        order = self.lead_sub(due, sidx)
        frz = self.t0 + s.freeze[sidx]
        moved = order < frz
        order = np.where(moved, frz, order)
        due = np.where(moved, self.lead_add(order, sidx), due)
        firmed = order < self.t0 + s.firming[sidx]
        otype = s.order_type[sidx]
        bom = np.full(n, -1, dtype=np.int64)
        prod = np.flatnonzero(otype == ORDER_PRODUCTION)
        if len(prod):
            bom[prod] = self.choose_bom(s.item[sidx[prod]], s.wh[sidx[prod]], order[prod])
            nb = prod[bom[prod] < 0]
            if len(nb):
                item, wh = self.sku_text(sidx[nb])
                pid = self.refs.ids(sidx[nb], num[nb])
                self.msgs.add(
                    "warning",
                    "NO_BOM",
                    item,
                    wh,
                    as_objects(text("planned production order PL:", pid, " has no valid BOM")),
                )
        source = np.where(otype == ORDER_TRANSFER, s.refill[sidx], -1)
        return {
            "sidx": sidx,
            "num": num,
            "qty": qty,
            "netting": netting,
            "due": due,
            "order": order,
            "firmed": firmed,
            "type": otype,
            "bom": bom,
            "source": source,
        }

    # -- delays (§5.7) and output ----------------------------------------------
    def delays(self) -> None:
        compute_delays(self)

    def output(self) -> None:
        build_tables(self)


def plan(
    data: TableMap,
    params: PlanParams,
    progress: Callable[[str, float], None] | None = None,
) -> PlanResult:
    """Plan a data set: SPEC §5 regeneration.

    Parameters
    ----------
    data
        The §4 input tables as struct-of-arrays (see :mod:`masterplan.contract.tables`);
        a missing table counts as empty.
    params
        Plan date and default coverage group.
    progress
        Called with a phase name and the fraction of the run done at the start
        of each phase and each netting level; an exception it raises (a
        cancellation, say) stops the run there.

    Returns
    -------
    PlanResult
        The five output tables and the engine's phase times.

    Raises
    ------
    InvalidPlanInput
        When no meaningful plan can be made (an unknown default group).
    """
    return _Planner(data, params, progress).run()


def check(data: TableMap, params: PlanParams) -> Table:
    """The plan messages that need no netting: §5.9 input checks, refill
    warehouses and cycles (``NO_BOM`` needs planned orders, so it is absent).
    """
    planner = _Planner(data, params, None)
    planner.validate()
    planner.index()
    planner.levels()
    return planner.msgs.table()


def input_row_count(data: TableMap) -> int:
    """Total rows of the input tables, for reports."""
    return sum(table_length(t) for t in data.values())


def warm_up() -> float:
    """Plan a tiny data set once, so that the compiled kernels are loaded.

    numba compiles (or loads from its on-disk cache) on the first call; a
    server does that at start-up instead of in a tenant's first run.
    Returns the seconds it took.
    """
    from masterplan.contract.rows import from_rows
    from masterplan.contract.tables import INPUT_TABLES

    rows = {
        "warehouses": [{"warehouse_id": "W", "site_id": "S"}],
        "coverage_groups": [{"group_id": "G", "coverage_code": "period"}],
        "items": [{"item_id": "A", "coverage_group_id": "G", "lead_time_days": 1}],
        "sales_lines": [
            {
                "order_id": "S",
                "line_no": 1,
                "item_id": "A",
                "warehouse_id": "W",
                "qty": 1,
                "requested_date": "2000-01-05",
            }
        ],
    }
    start = time.perf_counter()
    data = {name: from_rows(spec, rows.get(name, [])) for name, spec in INPUT_TABLES.items()}
    plan(data, PlanParams(dt.date(2000, 1, 3)))
    return time.perf_counter() - start
