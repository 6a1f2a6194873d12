"""A result packed for another process (:mod:`server.engine.packing`) comes
back exactly as it left, through pickle or a spill file, whatever its text
holds; a spill file never outlives its result.

The property test of ``test_partitioned`` sends every random model's
partitions through pickle packed; these cases pin the text that cannot be
packed and what packing must keep: shared dictionaries, NULL codes. A
partition's input goes packed too (:func:`pack_tables`): any text and NULL
comes back as it was.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.dtypes import StringDType

from masterplan.contract.coded import CODE_DTYPE, Coded
from masterplan.server.engine.packing import (
    discard,
    load,
    pack,
    pack_tables,
    spill,
    unpack,
    unpack_tables,
)
from masterplan.server.engine.types import PlanResult

_STR = StringDType()


def _trip(result: PlanResult) -> PlanResult:
    return unpack(pickle.loads(pickle.dumps(pack(result))))


def _result() -> PlanResult:
    refs = np.array(["SO-1/1", "SO-2/1", "FC-W-2026-01-05"], dtype=_STR)
    shared = Coded(np.array([2, 0, -1, 1]), refs)
    return PlanResult(
        {
            "planned_orders": {
                "planned_order_id": np.array(["A|W|1", "B|W|1", ""], dtype=_STR),
                "warehouse_id": Coded(np.array([0, 1, -1]), np.array(["W", None], dtype=object)),
                "qty": np.array([1.5, np.nan, 3.0]),
                "due_date": np.array(["2026-01-05", "NaT", "2026-02-01"], dtype="datetime64[D]"),
            },
            "pegging": {"demand_ref": shared, "supply_ref": Coded(np.arange(300) % 3, refs)},
            "delay_messages": {"demand_ref": Coded(np.array([1, 1]), refs)},
            "plan_messages": {
                "text": np.array(["Müller's BOM", "ok"], dtype=_STR),
                "ref": np.array(["ends in NUL\x00", "x"], dtype=_STR),
            },
        },
        {"netting": 0.5},
        7,
    )


def _assert_same(got: PlanResult, want: PlanResult) -> None:
    assert got.sku_count == want.sku_count and got.phase_seconds == want.phase_seconds
    assert got.tables.keys() == want.tables.keys()
    for name, table in want.tables.items():
        for col, column in table.items():
            back = got.tables[name][col]
            if isinstance(column, Coded):
                assert isinstance(back, Coded)
                assert back.codes.dtype == CODE_DTYPE, (name, col)
                assert back.codes.tolist() == column.codes.tolist(), (name, col)
                assert back.values.dtype == column.values.dtype, (name, col)
                assert back.values.tolist() == column.values.tolist(), (name, col)
            else:
                assert back.dtype == column.dtype, (name, col)
                assert np.array_equal(back, column, equal_nan=column.dtype.kind in "fmM")


def test_a_packed_result_comes_back_exactly() -> None:
    result = _result()
    _assert_same(_trip(result), result)


def test_non_ascii_and_trailing_nul_text_come_back_unchanged() -> None:
    text = _trip(_result()).tables["plan_messages"]
    assert text["text"].tolist() == ["Müller's BOM", "ok"]
    # Fixed-width bytes would have dropped the NUL: such text is sent as it is.
    assert text["ref"].tolist() == ["ends in NUL\x00", "x"]


def test_dictionaries_shared_by_columns_stay_shared() -> None:
    """The join joins a dictionary that several columns share once, by identity."""
    back = _trip(_result()).tables
    demand = back["pegging"]["demand_ref"]
    assert isinstance(demand, Coded)
    for other in (back["pegging"]["supply_ref"], back["delay_messages"]["demand_ref"]):
        assert isinstance(other, Coded) and other.values is demand.values


def test_packing_shrinks_what_crosses() -> None:
    """Small dictionaries' codes travel narrow, ASCII refs as one buffer."""
    rows = 200_000
    refs = np.array([f"SO-{i:07d}/1" for i in range(rows)], dtype=_STR)
    result = PlanResult(
        {
            "pegging": {
                "warehouse_id": Coded(np.arange(rows) % 2, np.array(["W1", "W2"], dtype=object)),
                "demand_ref": Coded(np.arange(rows), refs),
            }
        }
    )
    packed = pack(result).tables["pegging"]
    assert isinstance(packed["warehouse_id"], Coded)
    assert packed["warehouse_id"].codes.itemsize == 1
    # A byte per warehouse code, four per ref code, the refs' 12 ASCII bytes:
    # no per-string overhead.
    assert len(pickle.dumps(pack(result))) < 1.02 * rows * (1 + 4 + 12)
    assert len(pickle.dumps(result)) > 1.2 * rows * (1 + 4 + 12)
    _assert_same(_trip(result), result)


def _large() -> PlanResult:
    rows = 200_000
    refs = np.array([f"SO-{i:07d}/1" for i in range(rows)], dtype=_STR)
    return PlanResult(
        {
            "pegging": {
                "demand_ref": Coded(np.arange(rows)[::-1].copy(), refs),
                "qty": np.linspace(0.0, 1.0, rows),
                "demand_date": np.arange(rows).astype("datetime64[D]"),
            },
            "delay_messages": {"demand_ref": Coded(np.arange(rows), refs)},
        },
        {"netting": 1.0},
        rows,
    )


def test_a_spilled_result_comes_back_and_its_file_is_removed(tmp_path: Path) -> None:
    """What crosses the pipe is the file's name and layout; the arrays come
    back from the file, which is removed once read."""
    result = _large()
    spilled = spill(pack(result), str(tmp_path))
    [file] = tmp_path.iterdir()
    assert file.stat().st_size > 4_000_000
    assert len(pickle.dumps(spilled)) < 10_000
    back = unpack(load(pickle.loads(pickle.dumps(spilled))))
    assert not list(tmp_path.iterdir())
    _assert_same(back, result)
    demand = back.tables["pegging"]["demand_ref"]
    other = back.tables["delay_messages"]["demand_ref"]
    assert isinstance(demand, Coded) and isinstance(other, Coded)
    assert demand.values is other.values


def test_a_dropped_or_failed_spill_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    discard(spill(pack(_large()), str(tmp_path)))
    assert not list(tmp_path.iterdir())
    discard(_large())  # not spilled: nothing to remove
    from masterplan.server.engine import packing

    def broken(*args: object) -> None:
        raise OSError("no space left on device")

    monkeypatch.setattr(packing.np, "ascontiguousarray", broken)
    with pytest.raises(OSError, match="no space"):
        spill(pack(_large()), str(tmp_path))
    assert not list(tmp_path.iterdir())


# --- a partition's input, packed for the worker --------------------------------------


def _column_trip(values: list[object]) -> np.ndarray:
    column = np.empty(len(values), dtype=object)
    column[:] = values
    data = {"items": {"item_id": column, "lead_time_days": np.arange(len(values), dtype=float)}}
    back = unpack_tables(pickle.loads(pickle.dumps(pack_tables(data))))
    assert back.keys() == data.keys() and back["items"].keys() == data["items"].keys()
    np.testing.assert_array_equal(back["items"]["lead_time_days"], data["items"]["lead_time_days"])
    got = back["items"]["item_id"]
    assert got.dtype == object
    return got


@given(st.lists(st.none() | st.text()))
def test_input_text_comes_back_exactly(values: list[str | None]) -> None:
    """Any text, NULLs among it (and text with a NUL, which stays unpacked),
    is what the worker plans with."""
    got = _column_trip(values)
    assert got.tolist() == values
    assert all(type(g) is type(v) for g, v in zip(got.tolist(), values, strict=True))


def test_input_text_travels_as_one_string() -> None:
    """An id column pickles as one string, not a value at a time: what took
    the coordinator 0.26 us a value."""
    column = np.array([f"ITEM-{i}" for i in range(1000)] + [None, ""], dtype=object)
    packed = pack_tables({"items": {"item_id": column}})["items"]["item_id"]
    assert not isinstance(packed, np.ndarray)
    assert len(pickle.dumps(packed)) < 10_000


@pytest.mark.parametrize(
    "values",
    [["A", "B\x00", None], ["A", 7, None], [b"bytes", "A"]],
    ids=["nul", "number", "bytes"],
)
def test_input_that_cannot_be_joined_travels_as_it_is(values: list[object]) -> None:
    column = np.empty(len(values), dtype=object)
    column[:] = values
    packed = pack_tables({"t": {"c": column}})["t"]["c"]
    assert packed is column
    assert _column_trip(values).tolist() == values
