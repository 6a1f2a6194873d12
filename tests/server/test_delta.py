"""server.delta: a delta's deletes then upserts, matched by key without a loop over rows.

Table-driven cases for keyed and unkeyed tables, NULL keys and the refusals,
and a property: for any old and new table, the delta that the connector
would compute from the two turns the old one into the new one.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from masterplan.contract.columns import Table, dtype_of, table_length
from masterplan.contract.rows import from_rows, to_rows
from masterplan.contract.tables import INPUT_TABLES
from masterplan.server.delta import (
    DeltaCounts,
    apply_delta,
    delete_spec,
    identity,
    result_nbytes,
)
from masterplan.server.errors import InvalidArgument

D1, D2 = dt.date(2026, 2, 1), dt.date(2026, 2, 2)


def t(name: str, *rows: Mapping[str, Any]) -> Table:
    return from_rows(INPUT_TABLES[name], rows)


def keys(name: str, *rows: Mapping[str, Any]) -> Table:
    """Delete rows of ``name``: the columns that name a row only."""
    return from_rows(delete_spec(INPUT_TABLES[name]), rows)


def rows(table: Table, *columns: str) -> list[tuple[Any, ...]]:
    return [tuple(r[c] for c in columns) for r in to_rows(table)]


def sales(order: str | None, line: float | None, qty: float) -> dict[str, Any]:
    return {"order_id": order, "line_no": line, "item_id": "I", "warehouse_id": "W", "qty": qty}


def on_hand(item: str | None, qty: float | None) -> dict[str, Any]:
    return {"item_id": item, "warehouse_id": "W", "qty": qty}


# -- keyed tables -----------------------------------------------------------------
def test_keyed_replace_in_place_add_appended_delete_removed() -> None:
    old = {"sales_lines": t("sales_lines", sales("A", 1, 1), sales("A", 2, 2), sales("B", 1, 3))}
    new, counts = apply_delta(
        old,
        {"sales_lines": t("sales_lines", sales("C", 1, 9), sales("A", 2, 20))},
        {"sales_lines": keys("sales_lines", {"order_id": "A", "line_no": 1})},
    )
    assert rows(new["sales_lines"], "order_id", "line_no", "qty") == [
        ("A", 2, 20),  # replaced in its place
        ("B", 1, 3),
        ("C", 1, 9),  # new rows appended
    ]
    assert counts.upserted == {"sales_lines": 2}
    assert counts.replaced == {"sales_lines": 1}
    assert counts.deleted == {"sales_lines": 1}
    assert (counts.rows_upserted, counts.rows_deleted) == (2, 1)
    # The rows that are old rows unchanged, and which: what a net change
    # checks again is the rest.
    assert counts.sources["sales_lines"].tolist() == [-1, 2, -1]


def test_unchanged_tables_are_the_same_objects_and_every_table_is_returned() -> None:
    items = t("items", {"item_id": "I"})
    warehouses = t("warehouses", {"warehouse_id": "W", "site_id": "S"})
    old = {"items": items, "warehouses": warehouses}
    new, counts = apply_delta(
        old, {"items": t("items"), "sales_lines": t("sales_lines", sales("A", 1, 1))}, {}
    )
    assert set(new) == set(INPUT_TABLES)
    assert new["items"] is items  # zero rows of a table change nothing
    assert new["warehouses"] is warehouses
    assert set(counts.upserted) == {"sales_lines"}
    assert rows(new["sales_lines"], "order_id") == [("A",)]


def test_a_changed_table_keeps_every_column_and_its_dtype() -> None:
    old = {"boms": t("boms", {"bom_id": "B1", "item_id": "FG", "valid_from": D1})}
    new, _ = apply_delta(old, {"boms": t("boms", {"bom_id": "B2", "item_id": "FG"})}, {})
    spec = INPUT_TABLES["boms"]
    assert list(new["boms"]) == list(spec.column_names)
    for c in spec.columns:
        assert new["boms"][c.name].dtype == dtype_of(c.kind), c.name
    assert rows(new["boms"], "bom_id", "valid_from") == [("B1", D1), ("B2", None)]


def test_a_delete_then_an_upsert_of_one_key_re_adds_the_row_at_the_end() -> None:
    old = {"items": t("items", {"item_id": "X", "lead_time_days": 1}, {"item_id": "Y"})}
    new, counts = apply_delta(
        old,
        {"items": t("items", {"item_id": "X", "lead_time_days": 5})},
        {"items": keys("items", {"item_id": "X"})},
    )
    assert rows(new["items"], "item_id", "lead_time_days") == [("Y", None), ("X", 5)]
    assert counts.deleted == {"items": 1}
    assert counts.replaced == {"items": 0}


def test_a_delete_chunk_may_carry_whole_rows() -> None:
    old = {"items": t("items", {"item_id": "X", "lead_time_days": 1}, {"item_id": "Y"})}
    # The other columns are not compared: the key names the row.
    new, _ = apply_delta(old, {}, {"items": t("items", {"item_id": "X", "lead_time_days": 7})})
    assert rows(new["items"], "item_id") == [("Y",)]


def test_null_keys_equal_null_keys() -> None:
    old = {
        "sales_lines": t("sales_lines", sales(None, None, 1), sales("A", None, 2)),
        "calendar_exceptions": t(
            "calendar_exceptions",
            {"calendar_id": "C", "day": None, "is_working": 0},
            {"calendar_id": "C", "day": D1, "is_working": 0},
        ),
    }
    new, counts = apply_delta(
        old,
        {"sales_lines": t("sales_lines", sales(None, None, 10))},
        {
            "sales_lines": keys("sales_lines", {"order_id": "A", "line_no": None}),
            "calendar_exceptions": keys("calendar_exceptions", {"calendar_id": "C", "day": None}),
        },
    )
    assert rows(new["sales_lines"], "order_id", "line_no", "qty") == [(None, None, 10)]
    assert counts.replaced == {"sales_lines": 1, "calendar_exceptions": 0}
    assert rows(new["calendar_exceptions"], "day") == [(D1,)]


def test_numbers_match_by_exact_value() -> None:
    old = {"sales_lines": t("sales_lines", sales("A", 1.0, 1), sales("A", -0.0, 2))}
    new, counts = apply_delta(
        old,
        {"sales_lines": t("sales_lines", sales("A", 1.0000000001, 5), sales("A", 0.0, 6))},
        {},
    )
    assert counts.replaced == {"sales_lines": 1}  # -0.0 is 0.0; 1.0000000001 is not 1
    assert rows(new["sales_lines"], "line_no", "qty") == [(1, 1), (0, 6), (1.0000000001, 5)]


def test_a_key_the_data_set_holds_twice_ends_as_one_row() -> None:
    # The engine reports such rows as DUPLICATE_KEY; a delta can still fix them.
    old = {"items": t("items", {"item_id": "X"}, {"item_id": "Y"}, {"item_id": "X"})}
    new, counts = apply_delta(old, {"items": t("items", {"item_id": "X", "lead_time_days": 3})}, {})
    assert rows(new["items"], "item_id", "lead_time_days") == [("X", 3), ("Y", None)]
    new, counts = apply_delta(old, {}, {"items": keys("items", {"item_id": "X"})})
    assert rows(new["items"], "item_id") == [("Y",)]
    assert counts.deleted == {"items": 2}


# -- tables without a key ---------------------------------------------------------
def test_unkeyed_one_delete_row_removes_one_equal_row() -> None:
    old = {"on_hand": t("on_hand", on_hand("I", 5), on_hand("J", 1), on_hand("I", 5))}
    new, counts = apply_delta(
        old,
        {"on_hand": t("on_hand", on_hand("I", 5), on_hand("K", 2))},
        {"on_hand": t("on_hand", on_hand("I", 5))},
    )
    # The first equal row goes; upserts of a table without a key are added.
    assert rows(new["on_hand"], "item_id", "qty") == [("J", 1), ("I", 5), ("I", 5), ("K", 2)]
    assert (counts.deleted, counts.upserted) == ({"on_hand": 1}, {"on_hand": 2})


def test_unkeyed_deleting_more_equal_rows_than_held_names_the_row_in_excess() -> None:
    old = {"on_hand": t("on_hand", on_hand("I", 5), on_hand("I", 5), on_hand(None, None))}
    dels = t("on_hand", on_hand(None, None), on_hand("I", 5), on_hand("I", 5), on_hand("I", 5))
    with pytest.raises(InvalidArgument, match=r"on_hand: delete row 3 names no row") as err:
        apply_delta(old, {}, {"on_hand": dels})
    assert err.value.metadata["table"] == "on_hand"
    assert err.value.metadata["row"] == "3"
    assert err.value.metadata["key"] == "item_id='I', warehouse_id='W', qty=5"
    new, _ = apply_delta(old, {}, {"on_hand": {c: v[:3] for c, v in dels.items()}})
    assert rows(new["on_hand"], "item_id") == []


def test_forecasts_identity_includes_the_date() -> None:
    fc = {"item_id": "I", "warehouse_id": "W", "forecast_date": D1, "qty": 4}
    old = {"forecasts": t("forecasts", fc)}
    with pytest.raises(InvalidArgument, match="forecast_date=2026-02-02"):
        apply_delta(old, {}, {"forecasts": t("forecasts", fc | {"forecast_date": D2})})


# -- refusals ---------------------------------------------------------------------
def test_a_delete_naming_no_row_is_refused_with_table_row_and_key() -> None:
    old = {"sales_lines": t("sales_lines", sales("A", 1, 1))}
    dels = keys("sales_lines", {"order_id": "A", "line_no": 1}, {"order_id": "Z", "line_no": 7})
    with pytest.raises(InvalidArgument) as err:
        apply_delta(old, {}, {"sales_lines": dels})
    assert "sales_lines: delete row 1 names no row" in str(err.value)
    assert err.value.metadata == {
        "field": "chunk",
        "table": "sales_lines",
        "row": "1",
        "key": "order_id='Z', line_no=7",
        "change": "delete",
    }


@pytest.mark.parametrize("change", ["upsert", "delete"])
def test_two_rows_with_one_key_in_one_delta_are_refused_naming_both(change: str) -> None:
    old = {"sales_lines": t("sales_lines", sales("A", 1, 1), sales("B", 1, 1))}
    twice = t("sales_lines", sales("B", 1, 1), sales("A", 1, 2), sales("C", 1, 2), sales("A", 1, 3))
    delta: dict[str, Table] = {"sales_lines": twice}
    ups, dels = (delta, {}) if change == "upsert" else ({}, delta)
    with pytest.raises(InvalidArgument, match=rf"{change} rows 1 and 3 have the same key") as err:
        apply_delta(old, ups, dels)
    assert err.value.metadata["key"] == "order_id='A', line_no=1"
    assert (err.value.metadata["first_row"], err.value.metadata["row"]) == ("1", "3")


def test_unknown_tables_and_missing_columns_are_refused() -> None:
    with pytest.raises(InvalidArgument, match="unknown table 'nope'"):
        apply_delta({}, {"nope": {}}, {})
    with pytest.raises(InvalidArgument, match="delete rows lack column 'line_no'"):
        apply_delta({}, {}, {"sales_lines": {"order_id": np.array(["A"], dtype=object)}})


def test_a_refused_delta_leaves_the_tables_untouched() -> None:
    table = t("sales_lines", sales("A", 1, 1))
    before = {c: v.copy() for c, v in table.items()}
    with pytest.raises(InvalidArgument):
        apply_delta(
            {"sales_lines": table},
            {"sales_lines": t("sales_lines", sales("A", 1, 5))},
            {"sales_lines": keys("sales_lines", {"order_id": "Q", "line_no": 1})},
        )
    for c, v in before.items():
        np.testing.assert_array_equal(table[c], v)


def test_result_nbytes_counts_the_changed_tables_only() -> None:
    items = t("items", {"item_id": "X"})
    sales_ = t("sales_lines", sales("A", 1, 1))
    assert result_nbytes({"items": items, "sales_lines": sales_}, {}, {}) == 0
    assert result_nbytes({"items": items}, {"items": items}, {}) > 0


def test_the_identity_of_a_row() -> None:
    assert identity(INPUT_TABLES["sales_lines"]) == ("order_id", "line_no")
    assert identity(INPUT_TABLES["items"]) == ("item_id",)
    assert identity(INPUT_TABLES["on_hand"]) == ("item_id", "warehouse_id", "qty")
    assert (
        delete_spec(INPUT_TABLES["forecasts"]).column_names
        == INPUT_TABLES["forecasts"].column_names
    )


# -- the property -----------------------------------------------------------------
_NAMES = st.sampled_from(["A", "B", "C", None])
_NUMBERS = st.sampled_from([0.0, -0.0, 1.0, 2.5, None])
_DATES = st.sampled_from([D1, D2, None])


def _sales_rows() -> st.SearchStrategy[list[dict[str, Any]]]:
    row = st.fixed_dictionaries(
        {
            "order_id": _NAMES,
            "line_no": _NUMBERS,
            "item_id": _NAMES,
            "qty": _NUMBERS,
            "requested_date": _DATES,
        }
    )
    return st.lists(row, max_size=12)


def _on_hand_rows() -> st.SearchStrategy[list[dict[str, Any]]]:
    row = st.fixed_dictionaries({"item_id": _NAMES, "warehouse_id": _NAMES, "qty": _NUMBERS})
    return st.lists(row, max_size=12)


def _forecast_rows() -> st.SearchStrategy[list[dict[str, Any]]]:
    row = st.fixed_dictionaries({"item_id": _NAMES, "forecast_date": _DATES, "qty": _NUMBERS})
    return st.lists(row, max_size=10)


def _as_tuple(name: str, row: Mapping[str, Any], columns: tuple[str, ...]) -> tuple[Any, ...]:
    """A row as comparable values: NULL is None, -0.0 is 0.0."""
    spec = INPUT_TABLES[name]
    out = []
    for c in columns:
        v = row.get(c)
        if v is not None and spec.column(c).kind.value in ("float", "int"):
            v = float(v) + 0.0
        out.append(v)
    return tuple(out)


def _unique_keys(name: str, rows_: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows with the first of each key (a keyed table of the SCM database)."""
    key = identity(INPUT_TABLES[name])
    seen: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in rows_:
        seen.setdefault(_as_tuple(name, r, key), r)
    return list(seen.values())


def _connector_delta(
    name: str, old: list[dict[str, Any]], new: list[dict[str, Any]], resend: bool
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """What a connector sends to turn ``old`` into ``new``: (upserts, deletes).

    Keyed: deletes for keys gone, upserts for rows new or changed (all of
    ``new`` when ``resend``). Without a key: the multiset differences.
    """
    spec = INPUT_TABLES[name]
    every = spec.column_names
    if spec.key:
        old_by_key = {_as_tuple(name, r, spec.key): r for r in old}
        new_keys = {_as_tuple(name, r, spec.key) for r in new}
        deletes = [r for k, r in old_by_key.items() if k not in new_keys]
        upserts = [
            r
            for r in new
            if resend
            or _as_tuple(name, r, spec.key) not in old_by_key
            or _as_tuple(name, old_by_key[_as_tuple(name, r, spec.key)], every)
            != _as_tuple(name, r, every)
        ]
        return upserts, [{c: r.get(c) for c in spec.key} for r in deletes]
    old_count = Counter(_as_tuple(name, r, every) for r in old)
    new_count = Counter(_as_tuple(name, r, every) for r in new)
    deletes = [dict(zip(every, k, strict=True)) for k in (old_count - new_count).elements()]
    upserts = [dict(zip(every, k, strict=True)) for k in (new_count - old_count).elements()]
    return upserts, deletes


@settings(max_examples=150)
@given(
    old_sales=_sales_rows(),
    new_sales=_sales_rows(),
    old_stock=_on_hand_rows(),
    new_stock=_on_hand_rows(),
    old_fc=_forecast_rows(),
    new_fc=_forecast_rows(),
    resend=st.booleans(),
)
def test_the_connector_delta_of_old_and_new_turns_old_into_new(
    old_sales: list[dict[str, Any]],
    new_sales: list[dict[str, Any]],
    old_stock: list[dict[str, Any]],
    new_stock: list[dict[str, Any]],
    old_fc: list[dict[str, Any]],
    new_fc: list[dict[str, Any]],
    resend: bool,
) -> None:
    pairs = {
        "sales_lines": (
            _unique_keys("sales_lines", old_sales),
            _unique_keys("sales_lines", new_sales),
        ),
        "on_hand": (old_stock, new_stock),
        "forecasts": (old_fc, new_fc),
    }
    old_tables = {name: t(name, *o) for name, (o, _) in pairs.items()}
    upserts: dict[str, Table] = {}
    deletes: dict[str, Table] = {}
    for name, (o, n) in pairs.items():
        ups, dels = _connector_delta(name, o, n, resend)
        upserts[name] = t(name, *ups)
        deletes[name] = from_rows(delete_spec(INPUT_TABLES[name]), dels)

    result, counts = apply_delta(old_tables, upserts, deletes)

    assert isinstance(counts, DeltaCounts)
    for name, (_, n) in pairs.items():
        columns = INPUT_TABLES[name].column_names
        got = Counter(_as_tuple(name, r, columns) for r in to_rows(result[name]))
        want = Counter(_as_tuple(name, r, columns) for r in n)
        assert got == want, name
        for c in INPUT_TABLES[name].columns:
            assert result[name][c.name].dtype == dtype_of(c.kind)
        if not table_length(upserts[name]) and not table_length(deletes[name]):
            assert result[name] is old_tables[name]
            assert name not in counts.sources
            continue
        # Each row named as an old row is that row, unchanged; each old row
        # is named once at most; every upserted row is new.
        sources = counts.sources[name]
        new_rows, old_rows = to_rows(result[name]), to_rows(old_tables[name])
        assert len(sources) == len(new_rows)
        named = sources[sources >= 0].tolist()
        assert len(set(named)) == len(named)
        for row, source in zip(new_rows, sources.tolist(), strict=True):
            if source >= 0:
                assert _as_tuple(name, row, columns) == _as_tuple(name, old_rows[source], columns)
        assert int(np.count_nonzero(sources < 0)) == counts.upserted[name]
