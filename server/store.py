"""Tenant-isolated in-memory stores: each plan's data set, runs and last results.

A tenant's data never shares a Python object with another tenant's: the
:class:`Stores` registry hands out one :class:`TenantStore` per tenant id, and
every servicer resolves the store from the authenticated caller, never from a
name in the request. Data sets and results are held as struct-of-arrays
(numpy), not as Python objects per row.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from dataclasses import dataclass, field

from masterplan.codec import table_nbytes
from masterplan.contract.columns import Table, table_length
from masterplan.server.engine.types import ResultTable
from masterplan.server.errors import AlreadyExists, FailedPrecondition, NotFound, PlanBusy
from masterplan.server.pegging import PeggingIndex

__all__ = ["Dataset", "RunRecord", "Stores", "TenantStore"]


@dataclass(frozen=True, slots=True)
class Dataset:
    """An immutable, fully validated upload: replaced whole, never edited in place."""

    tables: dict[str, Table]
    version: int
    uploaded_at: dt.datetime

    @property
    def rows(self) -> int:
        return sum(table_length(t) for t in self.tables.values())

    @property
    def nbytes(self) -> int:
        return sum(table_nbytes(t) for t in self.tables.values())


@dataclass(slots=True)
class RunRecord:
    """One planning run of a plan: its state and, once succeeded, its results."""

    run_id: str
    plan_id: str
    mode: str
    plan_date: dt.date
    dataset_version: int
    create_time: dt.datetime
    state: str = "RUNNING"
    end_time: dt.datetime | None = None
    error: str = ""
    row_counts: dict[str, int] = field(default_factory=dict)
    phase_seconds: dict[str, float] = field(default_factory=dict)
    results: dict[str, ResultTable] | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    #: Built on the first GetPegging of the run, dropped with the results.
    pegging_index: PeggingIndex | None = None

    def pegging(self) -> PeggingIndex | None:
        """The run's pegging index (built once), or None without results."""
        results = self.results
        if results is None:
            return None
        if self.pegging_index is None:
            self.pegging_index = PeggingIndex(results["pegging"])
        return self.pegging_index


class TenantStore:
    """Everything the service holds for one tenant."""

    def __init__(self, tenant_id: str, keep_runs: int = 20) -> None:
        self.tenant_id = tenant_id
        self._lock = threading.RLock()
        self._datasets: dict[str, Dataset] = {}
        self._runs: dict[str, dict[str, RunRecord]] = {}
        self._keep_runs = keep_runs

    # -- data sets ---------------------------------------------------------------
    def put_dataset(self, plan_id: str, tables: dict[str, Table]) -> Dataset:
        """Replace a plan's data set atomically (readers see the old or the new one)."""
        with self._lock:
            old = self._datasets.get(plan_id)
            ds = Dataset(tables, (old.version + 1) if old else 1, dt.datetime.now(dt.UTC))
            self._datasets[plan_id] = ds
            return ds

    def dataset(self, plan_id: str) -> Dataset:
        with self._lock:
            ds = self._datasets.get(plan_id)
        if ds is None:
            raise FailedPrecondition(
                f"plan {plan_id!r} has no data set: upload one first", reason="NO_DATASET"
            )
        return ds

    # -- runs --------------------------------------------------------------------
    def start_run(
        self, plan_id: str, run_id: str, mode: str, plan_date: dt.date, version: int
    ) -> RunRecord:
        """Register a new run; one run per plan at a time, run ids never reused."""
        with self._lock:
            runs = self._runs.setdefault(plan_id, {})
            if any(r.state == "RUNNING" for r in runs.values()):
                raise PlanBusy(f"plan {plan_id!r} has a run in progress", plan=plan_id)
            run_id = run_id or uuid.uuid4().hex
            if run_id in runs:
                raise AlreadyExists(f"run {run_id!r} of plan {plan_id!r} exists", run=run_id)
            rec = RunRecord(run_id, plan_id, mode, plan_date, version, dt.datetime.now(dt.UTC))
            runs[run_id] = rec
            return rec

    def finish_run(self, rec: RunRecord, state: str, error: str = "") -> None:
        with self._lock:
            rec.state = state
            rec.error = error
            rec.end_time = dt.datetime.now(dt.UTC)
            if state != "SUCCEEDED":
                rec.results = None
            else:
                # Keep results of the newest succeeded run only; older runs keep
                # their summaries.
                for other in self._runs.get(rec.plan_id, {}).values():
                    if other is not rec:
                        other.results = None
                        other.pegging_index = None
            self._trim(rec.plan_id)

    def _trim(self, plan_id: str) -> None:
        runs = self._runs.get(plan_id, {})
        done = [r for r in runs.values() if r.state != "RUNNING"]
        done.sort(key=lambda r: r.create_time)
        for r in done[: max(0, len(done) - self._keep_runs)]:
            del runs[r.run_id]

    def run(self, plan_id: str, run_id: str) -> RunRecord:
        with self._lock:
            rec = self._runs.get(plan_id, {}).get(run_id)
        if rec is None:
            raise NotFound(f"run {run_id!r} of plan {plan_id!r} not found")
        return rec

    def runs(self, plan_id: str) -> list[RunRecord]:
        """Runs of a plan, newest first."""
        with self._lock:
            runs = list(self._runs.get(plan_id, {}).values())
        return sorted(runs, key=lambda r: r.create_time, reverse=True)

    def nbytes(self) -> int:
        """Bytes of data sets and results held (for quotas and reports)."""
        with self._lock:
            total = sum(ds.nbytes for ds in self._datasets.values())
            for runs in self._runs.values():
                for r in runs.values():
                    if r.results:
                        total += sum(table_nbytes(t) for t in r.results.values())
            return total

    def nbytes_if_replaced(self, plan_id: str, tables: dict[str, Table]) -> int:
        """Bytes held after replacing ``plan_id``'s data set with ``tables``."""
        with self._lock:
            old = self._datasets.get(plan_id)
            current = self.nbytes()
        new = sum(table_nbytes(t) for t in tables.values())
        return current - (old.nbytes if old else 0) + new

    def cancel_all(self) -> None:
        with self._lock:
            for runs in self._runs.values():
                for r in runs.values():
                    r.cancel.set()


class Stores:
    """The tenant stores of the process, keyed by tenant id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stores: dict[str, TenantStore] = {}

    def get(self, tenant_id: str) -> TenantStore:
        with self._lock:
            store = self._stores.get(tenant_id)
            if store is None:
                store = self._stores[tenant_id] = TenantStore(tenant_id)
            return store

    def drop(self, tenant_id: str) -> None:
        """Forget a tenant entirely; its running runs are cancelled."""
        with self._lock:
            store = self._stores.pop(tenant_id, None)
        if store is not None:
            store.cancel_all()

    def __contains__(self, tenant_id: object) -> bool:
        with self._lock:
            return tenant_id in self._stores
