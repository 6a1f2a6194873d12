"""Simulate: a what-if delta planned over gRPC without changing anything (SPEC §6).

The promises are checked against a regeneration of the same data with the
delta applied, planned here through the engine: the simulation must say what
that plan's delay messages and pegging say. The planned dates are also
worked out by hand from SPEC §5 for the small model below.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from masterplan.client import errors
from masterplan.client.client import MasterplanClient
from masterplan.codec import concat, decode_chunk
from masterplan.contract.columns import Table
from masterplan.contract.difference import difference
from masterplan.contract.rows import from_rows, to_rows
from masterplan.contract.tables import INPUT_TABLES, PLAN_OUTPUT_TABLES, RESULT_OUTPUT_SPECS
from masterplan.server.engine import PlanParams, plan
from masterplan.v1 import columnar_pb2, planning_pb2
from tests.server.conftest import Live

T0 = dt.date(2026, 1, 5)
PARENT = "tenants/acme/plans/main"

#: One purchased item, 10 on hand, lead time 5 calendar days; one sales line
#: of 4 takes 4 of the stock, so 6 are free from T0 on.
ROWS: dict[str, list[dict[str, Any]]] = {
    "warehouses": [{"warehouse_id": "W1", "site_id": "S"}],
    "items": [
        {"item_id": "BIKE", "default_order_type": "purchase", "lead_time_days": 5},
        {"item_id": "BELL", "default_order_type": "purchase", "lead_time_days": 2},
    ],
    "on_hand": [
        {"item_id": "BIKE", "warehouse_id": "W1", "qty": 10},
        {"item_id": "BELL", "warehouse_id": "W1", "qty": 3},
    ],
    "sales_lines": [
        {
            "order_id": "S1",
            "line_no": 1,
            "item_id": "BIKE",
            "warehouse_id": "W1",
            "qty": 4,
            "requested_date": "2026-01-06",
        }
    ],
}


def _tables(rows: dict[str, list[dict[str, Any]]]) -> dict[str, Table]:
    return {n: from_rows(INPUT_TABLES[n], rows.get(n, [])) for n in INPUT_TABLES}


def _line(order_id: str, qty: float, requested: str, item: str = "BIKE") -> Table:
    return from_rows(
        INPUT_TABLES["sales_lines"],
        [
            {
                "order_id": order_id,
                "line_no": 1,
                "item_id": item,
                "warehouse_id": "W1",
                "qty": qty,
                "requested_date": requested,
                "priority": 0,
            }
        ],
    )


@pytest.fixture
def client(live: Live) -> Iterator[MasterplanClient]:
    with live.client("acme") as c:
        yield c


@pytest.fixture
def planned(client: MasterplanClient) -> planning_pb2.PlanRun:
    """The model uploaded and planned once: the run a simulation compares with."""
    client.upload(PARENT, _tables(ROWS).items())
    return client.run_plan(PARENT, plan_date=T0).run


def _regeneration(line: Table) -> dict[str, Table]:
    """The plan of the model with ``line`` added, straight from the engine."""
    rows = dict(ROWS)
    rows["sales_lines"] = ROWS["sales_lines"] + to_rows(line, INPUT_TABLES["sales_lines"])
    return plan(_tables(rows), PlanParams(T0)).arrays()


def _snapshot(live: Live) -> str:
    """The data set the server holds: its version and every table's content.

    As text, so that NULLs (NaN, NaT) compare equal to themselves.
    """
    (tenant_id,) = live.running.stores.tenant_ids()
    ds = live.running.stores.get(tenant_id).dataset("main")
    content = {
        name: {col: arr.tolist() for col, arr in table.items()} for name, table in ds.tables.items()
    }
    return repr((ds.version, content))


def test_a_simulation_changes_nothing(
    live: Live, client: MasterplanClient, planned: planning_pb2.PlanRun
) -> None:
    before = _snapshot(live)
    runs = client.list_runs(PARENT)
    pegging = client.get_pegging(planned.name, "SO:S1/1")
    delete = {"order_id": np.array(["S1"], dtype=object), "line_no": np.array([1.0])}
    response = client.simulate(
        PARENT,
        upserts=[("sales_lines", _line("P", 50, "2026-01-07"))],
        deletes=[("sales_lines", delete)],
        demand_refs=["SO:P/1", "SO:S1/1"],
        include_difference=True,
    )
    # the delta was planned: the new line is late, the deleted one gone
    assert [(p.unknown, p.delay_days > 0) for p in response.promises] == [
        (False, True),
        (True, False),
    ]
    assert _snapshot(live) == before
    assert client.list_runs(PARENT) == runs
    assert client.get_pegging(planned.name, "SO:S1/1") == pegging


def test_a_quantity_the_stock_covers_is_on_time(
    client: MasterplanClient, planned: planning_pb2.PlanRun
) -> None:
    response = client.simulate(
        PARENT, upserts=[("sales_lines", _line("P", 6, "2026-01-07"))], demand_refs=["SO:P/1"]
    )
    (p,) = response.promises
    assert (p.item_id, p.warehouse_id) == ("BIKE", "W1")
    assert (p.requirement_date, p.futures_date, p.delay_days) == ("2026-01-07", "2026-01-07", 0)
    assert not p.never_covered and not p.unknown
    assert [(s.kind, s.ref, s.date, s.qty, s.planned) for s in p.supplies] == [
        ("oh", "OH:BIKE/W1", "2026-01-05", 6.0, False)
    ]
    # the plan date is the base run's; the new pegging row is the whole difference
    assert response.plan_date == T0.isoformat()
    assert response.base_run_id == planned.run_id
    assert (response.rows_added, response.rows_removed) == (1, 0)
    assert response.added_counts["pegging"] == 1


def test_beyond_stock_is_late_by_the_lead_time_with_the_planned_order_pegged(
    client: MasterplanClient, planned: planning_pb2.PlanRun
) -> None:
    line = _line("P", 20, "2026-01-07")
    response = client.simulate(
        PARENT, upserts=[("sales_lines", line)], demand_refs=["SO:P/1"], include_difference=True
    )
    (p,) = response.promises
    # by hand: 6 free on hand, 14 ordered at T0 arrive T0 + 5 = 2026-01-10,
    # three days after the requested 2026-01-07 (SPEC §5.6, §5.7)
    assert (p.requirement_date, p.futures_date, p.delay_days) == ("2026-01-07", "2026-01-10", 3)
    assert not p.never_covered
    assert [(s.kind, s.qty, s.planned) for s in p.supplies] == [
        ("oh", 6.0, False),
        ("pl", 14.0, True),
    ]

    # the same as a regeneration of the data with the line added
    expected = _regeneration(line)
    delays = expected["delay_messages"]
    (i,) = np.flatnonzero(delays["demand_ref"] == "SO:P/1")
    assert p.futures_date == str(delays["futures_date"][i])
    assert p.delay_days == int(delays["delay_days"][i])
    peg = expected["pegging"]
    mine = peg["demand_ref"] == "SO:P/1"
    assert [s.ref for s in p.supplies] == peg["supply_ref"][mine].tolist()
    (order_id,) = expected["planned_orders"]["planned_order_id"].tolist()
    assert p.supplies[1].ref == f"PL:{order_id}"

    # the difference is the one between the base run's result and that plan
    held = plan(_tables(ROWS), PlanParams(T0)).tables  # what the planned run holds
    want = difference(held, expected)
    assert response.rows_added == want.rows_added
    assert response.rows_removed == want.rows_removed
    got = _decoded(response.difference)
    for name in PLAN_OUTPUT_TABLES:
        assert to_rows(got[columnar_pb2.CHANGE_KIND_UPSERT][name]) == to_rows(want.added[name])
        assert to_rows(got[columnar_pb2.CHANGE_KIND_DELETE][name]) == to_rows(want.removed[name])


def _decoded(
    chunks: Any,
) -> dict[int, dict[str, Table]]:
    """The difference's chunks as tables, per change kind."""
    parts: dict[int, dict[str, list[Table]]] = {
        kind: {name: [] for name in PLAN_OUTPUT_TABLES}
        for kind in (columnar_pb2.CHANGE_KIND_UPSERT, columnar_pb2.CHANGE_KIND_DELETE)
    }
    for chunk in chunks:
        parts[chunk.change][chunk.table].append(
            decode_chunk(chunk, RESULT_OUTPUT_SPECS[chunk.table])
        )
    return {
        kind: {name: concat(RESULT_OUTPUT_SPECS[name], p) for name, p in tables.items()}
        for kind, tables in parts.items()
    }


def test_an_unknown_ref_is_unknown(client: MasterplanClient, planned: planning_pb2.PlanRun) -> None:
    response = client.simulate(PARENT, demand_refs=["SO:NOPE/1", "FC:BIKE/W1/2026-01-09"])
    assert [(p.ref, p.unknown, p.futures_date) for p in response.promises] == [
        ("SO:NOPE/1", True, ""),
        ("FC:BIKE/W1/2026-01-09", True, ""),
    ]
    # no change: the simulated plan is the base run's
    assert (response.rows_added, response.rows_removed) == (0, 0)


def test_without_a_run_the_difference_is_to_an_empty_plan(client: MasterplanClient) -> None:
    client.upload(PARENT, _tables(ROWS).items())
    response = client.simulate(PARENT, plan_date=T0, demand_refs=["SO:S1/1"])
    assert response.base_run_id == ""
    assert response.rows_removed == 0
    whole = plan(_tables(ROWS), PlanParams(T0)).row_counts()
    assert response.rows_added == sum(whole.values()) > 0
    (p,) = response.promises
    assert (p.futures_date, p.delay_days) == ("2026-01-06", 0)
    assert client.list_runs(PARENT) == []


def test_a_line_nothing_supplies_is_never_covered(
    client: MasterplanClient, planned: planning_pb2.PlanRun
) -> None:
    # an item of a manual coverage group: the plan orders nothing for it
    groups = from_rows(
        INPUT_TABLES["coverage_groups"], [{"group_id": "MAN", "coverage_code": "manual"}]
    )
    items = from_rows(
        INPUT_TABLES["items"],
        [
            {
                "item_id": "GIZMO",
                "default_order_type": "purchase",
                "coverage_group_id": "MAN",
                "lead_time_days": 1,
            }
        ],
    )
    response = client.simulate(
        PARENT,
        upserts=[
            ("coverage_groups", groups),
            ("items", items),
            ("sales_lines", _line("G", 1, "2026-01-08", item="GIZMO")),
        ],
        demand_refs=["SO:G/1"],
    )
    (p,) = response.promises
    assert not p.unknown
    assert p.never_covered and p.futures_date == "" and p.delay_days == 0


def test_refusals(live: Live, client: MasterplanClient) -> None:
    with pytest.raises(errors.FailedPrecondition):
        client.simulate(PARENT, demand_refs=["SO:S1/1"])
    client.upload(PARENT, _tables(ROWS).items())
    missing = {"order_id": np.array(["NOPE"], dtype=object), "line_no": np.array([1.0])}
    with pytest.raises(errors.InvalidArgument):
        client.simulate(PARENT, deletes=[("sales_lines", missing)])
    with pytest.raises(errors.InvalidArgument):
        client.simulate(PARENT, upserts=[("no_such_table", {"x": np.array([1.0])})])
    lacking = {"order_id": np.array(["A"], dtype=object)}  # no other column
    with pytest.raises(errors.InvalidArgument):
        client.simulate(PARENT, upserts=[("sales_lines", lacking)])
    # another tenant's plan
    with pytest.raises(errors.PermissionDenied):
        client.simulate("tenants/globex/plans/main")


def test_a_simulation_needs_a_tenant_key(live: Live) -> None:
    with live.client(key="") as anonymous, pytest.raises(errors.Unauthenticated):
        anonymous.simulate(PARENT, demand_refs=["SO:S1/1"])


def test_a_line_beyond_the_coverage_fence_is_known_and_never_covered(
    client: MasterplanClient, planned: planning_pb2.PlanRun
) -> None:
    # the plan ignores a requirement beyond the fence entirely (SPEC §5.4):
    # no pegging, no message; the promise comes from the data
    groups = from_rows(
        INPUT_TABLES["coverage_groups"],
        [{"group_id": "SHORT", "coverage_code": "requirement", "coverage_time_fence_days": 10}],
    )
    response = client.simulate(
        PARENT,
        upserts=[("coverage_groups", groups), ("sales_lines", _line("FAR", 1, "2026-03-01"))],
        default_group="SHORT",
        demand_refs=["SO:FAR/1"],
    )
    (p,) = response.promises
    assert (p.unknown, p.never_covered, p.item_id, p.warehouse_id) == (False, True, "BIKE", "W1")
    assert (p.requirement_date, p.futures_date, list(p.supplies)) == ("2026-03-01", "", [])


def test_a_simulation_after_an_upload_the_base_run_did_not_plan_plans_that_upload_too(
    client: MasterplanClient,
) -> None:
    """The base run planned 10 BIKE on hand; a delta since adds 20 more and
    no run has planned it. A line of 20 is then on time, as a regeneration of
    the data set the server holds (with the line) says, not late as it would
    be with the base run's stock."""
    etag = client.upload(PARENT, _tables(ROWS).items()).etag
    client.run_plan(PARENT, plan_date=T0)
    more = from_rows(
        INPUT_TABLES["on_hand"], [{"item_id": "BIKE", "warehouse_id": "W1", "qty": 20}]
    )
    client.upload(PARENT, [("on_hand", more)], mode="delta", base_etag=etag)
    line = _line("P", 20, "2026-01-07")
    response = client.simulate(PARENT, upserts=[("sales_lines", line)], demand_refs=["SO:P/1"])
    (p,) = response.promises
    rows = {**ROWS, "on_hand": [*ROWS["on_hand"], *to_rows(more, INPUT_TABLES["on_hand"])]}
    rows["sales_lines"] = ROWS["sales_lines"] + to_rows(line, INPUT_TABLES["sales_lines"])
    expected = plan(_tables(rows), PlanParams(T0)).arrays()
    assert "SO:P/1" not in expected["delay_messages"]["demand_ref"].tolist()
    assert (p.futures_date, p.delay_days) == ("2026-01-07", 0)
    peg = expected["pegging"]
    mine = peg["demand_ref"] == "SO:P/1"
    assert [(s.ref, s.qty) for s in p.supplies] == list(
        zip(peg["supply_ref"][mine].tolist(), peg["qty"][mine].tolist(), strict=True)
    )


#: A product made of a bought component, and a production order already
#: released that needs another bought component: demands of kinds ``pl``
#: (the planned production order's component) and ``prdl`` (the production
#: order's line), which get no delay message.
MADE: dict[str, list[dict[str, Any]]] = {
    "warehouses": [{"warehouse_id": "W1", "site_id": "S"}],
    "items": [
        {"item_id": "FG", "default_order_type": "production", "lead_time_days": 1},
        {"item_id": "C", "default_order_type": "purchase", "lead_time_days": 5},
        {"item_id": "D", "default_order_type": "purchase", "lead_time_days": 3},
    ],
    "boms": [{"bom_id": "B", "item_id": "FG", "batch_qty": 1}],
    "bom_lines": [{"bom_id": "B", "line_no": 1, "component_item_id": "C", "qty_per": 1}],
    "production_orders": [
        {
            "order_id": "M1",
            "item_id": "FG",
            "warehouse_id": "W1",
            "qty": 1,
            "end_date": "2026-01-09",
        }
    ],
    "production_lines": [
        {
            "order_id": "M1",
            "line_no": 1,
            "component_item_id": "D",
            "warehouse_id": "W1",
            "qty": 2,
            "required_date": "2026-01-06",
        }
    ],
    "sales_lines": [
        {
            "order_id": "S",
            "line_no": 1,
            "item_id": "FG",
            "warehouse_id": "W1",
            "qty": 3,
            "requested_date": "2026-01-06",
        }
    ],
}


def test_production_line_and_component_demands_are_promised_their_futures_dates(
    client: MasterplanClient,
) -> None:
    """SPEC §6: a simulation answers each named demand with its futures date
    (§5.7). Delay messages hold those of so, fc, tri and ss only: a late
    production order line or planned order's component read as on time."""
    client.upload(PARENT, _tables(MADE).items())
    client.run_plan(PARENT, plan_date=T0)
    peg = plan(_tables(MADE), PlanParams(T0)).arrays()["pegging"]
    (component,) = set(peg["demand_ref"][peg["demand_kind"] == "pl"].tolist())
    refs = ["PRDL:M1/1", component, "SO:S/1"]
    response = client.simulate(PARENT, demand_refs=refs)
    got = {p.ref: (p.requirement_date, p.futures_date, p.delay_days) for p in response.promises}
    # by hand (§5.6, §5.7): D is bought 3 days out, T0 + 3 = 2026-01-08 for
    # the line wanted 2026-01-06; FG's planned order for the sales line is
    # due 01-06 and released 01-05, when it needs C, bought 5 days out:
    # 01-10. FG's order is then there 01-10 + 1 day: the sales line is 5
    # days late as well.
    assert got == {
        "PRDL:M1/1": ("2026-01-06", "2026-01-08", 2),
        component: ("2026-01-05", "2026-01-10", 5),
        "SO:S/1": ("2026-01-06", "2026-01-11", 5),
    }
    assert all(not p.never_covered and not p.unknown for p in response.promises)
    (line,) = [p for p in response.promises if p.ref == "PRDL:M1/1"]
    assert [(s.kind, s.qty, s.planned) for s in line.supplies] == [("pl", 2.0, True)]
