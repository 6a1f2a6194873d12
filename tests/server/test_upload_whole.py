"""An upload is applied whole or not at all, and its limits hold while it streams.

Each test talks to a real ``masterplan serve`` process on loopback, as a
hostile or broken client would: raw streams without a trailer, with a
trailer that lies, with a message that does not parse, with unknown enum
values, retried with the same ``request_id``, and uploads whose declared or
running sizes pass the tenant's quotas. After every refusal the plan still
runs on the data set it held before.
"""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest

from masterplan.client import errors
from masterplan.client.client import MasterplanClient
from masterplan.codec import decoded_nbytes, encode_table
from masterplan.contract.columns import Table
from masterplan.contract.rows import from_rows
from masterplan.contract.tables import INPUT_TABLES
from masterplan.v1 import columnar_pb2, planning_data_pb2_grpc
from masterplan.v1 import planning_data_pb2 as pb
from tests.served import Served

PLAN = "tenants/acme/plans/main"


def model(n: int, prefix: str = "I") -> list[tuple[str, Table]]:
    """``n`` purchased items with one sales line each: a run plans ``n`` orders."""
    items = np.array([f"{prefix}{i:06d}" for i in range(n)], dtype=object)
    tables = {name: from_rows(INPUT_TABLES[name], []) for name in INPUT_TABLES}
    tables["warehouses"] = from_rows(
        INPUT_TABLES["warehouses"], [{"warehouse_id": "W1", "site_id": "S"}]
    )
    tables["items"] = {
        c: np.full(n, np.nan) if v.dtype.kind == "f" else np.full(n, None, dtype=object)
        for c, v in tables["items"].items()
    }
    tables["items"]["item_id"] = items
    tables["items"]["lead_time_days"] = np.full(n, 2.0)
    tables["sales_lines"] = {
        "order_id": np.array([f"S{i}" for i in range(n)], dtype=object),
        "line_no": np.ones(n),
        "item_id": items,
        "warehouse_id": np.full(n, "W1", dtype=object),
        "qty": np.full(n, 3.0),
        "requested_date": np.full(n, np.datetime64("2026-02-10")),
        "priority": np.zeros(n),
    }
    return [(name, t) for name, t in tables.items() if len(next(iter(t.values())))]


def chunks(
    tables: list[tuple[str, Table]], chunk_rows: int = 1000
) -> list[columnar_pb2.ColumnarChunk]:
    return [c for name, t in tables for c in encode_table(name, t, chunk_rows)]


def wrap(sent: list[columnar_pb2.ColumnarChunk]) -> list[pb.UploadDatasetRequest]:
    return [pb.UploadDatasetRequest(chunk=c) for c in sent]


def trailer(sent: list[columnar_pb2.ColumnarChunk]) -> pb.UploadTrailer:
    rows: dict[str, int] = {}
    for c in sent:
        rows[c.table] = rows.get(c.table, 0) + c.row_count
    return pb.UploadTrailer(
        tables=[pb.TableCount(table=k, rows=n) for k, n in rows.items()], chunks=len(sent)
    )


def header(request_id: str = "", mode: int = pb.UPLOAD_MODE_SNAPSHOT) -> pb.UploadDatasetRequest:
    return pb.UploadDatasetRequest(
        header=pb.UploadHeader(parent=PLAN, mode=mode, request_id=request_id)  # type: ignore[arg-type]
    )


class Tenant:
    """One tenant of a served process: its key, a client, raw streams."""

    def __init__(self, srv: Served, name: str = "acme") -> None:
        self.key = srv.install(name)
        self.client = MasterplanClient(srv.address, self.key, stream_timeout=60)
        self.channel = grpc.insecure_channel(srv.address)
        self.stub = planning_data_pb2_grpc.PlanningDataStub(self.channel)
        self.md = (("authorization", f"Bearer {self.key}"),)

    def raw(self, messages: list[pb.UploadDatasetRequest]) -> pb.UploadDatasetResponse:
        """Send ``messages`` as one upload; the answer, or the typed error."""
        try:
            return self.stub.UploadDataset(iter(messages), timeout=30, metadata=self.md)  # type: ignore[no-any-return]
        except grpc.RpcError as err:
            raise errors.from_rpc_error(err) from None

    def held(self) -> tuple[int, int]:
        """(data-set version, planned orders) of a run of the plan: what the server holds."""
        outcome = self.client.run_plan(PLAN, plan_date=dt.date(2026, 2, 1))
        return outcome.run.dataset_version, len(outcome.tables["planned_orders"]["item_id"])

    def close(self) -> None:
        self.client.close()
        self.channel.close()


@pytest.fixture
def srv(tmp_path: Path) -> Iterator[Served]:
    s = Served(tmp_path)
    yield s
    s.stop()


@pytest.fixture
def acme(srv: Served) -> Iterator[Tenant]:
    t = Tenant(srv)
    t.client.upload(PLAN, model(5))
    assert t.held() == (1, 5)
    yield t
    t.close()


# -- defect 1: only a whole stream is applied --------------------------------------------
def test_a_stream_that_ends_without_its_trailer_applies_nothing(acme: Tenant) -> None:
    sent = chunks(model(40, "N"))
    with pytest.raises(errors.InvalidArgument) as info:
        acme.raw([header(), *wrap(sent)])
    assert info.value.field == "trailer"
    assert "without its trailer" in info.value.message
    assert acme.held() == (1, 5)


@pytest.mark.parametrize("lie", ["rows", "chunks", "table"])
def test_a_trailer_whose_counts_differ_applies_nothing(acme: Tenant, lie: str) -> None:
    sent = chunks(model(40, "N"), chunk_rows=10)
    t = trailer(sent)
    if lie == "rows":
        t.tables[0].rows += 1
    elif lie == "chunks":
        t.chunks -= 1
    else:
        t.tables.add(table="forecasts", rows=3)
    with pytest.raises(errors.InvalidArgument) as info:
        acme.raw([header(), *wrap(sent), pb.UploadDatasetRequest(trailer=t)])
    assert info.value.field.startswith("trailer"), info.value
    assert acme.held() == (1, 5)


def test_a_message_after_the_trailer_applies_nothing(acme: Tenant) -> None:
    sent = chunks(model(40, "N"))
    extra = pb.UploadDatasetRequest(chunk=sent[0])
    with pytest.raises(errors.InvalidArgument, match="nothing may follow the trailer"):
        acme.raw([header(), *wrap(sent), pb.UploadDatasetRequest(trailer=trailer(sent)), extra])
    assert acme.held() == (1, 5)


def test_a_message_that_does_not_parse_is_invalid_argument_and_applies_nothing(
    acme: Tenant,
) -> None:
    upload = acme.channel.stream_unary(
        "/masterplan.v1.PlanningData/UploadDataset",
        request_serializer=lambda b: b,
        response_deserializer=pb.UploadDatasetResponse.FromString,
    )
    sent = chunks(model(40, "N"))
    garbage = b"\x12\xff\xff\xff\xff\x0f\x01"  # a chunk field claiming 4 GiB of bytes
    messages = [header().SerializeToString()] + [
        pb.UploadDatasetRequest(chunk=c).SerializeToString() for c in sent
    ]
    with pytest.raises(grpc.RpcError) as info:
        upload(iter([*messages, garbage]), timeout=30, metadata=acme.md)
    err = errors.from_rpc_error(info.value)
    assert isinstance(err, errors.InvalidArgument), err
    assert err.field == "payload" and "is not an UploadDatasetRequest" in err.message
    assert acme.held() == (1, 5)


def test_unknown_enum_values_are_refused_naming_the_field(acme: Tenant) -> None:
    sent = chunks(model(4, "N"))
    with pytest.raises(errors.InvalidArgument) as info:
        acme.raw([header(mode=99), *wrap(sent), pb.UploadDatasetRequest(trailer=trailer(sent))])
    assert info.value.field == "header.mode" and "99" in info.value.message
    odd = columnar_pb2.ColumnarChunk()
    odd.CopyFrom(sent[0])
    odd.change = 99  # type: ignore[assignment]
    with pytest.raises(errors.InvalidArgument) as info:
        acme.raw([header(), *wrap([odd]), pb.UploadDatasetRequest(trailer=trailer([odd]))])
    assert info.value.field == "chunk.change" and "99" in info.value.message
    assert acme.held() == (1, 5)


def test_a_retried_request_id_is_answered_not_applied_again(acme: Tenant) -> None:
    data = model(7, "R")
    first = acme.client.upload(PLAN, data, request_id="nightly-2026-02-01")
    assert first.version == 2
    again = acme.client.upload(PLAN, data, request_id="nightly-2026-02-01")
    assert again == first
    assert acme.held() == (2, 7)
    with pytest.raises(errors.AlreadyExists) as info:
        acme.client.upload(PLAN, model(8, "R"), request_id="nightly-2026-02-01")
    assert info.value.field == "header.request_id"
    assert acme.held() == (2, 7)
    assert acme.client.upload(PLAN, model(8, "R"), request_id="nightly-2026-02-02").version == 3


KILLED_CLIENT = """
import os, signal, sys
import grpc
from masterplan.codec import encode_table
from masterplan.v1 import planning_data_pb2 as pb, planning_data_pb2_grpc
from tests.server.test_upload_whole import model

address, key, after = sys.argv[1], sys.argv[2], int(sys.argv[3])

def messages():
    yield pb.UploadDatasetRequest(header=pb.UploadHeader(parent="tenants/acme/plans/main"))
    sent = 0
    for name, table in model(20_000, "K"):
        for chunk in encode_table(name, table, 500):
            if sent == after:
                os.kill(os.getpid(), signal.SIGKILL)  # dies mid-stream, no trailer sent
            yield pb.UploadDatasetRequest(chunk=chunk)
            sent += 1

stub = planning_data_pb2_grpc.PlanningDataStub(grpc.insecure_channel(address))
stub.UploadDataset(messages(), timeout=60, metadata=(("authorization", f"Bearer {key}"),))
"""


@pytest.mark.parametrize("after", [3, 41, 80])  # of 81 chunks
def test_a_client_process_killed_mid_stream_applies_nothing(
    srv: Served, acme: Tenant, after: int
) -> None:
    child = subprocess.run(
        [sys.executable, "-c", KILLED_CLIENT, srv.address, acme.key, str(after)],
        cwd=Path(__file__).parents[2],
        capture_output=True,
        timeout=120,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    time.sleep(0.5)  # the server sees the connection drop
    assert acme.held() == (1, 5)


# -- defect 5: limits are checked on declared and running sizes -------------------------
def test_a_dictionary_larger_than_its_chunk_is_refused_before_decoding(acme: Tenant) -> None:
    (chunk,) = chunks(model(1, "D"))[1:2]  # the one-row items chunk
    assert chunk.table == "items"
    col = next(c for c in chunk.columns if c.name == "item_id")
    col.dictionary.extend(f"x{i}" for i in range(200_000))
    with pytest.raises(errors.InvalidArgument) as info:
        acme.raw([header(), *wrap([chunk]), pb.UploadDatasetRequest(trailer=trailer([chunk]))])
    assert info.value.reason == "INVALID_CHUNK"
    assert info.value.metadata["column"] == "item_id"
    assert "dictionary of 200001 strings for 1 rows" in info.value.message
    assert acme.held() == (1, 5)


def test_a_second_upload_of_a_plan_in_progress_is_aborted(acme: Tenant) -> None:
    sent = chunks(model(40, "B"))
    release = threading.Event()

    def slow() -> Iterator[pb.UploadDatasetRequest]:
        yield header()
        yield pb.UploadDatasetRequest(chunk=sent[0])
        release.wait(30)
        for c in sent[1:]:
            yield pb.UploadDatasetRequest(chunk=c)
        yield pb.UploadDatasetRequest(trailer=trailer(sent))

    first = acme.stub.UploadDataset.future(slow(), timeout=30, metadata=acme.md)
    time.sleep(1.0)
    try:
        with pytest.raises(errors.Aborted, match="upload in progress"):
            acme.client.upload(PLAN, model(3, "C"))
    finally:
        release.set()
    assert first.result().version == 2
    assert acme.held() == (2, 40)


def test_concurrent_uploads_of_one_tenant_share_its_memory_quota_while_they_stream(
    tmp_path: Path,
) -> None:
    sent = chunks(model(2_500, "M"), chunk_rows=250)
    decoded = sum(decoded_nbytes(INPUT_TABLES[c.table], c.row_count) for c in sent)
    # One upload fits (its rows, and its largest table once more while it is
    # joined); two streaming at once do not.
    srv = Served(tmp_path, "--max-memory-bytes", str(int(1.8 * decoded)))
    tenant = Tenant(srv)
    try:
        hold = threading.Event()
        a_sent = threading.Event()

        def held_open(parent: str, done: threading.Event) -> Iterator[pb.UploadDatasetRequest]:
            yield pb.UploadDatasetRequest(header=pb.UploadHeader(parent=parent))
            for c in sent:
                yield pb.UploadDatasetRequest(chunk=c)
            done.set()
            hold.wait(30)  # the trailer waits: the data is received, not applied
            yield pb.UploadDatasetRequest(trailer=trailer(sent))

        a = tenant.stub.UploadDataset.future(
            held_open("tenants/acme/plans/a", a_sent), timeout=60, metadata=tenant.md
        )
        assert a_sent.wait(30)
        time.sleep(1.0)
        b = tenant.stub.UploadDataset.future(
            held_open("tenants/acme/plans/b", threading.Event()), timeout=60, metadata=tenant.md
        )
        try:
            # Refused while it streams, its trailer not sent, A not applied yet.
            with pytest.raises(grpc.RpcError) as info:
                b.result(timeout=20)
        finally:
            hold.set()
        err = errors.from_rpc_error(info.value)
        assert isinstance(err, errors.ResourceExhausted), err
        assert err.metadata["resource"] == "memory_bytes"
        assert a.result(timeout=30).version == 1
    finally:
        tenant.close()
        srv.stop()


def test_max_plans_is_enforced_and_an_empty_plan_counts_its_overhead(tmp_path: Path) -> None:
    srv = Served(tmp_path, "--max-plans", "3")
    tenant = Tenant(srv)
    try:
        for i in range(3):
            empty = tenant.client.upload(f"tenants/acme/plans/p{i}", [])
            assert empty.total_rows == 0 and empty.bytes_held >= 16_384
        with pytest.raises(errors.ResourceExhausted) as info:
            tenant.client.upload("tenants/acme/plans/p3", [])
        assert info.value.metadata["resource"] == "plans"
        assert info.value.metadata["limit"] == "3"
        assert tenant.client.upload("tenants/acme/plans/p1", []).version == 2  # not a new plan
    finally:
        tenant.close()
        srv.stop()


def test_a_message_over_the_size_limit_applies_nothing(tmp_path: Path) -> None:
    srv = Served(tmp_path, "--max-message-bytes", str(1 << 20))
    tenant = Tenant(srv)
    try:
        tenant.client.upload(PLAN, model(5))
        small = chunks(model(300, "S"), chunk_rows=100)
        (big,) = chunks(model(20_000, "B")[1:2], chunk_rows=20_000)  # ~2 MiB of items
        sent = [*small, big]
        with pytest.raises(errors.ResourceExhausted):
            tenant.raw([header(), *wrap(sent), pb.UploadDatasetRequest(trailer=trailer(sent))])
        assert tenant.held() == (1, 5)
    finally:
        tenant.close()
        srv.stop()
