"""Runs the fast engine on row-dict input (the examples' format) and returns
its five output tables as row dicts with ISO date strings, like the reference."""

from __future__ import annotations

import datetime as dt
from typing import Any

from masterplan.contract.rows import from_rows, to_rows
from masterplan.contract.tables import INPUT_TABLES, PLAN_OUTPUT_TABLES, RESULT_TABLES
from masterplan.server.engine import PlanParams, plan

Row = dict[str, Any]


def _iso(v: Any) -> Any:
    return v.isoformat() if isinstance(v, dt.date) else v


def engine_plan(
    inp: dict[str, list[Row]], plan_date: str, default_group: str | None
) -> dict[str, list[Row]]:
    data = {name: from_rows(spec, inp.get(name, [])) for name, spec in INPUT_TABLES.items()}
    result = plan(data, PlanParams(dt.date.fromisoformat(plan_date), default_group))
    return {
        name: [
            {k: _iso(v) for k, v in row.items()}
            for row in to_rows(result.tables[name], RESULT_TABLES[name])
        ]
        for name in PLAN_OUTPUT_TABLES
    }
