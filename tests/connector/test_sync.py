"""Tests of connector.sync: row hashes, the sync state file, and deltas.

The delta property applies each delta with a reference written here with
lists and dicts (the server's rules: deletes first, then upserts; a keyed
delete removes every row with its key, a keyed upsert replaces them all by
one or is appended; an unkeyed delete removes one equal row, an unkeyed
upsert is appended) and checks that the old rows become exactly the new rows,
as a multiset, for every input table; a second property applies it with the
server's own ``apply_delta``. One test reads a changed database on each backend.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import tempfile
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.dtypes import StringDType
from sqlalchemy.engine import Engine

from masterplan.connector import sync
from masterplan.connector.reader import read_input
from masterplan.connector.sync import (
    Delta,
    StateUnavailable,
    SyncState,
    SyncStore,
    compute_delta,
    default_state_dir,
    key_columns,
    key_hashes,
    row_hashes,
    snapshot_state,
)
from masterplan.contract.columns import Table, table_length
from masterplan.contract.rows import from_rows
from masterplan.contract.tables import INPUT_TABLES, ColumnKind, TableSpec
from masterplan.server.delta import apply_delta

D1, D2 = dt.date(2026, 2, 1), dt.date(2026, 2, 2)
ON_HAND = INPUT_TABLES["on_hand"]
ITEMS = INPUT_TABLES["items"]
SALES = INPUT_TABLES["sales_lines"]

Row = tuple[Any, ...]


def table(spec: TableSpec, *rows: Sequence[Any]) -> Table:
    """A table of ``spec`` from rows given as tuples in column order."""
    return from_rows(spec, [dict(zip(spec.column_names, r, strict=True)) for r in rows])


def on_hand(*rows: tuple[str | None, str | None, float]) -> Table:
    return table(ON_HAND, *rows)


def hashes_equal(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per row: do the two (n, 2) hash arrays agree."""
    return np.all(a == b, axis=1)


def distinct(h: np.ndarray) -> int:
    return len({tuple(r) for r in h.tolist()})


def store(directory: Path, **kw: str) -> SyncStore:
    args = {
        "server": "localhost:50051",
        "tenant": "acme",
        "plan": "main",
        "database_url": "sqlite:///scm.db",
    }
    args.update(kw)
    return SyncStore(directory, **args)


# --- hashing -------------------------------------------------------------------------


def test_hash_shape_and_dtype() -> None:
    h = row_hashes(ON_HAND, on_hand(("A", "W", 1.0), ("B", "W", 2.0)))
    assert h.shape == (2, 2)
    assert h.dtype == np.uint64
    assert row_hashes(ON_HAND, on_hand()).shape == (0, 2)


def test_null_differs_from_empty_string_and_zero() -> None:
    texts = [None, "", "0", "None", "\x00"]
    strings = row_hashes(ON_HAND, on_hand(*((v, "W", 1.0) for v in texts)))
    assert distinct(strings) == len(texts)
    numbers = row_hashes(ON_HAND, on_hand(("A", "W", None), ("A", "W", 0.0), ("A", "W", -0.0)))
    assert not hashes_equal(numbers[:1], numbers[1:2]).any()
    assert distinct(numbers) == 2
    dates = table(
        INPUT_TABLES["forecasts"],
        ("A", "W", None, 1.0),
        ("A", "W", dt.date(1970, 1, 1), 1.0),
        ("A", "W", D1, 1.0),
    )
    assert distinct(row_hashes(INPUT_TABLES["forecasts"], dates)) == 3


def test_negative_zero_and_every_nan_hash_as_one_value() -> None:
    t = on_hand(("A", "W", 0.0), ("A", "W", -0.0), ("A", "W", None), ("A", "W", None))
    t["qty"][3] = np.frombuffer(np.uint64(0x7FF0000000000DEF).tobytes(), dtype=np.float64)[0]
    assert math.isnan(t["qty"][3])
    h = row_hashes(ON_HAND, t)
    assert hashes_equal(h[0:1], h[1:2]).all()
    assert hashes_equal(h[2:3], h[3:4]).all()


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("ab", "c"), ("a", "bc")),
        (("", "abc"), ("abc", "")),
        ((None, ""), ("", None)),
        (("abcdefgh", "i"), ("abcdefghi", "")),
        (("ab\x00", "c"), ("ab", "\x00c")),
        (("ab\x00", "c"), ("ab", "c")),
    ],
)
def test_shifting_text_across_a_column_boundary_changes_the_hash(
    first: tuple[str | None, str | None], second: tuple[str | None, str | None]
) -> None:
    h = row_hashes(ON_HAND, on_hand((*first, 1.0), (*second, 1.0)))
    assert not hashes_equal(h[0:1], h[1:2]).any()


def test_equal_rows_hash_equal_in_object_and_stringdtype_arrays() -> None:
    values = ["A", "", "é", "中文", "x" * 40, "ab\x00"]
    as_objects = on_hand(*((v, "W1", 2.5) for v in values))
    as_strings = dict(as_objects)
    as_strings["item_id"] = np.array(values, dtype=StringDType())
    as_strings["warehouse_id"] = np.array(["W1"] * len(values), dtype=StringDType(na_object=None))
    as_fixed = dict(as_objects)
    as_fixed["warehouse_id"] = np.array(["W1"] * len(values))  # numpy 'U'
    expected = row_hashes(ON_HAND, as_objects)
    assert (row_hashes(ON_HAND, as_strings) == expected).all()
    assert (row_hashes(ON_HAND, as_fixed) == expected).all()
    assert distinct(expected) == len(values)


def test_stringdtype_nulls_hash_as_object_nulls() -> None:
    objects = on_hand((None, "W", 1.0), ("A", "W", 1.0))
    strings = dict(objects)
    strings["item_id"] = np.array([None, "A"], dtype=StringDType(na_object=None))
    assert (row_hashes(ON_HAND, strings) == row_hashes(ON_HAND, objects)).all()


def test_a_row_hashes_the_same_whatever_its_neighbours() -> None:
    """Packing (ASCII, Latin-1, wide) and batch width depend on the value only."""
    values = ["abc", "é", "中", "", None, "abcdefghijk", "ü" * 9]
    alone = [row_hashes(ON_HAND, on_hand((v, "W", 1.0)))[0] for v in values]
    together = row_hashes(ON_HAND, on_hand(*((v, "W", 1.0) for v in values)))
    assert (np.array(alone) == together).all()
    long_neighbour = row_hashes(ON_HAND, on_hand(("z" * 5000, "W", 1.0), ("abc", "W", 1.0)))
    assert (long_neighbour[1] == alone[0]).all()


def test_length_batches_give_the_same_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [("x" * n, "W", 1.0) for n in (0, 1, 7, 8, 9, 17, 70, 300, 1500)] + [
        ("é" * 40, "W", 1.0),
        ("中" * 3, "W", 1.0),
        (None, "W", 1.0),
    ]
    expected = row_hashes(ON_HAND, on_hand(*rows))
    monkeypatch.setattr(sync, "_STR_BATCH_BYTES", 64)
    assert (row_hashes(ON_HAND, on_hand(*rows)) == expected).all()


def test_key_hashes_follow_the_key_columns_only() -> None:
    a = table(ITEMS, ("I1", "purchase", None, 3.0, 0.0, 0.0, 0.0, None))
    b = table(ITEMS, ("I1", "production", "G", 5.0, 1.0, 0.0, 0.0, "V"))
    assert (key_hashes(ITEMS, a) == key_hashes(ITEMS, b)).all()
    assert not (row_hashes(ITEMS, a) == row_hashes(ITEMS, b)).all()
    oh = on_hand(("A", "W", 1.0))
    assert (key_hashes(ON_HAND, oh) == row_hashes(ON_HAND, oh)).all()
    assert key_columns(ON_HAND) == ON_HAND.column_names
    assert key_columns(SALES) == ("order_id", "line_no")


def test_missing_or_ragged_columns_are_refused() -> None:
    t = on_hand(("A", "W", 1.0))
    with pytest.raises(ValueError, match="no column 'qty'"):
        row_hashes(ON_HAND, {"item_id": t["item_id"], "warehouse_id": t["warehouse_id"]})
    with pytest.raises(ValueError, match="different lengths"):
        row_hashes(ON_HAND, {**t, "qty": np.zeros(2)})


def test_grouping_survives_a_collision_of_the_first_word() -> None:
    words = np.array([[5, 1], [5, 2], [5, 1], [3, 9]], dtype=np.uint64)
    group, groups = sync._group(words)
    assert groups == 3
    assert group[0] == group[2]
    assert len({group[0], group[1], group[3]}) == 3


# --- the state file ------------------------------------------------------------------


def assert_same_state(a: SyncState, b: SyncState) -> None:
    assert (a.etag, a.version) == (b.etag, b.version)
    assert set(a.tables) == set(b.tables)
    for name, ta in a.tables.items():
        tb = b.tables[name]
        assert ta.row_hashes.shape == tb.row_hashes.shape
        assert (ta.row_hashes == tb.row_hashes).all(), name
        assert (ta.key_hashes == tb.key_hashes).all(), name
        assert list(ta.keys) == list(tb.keys) == list(key_columns(INPUT_TABLES[name]))
        for column, va in ta.keys.items():
            vb = tb.keys[column]
            assert va.dtype == vb.dtype, (name, column)
            kind = INPUT_TABLES[name].column(column).kind
            if kind is ColumnKind.STR:
                assert [type(v) for v in va] == [type(v) for v in vb]
                assert list(va) == list(vb), (name, column)
            elif kind is ColumnKind.DATE:
                assert (va.view(np.int64) == vb.view(np.int64)).all()
            else:
                assert np.array_equal(va, vb, equal_nan=True)


def test_state_round_trips_exactly(tmp_path: Path) -> None:
    tables = {
        "on_hand": on_hand(
            ("é", "中文", 1.5), (None, "", None), ("a\x1fb", "\x00", -0.0), ("A", "W", 1e300)
        ),
        "items": table(ITEMS, ("I\U0001f600", "purchase", None, 3.0, 0.0, 0.0, 0.0, None)),
        "forecasts": table(INPUT_TABLES["forecasts"], ("A", "W", D1, 1.0), ("A", "W", None, None)),
        "calendar_exceptions": table(INPUT_TABLES["calendar_exceptions"], ("C", None, 1.0)),
    }
    state = snapshot_state(tables, etag="etag-\u00e9-1", version=7)
    s = store(tmp_path)
    s.save(state)
    loaded = s.load()
    assert_same_state(state, loaded)
    assert loaded.tables["sales_lines"].rows == 0
    assert compute_delta(loaded, tables).is_empty
    assert [p.name for p in tmp_path.iterdir()] == [s.path.name]  # no temp file left


def test_state_of_empty_tables_round_trips(tmp_path: Path) -> None:
    state = snapshot_state({}, etag="", version=0)
    s = store(tmp_path)
    s.save(state)
    assert_same_state(state, s.load())


def test_save_replaces_the_previous_state(tmp_path: Path) -> None:
    s = store(tmp_path)
    s.save(snapshot_state({"on_hand": on_hand(("A", "W", 1.0))}, "e1", 1))
    s.save(snapshot_state({"on_hand": on_hand(("B", "W", 2.0))}, "e2", 2))
    loaded = s.load()
    assert (loaded.etag, loaded.version) == ("e2", 2)
    assert list(loaded.tables["on_hand"].keys["item_id"]) == ["B"]


def test_no_file_is_no_state(tmp_path: Path) -> None:
    with pytest.raises(StateUnavailable, match="no sync state yet"):
        store(tmp_path / "absent").load()


@pytest.mark.parametrize(
    "damage",
    [
        lambda raw: b"not a zip file at all",
        lambda raw: raw[: len(raw) // 2],
        lambda raw: b"",
        lambda raw: raw[:100] + bytes(200) + raw[300:],
    ],
)
def test_a_corrupt_file_is_no_state(tmp_path: Path, damage: Any) -> None:
    s = store(tmp_path)
    s.save(snapshot_state({"on_hand": on_hand(("A", "W", 1.0))}, "e", 1))
    s.path.write_bytes(damage(s.path.read_bytes()))
    with pytest.raises(StateUnavailable, match="unreadable"):
        s.load()


def test_a_file_with_pickled_objects_or_other_tables_is_no_state(tmp_path: Path) -> None:
    s = store(tmp_path)
    with open(s.path, "wb") as f:
        np.savez(f, format=np.array([1]), identity=np.array([object()], dtype=object))
    with pytest.raises(StateUnavailable, match="unreadable"):
        s.load()
    arrays = sync._encode(snapshot_state({}, "e", 1), s.identity)
    arrays["on_hand/columns"] = sync._utf8('["item_id"]')
    with open(s.path, "wb") as f:
        np.savez(f, **arrays)
    with pytest.raises(StateUnavailable, match="other columns"):
        s.load()
    arrays = sync._encode(snapshot_state({}, "e", 1), s.identity)
    arrays["format"] = np.array([99])
    with open(s.path, "wb") as f:
        np.savez(f, **arrays)
    with pytest.raises(StateUnavailable, match="format 99"):
        s.load()


def test_a_file_of_another_identity_is_no_state(tmp_path: Path) -> None:
    mine, theirs = store(tmp_path), store(tmp_path, plan="what-if")
    assert mine.path != theirs.path
    theirs.save(snapshot_state({}, "e", 1))
    os.replace(theirs.path, mine.path)
    with pytest.raises(StateUnavailable, match="another server, tenant, plan or database"):
        mine.load()


def test_the_file_name_and_content_hold_no_password(tmp_path: Path) -> None:
    a = store(tmp_path, database_url="postgresql://scm:secret1@db:5432/erp")
    b = store(tmp_path, database_url="postgresql://scm:other2@db:5432/erp")
    c = store(tmp_path, database_url="postgresql://scm@db:5432/erp2")
    assert a.path == b.path != c.path
    a.save(snapshot_state({}, "e", 1))
    assert b"secret1" not in a.path.read_bytes()
    assert "secret1" not in a.identity
    assert b.load().etag == "e"


def test_discard_forgets_the_state(tmp_path: Path) -> None:
    s = store(tmp_path)
    s.save(snapshot_state({}, "e", 1))
    s.discard()
    s.discard()
    with pytest.raises(StateUnavailable):
        s.load()


def test_default_state_dir() -> None:
    assert default_state_dir({"MASTERPLAN_STATE_DIR": "/s", "XDG_STATE_HOME": "/x"}) == Path("/s")
    assert default_state_dir({"XDG_STATE_HOME": "/x"}) == Path("/x/masterplan")
    assert default_state_dir({}) == Path.home() / ".local/state/masterplan"


# --- deltas: examples ----------------------------------------------------------------


def sales(*rows: tuple[str, float, float]) -> Table:
    """sales_lines rows (order_id, line_no, qty)."""
    return table(SALES, *((o, n, "I", "W", q, D1, 0.0) for o, n, q in rows))


def test_keyed_changes_are_upserts_and_gone_keys_deletes() -> None:
    state = snapshot_state({"sales_lines": sales(("S1", 1, 5.0), ("S1", 2, 5.0))}, "e1", 1)
    delta = compute_delta(state, {"sales_lines": sales(("S1", 1, 6.0), ("S2", 1, 1.0))})
    assert delta.fallback is None
    d = delta.tables["sales_lines"]
    assert list(d.upserts) == list(SALES.column_names)
    assert list(d.upserts["order_id"]) == ["S1", "S2"]
    assert list(d.upserts["qty"]) == [6.0, 1.0]
    assert list(d.deletes) == ["order_id", "line_no"]
    assert list(d.deletes["order_id"]) == ["S1"]
    assert list(d.deletes["line_no"]) == [2.0]
    assert (delta.upserted, delta.deleted) == (2, 1)
    assert not delta.is_empty
    assert all(t.upserted == t.deleted == 0 for n, t in delta.tables.items() if n != "sales_lines")


def test_unkeyed_multiplicity_counts() -> None:
    old = on_hand(("A", "W", 1.0), ("A", "W", 1.0), ("A", "W", 1.0), ("B", "W", 2.0))
    state = snapshot_state({"on_hand": old}, "e1", 1)
    delta = compute_delta(state, {"on_hand": on_hand(("A", "W", 1.0), ("B", "W", 3.0))})
    d = delta.tables["on_hand"]
    assert list(d.deletes) == list(ON_HAND.column_names)
    deleted = sorted(zip(d.deletes["item_id"], d.deletes["qty"], strict=True))
    assert deleted == [("A", 1.0), ("A", 1.0), ("B", 2.0)]
    assert list(d.upserts["item_id"]) == ["B"]
    assert list(d.upserts["qty"]) == [3.0]


def test_unchanged_data_gives_an_empty_delta_and_reordering_is_no_change() -> None:
    t = on_hand(("A", "W", 1.0), ("B", "W", 2.0), ("A", "W", 1.0))
    state = snapshot_state({"on_hand": t}, "e1", 1)
    assert compute_delta(state, {"on_hand": t}).is_empty
    shuffled = on_hand(("A", "W", 1.0), ("A", "W", 1.0), ("B", "W", 2.0))
    assert compute_delta(state, {"on_hand": shuffled}).is_empty


def test_no_state_upserts_everything_and_asks_for_a_snapshot() -> None:
    delta = compute_delta(None, {"on_hand": on_hand(("A", "W", 1.0))})
    assert delta.fallback is not None and "no sync state" in delta.fallback
    assert delta.upserted == 1 and not delta.is_empty
    assert compute_delta(None, {}).fallback is not None
    assert not compute_delta(None, {}).is_empty


def test_keys_held_twice_by_the_old_rows_are_deleted_or_replaced_by_one() -> None:
    old = sales(("S1", 1, 5.0), ("S1", 1, 6.0), ("S2", 1, 1.0), ("S2", 1, 1.0))
    state = snapshot_state({"sales_lines": old}, "e1", 1)
    delta = compute_delta(state, {"sales_lines": sales(("S1", 1, 6.0))})
    assert delta.fallback is None
    d = delta.tables["sales_lines"]
    assert list(d.upserts["qty"]) == [6.0]
    assert list(d.deletes["order_id"]) == ["S2"]


def test_changed_rows_sharing_a_key_ask_for_a_snapshot() -> None:
    state = snapshot_state({"sales_lines": sales(("S1", 1, 5.0))}, "e1", 1)
    delta = compute_delta(state, {"sales_lines": sales(("S1", 1, 5.0), ("S1", 1, 6.0))})
    assert delta.fallback is not None
    assert "'sales_lines'" in delta.fallback and "order_id='S1', line_no=1" in delta.fallback
    assert not delta.is_empty


def test_unchanged_rows_sharing_a_key_are_no_obstacle() -> None:
    rows = sales(("S1", 1, 5.0), ("S1", 1, 6.0), ("S2", 1, 1.0))
    state = snapshot_state({"sales_lines": rows}, "e1", 1)
    assert compute_delta(state, {"sales_lines": rows}).is_empty
    delta = compute_delta(state, {"sales_lines": sales(("S1", 1, 6.0), ("S1", 1, 5.0))})
    assert delta.fallback is None
    assert (delta.upserted, delta.deleted) == (0, 1)


def test_new_state_is_the_state_of_the_new_tables() -> None:
    old = {"on_hand": on_hand(("A", "W", 1.0))}
    new = {
        "on_hand": on_hand(("A", "W", 2.0)),
        "items": table(ITEMS, ("I", "p", None, 1.0, 0.0, 0.0, 0.0, None)),
    }
    delta = compute_delta(snapshot_state(old, "e1", 1), new)
    after = delta.new_state("e2", 2)
    assert (after.etag, after.version) == ("e2", 2)
    assert_same_state(after, snapshot_state(new, "e2", 2))
    assert compute_delta(after, new).is_empty


def test_unknown_tables_are_refused() -> None:
    with pytest.raises(ValueError, match="planned_orders"):
        compute_delta(None, {"planned_orders": {}})


# --- deltas: the property ------------------------------------------------------------

_VALUES: dict[ColumnKind, st.SearchStrategy[Any]] = {
    # Small alphabets: keys collide, rows repeat, and NULL, "" and "\x1f"
    # (the state file's separator) all occur.
    ColumnKind.STR: st.sampled_from([None, "", "a", "b", "é", "中", "a\x1f"]),
    ColumnKind.FLOAT: st.sampled_from([None, math.nan, 0.0, -0.0, 1.0, 2.5]),
    ColumnKind.INT: st.sampled_from([None, 0.0, 1.0, 2.0]),
    ColumnKind.DATE: st.sampled_from([None, D1, D2]),
}


def normal(kind: ColumnKind, value: Any) -> Any:
    """A value as the reference compares it: NULL (and NaN) as None, dates as dates."""
    if kind is ColumnKind.STR:
        return value
    if kind is ColumnKind.DATE:
        return value  # a date, or None for NaT (astype(object) made them so)
    return None if value is None or math.isnan(value) else float(value) + 0.0


def rows_of(spec: TableSpec, t: Mapping[str, np.ndarray], columns: Sequence[str]) -> list[Row]:
    kinds = [spec.column(c).kind for c in columns]
    cols = [list(np.asarray(t[c]).astype(object)) for c in columns]
    return (
        [
            tuple(normal(k, v) for k, v in zip(kinds, values, strict=True))
            for values in zip(*cols, strict=True)
        ]
        if cols
        else []
    )


def reference_apply(
    spec: TableSpec, old: list[Row], upserts: list[Row], deletes: list[Row]
) -> list[Row]:
    """The server's rules, with lists: deletes first, then upserts."""
    rows = list(old)
    if not spec.key:
        for d in deletes:
            rows.remove(d)  # one equal row; ValueError when there is none
        return rows + upserts
    at = [spec.column_names.index(c) for c in spec.key]

    def key(r: Row) -> Row:
        return tuple(r[i] for i in at)

    assert len(set(deletes)) == len(deletes), "a delta names a key once"
    assert len({key(u) for u in upserts}) == len(upserts), "a delta names a key once"
    for d in deletes:
        assert any(key(r) == d for r in rows), f"delete of a key not held: {d}"
        rows = [r for r in rows if key(r) != d]
    for u in upserts:
        hits = [i for i, r in enumerate(rows) if key(r) == key(u)]
        if hits:
            rows[hits[0]] = u
            rows = [r for i, r in enumerate(rows) if i not in hits[1:]]
        else:
            rows.append(u)
    return rows


def dedupe_by_key(spec: TableSpec, rows: list[Row]) -> list[Row]:
    at = [spec.column_names.index(c) for c in spec.key]
    seen: dict[Row, Row] = {}
    for r in rows:
        seen.setdefault(tuple(normal(spec.columns[i].kind, r[i]) for i in at), r)
    return list(seen.values())


@st.composite
def versions(draw: st.DrawFn, spec: TableSpec) -> tuple[list[Row], list[Row], bool]:
    """An old and a new version of a table's rows, the new one derived from the old.

    Rows are kept, dropped or changed in one column; new rows are added; the
    result is shuffled. Keyed tables get unique keys about half the time.
    Also says whether to hold the new table's strings as StringDType.
    """
    kinds = [c.kind for c in spec.columns]
    row = st.tuples(*(_VALUES[k] for k in kinds))
    old = draw(st.lists(row, max_size=6))
    new: list[Row] = []
    for r in old:
        action = draw(st.sampled_from(["keep", "keep", "drop", "change"]))
        if action == "keep":
            new.append(r)
        elif action == "change":
            i = draw(st.integers(0, len(r) - 1))
            new.append((*r[:i], draw(_VALUES[kinds[i]]), *r[i + 1 :]))
    new += draw(st.lists(row, max_size=3))
    new = list(draw(st.permutations(new)))
    if spec.key and draw(st.booleans()):
        old, new = dedupe_by_key(spec, old), dedupe_by_key(spec, new)
    return old, new, draw(st.booleans())


def build(spec: TableSpec, rows: list[Row], string_dtype: bool) -> Table:
    t = table(spec, *rows)
    if string_dtype:
        for c in spec.columns:
            if c.kind is ColumnKind.STR:
                t[c.name] = t[c.name].astype(StringDType(na_object=None))
    return t


def check_table(spec: TableSpec, old: list[Row], new: list[Row], delta: Delta) -> None:
    names = spec.column_names
    old_rows = rows_of(spec, table(spec, *old), names)
    new_rows = rows_of(spec, table(spec, *new), names)
    d = delta.tables[spec.name]
    assert list(d.upserts) == list(names)
    assert list(d.deletes) == list(key_columns(spec))
    if delta.fallback is not None and f"table {spec.name!r}" in delta.fallback:
        # Only a key that the new rows hold several times stops a delta.
        at = [names.index(c) for c in spec.key]
        keys = Counter(tuple(r[i] for i in at) for r in new_rows)
        assert max(keys.values()) > 1
        return
    upserts = rows_of(spec, d.upserts, names)
    deletes = rows_of(spec, d.deletes, key_columns(spec))
    assert Counter(reference_apply(spec, old_rows, upserts, deletes)) == Counter(new_rows)
    if Counter(old_rows) == Counter(new_rows):
        assert d.upserted == d.deleted == 0


@pytest.mark.parametrize("name", list(INPUT_TABLES))
@settings(max_examples=40)
@given(data=st.data())
def test_applying_the_delta_gives_the_new_rows(name: str, data: st.DataObject) -> None:
    spec = INPUT_TABLES[name]
    old, new, string_dtype = data.draw(versions(spec))
    state = snapshot_state({name: build(spec, old, False)}, "e1", 1)
    new_table = build(spec, new, string_dtype)
    delta = compute_delta(state, {name: new_table})
    check_table(spec, old, new, delta)
    assert compute_delta(state, {name: build(spec, old, string_dtype)}).is_empty
    if delta.fallback is None:
        assert compute_delta(delta.new_state("e2", 2), {name: new_table}).is_empty


@settings(max_examples=15)
@given(data=st.data())
def test_a_delta_of_every_table_at_once(data: st.DataObject) -> None:
    drawn = {name: data.draw(versions(spec)) for name, spec in INPUT_TABLES.items()}
    old = {n: build(INPUT_TABLES[n], o, False) for n, (o, _, _) in drawn.items()}
    new = {n: build(INPUT_TABLES[n], w, s) for n, (_, w, s) in drawn.items()}
    with tempfile.TemporaryDirectory() as directory:
        s = store(Path(directory))
        s.save(snapshot_state(old, "e1", 1))
        state = s.load()
    delta = compute_delta(state, new)
    for name, (o, w, _) in drawn.items():
        check_table(INPUT_TABLES[name], o, w, delta)
    assert compute_delta(state, old).is_empty
    assert delta.upserted == sum(table_length(t.upserts) for t in delta.tables.values())


@settings(max_examples=25)
@given(data=st.data())
def test_state_file_round_trips_random_tables(data: st.DataObject) -> None:
    tables = {}
    for name, spec in INPUT_TABLES.items():
        _, rows, string_dtype = data.draw(versions(spec))
        tables[name] = build(spec, rows, string_dtype)
    state = snapshot_state(tables, data.draw(st.text(max_size=5)), data.draw(st.integers(0, 2**62)))
    with tempfile.TemporaryDirectory() as directory:
        s = store(Path(directory))
        s.save(state)
        assert_same_state(state, s.load())


@settings(max_examples=30)
@given(data=st.data())
def test_the_server_applies_the_delta_to_the_new_rows(data: st.DataObject) -> None:
    """The same property through the server's own apply (server/delta.py)."""
    drawn = {name: data.draw(versions(spec)) for name, spec in INPUT_TABLES.items()}
    old = {n: build(INPUT_TABLES[n], o, False) for n, (o, _, _) in drawn.items()}
    new = {n: build(INPUT_TABLES[n], w, s) for n, (_, w, s) in drawn.items()}
    delta = compute_delta(snapshot_state(old, "e1", 1), new)
    sendable = {
        n: t
        for n, t in delta.tables.items()
        if delta.fallback is None or f"table {n!r}" not in delta.fallback
    }
    applied, _ = apply_delta(
        old,
        {n: t.upserts for n, t in sendable.items()},
        {n: t.deletes for n, t in sendable.items()},
    )
    for name in sendable:
        spec = INPUT_TABLES[name]
        got = rows_of(spec, applied[name], spec.column_names)
        want = rows_of(spec, new[name], spec.column_names)
        assert Counter(got) == Counter(want), name


def test_a_column_of_the_wrong_kind_is_named() -> None:
    t = on_hand(("A", "W", 1.0))
    t["item_id"] = np.array([5], dtype=object)
    with pytest.raises(ValueError, match="'on_hand', column 'item_id'"):
        row_hashes(ON_HAND, t)


# --- with the reader, on each backend ------------------------------------------------


def test_a_database_change_becomes_the_delta(
    engine: Engine, create_plain_tables: Callable[..., None], insert_rows: Callable[..., None]
) -> None:
    """What the reader reads twice hashes alike; a change reads as that change."""
    create_plain_tables()
    line = {"item_id": "I", "warehouse_id": "W", "requested_date": "2026-02-01", "priority": 0}
    insert_rows(
        "sales_lines",
        [
            {"order_id": "S1", "line_no": 1, "qty": 2.5, **line},
            {"order_id": "S1", "line_no": 2, "qty": 1, **line},
            {"order_id": "S2", "line_no": 1, "qty": 4, **line},
        ],
    )
    insert_rows("on_hand", [{"item_id": "I", "warehouse_id": "W", "qty": 3}] * 3)
    state = snapshot_state(read_input(engine), "e1", 1)
    assert compute_delta(state, read_input(engine)).is_empty

    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE sales_lines SET qty = 7 WHERE order_id = 'S1' AND line_no = 2")
        )
        conn.execute(sa.text("DELETE FROM sales_lines WHERE order_id = 'S2'"))
    insert_rows("sales_lines", [{"order_id": "S3", "line_no": 1, "qty": 1, **line}])
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM on_hand"))
    insert_rows("on_hand", [{"item_id": "I", "warehouse_id": "W", "qty": 3}])

    delta = compute_delta(state, read_input(engine))
    assert delta.fallback is None
    sales_delta = delta.tables["sales_lines"]
    assert sorted(
        zip(sales_delta.upserts["order_id"], sales_delta.upserts["qty"], strict=True)
    ) == [
        ("S1", 7.0),
        ("S3", 1.0),
    ]
    assert list(sales_delta.deletes["order_id"]) == ["S2"]
    assert delta.tables["on_hand"].deleted == 2
    assert delta.tables["on_hand"].upserted == 0
    assert (delta.upserted, delta.deleted) == (2, 3)
