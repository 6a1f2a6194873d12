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
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from masterplan.codec import table_nbytes
from masterplan.contract.columns import Table, table_length
from masterplan.server import delta as deltas
from masterplan.server.engine.layers import LayeredTables
from masterplan.server.engine.partbasis import RunBasis
from masterplan.server.engine.types import ResultTable
from masterplan.server.errors import AlreadyExists, FailedPrecondition, NotFound, PlanBusy
from masterplan.server.pegging import PeggingIndex
from masterplan.server.upload_checks import UploadWarnings
from masterplan.tenancy.errors import QuotaExceeded, Unauthenticated
from masterplan.tenancy.quotas import PLANS, ROWS

__all__ = [
    "DATASET_CHANGED",
    "KEEP_RUN_IDS",
    "PLAN_OVERHEAD_BYTES",
    "AppliedDelta",
    "Dataset",
    "RunRecord",
    "Stores",
    "TenantStore",
    "UploadReceipt",
]

#: What a plan costs before it holds a row: the data set's empty arrays of
#: every input table, its dictionaries and bookkeeping (about 17 KB measured
#: with tracemalloc), rounded up for the run summaries a plan keeps. Counted
#: in every data set's bytes so that thousands of empty plans are not free.
PLAN_OVERHEAD_BYTES = 32 * 1024

#: Applied uploads remembered per plan for ``request_id`` retries.
KEEP_RECEIPTS = 32

#: Ids of trimmed runs remembered per plan (about 100 bytes each): run ids
#: stay unique among this many past runs of a plan, the records kept included.
KEEP_RUN_IDS = 100_000

#: Bytes one remembered run id costs (a short string and its dict slot).
RUN_ID_BYTES = 128


#: Reason of the FAILED_PRECONDITION that refuses a delta made against
#: another data set than the plan holds (the client then sends a snapshot).
DATASET_CHANGED = "DATASET_CHANGED"


def _new_etag() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class AppliedDelta:
    """The delta that made a data set from the one before it.

    Kept with the newest data set only (it goes with the data set it made),
    so that an incremental run can see which rows changed.

    Attributes:
        base_version: Version of the data set the delta was applied to.
        upserts: Upsert rows per table the delta changed (all columns).
        deletes: Delete rows per table (the columns that name a row).
        counts: Rows upserted, replaced and deleted per table.
    """

    base_version: int
    upserts: dict[str, Table]
    deletes: dict[str, Table]
    counts: deltas.DeltaCounts

    @property
    def nbytes(self) -> int:
        held = (*self.upserts.values(), *self.deletes.values(), *self.counts.removed.values())
        sources = sum(a.nbytes for a in self.counts.sources.values())
        return sum(table_nbytes(t) for t in held) + sources

    def touched(self) -> dict[str, tuple[Table, Table]]:
        """Per changed table, the rows it removed or replaced and the rows it
        upserted: what a net change of the data set it made starts from."""
        empty: Table = {}
        return {
            name: (self.counts.removed.get(name, empty), self.upserts.get(name, empty))
            for name in self.counts.upserted
        }


@dataclass(frozen=True, slots=True)
class Dataset:
    """An immutable, fully validated upload: replaced whole, never edited in place.

    Attributes:
        etag: New for every applied upload (uuid4 hex), so that a delta can
            name the data set it was made against; versions restart with the
            process, etags never repeat.
        delta: What the last upload changed, when it was a delta.
    """

    tables: dict[str, Table]
    version: int
    uploaded_at: dt.datetime
    etag: str = field(default_factory=_new_etag)
    delta: AppliedDelta | None = None
    #: What the input checks said of it when it was uploaded; None where
    #: the upload asked to skip them.
    warnings: UploadWarnings | None = None

    @property
    def rows(self) -> int:
        return sum(table_length(t) for t in self.tables.values())

    @property
    def nbytes(self) -> int:
        held = PLAN_OVERHEAD_BYTES + sum(table_nbytes(t) for t in self.tables.values())
        return held + (self.delta.nbytes if self.delta is not None else 0)


@dataclass(frozen=True, slots=True)
class UploadReceipt:
    """What an applied upload answered, kept to answer a retry of its ``request_id``."""

    request_id: str
    digest: bytes
    version: int
    counts: dict[str, int]
    rows: int
    nbytes: int
    etag: str = ""
    rows_upserted: int = 0
    rows_deleted: int = 0
    warnings: UploadWarnings | None = None

    @classmethod
    def of(cls, ds: Dataset, request_id: str = "", digest: bytes = b"") -> UploadReceipt:
        """The receipt of the upload that made ``ds``."""
        delta = ds.delta
        return cls(
            request_id,
            digest,
            ds.version,
            {name: table_length(t) for name, t in ds.tables.items()},
            ds.rows,
            ds.nbytes,
            ds.etag,
            delta.counts.rows_upserted if delta is not None else 0,
            delta.counts.rows_deleted if delta is not None else 0,
            ds.warnings,
        )


def _applied_delta(
    base_version: int,
    upserts: dict[str, Table],
    deletes: dict[str, Table],
    counts: deltas.DeltaCounts,
) -> AppliedDelta:
    """What a data set remembers of the delta that made it: the tables it changed."""
    changed = set(counts.upserted)
    return AppliedDelta(
        base_version,
        {k: t for k, t in upserts.items() if k in changed},
        {k: t for k, t in deletes.items() if k in changed},
        counts,
    )


def _dataset_changed(plan_id: str, why: str) -> FailedPrecondition:
    return FailedPrecondition(
        f"plan {plan_id!r}: the delta was made against another data set ({why}); send a snapshot",
        reason=DATASET_CHANGED,
        plan=plan_id,
    )


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
    results: Mapping[str, ResultTable] | None = None
    #: The run whose result the streamed difference was against; empty when
    #: the stream carried the whole result.
    base_run_id: str = ""
    #: Rows the result stream carried, all tables together: added (every row
    #: of a whole result) and removed (a difference only).
    rows_added: int = 0
    rows_removed: int = 0
    #: The coverage group of SKUs that name none (SPEC §5.2), as planned.
    default_group: str | None = None
    #: Why a net change was planned as a regeneration; empty otherwise.
    fallback_reason: str = ""
    #: SKUs the engine planned, and SKUs in the plan.
    skus_planned: int = 0
    skus_total: int = 0
    cancel: threading.Event = field(default_factory=threading.Event)
    #: Who asked the run to stop first (:meth:`request_cancel`): ``cancel_run``,
    #: ``client``, ``deadline``, ``shutdown`` or ``uninstall``; empty if nobody.
    cancelled_by: str = ""
    #: Built on the first GetPegging of the run, dropped with the results.
    pegging_index: PeggingIndex | None = None
    #: What the engine kept for a net change to reuse, dropped with the results.
    basis: RunBasis | None = None
    #: The partitions the run was planned over (0: inline).
    partitions: int = 0

    def request_cancel(self, by: str) -> None:
        """Ask the run to stop at its next phase or netting level, saying who asks.

        The first asker is kept (a CancelRun ends the call, whose end asks
        again); the log line of the cancelled run names it.
        """
        if not self.cancelled_by:
            self.cancelled_by = by
        self.cancel.set()

    def kept_results(self) -> tuple[Mapping[str, ResultTable], PeggingIndex]:
        """The run's results and pegging index, for the calls that read them.

        Raises:
            FailedPrecondition: ``NO_RESULTS``: the run did not succeed, or
                is no longer its plan's newest succeeded run (only that one
                keeps its results).
        """
        results, index = self.results, self.pegging()
        if results is None or index is None:
            raise FailedPrecondition(
                f"run {self.run_id!r} holds no results ({self.state.lower()}, or not the "
                "newest succeeded run of its plan)",
                reason="NO_RESULTS",
            )
        return results, index

    def pegging(self) -> PeggingIndex | None:
        """The run's pegging index (built once), or None without results."""
        results = self.results
        if results is None:
            return None
        if self.pegging_index is None:
            self.pegging_index = PeggingIndex(results["pegging"], results["delay_messages"])
        return self.pegging_index


@dataclass(frozen=True, slots=True)
class PlanInfo:
    """What a plan holds, for the Plans resource (SPEC §3).

    Attributes:
        plan_id: The plan.
        dataset: Its data set; None before the first upload.
        bytes_held: Bytes of its data set, kept results and net-change basis.
        result_rows: Rows of the results it keeps.
        run_count: Runs it keeps (summaries; the newest succeeded one with
            results).
        last_run: Its newest run; None when none.
    """

    plan_id: str
    dataset: Dataset | None
    bytes_held: int
    result_rows: int
    run_count: int
    last_run: RunRecord | None


def results_nbytes(tables: Mapping[str, ResultTable]) -> int:
    """Bytes a result's tables hold; a net change's layered tables count
    their base and patch without being joined (a base shared with the
    previous run counts for both, erring on the side of the quota)."""
    if isinstance(tables, LayeredTables):
        return sum(table_nbytes(t) for t in tables.pieces()) + tables.index_nbytes()
    return sum(table_nbytes(t) for t in tables.values())


class TenantStore:
    """Everything the service holds for one tenant."""

    def __init__(
        self,
        tenant_id: str,
        keep_runs: int = 20,
        keep_run_ids: int = KEEP_RUN_IDS,
        name: str = "",
    ) -> None:
        self.tenant_id = tenant_id
        #: The tenant's name, for metrics (its id where none was given).
        self.name = name or tenant_id
        self._lock = threading.RLock()
        self._datasets: dict[str, Dataset] = {}
        self._runs: dict[str, dict[str, RunRecord]] = {}
        self._keep_runs = keep_runs
        # Ids of runs trimmed from ``_runs``, oldest first (a dict keeps the
        # order): a run id stays taken after its record is gone, so that a
        # retried RunPlan with the same id is ALREADY_EXISTS, not a new run.
        self._trimmed_ids: dict[str, dict[str, None]] = {}
        self._keep_run_ids = keep_run_ids
        self._uploading: set[str] = set()
        self._receipts: dict[str, OrderedDict[str, UploadReceipt]] = {}

    # -- data sets ---------------------------------------------------------------
    def put_dataset(
        self,
        plan_id: str,
        tables: dict[str, Table],
        *,
        max_plans: int | None = None,
        max_rows: int | None = None,
        request_id: str = "",
        digest: bytes = b"",
        warnings: UploadWarnings | None = None,
    ) -> Dataset:
        """Replace a plan's data set atomically (readers see the old or the new one).

        Args:
            max_plans: Refuse a new plan when the tenant holds this many.
            max_rows: Refuse the data set when the tenant's data sets would
                hold more rows than this together.
            request_id: The upload's id, remembered with ``digest`` so that a
                retry is answered, not applied again (see :meth:`receipt`).
            warnings: What the input checks said of ``tables``, kept for
                the upload's answer (and a retry's).

        Raises:
            QuotaExceeded: ``plans``, for a new plan beyond ``max_plans``;
                ``rows``, for rows beyond ``max_rows``.
        """
        rows = sum(table_length(t) for t in tables.values())
        with self._lock:
            old = self._datasets.get(plan_id)
            if old is None and max_plans is not None and len(self._datasets) >= max_plans:
                raise QuotaExceeded(PLANS, max_plans, len(self._datasets) + 1)
            self._check_rows(max_rows, old, rows)
            version = (old.version + 1) if old else 1
            ds = Dataset(tables, version, dt.datetime.now(dt.UTC), warnings=warnings)
            self._datasets[plan_id] = ds
            self._remember(plan_id, ds, request_id, digest)
            return ds

    def apply_delta(
        self,
        plan_id: str,
        base_etag: str,
        upserts: dict[str, Table],
        deletes: dict[str, Table],
        *,
        request_id: str = "",
        digest: bytes = b"",
        max_plans: int | None = None,
        max_rows: int | None = None,
        claim: Callable[[int], None] | None = None,
        check: Callable[[int], None] | None = None,
        checks: Callable[[dict[str, Table]], UploadWarnings] | None = None,
    ) -> Dataset:
        """Change a plan's data set by a delta, atomically (readers see old or new).

        The new tables are built outside the lock (a large table takes a
        while); the data set is replaced only if it is still the one the
        delta was checked against, so a concurrent replacement refuses the
        delta instead of being lost.

        Args:
            base_etag: The etag of the data set the delta was made against.
            request_id: As for :meth:`put_dataset`.
            max_plans: Accepted for symmetry with :meth:`put_dataset`; a
                delta never adds a plan (it needs one with a data set).
            max_rows: As for :meth:`put_dataset`, of the changed data set.
            claim: Called with the bytes the changed tables' new copies
                take, before they are built; raises (``QuotaExceeded``) to
                refuse them.
            check: Called with the bytes the tenant would hold after the
                delta, before it is applied; raises (``QuotaExceeded``) to
                refuse it.
            checks: The input checks of the changed data set's tables, run
                before it replaces anything; kept as its ``warnings``.

        Raises:
            FailedPrecondition: ``DATASET_CHANGED``, when the plan holds no
                data set or another one than ``base_etag`` names.
            InvalidArgument: a delta that does not fit the data set
                (:func:`masterplan.server.delta.apply_delta`).
        """
        del max_plans  # a delta changes a held plan: the plan count stays
        base = self.delta_base(plan_id, base_etag)
        if claim is not None:
            claim(deltas.result_nbytes(base.tables, upserts, deletes))
        tables, counts = deltas.apply_delta(base.tables, upserts, deletes)
        ds = Dataset(
            tables,
            base.version + 1,
            dt.datetime.now(dt.UTC),
            delta=_applied_delta(base.version, upserts, deletes, counts),
            warnings=checks(tables) if checks is not None else None,
        )
        if check is not None:
            check(self.nbytes() - base.nbytes + ds.nbytes)
        with self._lock:
            if self._datasets.get(plan_id) is not base:
                raise _dataset_changed(plan_id, "it was replaced while the delta was applied")
            self._check_rows(max_rows, base, ds.rows)
            self._datasets[plan_id] = ds
            self._remember(plan_id, ds, request_id, digest)
            return ds

    def _check_rows(self, max_rows: int | None, old: Dataset | None, rows: int) -> None:
        """Refuse a data set of ``rows`` in place of ``old`` that would bring
        the tenant's data sets past ``max_rows`` together (the lock held)."""
        if max_rows is None:
            return
        held = sum(ds.rows for ds in self._datasets.values()) - (old.rows if old else 0)
        if held + rows > max_rows:
            raise QuotaExceeded(ROWS, max_rows, held + rows)

    def delta_base(self, plan_id: str, base_etag: str) -> Dataset:
        """The data set a delta applies to: the plan's, if ``base_etag`` names it.

        Raises:
            FailedPrecondition: ``DATASET_CHANGED``, when the plan holds no
                data set or another one.
        """
        with self._lock:
            base = self._datasets.get(plan_id)
        if base is None:
            raise _dataset_changed(plan_id, "the plan holds no data set")
        if base.etag != base_etag:
            raise _dataset_changed(plan_id, f"its data set is not {base_etag!r}")
        return base

    def _remember(self, plan_id: str, ds: Dataset, request_id: str, digest: bytes) -> None:
        """Keep the receipt of the upload that made ``ds``, for retries (lock held)."""
        if not request_id:
            return
        receipts = self._receipts.setdefault(plan_id, OrderedDict())
        receipts[request_id] = UploadReceipt.of(ds, request_id, digest)
        while len(receipts) > KEEP_RECEIPTS:
            receipts.popitem(last=False)

    def receipt(self, plan_id: str, request_id: str) -> UploadReceipt | None:
        """The applied upload of ``plan_id`` with this ``request_id``, if remembered."""
        with self._lock:
            receipts = self._receipts.get(plan_id)
            return receipts.get(request_id) if receipts is not None else None

    def plan_count(self) -> int:
        """Plans that hold a data set."""
        with self._lock:
            return len(self._datasets)

    def has_plan(self, plan_id: str) -> bool:
        """Whether the plan holds a data set."""
        with self._lock:
            return plan_id in self._datasets

    @contextmanager
    def uploading(self, plan_id: str) -> Iterator[None]:
        """Hold the plan's one upload slot: a second concurrent upload is refused.

        Two uploads of one plan would each hold a whole data set in memory
        to replace the same one; refusing the second bounds that and leaves
        no doubt about which one is in force.

        Raises:
            PlanBusy: another upload of the plan is in progress (ABORTED).
        """
        with self._lock:
            if plan_id in self._uploading:
                raise PlanBusy(
                    f"plan {plan_id!r} has an upload in progress; retry when it has ended",
                    plan=plan_id,
                )
            self._uploading.add(plan_id)
        try:
            yield
        finally:
            with self._lock:
                self._uploading.discard(plan_id)

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
            trimmed = self._trimmed_ids.get(plan_id, {})
            if run_id in runs or run_id in trimmed:
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
                rec.basis = None
            else:
                # Keep results of the newest succeeded run only; older runs keep
                # their summaries.
                for other in self._runs.get(rec.plan_id, {}).values():
                    if other is not rec:
                        other.results = None
                        other.pegging_index = None
                        other.basis = None
            self._trim(rec.plan_id)

    def _trim(self, plan_id: str) -> None:
        runs = self._runs.get(plan_id, {})
        done = [r for r in runs.values() if r.state != "RUNNING"]
        done.sort(key=lambda r: r.create_time)
        trimmed = self._trimmed_ids.setdefault(plan_id, {})
        for r in done[: max(0, len(done) - self._keep_runs)]:
            del runs[r.run_id]
            trimmed[r.run_id] = None
        while len(trimmed) > self._keep_run_ids:
            del trimmed[next(iter(trimmed))]

    def results_nbytes_if_kept(
        self, rec: RunRecord, tables: Mapping[str, ResultTable], basis: RunBasis | None = None
    ) -> int:
        """Bytes held once ``rec`` succeeds with ``tables`` (and ``basis``): the
        plan's older results are dropped then, so they do not count."""
        with self._lock:
            total = sum(ds.nbytes for ds in self._datasets.values()) + self._run_ids_nbytes()
            for plan_id, runs in self._runs.items():
                for r in runs.values():
                    if plan_id != rec.plan_id:
                        total += self._run_nbytes(r)
            total += self._basis_nbytes(rec.plan_id, basis)
        return total + results_nbytes(tables)

    def _run_nbytes(self, r: RunRecord) -> int:
        """Bytes a run's kept result holds: its tables and its engine basis."""
        held = results_nbytes(r.results) if r.results else 0
        return held + self._basis_nbytes(r.plan_id, r.basis)

    def _basis_nbytes(self, plan_id: str, basis: RunBasis | None) -> int:
        """Bytes a basis holds beyond its result tables: its arrays, and the
        tables of the data it planned that the plan's data set no longer holds."""
        if basis is None:
            return 0
        ds = self._datasets.get(plan_id)
        current = ds.tables if ds is not None else {}
        stale = sum(table_nbytes(t) for name, t in basis.data.items() if current.get(name) is not t)
        return basis.arrays_nbytes + stale

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
            total = sum(ds.nbytes for ds in self._datasets.values()) + self._run_ids_nbytes()
            for runs in self._runs.values():
                for r in runs.values():
                    total += self._run_nbytes(r)
            return total

    def _run_ids_nbytes(self) -> int:
        """What the remembered ids of trimmed runs cost (a few MB at most per plan)."""
        return RUN_ID_BYTES * sum(len(ids) for ids in self._trimmed_ids.values())

    def nbytes_if_replaced(self, plan_id: str, tables: dict[str, Table]) -> int:
        """Bytes held after replacing ``plan_id``'s data set with ``tables``."""
        with self._lock:
            old = self._datasets.get(plan_id)
            current = self.nbytes()
        new = sum(table_nbytes(t) for t in tables.values())
        return current - (old.nbytes if old else 0) + new

    # -- plans as resources ------------------------------------------------------
    def plan_ids(self) -> list[str]:
        """Plans that hold a data set or runs, sorted."""
        with self._lock:
            return sorted(set(self._datasets) | {p for p, r in self._runs.items() if r})

    def plan_info(self, plan_id: str) -> PlanInfo:
        """What a plan holds (SPEC §3: data set version, rows held, last run).

        Raises:
            NotFound: the plan holds neither a data set nor a run.
        """
        with self._lock:
            ds = self._datasets.get(plan_id)
            runs = list(self._runs.get(plan_id, {}).values())
            if ds is None and not runs:
                raise NotFound(f"plan {plan_id!r} not found", field="name")
            held = (ds.nbytes if ds is not None else 0) + sum(self._run_nbytes(r) for r in runs)
        newest = max(runs, key=lambda r: r.create_time) if runs else None
        result_rows = sum(sum(r.row_counts.values()) for r in runs if r.results is not None)
        return PlanInfo(plan_id, ds, held, result_rows, len(runs), newest)

    def delete_plan(self, plan_id: str) -> int:
        """Delete a plan: its data set, its runs and their results. Returns
        the bytes freed. The ids of its runs stay taken (a retried RunPlan
        with one of them is still ALREADY_EXISTS).

        Raises:
            NotFound: no such plan.
            PlanBusy: a run or an upload of the plan is in progress; cancel
                or wait for it first.
        """
        with self._lock:
            info = self.plan_info(plan_id)
            if plan_id in self._uploading:
                raise PlanBusy(f"plan {plan_id!r} has an upload in progress; retry after it")
            running = [
                r.run_id for r in self._runs.get(plan_id, {}).values() if r.state == "RUNNING"
            ]
            if running:
                raise PlanBusy(
                    f"plan {plan_id!r} has run {running[0]!r} in progress; cancel it first"
                )
            self._datasets.pop(plan_id, None)
            self._receipts.pop(plan_id, None)
            trimmed = self._trimmed_ids.setdefault(plan_id, {})
            for run_id in self._runs.pop(plan_id, {}):
                trimmed[run_id] = None
            while len(trimmed) > self._keep_run_ids:
                del trimmed[next(iter(trimmed))]
        return info.bytes_held

    def cancel_all(self, by: str = "uninstall") -> None:
        """Ask every run of the tenant to stop (see :meth:`RunRecord.request_cancel`)."""
        with self._lock:
            for runs in self._runs.values():
                for r in runs.values():
                    r.request_cancel(by)


class Stores:
    """The tenant stores of the process, keyed by tenant id.

    A dropped (uninstalled) tenant's id is remembered, so that a call still in
    flight for it cannot bring its store back: tenant ids are uuid4 and never
    reused, and one id costs a few dozen bytes.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stores: dict[str, TenantStore] = {}
        self._dropped: set[str] = set()

    def get(self, tenant_id: str, name: str = "") -> TenantStore:
        """The tenant's store, created on first use.

        Args:
            tenant_id: The tenant's id.
            name: The tenant's name, kept with a new store for metrics.

        Raises:
            Unauthenticated: The tenant was uninstalled (its key is revoked).
        """
        with self._lock:
            if tenant_id in self._dropped:
                raise Unauthenticated("the tenant was uninstalled")
            store = self._stores.get(tenant_id)
            if store is None:
                store = self._stores[tenant_id] = TenantStore(tenant_id, name=name)
            return store

    def drop(self, tenant_id: str) -> int:
        """Forget a tenant entirely and for good; its running runs are cancelled.

        Returns:
            The bytes of data sets and results the tenant held here.
        """
        with self._lock:
            self._dropped.add(tenant_id)
            store = self._stores.pop(tenant_id, None)
        if store is None:
            return 0
        store.cancel_all()
        return store.nbytes()

    def cancel_all(self, by: str) -> None:
        """Ask every run of every tenant to stop, saying who asks."""
        with self._lock:
            stores = list(self._stores.values())
        for store in stores:
            store.cancel_all(by)

    def dropped(self, tenant_id: str) -> bool:
        """Whether the tenant was dropped (uninstalled) in this process."""
        with self._lock:
            return tenant_id in self._dropped

    def held(self) -> dict[str, int]:
        """Bytes each tenant's store holds (:meth:`TenantStore.nbytes`), by tenant name."""
        with self._lock:
            stores = list(self._stores.values())
        held: dict[str, int] = {}
        for store in stores:
            # Summed: a tenant uninstalled through another process and
            # installed again under its name holds two stores until the sweep.
            held[store.name] = held.get(store.name, 0) + store.nbytes()
        return held

    def tenant_ids(self) -> set[str]:
        """The tenants holding a store here."""
        with self._lock:
            return set(self._stores)

    def __contains__(self, tenant_id: object) -> bool:
        with self._lock:
            return tenant_id in self._stores
