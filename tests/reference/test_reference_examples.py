"""Runs the reference implementation of SPEC §5 on every worked example
(tests/data/examples/*.json) and compares each result table as a multiset
(quantities within 1e-6, dates as ISO strings, plan_messages by severity,
code, item_id and warehouse_id)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .compare import QTY_COLUMNS, RESULT_COLUMNS, diff_results
from .planner import reference_plan

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "data" / "examples"
EXAMPLES = sorted(EXAMPLES_DIR.glob("*.json"))


def check_types(result: dict[str, list[dict[str, Any]]]) -> None:
    """Exactly the five result tables, §4 columns, the interface's value types."""
    assert set(result) == set(RESULT_COLUMNS)
    for table, rows in result.items():
        for row in rows:
            assert set(row) >= set(RESULT_COLUMNS[table]), (table, row)
            for col in QTY_COLUMNS & set(row):
                assert row[col] is None or isinstance(row[col], float), (table, col, row)
            if table == "planned_orders":
                assert row["firmed"] in (0, 1) and isinstance(row["firmed"], int), row
            if table == "delay_messages":
                assert row["delay_days"] is None or isinstance(row["delay_days"], int), row
            if table == "plan_messages":
                assert row["severity"] in ("warning", "error") and isinstance(row["text"], str)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_reference_matches_example(path: Path) -> None:
    example = json.loads(path.read_text())
    result = reference_plan(example["input"], example["plan_date"], example["default_group"])
    check_types(result)
    problems = diff_results(result, example["expected"])
    assert not problems, f"{path.name}\n" + "\n".join(problems)


def test_all_examples_present() -> None:
    assert len(EXAMPLES) == 29
