"""The Prometheus endpoint of a real server on loopback: what a session of calls counts."""

from __future__ import annotations

import argparse
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from masterplan.client import errors
from masterplan.client.cli.main import build_parser
from masterplan.client.cli.settings import apply_serve_settings
from masterplan.client.client import MasterplanClient
from masterplan.contract.rows import from_rows
from masterplan.contract.tables import INPUT_TABLES
from masterplan.server.app import RunningServer, start_server
from masterplan.server.config import ServerConfig
from masterplan.server.store import RUN_ID_BYTES
from masterplan.tenancy.keys import AdminCredential
from masterplan.tenancy.quotas import Quotas
from masterplan.v1 import planning_pb2
from tests.served import Served, free_port
from tests.server.test_faults import T0, dataset, slow_engine  # noqa: F401  (fixture)

#: (sample name, sorted labels) -> value
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(port: int) -> Samples:
    """Every sample the endpoint serves now, parsed as Prometheus parses it."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """The sample with exactly these labels, or None when the server serves none."""
    return samples.get((name, tuple(sorted(labels.items()))))


def eventually(check: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "the condition did not come true in time"
        time.sleep(0.05)


class Metered:
    """A server with its metrics endpoint on a free loopback port, and its tenants' clients."""

    def __init__(self, tmp_path, **config) -> None:  # type: ignore[no-untyped-def]
        self.admin_key = secrets.token_urlsafe(24)
        cfg = ServerConfig(
            port=0,
            metrics_port=0,
            registry_url=f"sqlite:///{tmp_path / 'reg.db'}",
            grace_seconds=1,
            **config,
        )
        self.running: RunningServer = start_server(cfg, AdminCredential.from_key(self.admin_key))
        assert self.running.metrics_port is not None
        self.port: int = self.running.metrics_port
        self.keys: dict[str, str] = {}

    def admin(self) -> MasterplanClient:
        return MasterplanClient(self.running.address, self.admin_key)

    def tenant(self, name: str) -> MasterplanClient:
        if name not in self.keys:
            with self.admin() as admin:
                self.keys[name] = admin.install_tenant(name).api_key
        return MasterplanClient(self.running.address, self.keys[name])

    def scrape(self) -> Samples:
        return scrape(self.port)


@pytest.fixture
def metered(tmp_path) -> Iterator[Callable[..., Metered]]:  # type: ignore[no-untyped-def]
    servers: list[Metered] = []

    def make(**config) -> Metered:  # type: ignore[no-untyped-def]
        path = tmp_path / f"server{len(servers)}"
        path.mkdir()
        servers.append(Metered(path, **config))
        return servers[-1]

    yield make
    for s in servers:
        s.running.stop(grace=0)


def _too_many_rows() -> list:  # type: ignore[type-arg]
    """The small plan and one on-hand row: 4 rows, one over ``max_rows=3``."""
    big = dataset(7)
    big.append(
        (
            "on_hand",
            from_rows(INPUT_TABLES["on_hand"], [{"item_id": "A", "warehouse_id": "W1", "qty": 1}]),
        )
    )
    return big


def test_a_session_of_uploads_runs_and_refusals_is_counted(metered) -> None:  # type: ignore[no-untyped-def]
    srv = metered(quotas=Quotas(max_rows=3))
    with srv.tenant("acme") as acme, srv.tenant("globex") as globex:
        sent = acme.upload("tenants/acme/plans/main", dataset(5))
        run = acme.run_plan("tenants/acme/plans/main", plan_date=T0, run_id="r1").run
        with pytest.raises(errors.ResourceExhausted):
            acme.upload("tenants/acme/plans/main", _too_many_rows())
        globex.upload("tenants/globex/plans/main", dataset(2))
        acme_plans = acme.list_plans("tenants/acme")
    stranger = MasterplanClient(srv.running.address, "mp_not_a_key_of_anyone")
    with stranger, pytest.raises(errors.Unauthenticated):
        stranger.list_plans("tenants/acme")

    m = srv.scrape()
    assert sent.total_rows == 3
    assert value(m, "masterplan_upload_rows_total", tenant="acme", mode="snapshot") == 3
    assert value(m, "masterplan_upload_rows_total", tenant="globex", mode="snapshot") == 3
    assert (
        value(m, "masterplan_uploads_total", tenant="acme", mode="snapshot", state="applied") == 1
    )
    assert value(m, "masterplan_uploads_total", tenant="acme", mode="snapshot", state="failed") == 1
    labels = {"tenant": "acme", "mode": "regeneration"}
    assert value(m, "masterplan_runs_total", **labels, state="succeeded") == 1
    assert value(m, "masterplan_runs_total", **labels, state="failed") is None
    assert value(m, "masterplan_runs_in_progress", tenant="acme") == 0
    assert (
        value(m, "masterplan_run_duration_seconds_count", mode="regeneration", state="succeeded")
        == 1
    )
    # One observation per phase the engine reported, each as long as it said.
    assert set(run.phase_seconds) >= {"validate", "netting", "messages"}
    for phase, seconds in run.phase_seconds.items():
        assert value(m, "masterplan_engine_phase_seconds_count", phase=phase) == 1, phase
        assert value(m, "masterplan_engine_phase_seconds_sum", phase=phase) == pytest.approx(
            seconds
        )
    assert value(m, "masterplan_quota_refusals_total", tenant="acme", quota="rows") == 1
    assert value(m, "masterplan_auth_refusals_total", reason="API_KEY_INVALID") == 1
    assert (value(m, "process_resident_memory_bytes") or 0) > 0  # the process, sized
    # What the plans of a tenant hold, as ListPlans reports it.
    acme_held = value(m, "masterplan_tenant_bytes_held", tenant="acme")
    assert acme_held is not None and acme_held > 0
    assert acme_held == sum(p.bytes_held for p in acme_plans)
    globex_held = value(m, "masterplan_tenant_bytes_held", tenant="globex")
    assert globex_held is not None and globex_held > 0

    with srv.tenant("globex") as globex, srv.tenant("acme") as acme:
        globex.delete_plan("tenants/globex/plans/main")
        acme.delete_plan("tenants/acme/plans/main")
    m = srv.scrape()
    assert value(m, "masterplan_tenant_bytes_held", tenant="globex") == 0
    # A deleted plan's run ids stay taken, and are counted (store.RUN_ID_BYTES).
    assert value(m, "masterplan_tenant_bytes_held", tenant="acme") == RUN_ID_BYTES
    with srv.admin() as admin:
        admin.uninstall_tenant("acme")
    m = srv.scrape()
    assert value(m, "masterplan_tenant_bytes_held", tenant="acme") is None  # nothing held
    assert value(m, "masterplan_tenant_bytes_held", tenant="globex") == 0
    # Counters outlive the tenant: a scrape after an uninstall still adds up.
    assert value(m, "masterplan_runs_total", **labels, state="succeeded") == 1


def test_a_scrape_during_a_run_sees_it_in_progress_then_cancelled(  # type: ignore[no-untyped-def]
    metered,
    slow_engine,  # noqa: F811
) -> None:
    srv = metered(quotas=Quotas(max_open_streams=1))
    with srv.tenant("acme") as acme:
        acme.upload("tenants/acme/plans/main", dataset(5))
        events = acme.run_plan_events(
            planning_pb2.RunPlanRequest(
                parent="tenants/acme/plans/main", plan_date=T0.isoformat(), run_id="r1"
            )
        )
        assert next(events).WhichOneof("event") == "started"
        assert next(events).WhichOneof("event") == "progress"
        m = srv.scrape()
        assert value(m, "masterplan_runs_in_progress", tenant="acme") == 1
        assert value(m, "masterplan_open_streams", tenant="acme") == 1
        assert (
            value(m, "masterplan_runs_total", tenant="acme", mode="regeneration", state="cancelled")
            is None
        )

        # A second stream is one too many for the tenant: refused by the interceptor.
        with pytest.raises(errors.ResourceExhausted):
            acme.run_plan("tenants/acme/plans/other", plan_date=T0)
        acme.cancel_run("tenants/acme/plans/main/runs/r1")
        with pytest.raises(errors.Cancelled):
            list(events)
        assert slow_engine.wait(5)

        def ended() -> bool:
            m = srv.scrape()
            return value(m, "masterplan_runs_in_progress", tenant="acme") == 0

        eventually(ended)
    m = srv.scrape()
    labels = {"tenant": "acme", "mode": "regeneration"}
    assert value(m, "masterplan_runs_total", **labels, state="cancelled") == 1
    assert value(m, "masterplan_runs_total", **labels, state="succeeded") is None
    assert value(m, "masterplan_quota_refusals_total", tenant="acme", quota="open_streams") == 1
    assert (
        value(m, "masterplan_run_duration_seconds_count", mode="regeneration", state="cancelled")
        == 1
    )
    eventually(lambda: value(srv.scrape(), "masterplan_open_streams", tenant="acme") is None)


def test_each_server_counts_its_own_and_stops_serving_with_itself(metered) -> None:  # type: ignore[no-untyped-def]
    one, two = metered(), metered()
    assert one.port != two.port
    with one.tenant("acme") as acme:
        acme.upload("tenants/acme/plans/main", dataset(5))
    assert value(one.scrape(), "masterplan_upload_rows_total", tenant="acme", mode="snapshot") == 3
    assert (
        value(two.scrape(), "masterplan_upload_rows_total", tenant="acme", mode="snapshot") is None
    )
    one.running.stop(grace=0)
    with pytest.raises(urllib.error.URLError):
        one.scrape()
    two.scrape()  # the other server's endpoint is untouched


def test_no_metrics_port_serves_nothing_but_still_counts(tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = ServerConfig(port=0, registry_url=f"sqlite:///{tmp_path / 'reg.db'}")
    running = start_server(config, AdminCredential.from_key(secrets.token_urlsafe(24)))
    try:
        assert running.metrics_endpoint is None and running.metrics_port is None
        assert running.metrics.registry.get_sample_value("masterplan_upload_rows_total") is None
    finally:
        running.stop(grace=0)


def test_serve_with_a_metrics_port_serves_them_on_its_host(tmp_path) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    served = Served(tmp_path, "--metrics-port", str(port), "--drain", "0")
    try:
        with served.admin() as admin:
            admin.install_tenant("acme")
        m = scrape(port)
        assert value(m, "masterplan_tenant_bytes_held", tenant="acme") is None  # holds nothing
        assert (value(m, "process_resident_memory_bytes") or 0) > 0
        assert "metrics endpoint listening" in served.log.read_text()
    finally:
        served.stop()


def test_the_metrics_port_comes_from_the_flag_or_the_environment() -> None:
    args = build_parser().parse_args(["serve", "--metrics-port", "9464"])
    apply_serve_settings(args, {"MASTERPLAN_METRICS_PORT": "9100"})
    assert args.metrics_port == 9464  # the flag wins
    args = build_parser().parse_args(["serve"])
    apply_serve_settings(args, {"MASTERPLAN_METRICS_PORT": "9100"})
    assert args.metrics_port == 9100
    args = argparse.Namespace()
    apply_serve_settings(args, {})
    assert args.metrics_port is None  # off by default
    with pytest.raises(ValueError, match="metrics_port"):
        ServerConfig(metrics_port=70000)


def test_a_run_in_another_thread_is_counted_once(metered) -> None:  # type: ignore[no-untyped-def]
    """Two tenants' runs at once: every run ends in exactly one state."""
    srv = metered()
    done: list[str] = []

    def plan(name: str) -> None:
        with srv.tenant(name) as c:
            c.upload(f"tenants/{name}/plans/main", dataset(5))
            for i in range(3):
                c.run_plan(f"tenants/{name}/plans/main", plan_date=T0, run_id=f"r{i}")
        done.append(name)

    srv.tenant("acme").close()
    srv.tenant("globex").close()
    threads = [threading.Thread(target=plan, args=(n,)) for n in ("acme", "globex")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(done) == ["acme", "globex"]
    m = srv.scrape()
    for name in ("acme", "globex"):
        labels = {"tenant": name, "mode": "regeneration"}
        assert value(m, "masterplan_runs_total", **labels, state="succeeded") == 3
        assert value(m, "masterplan_runs_in_progress", tenant=name) == 0
    assert (
        value(m, "masterplan_run_duration_seconds_count", mode="regeneration", state="succeeded")
        == 6
    )
