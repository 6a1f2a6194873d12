"""``check``, what ``masterplan scm check`` reports (SPEC §8: what §5.9
would say about the data, without planning): every plan message a run of the
same data writes, but the ``NO_BOM`` of the run's planned orders, which only
the netting makes. The firmed orders' ``NO_BOM`` and ``NO_REFILL_WAREHOUSE``
were missing from it."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, given, settings

from masterplan.contract.columns import TableMap
from masterplan.contract.rows import from_rows, to_rows
from masterplan.contract.tables import INPUT_TABLES, RESULT_TABLES
from masterplan.server.engine import PlanParams, check, plan
from tests.differential.strategies import Model, models

_KEY = ("severity", "code", "item_id", "warehouse_id", "text")


def _messages(table: Any) -> Counter[tuple[Any, ...]]:
    rows = to_rows(table, RESULT_TABLES["plan_messages"])
    return Counter(tuple(row[k] for k in _KEY) for row in rows)


def _data(inp: dict[str, list[dict[str, Any]]]) -> TableMap:
    return {name: from_rows(spec, inp.get(name, [])) for name, spec in INPUT_TABLES.items()}


def _netting_made(key: tuple[Any, ...]) -> bool:
    return key[1] == "NO_BOM" and str(key[4]).startswith("planned production order ")


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(models())
def test_check_says_what_a_run_says_but_the_netting(model: Model) -> None:
    inp, plan_date, default_group = model
    data = _data(inp)
    params = PlanParams(dt.date.fromisoformat(plan_date), default_group)
    run = _messages(plan(data, params).tables["plan_messages"])
    netting = Counter({key: n for key, n in run.items() if _netting_made(key)})
    assert _messages(check(data, params)) == run - netting


def test_check_names_the_firmed_orders_a_run_warns_about() -> None:
    inp: dict[str, list[dict[str, Any]]] = {
        "warehouses": [{"warehouse_id": "W1", "site_id": "S"}],
        "items": [{"item_id": "A", "default_order_type": "production"}],
        "firmed_planned_orders": [
            {
                "planned_order_id": "F1",
                "item_id": "A",
                "warehouse_id": "W1",
                "order_type": "production",
                "qty": 5.0,
                "order_date": dt.date(2026, 1, 6),
                "due_date": dt.date(2026, 1, 8),
            },
            {
                "planned_order_id": "F2",
                "item_id": "A",
                "warehouse_id": "W1",
                "order_type": "transfer",
                "qty": 5.0,
                "order_date": dt.date(2026, 1, 6),
                "due_date": dt.date(2026, 1, 8),
            },
        ],
    }
    found = _messages(check(_data(inp), PlanParams(dt.date(2026, 1, 5))))
    assert sorted((code, item) for _, code, item, _, _ in found.elements()) == [
        ("NO_BOM", "A"),
        ("NO_REFILL_WAREHOUSE", "A"),
    ]
