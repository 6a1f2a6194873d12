"""The engine on the worked examples of SPEC §5 (tests/data/examples)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from masterplan.contract.rows import from_rows, to_rows
from masterplan.contract.tables import INPUT_TABLES, RESULT_TABLES
from masterplan.server.engine import PlanParams, plan
from tests.reference.compare import diff_results

EXAMPLES = sorted((Path(__file__).parents[1] / "data" / "examples").glob("*.json"))


def engine_plan(example: dict) -> dict[str, list[dict]]:
    data = {n: from_rows(INPUT_TABLES[n], example["input"].get(n, [])) for n in INPUT_TABLES}
    params = PlanParams(dt.date.fromisoformat(example["plan_date"]), example.get("default_group"))
    result = plan(data, params)
    out = {}
    for name, table in result.tables.items():
        rows = to_rows(table, RESULT_TABLES[name])
        for r in rows:
            for k, v in r.items():
                if isinstance(v, dt.date):
                    r[k] = v.isoformat()
        out[name] = rows
    return out


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_engine_matches_worked_example(path: Path) -> None:
    example = json.loads(path.read_text())
    problems = diff_results(engine_plan(example), example["expected"])
    assert not problems, "\n".join(problems)
