"""§5.2 SKUs and settings (server/engine/skus.py): which SKUs exist, and where
each setting comes from."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from masterplan.server.engine.kernels import (
    CODE_MIN_MAX,
    CODE_PERIOD,
    CODE_REQUIREMENT,
    NO_POSITIVE_DAYS,
)
from masterplan.server.engine.kinds import ORDER_PRODUCTION, ORDER_PURCHASE, ORDER_TRANSFER
from masterplan.server.engine.skus import (
    check_default_group,
    index_skus,
    no_refill_messages,
    order_type_codes,
    resolve_settings,
)
from masterplan.server.engine.types import InvalidPlanInput
from masterplan.server.engine.validate import validate
from tests.engine.phases import WAREHOUSE, Input, iso, run, sales, tables

GROUPS = [
    {
        "group_id": "PER",
        "coverage_code": "period",
        "coverage_period_days": 7,
        "coverage_time_fence_days": 50,
        "negative_days": 2,
        "positive_days": 5,
        "use_working_days": 1,
        "safety_stock_fulfillment": "today",
        "forecast_reduction": "transactions_period",
    },
    {"group_id": "MM", "coverage_code": "min_max"},
]

MODEL: Input = {
    "coverage_groups": GROUPS,
    "items": [
        {
            "item_id": "A",
            "coverage_group_id": "PER",
            "lead_time_days": 4,
            "min_order_qty": 10,
            "default_vendor_id": "V1",
            "default_order_type": "production",
        },
        {"item_id": "B"},
        {"item_id": "C", "coverage_group_id": "PER"},
    ],
    "item_coverage": [
        {
            "item_id": "A",
            "warehouse_id": "W1",
            "lead_time_days": 2,
            "vendor_id": "V2",
            "min_qty": 5,
            "max_qty": 20,
        },
        {"item_id": "C", "warehouse_id": "W1", "coverage_group_id": "MM"},
    ],
    "sales_lines": [sales("B", 1, 0)],
}


@pytest.mark.parametrize(
    ("item", "field", "expected"),
    [
        # item_coverage first, then the item, then the group, then the default.
        ("A", "lead", 2),
        ("A", "vendor", "V2"),
        ("A", "min_oq", 10.0),
        ("A", "order_type", ORDER_PRODUCTION),
        ("A", "min_qty", 5.0),
        ("A", "max_qty", 20.0),
        ("A", "code", CODE_PERIOD),
        ("A", "period", 7),
        ("A", "fence", 50),
        ("A", "neg", 2),
        ("A", "pos", 5),
        ("A", "ss_today", True),
        ("A", "reduce_fc", True),
        ("A", "working_days", True),
        ("A", "calendar", 0),
        # The coverage row's group wins over the item's.
        ("C", "code", CODE_MIN_MAX),
        ("C", "period", 1),
        # No group anywhere: §5.2's defaults.
        ("B", "code", CODE_REQUIREMENT),
        ("B", "period", 1),
        ("B", "fence", 100),
        ("B", "freeze", 0),
        ("B", "firming", 0),
        ("B", "neg", 0),
        ("B", "pos", NO_POSITIVE_DAYS),
        ("B", "tolerance", 0),
        ("B", "ss_today", False),
        ("B", "include_fc", True),
        ("B", "reduce_fc", False),
        ("B", "working_days", False),
        ("B", "calendar", -1),
        ("B", "order_type", ORDER_PURCHASE),
        ("B", "max_oq", 0.0),
        ("B", "mult", 0.0),
        ("B", "vendor", None),
    ],
)
def test_setting_comes_from_coverage_item_group_or_default(
    item: str, field: str, expected: Any
) -> None:
    r = run(MODEL)
    assert getattr(r.settings, field)[r.sidx(item)] == expected


def test_default_group_serves_skus_that_name_none() -> None:
    r = run(MODEL, default_group="MM")
    assert r.settings.code[r.sidx("B")] == CODE_MIN_MAX
    assert r.settings.code[r.sidx("A")] == CODE_PERIOD  # a named group stays


def test_unknown_default_group_fails_the_run() -> None:
    validated = validate(tables({**WAREHOUSE, **MODEL}))
    check_default_group(validated.tables, "PER")
    with pytest.raises(InvalidPlanInput, match="NOPE"):
        check_default_group(validated.tables, "NOPE")


def test_settings_of_any_sku_set() -> None:
    r = run(MODEL)
    m = r.masters
    sku = np.array([m.item_pos["A"] * m.n_wh, m.item_pos["C"] * m.n_wh])
    s = resolve_settings(m, sku, None)
    assert s.lead.tolist() == [2, 0]
    assert s.index(sku[::-1]).tolist() == [1, 0]


def test_skus_named_by_rows() -> None:
    inp: Input = {
        "warehouses": [{"warehouse_id": w, "site_id": "S"} for w in ("W1", "W2", "W3", "W4", "W5")],
        "items": [{"item_id": i} for i in ("A", "B", "C", "D", "E")],
        "transfer_lines": [
            {
                "order_id": "T",
                "line_no": 1,
                "item_id": "A",
                "from_warehouse_id": "W1",
                "to_warehouse_id": "W2",
                "qty": 0,
                "ship_date": iso(1),
                "receive_date": iso(2),
            }
        ],
        "forecasts": [
            {"item_id": "B", "warehouse_id": "W1", "forecast_date": iso(0), "qty": 0},
            {"item_id": "C", "warehouse_id": "W1", "forecast_date": iso(0), "qty": 3},
        ],
        "firmed_planned_orders": [
            {
                "planned_order_id": "F",
                "item_id": "D",
                "warehouse_id": "W3",
                "order_type": "transfer",
                "from_warehouse_id": "W4",
                "qty": 1,
                "order_date": iso(0),
                "due_date": iso(1),
            }
        ],
        "production_lines": [
            {
                "order_id": "P",
                "line_no": 1,
                "component_item_id": "E",
                "warehouse_id": "W5",
                "qty": 2,
                "required_date": iso(0),
            }
        ],
    }
    index = index_skus(validate(tables(inp)))
    m = index.masters
    named = {
        f"{m.item_ids[k // m.n_wh]}@{m.warehouse_ids[k % m.n_wh]}" for k in index.named.tolist()
    }
    # Both ends of a transfer, whatever its quantity; a zero forecast names nothing.
    assert named == {"A@W1", "A@W2", "C@W1", "D@W3", "D@W4", "E@W5"}


@pytest.mark.parametrize(
    ("refill", "order_type", "messages"),
    [("W2", ORDER_TRANSFER, 0), (None, ORDER_PURCHASE, 1), ("W1", ORDER_TRANSFER, 0)],
)
def test_transfer_sku_without_refill_warehouse_plans_purchase(
    refill: str | None, order_type: int, messages: int
) -> None:
    inp: Input = {
        "warehouses": [{"warehouse_id": w, "site_id": "S"} for w in ("W1", "W2")],
        "items": [{"item_id": "A"}],
        "item_coverage": [
            {
                "item_id": "A",
                "warehouse_id": "W1",
                "order_type": "transfer",
                "refill_warehouse_id": refill,
            }
        ],
    }
    r = run(inp)
    a = r.sidx("A")
    assert r.settings.order_type[a] == order_type
    assert bool(r.settings.no_refill[a]) == (messages == 1)
    msgs = no_refill_messages(r.masters, r.settings)
    assert msgs.code.tolist() == ["NO_REFILL_WAREHOUSE"] * messages
    assert msgs.item_id.tolist() == ["A"] * messages


def test_order_type_codes_unknown_and_null_are_purchase() -> None:
    values = np.array(["production", None, "bogus", "transfer", "purchase"], dtype=object)
    assert order_type_codes(values).tolist() == [
        ORDER_PRODUCTION,
        ORDER_PURCHASE,
        ORDER_PURCHASE,
        ORDER_TRANSFER,
        ORDER_PURCHASE,
    ]
