"""What a real server on loopback logs of a session: one line per event, naming its ids."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from masterplan.client import errors
from masterplan.client.client import MasterplanClient
from masterplan.server.logs import ContextFilter, JsonFormatter
from masterplan.tenancy.quotas import Quotas
from tests.server.test_faults import (  # noqa: F401
    T0,
    dataset,
    make_server,
    slow_engine,
)
from tests.server.test_faults import _planning as _start
from tests.server.test_metrics import _too_many_rows

Lines = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def server_log() -> Iterator[Lines]:
    """The service's log lines as the server's JSON format writes them."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    logger = logging.getLogger("masterplan")
    saved = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)

    def lines() -> list[dict[str, Any]]:
        return [json.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]

    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved)


def _with(lines: Lines, message: str, count: int = 1, seconds: float = 10) -> list[dict[str, Any]]:
    """The lines of ``message`` once there are ``count`` of them (a run ends after its call)."""
    deadline = time.monotonic() + seconds
    while True:
        found = [r for r in lines() if r["message"] == message]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_a_session_logs_each_event_with_its_ids(make_server, server_log: Lines) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    srv = make_server(quotas=Quotas(max_rows=3))
    with srv.tenant("acme") as acme:
        sent = acme.upload("tenants/acme/plans/main", dataset(5))
        run = acme.run_plan("tenants/acme/plans/main", plan_date=T0, run_id="r1").run
        with pytest.raises(errors.ResourceExhausted):
            acme.upload("tenants/acme/plans/main", _too_many_rows())
        acme.delete_plan("tenants/acme/plans/main")
    stranger = MasterplanClient(srv.running.address, "mp_wrongprefix_notasecret")
    with stranger, pytest.raises(errors.Unauthenticated):
        stranger.list_plans("tenants/acme")
    tenant_as_admin = MasterplanClient(srv.running.address, srv.keys["acme"])
    with tenant_as_admin, pytest.raises(errors.PermissionDenied):
        tenant_as_admin.list_tenants()
    with MasterplanClient(srv.running.address, srv.admin_key) as admin:
        admin.uninstall_tenant("acme")

    (installed,) = _with(server_log, "tenant installed")
    assert installed["tenant"] == "acme" and installed["level"] == "INFO"

    started = _with(server_log, "upload started")
    assert [(r["tenant"], r["plan"], r["mode"]) for r in started] == [
        ("acme", "main", "snapshot")
    ] * 2
    (applied,) = _with(server_log, "upload finished")
    assert (applied["tenant"], applied["plan"], applied["mode"]) == ("acme", "main", "snapshot")
    assert applied["rows"] == applied["received"] == sent.total_rows == 3
    assert applied["version"] == sent.version

    (run_started,) = _with(server_log, "run started")
    (finished,) = _with(server_log, "run finished")
    for line in (run_started, finished):
        assert (line["tenant"], line["plan"], line["run"], line["mode"]) == (
            "acme",
            "main",
            "r1",
            "regeneration",
        )
        assert line["version"] == run.dataset_version
    assert finished["state"] == "SUCCEEDED"
    assert finished["rows"] == dict(run.row_counts) and finished["seconds"] >= 0

    (quota,) = _with(server_log, "quota exceeded")
    assert quota["level"] == "WARNING"
    assert (quota["tenant"], quota["plan"], quota["quota"]) == ("acme", "main", "rows")
    assert (quota["limit"], quota["requested"]) == (3, 4)

    refused = _with(server_log, "call refused", count=2)
    assert [(r["level"], r["code"], r["reason"]) for r in refused] == [
        ("WARNING", "UNAUTHENTICATED", "API_KEY_INVALID"),
        ("WARNING", "PERMISSION_DENIED", "ADMIN_KEY_REQUIRED"),
    ]
    assert refused[0]["method"] == "/masterplan.v1.Planning/ListPlans"

    (deleted,) = _with(server_log, "plan deleted")
    assert (deleted["tenant"], deleted["plan"]) == ("acme", "main") and deleted["bytes_freed"] > 0
    (uninstalled,) = _with(server_log, "tenant uninstalled")
    assert uninstalled["tenant"] == "acme"

    text = json.dumps(server_log())
    assert "notasecret" not in text and "wrongprefix" not in text
    assert srv.keys["acme"] not in text and srv.admin_key not in text


def test_a_cancelled_run_says_who_cancelled_it(  # type: ignore[no-untyped-def]
    make_server,  # noqa: F811
    slow_engine,  # noqa: F811
    server_log: Lines,
) -> None:
    srv = make_server()
    with srv.tenant("acme") as acme:
        acme.upload("tenants/acme/plans/main", dataset(5))

        events = _start(acme, "by-cancel-run")
        acme.cancel_run("tenants/acme/plans/main/runs/by-cancel-run")
        with pytest.raises(errors.Cancelled):
            list(events)
        _with(server_log, "run cancelled", 1)

        acme.stream_timeout = 1.0
        with pytest.raises(errors.DeadlineExceeded):
            acme.run_plan("tenants/acme/plans/main", plan_date=T0, run_id="by-deadline")
        _with(server_log, "run cancelled", 2)
        acme.stream_timeout = None

        _start(acme, "by-shutdown")
        srv.running.stop(grace=0)
        cancelled = _with(server_log, "run cancelled", 3)

    by = {r["run"]: r["by"] for r in cancelled}
    assert by == {
        "by-cancel-run": "cancel_run",
        "by-deadline": "deadline",
        "by-shutdown": "shutdown",
    }
    for r in cancelled:
        assert (r["tenant"], r["plan"], r["mode"], r["level"]) == (
            "acme",
            "main",
            "regeneration",
            "INFO",
        )
    (requested,) = _with(server_log, "run cancel requested")
    assert requested["run"] == "by-cancel-run"


def test_an_uninstall_cancels_the_tenants_run_and_says_so(  # type: ignore[no-untyped-def]
    make_server,  # noqa: F811
    slow_engine,  # noqa: F811
    server_log: Lines,
) -> None:
    srv = make_server()
    with srv.tenant("acme") as acme:
        acme.upload("tenants/acme/plans/main", dataset(5))
        events = _start(acme, "r1")
        with MasterplanClient(srv.running.address, srv.admin_key) as admin:
            admin.uninstall_tenant("acme")
        with pytest.raises(errors.MasterplanClientError):
            list(events)
    (cancelled,) = _with(server_log, "run cancelled")
    assert (cancelled["tenant"], cancelled["run"], cancelled["by"]) == ("acme", "r1", "uninstall")
