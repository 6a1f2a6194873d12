"""§5.4 Requirements and receipts (server/engine/requirements.py)."""

from __future__ import annotations

import numpy as np
import pytest

from masterplan.server.engine.kinds import REC_KIND_NAMES, REQ_KIND_NAMES
from masterplan.server.engine.orderrefs import OrderLog
from masterplan.server.engine.requirements import (
    RequirementsAndReceipts,
    forecast_requirements,
    requirements_and_receipts,
)
from tests.engine.phases import T0, Input, Run, day, iso, run, sales

MODEL: Input = {
    "warehouses": [
        {"warehouse_id": "W1", "site_id": "S", "calendar_id": "MF"},
        {"warehouse_id": "W2", "site_id": "S"},
    ],
    "coverage_groups": [
        {"group_id": "NOW", "safety_stock_fulfillment": "today"},
        {"group_id": "LT", "use_working_days": 1},
        {
            "group_id": "RED",
            "forecast_reduction": "transactions_period",
            "coverage_time_fence_days": 1000,
        },
    ],
    "items": [
        {"item_id": "A"},
        {"item_id": "B"},
        {"item_id": "C", "default_order_type": "production"},
        {"item_id": "F", "coverage_group_id": "RED"},
        {"item_id": "S1", "coverage_group_id": "NOW"},
        {"item_id": "S2", "coverage_group_id": "LT", "lead_time_days": 3},
    ],
    "item_coverage": [
        {"item_id": "S1", "warehouse_id": "W1", "safety_stock_qty": 7},
        {"item_id": "S2", "warehouse_id": "W1", "safety_stock_qty": 9},
    ],
    "on_hand": [
        {"item_id": "A", "warehouse_id": "W1", "qty": 5},
        {"item_id": "A", "warehouse_id": "W1", "qty": 3},
        {"item_id": "B", "warehouse_id": "W1", "qty": 2},
        {"item_id": "B", "warehouse_id": "W1", "qty": -5},
    ],
    "sales_lines": [
        sales("A", 4, -10, line=1, priority=2),
        sales("A", 0, 2, line=2),
        sales("F", 4, 2, line=3),
        sales("F", 20, 8, line=4),
    ],
    "purchase_lines": [
        {
            "order_id": "P1",
            "line_no": 1,
            "item_id": "A",
            "warehouse_id": "W1",
            "qty": 6,
            "delivery_date": iso(-3),
        }
    ],
    "transfer_lines": [
        {
            "order_id": "T1",
            "line_no": 2,
            "item_id": "A",
            "from_warehouse_id": "W1",
            "to_warehouse_id": "W2",
            "qty": 3,
            "ship_date": iso(1),
            "receive_date": iso(2),
        }
    ],
    "forecasts": [
        {"item_id": "F", "warehouse_id": "W1", "forecast_date": iso(-7), "qty": 50},
        {"item_id": "F", "warehouse_id": "W1", "forecast_date": iso(0), "qty": 10},
        {"item_id": "F", "warehouse_id": "W1", "forecast_date": iso(3), "qty": 0},
        {"item_id": "F", "warehouse_id": "W1", "forecast_date": iso(7), "qty": 10},
        {"item_id": "F", "warehouse_id": "W1", "forecast_date": iso(7), "qty": 5},
    ],
    "boms": [{"bom_id": "BC", "item_id": "C", "batch_qty": 2}],
    "bom_lines": [{"bom_id": "BC", "line_no": 1, "component_item_id": "B", "qty_per": 3}],
    "firmed_planned_orders": [
        {
            "planned_order_id": "F1",
            "item_id": "C",
            "warehouse_id": "W1",
            "order_type": "production",
            "qty": 4,
            "order_date": iso(1),
            "due_date": iso(4),
        }
    ],
}


def _phase(r: Run) -> RequirementsAndReceipts:
    return requirements_and_receipts(
        r.validated.tables,
        r.index.rows,
        r.masters,
        r.settings,
        r.levels,
        r.firmed,
        r.refs,
        T0,
    )


def _requirements(r: Run) -> dict[str, tuple[str, str, int, float]]:
    """ref -> (kind, SKU, date, qty) of every requirement of the phase."""
    given = _phase(r)
    q = given.requirements
    refs = r.refs.text(given.book, OrderLog(), q.ref).tolist()
    m = r.masters
    sku = [f"{m.item_ids[k // m.n_wh]}@{m.warehouse_ids[k % m.n_wh]}" for k in q.sku.tolist()]
    return {
        ref: (REQ_KIND_NAMES[k], s, d, x)
        for ref, k, s, d, x in zip(
            refs, q.kind.tolist(), sku, q.date.tolist(), q.qty.tolist(), strict=True
        )
    }


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        # A negative on-hand total is a requirement at T0 for its absolute value.
        ("OH:B/W1", ("oh", "B@W1", T0, 3.0)),
        # Dates before T0 count as T0.
        ("SO:S-A-1/1", ("so", "A@W1", T0, 4.0)),
        ("TRI:T1/2", ("tri", "A@W1", day(1), 3.0)),
        # Safety stock at T0, or at T0 plus the lead time (3 working days: Thursday).
        ("SS:S1/W1", ("ss", "S1@W1", T0, 7.0)),
        ("SS:S2/W1", ("ss", "S2@W1", day(3), 9.0)),
        # Forecasts: two lines of one date add up; each is reduced by the sales
        # of its period (to the next line; 30 days for the last), not below 0;
        # a zero line is no period bound.
        ("FC:F/W1/2024-03-04", ("fc", "F@W1", T0, 6.0)),
        # A firmed production order of 4 with a BOM of batch 2 needing 3 each.
        ("PL:F1/1", ("pl", "B@W1", day(1), 6.0)),
    ],
)
def test_requirements(ref: str, expected: tuple[str, str, int, float]) -> None:
    assert _requirements(run(MODEL))[ref] == expected


def test_what_makes_no_requirement() -> None:
    got = _requirements(run(MODEL))
    assert "SO:S-A-2/1" not in got  # zero quantity
    assert "OH:A/W1" not in got  # positive on-hand is a receipt
    assert "FC:F/W1/2024-03-11" not in got  # fully consumed by sales
    assert not any(ref.startswith("FC:F/W1/2024-02") for ref in got)  # before T0: dropped


def test_receipts() -> None:
    r = run(MODEL)
    rec = _phase(r).receipts
    m = r.masters
    rows = {
        str(ref): (
            REC_KIND_NAMES[k],
            f"{m.item_ids[s // m.n_wh]}@{m.warehouse_ids[s % m.n_wh]}",
            d,
            q,
        )
        for ref, k, s, d, q in zip(
            rec.ref,
            rec.kind.tolist(),
            rec.sku.tolist(),
            rec.date.tolist(),
            rec.qty.tolist(),
            strict=True,
        )
    }
    assert rows == {
        "OH:A/W1": ("oh", "A@W1", T0, 8.0),  # several rows of one SKU add up
        "PO:P1/1": ("po", "A@W1", T0, 6.0),  # delivery before T0
        "TRR:T1/2": ("trr", "A@W2", day(2), 3.0),
        "PL:F1": ("pl", "C@W1", day(4), 4.0),
    }
    assert (r.settings.sku[rec.sidx] == rec.sku).all()


def test_firmed_requirements_name_their_receipt_as_cause() -> None:
    r = run(MODEL)
    given = _phase(r)
    q = given.requirements
    firmed = np.flatnonzero(q.cause >= 0)
    assert len(firmed) == 1
    assert str(given.receipts.ref[q.cause[firmed[0]]]) == "PL:F1"
    assert (q.cause[q.kind != q.kind[firmed[0]]] == -1).all()


def test_forecast_reduction() -> None:
    r = run(MODEL)
    sku, date, qty, ref = forecast_requirements(
        r.validated.tables, r.index.rows, r.masters, r.settings, T0
    )
    assert (sku == r.settings.sku[r.sidx("F")]).all()
    assert date.tolist() == [T0, day(7)]
    assert qty.tolist() == [6.0, 0.0]  # 10 - 4; 15 - 20 is not below zero
    assert ref.tolist() == ["FC:F/W1/2024-03-04", "FC:F/W1/2024-03-11"]
