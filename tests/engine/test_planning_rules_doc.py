"""The worked examples of docs/planning-rules.md: every ```json example block
must be planned exactly as documented by both the engine and the reference."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.differential.engine_adapter import engine_plan
from tests.reference import reference_plan
from tests.reference.compare import diff_results

DOC = Path(__file__).parents[2] / "docs" / "planning-rules.md"
BLOCK = re.compile(r"^```json example[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
KEYS = {"name", "plan_date", "default_group", "input", "expected"}
RESULT_TABLES = {
    "planned_orders",
    "pegging",
    "action_messages",
    "delay_messages",
    "plan_messages",
}


def load_examples() -> list[dict[str, Any]]:
    return [json.loads(m.group(1)) for m in BLOCK.finditer(DOC.read_text(encoding="utf-8"))]


EXAMPLES = load_examples()


def test_doc_has_enough_well_formed_examples() -> None:
    assert len(EXAMPLES) >= 12
    names = [ex.get("name") for ex in EXAMPLES]
    assert len(set(names)) == len(names), "example names must be unique"
    for ex in EXAMPLES:
        assert set(ex) == KEYS, ex.get("name")
        assert set(ex["expected"]) == RESULT_TABLES, ex["name"]


@pytest.mark.parametrize("example", EXAMPLES, ids=[ex["name"] for ex in EXAMPLES])
@pytest.mark.parametrize("planner", ["engine", "reference"])
def test_documented_plan(example: dict[str, Any], planner: str) -> None:
    run = engine_plan if planner == "engine" else reference_plan
    got = run(example["input"], example["plan_date"], example["default_group"])
    problems = diff_results(got, example["expected"])
    assert not problems, "\n".join(problems)
