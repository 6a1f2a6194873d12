"""Planning: RunPlan and ReadRunResults (streamed), GetRun, ListRuns, CancelRun, GetPegging, the
planner's views (GetNetRequirements, ExplainDelay, GetPlanReport) and Simulate."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TypeVar

import grpc
from google.protobuf import empty_pb2

from masterplan.contract.columns import TableMap
from masterplan.contract.dates import plan_date_problem
from masterplan.server import explain as explained
from masterplan.server.engine import NetChange, PlanParams
from masterplan.server.errors import (
    Cancelled,
    InvalidArgument,
    MasterplanError,
    NotFound,
    funnel,
)
from masterplan.server.logs import bind, current_context, error_fields, fields, log_context, scoped
from masterplan.server.metrics import ServerMetrics
from masterplan.server.names import check_run_id, parse_plan, parse_run, parse_tenant
from masterplan.server.netchange import engine_job
from masterplan.server.pegging import DEFAULT_MAX_NODES, MAX_NODES_CAP
from masterplan.server.results_stream import ResultStream, result_stream
from masterplan.server.runs import Compute, cancel_when_ended, regenerate_job, run_engine
from masterplan.server.servicers._convert import (
    MODES,
    pegging_to_proto,
    plan_to_proto,
    run_to_proto,
)
from masterplan.server.simulate import baseline, simulate, simulation_to_proto
from masterplan.server.store import Dataset, RunRecord, Stores, TenantStore
from masterplan.server.uploads import Assembly
from masterplan.tenancy.errors import QuotaExceeded
from masterplan.tenancy.interceptor import current_principal
from masterplan.tenancy.quotas import MEMORY_BYTES, QuotaLedger
from masterplan.tenancy.registry import Tenant
from masterplan.v1 import columnar_pb2, planning_pb2_grpc
from masterplan.v1 import planning_pb2 as pb
from masterplan.viewcodec import delay_path_to_proto, net_requirements_to_proto, report_to_proto

log = logging.getLogger(__name__)

#: Largest ``chunk_rows`` a RunPlan may ask for: bounds one message's size.
MAX_CHUNK_ROWS = 262_144


def _caller() -> Tenant:
    tenant = current_principal().tenant
    assert tenant is not None  # the interceptor admits tenant keys only here
    return tenant


def _plan_date(text: str) -> dt.date:
    if not text:
        return dt.date.today()
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise InvalidArgument(
            f"plan_date {text!r} is not an ISO date YYYY-MM-DD", field="plan_date"
        ) from None
    problem = plan_date_problem(day)
    if problem is not None:
        raise InvalidArgument(problem, field="plan_date")
    return day


#: BOM levels of GetPegging's deprecated nested ``root``: two messages per
#: level (a requirement and its supply), 41 in all, well below protobuf's
#: nesting limit of 100.
NESTED_PEGGING_DEPTH = 20


class DeadlineExceeded(MasterplanError):
    """The call's deadline passed while the server was still working on it."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED
    reason = "DEADLINE_EXCEEDED"


T = TypeVar("T")


def _page(items: list[T], page_size: int, page_token: str) -> tuple[list[T], str]:
    """One page of a listing and the token of the next (empty after the last):
    the token is the offset of the page's end; 50 items unless told."""
    size = page_size if page_size > 0 else 50
    try:
        start = int(page_token) if page_token else 0
    except ValueError:
        start = -1
    if start < 0:  # "-3" read as an offset from the end gave another slice
        raise InvalidArgument("page_token is not one this server issued", field="page_token")
    end = start + size
    return items[start:end], (str(end) if end < len(items) else "")


def _stop_when_gone(context: grpc.ServicerContext) -> Callable[[], None]:
    """A check that raises once the call's deadline has passed or its client left.

    gRPC answers the client at its deadline but leaves the handler running:
    work that does not look stops only when it ends on its own.
    """

    def check() -> None:
        remaining = context.time_remaining()
        if remaining is not None and remaining <= 0:
            raise DeadlineExceeded("the call's deadline passed")
        if not context.is_active():
            raise Cancelled("the call was cancelled")

    return check


def _goes_on(rec: RunRecord) -> bool:
    """Whether a run whose stream gRPC closed goes on without it: unless it
    was cancelled (CancelRun, the deadline, the shutdown), the client's
    connection dropped or the client closed the call, and the run keeps its
    results for ReadRunResults (SPEC §3). Otherwise its cancellation goes on.

    Raises:
        GeneratorExit: Again, for a cancelled run.
    """
    if rec.cancel.is_set():
        raise GeneratorExit
    return True


def _send_results(
    stream: ResultStream,
    chunk_rows: int,
    cancel: threading.Event | None,
    run: pb.PlanRun,
    context: Mapping[str, object],
) -> Iterator[pb.RunPlanResponse]:
    """A succeeded run's results header, result chunks, then its summary.

    The header is the summary sent first, so that a client can write the
    chunks as they arrive instead of holding the whole result until the
    summary says what it was. The run is kept before this starts, so
    nothing here changes it: a
    ``cancel`` (CancelRun, uninstall, shutdown) ends the stream with
    CANCELLED, and a stream closed by the client or the network is only
    logged. Either way ReadRunResults can send the results again.
    """
    sent = 0
    yield pb.RunPlanResponse(results_header=pb.ResultsHeader(run=run))
    # Each chunk is encoded in the response that sends it, not copied there.
    responses: list[pb.RunPlanResponse] = []

    def into() -> columnar_pb2.ColumnarChunk:
        responses.append(pb.RunPlanResponse())
        return responses[-1].result_chunk

    try:
        for chunk in stream.chunks(chunk_rows, into):
            if cancel is not None and cancel.is_set():
                raise Cancelled("the result stream was cancelled (the run's results are kept)")
            yield responses.pop()
            sent += chunk.row_count
    except GeneratorExit:
        # Closed from gRPC's thread: the line names the call as its own lines do.
        with log_context(**context):
            log.info(
                "result stream closed before its end; the run's results are kept",
                extra=fields(rows_sent=sent),
            )
        raise
    yield pb.RunPlanResponse(summary=pb.RunSummary(run=run))


class PlanningServicer(planning_pb2_grpc.PlanningServicer):
    """Runs, their results and pegging, each resolved from the calling tenant."""

    def __init__(
        self,
        stores: Stores,
        ledger: QuotaLedger,
        default_chunk_rows: int,
        *,
        metrics: ServerMetrics,
        stopping: threading.Event | None = None,
        regenerate: Compute = regenerate_job,
    ) -> None:
        self._stores = stores
        #: The server's regeneration: inline, or over partitions (SPEC §2).
        self._regenerate = regenerate
        self._ledger = ledger
        self._chunk_rows = default_chunk_rows
        self._metrics = metrics
        #: Told of quota refusals by the error funnel.
        self.refusals = metrics
        #: Set when the server begins to stop: a run its call loses then was
        #: cancelled by the shutdown.
        self._stopping = stopping if stopping is not None else threading.Event()

    def _store(self) -> tuple[Tenant, TenantStore]:
        tenant = _caller()
        bind(tenant=tenant.name)
        return tenant, self._stores.get(tenant.tenant_id, tenant.name)

    def _chunk_rows_of(self, asked: int) -> int:
        """Rows per result chunk: what the call asked, or the server's default."""
        if asked > MAX_CHUNK_ROWS:
            raise InvalidArgument(f"chunk_rows may be at most {MAX_CHUNK_ROWS}", field="chunk_rows")
        return asked or self._chunk_rows

    @staticmethod
    def _plan(parent: str, tenant: Tenant, field: str = "parent") -> str:
        """The plan ``parent`` names, bound to the log."""
        plan_id = parse_plan(parent, tenant.name, field)
        bind(plan=plan_id)
        return plan_id

    @staticmethod
    def _dataset(store: TenantStore, plan_id: str) -> Dataset:
        """The plan's data set, its version bound to the log."""
        dataset = store.dataset(plan_id)
        bind(version=dataset.version)
        return dataset

    def _params(self, plan_date: dt.date, default_group: str | None) -> PlanParams:
        """A run's parameters, with the size limits of the quotas."""
        quotas = self._ledger.quotas
        return PlanParams(
            plan_date,
            default_group,
            max_planned_orders=quotas.max_planned_orders,
            max_result_rows=quotas.max_result_rows,
        )

    @scoped
    @funnel
    def RunPlan(
        self, request: pb.RunPlanRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.RunPlanResponse]:
        tenant, store = self._store()
        rec: RunRecord | None = None
        try:
            plan_id = self._plan(request.parent, tenant)
            plan_date = _plan_date(request.plan_date)
            run_id = check_run_id(request.run_id) if request.run_id else ""
            chunk_rows = self._chunk_rows_of(request.chunk_rows)
            dataset = self._dataset(store, plan_id)
            with self._ledger.acquire_run(tenant.tenant_id):
                mode = MODES[request.mode]
                rec = store.start_run(plan_id, run_id, mode, plan_date, dataset.version)
                rec.default_group = request.default_group or None
                job, previous, rec.fallback_reason = engine_job(
                    mode, store, plan_id, dataset, exclude=rec.run_id, regenerate=self._regenerate
                )
                bind(run=rec.run_id)
                log.info("run started", extra=fields(mode=mode, plan_date=plan_date.isoformat()))
                # Client cancel, deadline or shutdown.
                context.add_callback(cancel_when_ended(rec, context.time_remaining, self._stopping))
                params = self._params(plan_date, request.default_group or None)
                yield from self._execute(
                    tenant,
                    store,
                    rec,
                    dataset.tables,
                    params,
                    chunk_rows,
                    request.base_run_id,
                    job,
                    previous.run_id if previous is not None else "",
                    index_order=request.index_order,
                )
        except Exception as exc:
            if rec is None:  # refused before it started: the run's own lines say the rest
                log.warning("run refused", extra=error_fields(exc))
            raise

    def _execute(
        self,
        tenant: Tenant,
        store: TenantStore,
        rec: RunRecord,
        data: TableMap,
        params: PlanParams,
        chunk_rows: int,
        base_run_id: str = "",
        job: Compute = regenerate_job,
        reused_run_id: str = "",
        *,
        index_order: bool = False,
    ) -> Iterator[pb.RunPlanResponse]:
        """Stream one started run: progress, result chunks, summary; record how it ended.

        The result chunks are the difference to ``base_run_id`` when the
        store still holds that run's result, the whole result otherwise.
        ``job`` is the engine call; ``reused_run_id`` the run a net change
        reuses (its rows outside the re-planned SKUs are the same).
        ``index_order``: each table's rows in the order of its index.
        """
        started = time.monotonic()
        # gRPC may close this generator from another thread, whose context is
        # not the call's: the lines about how the run ended restore it.
        context = current_context()
        self._metrics.run_started(tenant.name)
        # Whether gRPC closed the stream while the engine worked: the run
        # then goes on without it (cancel_when_ended) and keeps its results.
        dropped = False
        try:
            try:
                yield pb.RunPlanResponse(started=run_to_proto(tenant.name, rec))
            except GeneratorExit:
                dropped = _goes_on(rec)
            outcome: NetChange | None = None
            max_seconds = self._ledger.quotas.max_engine_seconds
            for event in run_engine(data, params, rec.cancel, max_seconds, job):
                if isinstance(event, NetChange):
                    outcome = event
                elif not dropped:
                    try:
                        yield pb.RunPlanResponse(
                            progress=pb.RunProgress(phase=event.phase, fraction=event.fraction)
                        )
                    except GeneratorExit:
                        dropped = _goes_on(rec)
            assert outcome is not None
            result = outcome.result
            if outcome.fallback_reason and rec.mode == "net_change":
                rec.fallback_reason = outcome.fallback_reason
            # Checked before the first chunk: a run the tenant's memory cannot
            # hold fails with the quota's name before it streams anything,
            # and the previous run keeps its results.
            limit = self._ledger.quotas.max_memory_bytes
            held = store.results_nbytes_if_kept(rec, result.tables, outcome.basis)
            if held > limit:
                raise QuotaExceeded(MEMORY_BYTES, limit, held)
            parts = None
            if outcome.before is not None and outcome.after is not None:
                parts = (reused_run_id, outcome.before, outcome.after)
            stream = result_stream(
                store, rec.plan_id, base_run_id, result.tables, parts, index_order
            )
            rec.base_run_id = stream.base_run_id
            rec.rows_added, rec.rows_removed = stream.rows_added, stream.rows_removed
            rec.skus_planned, rec.skus_total = outcome.skus_planned, result.sku_count
            rec.row_counts = result.row_counts()
            rec.phase_seconds = result.phase_seconds
            # The store holds the engine's tables as they are, coded text
            # included (the pegging index decodes what it reads).
            # Recorded before the commit (an upload may have grown the data
            # meanwhile): a refusal here still leaves the previous results.
            held = store.results_nbytes_if_kept(rec, result.tables, outcome.basis)
            self._ledger.set_memory(tenant.tenant_id, held)
            rec.results = result.tables
            rec.basis = outcome.basis
            rec.partitions = outcome.partitions
            # Succeeded before the first chunk: from here on the run is kept
            # whatever becomes of its stream, and ReadRunResults sends its
            # results again.
            store.finish_run(rec, "SUCCEEDED")
        except (Cancelled, GeneratorExit):
            # GeneratorExit: gRPC closed the stream of a cancelled run (the
            # deadline, the shutdown, CancelRun) while it waited at a yield;
            # a stream closed otherwise leaves the run going (_goes_on).
            rec.request_cancel("client")  # unless someone asked before
            store.finish_run(rec, "CANCELLED", "cancelled")
            seconds = round(time.monotonic() - started, 3)
            self._metrics.run_ended(tenant.name, rec.mode, rec.state, seconds)
            with log_context(**context):
                log.info(
                    "run cancelled",
                    extra=fields(mode=rec.mode, by=rec.cancelled_by, seconds=seconds),
                )
            if dropped:
                return  # no stream to tell: the run's state says it
            raise
        except BaseException as exc:
            known = isinstance(exc, ValueError | QuotaExceeded)
            store.finish_run(rec, "FAILED", str(exc) if known else "internal error")
            seconds = round(time.monotonic() - started, 3)
            self._metrics.run_ended(tenant.name, rec.mode, rec.state, seconds)
            with log_context(**context):
                log.warning("run failed", extra=error_fields(exc, mode=rec.mode, seconds=seconds))
            if dropped:
                return  # no stream to tell: the run's state says it
            raise
        seconds = round(time.monotonic() - started, 3)
        self._metrics.run_ended(tenant.name, rec.mode, rec.state, seconds, rec.phase_seconds)
        with log_context(**context):
            log.info(
                "run finished",
                extra=fields(
                    mode=rec.mode,
                    state=rec.state,
                    rows=rec.row_counts,
                    base_run=rec.base_run_id,
                    rows_added=rec.rows_added,
                    rows_removed=rec.rows_removed,
                    skus=result.sku_count,
                    skus_planned=rec.skus_planned,
                    fallback=rec.fallback_reason,
                    seconds=seconds,
                    stream="dropped" if dropped else "open",
                ),
            )
        if dropped:
            return  # the stream is closed: its results wait for ReadRunResults
        yield from _send_results(
            stream, chunk_rows, rec.cancel, run_to_proto(tenant.name, rec), context
        )

    @scoped
    @funnel
    def ReadRunResults(
        self, request: pb.ReadRunResultsRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.RunPlanResponse]:
        """A kept run's result chunks and summary again, as its RunPlan stream sent them."""
        tenant, store = self._store()
        rec = self._run(store, request.name, tenant)
        chunk_rows = self._chunk_rows_of(request.chunk_rows)
        results, _ = rec.kept_results()
        stream = result_stream(
            store, rec.plan_id, request.base_run_id, results, index_order=request.index_order
        )
        run = run_to_proto(tenant.name, rec)
        # The summary says what this stream carried, as RunPlan's does.
        run.base_run_id = stream.base_run_id
        run.rows_added, run.rows_removed = stream.rows_added, stream.rows_removed
        log.info(
            "run results sent again",
            extra=fields(
                base_run=stream.base_run_id,
                rows_added=stream.rows_added,
                rows_removed=stream.rows_removed,
            ),
        )
        yield from _send_results(stream, chunk_rows, None, run, current_context())

    @scoped
    @funnel
    def GetRun(self, request: pb.GetRunRequest, context: grpc.ServicerContext) -> pb.PlanRun:
        tenant, store = self._store()
        rec = self._run(store, request.name, tenant)
        log.debug("run read", extra=fields(state=rec.state))
        return run_to_proto(tenant.name, rec)

    @scoped
    @funnel
    def ListRuns(
        self, request: pb.ListRunsRequest, context: grpc.ServicerContext
    ) -> pb.ListRunsResponse:
        tenant, store = self._store()
        plan_id = self._plan(request.parent, tenant)
        page, nxt = _page(store.runs(plan_id), request.page_size, request.page_token)
        log.debug("runs listed", extra=fields(runs=len(page), next_page=nxt))
        return pb.ListRunsResponse(
            runs=[run_to_proto(tenant.name, r) for r in page], next_page_token=nxt
        )

    @scoped
    @funnel
    def CancelRun(self, request: pb.CancelRunRequest, context: grpc.ServicerContext) -> pb.PlanRun:
        tenant, store = self._store()
        rec = self._run(store, request.name, tenant)
        rec.request_cancel("cancel_run")
        log.info("run cancel requested", extra=fields(state=rec.state))
        return run_to_proto(tenant.name, rec)

    @scoped
    @funnel
    def GetPegging(
        self, request: pb.GetPeggingRequest, context: grpc.ServicerContext
    ) -> pb.GetPeggingResponse:
        tenant, store = self._store()
        rec = self._run(store, request.name, tenant)
        if not request.ref and not request.continuation:
            raise InvalidArgument("ref is required", field="ref")
        _, index = rec.kept_results()
        max_nodes = min(request.max_nodes or DEFAULT_MAX_NODES, MAX_NODES_CAP)
        depth = request.max_depth
        if not request.flat:  # the nested form repeats shared subtrees and nests
            depth = min(depth or NESTED_PEGGING_DEPTH, NESTED_PEGGING_DEPTH)
        tree = index.tree(
            request.ref,
            depth,
            max_nodes,
            continuation=request.continuation,
            shared=request.flat,
            up=request.up,
            check=_stop_when_gone(context),
        )
        if depth != request.max_depth and any(n.continuation for n in tree.nodes):
            tree.truncated = True  # cut by the nesting bound, not by the request
        # The ref names an order: identifiers of rows stay out of the log.
        log.debug(
            "pegging read",
            extra=fields(
                max_depth=request.max_depth,
                nodes=len(tree.nodes),
                truncated=tree.truncated,
                flat=request.flat,
            ),
        )
        return pegging_to_proto(tree, request.flat)

    @scoped
    @funnel
    def GetNetRequirements(
        self, request: pb.GetNetRequirementsRequest, context: grpc.ServicerContext
    ) -> pb.NetRequirements:
        tenant, store = self._store()
        rec = self._run(store, request.name, tenant)
        view = explained.net_requirements(store, rec, request.item_id, request.warehouse_id)
        return net_requirements_to_proto(view)

    @scoped
    @funnel
    def ExplainDelay(
        self, request: pb.ExplainDelayRequest, context: grpc.ServicerContext
    ) -> pb.DelayPath:
        tenant, store = self._store()
        rec = self._run(store, request.name, tenant)
        return delay_path_to_proto(explained.delay_path(store, rec, request.ref))

    @scoped
    @funnel
    def GetPlanReport(
        self, request: pb.GetPlanReportRequest, context: grpc.ServicerContext
    ) -> pb.PlanReport:
        tenant, store = self._store()
        rec = self._run(store, request.name, tenant)
        report = explained.plan_report(store, rec, request.top, request.charts)
        return report_to_proto(report, run_to_proto(tenant.name, rec))

    @scoped
    @funnel
    def ListPlans(
        self, request: pb.ListPlansRequest, context: grpc.ServicerContext
    ) -> pb.ListPlansResponse:
        tenant, store = self._store()
        parse_tenant(request.parent, tenant.name)
        ids, nxt = _page(store.plan_ids(), request.page_size, request.page_token)
        infos = []
        for plan_id in ids:
            try:
                infos.append(store.plan_info(plan_id))
            except NotFound:
                continue  # deleted while listing
        return pb.ListPlansResponse(
            plans=[plan_to_proto(tenant.name, i) for i in infos], next_page_token=nxt
        )

    @scoped
    @funnel
    def GetPlan(self, request: pb.GetPlanRequest, context: grpc.ServicerContext) -> pb.Plan:
        tenant, store = self._store()
        plan_id = self._plan(request.name, tenant, field="name")
        return plan_to_proto(tenant.name, store.plan_info(plan_id))

    @scoped
    @funnel
    def DeletePlan(
        self, request: pb.DeletePlanRequest, context: grpc.ServicerContext
    ) -> empty_pb2.Empty:
        tenant, store = self._store()
        plan_id = self._plan(request.name, tenant, field="name")
        freed = store.delete_plan(plan_id)
        self._ledger.set_memory(tenant.tenant_id, store.nbytes())
        log.info("plan deleted", extra=fields(bytes_freed=freed))
        return empty_pb2.Empty()

    @staticmethod
    def _run(store: TenantStore, name: str, tenant: Tenant) -> RunRecord:
        """The run named ``name``, with its plan, id and data-set version bound to the log."""
        plan_id, run_id = parse_run(name, tenant.name)
        bind(plan=plan_id, run=run_id)
        rec = store.run(plan_id, run_id)
        bind(version=rec.dataset_version)
        return rec

    @scoped
    @funnel
    def Simulate(
        self, request: pb.SimulateRequest, context: grpc.ServicerContext
    ) -> pb.SimulateResponse:
        """A what-if delta planned on a copy of the plan's data; nothing is stored (SPEC §6)."""
        tenant, store = self._store()
        plan_id = self._plan(request.parent, tenant)
        dataset = self._dataset(store, plan_id)
        base = baseline(store.runs(plan_id))
        quotas = self._ledger.quotas
        # An empty plan date is the base run's, not today: a what-if compares
        # with the plan as it was made.
        plan_date = base.plan_date or dt.date.today()
        params = self._params(
            _plan_date(request.plan_date) if request.plan_date else plan_date,
            request.default_group or base.default_group,
        )
        cancel = threading.Event()
        context.add_callback(cancel.set)  # client cancel or deadline
        with (
            self._ledger.reserve_memory(tenant.tenant_id) as reservation,
            self._ledger.acquire_run(tenant.tenant_id),
        ):
            assembly = Assembly(
                quotas.max_rows, quotas.max_upload_bytes, reservation.add, delta=True
            )
            for chunk in request.changes:
                assembly.add(chunk)
            upserts, deletes = assembly.changes()
            sim = simulate(
                dataset.tables,
                upserts,
                deletes,
                params,
                list(request.demand_refs),
                base=base,
                cancel=cancel,
                max_seconds=quotas.max_engine_seconds,
                version=dataset.version,
            )
            # Held until the answer is encoded, then dropped: counted like an
            # upload in flight, so that a simulation cannot pass the quota.
            reservation.add(sim.nbytes)
            response = simulation_to_proto(
                sim, include_difference=request.include_difference, chunk_rows=self._chunk_rows
            )
        log.info(
            "simulation finished",
            extra=fields(
                plan_date=sim.plan_date.isoformat(),
                base_run=sim.base_run_id,
                refs=len(sim.promises),
                rows_added=sim.difference.rows_added,
                rows_removed=sim.difference.rows_removed,
                seconds=round(sim.seconds, 3),
            ),
        )
        return response
