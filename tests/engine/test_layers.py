"""The engine's modules: one per rule of SPEC §5, importing one another in one
direction only, each with its own test file, as the tables in the engine's
docstring and docs/planning-rules.md say."""

from __future__ import annotations

import ast
import graphlib
import re
from pathlib import Path

import pytest

import masterplan.server.engine as engine

ENGINE = Path(engine.__file__).parent
TESTS = Path(__file__).parent
DOC = Path(__file__).parents[2] / "docs" / "planning-rules.md"
PACKAGE = "masterplan.server.engine"
SECTIONS = [f"5.{i}" for i in range(1, 10)]


def _imports(path: Path) -> set[str]:
    """Engine modules ``path`` imports, type-checking-only imports included."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(PACKAGE):
            found.add(node.module.removeprefix(PACKAGE).lstrip(".") or "__init__")
        elif isinstance(node, ast.Import):
            found |= {
                a.name.removeprefix(PACKAGE).lstrip(".")
                for a in node.names
                if a.name.startswith(PACKAGE + ".")
            }
    return found


def test_no_module_imports_one_that_imports_it_back() -> None:
    graph = {p.stem: _imports(p) for p in ENGINE.glob("*.py")}
    order = list(graphlib.TopologicalSorter(graph).static_order())  # raises on a cycle
    assert order[-1] == "__init__"
    # The runs (a regeneration, the net change built on it, and a plan over
    # partitions) are the top: no phase module imports them.
    runs = {"plan", "incremental", "partitioned"}
    phases = set().union(*(graph[m] for m in graph if m not in (*runs, "__init__")))
    assert not phases & runs


def _doc_table() -> dict[str, list[str]]:
    """§5 section -> its modules, main one first, from docs/planning-rules.md."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Where each rule lives in the engine", 1)[1].split("\n## ", 1)[0]
    table: dict[str, list[str]] = {}
    for line in section.splitlines():
        m = re.match(r"\| (5\.\d) [^|]*\| ([^|]*)\|", line)
        if m:
            table[m.group(1)] = re.findall(r"`(\w+)\.py`", m.group(2))
    return table


def _docstring_table() -> dict[str, str]:
    """§5 section -> its main module, from the table in the engine's docstring."""
    doc = engine.__doc__ or ""
    return {
        m.group(1): m.group(2)
        for m in re.finditer(r"^(5\.\d) [^:\n]*:mod:`\.(\w+)`", doc, re.MULTILINE)
    }


def test_every_rule_has_its_module_in_both_tables() -> None:
    doc, docstring = _doc_table(), _docstring_table()
    assert sorted(doc) == SECTIONS
    assert sorted(docstring) == SECTIONS
    for section in SECTIONS:
        assert docstring[section] == doc[section][0], section
        for module in doc[section]:
            assert (ENGINE / f"{module}.py").is_file(), module
    for module in re.findall(r":mod:`\.(\w+)`", engine.__doc__ or ""):
        assert (ENGINE / f"{module}.py").is_file(), module


@pytest.mark.parametrize(
    "module",
    [
        "calendar",
        "skus",
        "graph",
        "requirements",
        "netting",
        "orders",
        "delays",
        "actions",
        "validate",
        "output",
    ],
)
def test_every_rule_module_has_its_tests(module: str) -> None:
    assert (ENGINE / f"{module}.py").is_file()
    assert (TESTS / f"test_{module}.py").is_file()
