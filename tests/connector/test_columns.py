"""Column arrays to driver values (connector.columns): dates written as text
on SQLite must be exactly the text SQLite's date adapter would have stored."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from masterplan.connector.columns import column_to_values
from masterplan.contract.tables import ColumnKind

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
