"""Planning: RunPlan (streamed), GetRun, ListRuns, CancelRun, GetPegging."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import grpc

from masterplan.codec import encode_table
from masterplan.contract.tables import PLAN_OUTPUT_TABLES
from masterplan.server.engine import PlanParams, PlanResult
from masterplan.server.errors import Cancelled, FailedPrecondition, InvalidArgument, funnel
from masterplan.server.names import check_run_id, parse_plan, parse_run
from masterplan.server.pegging import PegNode
from masterplan.server.runs import run_engine
from masterplan.server.servicers._convert import MODES, run_to_proto
from masterplan.server.store import Stores, TenantStore
from masterplan.tenancy.interceptor import current_principal
from masterplan.tenancy.quotas import QuotaLedger
from masterplan.tenancy.registry import Tenant
from masterplan.v1 import planning_pb2 as pb
from masterplan.v1 import planning_pb2_grpc

MAX_CHUNK_ROWS = 262_144


def _caller() -> Tenant:
    tenant = current_principal().tenant
    assert tenant is not None  # the interceptor admits tenant keys only here
    return tenant


def _plan_date(text: str) -> dt.date:
    if not text:
        return dt.date.today()
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InvalidArgument(
            f"plan_date {text!r} is not an ISO date YYYY-MM-DD", field="plan_date"
        ) from None


def _node(n: PegNode) -> pb.PeggingNode:
    return pb.PeggingNode(
        kind=n.kind,
        ref=n.ref,
        item_id=n.item_id,
        warehouse_id=n.warehouse_id,
        date=n.date,
        qty=n.qty,
        children=[_node(c) for c in n.children],
    )


class PlanningServicer(planning_pb2_grpc.PlanningServicer):
    def __init__(self, stores: Stores, ledger: QuotaLedger, default_chunk_rows: int) -> None:
        self._stores = stores
        self._ledger = ledger
        self._chunk_rows = default_chunk_rows

    def _store(self) -> tuple[Tenant, TenantStore]:
        tenant = _caller()
        return tenant, self._stores.get(tenant.tenant_id)

    @funnel
    def RunPlan(
        self, request: pb.RunPlanRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.RunPlanResponse]:
        tenant, store = self._store()
        plan_id = parse_plan(request.parent, tenant.name)
        plan_date = _plan_date(request.plan_date)
        run_id = check_run_id(request.run_id) if request.run_id else ""
        chunk_rows = request.chunk_rows or self._chunk_rows
        if chunk_rows > MAX_CHUNK_ROWS:
            raise InvalidArgument(f"chunk_rows may be at most {MAX_CHUNK_ROWS}", field="chunk_rows")
        dataset = store.dataset(plan_id)
        with self._ledger.acquire_run(tenant.tenant_id):
            rec = store.start_run(plan_id, run_id, MODES[request.mode], plan_date, dataset.version)
            context.add_callback(rec.cancel.set)  # client cancel or deadline
            try:
                yield pb.RunPlanResponse(started=run_to_proto(tenant.name, rec))
                params = PlanParams(plan_date, request.default_group or None)
                result: PlanResult | None = None
                for event in run_engine(dataset.tables, params, rec.cancel):
                    if isinstance(event, PlanResult):
                        result = event
                    else:
                        yield pb.RunPlanResponse(
                            progress=pb.RunProgress(phase=event.phase, fraction=event.fraction)
                        )
                assert result is not None
                for name in PLAN_OUTPUT_TABLES:
                    for chunk in encode_table(name, result.tables[name], chunk_rows):
                        if rec.cancel.is_set():
                            raise Cancelled("the run was cancelled")
                        yield pb.RunPlanResponse(result_chunk=chunk)
                rec.row_counts = result.row_counts()
                rec.phase_seconds = result.phase_seconds
                rec.results = result.tables
                store.finish_run(rec, "SUCCEEDED")
                self._ledger.set_memory(tenant.tenant_id, store.nbytes())
            except (Cancelled, GeneratorExit):
                # GeneratorExit: gRPC closed the stream (client cancel, deadline,
                # server shutdown) while it waited at a yield.
                rec.cancel.set()
                store.finish_run(rec, "CANCELLED", "cancelled")
                raise
            except BaseException as exc:
                store.finish_run(
                    rec, "FAILED", str(exc) if isinstance(exc, ValueError) else "internal error"
                )
                raise
            yield pb.RunPlanResponse(summary=pb.RunSummary(run=run_to_proto(tenant.name, rec)))

    @funnel
    def GetRun(self, request: pb.GetRunRequest, context: grpc.ServicerContext) -> pb.PlanRun:
        tenant, store = self._store()
        plan_id, run_id = parse_run(request.name, tenant.name)
        return run_to_proto(tenant.name, store.run(plan_id, run_id))

    @funnel
    def ListRuns(
        self, request: pb.ListRunsRequest, context: grpc.ServicerContext
    ) -> pb.ListRunsResponse:
        tenant, store = self._store()
        plan_id = parse_plan(request.parent, tenant.name)
        runs = store.runs(plan_id)
        size = request.page_size if request.page_size > 0 else 50
        try:
            start = int(request.page_token) if request.page_token else 0
        except ValueError:
            raise InvalidArgument(
                "page_token is not one this server issued", field="page_token"
            ) from None
        page = runs[start : start + size]
        nxt = str(start + size) if start + size < len(runs) else ""
        return pb.ListRunsResponse(
            runs=[run_to_proto(tenant.name, r) for r in page], next_page_token=nxt
        )

    @funnel
    def CancelRun(self, request: pb.CancelRunRequest, context: grpc.ServicerContext) -> pb.PlanRun:
        tenant, store = self._store()
        plan_id, run_id = parse_run(request.name, tenant.name)
        rec = store.run(plan_id, run_id)
        rec.cancel.set()
        return run_to_proto(tenant.name, rec)

    @funnel
    def GetPegging(
        self, request: pb.GetPeggingRequest, context: grpc.ServicerContext
    ) -> pb.GetPeggingResponse:
        tenant, store = self._store()
        plan_id, run_id = parse_run(request.name, tenant.name)
        rec = store.run(plan_id, run_id)
        if not request.ref:
            raise InvalidArgument("ref is required", field="ref")
        index = rec.pegging()
        if index is None:
            raise FailedPrecondition(
                f"run {run_id!r} holds no results (not succeeded, or not the newest)",
                reason="NO_RESULTS",
            )
        tree = index.tree(request.ref, request.max_depth)
        return pb.GetPeggingResponse(root=_node(tree))
