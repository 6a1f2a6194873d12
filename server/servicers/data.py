"""PlanningData: the client-streaming upload of a plan's data set, whole or as a delta."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
from google.protobuf.message import DecodeError

from masterplan.server.errors import (
    AlreadyExists,
    Cancelled,
    FailedPrecondition,
    InvalidArgument,
    funnel,
)
from masterplan.server.logs import bind, error_fields, fields, scoped
from masterplan.server.metrics import ServerMetrics
from masterplan.server.names import parse_plan
from masterplan.server.store import Dataset, Stores, TenantStore, UploadReceipt
from masterplan.server.upload_checks import upload_warnings
from masterplan.server.uploads import Assembly
from masterplan.tenancy.interceptor import current_principal
from masterplan.tenancy.quotas import MemoryReservation, QuotaLedger, Quotas
from masterplan.v1 import planning_data_pb2 as pb
from masterplan.v1 import planning_data_pb2_grpc

__all__ = ["PlanningDataServicer", "add_to_server"]

log = logging.getLogger(__name__)

_MODES = {
    pb.UPLOAD_MODE_UNSPECIFIED: "snapshot",
    pb.UPLOAD_MODE_SNAPSHOT: "snapshot",
    pb.UPLOAD_MODE_DELTA: "delta",
}

#: Longest ``request_id``: it is kept per applied upload and logged.
MAX_REQUEST_ID = 128


@dataclass(frozen=True, slots=True)
class Unparsable:
    """A request message that is not an ``UploadDatasetRequest``.

    gRPC's own deserializer failure aborts the call with INTERNAL and ends
    the request iterator as if the stream had closed; handing the servicer
    this marker instead lets it refuse the upload as INVALID_ARGUMENT.
    """

    size: int
    error: str


def parse_request(data: bytes) -> pb.UploadDatasetRequest | Unparsable:
    """Deserialize one upload message, never raising."""
    try:
        return pb.UploadDatasetRequest.FromString(data)
    except (DecodeError, ValueError, RuntimeError) as exc:
        return Unparsable(len(data), str(exc) or type(exc).__name__)


def add_to_server(servicer: PlanningDataServicer, server: grpc.Server) -> None:
    """Register the servicer with :func:`parse_request` as its deserializer."""
    handlers = {
        "UploadDataset": grpc.stream_unary_rpc_method_handler(
            servicer.UploadDataset,
            request_deserializer=parse_request,
            response_serializer=pb.UploadDatasetResponse.SerializeToString,
        )
    }
    name = pb.DESCRIPTOR.services_by_name["PlanningData"].full_name
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(name, handlers),))


def _received(
    requests: Iterator[pb.UploadDatasetRequest | Unparsable],
) -> Iterator[pb.UploadDatasetRequest]:
    """The client's messages; a stream that broke off is a cancelled upload, not a fault.

    gRPC raises from the request iterator when the client cancelled, its
    deadline passed or it sent a message above the size limit; gRPC has
    already answered the client then, so there is nobody left to tell.
    """
    try:
        for i, msg in enumerate(requests):
            if isinstance(msg, Unparsable):
                raise InvalidArgument(
                    f"message {i} ({msg.size} bytes) is not an UploadDatasetRequest: "
                    f"{msg.error}; nothing applied",
                    field="payload",
                )
            yield msg
    except grpc.RpcError:
        raise Cancelled("the upload stream broke off before its trailer") from None


def _header(requests: Iterator[pb.UploadDatasetRequest]) -> pb.UploadHeader:
    first = next(requests, None)
    if first is None or first.WhichOneof("payload") != "header":
        raise InvalidArgument("the first message of an upload must be its header", field="header")
    header = first.header
    if header.mode not in _MODES:
        raise InvalidArgument(f"unknown UploadMode {int(header.mode)}", field="header.mode")
    if len(header.request_id) > MAX_REQUEST_ID:
        raise InvalidArgument(
            f"request_id is {len(header.request_id)} characters, at most {MAX_REQUEST_ID}",
            field="header.request_id",
        )
    if header.mode == pb.UPLOAD_MODE_DELTA and not header.base_etag:
        raise InvalidArgument(
            "a delta needs header.base_etag: the etag of the data set it was made against "
            "(UploadDatasetResponse.etag); without one, upload a snapshot",
            field="header.base_etag",
        )
    return header


def _receive(requests: Iterator[pb.UploadDatasetRequest], assembly: Assembly) -> None:
    """Feed the chunks to ``assembly`` until a trailer that matches, then the stream's end.

    Raises:
        InvalidArgument: a second header, a stream that ended without a
            trailer, a trailer whose counts differ, a message after it.
    """
    trailer: pb.UploadTrailer | None = None
    for i, msg in enumerate(requests, start=1):
        kind = msg.WhichOneof("payload")
        if trailer is not None:
            raise InvalidArgument(
                f"message {i}: nothing may follow the trailer; nothing applied", field="trailer"
            )
        if kind == "chunk":
            assembly.add(msg.chunk)
        elif kind == "trailer":
            trailer = msg.trailer
            assembly.check_trailer(trailer)
        elif kind == "header":
            raise InvalidArgument(
                f"message {i}: only the first message may be a header", field="header"
            )
        else:
            raise InvalidArgument(f"message {i} carries no payload", field="payload")
    if trailer is None:
        raise InvalidArgument(
            "the upload stream ended without its trailer: nothing applied", field="trailer"
        )


def _response(parent: str, receipt: UploadReceipt) -> pb.UploadDatasetResponse:
    return pb.UploadDatasetResponse(
        dataset=f"{parent}/dataset",
        tables=[pb.TableCount(table=k, rows=n) for k, n in receipt.counts.items()],
        total_rows=receipt.rows,
        bytes_held=receipt.nbytes,
        version=receipt.version,
        etag=receipt.etag,
        rows_upserted=receipt.rows_upserted,
        rows_deleted=receipt.rows_deleted,
        warnings=[
            pb.UploadWarning(
                severity=w.severity,
                code=w.code,
                item_id=w.item_id or "",
                warehouse_id=w.warehouse_id or "",
                text=w.text,
            )
            for w in (receipt.warnings.first if receipt.warnings else ())
        ],
        warning_counts=dict(receipt.warnings.counts) if receipt.warnings else {},
    )


def _check_delta_base(store: TenantStore, plan: str, header: pb.UploadHeader) -> None:
    """Refuse a delta against another data set before its data arrives.

    A retry of a delta applied before is let through: its base is gone by
    design, and the retry is answered from its receipt once its chunks have
    proved it the same upload. The store checks the base again when it
    applies the delta.

    Raises:
        FailedPrecondition: ``DATASET_CHANGED``.
    """
    if header.request_id and store.receipt(plan, header.request_id) is not None:
        return
    store.delta_base(plan, header.base_etag)


class PlanningDataServicer(planning_data_pb2_grpc.PlanningDataServicer):
    """Receives uploads; a data set replaces the plan's only once its trailer proved it whole."""

    def __init__(
        self, stores: Stores, ledger: QuotaLedger, quotas: Quotas, *, metrics: ServerMetrics
    ) -> None:
        self._stores = stores
        self._ledger = ledger
        self._quotas = quotas
        self._metrics = metrics
        #: Told of quota refusals by the error funnel.
        self.refusals = metrics

    def _held_version(self, tenant_id: str, plan: str | None) -> int | None:
        """The version a failed upload left in force (None: the plan has none)."""
        if plan is None or tenant_id not in self._stores:
            return None
        try:
            return self._stores.get(tenant_id).dataset(plan).version
        except FailedPrecondition:
            return None

    @scoped
    @funnel
    def UploadDataset(
        self, request_iterator: Iterator[pb.UploadDatasetRequest], context: grpc.ServicerContext
    ) -> pb.UploadDatasetResponse:
        tenant = current_principal().tenant
        assert tenant is not None  # the interceptor admits tenant keys only here
        bind(tenant=tenant.name)
        started = time.monotonic()
        plan: str | None = None
        mode = "unknown"  # until the header says
        requests = _received(request_iterator)
        try:
            header = _header(requests)
            mode = _MODES[header.mode]
            plan = parse_plan(header.parent, tenant.name, "header.parent")
            bind(plan=plan, request=header.request_id)
            log.info("upload started", extra=fields(mode=mode))
            store = self._stores.get(tenant.tenant_id, tenant.name)
            if header.mode == pb.UPLOAD_MODE_DELTA:
                _check_delta_base(store, plan, header)
            elif not store.has_plan(plan):  # before the data arrives, not after
                self._ledger.check_plans(store.plan_count() + 1)
            with (
                store.uploading(plan),
                self._ledger.reserve_memory(tenant.tenant_id) as reservation,
            ):
                receipt, retried, received = self._apply(store, plan, header, requests, reservation)
        except Exception as exc:
            # The version that stays in force: what the plan's next run will use.
            bind(version=self._held_version(tenant.tenant_id, plan))
            seconds = round(time.monotonic() - started, 3)
            self._metrics.upload_ended(tenant.name, mode, "failed")
            log.warning("upload failed", extra=error_fields(exc, mode=mode, seconds=seconds))
            raise
        bind(version=receipt.version)
        self._metrics.upload_ended(
            tenant.name, mode, "repeated" if retried else "applied", received
        )
        log.info(
            "upload repeated: answered, not applied again" if retried else "upload finished",
            extra=fields(
                mode=mode,
                received=received,
                rows=receipt.rows,
                upserted=receipt.rows_upserted,
                deleted=receipt.rows_deleted,
                tables={name: n for name, n in receipt.counts.items() if n},
                bytes=receipt.nbytes,
                seconds=round(time.monotonic() - started, 3),
            ),
        )
        return _response(header.parent, receipt)

    def _apply(
        self,
        store: TenantStore,
        plan: str,
        header: pb.UploadHeader,
        requests: Iterator[pb.UploadDatasetRequest],
        reservation: MemoryReservation,
    ) -> tuple[UploadReceipt, bool, int]:
        """Receive the whole stream, then replace or change the plan's data set, or answer a retry.

        Returns:
            The applied upload's receipt, whether it was a retry of an
            upload applied before (then nothing was applied now), and the
            rows the stream carried (a delta's upserts and deletes).
        """
        assembly = Assembly(
            self._quotas.max_rows,
            self._quotas.max_upload_bytes,
            reservation.add,
            digest=bool(header.request_id),
            delta=header.mode == pb.UPLOAD_MODE_DELTA,
        )
        _receive(requests, assembly)
        if header.request_id:
            earlier = store.receipt(plan, header.request_id)
            if earlier is not None:
                if earlier.digest != assembly.digest:
                    raise AlreadyExists(
                        f"request_id {header.request_id!r} was applied to plan {plan!r} "
                        "with other content; use a new request_id for new data",
                        field="header.request_id",
                    )
                return earlier, True, assembly.total_rows
        if assembly.delta:
            ds = self._apply_delta(store, plan, header, assembly, reservation)
        else:
            tables = assembly.tables()
            # Refuse before replacing anything: the previous data set stays intact.
            reservation.check(store.nbytes_if_replaced(plan, tables))
            ds = store.put_dataset(
                plan,
                tables,
                max_plans=self._quotas.max_plans,
                max_rows=self._quotas.max_rows,
                warnings=None if header.skip_checks else upload_warnings(tables),
                request_id=header.request_id,
                digest=assembly.digest,
            )
        reservation.commit(store.nbytes())
        return UploadReceipt.of(ds, header.request_id, assembly.digest), False, assembly.total_rows

    def _apply_delta(
        self,
        store: TenantStore,
        plan: str,
        header: pb.UploadHeader,
        assembly: Assembly,
        reservation: MemoryReservation,
    ) -> Dataset:
        """Change the plan's data set by the received delta, atomically.

        The memory of the changed tables' new copies is claimed before they
        are built, and the tenant's bytes after the delta are checked before
        it replaces anything.
        """
        upserts, deletes = assembly.changes()
        return store.apply_delta(
            plan,
            header.base_etag,
            upserts,
            deletes,
            request_id=header.request_id,
            digest=assembly.digest,
            max_plans=self._quotas.max_plans,
            max_rows=self._quotas.max_rows,
            checks=None if header.skip_checks else upload_warnings,
            claim=reservation.add,
            check=reservation.check,
        )
