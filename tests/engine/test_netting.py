"""§5.5 Netting of one SKU: the compiled walk (server/engine/kernels.py) on
hand-made arrays, and the driver over levels (server/engine/netting.py)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from masterplan.server.engine.kernels import (
    CODE_MANUAL,
    CODE_MIN_MAX,
    CODE_PERIOD,
    CODE_REQUIREMENT,
    NO_POSITIVE_DAYS,
    LevelResult,
    WalkSettings,
    net_level,
)
from masterplan.server.engine.netting import Netting, net_levels
from masterplan.server.engine.orderrefs import OrderLog
from tests.engine.phases import T0, Input, Run, day, run, sales

DEFAULTS: dict[str, Any] = {
    "bound_base": 0,
    "neg_days": 0,
    "pos_days": NO_POSITIVE_DAYS,
    "code": CODE_REQUIREMENT,
    "period": 1,
    "min_qty": 0.0,
    "max_qty": 0.0,
    "min_oq": 0.0,
    "max_oq": 0.0,
    "mult": 0.0,
}


def settings_of(n: int, **given: Any) -> WalkSettings:
    """Settings of ``n`` SKUs: ``given`` for all of them, else the defaults of §5.2."""
    return WalkSettings(**{k: np.full(n, v) for k, v in (DEFAULTS | given).items()})


def walk(
    reqs: list[tuple[int, float]], recs: list[tuple[int, float]], **settings: Any
) -> LevelResult:
    """Net one SKU with plan date 0: requirements and receipts as (date, qty)."""
    return net_level(
        0,
        np.array([0, len(reqs)]),
        np.array([d for d, _ in reqs], dtype=np.int64),
        np.array([q for _, q in reqs], dtype=np.float64),
        np.array([0, len(recs)]),
        np.array([d for d, _ in recs], dtype=np.int64),
        np.array([q for _, q in recs], dtype=np.float64),
        settings_of(1, **settings),
    )


def pegs(res: LevelResult) -> list[tuple[int, int, float]]:
    """(requirement, source, qty) of each take; a planned order k is source -1 - k."""
    return list(zip(res.peg_req.tolist(), res.peg_src.tolist(), res.peg_qty.tolist(), strict=True))


def orders(res: LevelResult) -> list[tuple[int, float]]:
    return list(zip(res.po_date.tolist(), res.po_qty.tolist(), strict=True))


@pytest.mark.parametrize(
    ("reqs", "recs", "settings", "want_pegs", "want_orders"),
    [
        # FIFO over two receipts; the rest becomes an order due at the requirement.
        (
            [(5, 10.0)],
            [(1, 3.0), (2, 4.0)],
            {},
            [(0, 0, 3.0), (0, 1, 4.0), (0, -1, 3.0)],
            [(5, 3.0)],
        ),
        # A receipt after the requirement plus negative days is not taken...
        ([(5, 4.0)], [(8, 10.0)], {"neg_days": 2}, [(0, -1, 4.0)], [(5, 4.0)]),
        # ...one within them is.
        ([(5, 4.0)], [(8, 10.0)], {"neg_days": 3}, [(0, 0, 4.0)], []),
        # Dynamic negative days: worth waiting for what comes by T0 + lead time.
        ([(5, 4.0)], [(8, 10.0)], {"bound_base": 8}, [(0, 0, 4.0)], []),
        # Positive days: a receipt more than 5 days before the requirement is skipped.
        ([(10, 4.0)], [(1, 10.0)], {"pos_days": 5}, [(0, -1, 4.0)], [(10, 4.0)]),
        ([(10, 4.0)], [(5, 10.0)], {"pos_days": 5}, [(0, 0, 4.0)], []),
        # What an order brings beyond the shortfall stays for later requirements.
        (
            [(2, 3.0), (4, 5.0)],
            [],
            {"min_oq": 10.0},
            [(0, -1, 3.0), (1, -1, 5.0)],
            [(2, 10.0)],
        ),
        # A need above max_order_qty is split; a multiple rounds the rest up.
        (
            [(2, 12.0)],
            [],
            {"max_oq": 5.0, "mult": 2.0},
            [(0, -1, 5.0), (0, -2, 5.0), (0, -3, 2.0)],
            [(2, 5.0), (2, 5.0), (2, 2.0)],
        ),
        # period: one order for the shortfalls of the 7 days from the first one.
        (
            [(2, 3.0), (4, 5.0), (9, 2.0)],
            [],
            {"code": CODE_PERIOD, "period": 7},
            [(0, -1, 3.0), (1, -1, 5.0), (2, -2, 2.0)],
            [(2, 8.0), (9, 2.0)],
        ),
        # period: a receipt within the period covers its requirement, so it is
        # not in the order.
        (
            [(2, 3.0), (4, 5.0)],
            [(3, 5.0)],
            {"code": CODE_PERIOD, "period": 7},
            [(0, -1, 3.0), (1, 0, 5.0)],
            [(2, 3.0)],
        ),
        # manual: no orders; the requirement stays short.
        ([(2, 3.0)], [], {"code": CODE_MANUAL}, [], []),
        # min_max before the first requirement: projected 3 < min 5: up to max 20.
        ([], [(0, 3.0)], {"code": CODE_MIN_MAX, "min_qty": 5.0, "max_qty": 20.0}, [], [(0, 17.0)]),
        # ...with a multiple of 5: the largest multiple that stays within max.
        (
            [],
            [(0, 3.0)],
            {"code": CODE_MIN_MAX, "min_qty": 5.0, "max_qty": 20.0, "mult": 5.0},
            [],
            [(0, 15.0)],
        ),
        # At equal netting dates an existing receipt comes before a planned order.
        (
            [(1, 2.0)],
            [(0, 3.0)],
            {"code": CODE_MIN_MAX, "min_qty": 5.0, "max_qty": 20.0},
            [(0, 0, 2.0)],
            [(0, 17.0)],
        ),
        # min_max after a requirement leaves 2 < 5: an order of 18 due then.
        (
            [(3, 8.0)],
            [(0, 10.0)],
            {"code": CODE_MIN_MAX, "min_qty": 5.0, "max_qty": 20.0},
            [(0, 0, 8.0)],
            [(3, 18.0)],
        ),
    ],
)
def test_walk(
    reqs: list[tuple[int, float]],
    recs: list[tuple[int, float]],
    settings: dict[str, Any],
    want_pegs: list[tuple[int, int, float]],
    want_orders: list[tuple[int, float]],
) -> None:
    res = walk(reqs, recs, **settings)
    assert pegs(res) == want_pegs
    assert orders(res) == want_orders


def test_shortfall_of_a_manual_sku() -> None:
    res = walk([(2, 3.0), (4, 1.0)], [(1, 2.0)], code=CODE_MANUAL)
    assert res.shortfall.tolist() == [1.0, 1.0]


def test_walk_leaves_the_receipts_alone() -> None:
    qty = np.array([5.0])
    net_level(
        0,
        np.array([0, 1]),
        np.array([1]),
        np.array([4.0]),
        np.array([0, 1]),
        np.array([0]),
        qty,
        settings_of(1),
    )
    assert qty.tolist() == [5.0]


def test_a_walk_with_more_orders_and_takes_than_its_first_arrays_hold() -> None:
    """One requirement of 1000 with a maximum order of 10: a hundred planned
    orders and a hundred takes, where the walk's arrays first hold sixteen
    (they grow, keeping every row), and two receipts taken first."""
    res = walk([(5, 1003.0)], [(1, 1.0), (2, 2.0)], max_oq=10.0)
    assert orders(res) == [(5, 10.0)] * 100
    assert pegs(res) == [(0, 0, 1.0), (0, 1, 2.0)] + [(0, -1 - k, 10.0) for k in range(100)]
    assert res.shortfall.tolist() == [0.0]


def test_several_skus_in_one_batch() -> None:
    res = net_level(
        0,
        np.array([0, 1, 2]),
        np.array([3, 3]),
        np.array([4.0, 6.0]),
        np.array([0, 1, 1]),
        np.array([0]),
        np.array([10.0]),
        settings_of(2),
    )
    # SKU 0 takes its receipt; SKU 1 has none and gets an order.
    assert pegs(res) == [(0, 0, 4.0), (1, -1, 6.0)]
    assert res.po_sku.tolist() == [1]


# -- the driver -----------------------------------------------------------------------
ITEMS: Input = {"items": [{"item_id": "A"}], "coverage_groups": [{"group_id": "G"}]}


def _net(inp: Input) -> tuple[Run, Netting, list[str]]:
    """Run the phases, net, and spell the walked requirements' refs."""
    r = run({**ITEMS, **inp})
    net = net_levels(r.given, r.masters, r.settings, r.levels, r.refs, T0)
    log = OrderLog()
    log.add(net.orders.sidx, net.orders.num)
    refs = r.refs.text(net.book, log, net.requirements.ref).tolist()
    return r, net, refs


def test_walk_order_date_then_kind_then_priority_then_ref() -> None:
    _, net, refs = _net(
        {
            "on_hand": [{"item_id": "A", "warehouse_id": "W1", "qty": 5}],
            "sales_lines": [
                sales("A", 5, 2, line=1, priority=2),
                sales("A", 5, 2, line=2, priority=1),
                sales("A", 5, 1, line=3, priority=9),
            ],
        }
    )
    assert refs == ["SO:S-A-3/3", "SO:S-A-2/2", "SO:S-A-1/1"]
    # The earliest requirement takes the on-hand; the others get orders.
    assert net.pegging.src.tolist() == [0, -1, -2]
    assert net.orders.netting.tolist() == [day(2), day(2)]


def test_requirements_beyond_the_coverage_fence_are_not_walked() -> None:
    _, net, refs = _net(
        {
            "coverage_groups": [{"group_id": "G", "coverage_time_fence_days": 10}],
            "items": [{"item_id": "A", "coverage_group_id": "G"}],
            "sales_lines": [sales("A", 1, 10, line=1), sales("A", 1, 11, line=2)],
        }
    )
    assert refs == ["SO:S-A-1/1"]
    assert len(net.orders) == 1


def test_levels_are_netted_top_down_with_dependent_demand() -> None:
    r, net, refs = _net(
        {
            "items": [{"item_id": "A", "default_order_type": "production"}, {"item_id": "B"}],
            "boms": [{"bom_id": "BA", "item_id": "A", "batch_qty": 1}],
            "bom_lines": [{"bom_id": "BA", "line_no": 10, "component_item_id": "B", "qty_per": 2}],
            "sales_lines": [sales("A", 3, 5)],
        }
    )
    assert refs == ["SO:S-A-1/1", "PL:A/W1/1/10"]
    assert net.orders.sidx.tolist() == [r.sidx("A"), r.sidx("B")]
    assert net.orders.qty.tolist() == [3.0, 6.0]
    # The component's requirement names the order that caused it (k = 0).
    assert net.requirements.cause.tolist() == [-1, -2]
