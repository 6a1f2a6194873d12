"""Plans as resources (SPEC §3): list, get and delete, which frees their memory."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable

import pytest

from masterplan.client import errors
from masterplan.tenancy.quotas import Quotas
from tests.server.test_faults import make_server, slow_engine  # noqa: F401  (fixtures)
from tests.server.test_server import DATA, T0, tables

PLAN = "tenants/acme/plans/main"


def test_list_get_and_delete_a_plan(live) -> None:  # type: ignore[no-untyped-def]
    with live.client("acme") as c:
        assert c.list_plans("tenants/acme") == []
        c.upload(PLAN, tables(DATA))
        c.upload("tenants/-/plans/other", tables(DATA))
        out = c.run_plan(PLAN, plan_date=T0, run_id="r1")
        plans = c.list_plans("tenants/-")
        assert [p.name for p in plans] == ["tenants/acme/plans/main", "tenants/acme/plans/other"]
        main = c.get_plan(PLAN)
        assert (main.dataset_version, main.input_rows, main.run_count) == (1, 4, 1)
        assert main.last_run.run_id == "r1" and main.last_run.state == main.last_run.SUCCEEDED
        assert main.result_rows == sum(out.run.row_counts.values()) > 0
        other = c.get_plan("tenants/acme/plans/other")
        assert other.run_count == 0 and not other.HasField("last_run")
        # What a plan holds counts against the tenant's memory: its data set
        # and its kept results are more than the data set alone.
        assert main.bytes_held > other.bytes_held > 0
        c.delete_plan(PLAN)
        assert [p.name for p in c.list_plans("tenants/acme")] == ["tenants/acme/plans/other"]
        with pytest.raises(errors.NotFound):
            c.get_plan(PLAN)
        with pytest.raises(errors.NotFound):
            c.get_run(f"{PLAN}/runs/r1")
        with pytest.raises(errors.FailedPrecondition):  # no data set any more
            c.run_plan(PLAN, plan_date=T0)
        with pytest.raises(errors.NotFound):
            c.delete_plan(PLAN)
        # A run id of the deleted plan stays taken: a retried RunPlan is no new run.
        c.upload(PLAN, tables(DATA))
        with pytest.raises(errors.AlreadyExists):
            c.run_plan(PLAN, plan_date=T0, run_id="r1")


def test_another_tenants_plans_are_out_of_reach(live) -> None:  # type: ignore[no-untyped-def]
    with live.client("acme") as c:
        c.upload(PLAN, tables(DATA))
    with live.client("globex") as g:
        assert g.list_plans("tenants/globex") == []
        for call in (
            lambda: g.list_plans("tenants/acme"),
            lambda: g.get_plan(PLAN),
            lambda: g.delete_plan(PLAN),
        ):
            with pytest.raises(errors.PermissionDenied):
                call()
    with live.client("acme") as c:
        assert c.get_plan(PLAN).dataset_version == 1
        with pytest.raises(errors.InvalidArgument):
            c.list_plans("tenants/acme/plans")


def test_a_plan_with_a_run_in_progress_is_not_deleted(live, slow_engine) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    """While a run of the plan is in progress (the engine slowed down), the
    delete is refused and names the run; after the cancel it goes through."""
    with live.client("acme") as c:
        c.upload(PLAN, tables(DATA))
        worker = threading.Thread(
            target=lambda: _quietly(lambda: c.run_plan(PLAN, plan_date=T0, run_id="slow"))
        )
        worker.start()
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    if c.get_run(f"{PLAN}/runs/slow").state == 1:  # RUNNING
                        break
                except errors.NotFound:
                    pass
                time.sleep(0.02)
            with pytest.raises(errors.Aborted, match="run 'slow' in progress"):
                c.delete_plan(PLAN)
            assert c.get_plan(PLAN).dataset_version == 1
        finally:
            c.cancel_run(f"{PLAN}/runs/slow")
            worker.join(20)
        assert slow_engine.wait(5)
        deadline = time.monotonic() + 10
        while c.get_run(f"{PLAN}/runs/slow").state == 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        c.delete_plan(PLAN)
        assert c.list_plans("tenants/acme") == []


def _quietly(call: Callable[[], object]) -> None:
    """A call whose failure (a cancelled run) the test does not look at."""
    with contextlib.suppress(errors.MasterplanClientError):
        call()


def test_deleting_a_plan_frees_the_tenants_memory_quota(make_server) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    """What counts against the memory quota goes with the plan: with room for
    one plan's data set and results, a second plan's upload is refused until
    the first plan is deleted."""
    # Enough sales lines that the rows, not a plan's fixed overhead, weigh.
    line = DATA["sales_lines"][0]
    big = {**DATA, "sales_lines": [{**line, "line_no": n} for n in range(1, 3001)]}
    probe = make_server()
    with probe.tenant("acme") as c:
        c.upload(PLAN, tables(big))
        c.run_plan(PLAN, plan_date=T0)
        one_plan = c.get_plan(PLAN).bytes_held
        c.upload("tenants/acme/plans/bare", tables(big))
        data_set = c.get_plan("tenants/acme/plans/bare").bytes_held
    server = make_server(quotas=Quotas(max_memory_bytes=one_plan + data_set // 2))
    with server.tenant("acme") as c:
        c.upload(PLAN, tables(big))
        c.run_plan(PLAN, plan_date=T0)
        with pytest.raises(errors.ResourceExhausted):
            c.upload("tenants/acme/plans/second", tables(big))
        c.delete_plan(PLAN)
        c.upload("tenants/acme/plans/second", tables(big))
        assert [p.name for p in c.list_plans("tenants/acme")] == ["tenants/acme/plans/second"]


def test_list_tenants_pages_by_name(live) -> None:  # type: ignore[no-untyped-def]
    from masterplan.v1 import tenant_admin_pb2

    with live.client(key=live.admin_key) as admin:
        for name in ("delta", "beta", "gamma"):
            admin.install_tenant(name)
        names = ["acme", "beta", "delta", "gamma", "globex"]
        assert [t.tenant_id for t in admin.list_tenants()] == names
        assert [t.tenant_id for t in admin.list_tenants(page_size=2)] == names
        first = admin._unary(
            admin._admin.ListTenants,
            tenant_admin_pb2.ListTenantsRequest(page_size=2),
            tenant_admin_pb2.ListTenantsResponse,
        )
        assert [t.tenant_id for t in first.tenants] == ["acme", "beta"] and first.next_page_token
        with pytest.raises(errors.InvalidArgument):
            admin._unary(
                admin._admin.ListTenants,
                tenant_admin_pb2.ListTenantsRequest(page_token="%%%"),
                tenant_admin_pb2.ListTenantsResponse,
            )


def test_listing_pages_follow_each_other_and_a_foreign_token_is_refused() -> None:
    """ListRuns and ListPlans page by offset; "-3" was read as an offset
    from the end and answered with another slice instead of a refusal."""
    from masterplan.server.errors import InvalidArgument
    from masterplan.server.servicers.planning import _page

    items = list(range(7))
    seen, token = [], ""
    while True:
        page, token = _page(items, 3, token)
        seen += page
        if not token:
            break
    assert seen == items
    for foreign in ("-3", "x", "1.5"):
        with pytest.raises(InvalidArgument):
            _page(items, 3, foreign)
