"""SPEC §5.1 Time: whole days, effective dates, working-day lead-time arithmetic.

Dates are handled as proleptic ordinals (``datetime.date.toordinal``) so that
"plus N calendar days" is plain integer addition.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

# A futures / available date that never comes (§5.7 "never").
NEVER: int = 10**9

# Safety bound for the working-day searches: a calendar that has no working
# day within this many days of the start is treated as "every day works"
# (§5.1 leaves a calendar without any working day open; see NOTES.md).
_SEARCH_LIMIT_DAYS = 20_000


def to_day(value: Any) -> int | None:
    """An input date ('YYYY-MM-DD', date or datetime) as an ordinal; None stays None."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date().toordinal()
    if isinstance(value, dt.date):
        return value.toordinal()
    return dt.date.fromisoformat(str(value)[:10]).toordinal()


def iso(day: int | None) -> str | None:
    """An ordinal as an ISO date string (None and NEVER give None)."""
    if day is None or day >= NEVER:
        return None
    return dt.date.fromordinal(day).isoformat()


@dataclass
class Calendar:
    """`calendars` row plus its `calendar_exceptions`."""

    calendar_id: str
    # 7 chars '0'/'1', Monday first, '1' = working, at least one '1': any other
    # pattern (NULL included) is INVALID_ROW and its calendar is left out (§5.9)
    working_weekdays: str
    exceptions: dict[int, bool] = field(default_factory=dict)

    def is_working(self, day: int) -> bool:
        if day in self.exceptions:
            return self.exceptions[day]
        weekday = dt.date.fromordinal(day).weekday()  # Monday = 0
        return self.working_weekdays[weekday] == "1"


def minus_working_days(cal: Calendar | None, d: int, lead: int) -> int:
    """§5.1: for L > 0, `d` minus L working days is the latest working day x
    with exactly L working days in [x, d). L = 0 changes nothing. Without a
    calendar every day works."""
    if lead <= 0:
        return d  # a negative lead time counts as 0 (§5.2)
    if cal is None:
        return d - lead
    count = 0
    x = d
    for _ in range(_SEARCH_LIMIT_DAYS + lead):
        x -= 1
        if cal.is_working(x):
            count += 1
            if count == lead:
                return x
    return d - lead  # no working days at all: calendar days (NOTES.md)


def plus_working_days(cal: Calendar | None, o: int, lead: int) -> int:
    """§5.1: for L > 0, `o` plus L working days is the earliest working day y
    with exactly L working days in [o, y). L = 0 changes nothing."""
    if lead <= 0:
        return o  # a negative lead time counts as 0 (§5.2)
    if cal is None:
        return o + lead
    count = 0  # working days in [o, y)
    y = o
    for _ in range(_SEARCH_LIMIT_DAYS + lead):
        if count == lead and cal.is_working(y):
            return y
        if cal.is_working(y):
            count += 1
        y += 1
    return o + lead  # no working days at all: calendar days (NOTES.md)
