"""Delta uploads over gRPC on loopback: applied whole against the data set they name.

A delta names its base data set by etag; one made against another data set,
one whose delete names no row, or one that breaks off changes nothing. A
retried delta is answered, not applied twice. The codec and the assembly
accept delete chunks that carry only the columns naming a row, in deltas
only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any

import grpc
import numpy as np
import pytest

from masterplan.client import errors
from masterplan.codec import CodecError, decode_chunk, encode_table
from masterplan.contract.columns import Table
from masterplan.contract.rows import from_rows, to_rows
from masterplan.contract.tables import INPUT_TABLES
from masterplan.server.delta import delete_spec
from masterplan.server.errors import InvalidArgument
from masterplan.server.store import Dataset
from masterplan.server.uploads import Assembly
from masterplan.v1 import columnar_pb2, planning_data_pb2_grpc
from masterplan.v1 import planning_data_pb2 as pb
from tests.server.conftest import Live

PLAN = "tenants/acme/plans/main"
T0 = dt.date(2024, 1, 1)


def sale(order: str, qty: float, item: str = "A") -> dict[str, Any]:
    return {
        "order_id": order,
        "line_no": 1,
        "item_id": item,
        "warehouse_id": "W1",
        "qty": qty,
        "requested_date": "2024-01-10",
    }


DATA: dict[str, list[dict[str, Any]]] = {
    "warehouses": [{"warehouse_id": "W1", "site_id": "S"}],
    "items": [
        {"item_id": "A", "default_order_type": "purchase", "lead_time_days": 3},
        {"item_id": "B", "default_order_type": "purchase", "lead_time_days": 3},
    ],
    "on_hand": [
        {"item_id": "A", "warehouse_id": "W1", "qty": 2},
        {"item_id": "A", "warehouse_id": "W1", "qty": 2},
    ],
    "sales_lines": [sale("S1", 10), sale("S2", 5), sale("S3", 1, "B")],
}


def tables(data: Mapping[str, list[dict[str, Any]]]) -> list[tuple[str, Table]]:
    return [(n, from_rows(INPUT_TABLES[n], rows)) for n, rows in data.items()]


def keys(name: str, *rows: Mapping[str, Any]) -> tuple[str, Table]:
    return name, from_rows(delete_spec(INPUT_TABLES[name]), rows)


def held(live: Live) -> Dataset:
    """The data set the server holds for acme's plan ``main``."""
    tenant_id = live.running.registry.get("acme").tenant_id
    return live.running.stores.get(tenant_id).dataset("main")


def column(ds: Dataset, table: str, name: str) -> list[Any]:
    return [r[name] for r in to_rows(ds.tables[table])]


def snapshot(live: Live) -> pb.UploadDatasetResponse:
    with live.client("acme") as c:
        return c.upload(PLAN, tables(DATA))


def delta(
    live: Live,
    base_etag: str,
    upserts: Mapping[str, list[dict[str, Any]]] | None = None,
    deletes: tuple[tuple[str, Table], ...] = (),
    request_id: str | None = None,
) -> pb.UploadDatasetResponse:
    with live.client("acme") as c:
        return c.upload(
            PLAN,
            tables(upserts or {}),
            request_id=request_id,
            mode="delta",
            base_etag=base_etag,
            deletes=deletes,
        )


CHANGE = {
    "upserts": {"sales_lines": [sale("S2", 7), sale("S4", 3, "B")]},
    "deletes": (
        keys("sales_lines", {"order_id": "S1", "line_no": 1}),
        keys("on_hand", {"item_id": "A", "warehouse_id": "W1", "qty": 2}),
    ),
}


# -- over gRPC ----------------------------------------------------------------------
def test_a_delta_changes_the_data_set_it_names_and_answers_a_new_etag(live: Live) -> None:
    first = snapshot(live)
    assert first.version == 1 and len(first.etag) == 32
    before = held(live)

    resp = delta(live, first.etag, CHANGE["upserts"], CHANGE["deletes"])

    assert resp.version == 2
    assert resp.etag and resp.etag != first.etag
    assert (resp.rows_upserted, resp.rows_deleted) == (2, 2)
    counts = {c.table: c.rows for c in resp.tables}
    assert (counts["sales_lines"], counts["on_hand"], counts["items"]) == (3, 1, 2)
    assert resp.total_rows == 1 + 2 + 1 + 3
    ds = held(live)
    assert ds.etag == resp.etag and ds.version == 2
    assert column(ds, "sales_lines", "order_id") == ["S2", "S3", "S4"]
    assert column(ds, "sales_lines", "qty") == [7.0, 1.0, 3.0]
    assert column(ds, "on_hand", "qty") == [2.0]
    assert ds.tables["items"] is before.tables["items"]  # untouched tables are shared
    assert ds.delta is not None and ds.delta.base_version == 1
    assert set(ds.delta.upserts) == {"sales_lines"}
    assert set(ds.delta.deletes) == {"sales_lines", "on_hand"}


def test_the_planner_sees_the_changed_data(live: Live) -> None:
    first = snapshot(live)
    delta(live, first.etag, CHANGE["upserts"], CHANGE["deletes"])
    with live.client("acme") as c:
        out = c.run_plan(PLAN, plan_date=T0, run_id="r1")
    po = out.tables["planned_orders"]
    planned: dict[str, float] = {}
    for item, qty in zip(po["item_id"].tolist(), po["qty"].tolist(), strict=True):
        planned[item] = planned.get(item, 0.0) + qty
    assert planned == {"A": 5.0, "B": 4.0}  # A: 7 sold, 2 on hand; B: 1 + 3 sold


def test_every_applied_upload_gets_a_new_etag(live: Live) -> None:
    etags = [snapshot(live).etag, snapshot(live).etag]
    etags.append(delta(live, etags[-1], {"items": [{"item_id": "C"}]}).etag)
    etags.append(delta(live, etags[-1], deletes=(keys("items", {"item_id": "C"}),)).etag)
    assert len(set(etags)) == 4
    assert held(live).version == 4 and held(live).etag == etags[-1]


def test_a_delta_against_another_data_set_is_refused_and_changes_nothing(live: Live) -> None:
    stale = snapshot(live).etag
    current = snapshot(live)
    with pytest.raises(errors.DatasetChanged) as err:
        delta(live, stale, CHANGE["upserts"], CHANGE["deletes"])
    assert isinstance(err.value, errors.FailedPrecondition)
    assert err.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert err.value.reason == "DATASET_CHANGED"
    assert "send a snapshot" in err.value.message
    ds = held(live)
    assert (ds.version, ds.etag) == (2, current.etag)
    assert column(ds, "sales_lines", "order_id") == ["S1", "S2", "S3"]


def test_a_delta_to_a_plan_without_a_data_set_is_dataset_changed(live: Live) -> None:
    with pytest.raises(errors.DatasetChanged):
        delta(live, "0" * 32, CHANGE["upserts"])


def test_a_delta_needs_a_base_etag(live: Live) -> None:
    snapshot(live)
    with pytest.raises(errors.InvalidArgument) as err:
        delta(live, "", CHANGE["upserts"])
    assert err.value.field == "header.base_etag"


def test_a_delete_naming_no_row_changes_nothing(live: Live) -> None:
    first = snapshot(live)
    with pytest.raises(errors.InvalidArgument) as err:
        delta(
            live,
            first.etag,
            CHANGE["upserts"],
            (
                keys(
                    "sales_lines",
                    {"order_id": "S1", "line_no": 1},
                    {"order_id": "S9", "line_no": 1},
                ),
            ),
        )
    assert err.value.metadata["table"] == "sales_lines"
    assert err.value.metadata["row"] == "1"
    assert err.value.metadata["key"] == "order_id='S9', line_no=1"
    ds = held(live)
    assert (ds.version, ds.etag) == (1, first.etag)
    assert column(ds, "sales_lines", "qty") == [10.0, 5.0, 1.0]
    # The data set is still the base: the corrected delta applies.
    assert delta(live, first.etag, CHANGE["upserts"], CHANGE["deletes"]).version == 2


def test_two_upserts_of_one_key_change_nothing(live: Live) -> None:
    first = snapshot(live)
    with pytest.raises(errors.InvalidArgument, match="upsert rows 0 and 1 have the same key"):
        delta(live, first.etag, {"sales_lines": [sale("S2", 7), sale("S2", 8)]})
    assert held(live).etag == first.etag


def test_a_retried_delta_is_applied_once(live: Live) -> None:
    first = snapshot(live)
    # Adds an on_hand row: applied twice, the plan would hold it twice.
    change = {"on_hand": [{"item_id": "B", "warehouse_id": "W1", "qty": 1}]}
    applied = delta(live, first.etag, change, request_id="sync-1")
    again = delta(live, first.etag, change, request_id="sync-1")
    assert again == applied
    ds = held(live)
    assert ds.version == 2 and len(ds.tables["on_hand"]["qty"]) == 3
    with pytest.raises(errors.AlreadyExists):
        delta(live, first.etag, {"on_hand": [{"item_id": "C"}]}, request_id="sync-1")
    assert held(live).version == 2


def test_a_delete_chunk_without_a_key_column_is_an_invalid_chunk(live: Live) -> None:
    first = snapshot(live)
    orders_only = {"order_id": np.array(["S1"], dtype=object)}
    with pytest.raises(errors.InvalidArgument) as err:
        delta(live, first.etag, deletes=(("sales_lines", orders_only),))
    assert err.value.reason == "INVALID_CHUNK"
    assert err.value.metadata["column"] == "line_no"
    assert held(live).version == 1


def test_the_trailer_counts_upserts_and_deletes_together(live: Live) -> None:
    first = snapshot(live)
    upsert = next(
        encode_table("sales_lines", from_rows(INPUT_TABLES["sales_lines"], [sale("S5", 1)]))
    )
    upsert.change = columnar_pb2.CHANGE_KIND_UPSERT
    remove = next(encode_table(*keys("sales_lines", {"order_id": "S1", "line_no": 1})))
    remove.change = columnar_pb2.CHANGE_KIND_DELETE
    header = pb.UploadHeader(parent=PLAN, mode=pb.UPLOAD_MODE_DELTA, base_etag=first.etag)

    def stream(counted: int) -> Iterator[pb.UploadDatasetRequest]:
        yield pb.UploadDatasetRequest(header=header)
        yield pb.UploadDatasetRequest(chunk=remove)
        yield pb.UploadDatasetRequest(chunk=upsert)
        yield pb.UploadDatasetRequest(
            trailer=pb.UploadTrailer(
                tables=[pb.TableCount(table="sales_lines", rows=counted)], chunks=2
            )
        )

    with grpc.insecure_channel(live.address) as channel:
        stub = planning_data_pb2_grpc.PlanningDataStub(channel)
        md = (("authorization", f"Bearer {live.keys['acme']}"),)
        with pytest.raises(grpc.RpcError) as err:
            stub.UploadDataset(stream(1), timeout=30, metadata=md)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert held(live).version == 1
        resp = stub.UploadDataset(stream(2), timeout=30, metadata=md)
    assert (resp.rows_upserted, resp.rows_deleted, resp.version) == (1, 1, 2)


def test_a_snapshot_refuses_deletes_in_the_client_too(live: Live) -> None:
    with live.client("acme") as c, pytest.raises(ValueError, match="snapshot cannot delete"):
        c.upload(PLAN, tables(DATA), deletes=(keys("items", {"item_id": "A"}),))


# -- the assembly and the codec -----------------------------------------------------
def _delete_chunk(name: str, table: Table) -> columnar_pb2.ColumnarChunk:
    chunk = next(encode_table(name, table))
    chunk.change = columnar_pb2.CHANGE_KIND_DELETE
    return chunk


def test_the_assembly_keeps_deletes_apart_and_only_their_key_columns() -> None:
    whole = from_rows(INPUT_TABLES["items"], [{"item_id": "X", "lead_time_days": 2}])
    assembly = Assembly(100, 10**6, delta=True)
    assembly.add(_delete_chunk(*keys("items", {"item_id": "A"})))
    assembly.add(_delete_chunk("items", whole))  # whole rows are accepted too
    assembly.add(next(encode_table("items", whole)))
    assert assembly.rows["items"] == 3
    upserts, deletes = assembly.changes()
    assert set(upserts) == set(deletes) == {"items"}
    assert list(deletes["items"]) == ["item_id"]
    assert deletes["items"]["item_id"].tolist() == ["A", "X"]
    assert len(upserts["items"]["item_id"]) == 1
    assert list(upserts["items"]) == list(INPUT_TABLES["items"].column_names)


def test_a_snapshot_assembly_still_refuses_deletes() -> None:
    with pytest.raises(InvalidArgument, match="cannot delete"):
        Assembly(100, 10**6).add(_delete_chunk(*keys("items", {"item_id": "A"})))


def test_decoding_a_subset_of_columns_is_asked_for_never_implied() -> None:
    spec = INPUT_TABLES["sales_lines"]
    chunk = next(encode_table(*keys("sales_lines", {"order_id": "S1", "line_no": 1})))
    with pytest.raises(CodecError, match="column 'item_id' is missing"):
        decode_chunk(chunk, spec)  # data sets stay strict
    decoded = decode_chunk(chunk, spec, required=spec.key)
    assert set(decoded) == {"order_id", "line_no"}
    partial = next(encode_table("sales_lines", {"order_id": np.array(["S1"], dtype=object)}))
    with pytest.raises(CodecError, match="column 'line_no' is missing"):
        decode_chunk(partial, spec, required=spec.key)
