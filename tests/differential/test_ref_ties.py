"""Ties in the walk order broken by refs of planned orders (SPEC §5.5).

Dependent requirements of one component on one date tie on every key but
their refs, ``PL:{item}/{warehouse}/{n}/{line_no}``. The engine ranks those
refs by integers where it can prove the order equals the refs' code-point
order, and spells them out otherwise; each case here is checked against the
reference planner (which sorts the strings) and also shows which requirement
got the component's only on-hand, so that the tie really decides something.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.differential.engine_adapter import engine_plan
from tests.reference import reference_plan
from tests.reference.compare import diff_results

Row = dict[str, Any]
T0 = "2024-01-01"


def _model(parents: list[str], orders_per_parent: int = 1) -> dict[str, list[Row]]:
    """Parents made from component C on one date; C has on-hand for one of them."""
    return {
        "warehouses": [{"warehouse_id": "W1", "site_id": "S"}],
        "coverage_groups": [
            {"group_id": "G", "coverage_code": "requirement", "coverage_time_fence_days": 100}
        ],
        "items": [
            {"item_id": "C", "default_order_type": "purchase", "coverage_group_id": "G"},
            *(
                {
                    "item_id": p,
                    "default_order_type": "production",
                    "coverage_group_id": "G",
                    "lead_time_days": 1,
                }
                for p in parents
            ),
        ],
        "boms": [{"bom_id": f"B-{p}", "item_id": p} for p in parents],
        "bom_lines": [
            {"bom_id": f"B-{p}", "line_no": 10, "component_item_id": "C", "qty_per": 1}
            for p in parents
        ],
        "on_hand": [{"item_id": "C", "warehouse_id": "W1", "qty": 1}],
        "sales_lines": [
            {
                "order_id": f"S-{p}-{k}",
                "line_no": 1,
                "item_id": p,
                "warehouse_id": "W1",
                "qty": 1,
                "requested_date": "2024-01-10",
            }
            for p in parents
            for k in range(orders_per_parent)
        ],
    }


def _on_hand_goes_to(inp: dict[str, list[Row]]) -> str:
    engine = engine_plan(inp, T0, None)
    problems = diff_results(engine, reference_plan(inp, T0, None))
    assert not problems, "\n".join(problems)
    (row,) = [r for r in engine["pegging"] if r["item_id"] == "C" and r["supply_kind"] == "oh"]
    return row["demand_ref"]


@pytest.mark.parametrize(
    ("parents", "first"),
    [
        # "-" sorts before "/": PL:A-1/... comes before PL:A/..., although "A" < "A-1".
        (["A", "A-1"], "PL:A-1/W1/1/10"),
        (["B", "A"], "PL:A/W1/1/10"),
        # Ids holding "/" are spelled out and compared as strings.
        (["A", "A/X"], "PL:A/W1/1/10"),
        (["A/X", "A"], "PL:A/W1/1/10"),
        (["A", "A.B"], "PL:A.B/W1/1/10"),
    ],
)
def test_ties_between_parents_follow_the_refs_text(parents: list[str], first: str) -> None:
    assert _on_hand_goes_to(_model(parents)) == first


def test_order_numbers_compare_as_text() -> None:
    # Ten orders of one parent on one date: PL:P/W1/10/10 sorts before PL:P/W1/2/10.
    assert _on_hand_goes_to(_model(["P"], orders_per_parent=10)) == "PL:P/W1/1/10"
    inp = _model(["P"], orders_per_parent=10)
    inp["on_hand"][0]["qty"] = 2
    engine = engine_plan(inp, T0, None)
    assert not diff_results(engine, reference_plan(inp, T0, None))
    got = sorted(
        r["demand_ref"]
        for r in engine["pegging"]
        if r["item_id"] == "C" and r["supply_kind"] == "oh"
    )
    assert got == ["PL:P/W1/1/10", "PL:P/W1/10/10"]


def test_ties_between_transfer_orders_without_any_bom() -> None:
    # Found by the hypothesis hunt: refs without a line (transfers) in a
    # model with no BOM line at all. Ten transfers on one date: PL:A/DC/10
    # sorts before PL:A/DC/2 and gets the source's second unit of on-hand.
    inp: dict[str, list[Row]] = {
        "warehouses": [
            {"warehouse_id": "PLANT", "site_id": "S"},
            {"warehouse_id": "DC", "site_id": "S"},
        ],
        "coverage_groups": [
            {"group_id": "G", "coverage_code": "requirement", "coverage_time_fence_days": 100}
        ],
        "items": [{"item_id": "A", "default_order_type": "purchase", "coverage_group_id": "G"}],
        "item_coverage": [
            {
                "item_id": "A",
                "warehouse_id": "DC",
                "order_type": "transfer",
                "refill_warehouse_id": "PLANT",
                "lead_time_days": 1,
            }
        ],
        "on_hand": [{"item_id": "A", "warehouse_id": "PLANT", "qty": 2}],
        "sales_lines": [
            {
                "order_id": f"S{k}",
                "line_no": 1,
                "item_id": "A",
                "warehouse_id": "DC",
                "qty": 1,
                "requested_date": "2024-01-10",
            }
            for k in range(10)
        ],
    }
    engine = engine_plan(inp, T0, None)
    problems = diff_results(engine, reference_plan(inp, T0, None))
    assert not problems, "\n".join(problems)
    got = sorted(
        r["demand_ref"]
        for r in engine["pegging"]
        if r["warehouse_id"] == "PLANT" and r["supply_kind"] == "oh"
    )
    assert got == ["PL:A/DC/1", "PL:A/DC/10"]
