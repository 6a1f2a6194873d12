"""Pegging trees: from a sales order down the bill of materials, and back.

A tree is bounded whatever the bill of materials: shared subtrees are sent
once, a node bound cuts the walk with continuations that lead to the rest,
depth never meets a recursion or nesting limit, and a call whose deadline
passes stops the work (against a real ``masterplan serve`` process).
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from masterplan.client import errors
from masterplan.client.client import MasterplanClient
from masterplan.contract.rows import from_rows
from masterplan.contract.tables import INPUT_TABLES
from masterplan.server.engine import PlanParams, plan
from masterplan.server.errors import InvalidArgument, NotFound
from masterplan.server.pegging import PeggingIndex, PegTree
from masterplan.v1 import planning_pb2

ROWS = {
    "warehouses": [{"warehouse_id": "W1", "site_id": "S"}],
    "items": [
        {"item_id": "BIKE", "default_order_type": "production", "lead_time_days": 2},
        {"item_id": "FRAME", "default_order_type": "production", "lead_time_days": 3},
        {"item_id": "TUBE", "default_order_type": "purchase", "lead_time_days": 5},
    ],
    "boms": [
        {"bom_id": "B-BIKE", "item_id": "BIKE", "batch_qty": 1},
        {"bom_id": "B-FRAME", "item_id": "FRAME", "batch_qty": 1},
    ],
    "bom_lines": [
        {"bom_id": "B-BIKE", "line_no": 10, "component_item_id": "FRAME", "qty_per": 1},
        {"bom_id": "B-FRAME", "line_no": 10, "component_item_id": "TUBE", "qty_per": 3},
    ],
    "on_hand": [{"item_id": "TUBE", "warehouse_id": "W1", "qty": 2}],
    # eleven orders of BIKE: ids BIKE/W1/1 ... BIKE/W1/11 (1 is a prefix of 10 and 11)
    "sales_lines": [
        {
            "order_id": f"SO{i}",
            "line_no": 1,
            "item_id": "BIKE",
            "warehouse_id": "W1",
            "qty": 1,
            "requested_date": f"2026-02-{i + 1:02d}",
        }
        for i in range(1, 12)
    ],
}


@pytest.fixture(scope="module")
def index() -> PeggingIndex:
    data = {n: from_rows(INPUT_TABLES[n], ROWS.get(n, [])) for n in INPUT_TABLES}
    return PeggingIndex(plan(data, PlanParams(dt.date(2026, 1, 5))).tables["pegging"])


def refs(tree: PegTree, i: int = 0) -> list:
    """The nested ``[ref, [children]]`` form of a small flat tree, references followed."""
    kids = tree.children()
    at = tree.nodes[i].same_as if tree.nodes[i].same_as >= 0 else i
    return [tree.nodes[i].ref, [refs(tree, c) for c in kids[at]]]


def test_tree_from_a_sales_order_to_the_purchased_part(index: PeggingIndex) -> None:
    tree = index.tree("SO:SO1/1")
    assert not tree.truncated and all(not n.continuation for n in tree.nodes)
    assert refs(tree) == [
        "SO:SO1/1",
        [
            [
                "PL:BIKE/W1/1",
                [
                    [
                        "PL:BIKE/W1/1/10",
                        [
                            [
                                "PL:FRAME/W1/1",
                                [["PL:FRAME/W1/1/10", [["OH:TUBE/W1", []], ["PL:TUBE/W1/1", []]]]],
                            ]
                        ],
                    ]
                ],
            ]
        ],
    ]
    (tube,) = (n for n in tree.nodes if n.ref == "PL:FRAME/W1/1/10")
    assert (tube.kind, tube.item_id, tube.qty, tube.supply) == ("pl", "TUBE", 3.0, False)
    below = [n for n in tree.nodes if n.parent == tree.nodes.index(tube)]
    assert [(c.ref, c.qty, c.supply) for c in below] == [
        ("OH:TUBE/W1", 2.0, True),
        ("PL:TUBE/W1/1", 1.0, True),
    ]


def test_an_order_id_that_prefixes_another_gets_only_its_own_lines(index: PeggingIndex) -> None:
    assert refs(index.tree("PL:BIKE/W1/1"))[1][0][0] == "PL:BIKE/W1/1/10"
    assert [c[0] for c in refs(index.tree("PL:BIKE/W1/11"))[1]] == ["PL:BIKE/W1/11/10"]


def test_depth_limit_and_unknown_refs(index: PeggingIndex) -> None:
    # max_depth counts BOM levels: the frame one level down, not below it
    shallow = index.tree("SO:SO1/1", max_depth=1)
    assert refs(shallow) == [
        "SO:SO1/1",
        [["PL:BIKE/W1/1", [["PL:BIKE/W1/1/10", [["PL:FRAME/W1/1", []]]]]]],
    ]
    assert [n.depth for n in shallow.nodes] == [0, 0, 1, 1]
    # the depth bound leaves a way on below it, and is not a truncation
    assert not shallow.truncated and shallow.nodes[-1].continuation
    deeper = index.tree(continuation=shallow.nodes[-1].continuation)
    assert refs(deeper)[1][0][0] == "PL:FRAME/W1/1/10"
    assert deeper.nodes[0].depth == 1 and deeper.nodes[1].depth == 2
    with pytest.raises(NotFound):
        index.tree("SO:NOPE/1")
    with pytest.raises(InvalidArgument):
        index.tree(continuation="not-a-token")


def test_a_check_that_raises_stops_the_walk(index: PeggingIndex) -> None:
    calls = []

    def check() -> None:
        calls.append(1)
        raise TimeoutError

    with pytest.raises(TimeoutError):
        PeggingIndex(doubling_pegging(12)).tree("SO:S/1", shared=False, check=check)
    assert len(calls) == 1


# -- against a real server ---------------------------------------------------
ROOT = Path(__file__).parents[2]
ADMIN = "an-admin-key-of-enough-length-123"
PLAN = "tenants/acme/plans/main"


def doubling_bom(levels: int, lines: int = 2) -> dict[str, list[dict]]:
    """L0 .. L{levels}, each made of ``lines`` BOM lines of the next item.

    The period coverage gathers both lines' requirements into one planned
    order per level, pegged to both: the run stays small while the number of
    paths through the tree doubles per level (``lines`` = 2).
    """
    return {
        "coverage_groups": [
            {"group_id": "P", "coverage_code": "period", "coverage_period_days": 7}
        ],
        "warehouses": [{"warehouse_id": "W1", "site_id": "S"}],
        "items": [
            {
                "item_id": f"L{i}",
                "default_order_type": "production" if i < levels else "purchase",
                "lead_time_days": 0,
                "coverage_group_id": "P",
            }
            for i in range(levels + 1)
        ],
        "boms": [{"bom_id": f"B{i}", "item_id": f"L{i}", "batch_qty": 1} for i in range(levels)],
        "bom_lines": [
            {
                "bom_id": f"B{i}",
                "line_no": 10 * (k + 1),
                "component_item_id": f"L{i + 1}",
                "qty_per": 1,
            }
            for i in range(levels)
            for k in range(lines)
        ],
        "sales_lines": [
            {
                "order_id": "S",
                "line_no": 1,
                "item_id": "L0",
                "warehouse_id": "W1",
                "qty": 1,
                "requested_date": "2030-01-10",
            }
        ],
    }


def input_tables(rows: dict[str, list[dict]]) -> list[tuple[str, dict]]:
    return [(n, from_rows(INPUT_TABLES[n], rows.get(n, []))) for n in INPUT_TABLES]


def doubling_pegging(levels: int) -> dict:
    data = dict(input_tables(doubling_bom(levels)))
    return plan(data, PlanParams(dt.date(2030, 1, 1))).tables["pegging"]


class Served:
    """``masterplan serve`` as a child process on a free loopback port."""

    def __init__(self, tmp: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.address = f"127.0.0.1:{port}"
        self.log = tmp / "serve.log"
        self.proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "masterplan.client.cli", "serve"),
                *("--port", str(port), "--registry", f"sqlite:///{tmp / 'reg.db'}"),
            ],
            cwd=ROOT,
            env={**os.environ, "MASTERPLAN_ADMIN_KEY": ADMIN},
            stdout=subprocess.PIPE,
            stderr=self.log.open("w"),  # a file: an unread pipe would block the server
            text=True,
        )
        assert self.proc.stdout is not None
        assert "listening" in self.proc.stdout.readline(), self.log.read_text()
        with MasterplanClient(self.address, ADMIN) as admin:
            self.key = admin.install_tenant("acme").api_key

    def client(self, timeout: float = 60.0) -> MasterplanClient:
        return MasterplanClient(self.address, self.key, timeout=timeout)

    def planned(self, rows: dict[str, list[dict]], run_id: str) -> str:
        with self.client() as c:
            c.upload(PLAN, input_tables(rows))
            return c.run_plan(PLAN, plan_date=dt.date(2030, 1, 1), run_id=run_id).run.name

    def cpu_seconds(self) -> float:
        """User and system CPU time of the server process so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(30)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    s = Served(tmp_path_factory.mktemp("pegging"))
    try:
        yield s
    finally:
        s.stop()


def edges(resp: planning_pb2.GetPeggingResponse) -> set[tuple]:
    """(parent, child, qty) of every edge sent; a node is (supply?, ref)."""
    key = [(n.supply, n.ref) for n in resp.nodes]
    return {(key[n.parent], key[i], n.qty) for i, n in enumerate(resp.nodes) if n.parent >= 0}


def test_a_doubling_bom_at_depth_21_answers_each_order_once(served: Served) -> None:
    run = served.planned(doubling_bom(21), "doubling")
    with served.client(timeout=60) as c:
        resp = c.get_pegging(run, "SO:S/1")
    assert not resp.truncated
    firsts = [(n.supply, n.ref) for n in resp.nodes if not n.HasField("same_as")]
    assert len(firsts) == len(set(firsts))  # each demand and supply sent once
    # 2**21 paths, but 4 nodes per level: the order, its two lines, a reference
    assert len(resp.nodes) <= 4 * 22 + 2 and resp.ByteSize() < 20_000
    supplies = {n.ref for n in resp.nodes if n.supply}
    assert supplies == {f"PL:L{i}/W1/1" for i in range(22)}
    for n in resp.nodes:
        if n.HasField("same_as"):
            assert resp.nodes[n.same_as].ref == n.ref and not n.continuation
    # the deprecated nested form, for older clients: bounded too, and says so
    with served.client(timeout=60) as c:
        nested = c._unary(
            c._planning.GetPegging,
            planning_pb2.GetPeggingRequest(name=run, ref="SO:S/1", max_nodes=5000),
            planning_pb2.GetPeggingResponse,
        )
    assert nested.truncated and not nested.nodes and nested.root.ref == "SO:S/1"
    assert nested.ByteSize() < 5000 * 100


def test_a_500_level_chain_answers_whole(served: Served) -> None:
    run = served.planned(doubling_bom(500, lines=1), "chain")
    with served.client(timeout=60) as c:
        resp = c.get_pegging(run, "SO:S/1")
    assert not resp.truncated
    # SO, then per level the order and its line, then the purchased leaf
    assert len(resp.nodes) == 1 + 2 * 500 + 1
    assert [n.parent for n in resp.nodes] == list(range(-1, len(resp.nodes) - 1))
    assert resp.nodes[-1].ref == "PL:L500/W1/1"
    with served.client(timeout=60) as c:  # nested for older clients: cut at 20 BOM levels
        nested = c._unary(
            c._planning.GetPegging,
            planning_pb2.GetPeggingRequest(name=run, ref="SO:S/1"),
            planning_pb2.GetPeggingResponse,
        )
    assert nested.truncated
    depth, node = 0, nested.root
    while node.children:
        depth, node = depth + 1, node.children[0]
    # the sales line, its order, then a requirement and its supply per level
    assert depth == 1 + 2 * 20


def test_max_nodes_cuts_the_tree_and_continuations_yield_the_rest(served: Served) -> None:
    run = served.planned(doubling_bom(6, lines=3), "wide")
    with served.client() as c:
        whole = c.get_pegging(run, "SO:S/1")
        assert not whole.truncated
        first = c.get_pegging(run, "SO:S/1", max_nodes=4)
        assert first.truncated and len(first.nodes) == 4
        got, calls = edges(first), 1
        tokens = [n.continuation for n in first.nodes if n.continuation]
        seen = set(tokens)
        while tokens:
            resp = c.get_pegging(run, continuation=tokens.pop(), max_nodes=4)
            calls += 1
            assert len(resp.nodes) <= 4 and calls < 500
            got |= edges(resp)
            for n in resp.nodes:
                if n.continuation and n.continuation not in seen:
                    seen.add(n.continuation)
                    tokens.append(n.continuation)
    assert got == edges(whole)
    with served.client() as c, pytest.raises(errors.InvalidArgument):
        c.get_pegging(run, continuation="bm90LWEtdG9rZW4")


def test_a_deadline_mid_build_stops_the_work_and_the_server_keeps_serving(
    served: Served,
) -> None:
    run = served.planned(doubling_bom(21), "deadline")
    # the nested form repeats shared subtrees: 100,000 nodes take the server
    # seconds, far over a 0.3 s deadline
    request = planning_pb2.GetPeggingRequest(name=run, ref="SO:S/1", max_nodes=100_000)
    with served.client() as c:
        stub = c._planning
        with pytest.raises(grpc.RpcError) as err:
            stub.GetPegging(request, timeout=0.3, metadata=c._metadata)
        assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        stopped = time.monotonic()
        with grpc.insecure_channel(served.address) as ch:
            health = health_pb2_grpc.HealthStub(ch).Check(
                health_pb2.HealthCheckRequest(), timeout=5
            )
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        resp = c.get_pegging(run, "SO:S/1")
        assert time.monotonic() - stopped < 5 and not resp.truncated
        # and the server is idle again, not still building the first answer
        time.sleep(0.5)
        before = served.cpu_seconds()
        time.sleep(1.0)
        assert served.cpu_seconds() - before < 0.5
