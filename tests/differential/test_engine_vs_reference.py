"""Differential test: the fast engine (server.engine) against the slow, literal
reference planner (tests/reference) on random small SCM models, restricted to
the features the engine implements (see strategies.py). The five output tables
must agree as multisets (quantities within 1e-6, plan_messages by severity,
code, item_id and warehouse_id).

The number of examples comes from the Hypothesis profile (tests/conftest.py):
500 derandomized examples in CI; ``HYPOTHESIS_PROFILE=hunt`` for 5,000 locally.
Every counterexample found is kept as a regular test in test_regressions.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, note, settings

from tests.differential.engine_adapter import engine_plan
from tests.differential.strategies import Model, models
from tests.reference import reference_plan
from tests.reference.compare import diff_results

Row = dict[str, Any]


def check(model: Model) -> None:
    inp, plan_date, default_group = model
    note(f"plan_date={plan_date!r} default_group={default_group!r}")
    note("input=" + json.dumps({t: rows for t, rows in inp.items() if rows}, indent=1))
    want = reference_plan(inp, plan_date, default_group)
    got = engine_plan(inp, plan_date, default_group)
    problems = diff_results(got, want, tol=1e-9)
    assert not problems, "engine vs reference (unexpected = engine only):\n" + "\n".join(problems)


_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large]


@settings(suppress_health_check=_HEALTH)
@given(models())
def test_engine_matches_reference(model: Model) -> None:
    """As many examples as the profile says (500, derandomized, in CI)."""
    check(model)


@pytest.mark.slow
@settings(suppress_health_check=_HEALTH, max_examples=10_000, derandomize=False)
@given(models())
def test_engine_matches_reference_at_length(model: Model) -> None:
    """10,000 random examples: ``pytest -m slow``."""
    check(model)


#: Columns holding ids; prefixing them all with the same long text keeps every
#: comparison and order, and makes refs longer than 15 bytes (numpy stores
#: shorter strings inline and longer ones elsewhere: both paths get tested).
ID_COLUMNS = {
    "bom_id",
    "calendar_id",
    "component_item_id",
    "coverage_group_id",
    "default_vendor_id",
    "from_warehouse_id",
    "group_id",
    "item_id",
    "order_id",
    "refill_warehouse_id",
    "site_id",
    "to_warehouse_id",
    "vendor_id",
    "warehouse_id",
    "planned_order_id",
}
LONG = "a-rather-long-identifier-prefix/"


def lengthen(model: Model) -> Model:
    inp, plan_date, default_group = model
    longer = {
        table: [
            {k: (LONG + v if k in ID_COLUMNS and isinstance(v, str) else v) for k, v in row.items()}
            for row in rows
        ]
        for table, rows in inp.items()
    }
    return longer, plan_date, (LONG + default_group) if default_group else default_group


@settings(suppress_health_check=_HEALTH)
@given(models())
def test_engine_matches_reference_with_long_ids(model: Model) -> None:
    check(lengthen(model))
