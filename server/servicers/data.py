"""PlanningData: the client-streaming upload of a plan's data set."""

from __future__ import annotations

from collections.abc import Iterator

import grpc

from masterplan.contract.columns import table_length
from masterplan.server.errors import InvalidArgument, Unimplemented, funnel
from masterplan.server.names import parse_plan
from masterplan.server.store import Stores
from masterplan.server.uploads import assemble
from masterplan.tenancy.interceptor import current_principal
from masterplan.tenancy.quotas import QuotaLedger, Quotas
from masterplan.v1 import columnar_pb2, planning_data_pb2_grpc
from masterplan.v1 import planning_data_pb2 as pb


class PlanningDataServicer(planning_data_pb2_grpc.PlanningDataServicer):
    def __init__(self, stores: Stores, ledger: QuotaLedger, quotas: Quotas) -> None:
        self._stores = stores
        self._ledger = ledger
        self._quotas = quotas

    @funnel
    def UploadDataset(
        self, request_iterator: Iterator[pb.UploadDatasetRequest], context: grpc.ServicerContext
    ) -> pb.UploadDatasetResponse:
        tenant = current_principal().tenant
        assert tenant is not None
        first = next(request_iterator, None)
        if first is None or first.WhichOneof("payload") != "header":
            raise InvalidArgument(
                "the first message of an upload must be its header", field="header"
            )
        header = first.header
        plan = parse_plan(header.parent, tenant.name, "header.parent")
        if header.mode == pb.UPLOAD_MODE_DELTA:
            raise Unimplemented(
                "delta uploads are not supported yet; upload a snapshot", field="header.mode"
            )

        def chunks() -> Iterator[columnar_pb2.ColumnarChunk]:
            for i, msg in enumerate(request_iterator, start=1):
                if msg.WhichOneof("payload") != "chunk":
                    raise InvalidArgument(
                        f"message {i}: only the first message may be a header", field="header"
                    )
                yield msg.chunk

        tables = assemble(chunks(), self._quotas.max_rows, self._quotas.max_upload_bytes)
        store = self._stores.get(tenant.tenant_id)
        # Refuse before replacing anything: the previous data set stays intact.
        self._ledger.set_memory(tenant.tenant_id, store.nbytes_if_replaced(plan, tables))
        ds = store.put_dataset(plan, tables)
        return pb.UploadDatasetResponse(
            dataset=f"{header.parent}/dataset",
            tables=[pb.TableCount(table=k, rows=table_length(v)) for k, v in tables.items()],
            total_rows=ds.rows,
            bytes_held=ds.nbytes,
            version=ds.version,
        )
