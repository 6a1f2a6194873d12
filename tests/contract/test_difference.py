"""The difference between two plan results: multiset semantics and equality rules."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.dtypes import StringDType

from masterplan.contract.coded import Coded, as_array
from masterplan.contract.difference import Difference, changed_rows, difference
from masterplan.contract.rows import from_rows
from masterplan.contract.tables import PLAN_OUTPUT_TABLES, RESULT_OUTPUT_SPECS, ColumnKind

DELAYS = RESULT_OUTPUT_SPECS["delay_messages"]


def delay(ref: str | None = "SO:1/1", qty: float | None = 1.0, day: str | None = None) -> dict:
    return {
        "demand_kind": "so",
        "demand_ref": ref,
        "item_id": "A",
        "warehouse_id": "W",
        "requirement_date": "2026-01-05",
        "futures_date": day,
        "delay_days": qty,
    }


def delays(*rows: dict) -> dict[str, dict[str, Any]]:
    return {"delay_messages": from_rows(DELAYS, rows)}


def canonical(table: Mapping[str, Any], columns: tuple[str, ...]) -> Counter[tuple]:
    """Rows as a multiset of Python tuples under the difference's equality rules."""
    cols = [as_array(table[c]) for c in columns]
    n = len(cols[0]) if cols else 0

    def value(v: Any) -> Any:
        if isinstance(v, float):
            return None if math.isnan(v) else v + 0.0
        if isinstance(v, np.datetime64):
            return None if np.isnat(v) else v.astype("datetime64[D]").astype(int)
        return None if v is None else str(v)

    return Counter(tuple(value(c[i]) for c in cols) for i in range(n))


def only(diff: Difference, name: str = "delay_messages") -> tuple[int, int]:
    return diff.counts()[name]


def test_identical_results_give_an_empty_difference() -> None:
    old = delays(delay("SO:1/1"), delay("SO:2/1"), delay("SO:2/1"))
    diff = difference(old, delays(delay("SO:2/1"), delay("SO:1/1"), delay("SO:2/1")))
    assert diff.rows_added == diff.rows_removed == 0
    assert set(diff.counts()) == set(PLAN_OUTPUT_TABLES)
    for name in PLAN_OUTPUT_TABLES:
        assert set(diff.added[name]) == set(RESULT_OUTPUT_SPECS[name].column_names)


def test_a_row_whose_count_changes_goes_with_every_copy() -> None:
    # "a" twice then once, "b" once then twice: all copies go, the new ones come.
    old = delays(delay("a"), delay("a"), delay("b"), delay("c"))
    new = delays(delay("c"), delay("b"), delay("a"), delay("b"))
    diff = difference(old, new)
    assert diff.removed["delay_messages"]["demand_ref"].tolist() == ["a", "a", "b"]
    assert diff.added["delay_messages"]["demand_ref"].tolist() == ["b", "a", "b"]
    assert (diff.rows_removed, diff.rows_added) == (3, 3)
    gone, come = changed_rows(old["delay_messages"], new["delay_messages"], DELAYS.column_names)
    assert gone.tolist() == [0, 1, 2] and come.tolist() == [1, 2, 3]


def test_null_text_equals_null_and_differs_from_empty_text() -> None:
    diff = difference(delays(delay(None), delay("")), delays(delay(""), delay(None)))
    assert only(diff) == (0, 0)
    diff = difference(delays(delay(None)), delays(delay("")))
    assert only(diff) == (1, 1)
    assert diff.removed["delay_messages"]["demand_ref"].tolist() == [None]
    assert diff.added["delay_messages"]["demand_ref"].tolist() == [""]


def test_floats_equal_by_value_and_nan_is_null() -> None:
    old = delays(delay(qty=-0.0), delay(qty=None), delay(qty=2.5))
    new = delays(delay(qty=0.0), delay(qty=float("nan")), delay(qty=2.5))
    assert only(difference(old, new)) == (0, 0)
    diff = difference(delays(delay(qty=None)), delays(delay(qty=0.0)))
    assert only(diff) == (1, 1)


def test_dates_equal_by_value_and_nat_equals_nat() -> None:
    old = delays(delay(day=None), delay(day="2026-02-01"))
    new = delays(delay(day="2026-02-01"), delay(day=None))
    assert only(difference(old, new)) == (0, 0)
    assert only(difference(delays(delay(day=None)), delays(delay(day="1970-01-01")))) == (1, 1)


def test_coded_and_plain_text_compare_by_value() -> None:
    plain = delays(delay("x"), delay(None), delay("y"), delay("x"))
    coded = dict(plain["delay_messages"])
    # Repeated values, a None value and code -1 are all fine in a Coded column.
    values = np.array(["y", "x", None, "x"], dtype=object)
    coded["demand_ref"] = Coded(np.array([1, 2, 0, 3]), values)
    diff = difference({"delay_messages": coded}, plain)
    assert only(diff) == (0, 0)
    # x, NULL, y, NULL against x, NULL, y, x: only y kept its count.
    coded["demand_ref"] = Coded(np.array([1, -1, 0, 2]), values)
    diff = difference({"delay_messages": coded}, plain)
    assert only(diff) == (3, 3)
    removed = diff.removed["delay_messages"]["demand_ref"]
    assert removed.dtype == object and removed.tolist() == ["x", None, None]
    assert diff.added["delay_messages"]["demand_ref"].tolist() == ["x", None, "x"]


def test_stringdtype_values_compare_with_object_text() -> None:
    # Two sorted runs of the same ids: the input numpy's string sort crashed on.
    ids = [f"IT-{i:05d}" for i in range(300)] * 2
    old = delays(*(delay(i) for i in ids))
    new = {"delay_messages": dict(old["delay_messages"])}
    new["delay_messages"]["demand_ref"] = np.array(ids, dtype=StringDType())
    assert only(difference(old, new)) == (0, 0)
    refs = Coded(np.arange(600) % 300, np.array(ids[:300], dtype=StringDType()))
    new["delay_messages"]["demand_ref"] = refs
    assert only(difference(old, new)) == (0, 0)


def test_a_missing_table_counts_as_empty() -> None:
    new = delays(delay("a"), delay("a"))
    diff = difference({}, new, names=("delay_messages",))
    assert diff.counts() == {"delay_messages": (0, 2)}
    assert difference(new, {}, names=("delay_messages",)).counts() == {"delay_messages": (2, 0)}


def test_wide_tables_that_need_compacting_codes() -> None:
    # Nine columns of ~2000 distinct values each: their product overflows
    # int64 many times over, so the row codes are compacted on the way.
    rng = np.random.default_rng(7)
    spec = RESULT_OUTPUT_SPECS["pegging"]
    n = 2000

    def table() -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for c in spec.columns:
            k = rng.integers(0, n, n)
            if c.kind is ColumnKind.STR:
                out[c.name] = np.array([f"v{i}" for i in k], dtype=object)
            elif c.kind is ColumnKind.DATE:
                out[c.name] = (np.datetime64("2026-01-01") + k).astype("datetime64[D]")
            else:
                out[c.name] = k * 0.5
        return out

    old = table()
    new = {c: np.concatenate([v[:1500], table()[c][:300], v[1000:1200]]) for c, v in old.items()}
    diff = difference({"pegging": old}, {"pegging": new}, names=("pegging",))
    check_applies(old, new, diff.removed["pegging"], diff.added["pegging"], spec.column_names)


def check_applies(
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    removed: Mapping[str, Any],
    added: Mapping[str, Any],
    columns: tuple[str, ...],
) -> None:
    """Deleting every copy of each removed row from ``old`` and inserting ``added`` gives ``new``."""
    before, after = canonical(old, columns), canonical(new, columns)
    gone, come = canonical(removed, columns), canonical(added, columns)
    for row, count in gone.items():
        assert before[row] == count, "a removed row goes with every copy"
    assert all(before[row] != after[row] for row in gone | come)
    applied = Counter({row: k for row, k in before.items() if row not in gone}) + come
    assert applied == after


TEXT = st.sampled_from([None, "", "a", "b", "é"])
NUMBER = st.sampled_from([0.0, -0.0, float("nan"), 1.0, 2.5])
DAY = st.sampled_from([None, "2026-01-01", "2026-01-02"])
ROW = st.fixed_dictionaries(
    {
        "demand_kind": TEXT,
        "demand_ref": TEXT,
        "item_id": st.sampled_from(["A", "B"]),
        "warehouse_id": TEXT,
        "requirement_date": DAY,
        "futures_date": DAY,
        "delay_days": NUMBER,
    }
)


def shaped(table: dict[str, np.ndarray], style: int) -> dict[str, Any]:
    """The same table with its text as object, StringDType (no NULL) or Coded columns."""
    out: dict[str, Any] = dict(table)
    for c in DELAYS.columns:
        if c.kind is not ColumnKind.STR:
            continue
        col = table[c.name]
        if style == 1 and not any(v is None for v in col):
            out[c.name] = col.astype(StringDType())
        elif style == 2:
            # A repeated value ("a" at 1 and 5) and a None value beside code -1.
            values = np.array(["", "a", "b", "é", None, "a", "A", "B"], dtype=object)
            codes = np.array([_code(v, i) for i, v in enumerate(col.tolist())], dtype=np.int64)
            out[c.name] = Coded(codes, values)
    return out


def _code(value: str | None, row: int) -> int:
    if value is None:
        return -1 if row % 2 else 4
    if value == "a":
        return 1 if row % 2 else 5
    return {"": 0, "b": 2, "é": 3, "A": 6, "B": 7}[value]


@given(
    st.lists(ROW, max_size=12),
    st.lists(ROW, max_size=12),
    st.integers(0, 2),
    st.integers(0, 2),
)
def test_applying_the_difference_gives_the_new_result(
    old_rows: list[dict], new_rows: list[dict], old_style: int, new_style: int
) -> None:
    old = shaped(from_rows(DELAYS, old_rows), old_style)
    new = shaped(from_rows(DELAYS, new_rows + old_rows[: len(old_rows) // 2]), new_style)
    diff = difference({"delay_messages": old}, {"delay_messages": new}, names=("delay_messages",))
    removed, added = diff.removed["delay_messages"], diff.added["delay_messages"]
    check_applies(old, new, removed, added, DELAYS.column_names)
    same = difference({"delay_messages": old}, {"delay_messages": old}, names=("delay_messages",))
    assert same.rows_added == same.rows_removed == 0


@pytest.mark.parametrize("name", PLAN_OUTPUT_TABLES)
def test_every_output_table_can_be_compared(name: str) -> None:
    spec = RESULT_OUTPUT_SPECS[name]
    row = {c.name: ("x" if c.kind is ColumnKind.STR else None) for c in spec.columns}
    old = {name: from_rows(spec, [row])}
    new = {name: from_rows(spec, [row, row])}
    assert difference(old, new).counts()[name] == (1, 2)


def engine_coded(table: dict[str, np.ndarray], string_values: bool) -> dict[str, Any]:
    """Text coded as the engine codes it: values in order of first use, -1 for NULL."""
    out: dict[str, Any] = dict(table)
    for c in DELAYS.columns:
        if c.kind is not ColumnKind.STR:
            continue
        words = table[c.name].tolist()
        first = list(dict.fromkeys(w for w in words if w is not None))
        at = {w: i for i, w in enumerate(first)}
        codes = np.array([-1 if w is None else at[w] for w in words], dtype=np.int64)
        values = np.array(first, dtype=StringDType() if string_values else object)
        out[c.name] = Coded(codes, values)
    return out


EDIT = st.tuples(
    st.sampled_from(["replace", "insert", "delete", "tweak"]),
    st.integers(0, 40),
    ROW,
    st.sampled_from(DELAYS.column_names),
)


@given(
    st.lists(ROW, min_size=1, max_size=40),
    st.lists(EDIT, max_size=4),
    st.sampled_from(["plain", "coded", "string-coded", "mixed"]),
)
def test_a_few_edits_of_a_result_give_the_exact_difference(
    rows: list[dict], edits: list[tuple[str, int, dict, str]], style: str
) -> None:
    # Mostly the same rows in the same order: the paired shortcut's ground.
    changed = list(rows)
    for op, at, row, column in edits:
        at %= len(changed) + 1
        if op == "insert":
            changed.insert(at, row)
        elif changed and at < len(changed):
            if op == "replace":
                changed[at] = row
            elif op == "tweak":  # one column of a row: its other columns still pair
                changed[at] = dict(changed[at], **{column: row[column]})
            else:
                del changed[at]
    old, new = from_rows(DELAYS, rows), from_rows(DELAYS, changed)
    if style in ("coded", "string-coded"):
        old_t, new_t = (engine_coded(t, style == "string-coded") for t in (old, new))
    elif style == "mixed":
        old_t, new_t = engine_coded(old, False), dict(new)
    else:
        old_t, new_t = dict(old), dict(new)
    diff = difference({"delay_messages": old_t}, {"delay_messages": new_t}, ("delay_messages",))
    removed, added = diff.removed["delay_messages"], diff.added["delay_messages"]
    check_applies(old, new, removed, added, DELAYS.column_names)
    gone, come = changed_rows(old, new, DELAYS.column_names)
    assert (len(gone), len(come)) == only(diff)


def test_paired_copies_of_a_changed_row_go_too() -> None:
    # Row "a" twice in place, a third copy added at the end: both old copies
    # are paired at their positions, yet they go, and all three come.
    old = delays(delay("a"), delay("b"), delay("a"), delay("c"))
    new = delays(delay("a"), delay("b"), delay("a"), delay("c"), delay("a"))
    diff = difference(old, new)
    assert diff.removed["delay_messages"]["demand_ref"].tolist() == ["a", "a"]
    assert diff.added["delay_messages"]["demand_ref"].tolist() == ["a", "a", "a"]


def test_a_table_of_text_only_with_a_change() -> None:
    spec = RESULT_OUTPUT_SPECS["plan_messages"]
    rows = [{"severity": "warning", "code": "X", "text": f"t{i}"} for i in range(20)]
    old = {"plan_messages": from_rows(spec, rows)}
    new = {"plan_messages": from_rows(spec, [*rows[:5], dict(rows[5], code="Y"), *rows[6:]])}
    assert difference(old, new, ("plan_messages",)).counts() == {"plan_messages": (1, 1)}


@pytest.mark.parametrize("dtype", [object, StringDType()])
def test_equal_codes_into_other_dictionaries_are_not_equal_text(dtype: Any) -> None:
    # Same codes row by row, but the dictionaries differ: a row changed.
    table = delays(delay("a"), delay("b"), delay("c"))["delay_messages"]
    old, new = dict(table), dict(table)
    old["demand_ref"] = Coded(np.array([0, 1, 2]), np.array(["a", "b", "c"], dtype=dtype))
    new["demand_ref"] = Coded(np.array([0, 1, 2]), np.array(["a", "x", "c"], dtype=dtype))
    diff = difference({"delay_messages": old}, {"delay_messages": new}, ("delay_messages",))
    assert diff.removed["delay_messages"]["demand_ref"].tolist() == ["b"]
    assert diff.added["delay_messages"]["demand_ref"].tolist() == ["x"]
    # A value inserted in the middle of the dictionary shifts the codes after it.
    new["demand_ref"] = Coded(np.array([0, 2, 3]), np.array(["a", "z", "b", "c"], dtype=dtype))
    assert difference({"delay_messages": old}, {"delay_messages": new}).rows_added == 0
