"""connector.copytext: a COPY text payload reads back as exactly the rows it was made of.

Read back here by the rules of PostgreSQL's text format (the writer tests
send such payloads to a real PostgreSQL); any text, NULLs, every float and
any day must survive.
"""

from __future__ import annotations

import datetime as dt
import math
import re

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from masterplan.connector.copytext import copy_text
from masterplan.contract.tables import ColumnKind, ColumnSpec

_UNESCAPE = {"\\\\": "\\", "\\t": "\t", "\\n": "\n", "\\r": "\r"}

COLUMNS = (
    ColumnSpec("ref", ColumnKind.STR, nullable=True),
    ColumnSpec("qty", ColumnKind.FLOAT, nullable=True),
    ColumnSpec("flag", ColumnKind.INT, nullable=True),
    ColumnSpec("day", ColumnKind.DATE, nullable=True),
)


def _value(field: str) -> str | None:
    if field == "\\N":
        return None
    return re.sub(r"\\[\\tnr]", lambda m: _UNESCAPE[m.group(0)], field)


def _read(payload: str) -> list[list[str | None]]:
    assert payload.endswith("\n")
    return [[_value(f) for f in line.split("\t")] for line in payload[:-1].split("\n")]


rows = st.lists(
    st.tuples(
        st.none() | st.text(),
        st.none() | st.floats(allow_nan=False, allow_infinity=False),
        st.none() | st.integers(-(2**40), 2**40),
        st.none() | st.dates(dt.date(1, 1, 1), dt.date(9999, 12, 31)),
    ),
    min_size=1,
    max_size=30,
)


@given(rows)
def test_every_row_reads_back_as_it_was(given_rows: list[tuple]) -> None:
    refs, qty, flag, day = zip(*given_rows, strict=True)
    table = {
        "ref": np.array(refs, dtype=object),
        "qty": np.array([np.nan if q is None else q for q in qty], dtype=np.float64),
        "flag": np.array([np.nan if f is None else f for f in flag], dtype=np.float64),
        "day": np.array(
            [np.datetime64("NaT") if d is None else np.datetime64(d, "D") for d in day],
            dtype="datetime64[D]",
        ),
    }
    payload = copy_text(COLUMNS, table, {"plan_id": "main\tplan"})
    back = _read(payload)
    assert len(back) == len(given_rows)
    for fields, (ref, q, f, d) in zip(back, given_rows, strict=True):
        assert fields[0] == "main\tplan"
        assert fields[1] == ref
        assert (None if fields[2] is None else float(fields[2])) == (None if q is None else q)
        assert (None if fields[3] is None else int(fields[3])) == (
            None if f is None else int(float(f))
        )
        assert fields[4] == (None if d is None else d.isoformat())


def test_no_rows_make_no_payload() -> None:
    empty = {c.name: np.empty(0) for c in COLUMNS}
    assert copy_text(COLUMNS, empty) == ""


@given(
    st.lists(
        st.sampled_from([0.0, -0.0, 1.0, 2.5, 0.1, 1e16, 2.0**60, np.nan]), min_size=1, max_size=40
    )
)
def test_repeated_quantities_read_back_each_as_it_was(qty: list[float]) -> None:
    """Each distinct value is formatted once and shared by its rows: every
    row still reads back as its own value, the sign of a zero included."""
    table = {
        "ref": np.array(["r"] * len(qty), dtype=object),
        "qty": np.array(qty, dtype=np.float64),
        "flag": np.array(qty, dtype=np.float64),
        "day": np.full(len(qty), np.datetime64("2026-01-05"), dtype="datetime64[D]"),
    }
    back = _read(copy_text(COLUMNS, table, {"plan_id": "main", "run_id": "r1"}))
    for fields, q in zip(back, qty, strict=True):
        assert fields[:2] == ["main", "r1"]
        if np.isnan(q):
            assert fields[3] is None and fields[4] is None
            continue
        assert fields[3] is not None and fields[4] is not None
        read = float(fields[3])
        assert read == q and math.copysign(1.0, read) == math.copysign(1.0, q)
        assert int(fields[4]) == round(q)
