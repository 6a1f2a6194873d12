"""Time (SPEC §5.1): the plan date, effective dates, and lead-time
arithmetic over working-day calendars.

Dates are int64 days since 1970-01-01 inside the engine. A requirement or
receipt dated before ``T0`` counts as ``T0`` (:func:`effective`); only lead
times use calendars, every other span counts calendar days.

For ``L > 0`` working days on a calendar: ``d - L`` is the latest working day
``x`` with exactly ``L`` working days in ``[x, d)``, and ``o + L`` the
earliest working day ``y`` with exactly ``L`` working days in ``[o, y)``;
``L = 0`` changes nothing. SKUs without ``use_working_days`` or without a
calendar count calendar days.

Vectorised per calendar: over a span of days that covers every query, the
working days are listed in order and ``W(d)``, the number of working days
before ``d``, is a cumulative sum; then ``d - L`` is working day number
``W(d) - L`` and ``o + L`` working day number ``W(o) + L``. A calendar with
no working day within ``SEARCH_LIMIT`` days of a query falls back to
calendar days for it, so that a calendar with no working days cannot stall a
run.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict

import numpy as np

from masterplan.server.engine.arrays import NO_DATE, days, lookup
from masterplan.server.engine.types import Table

__all__ = ["SEARCH_LIMIT", "Calendars", "calendars_of", "effective", "plan_day"]

#: Days searched for working days before falling back to calendar days.
SEARCH_LIMIT = 20_000


def plan_day(date: dt.date) -> int:
    """The plan date ``T0`` as int64 days since 1970-01-01, the engine's date unit."""
    return int(np.datetime64(date, "D").astype(np.int64))


def effective(d: np.ndarray, t0: int) -> np.ndarray:
    """int64 (N,): the effective dates of days ``d``: a date before ``T0`` counts as ``T0``."""
    return np.maximum(d, t0)


class Calendars:
    """The ``calendars`` and ``calendar_exceptions`` of a data set.

    Parameters
    ----------
    calendars, exceptions : Table
        The validated tables.

    Attributes
    ----------
    ids : object (C,)
        Calendar ids in code-point order; a calendar's number is its position.
    patterns : list of bool (7,)
        Working weekdays of each calendar, Monday first (NULL: every day).
    exc_cal, exc_day : int64 (X,)
        Calendar number and day of each exception of a known calendar.
    exc_working : bool (X,)
        Whether the exception's day works.
    """

    def __init__(self, calendars: Table, exceptions: Table) -> None:
        ids = calendars["calendar_id"].astype(str)
        order = np.argsort(ids, kind="stable")
        self.ids = calendars["calendar_id"][order]
        self.patterns: list[np.ndarray] = []
        for text in calendars["working_weekdays"][order]:
            if text is None:
                self.patterns.append(np.ones(7, dtype=bool))
            else:
                flags = np.array([c == "1" for c in str(text)[:7]] + [False] * 7, dtype=bool)
                self.patterns.append(flags[:7])
        cal = lookup(exceptions["calendar_id"], self.ids)
        known = cal >= 0
        self.exc_cal = cal[known]
        self.exc_day = days(exceptions["day"])[known]
        self.exc_working = np.nan_to_num(exceptions["is_working"][known]) != 0
        # Per calendar: the span of days listed (first, stop), its working
        # days in order and the working days before each (see :meth:`_span`).
        self._spans: dict[int, tuple[int, int, np.ndarray, np.ndarray]] = {}

    def index(self, calendar_ids: np.ndarray) -> np.ndarray:
        """Calendar number of each id, -1 for NULL or unknown."""
        return lookup(calendar_ids, self.ids)

    def _working(self, c: int, start: int, stop: int) -> np.ndarray:
        """Working-day flags of calendar ``c`` for days ``start..stop-1``."""
        day = np.arange(start, stop, dtype=np.int64)
        flags = self.patterns[c][(day + 3) % 7]  # 1970-01-01 was a Thursday
        mine = (self.exc_cal == c) & (self.exc_day >= start) & (self.exc_day < stop)
        flags[self.exc_day[mine] - start] = self.exc_working[mine]
        return flags

    def _span(self, c: int, start: int, stop: int) -> tuple[int, np.ndarray, np.ndarray]:
        """Calendar ``c``'s working days over a span covering ``start..stop-1``:
        its first day, the working days in order, and ``W`` (``before[i]``,
        the working days before day ``first + i``).

        Kept and widened as queries need: a run shifts dates on the same
        calendars dozens of times, and listing 40,000 days each time was most
        of a small run's lead-time arithmetic. A wider span gives the same
        shifts, because the distance checks in :meth:`shift` bound every
        result to the span a single query would have listed.
        """
        # One entry per calendar, replaced whole: runs that share these
        # calendars (see :func:`calendars_of`) may widen it at once.
        have = self._spans.get(c)
        if have is not None and have[0] <= start and stop <= have[1]:
            return have[0], have[2], have[3]
        if have is not None:
            start, stop = min(start, have[0]), max(stop, have[1])
        flags = self._working(c, start, stop)
        work, before = np.flatnonzero(flags) + start, np.concatenate(([0], np.cumsum(flags)))
        self._spans[c] = (start, stop, work, before)
        return start, work, before

    def shift(self, d: np.ndarray, lead: np.ndarray, cal: np.ndarray, sign: int) -> np.ndarray:
        """``d`` plus (``sign`` 1) or minus (-1) ``lead`` days on calendars ``cal``.

        Entries with ``cal`` -1, ``lead`` <= 0 or no date (:data:`NO_DATE`)
        use calendar days (a non-positive lead is plain arithmetic).
        """
        d = np.asarray(d, dtype=np.int64)
        lead = np.asarray(lead, dtype=np.int64)
        out = np.where(d >= NO_DATE, NO_DATE, d + sign * lead)
        todo = (cal >= 0) & (lead > 0) & (d < NO_DATE)
        if not todo.any():
            return out
        for c in np.unique(cal[todo]):
            sel = np.flatnonzero(todo & (cal == c))
            q, L = d[sel], lead[sel]
            start = int(q.min() - L.max()) - SEARCH_LIMIT - 2
            stop = int(q.max() + L.max()) + SEARCH_LIMIT + 2
            start, work, before = self._span(int(c), start, stop)
            w = before[q - start]
            n = np.where(sign > 0, w + L, w - L)
            ok = (n >= 0) & (n < len(work))
            res = work[np.clip(n, 0, max(len(work) - 1, 0))] if len(work) else q
            if sign > 0:
                ok &= res - q <= SEARCH_LIMIT + L - 1
            else:
                ok &= q - res <= SEARCH_LIMIT + L
            out[sel] = np.where(ok, res, q + sign * L)
        return out


#: How many data sets' calendars :func:`calendars_of` keeps.
_KEPT = 8
#: The columns a :class:`Calendars` is made of.
_COLUMNS = (
    ("calendars", "calendar_id"),
    ("calendars", "working_weekdays"),
    ("exceptions", "calendar_id"),
    ("exceptions", "day"),
    ("exceptions", "is_working"),
)
_kept: OrderedDict[tuple[int, ...], tuple[list[np.ndarray], Calendars]] = OrderedDict()
_kept_lock = threading.Lock()


def calendars_of(calendars: Table, exceptions: Table) -> Calendars:
    """:class:`Calendars` of these tables, the same object for the same columns.

    A net change plans a small data set that holds the whole plan's very
    calendar columns, and a run of it would otherwise list every calendar's
    working days again (a few milliseconds of a net change's few tens).
    Kept by the columns' identity, with the columns themselves (so that the
    identity cannot pass to other arrays); the engine never writes into an
    input column, so the same columns are the same calendars.
    """
    tables = {"calendars": calendars, "exceptions": exceptions}
    columns = [tables[t][c] for t, c in _COLUMNS]
    key = tuple(id(c) for c in columns)
    with _kept_lock:
        held = _kept.get(key)
        if held is not None and all(a is b for a, b in zip(held[0], columns, strict=True)):
            _kept.move_to_end(key)
            return held[1]
    made = Calendars(calendars, exceptions)
    with _kept_lock:
        _kept[key] = (columns, made)
        _kept.move_to_end(key)
        while len(_kept) > _KEPT:
            _kept.popitem(last=False)
    return made
