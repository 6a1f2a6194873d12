"""The planner's views of a kept run (SPEC §3): net requirements, pegging trees
up and down, delay paths and the report, from the run's result tables.

:class:`RunPlanRows` gives a run's rows to :mod:`masterplan.contract.explain`,
the same logic the connector runs on the SCM database, so that a view reads
the same whether it is asked of the server or of the written plan. Refs are
found through the run's :class:`~masterplan.server.pegging.PeggingIndex`
(binary searches); the rows of one SKU by a vectorised scan of the tables a
view reads, which costs milliseconds on a 100k-SKU plan.

Receipts' whole quantities and the SKUs' safety stock, min and max come from
the plan's data set when it is still the version the run planned; after a
later upload they are left out (a receipt then shows what was taken from
it), as they are in the database once an input row is gone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np

from masterplan.contract import explain
from masterplan.contract.coded import as_array
from masterplan.contract.columns import Table
from masterplan.contract.explain import RECEIPT_SOURCES, PegRow, ref_part
from masterplan.contract.views import (
    ActionMessageRow,
    DelayMessageRow,
    DelayPath,
    NetRequirements,
    PlanMessageRow,
    PlannedOrderRow,
    PlanReport,
    RunInfo,
)
from masterplan.server.errors import FailedPrecondition, InvalidArgument, NotFound
from masterplan.server.pegging import PeggingIndex
from masterplan.server.store import RunRecord, TenantStore

__all__ = ["RunPlanRows", "delay_path", "net_requirements", "plan_report", "run_info", "run_rows"]

T = TypeVar("T")


def _opt_day(value: Any) -> dt.date | None:
    """A date column's value (datetime64) as a date; None for NaT."""
    v = np.datetime64(value, "D")
    if np.isnat(v):
        return None
    day: dt.date = v.astype(dt.date)
    return day


def _day(value: Any) -> dt.date:
    day = _opt_day(value)
    assert day is not None, "a date the result tables never leave empty"
    return day


def _opt_float(value: object) -> float | None:
    f = float(value)  # type: ignore[arg-type]
    return None if np.isnan(f) else f


def _opt_str(value: object) -> str | None:
    return None if value is None or value is np.ma.masked or value != value else str(value)


class _Rows:
    """One result or input table as plain arrays, with row lookups."""

    def __init__(self, table: Mapping[str, object]) -> None:
        self.c: dict[str, np.ndarray] = {k: as_array(v) for k, v in table.items()}  # type: ignore[arg-type]
        self.n = len(next(iter(self.c.values()))) if self.c else 0
        self._sorted: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def where(self, **equal: str | None) -> np.ndarray:
        """Rows whose columns equal the values given (None: any)."""
        mask = np.ones(self.n, dtype=bool)
        for col, value in equal.items():
            if value is not None and self.n:
                mask &= np.asarray(self.c[col] == value, dtype=bool)
        return np.flatnonzero(mask)

    def find(self, col: str, value: str) -> np.ndarray:
        """Rows whose ``col`` is ``value``, by binary search (sorted once)."""
        if col not in self._sorted:
            keys = np.asarray(self.c[col]).astype(object)
            order = np.argsort(keys, kind="stable")
            self._sorted[col] = (order, keys[order])
        order, keys = self._sorted[col]
        lo, hi = np.searchsorted(keys, value, "left"), np.searchsorted(keys, value, "right")
        return order[lo:hi]


class RunPlanRows:
    """:class:`~masterplan.contract.explain.PlanRows` of a kept run.

    Args:
        results: The run's result tables.
        pegging: The run's pegging index.
        plan_date: The run's ``T0``.
        inputs: The data set the run planned, when the plan still holds that
            version; None otherwise.
    """

    def __init__(
        self,
        results: Mapping[str, Mapping[str, object]],
        pegging: PeggingIndex,
        plan_date: dt.date,
        inputs: Mapping[str, Table] | None,
    ) -> None:
        self._results = results
        self._index = pegging
        self._t0 = plan_date
        self._inputs = inputs
        self._tables: dict[str, _Rows] = {}

    @property
    def plan_date(self) -> dt.date:
        return self._t0

    def _t(self, name: str) -> _Rows:
        if name not in self._tables:
            source = self._results if name in self._results else (self._inputs or {})
            self._tables[name] = _Rows(source.get(name, {}))
        return self._tables[name]

    # -- pegging

    def _peg(self, rows: np.ndarray) -> list[PegRow]:
        p = self._t("pegging").c
        out = [
            PegRow(
                str(p["item_id"][i]),
                str(p["warehouse_id"][i]),
                str(p["supply_kind"][i]),
                str(p["supply_ref"][i]),
                _day(p["supply_date"][i]),
                str(p["demand_kind"][i]),
                str(p["demand_ref"][i]),
                _day(p["demand_date"][i]),
                float(p["qty"][i]),
            )
            for i in np.asarray(rows, dtype=np.int64)
        ]
        out.sort(key=lambda r: (r.supply_date, r.supply_ref, r.demand_date, r.demand_ref))
        return out

    def _of_sku(self, rows: np.ndarray, item: str | None, wh: str | None) -> np.ndarray:
        if item is None or not len(rows):
            return rows
        p = self._t("pegging").c
        keep = (p["item_id"][rows] == item) & (p["warehouse_id"][rows] == wh)
        return rows[np.asarray(keep, dtype=bool)]

    def takes(
        self, demand_ref: str, item_id: str | None = None, warehouse_id: str | None = None
    ) -> list[PegRow]:
        rows = self._index.demand_rows(demand_ref)
        return self._peg(self._of_sku(rows, item_id, warehouse_id))

    def served(
        self, supply_ref: str, item_id: str | None = None, warehouse_id: str | None = None
    ) -> list[PegRow]:
        rows = self._index.supply_rows(supply_ref)
        return self._peg(self._of_sku(rows, item_id, warehouse_id))

    def demands_named(self, refs: Sequence[str], prefix: str | None) -> list[PegRow]:
        parts = [self._index.demand_rows(r) for r in refs]
        if prefix is not None:
            parts.append(self._index.demand_prefix_rows(prefix))
        rows = np.unique(np.concatenate(parts)) if parts else np.empty(0, np.int64)
        return self._peg(rows)

    def supplies_named(self, refs: Sequence[str]) -> list[PegRow]:
        parts = [self._index.supply_rows(r) for r in refs]
        return self._peg(np.unique(np.concatenate(parts)) if parts else np.empty(0, np.int64))

    def sku_pegging(self, item_id: str, warehouse_id: str) -> list[PegRow]:
        return self._peg(self._t("pegging").where(item_id=item_id, warehouse_id=warehouse_id))

    # -- result rows

    def _planned(self, rows: np.ndarray) -> list[PlannedOrderRow]:
        c = self._t("planned_orders").c
        return [
            PlannedOrderRow(
                str(c["planned_order_id"][i]),
                str(c["item_id"][i]),
                str(c["warehouse_id"][i]),
                str(c["order_type"][i]),
                float(c["qty"][i]),
                _day(c["order_date"][i]),
                _day(c["due_date"][i]),
                _day(c["requirement_date"][i]),
                _opt_str(c["from_warehouse_id"][i]),
                _opt_str(c["vendor_id"][i]),
                _opt_str(c["bom_id"][i]),
                bool(c["firmed"][i]),
            )
            for i in rows
        ]

    def planned_orders(self, item_id: str, warehouse_id: str) -> list[PlannedOrderRow]:
        return self._planned(
            self._t("planned_orders").where(item_id=item_id, warehouse_id=warehouse_id)
        )

    def order(self, planned_order_id: str) -> PlannedOrderRow | None:
        found = self._planned(self._t("planned_orders").find("planned_order_id", planned_order_id))
        if found:
            return found[0]
        if self._inputs is None:
            return None
        f = self._t("firmed_planned_orders")
        rows = f.find("planned_order_id", planned_order_id) if f.n else np.empty(0, np.int64)
        for i in rows:
            c = f.c
            order, due = _opt_day(c["order_date"][i]), _opt_day(c["due_date"][i])
            if order is None or due is None:
                continue
            return PlannedOrderRow(
                planned_order_id,
                str(c["item_id"][i]),
                str(c["warehouse_id"][i]),
                _opt_str(c["order_type"][i]) or "",
                float(c["qty"][i]),
                order,
                due,
                due,
                _opt_str(c["from_warehouse_id"][i]),
                None,
                None,
                True,
            )
        return None

    def _listed(
        self, name: str, make: Callable[[dict[str, np.ndarray], int], T], rows: np.ndarray
    ) -> list[T]:
        c = self._t(name).c
        return [make(c, int(i)) for i in rows]

    def action_messages(
        self, item_id: str | None = None, warehouse_id: str | None = None
    ) -> list[ActionMessageRow]:
        def make(c: dict[str, np.ndarray], i: int) -> ActionMessageRow:
            return ActionMessageRow(
                str(c["supply_kind"][i]),
                str(c["supply_ref"][i]),
                str(c["item_id"][i]),
                str(c["warehouse_id"][i]),
                str(c["action"][i]),
                _day(c["receipt_date"][i]),
                float(c["receipt_qty"][i]),
                _opt_day(c["suggested_date"][i]),
                _opt_float(c["suggested_qty"][i]),
            )

        t = self._t("action_messages")
        return self._listed(
            "action_messages", make, t.where(item_id=item_id, warehouse_id=warehouse_id)
        )

    @staticmethod
    def _delay(c: dict[str, np.ndarray], i: int) -> DelayMessageRow:
        days = c["delay_days"][i]
        futures = _opt_day(c["futures_date"][i])
        return DelayMessageRow(
            str(c["demand_kind"][i]),
            str(c["demand_ref"][i]),
            str(c["item_id"][i]),
            str(c["warehouse_id"][i]),
            _day(c["requirement_date"][i]),
            futures,
            None if futures is None else int(days),
        )

    def delay_messages(
        self, item_id: str | None = None, warehouse_id: str | None = None
    ) -> list[DelayMessageRow]:
        t = self._t("delay_messages")
        return self._listed(
            "delay_messages", self._delay, t.where(item_id=item_id, warehouse_id=warehouse_id)
        )

    def delay(self, demand_ref: str) -> DelayMessageRow | None:
        found = self._listed(
            "delay_messages", self._delay, self._t("delay_messages").where(demand_ref=demand_ref)
        )
        return found[0] if found else None

    def plan_messages(
        self, item_id: str | None = None, warehouse_id: str | None = None
    ) -> list[PlanMessageRow]:
        t = self._t("plan_messages")
        rows = np.arange(t.n)
        if item_id is not None and t.n:
            wh = t.c["warehouse_id"]
            same = np.asarray(t.c["item_id"] == item_id, dtype=bool)
            none = np.array([_opt_str(w) is None for w in wh], dtype=bool)
            rows = np.flatnonzero(same & (np.asarray(wh == warehouse_id, dtype=bool) | none))

        def make(c: dict[str, np.ndarray], i: int) -> PlanMessageRow:
            return PlanMessageRow(
                str(c["severity"][i]),
                str(c["code"][i]),
                _opt_str(c["item_id"][i]),
                _opt_str(c["warehouse_id"][i]),
                str(c["text"][i]),
            )

        return self._listed("plan_messages", make, rows)

    # -- inputs

    def existing_receipts(
        self, item_id: str, warehouse_id: str
    ) -> dict[str, tuple[dt.date, float]]:
        out: dict[str, tuple[dt.date, float]] = {}
        if self._inputs is None:
            return out
        t0 = self._t0
        oh = self._t("on_hand")
        rows = oh.where(item_id=item_id, warehouse_id=warehouse_id)
        total = float(np.nansum(oh.c["qty"][rows])) if len(rows) else 0.0
        if total > 0:
            out[f"OH:{item_id}/{warehouse_id}"] = (t0, total)
        for name, prefix, ids, wh_col, date_col in RECEIPT_SOURCES:
            t = self._t(name)
            if not t.n:
                continue
            for i in t.where(item_id=item_id, **{wh_col: warehouse_id}):
                qty, day = float(t.c["qty"][i]), _opt_day(t.c[date_col][i])
                if not qty > 0 or day is None:
                    continue
                key = "/".join(ref_part(col, t.c[col][i]) for col in ids)
                out[f"{prefix}:{key}"] = (max(day, t0), qty)
        return out

    def coverage(
        self, item_id: str, warehouse_id: str
    ) -> tuple[float | None, float | None, float | None]:
        if self._inputs is None:
            return None, None, None
        ic = self._t("item_coverage")
        rows = (
            ic.where(item_id=item_id, warehouse_id=warehouse_id) if ic.n else np.empty(0, np.int64)
        )
        if not len(rows):
            return None, None, None
        i = rows[0]
        return tuple(  # type: ignore[return-value]
            _opt_float(ic.c[col][i]) for col in ("safety_stock_qty", "min_qty", "max_qty")
        )


def run_info(rec: RunRecord) -> RunInfo:
    """A kept run as the views' :class:`RunInfo`."""
    counts = rec.row_counts
    return RunInfo(
        plan_id=rec.plan_id,
        run_id=rec.run_id,
        mode=rec.mode,
        base_run_id=rec.base_run_id or None,
        plan_date=rec.plan_date,
        started_at=rec.create_time,
        finished_at=rec.end_time,
        planned_order_count=int(counts.get("planned_orders", 0)),
        pegging_count=int(counts.get("pegging", 0)),
        action_message_count=int(counts.get("action_messages", 0)),
        delay_message_count=int(counts.get("delay_messages", 0)),
        plan_message_count=int(counts.get("plan_messages", 0)),
        rows_added=rec.rows_added,
        rows_removed=rec.rows_removed,
    )


def run_rows(store: TenantStore, rec: RunRecord) -> RunPlanRows:
    """The rows of a kept run for the views.

    Raises:
        FailedPrecondition: The run holds no results (not succeeded, or
            trimmed).
    """
    results, index = rec.kept_results()
    try:
        dataset = store.dataset(rec.plan_id)
    except FailedPrecondition:
        dataset = None
    inputs = (
        dataset.tables if dataset is not None and dataset.version == rec.dataset_version else None
    )
    return RunPlanRows(results, index, rec.plan_date, inputs)


@contextmanager
def answered(field: str) -> Iterator[None]:
    """A view's NotInPlan as the API's NOT_FOUND, naming the request field."""
    try:
        yield
    except explain.NotInPlan as exc:
        raise NotFound(str(exc).replace("the plan", "this run", 1), field=field) from None


def net_requirements(
    store: TenantStore, rec: RunRecord, item_id: str, warehouse_id: str
) -> NetRequirements:
    """GetNetRequirements: one SKU of a kept run."""
    if not item_id:
        raise InvalidArgument("item_id is required", field="item_id")
    if not warehouse_id:
        raise InvalidArgument("warehouse_id is required", field="warehouse_id")
    rows = run_rows(store, rec)
    with answered("item_id"):
        return explain.net_requirements(rows, run_info(rec), item_id, warehouse_id)


def delay_path(store: TenantStore, rec: RunRecord, ref: str) -> DelayPath:
    """ExplainDelay: why a demand of a kept run is late."""
    if not ref:
        raise InvalidArgument("ref is required", field="ref")
    rows = run_rows(store, rec)
    with answered("ref"):
        return explain.delay_path(rows, ref)


#: Most delayed demands and charts a report holds, whatever the request asks.
REPORT_TOP_CAP = 100
REPORT_CHARTS_CAP = 50


def plan_report(store: TenantStore, rec: RunRecord, top: int, charts: int) -> PlanReport:
    """GetPlanReport: what the report of a kept run shows (0: the defaults)."""
    rows = run_rows(store, rec)
    return explain.plan_report(
        rows,
        run_info(rec),
        min(top or 10, REPORT_TOP_CAP),
        min(charts or 6, REPORT_CHARTS_CAP),
    )
