"""The server on loopback: upload, plan, results; keys and isolation; bad chunks."""

from __future__ import annotations

import datetime as dt

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from masterplan.client import errors
from masterplan.contract.rows import from_rows
from masterplan.contract.tables import INPUT_TABLES
from masterplan.v1 import columnar_pb2, planning_data_pb2, planning_data_pb2_grpc

T0 = dt.date(2024, 1, 1)
DATA = {
    "warehouses": [{"warehouse_id": "W1", "site_id": "S"}],
    "items": [{"item_id": "A", "default_order_type": "purchase", "lead_time_days": 3}],
    "on_hand": [{"item_id": "A", "warehouse_id": "W1", "qty": 4}],
    "sales_lines": [
        {
            "order_id": "S",
            "line_no": 1,
            "item_id": "A",
            "warehouse_id": "W1",
            "qty": 10,
            "requested_date": "2024-01-10",
        }
    ],
}


def tables(data: dict) -> list[tuple[str, dict]]:
    return [(n, from_rows(INPUT_TABLES[n], data.get(n, []))) for n in INPUT_TABLES]


def test_upload_and_run_stream_the_plan(live) -> None:  # type: ignore[no-untyped-def]
    with live.client("acme") as c:
        resp = c.upload("tenants/acme/plans/main", tables(DATA))
        assert resp.total_rows == 4 and resp.version == 1
        progress: list[str] = []
        out = c.run_plan(
            "tenants/acme/plans/main",
            plan_date=T0,
            run_id="r1",
            on_progress=lambda p, f: progress.append(p),
        )
        assert (
            out.run.state == out.run.SUCCEEDED and out.run.name == "tenants/acme/plans/main/runs/r1"
        )
        assert "netting" in progress
        po = out.tables["planned_orders"]
        assert po["planned_order_id"].tolist() == ["A/W1/1"]
        assert po["qty"].tolist() == [6.0]
        assert po["order_date"].tolist() == [dt.date(2024, 1, 7)]
        peg = out.tables["pegging"]
        assert sorted(zip(peg["supply_ref"].tolist(), peg["qty"].tolist(), strict=True)) == [
            ("OH:A/W1", 4.0),
            ("PL:A/W1/1", 6.0),
        ]
        assert [r.run_id for r in c.list_runs("tenants/acme/plans/main")] == ["r1"]
        tree = c.get_pegging("tenants/acme/plans/main/runs/r1", "SO:S/1")
        assert tree.nodes[0].ref == "SO:S/1" and not tree.truncated
        assert {n.ref for n in tree.nodes if n.parent == 0} == {"OH:A/W1", "PL:A/W1/1"}


def test_calls_without_or_with_a_wrong_key_are_unauthenticated(live) -> None:  # type: ignore[no-untyped-def]
    for key in ("", "mp_abcdefgh_not-a-real-secret-at-all-xxxxxxxxxxxxxxxx", "garbage"):
        with live.client(key=key) as c:
            with pytest.raises(errors.Unauthenticated):
                c.list_runs("tenants/acme/plans/main")
            with pytest.raises(errors.Unauthenticated):
                c.list_tenants()


def test_a_tenant_key_reaches_only_its_own_tenant(live) -> None:  # type: ignore[no-untyped-def]
    with live.client("acme") as c:
        c.upload("tenants/acme/plans/main", tables(DATA))
        c.run_plan("tenants/acme/plans/main", plan_date=T0, run_id="r1")
    with live.client("globex") as g:
        for call in (
            lambda: g.list_runs("tenants/acme/plans/main"),
            lambda: g.get_run("tenants/acme/plans/main/runs/r1"),
            lambda: g.get_run("tenants/acme/plans/main/runs/no-such-run"),
            lambda: g.get_pegging("tenants/acme/plans/main/runs/r1", "SO:S/1"),
            lambda: g.cancel_run("tenants/acme/plans/main/runs/r1"),
            lambda: g.upload("tenants/acme/plans/main", tables(DATA)),
            lambda: g.run_plan("tenants/acme/plans/main", plan_date=T0),
        ):
            with pytest.raises(errors.PermissionDenied):
                call()
        # its own tenant has no data: nothing of acme's is visible under its name
        with pytest.raises(errors.FailedPrecondition):
            g.run_plan("tenants/globex/plans/main", plan_date=T0)
        with pytest.raises(errors.PermissionDenied):
            g.list_tenants()


def test_the_admin_key_manages_tenants_but_reads_no_plan(live) -> None:  # type: ignore[no-untyped-def]
    with live.client(key=live.admin_key) as admin:
        assert {t.tenant_id for t in admin.list_tenants()} == {"acme", "globex"}
        with pytest.raises(errors.PermissionDenied):
            admin.list_runs("tenants/acme/plans/main")


def test_uninstall_revokes_the_key_and_drops_the_data(live) -> None:  # type: ignore[no-untyped-def]
    with live.client("acme") as c:
        c.upload("tenants/acme/plans/main", tables(DATA))
        c.run_plan("tenants/acme/plans/main", plan_date=T0)
    tenant_id = live.running.registry.get("acme").tenant_id
    assert tenant_id in live.running.stores
    assert live.running.ledger.memory(tenant_id) > 0
    with live.client(key=live.admin_key) as admin:
        admin.uninstall_tenant("acme")
        assert [t.tenant_id for t in admin.list_tenants()] == ["globex"]
    assert tenant_id not in live.running.stores
    assert live.running.ledger.memory(tenant_id) == 0
    with live.running.registry._engine.connect() as conn:  # the raw registry table
        import sqlalchemy as sa

        names = conn.execute(sa.text("SELECT name FROM tenants")).scalars().all()
    assert names == ["globex"]
    with live.client("acme") as c, pytest.raises(errors.Unauthenticated):
        c.list_runs("tenants/acme/plans/main")


def test_a_malformed_chunk_is_invalid_and_keeps_the_previous_data(live) -> None:  # type: ignore[no-untyped-def]
    with live.client("acme") as c:
        c.upload("tenants/acme/plans/main", tables(DATA))
    bad = columnar_pb2.ColumnarChunk(
        table="on_hand",
        row_count=2,
        columns=[
            columnar_pb2.Column(
                name="item_id",
                type=columnar_pb2.COLUMN_TYPE_STRING,
                data=np.array([0, 0], "<i4").tobytes(),
                dictionary=["A"],
            ),
            columnar_pb2.Column(
                name="warehouse_id",
                type=columnar_pb2.COLUMN_TYPE_STRING,
                data=np.array([0, 0], "<i4").tobytes(),
                dictionary=["W1"],
            ),
            columnar_pb2.Column(
                name="qty", type=columnar_pb2.COLUMN_TYPE_FLOAT64, data=b"\x00" * 12
            ),
        ],
    )
    requests = [
        planning_data_pb2.UploadDatasetRequest(
            header=planning_data_pb2.UploadHeader(
                parent="tenants/acme/plans/main", mode=planning_data_pb2.UPLOAD_MODE_SNAPSHOT
            )
        ),
        planning_data_pb2.UploadDatasetRequest(chunk=bad),
    ]
    stub = planning_data_pb2_grpc.PlanningDataStub(grpc.insecure_channel(live.address))
    with pytest.raises(grpc.RpcError) as err:
        stub.UploadDataset(
            iter(requests), timeout=10, metadata=(("authorization", f"Bearer {live.keys['acme']}"),)
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "on_hand.qty" in err.value.details()
    with live.client("acme") as c:
        out = c.run_plan("tenants/acme/plans/main", plan_date=T0)
        assert out.tables["planned_orders"]["qty"].tolist() == [6.0]  # the old data set


def test_a_second_run_of_a_busy_plan_is_aborted(live) -> None:  # type: ignore[no-untyped-def]
    with live.client("acme") as c:
        c.upload("tenants/acme/plans/main", tables(DATA))
        store = live.running.stores.get(live.running.registry.get("acme").tenant_id)
        store.start_run("main", "blocker", "regeneration", T0, 1)  # a run in progress
        with pytest.raises(errors.PlanBusy):
            c.run_plan("tenants/acme/plans/main", plan_date=T0)


def test_health_is_serving_without_a_key(live) -> None:  # type: ignore[no-untyped-def]
    stub = health_pb2_grpc.HealthStub(grpc.insecure_channel(live.address))
    resp = stub.Check(health_pb2.HealthCheckRequest(service="masterplan.v1.Planning"), timeout=5)
    assert resp.status == health_pb2.HealthCheckResponse.SERVING


def test_every_method_without_a_key_is_unauthenticated(live) -> None:  # type: ignore[no-untyped-def]
    from masterplan.v1 import (
        planning_data_pb2_grpc,
        planning_pb2,
        planning_pb2_grpc,
        tenant_admin_pb2,
        tenant_admin_pb2_grpc,
    )

    channel = grpc.insecure_channel(live.address)
    admin = tenant_admin_pb2_grpc.TenantAdminStub(channel)
    planning = planning_pb2_grpc.PlanningStub(channel)
    data = planning_data_pb2_grpc.PlanningDataStub(channel)
    calls = [
        lambda: admin.InstallTenant(
            tenant_admin_pb2.InstallTenantRequest(tenant_id="x"), timeout=5
        ),
        lambda: admin.UninstallTenant(
            tenant_admin_pb2.UninstallTenantRequest(name="tenants/acme"), timeout=5
        ),
        lambda: admin.RotateApiKey(
            tenant_admin_pb2.RotateApiKeyRequest(name="tenants/acme"), timeout=5
        ),
        lambda: admin.ListTenants(tenant_admin_pb2.ListTenantsRequest(), timeout=5),
        lambda: data.UploadDataset(iter([planning_data_pb2.UploadDatasetRequest()]), timeout=5),
        lambda: list(
            planning.RunPlan(
                planning_pb2.RunPlanRequest(parent="tenants/acme/plans/main"), timeout=5
            )
        ),
        lambda: list(
            planning.ReadRunResults(
                planning_pb2.ReadRunResultsRequest(name="tenants/acme/plans/main/runs/r"),
                timeout=5,
            )
        ),
        lambda: planning.GetRun(
            planning_pb2.GetRunRequest(name="tenants/acme/plans/main/runs/r"), timeout=5
        ),
        lambda: planning.ListRuns(
            planning_pb2.ListRunsRequest(parent="tenants/acme/plans/main"), timeout=5
        ),
        lambda: planning.CancelRun(
            planning_pb2.CancelRunRequest(name="tenants/acme/plans/main/runs/r"), timeout=5
        ),
        lambda: planning.GetPegging(
            planning_pb2.GetPeggingRequest(name="tenants/acme/plans/main/runs/r"), timeout=5
        ),
        lambda: planning.Simulate(
            planning_pb2.SimulateRequest(parent="tenants/acme/plans/main"), timeout=5
        ),
        lambda: planning.GetNetRequirements(
            planning_pb2.GetNetRequirementsRequest(name="tenants/acme/plans/main/runs/r"),
            timeout=5,
        ),
        lambda: planning.ExplainDelay(
            planning_pb2.ExplainDelayRequest(name="tenants/acme/plans/main/runs/r"), timeout=5
        ),
        lambda: planning.GetPlanReport(
            planning_pb2.GetPlanReportRequest(name="tenants/acme/plans/main/runs/r"), timeout=5
        ),
        lambda: planning.ListPlans(planning_pb2.ListPlansRequest(parent="tenants/acme"), timeout=5),
        lambda: planning.GetPlan(
            planning_pb2.GetPlanRequest(name="tenants/acme/plans/main"), timeout=5
        ),
        lambda: planning.DeletePlan(
            planning_pb2.DeletePlanRequest(name="tenants/acme/plans/main"), timeout=5
        ),
    ]
    for call in calls:
        with pytest.raises(grpc.RpcError) as err:
            call()
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert len(calls) == sum(
        len(s.methods_by_name)
        for s in (
            tenant_admin_pb2.DESCRIPTOR.services_by_name["TenantAdmin"],
            planning_pb2.DESCRIPTOR.services_by_name["Planning"],
            planning_data_pb2.DESCRIPTOR.services_by_name["PlanningData"],
        )
    )
    channel.close()


def test_reflection_needs_a_key_and_lists_the_services(live) -> None:  # type: ignore[no-untyped-def]
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    def services(metadata: tuple) -> list[str]:
        with grpc.insecure_channel(live.address) as channel:
            stub = reflection_pb2_grpc.ServerReflectionStub(channel)
            request = reflection_pb2.ServerReflectionRequest(list_services="")
            responses = stub.ServerReflectionInfo(iter([request]), timeout=5, metadata=metadata)
            return [s.name for r in responses for s in r.list_services_response.service]

    with pytest.raises(grpc.RpcError) as err:
        services(())
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    names = services((("authorization", f"Bearer {live.keys['acme']}"),))
    assert {
        "masterplan.v1.Planning",
        "masterplan.v1.PlanningData",
        "masterplan.v1.TenantAdmin",
    } <= set(names)
