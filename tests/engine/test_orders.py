"""§5.6 Planned orders (server/engine/orders.py): quantities, numbers, dates
and fences, BOM choice, explosion, firmed planned orders."""

from __future__ import annotations

import numpy as np
import pytest

from masterplan.server.engine.kinds import ORDER_PRODUCTION, ORDER_PURCHASE, ORDER_TRANSFER
from masterplan.server.engine.orders import (
    choose_bom,
    explode,
    explode_firmed,
    make_orders,
    split_quantity,
)
from masterplan.server.engine.refs import RefBook
from tests.engine.phases import T0, Input, Run, day, iso, run


@pytest.mark.parametrize(
    ("q", "min_oq", "max_oq", "mult", "expected"),
    [
        (12.0, 0.0, 5.0, 0.0, [5.0, 5.0, 2.0]),  # split by max_order_qty
        (10.0, 0.0, 5.0, 0.0, [5.0, 5.0]),  # nothing left: no last order
        (1100.0, 0.0, 500.0, 12.0, [500.0, 500.0, 108.0]),  # split, the rest to a multiple
        (7.0, 0.0, 5.0, 4.0, [5.0, 4.0]),
        (4.5, 0.0, 5.0, 4.0, [8.0]),  # rounding may go above max_order_qty
        (7.0, 10.0, 0.0, 0.0, [10.0]),  # raised to min_order_qty
        (3.0, 10.0, 0.0, 4.0, [12.0]),  # raised, then rounded up
        (23.0, 0.0, 0.0, 5.0, [25.0]),
        (20.0 + 1e-10, 0.0, 0.0, 5.0, [20.0]),  # within tolerance of a multiple
        (0.0, 10.0, 0.0, 0.0, []),  # no need, no order
    ],
)
def test_order_quantities(
    q: float, min_oq: float, max_oq: float, mult: float, expected: list[float]
) -> None:
    assert split_quantity(q, min_oq, max_oq, mult).tolist() == expected


MODEL: Input = {
    "warehouses": [
        {"warehouse_id": "W1", "site_id": "S", "calendar_id": "MF"},
        {"warehouse_id": "W2", "site_id": "S"},
    ],
    "coverage_groups": [
        {"group_id": "FZ", "freeze_time_fence_days": 2, "firming_time_fence_days": 5},
        {"group_id": "WD", "use_working_days": 1},
    ],
    "items": [
        {"item_id": "A", "coverage_group_id": "FZ", "lead_time_days": 3},
        {"item_id": "B", "coverage_group_id": "WD", "lead_time_days": 1},
        {"item_id": "M", "default_order_type": "production"},
        {"item_id": "C"},
        {"item_id": "D"},
        {"item_id": "X", "default_order_type": "production"},
    ],
    "item_coverage": [
        {"item_id": "B", "warehouse_id": "W2"},
        {
            "item_id": "B",
            "warehouse_id": "W1",
            "order_type": "transfer",
            "refill_warehouse_id": "W2",
        },
        {"item_id": "A", "warehouse_id": "W1"},
        {"item_id": "X", "warehouse_id": "W1"},
    ],
    "boms": [
        {"bom_id": "B3", "item_id": "M", "batch_qty": 2},
        {"bom_id": "B2", "item_id": "M", "warehouse_id": "W1", "valid_from": iso(10)},
        {"bom_id": "B1", "item_id": "M", "valid_to": iso(5)},
    ],
    "bom_lines": [
        {
            "bom_id": "B3",
            "line_no": 1,
            "component_item_id": "C",
            "warehouse_id": "W2",
            "qty_per": 3,
            "scrap_pct": 10,
            "scrap_const": 1,
        },
        {"bom_id": "B3", "line_no": 2, "component_item_id": "D", "qty_per": 1},
    ],
    "sales_lines": [
        {
            "order_id": "S",
            "line_no": 1,
            "item_id": "M",
            "warehouse_id": "W1",
            "qty": 1,
            "requested_date": iso(30),
        }
    ],
}


@pytest.fixture(scope="module")
def r() -> Run:
    return run(MODEL)


def test_order_dates_lead_time_and_fences(r: Run) -> None:
    a = r.sidx("A")
    sidx = np.array([a, a, a])
    orders, msgs = make_orders(
        r.masters, r.settings, r.refs, sidx, np.array([day(10), day(4), day(1)]), np.ones(3), T0
    )
    # Order date = due - 3; before the freeze fence (T0 + 2) it moves there and
    # the due date follows; inside the firming fence (T0 + 5) the order is firmed.
    assert orders.order.tolist() == [day(7), day(2), day(2)]
    assert orders.due.tolist() == [day(10), day(5), day(5)]
    assert orders.netting.tolist() == [day(10), day(4), day(1)]
    assert orders.firmed.tolist() == [False, True, True]
    assert orders.num.tolist() == [1, 2, 3]
    assert len(msgs) == 0


def test_numbers_count_per_sku_and_lead_time_in_working_days(r: Run) -> None:
    a, b = r.sidx("A"), r.sidx("B")
    # B's lead time of 1 working day on a Monday-to-Friday calendar: the order
    # for Monday T0 + 7 is placed on Friday T0 + 4.
    orders, _ = make_orders(
        r.masters,
        r.settings,
        r.refs,
        np.array([a, a, b]),
        np.array([day(20), day(21), day(7)]),
        np.array([1.0, 2.0, 3.0]),
        T0,
    )
    assert orders.num.tolist() == [1, 2, 1]
    assert orders.order.tolist()[2] == day(4)
    assert orders.otype.tolist() == [ORDER_PURCHASE, ORDER_PURCHASE, ORDER_TRANSFER]
    b2 = r.settings.sku[r.sidx("B", "W2")]
    assert orders.source.tolist() == [-1, -1, b2]
    assert r.refs.ids(orders.sidx, orders.num).tolist() == ["A/W1/1", "A/W1/2", "B/W1/1"]


def test_production_order_without_a_valid_bom(r: Run) -> None:
    x = r.sidx("X")
    orders, msgs = make_orders(
        r.masters, r.settings, r.refs, np.array([x]), np.array([day(3)]), np.ones(1), T0
    )
    assert orders.otype.tolist() == [ORDER_PRODUCTION]
    assert orders.bom.tolist() == [-1]
    assert msgs.code.tolist() == ["NO_BOM"]
    assert msgs.text.tolist() == ["planned production order PL:X/W1/1 has no valid BOM"]


@pytest.mark.parametrize(
    ("warehouse", "on", "bom"),
    [
        ("W1", 0, "B1"),  # two generic BOMs valid: the lowest id
        ("W1", 7, "B3"),  # B1 expired
        ("W1", 12, "B2"),  # warehouse-specific before generic
        ("W2", 12, "B3"),  # B2 is for W1 only
        ("W1", 5, "B1"),  # valid_to is inclusive
    ],
)
def test_bom_choice(r: Run, warehouse: str, on: int, bom: str) -> None:
    m = r.masters
    row = choose_bom(
        m,
        np.array([m.item_pos["M"]]),
        np.array([m.wh_pos[warehouse]]),
        np.array([day(on)]),
    )
    assert m.boms["bom_id"][row].tolist() == [bom]


def _text_refs(book: RefBook, orders: np.ndarray, lines: np.ndarray) -> tuple[RefBook, np.ndarray]:
    return book.add_text(
        np.array([f"o{o}/l{x}" for o, x in zip(orders, lines, strict=True)], dtype=object)
    )


def test_explosion_of_production_and_transfer_orders(r: Run) -> None:
    m, s = r.masters, r.settings
    b3 = int(np.flatnonzero(m.boms["bom_id"] == "B3")[0])
    sku = s.sku[[r.sidx("M"), r.sidx("B")]]
    demand, book = explode(
        m,
        s,
        np.arange(len(s.sku)),  # no cycles
        T0,
        RefBook(),
        _text_refs,
        sku=sku,
        qty=np.array([4.0, 5.0]),
        order_date=np.array([day(3), day(-2)]),
        bom=np.array([b3, -1]),
        otype=np.array([ORDER_PRODUCTION, ORDER_TRANSFER]),
        source=np.array([-1, s.sku[r.sidx("B", "W2")]]),
        cause=np.array([-2, -3]),
    )
    names = [f"{m.item_ids[k // m.n_wh]}@{m.warehouse_ids[k % m.n_wh]}" for k in demand.sku]
    assert names == ["C@W2", "D@W1", "B@W2"]
    # 4 / batch 2 x 3 x 1.1 + 1; 4 / 2 x 1; the transfer's own quantity.
    assert demand.qty.tolist() == pytest.approx([7.6, 2.0, 5.0])
    assert demand.date.tolist() == [day(3), day(3), T0]  # order dates, effective
    assert demand.cause.tolist() == [-2, -2, -3]
    assert book.size == 3


def test_explosion_skips_cycle_edges_and_fenced_requirements(r: Run) -> None:
    m, s = r.masters, r.settings
    b3 = int(np.flatnonzero(m.boms["bom_id"] == "B3")[0])
    cycle = np.arange(len(s.sku))
    cycle[r.sidx("D")] = cycle[r.sidx("M")]  # M and D in one cycle
    demand, _ = explode(
        m,
        s,
        cycle,
        T0,
        RefBook(),
        _text_refs,
        sku=s.sku[[r.sidx("M"), r.sidx("M")]],
        qty=np.array([2.0, 2.0]),
        order_date=np.array([day(3), day(101)]),  # C's fence is 100 days
        bom=np.array([b3, b3]),
        otype=np.array([ORDER_PRODUCTION, ORDER_PRODUCTION]),
        source=np.array([-1, -1]),
        cause=np.array([-2, -3]),
    )
    assert demand.cause.tolist() == [-2]  # C from the first order only


def test_firmed_orders_explode_by_their_own_order_date() -> None:
    inp: Input = {
        **MODEL,
        "firmed_planned_orders": [
            {
                "planned_order_id": "F1",
                "item_id": "M",
                "warehouse_id": "W1",
                "order_type": "production",
                "qty": 2,
                "order_date": iso(-1),  # B1 and B3 valid then: B1, which has no lines
                "due_date": iso(2),
            },
            {
                "planned_order_id": "F2",
                "item_id": "M",
                "warehouse_id": "W1",
                "order_type": "production",
                "qty": 2,
                "order_date": iso(8),  # B3
                "due_date": iso(9),
            },
            {
                "planned_order_id": "F3",
                "item_id": "X",
                "warehouse_id": "W1",
                "order_type": "production",
                "qty": 1,
                "order_date": iso(8),
                "due_date": iso(9),
            },
        ],
    }
    r = run(inp)
    m = r.masters
    assert m.boms["bom_id"][r.firmed.bom[:2]].tolist() == ["B1", "B3"]
    assert r.firmed.bom[2] == -1
    demand, book, msgs = explode_firmed(
        m,
        r.settings,
        r.levels.component,
        T0,
        RefBook(),
        r.refs,
        r.validated.tables["firmed_planned_orders"],
        r.firmed,
        np.array([10, 11, 12]),
    )
    assert book.text(demand.ref, lambda k: k, r.refs.line_suffix()).tolist() == [
        "PL:F2/1",
        "PL:F2/2",
    ]
    assert demand.cause.tolist() == [11, 11]
    assert msgs.code.tolist() == ["NO_BOM"]
    assert msgs.item_id.tolist() == ["X"]
