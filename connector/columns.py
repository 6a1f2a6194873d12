"""Conversion between database values and the in-memory column arrays.

The conventions are those of :mod:`masterplan.contract.tables`: ``STR`` columns are
``object`` arrays with ``None`` for NULL, ``FLOAT`` and ``INT`` columns are
``float64`` with ``NaN`` for NULL, ``DATE`` columns ``datetime64[D]`` with
``NaT`` for NULL. Reading and writing both go through this module so that the
two directions cannot drift apart.

Work is per column (numpy conversion or one list comprehension), never a
Python loop per row that touches every column.
"""

from __future__ import annotations

import datetime as dt
import itertools
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, TypeGuard

import numpy as np

from masterplan.connector.errors import ColumnDataError
from masterplan.contract.coded import Coded, as_array
from masterplan.contract.columns import (
    UNREADABLE_DATE,
    Table,
    dtype_of,
    empty_table,
    table_length,
)
from masterplan.contract.tables import ColumnKind, ColumnSpec, TableSpec

__all__ = [
    "Table",
    "batch_values",
    "cells_of",
    "column_from_values",
    "column_to_cells",
    "column_to_values",
    "concat_chunks",
    "dtype_of",
    "empty_table",
    "iso_days",
    "null_mask",
    "readable_days",
    "table_length",
    "values_of",
]


def concat_chunks(spec: TableSpec, chunks: Iterable[Mapping[str, np.ndarray]]) -> Table:
    """Concatenate chunks of ``spec``'s table into one table in canonical order.

    Args:
        spec: The table the chunks belong to.
        chunks: Chunks as yielded by :func:`connector.reader.iter_table_chunks`.

    Returns:
        One array per column of ``spec``; zero-length arrays when there are no
        chunks or all are empty.
    """
    parts: dict[str, list[np.ndarray]] = {c.name: [] for c in spec.columns}
    for chunk in chunks:
        for c in spec.columns:
            parts[c.name].append(chunk[c.name])
    if not any(len(p) for p in parts[spec.columns[0].name]):
        return empty_table(spec)
    return {
        c.name: np.concatenate(parts[c.name]).astype(dtype_of(c.kind), copy=False)
        for c in spec.columns
    }


# --- database values -> arrays -------------------------------------------------------


def column_from_values(table: str, column: ColumnSpec, values: Sequence[Any]) -> np.ndarray:
    """Convert one column of a fetched batch into its in-memory array.

    Drivers hand back what the database holds: ``Decimal`` for ``NUMERIC``,
    ``date`` or ``datetime`` for date columns, and on SQLite, which has no date
    type, ISO strings. All of them end up in the dtype of the conventions. A
    date value that names no day becomes :data:`UNREADABLE_DATE` (see
    :func:`_date_column`): one bad cell leaves its row out of the plan, not
    the whole run.

    Args:
        table: Table name, for error messages.
        column: The column's spec.
        values: The column's values of one batch, ``None`` for NULL.

    Returns:
        A 1-D array of ``len(values)`` elements.

    Raises:
        ColumnDataError: A number cannot be converted (e.g. text in a quantity
            column on SQLite); the message names table and column.
    """
    try:
        if column.kind is ColumnKind.STR:
            return _str_column(values)
        if column.kind is ColumnKind.DATE:
            return _distinct_dates(values)
        return _number_column(values, dtype_of(column.kind))
    except (TypeError, ValueError) as exc:
        bad = _first_bad_value(column.kind, values)
        raise ColumnDataError(
            table,
            column.name,
            f"table {table!r}, column {column.name!r}: cannot read {bad!r} as "
            f"{column.kind.value} ({exc})",
        ) from exc


def _number_column(values: Sequence[Any], dtype: np.dtype) -> np.ndarray:
    """A number column's values as ``dtype``: None is NaN, and ``Decimal``,
    ``int``, ``bool`` and numeric text convert through ``float()``.

    ``np.fromiter`` converts each value as ``np.array`` does, but without
    first looking for nested sequences: 17 ms against 30 ms for the first
    65,536 rows of each of the benchmark's number columns. A value it takes
    differently (a list, a ``bytearray``) gets ``np.array``'s own answer.
    """
    try:
        return np.fromiter(values, dtype, len(values))
    except (TypeError, ValueError):
        return np.array(values, dtype=dtype)


_DAY = np.dtype("datetime64[D]")
#: The days a Python ``date`` can be, which every driver and writer needs.
_FIRST_DAY = np.datetime64("0001-01-01", "D")
_LAST_DAY = np.datetime64("9999-12-31", "D")
#: What drivers return for a date column that need no second look.
_DATE_TYPES = frozenset({dt.date, dt.datetime, type(None)})
_NONE = np.array(None, dtype=object)


def _distinct_dates(values: Sequence[Any]) -> np.ndarray:
    """:func:`_date_column` of ``values``, each distinct value converted once.

    A batch of a date column holds few distinct days (a batch of 65,536
    rows of the benchmark's model about 400), and converting one is the
    slow step: text is parsed, then checked (:func:`_faithful`). Found
    distinct by a dict in C, the batch took 4.3 ms instead of 15.5 ms.
    """
    first: dict[Any, int] = {}
    try:
        # Each value's position where it first appears: the counter moves
        # on every value, and setdefault keeps the first one it was given.
        where = np.fromiter(map(first.setdefault, values, itertools.count()), np.int64, len(values))
    except TypeError:  # an unhashable value: convert the batch as it is
        return _date_column(values)
    if len(first) == len(values):
        return _date_column(values)
    days = np.empty(len(values), dtype=_DAY)
    days[np.fromiter(first.values(), np.int64, len(first))] = _date_column(list(first))
    return days[where]


def _date_column(values: Sequence[Any]) -> np.ndarray:
    """``datetime64[D]`` of one batch of a date column, :data:`UNREADABLE_DATE`
    where a value names no day.

    numpy converts the batch at once. But it is lenient in ways that would
    hide a bad cell: it reads ``''`` and ``'NaT'`` as NULL, ``'today'`` and
    ``'now'`` as today, ``'2026'`` as New Year's Day, an integer as days
    since 1970, and years past 9999. So unless the driver gave ``date``
    objects (exact by construction), the batch is checked, vectorised, by
    :func:`_faithful`. Only a batch that numpy refuses (a value it cannot
    parse at all) is converted value by value, each distinct value once.
    """
    with warnings.catch_warnings():
        # Text with a time zone parses with a warning (or fails, for "BC");
        # either way :func:`_faithful` has the last word.
        warnings.filterwarnings("ignore", "no explicit representation of timezones")
        try:
            days = np.array(values, dtype=_DAY)
        except (TypeError, ValueError, OverflowError):
            days = _days_one_by_one(values)
    if not set(map(type, values)) <= _DATE_TYPES:
        days[~_faithful(values, days)] = UNREADABLE_DATE
    return days


def _faithful(values: Sequence[Any], days: np.ndarray) -> np.ndarray:
    """Where ``days`` says what ``values`` say: NULL for NULL, else a day of
    the years 1 to 9999 whose ISO text the value's text begins with (after
    blanks; ``'2024-01-06 13:45:00'`` is 2024-01-06)."""
    objects = np.empty(len(values), dtype=object)
    objects[:] = values
    # Formatting is the slow step: a batch holds few distinct days.
    distinct, which = np.unique(days, return_inverse=True)
    iso = np.datetime_as_string(distinct, unit="D")[which]
    in_range = (days >= _FIRST_DAY) & (days <= _LAST_DAY)
    ok = np.equal(objects, _NONE) | ((objects.astype("U10") == iso) & in_range)
    if not ok.all():  # rare: leading blanks, or a bad value
        doubt = ~ok
        text = np.strings.lstrip(objects[doubt].astype(str)).astype("U10")
        ok[doubt] = (text == iso[doubt]) & in_range[doubt]
    return ok


def _days_one_by_one(values: Sequence[Any]) -> np.ndarray:
    """Each value's day as numpy reads it alone, :data:`UNREADABLE_DATE` where
    it cannot; every distinct value is converted once."""
    known: dict[Any, np.datetime64] = {}

    def day(value: Any) -> np.datetime64:
        try:
            return known[value]
        except KeyError:
            pass
        except TypeError:  # unhashable: convert it every time
            return _day_alone(value)
        known[value] = found = _day_alone(value)
        return found

    return np.array([day(v) for v in values], dtype=_DAY)


def _day_alone(value: Any) -> np.datetime64:
    try:
        return np.array([value], dtype=_DAY)[0]
    except (TypeError, ValueError, OverflowError):
        return UNREADABLE_DATE


def readable_days(days: np.ndarray) -> np.ndarray:
    """``days`` with every day outside the years 1 to 9999 made
    :data:`UNREADABLE_DATE` (a copy when any is; NULL stays NULL).

    For date columns read as day numbers (PostgreSQL's ``COPY``), which
    hold what no Python date, hence no driver or plan, can: ``infinity``,
    years before 1 or after 9999.
    """
    outside = (days < _FIRST_DAY) | (days > _LAST_DAY)
    if not outside.any():
        return days
    return np.where(outside, UNREADABLE_DATE, days)


#: What a text column's values are when no conversion is needed.
_TEXT_TYPES = frozenset({str, type(None)})


def _str_column(values: Sequence[Any]) -> np.ndarray:
    """Build an object array of ``str``/``None``, stringifying other id types.

    Ids are strings in §4, but an integrator may have declared one as an
    integer column; its values then become their decimal text.
    """
    # Joined, the values prove to be text four times faster than their types
    # are collected (``map``, ``set``: a generator testing each value took a
    # third of a large read). A NULL or another type makes the join fail.
    # ``np.fromiter`` fills the array in 10 ms where a slice assignment took
    # 18 ms (the first 65,536 rows of each of the benchmark's text columns).
    if _all_text(values) or set(map(type, values)) <= _TEXT_TYPES:
        return np.fromiter(values, object, len(values))
    return np.fromiter(map(_to_str, values), object, len(values))


def _all_text(values: Sequence[Any]) -> bool:
    """Whether every value is a ``str``."""
    try:
        "".join(values)
    except TypeError:
        return False
    return True


def _to_str(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8")
    if isinstance(value, float | Decimal) and value == value and int(value) == value:
        return str(int(value))  # numbers print as integers (SPEC §4, refs)
    return str(value)


def _first_bad_value(kind: ColumnKind, values: Sequence[Any]) -> Any:
    """Find the value that made a whole-column conversion fail, for the message."""
    dtype = dtype_of(kind)
    for v in values:
        try:
            np.array([v], dtype=dtype)
        except (TypeError, ValueError):
            return v
    return None


# --- arrays -> database values -------------------------------------------------------

_TEXT_TYPES = frozenset({str, type(None)})


def null_mask(kind: ColumnKind, array: np.ndarray) -> np.ndarray:
    """Return a boolean array, ``True`` where ``array`` holds NULL for its kind."""
    if kind is ColumnKind.STR:
        # Element-wise ``== None`` in C; for text and None it is ``is None``
        # (a str never equals None), at a third of a generator's time.
        nulls: np.ndarray = np.asarray(array, dtype=object) == None  # noqa: E711
        return nulls
    if kind is ColumnKind.DATE:
        return np.isnat(np.asarray(array, dtype="datetime64[D]"))
    return np.isnan(np.asarray(array, dtype=np.float64))


#: Widest span of days whose every ISO text :func:`iso_days` makes once.
_DAY_TABLE_SPAN = 1 << 16


class _DayTexts:
    """The ISO text of every day of a span, made once and kept for the
    columns that follow: a write converts its dates a batch of a column at
    a time, and formatting the span's days again for each batch was three
    quarters of the dates' conversion (a plan's dates lie within a few
    years, the same span batch after batch). The span grows to cover the
    days asked for, up to :data:`_DAY_TABLE_SPAN`; its last slot is None,
    for NaT.

    Swapped whole, never changed in place, so that threads converting at
    once read a consistent table (at worst both make the same new one).
    """

    def __init__(self) -> None:
        self._table: tuple[int, np.ndarray] = (0, np.array([None], dtype=object))

    def covering(self, low: int, high: int) -> tuple[int, np.ndarray] | None:
        """``(first day number, texts)`` covering days ``low..high``, or
        None when they span more than :data:`_DAY_TABLE_SPAN` days."""
        start, texts = self._table
        if start <= low and high < start + len(texts) - 1:
            return start, texts
        if len(texts) > 1:  # widen what is kept, when that stays small
            low_all, high_all = min(low, start), max(high, start + len(texts) - 2)
            if high_all - low_all < _DAY_TABLE_SPAN:
                low, high = low_all, high_all
        if high - low >= _DAY_TABLE_SPAN:
            return None
        texts = np.empty(high - low + 2, dtype=object)
        span = np.arange(low, high + 1).astype("datetime64[D]")
        texts[:-1] = np.datetime_as_string(span).astype(object)
        texts[-1] = None
        self._table = (low, texts)
        return self._table


_DAY_TEXTS = _DayTexts()


def iso_days(days: np.ndarray) -> np.ndarray:
    """``days`` (datetime64[D]) as a new object array of ISO text, NaT as None.

    A plan's dates lie within a few years, so each day's text is made once,
    over the span of days, and gathered (formatting every value is ten
    times slower); the span's texts are kept for the next call
    (:class:`_DayTexts`). Days further apart format their distinct days.
    """
    days = np.asarray(days, dtype="datetime64[D]")
    known = ~np.isnat(days)
    if not known.any():  # no day at all, or none known
        return np.full(len(days), None, dtype=object)
    every = bool(known.all())
    numbers = days.astype(np.int64)
    present = numbers if every else numbers[known]
    low, high = int(present.min()), int(present.max())
    table = _DAY_TEXTS.covering(low, high)
    if table is not None:
        start, texts = table
        where = numbers - start
        if not every:
            where[~known] = len(texts) - 1
        out: np.ndarray = texts[where]
        return out
    out = np.full(len(days), None, dtype=object)
    distinct, inverse = np.unique(present, return_inverse=True)
    out[known] = np.datetime_as_string(distinct.astype("datetime64[D]")).astype(object)[inverse]
    return out


def column_to_values(kind: ColumnKind, array: np.ndarray, dates_as_text: bool = False) -> list[Any]:
    """Convert an in-memory column to plain Python values for a DB driver.

    Drivers do not know numpy scalars, so every value becomes ``str``,
    ``float``, ``int`` or ``datetime.date``, and NaN/NaT become ``None``.
    ``INT`` columns (``firmed``, ``delay_days``, counts) become ``int`` so that
    an integer column never receives ``1.0``.

    Args:
        kind: The column's kind.
        array: A 1-D array in the conventions (other numeric or datetime
            dtypes are accepted and converted).
        dates_as_text: Dates as ISO text (``2026-01-05``), made for the whole
            column at once: what SQLite stores for a date, without a
            ``date`` object per value and the driver's adapter turning each
            back into text (a fifth of a large write).

    Returns:
        A list of ``len(array)`` Python values.
    """
    if kind is ColumnKind.STR:
        texts: list[Any] = np.asarray(array, dtype=object).tolist()
        # The usual cases, checked in C: all text (joined, as the reader
        # checks a column: a third of the time of collecting the types), or
        # text with NULLs.
        if _all_text(texts) or set(map(type, texts)) <= _TEXT_TYPES:
            return texts
        # Ids of other types as the reader makes them text (``_to_str``).
        return [_to_str(v) for v in texts]
    if kind is ColumnKind.DATE:
        days = np.asarray(array, dtype="datetime64[D]")
        if dates_as_text:
            as_text: list[Any] = iso_days(days).tolist()
            return as_text
        # datetime64[D] -> object gives datetime.date, and NaT gives None.
        dates: list[Any] = days.astype(object).tolist()
        return dates
    numbers, mask = _numbers(kind, array)
    if mask is None:
        # ``tolist`` makes each Python number straight from the array: a
        # fifth less than through an object array, the usual case.
        plain: list[Any] = numbers.tolist()
        return plain
    out = numbers.astype(object)
    out[mask] = None
    values: list[Any] = out.tolist()
    return values


def _numbers(kind: ColumnKind, array: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """A numeric column as the numbers its driver values are (``int64`` for
    ``INT``, else ``float64``; NULL rows 0 or NaN) and its NULL rows (None
    where none is NULL)."""
    floats = np.asarray(array, dtype=np.float64)
    mask = np.isnan(floats)
    numbers = (
        np.rint(np.where(mask, 0, floats)).astype(np.int64) if kind is ColumnKind.INT else floats
    )
    return numbers, mask if mask.any() else None


def column_to_cells(kind: ColumnKind, array: np.ndarray, dates_as_text: bool = False) -> np.ndarray:
    """:func:`column_to_values` as an array, for a writer that lays several
    columns out side by side in an object array and makes one list of them
    all (:func:`~connector.writer.statement_parameters`).

    Its items are the driver values, or numbers (``int64``, ``float64``)
    that numpy makes the same Python ``int`` and ``float`` of as they go
    into an object array: no list per column, and no Python number made
    twice.
    """
    if kind is ColumnKind.DATE and dates_as_text:
        return iso_days(array)
    if kind is ColumnKind.STR or kind is ColumnKind.DATE:
        out = np.empty(len(array), dtype=object)
        out[:] = column_to_values(kind, array)
        return out
    numbers, mask = _numbers(kind, array)
    if mask is None:
        return numbers
    cells = numbers.astype(object)
    cells[mask] = None
    return cells


def batch_values(
    kind: ColumnKind, cells: np.ndarray | Coded, batch_rows: int, dates_as_text: bool = False
) -> Iterator[list[Any]]:
    """:func:`column_to_values` of ``cells``, ``batch_rows`` rows at a time
    (:func:`values_of`)."""
    rows = values_of(kind, cells, dates_as_text)
    for start in range(0, len(cells), batch_rows):
        yield rows(slice(start, start + batch_rows))


def values_of(
    kind: ColumnKind, cells: np.ndarray | Coded, dates_as_text: bool = False
) -> Callable[[slice | np.ndarray], list[Any]]:
    """A function that gives :func:`column_to_values` of some of ``cells``'
    rows (a slice, or positions), for a writer that converts a column a
    batch of rows at a time.

    Coded text (a chunk as it crosses the wire) is checked and made driver
    values once per distinct value, on its dictionary, and each batch is a
    gather of those: the type check of every row, and of every NULL, was a
    tenth of the connector's own work in SQLite's write of 100k SKUs. Few
    rows of a large dictionary (the engine's own, of every ref) are made
    plain first instead, as the dictionary would cost more than the rows
    (:func:`_gathers`).
    """
    if _gathers(cells):
        pick = cells_of(kind, cells, dates_as_text)

        def gathered(rows: slice | np.ndarray) -> list[Any]:
            picked: list[Any] = pick(rows).tolist()
            return picked

        return gathered
    array = as_array(cells)

    def converted(rows: slice | np.ndarray) -> list[Any]:
        return column_to_values(kind, array[rows], dates_as_text)

    return converted


def cells_of(
    kind: ColumnKind, cells: np.ndarray | Coded, dates_as_text: bool = False
) -> Callable[[slice | np.ndarray], np.ndarray]:
    """:func:`values_of`, each pick an array of :func:`column_to_cells`
    instead of a list: coded text gathered from its dictionary's driver
    values (made once per distinct value, as :func:`values_of` makes them),
    other columns converted a pick at a time."""
    if _gathers(cells):
        words = column_to_values(kind, np.asarray(cells.values), dates_as_text)
        lookup = np.empty(len(words) + 1, dtype=object)
        lookup[: len(words)] = words
        lookup[-1] = None  # what code -1, NULL, gathers
        # Any negative code is NULL, as :meth:`Coded.to_array` reads it;
        # each gathers the lookup's last slot.
        codes = cells.codes
        if len(codes) and codes.min() < -1:
            codes = np.maximum(codes, -1)

        def gathered(rows: slice | np.ndarray) -> np.ndarray:
            picked: np.ndarray = lookup[codes[rows]]
            return picked

        return gathered
    array = as_array(cells)

    def converted(rows: slice | np.ndarray) -> np.ndarray:
        return column_to_cells(kind, array[rows], dates_as_text)

    return converted


def _gathers(cells: np.ndarray | Coded) -> TypeGuard[Coded]:
    """Whether a column's driver values are made once per value of its
    dictionary and gathered (:func:`values_of`, :func:`cells_of`): coded
    text with no more distinct values than rows. A dictionary larger than
    its rows (the engine's own, of every ref, sent with a few of them) is
    made plain first instead."""
    return isinstance(cells, Coded) and len(cells) >= len(cells.values)
