"""Slow, literal reference implementation of SPEC §5 (regeneration planning).

This is the oracle of the differential tests: it is written from the text of
SPEC §5 only, per SKU and per requirement, with plain loops, and should be
read side by side with the spec. Speed does not matter; correctness does.

Entry point: :func:`reference_plan`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .calendars import NEVER, iso, minus_working_days, plus_working_days, to_day
from .loading import (
    EPS,
    Loaded,
    PlanMessage,
    Row,
    Settings,
    fmt_value,
    load,
    num,
    resolve_settings,
)

SkuKey = tuple[Any, Any]  # (item_id, warehouse_id)

# §5.5 walk order of requirement kinds: oh < ss < so < prdl < tri < pl < fc
KIND_RANK = {"oh": 0, "ss": 1, "so": 2, "prdl": 3, "tri": 4, "pl": 5, "fc": 6}

# §5.5 receipt classes: on-hand, existing orders (po/prd/trr), firmed planned
# orders, the run's planned orders.
CLASS_ON_HAND, CLASS_EXISTING, CLASS_FIRMED, CLASS_PLANNED = 0, 1, 2, 3

# §5.7 delay messages are written for these requirement kinds only.
DELAY_KINDS = ("so", "fc", "tri", "ss")


# ============================================================================ data model


@dataclass(eq=False)
class Order:
    """A planned order of this run, or a firmed planned order (input row)."""

    planned_order_id: str
    sku: SkuKey
    order_type: str  # purchase | production | transfer
    qty: float
    order_date: int  # for a firmed order: its row's date (before "before T0 = T0")
    due_date: int  # effective
    requirement_date: int  # planned orders: r (their netting date)
    firmed_input: bool  # True for a firmed_planned_orders row
    firmed_flag: int = 0  # planned orders: inside the firming fence (§5.6)
    from_warehouse_id: Any = None
    vendor_id: Any = None
    bom_id: Any = None
    # §5.7: the requirements this order caused (dependent demand not fenced)
    caused: list[Requirement] = field(default_factory=list)


@dataclass(eq=False)
class Receipt:
    sku: SkuKey
    kind: str  # oh | po | prd | trr | pl
    ref: str
    qty: float
    netting_date: int  # §5.5: effective date; a planned order's requirement date
    klass: int
    seq: int = 0  # creation order of the run's planned orders
    order: Order | None = None
    remaining: float = 0.0
    taken_by: list[tuple[Requirement, float]] = field(default_factory=list)
    available: int = 0  # §5.7 (NEVER = never)

    def sort_key(self) -> tuple[int, int, str, int]:
        # §5.5: (netting date, class, ref — creation order for planned orders)
        if self.klass == CLASS_PLANNED:
            return (self.netting_date, self.klass, "", self.seq)
        return (self.netting_date, self.klass, self.ref, 0)


@dataclass(eq=False)
class Requirement:
    sku: SkuKey
    kind: str
    ref: str
    qty: float
    date: int  # effective date r
    priority: float = 0.0
    takes: list[tuple[Receipt, float]] = field(default_factory=list)
    shortfall: float = 0.0
    futures: int = 0  # §5.7 (NEVER = never)

    def walk_key(self) -> tuple[int, int, float, str]:
        # §5.5: (date, kind, sales priority (NULL = 0), ref)
        return (self.date, KIND_RANK[self.kind], self.priority, self.ref)


@dataclass(eq=False)
class Sku:
    key: SkuKey
    s: Settings
    llc: int = 0
    requirements: list[Requirement] = field(default_factory=list)
    receipts: list[Receipt] = field(default_factory=list)
    firmed_orders: list[Order] = field(default_factory=list)
    planned_count: int = 0
    # §5.6: the refill warehouse if valid (a warehouse in `warehouses`)
    refill: Any = None

    @property
    def item(self) -> Any:
        return self.key[0]

    @property
    def wh(self) -> Any:
        return self.key[1]

    # §5.1: only lead-time arithmetic uses calendars.
    def minus_lead(self, d: int) -> int:
        cal = self.s.calendar if self.s.use_working_days else None
        return minus_working_days(cal, d, self.s.lead_time_days)

    def plus_lead(self, d: int) -> int:
        cal = self.s.calendar if self.s.use_working_days else None
        return plus_working_days(cal, d, self.s.lead_time_days)

    def planned_type(self) -> str:
        """§5.6: the SKU's order type; a transfer SKU without a valid refill
        warehouse plans purchase orders."""
        if self.s.order_type == "transfer" and self.refill is None:
            return "purchase"
        return self.s.order_type


# ============================================================================ the planner


class ReferencePlanner:
    def __init__(
        self, inp: dict[str, list[Row]], plan_date: str, default_group: str | None
    ) -> None:
        t0 = to_day(plan_date)
        assert t0 is not None
        self.t0: int = t0
        self.default_group = default_group
        self.data: Loaded = load(inp)
        self.messages: list[PlanMessage] = self.data.messages
        self.skus: dict[SkuKey, Sku] = {}
        self.edges: dict[SkuKey, set[SkuKey]] = {}
        self.cycle_of: dict[SkuKey, int] = {}  # SKU -> index of its cycle
        self.planned_orders: list[Order] = []
        self.pegging: list[Row] = []

    # ------------------------------------------------------------------ helpers

    def eff(self, day: int) -> int:
        """§5.1: a date before T0 counts as T0 (its effective date)."""
        return max(day, self.t0)

    def warn(self, code: str, item: Any, wh: Any, text: str) -> None:
        self.messages.append(PlanMessage("warning", code, item, wh, text))

    def get_sku(self, key: SkuKey) -> Sku:
        if key not in self.skus:
            sku = Sku(key, resolve_settings(self.data, key[0], key[1], self.default_group))
            sku.refill = sku.s.refill_warehouse_id  # None when not in warehouses (§5.9)
            self.skus[key] = sku
        return self.skus[key]

    def fenced(self, sku: Sku, date: int) -> bool:
        """§5.4 coverage time fence: requirements dated after T0 + fence are ignored."""
        return date > self.t0 + sku.s.coverage_time_fence_days

    def choose_bom(self, item: Any, wh: Any, on: int) -> Row | None:
        """§5.6: the BOM of the item valid on `on` (valid_from <= on <= valid_to,
        NULL = open), warehouse NULL or the SKU's; warehouse-specific before
        generic; then lowest bom_id."""
        candidates: list[tuple[int, str, Row]] = []
        for bom in self.data.boms.values():
            if bom["item_id"] != item:
                continue
            if bom["warehouse_id"] is not None and bom["warehouse_id"] != wh:
                continue
            vf, vt = to_day(bom["valid_from"]), to_day(bom["valid_to"])
            if vf is not None and on < vf:
                continue
            if vt is not None and on > vt:
                continue
            specific = 0 if bom["warehouse_id"] is not None else 1
            candidates.append((specific, str(bom["bom_id"]), bom))
        if not candidates:
            return None
        candidates.sort(key=lambda c: (c[0], c[1]))
        return candidates[0][2]

    def firmed_source(self, order: Order, sku: Sku) -> Any:
        """§5.6: a firmed transfer draws on its from_warehouse_id, else the SKU's
        refill warehouse, else none."""
        return order.from_warehouse_id if order.from_warehouse_id is not None else sku.refill

    # ------------------------------------------------------------------ §5.2 SKU set

    def collect_named_skus(self) -> None:
        """§5.2: every (item, warehouse) an input row names, whatever its quantity,
        if the row passed the checks of §5.9."""
        d = self.data
        named: list[SkuKey] = []
        named += [(r["item_id"], r["warehouse_id"]) for r in d.item_coverage.values()]
        named += [(r["item_id"], r["warehouse_id"]) for r in d.on_hand]
        named += [(r["item_id"], r["warehouse_id"]) for r in d.sales_lines]
        named += [(r["item_id"], r["warehouse_id"]) for r in d.purchase_lines]
        named += [(r["item_id"], r["warehouse_id"]) for r in d.production_orders]
        named += [(r["component_item_id"], r["warehouse_id"]) for r in d.production_lines]
        for r in d.transfer_lines:
            named.append((r["item_id"], r["from_warehouse_id"]))
            named.append((r["item_id"], r["to_warehouse_id"]))
        # §5.4 "Zero-quantity forecast lines play no part at all": a forecast
        # (summed per SKU and date) of zero names no SKU (zero_qty_rows_name_sku).
        for (item, wh, _day), qty in self.forecast_sums().items():
            if qty > EPS:
                named.append((item, wh))
        for r in d.firmed:
            named.append((r["item_id"], r["warehouse_id"]))
            if r["order_type"] == "transfer" and r["from_warehouse_id"] is not None:
                named.append((r["item_id"], r["from_warehouse_id"]))
        for key in named:
            self.get_sku(key)

    def forecast_sums(self) -> dict[tuple[Any, Any, int], float]:
        """§4: several forecast lines of one SKU and date add up."""
        sums: dict[tuple[Any, Any, int], float] = {}
        for r in self.data.forecasts:
            day = row_day(r, "forecast_date")
            k = (r["item_id"], r["warehouse_id"], day)
            sums[k] = sums.get(k, 0.0) + num(r["qty"])
        return sums

    # ------------------------------------------------------------------ §5.3 graph

    def make_firmed_orders(self) -> None:
        for r in self.data.firmed:
            key = (r["item_id"], r["warehouse_id"])
            sku = self.get_sku(key)
            if num(r["qty"]) <= EPS:
                # zero quantities are silently nothing (§5.9): the row names its
                # SKU(s) but is no receipt, draws on nothing, explodes nothing
                continue
            order = Order(
                planned_order_id=str(r["planned_order_id"]),
                sku=key,
                # §5.9: a NULL or unknown order_type was left out as INVALID_ROW
                order_type=str(r["order_type"]),
                qty=num(r["qty"]),
                order_date=row_day(r, "order_date"),
                due_date=self.eff(row_day(r, "due_date")),
                requirement_date=self.eff(row_day(r, "due_date")),
                firmed_input=True,
                from_warehouse_id=r["from_warehouse_id"],
            )
            sku.firmed_orders.append(order)

    def edges_of(self, sku: Sku) -> set[SkuKey]:
        """§5.3: edges run from a parent SKU to the SKUs its orders draw on."""
        out: set[SkuKey] = set()
        # from a production-type SKU to the component SKU (the line's warehouse,
        # NULL = the parent's) of every line of every BOM that may serve it
        # (the item's BOMs whose warehouse_id is NULL or the SKU's, any validity)
        if sku.s.order_type == "production":
            for bom in self.data.boms.values():
                if bom["item_id"] != sku.item:
                    continue
                if bom["warehouse_id"] is not None and bom["warehouse_id"] != sku.wh:
                    continue
                for line in self.data.bom_lines.get(bom["bom_id"], []):
                    out.add(component_sku(line, sku))
        # from a transfer-type SKU to its refill-warehouse SKU
        if sku.s.order_type == "transfer" and sku.refill is not None:
            out.add((sku.item, sku.refill))
        # from a SKU with firmed planned orders to the SKUs those orders draw on
        for order in sku.firmed_orders:
            if order.order_type == "production":
                chosen = self.choose_bom(sku.item, sku.wh, order.order_date)
                if chosen is not None:
                    for line in self.data.bom_lines.get(chosen["bom_id"], []):
                        out.add(component_sku(line, sku))
            elif order.order_type == "transfer":
                src = self.firmed_source(order, sku)
                if src is not None:
                    out.add((sku.item, src))
        return out

    def build_graph(self) -> None:
        # closure of the SKU set under the graph (§5.2)
        todo = list(self.skus)
        while todo:
            key = todo.pop()
            if key in self.edges:
                continue
            targets = self.edges_of(self.skus[key])
            self.edges[key] = targets
            for t in targets:
                if t not in self.skus:
                    self.get_sku(t)
                todo.append(t)

        # strongly connected components (plain reachability; slow but obvious)
        reach: dict[SkuKey, set[SkuKey]] = {}
        for start in self.skus:
            seen: set[SkuKey] = set()
            stack = list(self.edges[start])
            while stack:
                k = stack.pop()
                if k in seen:
                    continue
                seen.add(k)
                stack.extend(self.edges[k])
            reach[start] = seen
        done: set[SkuKey] = set()
        cycles: list[list[SkuKey]] = []
        for k in sorted(self.skus, key=_sku_sort):
            if k in done:
                continue
            comp = [k] + [o for o in reach[k] if o != k and k in reach[o]]
            done.update(comp)
            # a component of two or more SKUs, or a SKU with an edge to itself
            if len(comp) >= 2 or k in self.edges[k]:
                cycles.append(sorted(comp, key=_sku_sort))
        for i, comp in enumerate(cycles):
            for k in comp:
                self.cycle_of[k] = i
            names = ",".join(f"{item}@{wh}" for item, wh in comp)
            self.messages.append(
                PlanMessage(
                    "error",
                    "BOM_CYCLE",
                    None,
                    None,
                    f"cycle in the SKU graph (BOM / transfer links): {names}; edges inside "
                    "the cycle carry no dependent demand",
                )
            )

        # §5.3 low-level code: the length of the longest path to the SKU from a
        # SKU with no parent, edges inside a cycle left out.
        parents: dict[SkuKey, list[SkuKey]] = {k: [] for k in self.skus}
        for p, targets in self.edges.items():
            for c in targets:
                if not self.same_cycle(p, c):
                    parents[c].append(p)
        llc: dict[SkuKey, int] = {}

        def level(k: SkuKey) -> int:
            if k not in llc:
                # iterative longest path, the graph without cycle edges is a DAG
                stack = [k]
                while stack:
                    top = stack[-1]
                    missing = [p for p in parents[top] if p not in llc]
                    if missing:
                        stack.extend(missing)
                        continue
                    stack.pop()
                    llc[top] = max((llc[p] + 1 for p in parents[top]), default=0)
            return llc[k]

        for k, sku in self.skus.items():
            sku.llc = level(k)

    def same_cycle(self, a: SkuKey, b: SkuKey) -> bool:
        return a in self.cycle_of and self.cycle_of.get(b) == self.cycle_of[a]

    # ------------------------------------------------------------------ §5.4

    def add_requirement(self, req: Requirement) -> bool:
        """Adds a requirement unless it is zero (§5.9 "zero quantities are
        silently nothing") or beyond its SKU's coverage time fence (§5.4)."""
        if req.qty <= EPS:
            return False
        sku = self.skus[req.sku]
        if self.fenced(sku, req.date):
            return False
        sku.requirements.append(req)
        return True

    def add_receipt(self, rc: Receipt) -> None:
        if rc.qty <= EPS:  # zero quantities are silently nothing (§5.9)
            return
        rc.remaining = rc.qty
        self.skus[rc.sku].receipts.append(rc)

    def collect_requirements_and_receipts(self) -> None:
        d, t0 = self.data, self.t0

        # on-hand: several rows of one SKU add up; positive = receipt, negative =
        # requirement for its absolute value, both at T0.
        totals: dict[SkuKey, float] = {}
        for r in d.on_hand:
            k = (r["item_id"], r["warehouse_id"])
            totals[k] = totals.get(k, 0.0) + num(r["qty"])
        for k, total in totals.items():
            ref = f"OH:{fmt_value(k[0])}/{fmt_value(k[1])}"
            if total > EPS:
                self.add_receipt(Receipt(k, "oh", ref, total, t0, CLASS_ON_HAND))
            elif total < -EPS:
                self.add_requirement(Requirement(k, "oh", ref, -total, t0))

        # sales lines (so)
        for r in d.sales_lines:
            k = (r["item_id"], r["warehouse_id"])
            ref = f"SO:{fmt_value(r['order_id'])}/{fmt_value(r['line_no'])}"
            self.add_requirement(
                Requirement(
                    k,
                    "so",
                    ref,
                    num(r["qty"]),
                    self.eff(row_day(r, "requested_date")),
                    priority=num(r["priority"]),
                )
            )

        # production lines (prdl)
        for r in d.production_lines:
            k = (r["component_item_id"], r["warehouse_id"])
            ref = f"PRDL:{fmt_value(r['order_id'])}/{fmt_value(r['line_no'])}"
            self.add_requirement(
                Requirement(k, "prdl", ref, num(r["qty"]), self.eff(row_day(r, "required_date")))
            )

        # transfer lines: issue (tri) at from_warehouse_id on ship_date,
        # receipt (trr) at to_warehouse_id on receive_date
        for r in d.transfer_lines:
            tail = f"{fmt_value(r['order_id'])}/{fmt_value(r['line_no'])}"
            self.add_requirement(
                Requirement(
                    (r["item_id"], r["from_warehouse_id"]),
                    "tri",
                    f"TRI:{tail}",
                    num(r["qty"]),
                    self.eff(row_day(r, "ship_date")),
                )
            )
            self.add_receipt(
                Receipt(
                    (r["item_id"], r["to_warehouse_id"]),
                    "trr",
                    f"TRR:{tail}",
                    num(r["qty"]),
                    self.eff(row_day(r, "receive_date")),
                    CLASS_EXISTING,
                )
            )

        # purchase lines (po) on delivery_date
        for r in d.purchase_lines:
            k = (r["item_id"], r["warehouse_id"])
            ref = f"PO:{fmt_value(r['order_id'])}/{fmt_value(r['line_no'])}"
            self.add_receipt(
                Receipt(
                    k,
                    "po",
                    ref,
                    num(r["qty"]),
                    self.eff(row_day(r, "delivery_date")),
                    CLASS_EXISTING,
                )
            )

        # production orders (prd) on end_date
        for r in d.production_orders:
            k = (r["item_id"], r["warehouse_id"])
            ref = f"PRD:{fmt_value(r['order_id'])}"
            self.add_receipt(
                Receipt(
                    k, "prd", ref, num(r["qty"]), self.eff(row_day(r, "end_date")), CLASS_EXISTING
                )
            )

        # firmed planned orders (pl) on due_date
        for sku in self.skus.values():
            for order in sku.firmed_orders:
                self.add_receipt(
                    Receipt(
                        sku.key,
                        "pl",
                        f"PL:{order.planned_order_id}",
                        order.qty,
                        order.due_date,
                        CLASS_FIRMED,
                        order=order,
                    )
                )

        # safety stock (ss): one requirement of safety_stock_qty at T0 (today)
        # or at T0 plus the SKU's lead time (lead_time)
        for sku in self.skus.values():
            if sku.s.safety_stock_qty > EPS:
                date = t0 if sku.s.safety_stock_fulfillment == "today" else sku.plus_lead(t0)
                self.add_requirement(
                    Requirement(
                        sku.key,
                        "ss",
                        f"SS:{fmt_value(sku.item)}/{fmt_value(sku.wh)}",
                        sku.s.safety_stock_qty,
                        date,
                    )
                )

        # forecasts (fc)
        self.collect_forecasts()

    def collect_forecasts(self) -> None:
        """§5.4 Forecasts."""
        t0 = self.t0
        lines_by_sku: dict[SkuKey, list[tuple[int, float]]] = {}
        for (item, wh, day), qty in self.forecast_sums().items():
            # zero-quantity lines play no part at all; lines before T0 are dropped
            if qty <= EPS or day < t0:
                continue
            lines_by_sku.setdefault((item, wh), []).append((day, qty))
        for key, lines in lines_by_sku.items():
            sku = self.skus[key]
            if not sku.s.include_forecast:
                continue
            lines.sort()
            for i, (day, qty) in enumerate(lines):
                if sku.s.forecast_reduction == "transactions_period":
                    # period: from its date up to, not including, the next later
                    # forecast line's date (the last line's period is 30 days)
                    end = lines[i + 1][0] if i + 1 < len(lines) else day + 30
                    sold = 0.0
                    for r in self.data.sales_lines:
                        if (r["item_id"], r["warehouse_id"]) != key:
                            continue
                        sd = self.eff(row_day(r, "requested_date"))
                        if day <= sd < end:
                            sold += num(r["qty"])
                    qty = max(qty - sold, 0.0)  # reduced, not below zero
                ref = f"FC:{fmt_value(key[0])}/{fmt_value(key[1])}/{iso(day)}"
                self.add_requirement(Requirement(key, "fc", ref, qty, day))

    # ------------------------------------------------------------------ §5.5 netting

    def net_sku(self, sku: Sku) -> None:
        s, t0 = sku.s, self.t0
        reqs = sorted(sku.requirements, key=Requirement.walk_key)
        sku.requirements = reqs
        # "T0 + lead time" with the SKU's lead time and calendar
        t0_lead = sku.plus_lead(t0)

        def reach(r: int) -> int:
            return max(r, t0_lead) + s.negative_days

        def may_take(a: int, r: int) -> bool:
            # a <= max(r, T0 + lead time) + negative_days and, when positive_days
            # is set, r - a <= positive_days
            if a > reach(r):
                return False
            return not (s.positive_days is not None and r - a > s.positive_days)

        def takes_of(
            r: int, qty: float, remaining: dict[int, float]
        ) -> tuple[list[tuple[Receipt, float]], float]:
            """FIFO takes of one requirement over `remaining` (receipt id -> qty left).
            Returns the takes and the shortfall."""
            need = qty
            taken: list[tuple[Receipt, float]] = []
            for rc in sorted(sku.receipts, key=Receipt.sort_key):
                if need <= EPS:
                    break
                left = remaining[id(rc)]
                if left <= EPS or not may_take(rc.netting_date, r):
                    continue
                q = min(left, need)
                remaining[id(rc)] = left - q
                need -= q
                taken.append((rc, q))
            return taken, (need if need > EPS else 0.0)

        def take(req: Requirement) -> None:
            """The requirement takes FIFO from the receipts; each take is one
            pegging row; what is still missing is the shortfall."""
            remaining = {id(rc): rc.remaining for rc in sku.receipts}
            need = req.qty - sum(q for _, q in req.takes)
            taken, shortfall = takes_of(req.date, need, remaining)
            for rc, q in taken:
                rc.remaining = remaining[id(rc)]
                rc.taken_by.append((req, q))
                req.takes.append((rc, q))
                self.pegging.append(
                    {
                        "item_id": sku.item,
                        "warehouse_id": sku.wh,
                        "supply_kind": rc.kind,
                        "supply_ref": rc.ref,
                        "supply_date": iso(rc.netting_date),
                        "demand_kind": req.kind,
                        "demand_ref": req.ref,
                        "demand_date": iso(req.date),
                        "qty": q,
                    }
                )
            req.shortfall = shortfall

        def projected(r: int, walked: float) -> float:
            # min_max: total quantity of all receipts whose netting date is at most
            # max(r, T0 + lead time) + negative_days (planned orders included)
            # minus the total quantity of the requirements walked so far
            return sum(rc.qty for rc in sku.receipts if rc.netting_date <= reach(r)) - walked

        def min_max_check(r: int, shortfall: float, walked: float) -> None:
            p = projected(r, walked)
            if not (shortfall > EPS or p < s.min_qty - EPS):
                return
            m = s.multiple_qty
            if m > 0:
                # the largest multiple of m with p + q <= max_qty, or, if
                # p + q < min_qty, the next larger multiple
                q = math.floor((s.max_qty - p + EPS) / m) * m
                if p + q < s.min_qty - EPS:
                    q += m
                # at least the shortfall rounded up to a multiple of m
                q = max(q, round_up_multiple(shortfall, m) if shortfall > EPS else 0.0)
            else:
                q = max(s.max_qty - p, shortfall)
            if q > EPS:  # no order when q is not above zero
                self.create_orders(sku, q, r)

        walked = 0.0
        if s.coverage_code == "min_max":
            # the check before the first requirement (r = T0, nothing walked),
            # for every min_max SKU, with or without requirements
            min_max_check(t0, 0.0, 0.0)

        for i, req in enumerate(reqs):
            r = req.date
            take(req)
            walked += req.qty
            if s.coverage_code == "requirement":
                # a shortfall gets planned orders for exactly that quantity, due r
                if req.shortfall > EPS:
                    self.create_orders(sku, req.shortfall, r)
                    take(req)
            elif s.coverage_code == "period":
                if req.shortfall > EPS:
                    # plus the shortfalls of the later requirements (walk order)
                    # dated before r + coverage_period_days, found by performing
                    # their takes on a copy of the remaining quantities, as if the
                    # new order did not exist
                    total = req.shortfall
                    copy = {id(rc): rc.remaining for rc in sku.receipts}
                    for later in reqs[i + 1 :]:
                        if later.date >= r + s.coverage_period_days:
                            continue
                        _, short = takes_of(later.date, later.qty, copy)
                        total += short
                    self.create_orders(sku, total, r)
                    take(req)
            elif s.coverage_code == "min_max":
                min_max_check(r, req.shortfall, walked)
                if req.shortfall > EPS:
                    take(req)  # the requirement then takes from the new orders
            # manual: no orders; the requirement stays short

    # ------------------------------------------------------------------ §5.6 orders

    def split_quantity(self, sku: Sku, q: float) -> list[float]:
        """§5.6 Quantities."""
        s = sku.s
        parts: list[float] = []
        rest = q
        if s.max_order_qty > 0:
            # while more than max_order_qty remains, one order of exactly max
            while rest > s.max_order_qty + EPS:
                parts.append(s.max_order_qty)
                rest -= s.max_order_qty
        if rest > EPS:
            # the rest, one more order, raised to min_order_qty and rounded up
            # to a multiple of multiple_qty
            last = max(rest, s.min_order_qty)
            if s.multiple_qty > 0:
                last = round_up_multiple(last, s.multiple_qty)
            parts.append(last)
        return parts

    def create_orders(self, sku: Sku, q: float, r: int) -> None:
        """A needed quantity q, due r, becomes planned orders (§5.6)."""
        s, t0 = sku.s, self.t0
        order_type = sku.planned_type()
        for part in self.split_quantity(sku, q):
            sku.planned_count += 1
            oid = f"{fmt_value(sku.item)}/{fmt_value(sku.wh)}/{sku.planned_count}"
            # Dates: due = r; order date = due minus lead time; the freeze fence
            due = r
            order_date = sku.minus_lead(due)
            freeze = t0 + s.freeze_time_fence_days
            if order_date < freeze:
                order_date = freeze
                due = sku.plus_lead(order_date)
            firmed = 1 if order_date < t0 + s.firming_time_fence_days else 0
            order = Order(
                planned_order_id=oid,
                sku=sku.key,
                order_type=order_type,
                qty=part,
                order_date=order_date,
                due_date=due,
                requirement_date=r,
                firmed_input=False,
                firmed_flag=firmed,
                from_warehouse_id=sku.refill if order_type == "transfer" else None,
                vendor_id=s.vendor_id if order_type == "purchase" else None,
            )
            self.planned_orders.append(order)
            # for netting the order counts at r
            self.add_receipt(
                Receipt(
                    sku.key,
                    "pl",
                    f"PL:{oid}",
                    part,
                    r,
                    CLASS_PLANNED,
                    seq=sku.planned_count,
                    order=order,
                )
            )
            self.explode(sku, order)

    def explode(self, sku: Sku, order: Order) -> None:
        """§5.6 Explosion of a planned or firmed planned order."""
        o = order.order_date
        if order.order_type == "production":
            # a firmed order uses its own order_date (before clamping) to pick the BOM
            bom = self.choose_bom(sku.item, sku.wh, o)
            if bom is None:
                self.warn(
                    "NO_BOM",
                    sku.item,
                    sku.wh,
                    f"{order.planned_order_id}: no BOM of item {sku.item!r} valid on "
                    f"{iso(o)} for warehouse {sku.wh!r}; no dependent demand",
                )
                return
            order.bom_id = bom["bom_id"]
            batch = num(bom["batch_qty"], 1.0)
            for line in self.data.bom_lines.get(bom["bom_id"], []):
                child = component_sku(line, sku)
                if self.same_cycle(sku.key, child):
                    continue  # edges inside a cycle carry no dependent demand
                qty = order.qty / batch * num(line["qty_per"]) * (
                    1 + num(line["scrap_pct"]) / 100
                ) + num(line["scrap_const"])
                req = Requirement(
                    child,
                    "pl",
                    f"PL:{order.planned_order_id}/{fmt_value(line['line_no'])}",
                    qty,
                    self.eff(o),
                )
                if self.add_requirement(req):
                    order.caused.append(req)
        elif order.order_type == "transfer":
            if order.firmed_input:
                src = self.firmed_source(order, sku)
                if src is None:
                    self.warn(
                        "NO_REFILL_WAREHOUSE",
                        sku.item,
                        sku.wh,
                        f"firmed transfer {order.planned_order_id}: no "
                        "from_warehouse_id and no valid refill warehouse; no demand",
                    )
                    return
            else:
                src = sku.refill
            child = (sku.item, src)
            if self.same_cycle(sku.key, child):
                return  # edges inside a cycle carry no dependent demand
            req = Requirement(child, "pl", f"PL:{order.planned_order_id}", order.qty, self.eff(o))
            if self.add_requirement(req):
                order.caused.append(req)
        # purchase orders explode nothing

    # ------------------------------------------------------------------ §5.7 delays

    def compute_delays(self, order_of_skus: list[Sku]) -> list[Row]:
        rows: list[Row] = []
        # bottom-up: highest low-level code first
        for sku in reversed(order_of_skus):
            for rc in sku.receipts:
                if rc.order is None or rc.order.order_type == "purchase":
                    # on-hand and existing orders: their effective date; planned or
                    # firmed purchase orders: their (effective) due date
                    rc.available = (
                        rc.netting_date if rc.order is None else self.eff(rc.order.due_date)
                    )
                    continue
                # production or transfer: the later of its due date and, for each
                # caused requirement that is delayed, its futures date plus the
                # SKU's lead time (never, if one of them is never covered)
                avail = self.eff(rc.order.due_date)
                for req in rc.order.caused:
                    if req.futures >= NEVER:
                        avail = NEVER
                        break
                    if req.futures > req.date:
                        avail = max(avail, sku.plus_lead(req.futures))
                rc.available = avail
            for req in sku.requirements:
                # the latest available date among the receipts it took from, or
                # never if it has a shortfall or took from a never-available receipt
                if req.shortfall > EPS:
                    req.futures = NEVER
                else:
                    req.futures = max((rc.available for rc, _ in req.takes), default=req.date)
                delayed = req.futures >= NEVER or req.futures > req.date
                if delayed and req.kind in DELAY_KINDS:
                    never = req.futures >= NEVER
                    rows.append(
                        {
                            "demand_kind": req.kind,
                            "demand_ref": req.ref,
                            "item_id": sku.item,
                            "warehouse_id": sku.wh,
                            "requirement_date": iso(req.date),
                            "futures_date": None if never else iso(req.futures),
                            "delay_days": None if never else req.futures - req.date,
                        }
                    )
        return rows

    # ------------------------------------------------------------------ §5.8 actions

    def action_messages(self, order_of_skus: list[Sku]) -> list[Row]:
        rows: list[Row] = []
        for sku in order_of_skus:
            for rc in sku.receipts:
                if rc.kind not in ("po", "prd", "trr"):
                    continue
                # only receipts whose effective date is inside the coverage fence
                if rc.netting_date > self.t0 + sku.s.coverage_time_fence_days:
                    continue
                base = {
                    "supply_kind": rc.kind,
                    "supply_ref": rc.ref,
                    "item_id": sku.item,
                    "warehouse_id": sku.wh,
                    "receipt_date": iso(rc.netting_date),
                    "receipt_qty": rc.qty,
                }
                taken = sum(q for _, q in rc.taken_by)
                if taken <= EPS:
                    rows.append(
                        {**base, "action": "cancel", "suggested_date": None, "suggested_qty": 0.0}
                    )
                    continue
                if taken < rc.qty - EPS:
                    rows.append(
                        {
                            **base,
                            "action": "decrease",
                            "suggested_date": None,
                            "suggested_qty": taken,
                        }
                    )
                e = min(req.date for req, _ in rc.taken_by)
                if e < rc.netting_date:
                    rows.append(
                        {
                            **base,
                            "action": "advance",
                            "suggested_date": iso(e),
                            "suggested_qty": None,
                        }
                    )
                elif e > rc.netting_date + sku.s.postpone_tolerance_days:
                    rows.append(
                        {
                            **base,
                            "action": "postpone",
                            "suggested_date": iso(e),
                            "suggested_qty": None,
                        }
                    )
        return rows

    # ------------------------------------------------------------------ the run

    def run(self) -> dict[str, list[Row]]:
        self.collect_named_skus()
        self.make_firmed_orders()
        self.build_graph()

        # §5.6: a transfer SKU without a valid refill warehouse: one warning
        for key in sorted(self.skus, key=_sku_sort):
            sku = self.skus[key]
            if sku.s.order_type == "transfer" and sku.refill is None:
                self.warn(
                    "NO_REFILL_WAREHOUSE",
                    sku.item,
                    sku.wh,
                    f"SKU {sku.item}@{sku.wh} has order type transfer but no valid "
                    "refill_warehouse_id in item_coverage; purchase orders are planned",
                )

        self.collect_requirements_and_receipts()

        # §5.3: SKUs are planned in low-level-code order, ties by (item, warehouse)
        order_of_skus = sorted(self.skus.values(), key=lambda k: (k.llc, *_sku_sort(k.key)))
        for sku in order_of_skus:
            for order in sku.firmed_orders:
                self.explode(sku, order)
            self.net_sku(sku)

        delays = self.compute_delays(order_of_skus)
        actions = self.action_messages(order_of_skus)

        planned = [
            {
                "planned_order_id": o.planned_order_id,
                "item_id": o.sku[0],
                "warehouse_id": o.sku[1],
                "order_type": o.order_type,
                "qty": float(o.qty),
                "order_date": iso(o.order_date),
                "due_date": iso(o.due_date),
                "requirement_date": iso(o.requirement_date),
                "from_warehouse_id": o.from_warehouse_id,
                "vendor_id": o.vendor_id,
                "bom_id": o.bom_id,
                "firmed": int(o.firmed_flag),
            }
            for o in self.planned_orders
        ]
        for row in self.pegging:
            row["qty"] = float(row["qty"])
        return {
            "planned_orders": planned,
            "pegging": self.pegging,
            "action_messages": actions,
            "delay_messages": delays,
            "plan_messages": [m.as_row() for m in self.messages],
        }


def row_day(row: Row, col: str) -> int:
    """A date column that §5.9 does not let be NULL (the row would have been
    left out as INVALID_ROW), as an ordinal."""
    day = to_day(row[col])
    assert day is not None, (col, row)
    return day


def component_sku(line: Row, parent: Sku) -> SkuKey:
    """§5.3/§5.6: a BOM line's component SKU: the line's warehouse, NULL = the parent's."""
    wh = line["warehouse_id"] if line["warehouse_id"] is not None else parent.wh
    return (line["component_item_id"], wh)


def round_up_multiple(x: float, m: float) -> float:
    """The smallest multiple of m not below x minus 1e-9 (§5.6)."""
    return math.ceil((x - 1e-9) / m) * m


def _sku_sort(key: SkuKey) -> tuple[str, str]:
    # refs and ids compare as plain strings (code-point order)
    return (str(key[0]), str(key[1]))


def reference_plan(
    input: dict[str, list[dict]],
    plan_date: str,
    default_group: str | None = None,
) -> dict[str, list[dict]]:
    """Plans `input` (§4 input tables, examples' format) by the rules of SPEC §5.

    Returns the result tables planned_orders, pegging, action_messages,
    delay_messages and plan_messages, rows without `run_id`.
    """
    return ReferencePlanner(input, plan_date, default_group).run()
