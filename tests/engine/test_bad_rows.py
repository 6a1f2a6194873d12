"""Rows that cannot name what they are, NULL quantities, tolerances and
negative lead times (SPEC §5.2, §5.9): each is answered with its message
and the run goes on, where each of them crashed a run or planned silently
before.

Every case plans a one-item model through the engine and asserts the
messages and the rows the plan is made of.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pytest

from masterplan.contract.columns import UNREADABLE_DATE
from masterplan.contract.rows import from_rows
from masterplan.contract.tables import INPUT_TABLES
from masterplan.server.engine import PlanParams, plan

T0 = dt.date(2026, 1, 5)
Rows = dict[str, list[dict[str, Any]]]

BASE: Rows = {
    "warehouses": [{"warehouse_id": "W1", "site_id": "S"}],
    "items": [{"item_id": "A", "default_order_type": "purchase", "lead_time_days": 2}],
}


def _sales(**changes: Any) -> dict[str, Any]:
    line = {
        "order_id": "S1",
        "line_no": 1,
        "item_id": "A",
        "warehouse_id": "W1",
        "qty": 5,
        "requested_date": "2026-01-10",
    }
    return {**line, **changes}


def _plan(rows: Rows) -> dict[str, dict[str, np.ndarray]]:
    data = {**BASE, **rows}
    tables = {n: from_rows(INPUT_TABLES[n], data.get(n, [])) for n in INPUT_TABLES}
    return plan(tables, PlanParams(T0)).arrays()


def _messages(result: dict[str, dict[str, np.ndarray]]) -> list[tuple[str, Any, Any]]:
    pm = result["plan_messages"]
    return list(
        zip(pm["code"].tolist(), pm["item_id"].tolist(), pm["warehouse_id"].tolist(), strict=True)
    )


@pytest.mark.parametrize(
    ("rows", "messages"),
    [
        # A NULL line_no on a row that also names an unknown warehouse
        # crashed the run converting NaN to an integer for the message.
        ({"sales_lines": [_sales(line_no=None, warehouse_id="WX")]}, [("INVALID_ROW", "A", "WX")]),
        ({"sales_lines": [_sales(line_no=None)]}, [("INVALID_ROW", "A", "W1")]),
        # A NULL order id became the ref SO:None/2.
        ({"sales_lines": [_sales(order_id=None, line_no=2)]}, [("INVALID_ROW", "A", "W1")]),
        ({"sales_lines": [_sales(order_id="")]}, [("INVALID_ROW", "A", "W1")]),
        # Line numbers beyond 2**53 collapsed into one ref.
        (
            {"sales_lines": [_sales(line_no=1e19), _sales(line_no=2e19)]},
            [("INVALID_ROW", "A", "W1"), ("INVALID_ROW", "A", "W1")],
        ),
        ({"sales_lines": [_sales(line_no=1.5)]}, [("INVALID_ROW", "A", "W1")]),
        ({"sales_lines": [_sales(line_no=-1)]}, [("INVALID_ROW", "A", "W1")]),
        # A NULL date the plan reads: the forecast's crashed the run.
        (
            {"forecasts": [{"item_id": "A", "warehouse_id": "W1", "qty": 3}]},
            [("INVALID_ROW", "A", "W1")],
        ),
        ({"sales_lines": [_sales(requested_date=None)]}, [("INVALID_ROW", "A", "W1")]),
        # A NULL item where one must be named.
        ({"sales_lines": [_sales(item_id=None)]}, [("INVALID_ROW", None, "W1")]),
        # A NULL quantity planned as nothing, silently.
        ({"sales_lines": [_sales(qty=None)]}, [("INVALID_QTY", "A", "W1")]),
        # Within 1e-9 of zero is zero: not a negative quantity.
        ({"sales_lines": [_sales(qty=-1e-13)]}, []),
    ],
)
def test_a_bad_row_is_left_out_with_its_message(rows: Rows, messages: list[Any]) -> None:
    result = _plan(rows)
    assert _messages(result) == messages
    assert len(result["planned_orders"]["qty"]) == 0
    assert len(result["pegging"]["qty"]) == 0


def test_a_code_outside_its_list_leaves_the_row_out() -> None:
    """An unknown order type planned as a purchase before; now the item is
    left out and the sales line naming it is an unknown item."""
    items = [{"item_id": "A", "default_order_type": "bogus", "lead_time_days": 2}]
    result = _plan({"items": items, "sales_lines": [_sales()]})
    assert _messages(result) == [("INVALID_ROW", "A", None), ("UNKNOWN_ITEM", "A", "W1")]
    assert len(result["planned_orders"]["qty"]) == 0


def test_a_firmed_order_needs_its_order_type() -> None:
    firmed = {
        "planned_order_id": "F1",
        "item_id": "A",
        "warehouse_id": "W1",
        "qty": 4,
        "order_date": "2026-01-06",
        "due_date": "2026-01-08",
    }
    result = _plan({"firmed_planned_orders": [firmed]})
    assert _messages(result) == [("INVALID_ROW", "A", "W1")]
    assert len(result["pegging"]["qty"]) == 0


@pytest.mark.parametrize("weekdays", [None, "11", "1111100x", "0000000", "abcdefg"])
def test_a_calendar_without_seven_working_day_flags_is_left_out(weekdays: str | None) -> None:
    """Left out, the calendar is unknown: lead times count calendar days."""
    rows: Rows = {
        "warehouses": [{"warehouse_id": "W1", "site_id": "S", "calendar_id": "C"}],
        "calendars": [{"calendar_id": "C", "working_weekdays": weekdays}],
        "sales_lines": [_sales(requested_date="2026-01-12")],  # a Monday
    }
    result = _plan(rows)
    assert _messages(result) == [("INVALID_ROW", None, None)]
    # two calendar days before the Monday: the Saturday
    assert result["planned_orders"]["order_date"].tolist() == [dt.date(2026, 1, 10)]


def test_master_rows_with_a_null_id_match_no_null_reference() -> None:
    """A coverage group with a NULL id used to lend its ``manual`` code to
    every item without a group; a warehouse with a NULL id was found as the
    NULL refill warehouse of a transfer SKU."""
    rows: Rows = {
        "warehouses": [
            {"warehouse_id": "W1", "site_id": "S"},
            {"warehouse_id": None, "site_id": "S"},
        ],
        "coverage_groups": [{"group_id": None, "coverage_code": "manual"}],
        "item_coverage": [{"item_id": "A", "warehouse_id": "W1", "order_type": "transfer"}],
        "sales_lines": [_sales()],
    }
    result = _plan(rows)
    assert sorted(_messages(result), key=repr) == sorted(
        [
            ("INVALID_ROW", None, None),  # the warehouse
            ("INVALID_ROW", None, None),  # the coverage group
            ("NO_REFILL_WAREHOUSE", "A", "W1"),
        ],
        key=repr,
    )
    # planned by the requirement rule as a purchase (no refill warehouse)
    po = result["planned_orders"]
    assert (po["order_type"].tolist(), po["qty"].tolist()) == (["purchase"], [5.0])


def test_a_negative_lead_time_counts_as_zero() -> None:
    """The order date landed after the due date before."""
    items = [{"item_id": "A", "default_order_type": "purchase", "lead_time_days": -3}]
    result = _plan({"items": items, "sales_lines": [_sales()]})
    po = result["planned_orders"]
    assert po["order_date"].tolist() == po["due_date"].tolist() == [dt.date(2026, 1, 10)]


def test_an_open_quantity_within_the_tolerance_of_zero_is_no_receipt() -> None:
    """5.55e-17 is what ordered minus received gives in floating point: it
    is no open purchase line, so it gets no cancel message."""
    line = {
        "order_id": "P1",
        "line_no": 1,
        "item_id": "A",
        "warehouse_id": "W1",
        "qty": 5.55e-17,
        "delivery_date": "2026-01-08",
    }
    result = _plan({"purchase_lines": [line]})
    assert len(result["action_messages"]["action"]) == 0
    assert _messages(result) == []


def test_an_unreadable_date_leaves_its_row_out_once_nullable_or_not() -> None:
    """A date cell the connector could not read (``UNREADABLE_DATE``) is an
    ``INVALID_ROW``, one message per row, and its row still shares its key."""
    bad = UNREADABLE_DATE
    rows: Rows = {
        "sales_lines": [
            _sales(requested_date=bad),
            _sales(order_id=None, requested_date=bad),  # one message, the first that applies
            _sales(order_id="S3", requested_date=bad),
            _sales(order_id="S3"),  # shares its key with the row left out
        ],
        "boms": [{"bom_id": "B", "item_id": "A", "valid_to": bad, "batch_qty": 1}],
        "calendars": [{"calendar_id": "C", "working_weekdays": "1111100"}],
        "calendar_exceptions": [{"calendar_id": "C", "day": bad, "is_working": 0}],
    }
    texts = _plan(rows)["plan_messages"]["text"].tolist()
    assert texts == [
        "calendar exception (calendar_exceptions: calendar_id='C', day=(unreadable)): "
        "day is not a readable date",
        "BOM (boms: bom_id='B'): valid_to is not a readable date",
        "sales line (sales_lines: order_id=NULL, line_no=1): order_id is NULL or empty",
        "sales line (sales_lines: order_id='S1', line_no=1): requested_date is not a readable date",
        "sales line (sales_lines: order_id='S3', line_no=1): requested_date is not a readable date",
        "sales line (sales_lines: order_id='S3', line_no=1): shares its key (order_id, line_no) "
        "with another row",
    ]
