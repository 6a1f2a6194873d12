"""Faults an operator must be able to trust: cancel, deadline, quotas,
oversized and malformed input, many tenants at once."""

from __future__ import annotations

import datetime as dt
import secrets
import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from masterplan.client import errors
from masterplan.client.client import MasterplanClient
from masterplan.codec import CodecError, decode_chunk, encode_table
from masterplan.contract.rows import from_rows
from masterplan.contract.tables import INPUT_TABLES
from masterplan.server import runs
from masterplan.server.app import RunningServer, start_server
from masterplan.server.config import ServerConfig
from masterplan.server.engine import regeneration as real_regeneration
from masterplan.tenancy.keys import AdminCredential
from masterplan.tenancy.quotas import Quotas
from masterplan.v1 import columnar_pb2, planning_data_pb2, planning_data_pb2_grpc, planning_pb2

T0 = dt.date(2024, 1, 1)


def dataset(qty: float) -> list[tuple[str, dict]]:
    data = {
        "warehouses": [{"warehouse_id": "W1", "site_id": "S"}],
        "items": [{"item_id": "A", "lead_time_days": 1}],
        "sales_lines": [
            {
                "order_id": "S",
                "line_no": 1,
                "item_id": "A",
                "warehouse_id": "W1",
                "qty": qty,
                "requested_date": "2024-01-10",
            }
        ],
    }
    return [(n, from_rows(INPUT_TABLES[n], data.get(n, []))) for n in INPUT_TABLES]


class Server:
    def __init__(self, tmp_path, **config) -> None:  # type: ignore[no-untyped-def]
        self.admin_key = secrets.token_urlsafe(24)
        cfg = ServerConfig(
            port=0, registry_url=f"sqlite:///{tmp_path / 'reg.db'}", grace_seconds=1, **config
        )
        self.running: RunningServer = start_server(cfg, AdminCredential.from_key(self.admin_key))
        self.keys: dict[str, str] = {}

    def tenant(self, name: str) -> MasterplanClient:
        if name not in self.keys:
            with MasterplanClient(self.running.address, self.admin_key) as admin:
                self.keys[name] = admin.install_tenant(name).api_key
        return MasterplanClient(self.running.address, self.keys[name])


@pytest.fixture
def make_server(tmp_path) -> Iterator:  # type: ignore[no-untyped-def]
    servers: list[Server] = []

    def make(**config) -> Server:  # type: ignore[no-untyped-def]
        path = tmp_path / f"server{len(servers)}"
        path.mkdir()
        s = Server(path, **config)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.running.stop(grace=0)


@pytest.fixture
def slow_engine(monkeypatch) -> threading.Event:  # type: ignore[no-untyped-def]
    """The engine, slowed down: it reports progress every 10 ms for up to 30 s
    before planning, so a test can cancel it mid-run. ``stopped`` is set when
    the engine left through its progress hook (the cancellation path)."""
    stopped = threading.Event()

    def slow(data, params, progress=None):  # type: ignore[no-untyped-def]
        try:
            for i in range(3000):
                progress("netting", i / 3000)
                time.sleep(0.01)
        except BaseException:
            stopped.set()
            raise
        return real_regeneration(data, params, progress)

    monkeypatch.setattr(runs, "regeneration", slow)
    return stopped


def _planning(c: MasterplanClient, run_id: str) -> Iterator[planning_pb2.RunPlanResponse]:
    """The events of a run of the slowed engine, started and planning."""
    events = c.run_plan_events(
        planning_pb2.RunPlanRequest(
            parent="tenants/acme/plans/main", plan_date=T0.isoformat(), run_id=run_id
        )
    )
    assert next(events).WhichOneof("event") == "started"
    assert next(events).WhichOneof("event") == "progress"
    return events


def _engine_after_progress(monkeypatch, then) -> None:  # type: ignore[no-untyped-def]
    """The engine reports progress every 10 ms for half a second (time for
    a test to drop the stream meanwhile), then does what ``then`` does."""

    def engine(data, params, progress=None):  # type: ignore[no-untyped-def]
        for i in range(50):
            progress("netting", i / 50)
            time.sleep(0.01)
        return then(data, params, progress)

    monkeypatch.setattr(runs, "regeneration", engine)


def _ended(c: MasterplanClient, name: str, seconds: float = 10) -> Any:
    """Run ``name`` once it no longer runs."""
    deadline = time.monotonic() + seconds
    while (run := c.get_run(name)).state == run.RUNNING:
        assert time.monotonic() < deadline, "the run did not end"
        time.sleep(0.05)
    return run


def test_a_run_whose_stream_dropped_goes_on_until_cancelled(make_server, slow_engine) -> None:  # type: ignore[no-untyped-def]
    """SPEC §3: a dropped stream is no lost run. gRPC cannot tell a lost
    connection from a client that closed its call, so neither stops the
    engine; CancelRun does, and frees the plan for the next run."""
    srv = make_server()
    with srv.tenant("acme") as c:
        c.upload("tenants/acme/plans/main", dataset(5))
        _planning(c, "r1").close()  # the stream is gone while the engine works
        assert not slow_engine.wait(1), "the engine stopped with its stream"
        run = c.get_run("tenants/acme/plans/main/runs/r1")
        assert run.state == planning_pb2.PlanRun.RUNNING
        c.cancel_run("tenants/acme/plans/main/runs/r1")
        assert slow_engine.wait(5), "the engine did not stop after CancelRun"
        assert _ended(c, run.name).state == planning_pb2.PlanRun.CANCELLED
        # the plan is free again: a new run is accepted (not ABORTED)
        other = _planning(c, "r2")
        c.cancel_run("tenants/acme/plans/main/runs/r2")
        other.close()


def test_a_run_whose_stream_dropped_keeps_its_results(make_server, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The engine finishes without the stream, and the run's results are
    read again as the stream would have sent them."""

    _engine_after_progress(monkeypatch, real_regeneration)
    srv = make_server()
    with srv.tenant("acme") as c:
        c.upload("tenants/acme/plans/main", dataset(5))
        whole = c.run_plan("tenants/acme/plans/main", plan_date=T0, run_id="r1")
        _planning(c, "r2").close()
        run = _ended(c, "tenants/acme/plans/main/runs/r2")
        assert (run.state, run.results_kept) == (planning_pb2.PlanRun.SUCCEEDED, True)
        again = c.read_run_results(run.name)
        for name, table in whole.tables.items():
            assert again.tables[name].keys() == table.keys()
            for column, values in table.items():
                assert np.array_equal(again.tables[name][column], values), (name, column)
        assert dict(again.run.row_counts) == dict(whole.run.row_counts)


def test_a_connection_lost_while_the_engine_works_is_recovered_by_the_client(  # type: ignore[no-untyped-def]
    make_server, monkeypatch
) -> None:
    """The connection is reset between two progress events, the engine
    still working: the client's RunPlan fails as the network did, and
    ``kept_results_after_drop`` (what ``masterplan run`` calls then) waits
    for the run and reads its results, equal to an uncut run's."""
    from tests.faultproxy import CuttingProxy

    _engine_after_progress(monkeypatch, real_regeneration)
    srv = make_server()
    with srv.tenant("acme") as direct:
        direct.upload("tenants/acme/plans/main", dataset(5))
        whole = direct.run_plan("tenants/acme/plans/main", plan_date=T0, run_id="r1")
        proxy = CuttingProxy(srv.running.address)
        try:
            with MasterplanClient(proxy.address, srv.keys["acme"]) as c:
                with pytest.raises(errors.Unavailable):
                    c.run_plan(
                        "tenants/acme/plans/main",
                        plan_date=T0,
                        run_id="r2",
                        on_progress=lambda phase, fraction: proxy.cut_in(1),
                    )
                assert proxy.cuts == 1
                kept = c.kept_results_after_drop("tenants/acme/plans/main/runs/r2")
        finally:
            proxy.close()
        assert kept is not None and kept.run.state == planning_pb2.PlanRun.SUCCEEDED
        assert dict(kept.run.row_counts) == dict(whole.run.row_counts)
        for name, table in whole.tables.items():
            for column, values in table.items():
                assert np.array_equal(kept.tables[name][column], values), (name, column)


def test_a_run_whose_stream_dropped_fails_as_any_run(make_server, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A run that fails without its stream says why in its state, as a run
    with one does, and the plan takes the next run."""

    def failing(data, params, progress=None):  # type: ignore[no-untyped-def]
        raise ValueError("the data cannot be planned")

    _engine_after_progress(monkeypatch, failing)
    srv = make_server()
    with srv.tenant("acme") as c:
        c.upload("tenants/acme/plans/main", dataset(5))
        _planning(c, "r1").close()
        run = _ended(c, "tenants/acme/plans/main/runs/r1")
        assert (run.state, run.error) == (planning_pb2.PlanRun.FAILED, "the data cannot be planned")
        monkeypatch.setattr(runs, "regeneration", real_regeneration)
        assert c.run_plan("tenants/acme/plans/main", plan_date=T0).run.state == run.SUCCEEDED


def test_a_shutdown_ends_a_run_whose_stream_dropped(make_server, slow_engine) -> None:  # type: ignore[no-untyped-def]
    """A run that goes on without its call is the server's to end when it
    stops, as the runs of calls in flight are."""
    srv = make_server()
    with srv.tenant("acme") as c:
        c.upload("tenants/acme/plans/main", dataset(5))
        _planning(c, "r1").close()
    assert not slow_engine.wait(0.5), "the engine stopped with its stream"
    srv.running.stop(grace=0)
    assert slow_engine.wait(5), "the engine did not stop with the server"


def test_a_client_that_gives_up_its_run_cancels_it(make_server, slow_engine) -> None:  # type: ignore[no-untyped-def]
    """A client that leaves the stream of its own accord (an interrupt, a
    failed callback) cancels the run rather than leave it planning."""

    def interrupted(phase: str, fraction: float) -> None:
        raise KeyboardInterrupt

    srv = make_server()
    with srv.tenant("acme") as c:
        c.upload("tenants/acme/plans/main", dataset(5))
        with pytest.raises(KeyboardInterrupt):
            c.run_plan(
                "tenants/acme/plans/main", plan_date=T0, run_id="r1", on_progress=interrupted
            )
        assert slow_engine.wait(5), "the engine did not stop"
        run = _ended(c, "tenants/acme/plans/main/runs/r1")
        assert run.state == planning_pb2.PlanRun.CANCELLED


def test_a_deadline_ends_the_run(make_server, slow_engine) -> None:  # type: ignore[no-untyped-def]
    srv = make_server()
    with srv.tenant("acme") as c:
        c.upload("tenants/acme/plans/main", dataset(5))
        c.stream_timeout = 0.5
        with pytest.raises(errors.DeadlineExceeded):
            c.run_plan("tenants/acme/plans/main", plan_date=T0, run_id="r1")
        assert slow_engine.wait(5)
        time.sleep(0.2)
        assert c.get_run("tenants/acme/plans/main/runs/r1").state == 4  # CANCELLED


def test_cancel_run_stops_a_run_of_another_call(make_server, slow_engine) -> None:  # type: ignore[no-untyped-def]
    srv = make_server()
    with srv.tenant("acme") as c:
        c.upload("tenants/acme/plans/main", dataset(5))
        failure: list[BaseException] = []

        def run() -> None:
            try:
                c.run_plan("tenants/acme/plans/main", plan_date=T0, run_id="r1")
            except BaseException as exc:
                failure.append(exc)

        t = threading.Thread(target=run)
        t.start()
        time.sleep(0.3)
        c.cancel_run("tenants/acme/plans/main/runs/r1")
        t.join(10)
        assert slow_engine.is_set() and failure and isinstance(failure[0], errors.Cancelled)


def test_row_quota_refuses_one_tenant_while_another_plans(make_server) -> None:  # type: ignore[no-untyped-def]
    srv = make_server(quotas=Quotas(max_rows=3))
    with srv.tenant("acme") as a, srv.tenant("globex") as g:
        a.upload("tenants/acme/plans/main", dataset(5))  # 3 rows: at the limit
        big = dataset(7)
        big.append(
            (
                "on_hand",
                from_rows(
                    INPUT_TABLES["on_hand"], [{"item_id": "A", "warehouse_id": "W1", "qty": 1}]
                ),
            )
        )
        with pytest.raises(errors.ResourceExhausted) as err:
            a.upload("tenants/acme/plans/main", big)
        assert err.value.reason == "QUOTA_EXCEEDED" and err.value.metadata["resource"] == "rows"
        g.upload("tenants/globex/plans/main", dataset(2))
        assert g.run_plan("tenants/globex/plans/main", plan_date=T0).tables["planned_orders"][
            "qty"
        ].tolist() == [2.0]
        # acme's previous data is intact
        assert a.run_plan("tenants/acme/plans/main", plan_date=T0).tables["planned_orders"][
            "qty"
        ].tolist() == [5.0]


def test_row_quota_counts_every_plan_of_the_tenant(make_server) -> None:  # type: ignore[no-untyped-def]
    """``max_rows`` is the rows a tenant may hold: two plans of 3 rows each
    under a quota of 5 were each let in, an upload checking only itself."""
    srv = make_server(quotas=Quotas(max_rows=5))
    with srv.tenant("acme") as a:
        first = a.upload("tenants/acme/plans/main", dataset(5))  # 3 rows
        with pytest.raises(errors.ResourceExhausted) as err:
            a.upload("tenants/acme/plans/other", dataset(5))
        assert err.value.metadata["resource"] == "rows"
        assert int(err.value.metadata["requested"]) == 6
        assert [p.name for p in a.list_plans("tenants/acme")] == ["tenants/acme/plans/main"]
        # Replacing a plan's data set counts its new rows in place of its old.
        again = a.upload("tenants/acme/plans/main", dataset(4))
        assert again.total_rows == 3
        # A delta that would bring the tenant past the quota changes nothing.
        more = [
            (
                "on_hand",
                from_rows(
                    INPUT_TABLES["on_hand"],
                    [{"item_id": "A", "warehouse_id": "W1", "qty": float(q)} for q in (1, 2, 3)],
                ),
            )
        ]
        with pytest.raises(errors.ResourceExhausted) as err:
            a.upload("tenants/acme/plans/main", more, mode="delta", base_etag=again.etag)
        assert err.value.metadata["resource"] == "rows"
        kept = a.upload("tenants/acme/plans/main", more[:0], mode="delta", base_etag=again.etag)
        assert kept.total_rows == 3 and first.etag != again.etag


def test_upload_bytes_and_memory_quotas(make_server) -> None:  # type: ignore[no-untyped-def]
    srv = make_server(quotas=Quotas(max_upload_bytes=200))
    with srv.tenant("acme") as a, pytest.raises(errors.ResourceExhausted) as err:
        a.upload("tenants/acme/plans/main", dataset(5))
    assert err.value.metadata["resource"] == "upload_bytes"
    srv2 = make_server(quotas=Quotas(max_memory_bytes=100))
    with srv2.tenant("acme") as a, pytest.raises(errors.ResourceExhausted) as err:
        a.upload("tenants/acme/plans/main", dataset(5))
    assert err.value.metadata["resource"] == "memory_bytes"


def test_an_oversized_message_is_refused_and_the_data_kept(make_server) -> None:  # type: ignore[no-untyped-def]
    srv = make_server(max_message_bytes=64 * 1024)
    with srv.tenant("acme") as a:
        a.upload("tenants/acme/plans/main", dataset(5))
        n = 20_000
        huge = from_rows(INPUT_TABLES["on_hand"], [])
        huge = {
            "item_id": np.full(n, "A", dtype=object),
            "warehouse_id": np.full(n, "W1", dtype=object),
            "qty": np.ones(n),
        }
        with pytest.raises(errors.ResourceExhausted):
            a.upload("tenants/acme/plans/main", [*dataset(5), ("on_hand", huge)], chunk_rows=n)
        assert a.run_plan("tenants/acme/plans/main", plan_date=T0).tables["planned_orders"][
            "qty"
        ].tolist() == [5.0]


def test_twenty_tenants_upload_and_plan_at_once_without_cross_talk(make_server) -> None:  # type: ignore[no-untyped-def]
    srv = make_server(max_workers=48)
    names = [f"t{i:02d}" for i in range(20)]
    clients = {n: srv.tenant(n) for n in names}
    results: dict[str, list[float]] = {}
    failures: list[BaseException] = []

    def work(i: int, name: str) -> None:
        try:
            c = clients[name]
            for round_ in range(3):
                qty = 100 * i + round_ + 1
                c.upload(f"tenants/{name}/plans/main", dataset(qty))
                out = c.run_plan(f"tenants/{name}/plans/main", plan_date=T0)
                got = out.tables["planned_orders"]["qty"].tolist()
                if got != [float(qty)]:
                    raise AssertionError(f"{name} round {round_}: {got} != {qty}")
            results[name] = got
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(i, n)) for i, n in enumerate(names)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for c in clients.values():
        c.close()
    assert not failures, failures[0]
    assert results == {n: [100.0 * i + 3] for i, n in enumerate(names)}


# -- malformed chunks (hypothesis) ------------------------------------------------
SPEC = INPUT_TABLES["sales_lines"]
GOOD = next(
    encode_table(
        "sales_lines",
        from_rows(
            SPEC,
            [
                {
                    "order_id": "S",
                    "line_no": i,
                    "item_id": "A",
                    "warehouse_id": "W1",
                    "qty": 1.0,
                    "requested_date": "2024-01-10",
                    "priority": 0,
                }
                for i in range(4)
            ],
        ),
    )
)


@st.composite
def mutated_chunks(draw: st.DrawFn) -> columnar_pb2.ColumnarChunk:
    chunk = columnar_pb2.ColumnarChunk()
    chunk.CopyFrom(GOOD)
    for _ in range(draw(st.integers(1, 3))):
        col = chunk.columns[draw(st.integers(0, len(chunk.columns) - 1))]
        kind = draw(
            st.sampled_from(["truncate", "extend", "type", "name", "codes", "rows", "drop", "dup"])
        )
        if kind == "truncate":
            col.data = col.data[: draw(st.integers(0, max(len(col.data) - 1, 0)))]
        elif kind == "extend":
            col.data += draw(st.binary(min_size=1, max_size=9))
        elif kind == "type":
            col.type = draw(st.integers(0, 5))
        elif kind == "name":
            col.name = draw(st.text(max_size=8))
        elif kind == "codes":
            col.data = draw(st.binary(min_size=len(col.data), max_size=len(col.data)))
        elif kind == "rows":
            chunk.row_count = draw(st.integers(0, 10))
        elif kind == "drop" and len(chunk.columns) > 1:
            del chunk.columns[draw(st.integers(0, len(chunk.columns) - 1))]
        elif kind == "dup":
            chunk.columns.add().CopyFrom(col)
    return chunk


@settings(max_examples=300, deadline=None)
@given(mutated_chunks())
def test_decoding_a_mutated_chunk_fails_only_with_a_codec_error(
    chunk: columnar_pb2.ColumnarChunk,
) -> None:
    try:
        table = decode_chunk(chunk, SPEC)
    except CodecError as exc:
        assert exc.table == "sales_lines" and str(exc)
    else:  # accepted: then it is a well-formed table of the declared size
        assert all(len(v) == chunk.row_count for v in table.values())


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory) -> Iterator[Server]:  # type: ignore[no-untyped-def]
    srv = Server(tmp_path_factory.mktemp("fuzz"))
    with srv.tenant("acme") as a:
        a.upload("tenants/acme/plans/main", dataset(5))
    yield srv
    srv.running.stop(grace=0)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(chunk=mutated_chunks())
def test_the_server_answers_invalid_argument_and_keeps_the_data(fuzz_server: Server, chunk) -> None:  # type: ignore[no-untyped-def]
    srv = fuzz_server
    try:
        decode_chunk(chunk, SPEC)
        valid = True
    except CodecError:
        valid = False
    requests = [
        planning_data_pb2.UploadDatasetRequest(
            header=planning_data_pb2.UploadHeader(
                parent="tenants/acme/plans/main", mode=planning_data_pb2.UPLOAD_MODE_SNAPSHOT
            )
        ),
        planning_data_pb2.UploadDatasetRequest(chunk=chunk),
        planning_data_pb2.UploadDatasetRequest(
            trailer=planning_data_pb2.UploadTrailer(
                tables=[planning_data_pb2.TableCount(table=chunk.table, rows=chunk.row_count)],
                chunks=1,
            )
        ),
    ]
    md = (("authorization", f"Bearer {srv.keys['acme']}"),)
    with grpc.insecure_channel(srv.running.address) as channel:
        stub = planning_data_pb2_grpc.PlanningDataStub(channel)
        if valid:  # a harmless mutation: accepted; put the reference data back
            stub.UploadDataset(iter(requests), timeout=10, metadata=md)
            with srv.tenant("acme") as a:
                a.upload("tenants/acme/plans/main", dataset(5))
            return
        with pytest.raises(grpc.RpcError) as err:
            stub.UploadDataset(iter(requests), timeout=10, metadata=md)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with srv.tenant("acme") as a:
        out = a.run_plan("tenants/acme/plans/main", plan_date=T0)
        assert out.tables["planned_orders"]["qty"].tolist() == [5.0]
