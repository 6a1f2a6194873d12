"""Reading less for a delta (SPEC §6): keyed tables read by their change column.

Merged with the last sync's state, the keys of every row and the rows changed
since the watermark give bit for bit the state and the delta of a full read;
where they cannot (a key that entered the query's result without a change of
its change column, keys held twice), the table is read whole. On each
backend, an "ERP" with a ``write_date`` per row is read through a profile.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from masterplan.connector import sync
from masterplan.connector.changes import ALL_ROWS, SourceRead, read_source, since_value
from masterplan.connector.profile import ProfileError, SourceProfile, parse_profile
from masterplan.connector.reader import read_input
from masterplan.connector.sync import (
    ChangedTable,
    SyncState,
    SyncStore,
    TableState,
    UnusableChanges,
    Watermark,
    compute_delta,
    key_columns,
    key_hashes,
    merge_changes,
    snapshot_state,
)
from masterplan.contract.columns import Table, take
from masterplan.contract.rows import from_rows
from masterplan.contract.tables import INPUT_TABLES

SALES = INPUT_TABLES["sales_lines"]
MARGIN = dt.timedelta(minutes=60)


def sales(*rows: tuple[str, float, float]) -> Table:
    """Sales lines (order, line, qty), the other columns alike."""
    return from_rows(
        SALES,
        [
            {
                "order_id": o,
                "line_no": n,
                "item_id": "I",
                "warehouse_id": "W",
                "qty": q,
                "requested_date": "2026-02-01",
                "priority": 0,
            }
            for o, n, q in rows
        ],
    )


def keys_of(table: Table) -> Table:
    return {k: table[k] for k in SALES.key}


def ordered(ts: TableState) -> tuple[np.ndarray, np.ndarray, dict[str, list[Any]]]:
    """A table state in key-hash order (a full read's row order is the database's)."""
    order = np.lexsort(ts.key_hashes.T[::-1])
    keys = {c: [repr(v) for v in take(ts.keys, order)[c]] for c in ts.keys}
    return ts.key_hashes[order], ts.row_hashes[order], keys


def assert_same_table_state(a: TableState, b: TableState) -> None:
    ka, ra, va = ordered(a)
    kb, rb, vb = ordered(b)
    assert np.array_equal(ka, kb)
    assert np.array_equal(ra, rb)
    assert va == vb
    for column in a.keys:
        assert a.keys[column].dtype == b.keys[column].dtype, column


def rows_of(table: Mapping[str, np.ndarray], columns: Sequence[str]) -> list[tuple[str, ...]]:
    return sorted(zip(*(map(repr, table[c]) for c in columns), strict=True))


def by_change(old: Table, new: Table, changed: Table) -> tuple[SyncState, ChangedTable]:
    state = snapshot_state({"sales_lines": old}, "e1", 1)
    return state, merge_changes(SALES, state.tables["sales_lines"], keys_of(new), changed)


def assert_like_a_full_read(state: SyncState, merged: ChangedTable, new: Table) -> None:
    """The delta and the state after it are those of reading ``new`` whole."""
    full = compute_delta(state, {"sales_lines": new})
    partial = compute_delta(state, {}, {"sales_lines": merged})
    assert partial.fallback is None
    for name in INPUT_TABLES:
        want, got = full.tables[name], partial.tables[name]
        spec = INPUT_TABLES[name]
        assert rows_of(got.upserts, spec.column_names) == rows_of(want.upserts, spec.column_names)
        assert rows_of(got.deletes, key_columns(spec)) == rows_of(want.deletes, key_columns(spec))
    after_full, after_partial = full.new_state("e2", 2), partial.new_state("e2", 2)
    for name in INPUT_TABLES:
        assert_same_table_state(after_partial.tables[name], after_full.tables[name])


# --- merging with the state --------------------------------------------------------------


def test_changed_new_and_gone_rows_make_the_delta_and_state_of_a_full_read() -> None:
    old = sales(("S1", 1, 5.0), ("S1", 2, 5.0), ("S2", 1, 1.0), ("S3", 1, 2.0))
    new = sales(("S1", 1, 6.0), ("S1", 2, 5.0), ("S3", 1, 2.0), ("S4", 1, 9.0))
    # S1/1 changed, S4/1 is new, S3/1 was touched (written, content alike).
    changed = sales(("S1", 1, 6.0), ("S4", 1, 9.0), ("S3", 1, 2.0))
    state, merged = by_change(old, new, changed)
    assert (merged.rows_read, merged.keys_read) == (3, 4)
    assert rows_of(merged.delta.upserts, ("order_id", "line_no", "qty")) == rows_of(
        sales(("S1", 1, 6.0), ("S4", 1, 9.0)), ("order_id", "line_no", "qty")
    )
    assert list(merged.delta.deletes["order_id"]) == ["S2"]
    assert_like_a_full_read(state, merged, new)


def test_gone_keys_are_deletes_even_with_no_changed_row() -> None:
    old = sales(("S1", 1, 5.0), ("S2", 1, 1.0), ("S2", 2, 1.0))
    new = sales(("S1", 1, 5.0))
    state, merged = by_change(old, new, sales())
    assert merged.delta.upserted == 0
    assert sorted(
        zip(merged.delta.deletes["order_id"], merged.delta.deletes["line_no"], strict=True)
    ) == [
        ("S2", 1.0),
        ("S2", 2.0),
    ]
    assert_like_a_full_read(state, merged, new)


def test_a_new_key_outside_the_changed_rows_cannot_be_merged() -> None:
    old = sales(("S1", 1, 5.0))
    new = sales(("S1", 1, 5.0), ("S9", 1, 3.0))  # S9 entered without a change
    with pytest.raises(UnusableChanges, match=r"1 rows entered .*order_id='S9', line_no=1"):
        by_change(old, new, sales())


@pytest.mark.parametrize(
    ("old", "new", "changed", "why"),
    [
        ([("S1", 1, 5.0), ("S1", 1, 6.0)], [("S1", 1, 6.0)], [], "at the last sync"),
        ([("S1", 1, 5.0)], [("S1", 1, 5.0), ("S1", 1, 5.0)], [], "held by several rows"),
        ([("S1", 1, 5.0)], [("S1", 1, 5.0)], [("S1", 1, 6.0), ("S1", 1, 7.0)], "several"),
        ([("S1", 1, 5.0)], [("S1", 1, 5.0)], [("S8", 1, 1.0)], "does not return"),
    ],
)
def test_keys_held_twice_or_changed_rows_outside_the_keys_cannot_be_merged(
    old: list[tuple[str, float, float]],
    new: list[tuple[str, float, float]],
    changed: list[tuple[str, float, float]],
    why: str,
) -> None:
    with pytest.raises(UnusableChanges, match=why):
        by_change(sales(*old), sales(*new), sales(*changed))


def test_a_table_without_a_key_is_never_merged() -> None:
    spec = INPUT_TABLES["on_hand"]
    state = snapshot_state({}, "e", 1)
    with pytest.raises(ValueError, match="no key"):
        merge_changes(spec, state.tables["on_hand"], {}, from_rows(spec, []))


def test_key_hashes_of_the_key_columns_alone_are_those_of_whole_rows() -> None:
    t = sales(("S1", 1, 5.0), ("S2", 7, 1.0))
    t["order_id"][1] = None
    assert np.array_equal(sync._key_column_hashes(SALES, keys_of(t)), key_hashes(SALES, t))


def test_changed_tables_need_a_state_and_are_not_given_twice() -> None:
    state, merged = by_change(sales(("S1", 1, 5.0)), sales(("S1", 1, 5.0)), sales())
    with pytest.raises(ValueError, match="need a sync state"):
        compute_delta(None, {}, {"sales_lines": merged})
    with pytest.raises(ValueError, match="both whole and by change"):
        compute_delta(state, {"sales_lines": sales()}, {"sales_lines": merged})


_line = st.tuples(
    st.sampled_from(["S1", "S2", "S3", "S4"]),
    st.integers(1, 4).map(float),
    st.sampled_from([1.0, 2.0, float("nan")]),
)


@settings(max_examples=150, deadline=None)
@given(
    old=st.lists(_line, max_size=12, unique_by=lambda r: r[:2]),
    data=st.data(),
)
def test_any_change_read_by_change_column_is_what_a_full_read_gives(
    old: list[tuple[str, float, float]], data: st.DataObject
) -> None:
    """Rows kept, changed, deleted and added at random; the changed rows read
    are the changed and added ones and any kept ones the change column
    happened to catch (rows written within the margin, NULL change values)."""
    kept, changed = [], []
    for row in old:
        fate = data.draw(st.sampled_from(["keep", "touch", "change", "delete"]))
        if fate == "delete":
            continue
        if fate == "change":
            row = (row[0], row[1], data.draw(st.sampled_from([3.0, 4.0, float("nan")])))
        kept.append(row)
        if fate != "keep":
            changed.append(row)
    taken = {r[:2] for r in kept}
    added = [
        r
        for r in data.draw(st.lists(_line, max_size=5, unique_by=lambda r: r[:2]))
        if r[:2] not in taken
    ]
    new = kept + added
    order = data.draw(st.permutations(range(len(new))))
    new = [new[i] for i in order]
    state, merged = by_change(sales(*old), sales(*new), sales(*changed, *added))
    assert_like_a_full_read(state, merged, sales(*new))


# --- watermarks ----------------------------------------------------------------------------


def test_since_is_the_watermark_less_the_margin_in_its_own_kind() -> None:
    at = dt.datetime(2026, 1, 5, 10, 30, 15, 250000)
    assert since_value(f"datetime:{at.isoformat()}", MARGIN) == at - MARGIN
    aware = dt.datetime(2026, 1, 5, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert since_value(f"datetime:{aware.isoformat()}", MARGIN) == aware - MARGIN
    assert since_value(f"datetime:{at.isoformat()}", dt.timedelta(0)) == at
    # A date goes back by whole days; with no margin, not at all.
    assert since_value("date:2026-01-05", MARGIN) == dt.date(2026, 1, 4)
    assert since_value("date:2026-01-05", dt.timedelta(0)) == dt.date(2026, 1, 5)
    # SQLite text keeps its form, to the second at most, cut down.
    assert since_value("text:2026-01-05 10:30:15.250", MARGIN) == "2026-01-05 09:30:15"
    assert since_value("text:2026-01-05T10:30", MARGIN) == "2026-01-05T09:30"
    assert since_value("text:2026-01-05", MARGIN) == "2026-01-04"
    # A read that saw no value reads every row next time; garbage is no watermark.
    assert since_value("none:", MARGIN) is ALL_ROWS
    assert since_value("datetime:yesterday", MARGIN) is None
    assert since_value("number:17", MARGIN) is None
    assert since_value("datetime:0001-01-01T00:10:00", MARGIN) is None


def test_watermarks_round_trip_and_an_older_file_without_them_loads(tmp_path: Path) -> None:
    store = SyncStore(tmp_path, "srv:1", "acme", "main", "sqlite:///x.db")
    marks = {"items": Watermark("abc", "datetime:2026-01-05T10:00:00")}
    state = snapshot_state({"sales_lines": sales(("S1", 1, 5.0))}, "e1", 1, marks)
    store.save(state)
    assert store.load().watermarks == marks

    arrays = sync._encode(state, store.identity)
    del arrays["watermarks"]
    with store.path.open("wb") as f:
        np.savez(f, **arrays)  # type: ignore[arg-type]
    loaded = store.load()
    assert loaded.watermarks == {}
    assert compute_delta(loaded, {"sales_lines": sales(("S1", 1, 5.0))}).is_empty

    arrays["watermarks"] = sync._utf8('{"items": "no pair"}')
    with store.path.open("wb") as f:
        np.savez(f, **arrays)  # type: ignore[arg-type]
    with pytest.raises(sync.StateUnavailable, match="watermark"):
        store.load()


@pytest.mark.parametrize(
    ("line", "margin"),
    [("", 60), ("change_margin_minutes = 5", 5), ("change_margin_minutes = 0", 0)],
)
def test_the_margin_is_a_profile_setting(line: str, margin: int) -> None:
    assert parse_profile(erp_profile(head=line), "erp.toml").change_margin_minutes == margin


@pytest.mark.parametrize("value", ["-1", '"60"', "true", "1.5"])
def test_a_margin_that_is_no_whole_number_of_minutes_is_refused(value: str) -> None:
    with pytest.raises(ProfileError, match="change_margin_minutes must be a whole number"):
        parse_profile(erp_profile(head=f"change_margin_minutes = {value}"), "erp.toml")


# --- through a profile, on each backend ----------------------------------------------------


def erp_profile(head: str = "", sales_change: str = "l.write_date") -> str:
    """Items, sales lines (of confirmed orders) and on-hand from the ERP's
    tables, each with a change column; every other table empty."""
    queries = {
        "items": (
            "SELECT id AS item_id, kind AS default_order_type, NULL AS coverage_group_id, "
            "lead_days AS lead_time_days, 0 AS min_order_qty, 0 AS max_order_qty, "
            "0 AS multiple_qty, NULL AS default_vendor_id, write_date FROM erp_items"
        ),
        "sales_lines": (
            "SELECT l.ref AS order_id, l.lno AS line_no, l.product AS item_id, "
            "l.wh AS warehouse_id, l.qty AS qty, l.due AS requested_date, 0 AS priority, "
            f"{sales_change} AS changed_at FROM erp_lines l "
            "JOIN erp_orders o ON o.ref = l.ref WHERE o.state = 'sale'"
        ),
        "on_hand": (
            "SELECT product AS item_id, wh AS warehouse_id, qty, write_date FROM erp_stock"
        ),
    }
    changes = {"items": "write_date", "sales_lines": "changed_at", "on_hand": "write_date"}
    parts = [f'[profile]\nname = "erp"\n{head}\n']
    for name in INPUT_TABLES:
        if name in queries:
            parts.append(
                f'[tables.{name}]\nquery = """\n{queries[name]}\n"""\n'
                f'change_column = "{changes[name]}"\n'
            )
        else:
            parts.append(f"[tables.{name}]\nempty = true\n")
    return "\n".join(parts)


def stamp(engine: Engine) -> str:
    return {"sqlite": "TEXT", "postgresql": "TIMESTAMP"}.get(engine.dialect.name, "DATETIME")


def build_erp(engine: Engine) -> None:
    ts, text = stamp(engine), "VARCHAR(40)"
    old = "2025-12-01 00:00:00"
    with engine.begin() as conn:
        for ddl in (
            f"CREATE TABLE erp_items (id {text}, kind {text}, lead_days INTEGER, write_date {ts})",
            f"CREATE TABLE erp_orders (ref {text}, state {text}, write_date {ts})",
            f"CREATE TABLE erp_lines (ref {text}, lno INTEGER, product {text}, wh {text}, "
            f"qty NUMERIC(12, 3), due DATE, write_date {ts})",
            f"CREATE TABLE erp_stock (product {text}, wh {text}, qty NUMERIC(12, 3), "
            f"write_date {ts})",
        ):
            conn.exec_driver_sql(ddl)
        execute(
            conn,
            "INSERT INTO erp_items VALUES (:id, 'purchase', :lead, :w)",
            [{"id": f"I{i}", "lead": i, "w": old} for i in range(1, 6)],
        )
        execute(
            conn,
            "INSERT INTO erp_orders VALUES (:ref, :state, :w)",
            [
                {"ref": "SO1", "state": "sale", "w": old},
                {"ref": "SO2", "state": "sale", "w": old},
                {"ref": "SO3", "state": "draft", "w": old},
            ],
        )
        execute(
            conn,
            "INSERT INTO erp_lines VALUES (:ref, :line, 'I1', 'W', :qty, '2026-02-01', :w)",
            [
                {"ref": ref, "line": line, "qty": line * 2, "w": old}
                for ref in ("SO1", "SO2", "SO3")
                for line in (1, 2, 3)
            ],
        )
        execute(
            conn,
            "INSERT INTO erp_stock VALUES ('I1', 'W', 4, :w)",
            [{"w": old}],
        )
        # The latest change: the watermark of items after the first read.
        execute(conn, "UPDATE erp_items SET write_date = :w WHERE id = 'I5'", [{"w": LATEST}])
        execute(conn, "UPDATE erp_lines SET write_date = :w WHERE ref = 'SO2'", [{"w": LATEST}])


LATEST = "2026-01-05 10:00:00"


def execute(conn: sa.Connection, sql: str, rows: list[dict[str, Any]]) -> None:
    conn.execute(sa.text(sql), rows)


def first_sync(engine: Engine, profile: SourceProfile) -> tuple[SourceRead, SyncState]:
    got = read_source(engine, profile)
    assert got.complete and not got.read_whole
    delta = compute_delta(None, got.tables, watermarks=got.watermarks)
    return got, delta.new_state("e1", 1)


def full_state(engine: Engine, profile: SourceProfile) -> SyncState:
    return snapshot_state(read_input(engine, source=profile), "e2", 2)


def assert_state_of_a_full_read(got: SourceRead, state: SyncState, full: SyncState) -> None:
    after = compute_delta(state, got.tables, got.changed, got.watermarks).new_state("e2", 2)
    for name in INPUT_TABLES:
        assert_same_table_state(after.tables[name], full.tables[name])


def test_a_read_by_change_column_gives_the_state_of_a_full_read(engine: Engine) -> None:
    build_erp(engine)
    profile = parse_profile(erp_profile(), "erp.toml")
    got, state = first_sync(engine, profile)
    assert got.rows_read["sales_lines"] == 6 and got.rows_read["items"] == 5
    # Keyed tables with a change column have a watermark: the database's own value.
    assert set(state.watermarks) == {"items", "sales_lines"}
    assert since_value(state.watermarks["items"].value, dt.timedelta(0)) in (
        dt.datetime.fromisoformat(LATEST),
        LATEST,
    )

    later = "2026-01-06 09:00:00"
    within_margin = "2026-01-05 09:15:00"  # before the watermark, by less than the margin
    with engine.begin() as conn:
        execute(
            conn,
            "UPDATE erp_items SET lead_days = 9, write_date = :w WHERE id = 'I2'",
            [{"w": later}],
        )
        execute(conn, "DELETE FROM erp_items WHERE id = 'I3'", [{}])
        execute(conn, "INSERT INTO erp_items VALUES ('I7', 'production', 2, :w)", [{"w": later}])
        # Committed late: written before the last read's latest value.
        execute(
            conn,
            "UPDATE erp_items SET lead_days = 11, write_date = :w WHERE id = 'I4'",
            [{"w": within_margin}],
        )
        execute(
            conn,
            "UPDATE erp_lines SET qty = 99, write_date = NULL WHERE ref = 'SO1' AND lno = 2",
            [{}],
        )
        execute(conn, "DELETE FROM erp_lines WHERE ref = 'SO1' AND lno = 3", [{}])
        execute(conn, "UPDATE erp_stock SET qty = 5", [{}])

    got = read_source(engine, profile, state)
    assert sorted(got.changed) == ["items", "sales_lines"]
    assert got.read_whole == {"on_hand": "it has no key"}
    # items: I2, I4, I7 and I5 (the watermark's own row); sales: the NULL one
    # and SO2's three lines (at the watermark).
    assert got.rows_read["items"] == 4
    assert got.rows_read["sales_lines"] == 4
    assert got.keys_read == {"items": 5, "sales_lines": 5}
    assert got.table_rows["sales_lines"] == 5 and got.table_rows["on_hand"] == 1
    full = full_state(engine, profile)
    assert_state_of_a_full_read(got, state, full)
    delta = compute_delta(state, got.tables, got.changed, got.watermarks)
    upserted = delta.tables["items"].upserts
    assert sorted(zip(upserted["item_id"], upserted["lead_time_days"], strict=True)) == [
        ("I2", 9.0),
        ("I4", 11.0),
        ("I7", 2.0),
    ]
    assert list(delta.tables["items"].deletes["item_id"]) == ["I3"]
    assert delta.tables["sales_lines"].upserted == 1 and delta.tables["sales_lines"].deleted == 1
    # The watermark moves to the latest value read.
    new = delta.new_state("e2", 2)
    assert since_value(new.watermarks["items"].value, dt.timedelta(0)) in (
        dt.datetime.fromisoformat(later),
        later,
    )
    assert new.watermarks["sales_lines"] == state.watermarks["sales_lines"]


def test_the_margin_decides_how_far_back_a_late_commit_is_read(engine: Engine) -> None:
    build_erp(engine)
    wide = parse_profile(erp_profile("change_margin_minutes = 120"), "erp.toml")
    none = parse_profile(erp_profile("change_margin_minutes = 0"), "erp.toml")
    _, state = first_sync(engine, wide)
    assert state.watermarks == first_sync(engine, none)[1].watermarks  # (same queries)
    with engine.begin() as conn:
        execute(
            conn,
            "UPDATE erp_items SET lead_days = 12, write_date = :w WHERE id = 'I1'",
            [{"w": "2026-01-05 08:30:00"}],
        )
    assert read_source(engine, wide, state).rows_read["items"] == 2  # I1 and I5
    assert_state_of_a_full_read(read_source(engine, wide, state), state, full_state(engine, wide))
    # Without a margin the late commit is missed: the change column is trusted.
    missed = read_source(engine, none, state)
    assert missed.rows_read["items"] == 1
    assert missed.changed["items"].delta.upserted == 0


def test_a_row_that_entered_through_a_change_elsewhere_reads_the_table_whole(
    engine: Engine,
) -> None:
    build_erp(engine)
    # The lines' own write_date only: confirming an order changes no line.
    profile = parse_profile(erp_profile(), "erp.toml")
    _, state = first_sync(engine, profile)
    with engine.begin() as conn:
        execute(conn, "UPDATE erp_orders SET state = 'sale' WHERE ref = 'SO3'", [{}])
    got = read_source(engine, profile, state)
    assert "sales_lines" not in got.changed and "items" in got.changed
    assert "3 rows entered the query's result" in got.read_whole["sales_lines"]
    assert got.rows_read["sales_lines"] == 9
    assert_state_of_a_full_read(got, state, full_state(engine, profile))


def test_a_changed_query_or_an_old_state_reads_whole_and_records_watermarks(
    engine: Engine,
) -> None:
    build_erp(engine)
    profile = parse_profile(erp_profile(), "erp.toml")
    _, state = first_sync(engine, profile)
    other = parse_profile(erp_profile().replace("lead_days AS", "lead_days + 0 AS"), "erp.toml")
    got = read_source(engine, other, state)
    assert "items" not in got.changed and "sales_lines" in got.changed
    assert "query" in got.read_whole["items"]
    assert "items" in got.watermarks

    old = SyncState(state.etag, state.version, state.tables)  # a file without watermarks
    got = read_source(engine, profile, old)
    assert got.complete
    assert set(got.read_whole) == {"items", "sales_lines", "on_hand"}
    assert set(got.watermarks) == {"items", "sales_lines"}


def test_a_table_without_change_values_reads_all_its_rows_by_change(engine: Engine) -> None:
    build_erp(engine)
    with engine.begin() as conn:
        execute(conn, "UPDATE erp_items SET write_date = NULL", [{}])
    profile = parse_profile(erp_profile(), "erp.toml")
    _, state = first_sync(engine, profile)
    assert state.watermarks["items"].value == "none:"
    with engine.begin() as conn:
        execute(conn, "UPDATE erp_items SET lead_days = 30 WHERE id = 'I1'", [{}])
    got = read_source(engine, profile, state)
    assert got.rows_read["items"] == 5
    assert got.changed["items"].delta.upserted == 1
    assert_state_of_a_full_read(got, state, full_state(engine, profile))
