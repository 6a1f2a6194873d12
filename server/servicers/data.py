"""PlanningData: the client-streaming upload of a plan's data set."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import grpc

from masterplan.contract.columns import table_length
from masterplan.server.errors import (
    Cancelled,
    FailedPrecondition,
    InvalidArgument,
    Unimplemented,
    funnel,
)
from masterplan.server.logs import bind, error_fields, fields, scoped
from masterplan.server.names import parse_plan
from masterplan.server.store import Stores
from masterplan.server.uploads import assemble
from masterplan.tenancy.interceptor import current_principal
from masterplan.tenancy.quotas import QuotaLedger, Quotas
from masterplan.v1 import columnar_pb2, planning_data_pb2_grpc
from masterplan.v1 import planning_data_pb2 as pb

log = logging.getLogger(__name__)

_MODES = {
    pb.UPLOAD_MODE_UNSPECIFIED: "snapshot",
    pb.UPLOAD_MODE_SNAPSHOT: "snapshot",
    pb.UPLOAD_MODE_DELTA: "delta",
}


def _received(requests: Iterator[pb.UploadDatasetRequest]) -> Iterator[pb.UploadDatasetRequest]:
    """The client's messages; a stream that broke off is a cancelled upload, not a fault.

    gRPC raises from the request iterator when the client cancelled, its
    deadline passed or it sent a message above the size limit; gRPC has
    already answered the client then, so there is nobody left to tell.
    """
    try:
        yield from requests
    except grpc.RpcError:
        raise Cancelled("the upload stream ended before its last chunk") from None


def _header(requests: Iterator[pb.UploadDatasetRequest]) -> pb.UploadHeader:
    first = next(requests, None)
    if first is None or first.WhichOneof("payload") != "header":
        raise InvalidArgument("the first message of an upload must be its header", field="header")
    return first.header


def _chunks(requests: Iterator[pb.UploadDatasetRequest]) -> Iterator[columnar_pb2.ColumnarChunk]:
    for i, msg in enumerate(requests, start=1):
        if msg.WhichOneof("payload") != "chunk":
            raise InvalidArgument(
                f"message {i}: only the first message may be a header", field="header"
            )
        yield msg.chunk


class PlanningDataServicer(planning_data_pb2_grpc.PlanningDataServicer):
    """Receives uploads; a data set replaces the plan's only once it all decoded."""

    def __init__(self, stores: Stores, ledger: QuotaLedger, quotas: Quotas) -> None:
        self._stores = stores
        self._ledger = ledger
        self._quotas = quotas

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
        requests = _received(request_iterator)
        try:
            header = _header(requests)
            plan = parse_plan(header.parent, tenant.name, "header.parent")
            bind(plan=plan, request=header.request_id)
            log.info("upload started", extra=fields(mode=_MODES.get(header.mode, header.mode)))
            if header.mode == pb.UPLOAD_MODE_DELTA:
                raise Unimplemented(
                    "delta uploads are not supported yet; upload a snapshot", field="header.mode"
                )
            tables = assemble(
                _chunks(requests), self._quotas.max_rows, self._quotas.max_upload_bytes
            )
            store = self._stores.get(tenant.tenant_id)
            # Refuse before replacing anything: the previous data set stays intact.
            self._ledger.set_memory(tenant.tenant_id, store.nbytes_if_replaced(plan, tables))
            ds = store.put_dataset(plan, tables)
        except Exception as exc:
            # The version that stays in force: what the plan's next run will use.
            bind(version=self._held_version(tenant.tenant_id, plan))
            seconds = round(time.monotonic() - started, 3)
            log.warning("upload failed", extra=error_fields(exc, seconds=seconds))
            raise
        counts = {name: table_length(t) for name, t in tables.items()}
        bind(version=ds.version)
        log.info(
            "upload finished",
            extra=fields(
                rows=ds.rows,
                tables={name: n for name, n in counts.items() if n},
                bytes=ds.nbytes,
                seconds=round(time.monotonic() - started, 3),
            ),
        )
        return pb.UploadDatasetResponse(
            dataset=f"{header.parent}/dataset",
            tables=[pb.TableCount(table=k, rows=n) for k, n in counts.items()],
            total_rows=ds.rows,
            bytes_held=ds.nbytes,
            version=ds.version,
        )
