"""Conversions of connector.columns: dates written as text on SQLite must be
exactly the text SQLite's date adapter would have stored, a batch read
must convert each value as that value alone would be converted, and coded
text must reach the driver as its plain text would."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from masterplan.connector.columns import (
    batch_values,
    cells_of,
    column_from_values,
    column_to_values,
    values_of,
)
from masterplan.connector.errors import ColumnDataError
from masterplan.contract.coded import Coded
from masterplan.contract.tables import INPUT_TABLES, ColumnKind

#: Day numbers of 0001-01-01 and 9999-12-31, the days a Python date can be.
FIRST, LAST = -719162, 2932896


@given(
    st.lists(st.one_of(st.none(), st.integers(FIRST, LAST)), max_size=60),
    st.integers(0, 3),
)
def test_dates_as_text_are_the_iso_text_of_each_date(days: list[int | None], near: int) -> None:
    # ``near`` > 0 keeps the days within a few years, as a plan's are; 0
    # spreads them over every year a date can have.
    if near:
        days = [None if d is None else 20454 + d % (400 * near) for d in days]
    array = np.array(
        [np.datetime64("NaT") if d is None else np.datetime64(d, "D") for d in days],
        dtype="datetime64[D]",
    )
    as_text = column_to_values(ColumnKind.DATE, array, dates_as_text=True)
    as_dates = column_to_values(ColumnKind.DATE, array)
    assert as_text == [None if d is None else d.isoformat() for d in as_dates]
    assert all(v is None or type(v) is str for v in as_text)


@given(
    st.lists(
        st.tuples(
            st.sampled_from([0, 20454, 20454 + 70_000, FIRST, LAST - 500]),
            st.lists(st.one_of(st.none(), st.integers(0, 500)), max_size=20),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_batch_after_batch_of_dates_each_get_their_own_text(
    batches: list[tuple[int, list[int | None]]],
) -> None:
    # The days' texts are kept from one batch to the next (a write converts
    # a column in batches) and widened or made again as the days move: near
    # the last batch's, further than the kept span allows, or at the ends
    # of the calendar. Whatever came before, each batch gets its own days.
    for base, offsets in batches:
        days = [None if d is None else base + d for d in offsets]
        array = np.array(
            [np.datetime64("NaT") if d is None else np.datetime64(d, "D") for d in days],
            dtype="datetime64[D]",
        )
        texts = column_to_values(ColumnKind.DATE, array, dates_as_text=True)
        epoch = dt.date(1970, 1, 1)
        assert texts == [
            None if d is None else (epoch + dt.timedelta(days=d)).isoformat() for d in days
        ]


@given(
    # Within the exact integers of a float: what a count or a day column holds.
    st.lists(
        st.one_of(st.floats(-1e15, 1e15), st.just(float("nan")), st.integers(-(2**40), 2**40)),
        max_size=40,
    ),
    st.sampled_from([ColumnKind.FLOAT, ColumnKind.INT]),
)
def test_numbers_reach_the_driver_as_plain_python_numbers(
    values: list[float | int], kind: ColumnKind
) -> None:
    # NaN is NULL; a number column with no NULL goes to the driver straight
    # from the array, one with NULLs through an object array: the same
    # values either way. An integer column never receives 1.0, and a float
    # column keeps the sign of -0.0.
    array = np.array(values, dtype=np.float64)
    got = column_to_values(kind, array)
    assert len(got) == len(values)
    for cell, value in zip(got, array.tolist(), strict=True):
        if np.isnan(value):
            assert cell is None
        elif kind is ColumnKind.INT:
            assert type(cell) is int and cell == int(np.rint(value))
        else:
            assert type(cell) is float
            assert np.float64(cell).tobytes() == np.float64(value).tobytes()


#: What drivers hand back for a date column: ISO text (SQLite), dates and
#: datetimes, NULL, and what names no day (numpy would read some of it as a
#: day: an integer as days since 1970, "today", "2026" as New Year's Day).
DATE_CELLS: list[Any] = [
    "2026-01-05",
    "2026-01-06",
    "2024-02-29",
    "  2026-01-05",
    "2026-01-05 13:45:00",
    "2026-02-30",
    "soon",
    "",
    "NaT",
    "today",
    "2026",
    "10000-01-01",
    None,
    dt.date(2026, 1, 5),
    dt.datetime(2026, 1, 5, 23, 59),
    20260105,
    20260105.0,
    True,
    b"2026-01-05",
]


class _Unhashable:
    """A cell no dict can hold (no driver is known to return one)."""

    __hash__ = None  # type: ignore[assignment]

    def __str__(self) -> str:
        return "2026-01-05"


@given(st.lists(st.sampled_from(DATE_CELLS), max_size=40), st.booleans())
def test_a_batch_of_dates_reads_each_value_as_it_reads_alone(
    values: list[Any], unhashable: bool
) -> None:
    """Each distinct value of a batch is converted once and spread to its
    repeats (and a batch with an unhashable value, converted as it is):
    the result is what each value gives read alone."""
    if unhashable and values:
        values[0] = _Unhashable()
    column = INPUT_TABLES["sales_lines"].column("requested_date")
    got = column_from_values("sales_lines", column, values)
    alone = [column_from_values("sales_lines", column, [v])[0] for v in values]
    assert got.dtype == np.dtype("datetime64[D]")
    assert got.tolist() == np.array(alone, dtype="datetime64[D]").tolist()


@given(st.lists(st.sampled_from(["A", "", "B\x00", None, 7, 7.0, 2.5, b"C"]), max_size=30))
def test_a_batch_of_ids_reads_each_value_as_it_reads_alone(values: list[Any]) -> None:
    column = INPUT_TABLES["sales_lines"].column("item_id")
    got = column_from_values("sales_lines", column, values)
    alone = [column_from_values("sales_lines", column, [v])[0] for v in values]
    assert got.dtype == object and got.tolist() == alone
    assert all(v is None or type(v) is str for v in got)


#: What drivers hand back for a number column: floats, ints (SQLite), Decimal
#: (NUMERIC), numeric text (SQLite's affinity lets it in), bools and NULL.
_NUMBERS = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(2**70), 2**70),
    st.decimals(allow_nan=False, allow_infinity=False, places=4, min_value=-1e9, max_value=1e9),
    st.booleans(),
    st.sampled_from(["2.5", " 7 ", "1e3", "nan"]),
)


@given(st.lists(_NUMBERS, max_size=40))
def test_a_batch_of_numbers_reads_as_numpy_reads_each_value(values: list[Any]) -> None:
    column = INPUT_TABLES["on_hand"].column("qty")
    got = column_from_values("on_hand", column, values)
    alone = [np.array([v], dtype=np.float64)[0] for v in values]
    assert got.dtype == np.float64 and len(got) == len(values)
    np.testing.assert_array_equal(got, np.array(alone, dtype=np.float64))


def test_a_number_column_holding_text_is_refused_by_name() -> None:
    column = INPUT_TABLES["on_hand"].column("qty")
    with pytest.raises(ColumnDataError, match=r"on_hand.*qty.*'lots'"):
        column_from_values("on_hand", column, [1.0, None, "lots"])


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["A", "Ä€", ""], ["A", "Ä€", ""]),  # all text: handed on as it is
        (["A", None, "B"], ["A", None, "B"]),  # text with NULLs
        ([None, None], [None, None]),
        (["A", 7, np.int64(8)], ["A", "7", "8"]),  # ids stored as numbers
        ([7.0, "A", None], ["7", "A", None]),  # a whole number as an integer
        ([b"A", "B"], ["A", "B"]),  # bytes as their UTF-8 text
    ],
)
def test_text_columns_become_text_or_none_for_the_driver(
    values: list[object], expected: list[str | None]
) -> None:
    """Whatever a text column holds, the driver gets ``str`` or ``None``:
    text is handed on as it is, an id of another type as the reader would
    read it back."""
    array = np.empty(len(values), dtype=object)
    array[:] = values
    out = column_to_values(ColumnKind.STR, array)
    assert out == expected
    assert all(v is None or type(v) is str for v in out)


@given(
    st.lists(st.one_of(st.none(), st.text(max_size=4), st.integers(0, 9)), min_size=1, max_size=8),
    st.lists(st.integers(-3, 7), max_size=40),
    st.integers(1, 12),
    st.booleans(),
)
def test_coded_text_gives_the_driver_what_its_plain_text_gives(
    dictionary: list[object], picks: list[int], batch_rows: int, numpy_text: bool
) -> None:
    """A chunk's text as it crosses the wire (codes into a dictionary, a
    negative code NULL, as :meth:`Coded.to_array` reads it) becomes, batch by batch, the values its rows made plain become:
    ``None`` values and NULL codes as ``None``, ids of other types as text.
    Rows fewer than the dictionary (the engine's dictionary of every ref)
    take the same values another way."""
    if numpy_text:
        dictionary = [str(v) for v in dictionary if v is not None] or ["x"]
        values = np.array(dictionary, dtype=np.dtypes.StringDType())
    else:
        values = np.empty(len(dictionary), dtype=object)
        values[:] = dictionary
    codes = np.array([p if p < 0 else p % len(dictionary) for p in picks], dtype=np.int32)
    coded = Coded(codes, values)
    expected = column_to_values(ColumnKind.STR, coded.to_array())
    batches = list(batch_values(ColumnKind.STR, coded, batch_rows))
    assert [len(b) for b in batches] == [
        min(batch_rows, len(codes) - start) for start in range(0, len(codes), batch_rows)
    ]
    assert [v for batch in batches for v in batch] == expected
    assert all(v is None or type(v) is str for batch in batches for v in batch)


def _same_values(got: list[Any], expected: list[Any]) -> None:
    """``got`` holds ``expected``'s values, each of the same type (an ``int``
    is no ``float``) and each float with the same bits (the sign of -0.0)."""
    assert len(got) == len(expected)
    for cell, value in zip(got, expected, strict=True):
        assert type(cell) is type(value)
        if type(value) is float:
            assert np.float64(cell).tobytes() == np.float64(value).tobytes()
        else:
            assert cell == value


_KIND_CELLS: dict[ColumnKind, Any] = {
    ColumnKind.FLOAT: st.one_of(st.floats(-1e15, 1e15), st.just(float("nan"))),
    ColumnKind.INT: st.one_of(st.integers(-(2**40), 2**40), st.just(float("nan"))),
    ColumnKind.DATE: st.one_of(st.none(), st.integers(FIRST, LAST)),
    ColumnKind.STR: st.one_of(st.none(), st.text(max_size=3), st.integers(0, 9)),
}


@st.composite
def _kind_and_column(draw: st.DrawFn) -> tuple[ColumnKind, np.ndarray | Coded]:
    kind = draw(st.sampled_from(list(_KIND_CELLS)))
    values = draw(st.lists(_KIND_CELLS[kind], max_size=30))
    if kind is ColumnKind.DATE:
        return kind, np.array(
            [np.datetime64("NaT") if d is None else np.datetime64(d, "D") for d in values],
            dtype="datetime64[D]",
        )
    if kind is not ColumnKind.STR:
        return kind, np.array(values, dtype=np.float64)
    array = np.empty(len(values), dtype=object)
    array[:] = values
    if draw(st.booleans()):
        # Coded as a chunk crosses the wire; a dictionary with more words
        # than rows (the engine's own, of every ref) takes the other path.
        distinct = list(dict.fromkeys(values))
        distinct += [f"unused {i}" for i in range(draw(st.integers(0, 40)))]
        codes = np.array([distinct.index(v) for v in values], dtype=np.int32)
        dictionary = np.empty(len(distinct), dtype=object)
        dictionary[:] = distinct
        return kind, Coded(codes, dictionary)
    return kind, array


@given(_kind_and_column(), st.booleans(), st.integers(0, 30), st.integers(0, 30))
def test_cells_laid_side_by_side_are_the_driver_values_of_their_rows(
    column: tuple[ColumnKind, np.ndarray | Coded], as_text: bool, start: int, stop: int
) -> None:
    """What a writer lays into an object array (``cells_of``, numbers made
    Python numbers as they go in) is, row for row, what ``values_of`` gives
    the driver: the same values of the same types, NULL as None."""
    kind, cells = column
    rows = slice(start, stop)
    laid = np.empty((len(cells), 2), dtype=object)[rows]
    laid[:, 1] = cells_of(kind, cells, dates_as_text=as_text)(rows)
    _same_values(laid[:, 1].tolist(), values_of(kind, cells, dates_as_text=as_text)(rows))


@given(st.lists(st.one_of(st.none(), st.integers(20000, 20100)), max_size=30), st.integers(1, 9))
def test_plain_columns_in_batches_are_the_column_converted_whole(
    days: list[int | None], batch_rows: int
) -> None:
    array = np.array(
        [np.datetime64("NaT") if d is None else np.datetime64(d, "D") for d in days],
        dtype="datetime64[D]",
    )
    batches = batch_values(ColumnKind.DATE, array, batch_rows, dates_as_text=True)
    assert [v for batch in batches for v in batch] == column_to_values(
        ColumnKind.DATE, array, dates_as_text=True
    )
