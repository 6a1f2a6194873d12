"""§5.7 Delays (server/engine/delays.py): futures dates, bottom-up."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from masterplan.server.engine.arrays import NO_DATE
from masterplan.server.engine.delays import Delays, compute_delays
from masterplan.server.engine.orderrefs import OrderLog
from tests.engine.phases import Input, Run, day, iso, run, sales

# A is made from one B; B is bought with a lead time of 10 days.
BOM: Input = {
    "coverage_groups": [{"group_id": "MAN", "coverage_code": "manual"}],
    "items": [
        {"item_id": "A", "default_order_type": "production", "lead_time_days": 2},
        {"item_id": "B", "lead_time_days": 10},
        {"item_id": "M", "coverage_group_id": "MAN"},
    ],
    "boms": [{"bom_id": "BA", "item_id": "A", "batch_qty": 1}],
    "bom_lines": [{"bom_id": "BA", "line_no": 1, "component_item_id": "B", "qty_per": 1}],
}


def _delays(inp: Input) -> tuple[Run, Delays, dict[str, tuple[int, bool]]]:
    """The phase on ``inp``, and ref -> (futures, delayed) of each requirement."""
    r = run({**BOM, **inp})
    late = compute_delays(r.net, r.settings, r.levels)
    log = OrderLog()
    log.add(r.net.orders.sidx, r.net.orders.num)
    refs = r.refs.text(r.net.book, log, r.net.requirements.ref).tolist()
    return (
        r,
        late,
        {
            ref: (f, d)
            for ref, f, d in zip(refs, late.futures.tolist(), late.delayed.tolist(), strict=True)
        },
    )


def test_a_delayed_component_pushes_its_parent_order() -> None:
    # A's order for T0 + 5 is placed T0 + 3; B's order for that date cannot
    # come before T0 + 10 (ordered at T0, frozen), so A can be ready at
    # T0 + 10 + 2 at the earliest, and the sale is 7 days late.
    r, late, got = _delays({"sales_lines": [sales("A", 5, 5)]})
    assert got == {"SO:S-A-1/1": (day(12), True), "PL:A/W1/1/1": (day(10), True)}
    po = r.net.orders
    assert po.due.tolist() == [day(5), day(10)]
    assert late.order_available.tolist() == [day(12), day(10)]


def test_a_component_on_time_delays_nothing() -> None:
    _, late, got = _delays(
        {
            "sales_lines": [sales("A", 5, 5)],
            "on_hand": [{"item_id": "B", "warehouse_id": "W1", "qty": 5}],
        }
    )
    assert got == {"SO:S-A-1/1": (day(5), False), "PL:A/W1/1/1": (day(0), False)}
    assert late.order_available.tolist() == [day(5)]


def test_a_shortfall_is_never_covered() -> None:
    _, _, got = _delays({"sales_lines": [sales("M", 5, 5)]})
    assert got == {"SO:S-M-1/1": (NO_DATE, True)}


def test_a_delayed_firmed_order_pushes_its_receipt() -> None:
    firmed: dict[str, Any] = {
        "planned_order_id": "F",
        "item_id": "A",
        "warehouse_id": "W1",
        "order_type": "production",
        "qty": 5,
        "order_date": iso(3),
        "due_date": iso(5),
    }
    r, late, got = _delays({"sales_lines": [sales("A", 5, 5)], "firmed_planned_orders": [firmed]})
    assert got == {"SO:S-A-1/1": (day(12), True), "PL:F/1": (day(10), True)}
    assert [str(x) for x in r.net.receipts.ref] == ["PL:F"]
    assert late.receipt_available.tolist() == [day(12)]


@pytest.mark.parametrize(("offset", "delayed"), [(10, False), (9, True)])
def test_delayed_only_when_futures_after_the_date(offset: int, delayed: bool) -> None:
    _, _, got = _delays(
        {
            "sales_lines": [sales("B", 5, offset)],
            "purchase_lines": [
                {
                    "order_id": "P",
                    "line_no": 1,
                    "item_id": "B",
                    "warehouse_id": "W1",
                    "qty": 5,
                    "delivery_date": iso(10),
                }
            ],
        }
    )
    assert got["SO:S-B-1/1"] == (day(10), delayed)


def test_a_component_never_covered_leaves_its_parent_order_never_available() -> None:
    # A is made from M, which nothing supplies: A's order waits for ever.
    # The netting holds the orders' due dates in int32; the date pushed to
    # never (NO_DATE, beyond int32) must not wrap into a real day.
    never_m: Input = {
        **BOM,
        "bom_lines": [{"bom_id": "BA", "line_no": 1, "component_item_id": "M", "qty_per": 1}],
        "sales_lines": [sales("A", 5, 5)],
    }
    r = run(never_m)
    late = compute_delays(r.net, r.settings, r.levels)
    assert r.net.orders.due.dtype == np.int32
    assert late.order_available.tolist() == [NO_DATE]
    assert late.futures.tolist() == [NO_DATE, NO_DATE]
    assert late.delayed.tolist() == [True, True]
