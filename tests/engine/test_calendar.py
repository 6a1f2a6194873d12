"""§5.1 Time: effective dates and lead-time arithmetic on working-day calendars
(server/engine/calendar.py)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from masterplan.contract.rows import from_rows
from masterplan.contract.tables import INPUT_TABLES
from masterplan.server.engine.arrays import NO_DATE
from masterplan.server.engine.calendar import Calendars, calendars_of, effective, plan_day
from tests.engine.phases import T0, day

# T0 = Monday 2024-03-04; day(4) is Friday 03-08, day(5) Saturday, day(7) Monday.
MON, THU, FRI, SAT, SUN, NEXT_MON, NEXT_TUE = (day(d) for d in (0, 3, 4, 5, 6, 7, 8))


def calendars(exceptions: list[tuple[int, int]] = (), weekdays: str = "1111100") -> Calendars:
    """Calendar 0 works on ``weekdays`` (Monday to Friday unless given);
    ``exceptions`` are (day, is_working)."""
    return Calendars(*calendar_tables(exceptions, weekdays))


def calendar_tables(
    exceptions: list[tuple[int, int]] = (), weekdays: str = "1111100"
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The ``calendars`` and ``calendar_exceptions`` tables of :func:`calendars`."""
    cal = from_rows(
        INPUT_TABLES["calendars"], [{"calendar_id": "MF", "working_weekdays": weekdays}]
    )
    exc = from_rows(
        INPUT_TABLES["calendar_exceptions"],
        [
            {
                "calendar_id": "MF",
                "day": (dt.date(1970, 1, 1) + dt.timedelta(days=d)).isoformat(),
                "is_working": w,
            }
            for d, w in exceptions
        ],
    )
    return cal, exc


@pytest.mark.parametrize(
    ("start", "lead", "sign", "exceptions", "expected", "why"),
    [
        (FRI, 1, 1, [], NEXT_MON, "Friday plus one working day skips the weekend"),
        (NEXT_MON, 1, -1, [], FRI, "Monday minus one working day is the Friday before"),
        (SAT, 1, 1, [], NEXT_TUE, "from a Saturday, the first working day counted is Monday"),
        (MON, 3, 1, [(THU, 0)], day(4), "three working days from Monday over a Thursday holiday"),
        (NEXT_MON, 3, -1, [(THU, 0)], day(1), "three working days back over the holiday"),
        (FRI, 1, 1, [(SAT, 1)], SAT, "an exception makes the Saturday a working day"),
        (SAT, 0, 1, [], SAT, "a lead time of 0 changes nothing, working day or not"),
        (SUN, 0, -1, [], SUN, "nor backwards"),
    ],
)
def test_working_day_lead_time(
    start: int, lead: int, sign: int, exceptions: list[tuple[int, int]], expected: int, why: str
) -> None:
    got = calendars(exceptions).shift(np.array([start]), np.array([lead]), np.array([0]), sign)
    assert got.tolist() == [expected], why


def test_without_a_calendar_lead_times_count_calendar_days() -> None:
    got = calendars().shift(np.array([FRI, FRI]), np.array([1, 3]), np.array([-1, -1]), 1)
    assert got.tolist() == [SAT, day(7)]


def test_no_date_stays_no_date() -> None:
    got = calendars().shift(np.array([NO_DATE, FRI]), np.array([2, 2]), np.array([0, 0]), 1)
    assert got.tolist() == [NO_DATE, day(8)]


def test_calendar_ids_are_numbered_in_code_point_order() -> None:
    cal = from_rows(
        INPUT_TABLES["calendars"],
        [{"calendar_id": "b"}, {"calendar_id": "B"}, {"calendar_id": "a"}],
    )
    empty = from_rows(INPUT_TABLES["calendar_exceptions"], [])
    got = Calendars(cal, empty).index(np.array(["a", "B", None, "zz", "b"], dtype=object))
    assert got.tolist() == [1, 0, -1, -1, 2]


def test_dates_before_t0_count_as_t0() -> None:
    assert effective(np.array([T0 - 30, T0 - 1, T0, T0 + 5]), T0).tolist() == [T0, T0, T0, T0 + 5]


def test_plan_day_counts_days_since_1970() -> None:
    assert plan_day(dt.date(1970, 1, 2)) == 1
    assert plan_day(dt.date(2024, 3, 4)) == T0 == 19786


@given(
    st.lists(st.tuples(st.integers(-60, 60), st.integers(0, 1)), max_size=12),
    st.lists(
        st.tuples(
            st.lists(st.integers(-25_000, 25_000), min_size=1, max_size=6),
            st.integers(0, 30),
            st.sampled_from([1, -1]),
        ),
        min_size=1,
        max_size=5,
    ),
    st.booleans(),
)
def test_shifts_on_one_calendar_object_equal_shifts_on_fresh_ones(
    exceptions: list[tuple[int, int]],
    queries: list[tuple[list[int], int, int]],
    closed: bool,
) -> None:
    """A run keeps each calendar's working days listed and widens the list as
    later queries reach further: the shifts must be those of a calendar
    listed for each query alone, also near the search limit of a calendar
    with (almost) no working day."""
    exc = [(day(d), w) for d, w in exceptions]
    # closed: no working weekday, only the working exceptions work
    weekdays = "0000000" if closed else "1111100"
    kept = calendars(exc, weekdays)
    for offsets, lead, sign in queries:
        d = np.array([day(o) for o in offsets])
        lead_days = np.full(len(d), lead)
        cal = np.zeros(len(d), dtype=np.int64)
        fresh = calendars(exc, weekdays)
        assert (
            kept.shift(d, lead_days, cal, sign).tolist()
            == fresh.shift(d, lead_days, cal, sign).tolist()
        )


def test_runs_on_the_same_calendar_columns_share_their_calendars_and_no_others() -> None:
    """A net change's small plan holds the whole plan's calendar columns and
    reuses its listed working days; other columns, even equal ones, and
    changed ones get calendars of their own."""
    cal, exc = calendar_tables([(THU, 0)])
    first = calendars_of(cal, exc)
    assert calendars_of(dict(cal), dict(exc)) is first  # other dicts, the same columns
    copied = {k: v.copy() for k, v in exc.items()}
    assert calendars_of(cal, copied) is not first
    # A calendar made of other columns answers for its own data.
    other_cal, other_exc = calendar_tables([(THU, 1)])
    other = calendars_of(other_cal, other_exc)
    d, lead, c = np.array([MON]), np.array([3]), np.array([0])
    assert first.shift(d, lead, c, 1).tolist() == [day(4)]
    assert other.shift(d, lead, c, 1).tolist() == [day(3)]
