"""A typed Python client over the generated stubs.

Every call carries a deadline; bulk data crosses as columnar chunks through
the shared codec; failures arrive as the typed exceptions of
:mod:`client.errors`.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

import grpc
from google.protobuf import empty_pb2
from google.protobuf.message import Message

from masterplan.client import errors
from masterplan.client.errors import from_rpc_error
from masterplan.codec import (
    DEFAULT_CHUNK_ROWS,
    concat,
    decode_chunk,
    decode_chunk_coded,
    encode_table,
)
from masterplan.contract.coded import CodedTable
from masterplan.contract.columns import Table
from masterplan.contract.tables import PLAN_OUTPUT_TABLES, RESULT_OUTPUT_SPECS
from masterplan.contract.views import DelayPath, NetRequirements, PlanReport
from masterplan.v1 import (
    columnar_pb2,
    planning_data_pb2,
    planning_data_pb2_grpc,
    planning_pb2,
    planning_pb2_grpc,
    tenant_admin_pb2,
    tenant_admin_pb2_grpc,
)
from masterplan.viewcodec import (
    delay_path_from_proto,
    net_requirements_from_proto,
    report_from_proto,
    run_info_from_proto,
)

__all__ = ["ClientTls", "MasterplanClient", "ResultSink", "RunOutcome"]

MiB = 1024 * 1024
R = TypeVar("R", bound=Message)

#: ``upload``'s modes on the wire.
_UPLOAD_MODES = {
    "snapshot": planning_data_pb2.UPLOAD_MODE_SNAPSHOT,
    "delta": planning_data_pb2.UPLOAD_MODE_DELTA,
}


def _expect(response: object, response_type: type[R]) -> R:
    """``response``, checked to be the method's response message.

    gRPC is untyped, so a stub's call returns ``Any``; checking here gives
    every public method a real return type instead of an unchecked cast.
    """
    if not isinstance(response, response_type):
        raise TypeError(f"expected {response_type.__name__}, got {type(response).__name__}")
    return response


#: How often :meth:`MasterplanClient.kept_results_after_drop` asks again.
_RECOVER_POLL_SECONDS = 0.25

#: The longest a client waits for the server to take the cancel of a run it
#: gives up (:meth:`MasterplanClient._give_up`).
_GIVE_UP_SECONDS = 5.0

log = logging.getLogger(__name__)

#: What a gRPC metadata value may hold: printable ASCII.
_HEADER_TEXT = re.compile(r"[\x20-\x7e]+")


@dataclass(frozen=True, slots=True)
class ClientTls:
    """PEM bytes: the CA that signed the server, and optionally a client certificate."""

    root_ca: bytes | None = None
    cert_chain: bytes | None = None
    private_key: bytes | None = None


@dataclass(slots=True)
class RunOutcome:
    """A finished RunPlan: the run resource and its result tables.

    Attributes:
        run: The run resource from the stream's summary.
        tables: Per table, the whole result, or the rows added when the
            stream was a difference (:attr:`is_difference`).
        removed: Per table, the rows removed from the base run's result
            (every copy of each); empty tables when the stream was whole.
    """

    run: planning_pb2.PlanRun
    tables: dict[str, Table] = field(default_factory=dict)
    removed: dict[str, Table] = field(default_factory=dict)

    @property
    def is_difference(self) -> bool:
        """Whether the stream carried the difference to ``run.base_run_id``.

        The server falls back to the whole result when it no longer holds
        the base run; only the summary says which one arrived.
        """
        return bool(self.run.base_run_id)


class ResultSink(Protocol):
    """Takes a run's result chunks as they arrive, instead of the outcome holding them.

    :meth:`begin` comes first, with the finished run (its ``base_run_id``
    says whether the chunks are a difference to that run or the whole
    result, its ``row_counts``, ``rows_added`` and ``rows_removed`` what
    they amount to); then, table by table, a table's removed rows before
    its added rows. A server too old to announce the run first is collected
    as before and handed over at the end, in the same order.

    A sink whose ``accepts_coded_text`` attribute is True gets the text
    columns of streamed chunks as they cross the wire,
    :class:`~masterplan.contract.coded.Coded` (codes into the chunk's
    dictionary), rather than object arrays of the rows: a writer that turns
    text into bytes then does so once per distinct value.
    """

    def begin(self, run: planning_pb2.PlanRun) -> None: ...

    def removed(self, table: str, rows: CodedTable) -> None: ...

    def added(self, table: str, rows: CodedTable) -> None: ...


class MasterplanClient:
    """Client for one server, acting with one key (a tenant's or the admin's).

    Args:
        target: ``host:port``.
        api_key: The tenant API key or the admin key.
        timeout: Deadline in seconds of unary calls.
        stream_timeout: Deadline in seconds of uploads and runs.
        tls: TLS material; None for a plaintext channel.
    """

    def __init__(
        self,
        target: str,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        stream_timeout: float = 3600.0,
        tls: ClientTls | None = None,
        max_message_bytes: int = 64 * MiB,
    ) -> None:
        if api_key and not _HEADER_TEXT.fullmatch(api_key):
            # gRPC refuses such a header as INTERNAL "Invalid metadata", at
            # every call; a key pasted with a tab or a line break says so here.
            raise ValueError(
                "the API key holds a character a gRPC header cannot carry (a tab, a line "
                "break or a non-ASCII character): check how it was copied"
            )
        options = [
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
        ]
        if tls is not None:
            creds = grpc.ssl_channel_credentials(tls.root_ca, tls.private_key, tls.cert_chain)
            self._channel = grpc.secure_channel(target, creds, options)
        else:
            self._channel = grpc.insecure_channel(target, options)
        self._metadata = (("authorization", f"Bearer {api_key}"),) if api_key else ()
        self.timeout = timeout
        self.stream_timeout = stream_timeout
        self._admin = tenant_admin_pb2_grpc.TenantAdminStub(self._channel)
        self._data = planning_data_pb2_grpc.PlanningDataStub(self._channel)
        self._planning = planning_pb2_grpc.PlanningStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> MasterplanClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _unary(self, method: Callable[..., object], request: Message, response_type: type[R]) -> R:
        """Call a unary method with the deadline and key; failures become typed errors."""
        try:
            response = method(request, timeout=self.timeout, metadata=self._metadata)
        except grpc.RpcError as err:
            raise from_rpc_error(err) from None
        return _expect(response, response_type)

    # -- tenants -------------------------------------------------------------
    def install_tenant(self, tenant_id: str) -> tenant_admin_pb2.InstallTenantResponse:
        return self._unary(
            self._admin.InstallTenant,
            tenant_admin_pb2.InstallTenantRequest(tenant_id=tenant_id),
            tenant_admin_pb2.InstallTenantResponse,
        )

    def uninstall_tenant(self, tenant_id: str) -> None:
        self._unary(
            self._admin.UninstallTenant,
            tenant_admin_pb2.UninstallTenantRequest(name=f"tenants/{tenant_id}"),
            empty_pb2.Empty,
        )

    def rotate_api_key(self, tenant_id: str) -> tenant_admin_pb2.RotateApiKeyResponse:
        return self._unary(
            self._admin.RotateApiKey,
            tenant_admin_pb2.RotateApiKeyRequest(name=f"tenants/{tenant_id}"),
            tenant_admin_pb2.RotateApiKeyResponse,
        )

    def list_tenants(self, page_size: int = 0) -> list[tenant_admin_pb2.Tenant]:
        """Every tenant, ordered by name (read page by page)."""
        tenants: list[tenant_admin_pb2.Tenant] = []
        token = ""
        while True:
            resp = self._unary(
                self._admin.ListTenants,
                tenant_admin_pb2.ListTenantsRequest(page_size=page_size, page_token=token),
                tenant_admin_pb2.ListTenantsResponse,
            )
            tenants.extend(resp.tenants)
            token = resp.next_page_token
            if not token:
                return tenants

    # -- data ----------------------------------------------------------------
    def upload(
        self,
        parent: str,
        tables: Iterable[tuple[str, Table]],
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
        on_chunk: Callable[[str, int], None] | None = None,
        request_id: str | None = None,
        *,
        mode: Literal["snapshot", "delta"] = "snapshot",
        base_etag: str = "",
        deletes: Iterable[tuple[str, Table]] = (),
        checks: bool = True,
    ) -> planning_data_pb2.UploadDatasetResponse:
        """Upload a snapshot or a delta: ``tables`` yields ``(table name, columns)`` pieces.

        The stream ends with a trailer of the rows sent per table, so that
        the server applies the upload only if all of it arrived. Pass the
        same ``request_id`` to retry an upload whose answer was lost: the
        server answers the first upload's response instead of applying it
        again (a new random id by default).

        A delta (``mode="delta"``) changes the data set whose ``etag``
        (from the response of the upload that made it) is ``base_etag``:
        ``deletes`` yields the rows to remove (their key columns, or every
        column of a table without a key), sent before ``tables``, whose rows
        replace the rows with their key or are added. When the server holds
        another data set it raises :class:`~masterplan.client.errors.DatasetChanged`
        and applies nothing: send a snapshot then.

        The response's ``warnings`` and ``warning_counts`` say what the
        input checks (SPEC §5.9) find in the data set the upload leaves;
        ``checks=False`` asks the server to skip them (a client that plans
        next gets them as the run's plan messages).

        Raises:
            ValueError: an unknown ``mode``, or ``deletes`` in a snapshot.
        """
        if mode not in _UPLOAD_MODES:
            raise ValueError(f"mode must be 'snapshot' or 'delta', not {mode!r}")
        deletes = list(deletes)
        if deletes and mode != "delta":
            raise ValueError("a snapshot cannot delete rows: pass mode='delta'")
        upsert = (
            columnar_pb2.CHANGE_KIND_UPSERT
            if mode == "delta"
            else columnar_pb2.CHANGE_KIND_UNSPECIFIED
        )

        def requests() -> Iterator[planning_data_pb2.UploadDatasetRequest]:
            yield planning_data_pb2.UploadDatasetRequest(
                header=planning_data_pb2.UploadHeader(
                    parent=parent,
                    mode=_UPLOAD_MODES[mode],
                    request_id=request_id or uuid.uuid4().hex,
                    base_etag=base_etag,
                    skip_checks=not checks,
                )
            )
            rows: dict[str, int] = {}
            chunks = 0
            changes = [(columnar_pb2.CHANGE_KIND_DELETE, t) for t in deletes]
            for kind, (name, table) in itertools.chain(changes, ((upsert, t) for t in tables)):
                for chunk in encode_table(name, table, chunk_rows):
                    chunk.change = kind
                    yield planning_data_pb2.UploadDatasetRequest(chunk=chunk)
                    rows[name] = rows.get(name, 0) + chunk.row_count
                    chunks += 1
                    if on_chunk is not None:
                        on_chunk(name, chunk.row_count)
            yield planning_data_pb2.UploadDatasetRequest(
                trailer=planning_data_pb2.UploadTrailer(
                    tables=[planning_data_pb2.TableCount(table=k, rows=n) for k, n in rows.items()],
                    chunks=chunks,
                )
            )

        try:
            response = self._data.UploadDataset(
                requests(), timeout=self.stream_timeout, metadata=self._metadata
            )
        except grpc.RpcError as err:
            raise from_rpc_error(err) from None
        return _expect(response, planning_data_pb2.UploadDatasetResponse)

    # -- planning ------------------------------------------------------------
    def run_plan_events(
        self, request: planning_pb2.RunPlanRequest
    ) -> Iterator[planning_pb2.RunPlanResponse]:
        """The raw event stream of RunPlan (cancel it by closing the iterator)."""
        call = self._planning.RunPlan(request, timeout=self.stream_timeout, metadata=self._metadata)
        yield from _events(call)

    def run_plan(
        self,
        parent: str,
        *,
        plan_date: dt.date | None = None,
        mode: str = "regeneration",
        default_group: str | None = None,
        run_id: str = "",
        on_progress: Callable[[str, float], None] | None = None,
        on_chunk: Callable[[str, int], None] | None = None,
        base_run_id: str = "",
        sink: ResultSink | None = None,
        chunk_rows: int = 0,
        index_order: bool = False,
    ) -> RunOutcome:
        """Run a plan and collect its result tables.

        Args:
            base_run_id: The run whose result the caller holds: when the
                server still holds it too, the stream carries only the
                difference (``removed`` and ``tables`` of the outcome, and
                ``is_difference``); otherwise the whole result.
            sink: Takes the result chunks as they arrive (see
                :class:`ResultSink`); the outcome then holds the run only.
                An exception the sink raises cancels the run's stream.
            chunk_rows: Rows per result chunk; 0 for the server's default.
            index_order: Each table's rows in the order of its index in the
                SCM schema, for a writer that stores them as they arrive
                (:func:`masterplan.connector.writer.writes_in_index_order`
                says which databases gain); the server sorts them first.
        """
        request = planning_pb2.RunPlanRequest(
            parent=parent,
            mode=planning_pb2.RUN_MODE_NET_CHANGE
            if mode == "net_change"
            else planning_pb2.RUN_MODE_REGENERATION,
            plan_date=plan_date.isoformat() if plan_date else "",
            default_group=default_group or "",
            run_id=run_id,
            base_run_id=base_run_id,
            chunk_rows=chunk_rows,
            index_order=index_order,
        )
        return self._collect(
            self.run_plan_events(request), on_progress, on_chunk, sink, self._give_up
        )

    def _give_up(self, name: str) -> None:
        """Cancel run ``name``, whose stream this client leaves before its
        summary (an interrupt, a sink that failed): closing the stream does
        not cancel it, since a run outlives a dropped connection (SPEC §3).
        Best effort: a server that cannot be reached ends the run at the
        stream's deadline, or keeps it as a run whose stream dropped."""
        try:
            self._planning.CancelRun(
                planning_pb2.CancelRunRequest(name=name),
                timeout=min(self.timeout, _GIVE_UP_SECONDS),
                metadata=self._metadata,
            )
        except grpc.RpcError:
            log.debug("cancelling the run %s given up failed", name, exc_info=True)

    def read_run_results(
        self,
        name: str,
        *,
        base_run_id: str = "",
        on_chunk: Callable[[str, int], None] | None = None,
        sink: ResultSink | None = None,
        index_order: bool = False,
    ) -> RunOutcome:
        """A kept run's results again, as :meth:`run_plan` collected them.

        For a run whose RunPlan stream was lost after the run succeeded: the
        server keeps the newest succeeded run of each plan
        (``PlanRun.results_kept``).

        Args:
            name: ``tenants/{tenant}/plans/{plan}/runs/{run}``.
            base_run_id: As for :meth:`run_plan`: the stream is the difference
                to that run when the server holds its result too.
            sink, index_order: As for :meth:`run_plan`.

        Raises:
            errors.FailedPrecondition: The server no longer holds the results.
        """
        request = planning_pb2.ReadRunResultsRequest(
            name=name, base_run_id=base_run_id, index_order=index_order
        )
        call = self._planning.ReadRunResults(
            request, timeout=self.stream_timeout, metadata=self._metadata
        )
        return self._collect(_events(call), None, on_chunk, sink)

    def kept_results_after_drop(
        self,
        name: str,
        *,
        base_run_id: str = "",
        wait_seconds: float = 30.0,
        on_chunk: Callable[[str, int], None] | None = None,
        sink: ResultSink | None = None,
        index_order: bool = False,
    ) -> RunOutcome | None:
        """The results of run ``name`` after its RunPlan stream was lost, if the server kept them.

        A dropped connection, a proxy's reset or a restarted load balancer
        ends the stream, not the run: a run whose stream dropped while the
        engine worked goes on, and once the engine has finished, the server
        keeps the run's results before it sends the first chunk. This asks
        for the run (waiting up to ``wait_seconds`` for the server to answer
        again, and as long as it answers that the run is still working: the
        server's engine-time quota bounds that) and reads its results again
        when it succeeded (into ``sink``, when given, as :meth:`run_plan`
        would).

        Returns:
            The run's outcome, as :meth:`run_plan` returns it; None when the
            run did not succeed, or the server no longer holds its results
            (it restarted, or a newer run of the plan succeeded since).
        """
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                run = self.get_run(name)
            except (errors.Unavailable, errors.DeadlineExceeded):
                run = None
            except errors.NotFound:
                return None
            if run is not None and run.state != planning_pb2.PlanRun.RUNNING:
                break
            if run is not None:  # answered, and still working
                deadline = time.monotonic() + wait_seconds
            elif time.monotonic() >= deadline:
                return None
            time.sleep(_RECOVER_POLL_SECONDS)
        if run.state != planning_pb2.PlanRun.SUCCEEDED or not run.results_kept:
            return None
        try:
            return self.read_run_results(
                name,
                base_run_id=base_run_id,
                on_chunk=on_chunk,
                sink=sink,
                index_order=index_order,
            )
        except errors.FailedPrecondition:  # a newer run succeeded meanwhile
            return None

    @staticmethod
    def _collect(
        events: Iterator[planning_pb2.RunPlanResponse],
        on_progress: Callable[[str, float], None] | None,
        on_chunk: Callable[[str, int], None] | None,
        sink: ResultSink | None = None,
        give_up: Callable[[str], None] | None = None,
    ) -> RunOutcome:
        """The result tables and run of a RunPlan or ReadRunResults stream.

        With a ``sink``, the chunks go to it as they arrive (once the results
        header came) and the outcome's tables stay empty. ``give_up`` is
        called with the run's name when this side leaves the stream before
        the run has succeeded (an exception of its own, an interrupt), not
        when the stream fails.

        Raises:
            ConnectionError: The stream ended without its summary.
        """
        parts: dict[str, list[Table]] = {name: [] for name in PLAN_OUTPUT_TABLES}
        gone: dict[str, list[Table]] = {name: [] for name in PLAN_OUTPUT_TABLES}
        rows = dict.fromkeys(PLAN_OUTPUT_TABLES, 0)
        rows_gone = dict.fromkeys(PLAN_OUTPUT_TABLES, 0)
        outcome: RunOutcome | None = None
        streaming = False
        coded = getattr(sink, "accepts_coded_text", False) is True
        started = ""  # the run's name, until it has succeeded
        with _closing(events), _giving_up(give_up, lambda: started):
            for event in events:
                kind = event.WhichOneof("event")
                if kind == "started":
                    started = event.started.name
                if kind == "progress" and on_progress is not None:
                    on_progress(event.progress.phase, event.progress.fraction)
                elif kind == "results_header":
                    started = ""  # succeeded: kept whatever becomes of the stream
                    if sink is not None:
                        sink.begin(event.results_header.run)
                        streaming = True
                elif kind == "result_chunk":
                    chunk = event.result_chunk
                    spec = RESULT_OUTPUT_SPECS[chunk.table]
                    delete = chunk.change == columnar_pb2.CHANGE_KIND_DELETE
                    seen = rows_gone if delete else rows
                    if streaming:
                        assert sink is not None
                        # Coded text where the sink said it takes it (ResultSink).
                        table: CodedTable = (
                            decode_chunk_coded(chunk, spec, seen[chunk.table])
                            if coded
                            else decode_chunk(chunk, spec, seen[chunk.table])
                        )
                        if delete:
                            sink.removed(chunk.table, table)
                        else:
                            sink.added(chunk.table, table)
                    else:
                        part = decode_chunk(chunk, spec, seen[chunk.table])
                        (gone if delete else parts)[chunk.table].append(part)
                    seen[chunk.table] += chunk.row_count
                    if on_chunk is not None:
                        on_chunk(chunk.table, chunk.row_count)
                elif kind == "summary":
                    outcome = RunOutcome(event.summary.run)
        if outcome is None:
            raise ConnectionError("the run's stream ended without a summary")
        if sink is not None and not streaming:
            sink.begin(outcome.run)
            for name in PLAN_OUTPUT_TABLES:
                if gone[name]:
                    sink.removed(name, concat(RESULT_OUTPUT_SPECS[name], gone[name]))
                sink.added(name, concat(RESULT_OUTPUT_SPECS[name], parts[name]))
        if sink is not None:
            return outcome
        outcome.tables = {
            name: concat(RESULT_OUTPUT_SPECS[name], parts[name]) for name in PLAN_OUTPUT_TABLES
        }
        outcome.removed = {
            name: concat(RESULT_OUTPUT_SPECS[name], gone[name]) for name in PLAN_OUTPUT_TABLES
        }
        return outcome

    def get_run(self, name: str) -> planning_pb2.PlanRun:
        return self._unary(
            self._planning.GetRun, planning_pb2.GetRunRequest(name=name), planning_pb2.PlanRun
        )

    def list_runs(self, parent: str) -> list[planning_pb2.PlanRun]:
        resp = self._unary(
            self._planning.ListRuns,
            planning_pb2.ListRunsRequest(parent=parent),
            planning_pb2.ListRunsResponse,
        )
        return list(resp.runs)

    def newest_succeeded_run(self, parent: str) -> planning_pb2.PlanRun | None:
        """The newest succeeded run of plan ``parent`` (the one a server keeps
        results of), or None."""
        for run in self.list_runs(parent):  # newest first
            if run.state == planning_pb2.PlanRun.SUCCEEDED:
                return run
        return None

    def list_plans(self, parent: str) -> list[planning_pb2.Plan]:
        """Every plan of tenant ``parent`` (``tenants/{tenant}``), page by page."""
        plans: list[planning_pb2.Plan] = []
        token = ""
        while True:
            resp = self._unary(
                self._planning.ListPlans,
                planning_pb2.ListPlansRequest(parent=parent, page_token=token),
                planning_pb2.ListPlansResponse,
            )
            plans.extend(resp.plans)
            token = resp.next_page_token
            if not token:
                return plans

    def get_plan(self, name: str) -> planning_pb2.Plan:
        """A plan: its data set version, the rows and bytes it holds, its newest run."""
        return self._unary(
            self._planning.GetPlan, planning_pb2.GetPlanRequest(name=name), planning_pb2.Plan
        )

    def delete_plan(self, name: str) -> None:
        """Delete a plan with its data set, runs and results (frees their memory)."""
        self._unary(
            self._planning.DeletePlan,
            planning_pb2.DeletePlanRequest(name=name),
            empty_pb2.Empty,
        )

    def cancel_run(self, name: str) -> planning_pb2.PlanRun:
        return self._unary(
            self._planning.CancelRun, planning_pb2.CancelRunRequest(name=name), planning_pb2.PlanRun
        )

    def get_pegging(
        self,
        name: str,
        ref: str = "",
        max_depth: int = 0,
        *,
        max_nodes: int = 0,
        continuation: str = "",
        up: bool = False,
    ) -> planning_pb2.GetPeggingResponse:
        """The pegging tree below ``ref``, flat: ``nodes`` with parent indexes.

        Down from a demand to purchased parts and on-hand, or with ``up``
        from a supply to the end demands it serves; ``max_depth`` counts BOM
        levels. A demand or supply that several paths reach is sent once
        (later nodes name it in ``same_as``). When ``truncated``, call again
        with a node's ``continuation`` (and no ``ref``) for what lies below it.
        """
        return self._unary(
            self._planning.GetPegging,
            planning_pb2.GetPeggingRequest(
                name=name,
                ref=ref,
                max_depth=max_depth,
                max_nodes=max_nodes,
                flat=True,
                continuation=continuation,
                up=up,
            ),
            planning_pb2.GetPeggingResponse,
        )

    def get_net_requirements(self, name: str, item_id: str, warehouse_id: str) -> NetRequirements:
        """One SKU of run ``name``: its requirements and receipts with the
        projected quantity after each, its planned orders and messages."""
        run = run_info_from_proto(self.get_run(name))
        msg = self._unary(
            self._planning.GetNetRequirements,
            planning_pb2.GetNetRequirementsRequest(
                name=name, item_id=item_id, warehouse_id=warehouse_id
            ),
            planning_pb2.NetRequirements,
        )
        return net_requirements_from_proto(msg, run)

    def explain_delay(self, name: str, ref: str) -> DelayPath:
        """Why demand ``ref`` of run ``name`` is late: the path down to its cause."""
        return delay_path_from_proto(
            self._unary(
                self._planning.ExplainDelay,
                planning_pb2.ExplainDelayRequest(name=name, ref=ref),
                planning_pb2.DelayPath,
            )
        )

    def get_plan_report(self, name: str, top: int = 0, charts: int = 0) -> PlanReport:
        """What the plan report of run ``name`` shows (0: the server's defaults)."""
        return report_from_proto(
            self._unary(
                self._planning.GetPlanReport,
                planning_pb2.GetPlanReportRequest(name=name, top=top, charts=charts),
                planning_pb2.PlanReport,
            )
        )

    def simulate(
        self,
        parent: str,
        *,
        upserts: Iterable[tuple[str, Table]] = (),
        deletes: Iterable[tuple[str, Table]] = (),
        plan_date: dt.date | None = None,
        default_group: str | None = None,
        demand_refs: Iterable[str] = (),
        include_difference: bool = False,
        timeout: float | None = None,
    ) -> planning_pb2.SimulateResponse:
        """Plan a what-if delta on the server without applying it (SPEC §6).

        ``upserts`` yields ``(table name, rows)`` added or replacing the row
        with the same key; ``deletes`` yields ``(table name, key columns)`` of
        rows removed. The answer holds a promise per demand ref (its futures
        date and the supplies pegged to it) and the difference to the plan's
        newest succeeded run (the rows only with ``include_difference``).
        Nothing changes on the server.

        Args:
            timeout: Deadline in seconds; the stream deadline by default,
                since a simulation plans the whole data set.
        """
        changes: list[columnar_pb2.ColumnarChunk] = []
        for kind, tables in (
            (columnar_pb2.CHANGE_KIND_UPSERT, upserts),
            (columnar_pb2.CHANGE_KIND_DELETE, deletes),
        ):
            for name, table in tables:
                for chunk in encode_table(name, table):
                    chunk.change = kind
                    changes.append(chunk)
        request = planning_pb2.SimulateRequest(
            parent=parent,
            changes=changes,
            plan_date=plan_date.isoformat() if plan_date else "",
            default_group=default_group or "",
            demand_refs=list(demand_refs),
            include_difference=include_difference,
        )
        try:
            response = self._planning.Simulate(
                request,
                timeout=self.stream_timeout if timeout is None else timeout,
                metadata=self._metadata,
            )
        except grpc.RpcError as err:
            raise from_rpc_error(err) from None
        return _expect(response, planning_pb2.SimulateResponse)


@contextmanager
def _closing(events: Iterator[Any]) -> Iterator[None]:
    """Close ``events`` (a generator: its call is cancelled) when the block ends."""
    try:
        yield
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()


@contextmanager
def _giving_up(give_up: Callable[[str], None] | None, run: Callable[[], str]) -> Iterator[None]:
    """Call ``give_up`` with ``run()`` when the block leaves by an exception
    of this side's (a sink's, an interrupt), while ``run()`` names a run that
    has not succeeded; a failed stream (a typed client error) gives up
    nothing: its run may still succeed and keep its results."""
    try:
        yield
    except errors.MasterplanClientError:
        raise
    except BaseException:
        name = run()
        if give_up is not None and name:
            give_up(name)
        raise


def _events(call: Any) -> Iterator[planning_pb2.RunPlanResponse]:
    """A server stream's messages, its failure as the typed exception; the
    call is cancelled when the iterator is closed early."""
    try:
        yield from call
    except grpc.RpcError as err:
        raise from_rpc_error(err) from None
    finally:
        call.cancel()
