"""The plan dates a run accepts, checked before any work (SPEC §5.1, §5.9).

A plan derives dates from its plan date ``T0``: order dates a lead time
before a due date, futures dates a lead time after, coverage and fence
periods either side, each up to 100 years (the engine's bound on a number of
days). Every such date must be one that Python and every supported
database's DATE column hold (MariaDB's from 1000-01-01, all to 9999-12-31),
or the write fails after the whole plan was made. A plan date outside this
range is refused up front instead; no real plan is dated outside it.
"""

from __future__ import annotations

import datetime as dt

__all__ = ["EARLIEST_PLAN_DATE", "LATEST_PLAN_DATE", "plan_date_problem"]

#: The earliest plan date a run accepts.
EARLIEST_PLAN_DATE = dt.date(1900, 1, 1)
#: The latest plan date a run accepts: 100 years of derived dates still fit
#: before 9999-12-31.
LATEST_PLAN_DATE = dt.date(9899, 12, 31)


def plan_date_problem(plan_date: dt.date) -> str | None:
    """Why ``plan_date`` cannot be a plan's ``T0``; None when it can."""
    if EARLIEST_PLAN_DATE <= plan_date <= LATEST_PLAN_DATE:
        return None
    return (
        f"plan date {plan_date.isoformat()} is outside {EARLIEST_PLAN_DATE.isoformat()}"
        f"..{LATEST_PLAN_DATE.isoformat()}: the dates a plan derives from it would not fit"
        " a database's DATE column"
    )
