"""§5.9 Plan messages: the input checks (server/engine/validate.py)."""

from __future__ import annotations

import importlib
from typing import Any
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from masterplan.contract.rows import from_rows, to_rows
from masterplan.contract.tables import INPUT_TABLES
from masterplan.server.engine.validate import ROW_TABLES, ValidatedData, validate
from tests.differential.strategies import models
from tests.engine.phases import Input, iso, sales, tables

BASE: Input = {
    "warehouses": [{"warehouse_id": "W1", "site_id": "S"}],
    "coverage_groups": [{"group_id": "G"}],
    "items": [{"item_id": "A"}, {"item_id": "B"}],
    "boms": [{"bom_id": "BA", "item_id": "A"}],
    "bom_lines": [{"bom_id": "BA", "line_no": 1, "component_item_id": "B", "qty_per": 1}],
}

Message = tuple[str, Any, Any]


@pytest.mark.parametrize(
    ("extra", "messages", "table", "survivors"),
    [
        (
            {"sales_lines": [sales("A", 1, 0), sales("A", 2, 1)]},
            [("DUPLICATE_KEY", "A", "W1")] * 2,
            "sales_lines",
            0,
        ),
        # The first check that applies, only: duplicates of an unknown item.
        (
            {"sales_lines": [sales("Z", 1, 0), sales("Z", 2, 1)]},
            [("DUPLICATE_KEY", "Z", "W1")] * 2,
            "sales_lines",
            0,
        ),
        ({"sales_lines": [sales("Z", 1, 0)]}, [("UNKNOWN_ITEM", "Z", "W1")], "sales_lines", 0),
        (
            {"sales_lines": [{**sales("A", 1, 0), "warehouse_id": "W9"}]},
            [("UNKNOWN_WAREHOUSE", "A", "W9")],
            "sales_lines",
            0,
        ),
        ({"sales_lines": [sales("A", -1, 0)]}, [("INVALID_QTY", "A", "W1")], "sales_lines", 0),
        ({"sales_lines": [sales("A", 0, 0)]}, [], "sales_lines", 1),  # zero is nothing, silently
        (
            {"on_hand": [{"item_id": "A", "warehouse_id": "W1", "qty": -4}]},
            [],  # a negative on-hand is a requirement, not an error
            "on_hand",
            1,
        ),
        (
            {
                "bom_lines": [
                    {"bom_id": "NOPE", "line_no": 1, "component_item_id": "B", "qty_per": 1}
                ]
            },
            [("UNKNOWN_BOM", "B", None)],
            "bom_lines",
            0,
        ),
        (
            # A BOM with batch_qty 0 is left out, and its lines go silently.
            {"boms": [{"bom_id": "BA", "item_id": "A", "batch_qty": 0}]},
            [("INVALID_QTY", "A", None)],
            "bom_lines",
            0,
        ),
        (
            {"items": [{"item_id": "A", "coverage_group_id": "NG"}, {"item_id": "B"}]},
            [("UNKNOWN_COVERAGE_GROUP", "A", None)],
            "items",
            2,  # kept, with the group treated as none
        ),
        (
            {
                "item_coverage": [
                    {"item_id": "A", "warehouse_id": "W1", "refill_warehouse_id": "W9"}
                ]
            },
            [("UNKNOWN_WAREHOUSE", "A", "W9")],
            "item_coverage",
            1,  # kept, with the refill warehouse treated as none
        ),
        (
            {
                "purchase_lines": [
                    {
                        "order_id": "P",
                        "line_no": 1,
                        "item_id": "A",
                        "warehouse_id": "W1",
                        "qty": 3,
                        "delivery_date": iso(2),
                    }
                ]
            },
            [],
            "purchase_lines",
            1,
        ),
    ],
)
def test_checks(extra: Input, messages: list[Message], table: str, survivors: int) -> None:
    v = validate(tables({**BASE, **extra}))
    got = list(
        zip(
            v.messages.code.tolist(),
            v.messages.item_id.tolist(),
            v.messages.warehouse_id.tolist(),
            strict=True,
        )
    )
    assert got == messages
    assert all(s == "warning" for s in v.messages.severity.tolist())
    kept = v.tables[table]
    assert len(next(iter(kept.values()))) == survivors


def test_treated_as_none_references_become_null() -> None:
    v = validate(
        tables(
            {
                **BASE,
                "items": [{"item_id": "A", "coverage_group_id": "NG"}],
                "item_coverage": [
                    {"item_id": "A", "warehouse_id": "W1", "refill_warehouse_id": "W9"}
                ],
            }
        )
    )
    assert v.tables["items"]["coverage_group_id"].tolist() == [None]
    assert v.tables["item_coverage"]["refill_warehouse_id"].tolist() == [None]


def test_messages_name_the_row() -> None:
    v = validate(tables({**BASE, "sales_lines": [sales("Z", 1, 0)]}))
    assert v.messages.text.tolist() == [
        "sales line (sales_lines: order_id='S-Z-1', line_no=1): item_id is not in items"
    ]


def test_masters_are_sorted_by_id_and_their_positions_kept() -> None:
    v = validate(tables({**BASE, "items": [{"item_id": i} for i in ("b", "B", "a", "A")]}))
    assert v.tables["items"]["item_id"].tolist() == ["A", "B", "a", "b"]
    assert v.id_positions["items"] == {"A": 0, "B": 1, "a": 2, "b": 3}


# -- a changed table checked on its new rows ---------------------------------------
Rows = dict[str, list[dict[str, Any]]]
# (the engine package's ``validate`` is the function)
validate_module = importlib.import_module("masterplan.server.engine.validate")


def _data(rows: Rows) -> dict[str, dict[str, np.ndarray]]:
    return {name: from_rows(spec, rows.get(name, [])) for name, spec in INPUT_TABLES.items()}


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal columns: the same dtype and values (NaN equal to NaN)."""
    if a.dtype != b.dtype:
        return False
    if a.dtype.kind == "f":
        return np.array_equal(a, b, equal_nan=True)
    return a.tolist() == b.tolist()


def _assert_same_checks(got: ValidatedData, want: ValidatedData) -> None:
    for name, table in want.tables.items():
        assert table.keys() == got.tables[name].keys(), name
        for col, values in table.items():
            assert _same(got.tables[name][col], values), (name, col)
    for f in ("severity", "code", "item_id", "warehouse_id", "text"):
        assert getattr(got.messages, f).tolist() == getattr(want.messages, f).tolist(), f
    assert got.codes.keys() == want.codes.keys()
    for key, pos in want.codes.items():
        assert got.codes[key].tolist() == pos.tolist(), key
    assert got.key_hashes.keys() == want.key_hashes.keys()
    for name, hashes in want.key_hashes.items():
        assert got.key_hashes[name].tolist() == hashes.tolist(), name


def _survivors(rows: Rows, name: str, table: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of ``table`` that pass the checks against the masters of ``rows``."""
    checked = validate(_data({**rows, name: table}))
    return to_rows(checked.tables[name], INPUT_TABLES[name])


@st.composite
def _table_versions(draw: st.DrawFn) -> tuple[Rows, str, Rows, np.ndarray]:
    """A model, one of its row tables, a new version of that table (rows
    kept, dropped, replaced in place, appended, as a delta leaves them) and
    the sources a delta gives (some unchanged rows marked -1 too)."""
    rows, _, _ = draw(models())
    fresh, _, _ = draw(models())
    name = draw(st.sampled_from(ROW_TABLES))
    old, pool = rows.get(name, []), list(fresh.get(name, []))
    # Most often, versions without a bad row (the path that checks new rows
    # only); otherwise as drawn.
    if draw(st.integers(0, 3)):
        old = _survivors(rows, name, old)
        pool = _survivors(rows, name, pool)
        rows = {**rows, name: old}
    new, sources = [], []
    for i, row in enumerate(old):
        action = draw(st.sampled_from(("keep", "keep", "drop", "replace")))
        if action == "replace" and pool:
            new.append(pool.pop(0))
            sources.append(-1)
        elif action != "drop":
            new.append(row)
            sources.append(-1 if draw(st.integers(0, 7)) == 0 else i)
    for row in pool[: draw(st.integers(0, len(pool)))]:
        new.append(row)
        sources.append(-1)
    return rows, name, {**rows, name: new}, np.array(sources, dtype=np.int64)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(_table_versions())
def test_checking_a_changed_table_on_its_new_rows_equals_checking_it_whole(
    versions: tuple[Rows, str, Rows, np.ndarray],
) -> None:
    """Surviving rows, messages, id positions and key hashes: all as a
    check of the whole new version gives them, bad rows and repeated keys
    on either side included."""
    rows, name, new_rows, sources = versions
    before = _data(rows)
    after = {**before, name: from_rows(INPUT_TABLES[name], new_rows[name])}
    unchanged = [n for n in INPUT_TABLES if n != name]
    got = validate(after, validate(before), unchanged, {name: sources})
    _assert_same_checks(got, validate(after))


def test_a_changed_sales_line_is_the_only_row_checked_again() -> None:
    """With a clean previous version only the new row is looked at; a new row
    that repeats a kept row's key has the whole table checked (both rows are
    left out as duplicates)."""
    lines = [
        {
            "order_id": f"S{i}",
            "line_no": 1,
            "item_id": "A",
            "warehouse_id": "W1",
            "qty": 1,
            "requested_date": "2026-01-05",
        }
        for i in range(4)
    ]
    base = {"warehouses": [{"warehouse_id": "W1"}], "items": [{"item_id": "A"}]}
    before = _data({**base, "sales_lines": lines})
    previous = validate(before)
    unchanged = [n for n in INPUT_TABLES if n != "sales_lines"]
    seen: list[int] = []
    real_check = validate_module._check

    def spy(name: str, table: dict[str, np.ndarray], ctx: Any) -> Any:
        seen.append(len(table["order_id"]))
        return real_check(name, table, ctx)

    changed = [*lines[:2], {**lines[2], "qty": 5}, lines[3]]
    after = {**before, "sales_lines": from_rows(INPUT_TABLES["sales_lines"], changed)}
    with mock.patch.object(validate_module, "_check", spy):
        got = validate(after, previous, unchanged, {"sales_lines": np.array([0, 1, -1, 3])})
    assert seen == [1]
    assert got.tables["sales_lines"]["qty"].tolist() == [1, 1, 5, 1]
    _assert_same_checks(got, validate(after))

    repeated = [*lines, {**lines[0], "qty": 9}]
    after = {**before, "sales_lines": from_rows(INPUT_TABLES["sales_lines"], repeated)}
    seen.clear()
    with mock.patch.object(validate_module, "_check", spy):
        got = validate(after, previous, unchanged, {"sales_lines": np.array([0, 1, 2, 3, -1])})
    assert seen == [1, 5]
    assert [str(c) for c in got.messages.code] == ["DUPLICATE_KEY", "DUPLICATE_KEY"]
    _assert_same_checks(got, validate(after))
