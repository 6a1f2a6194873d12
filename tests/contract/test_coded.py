"""Coded text columns hold their codes in four bytes a row at most: a plan's
id and ref columns are millions of cells, kept while the plan is current."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.dtypes import StringDType

from masterplan.contract.coded import CODE_DTYPE, Coded, values_at

VALUES = np.array(["W1", "W2", None], dtype=object)


def test_wide_codes_are_held_as_int32_and_say_the_same_text() -> None:
    column = Coded(np.array([1, -1, 0, 2], dtype=np.int64), VALUES)
    assert column.codes.dtype == CODE_DTYPE == np.int32
    assert column.to_array().tolist() == ["W2", None, "W1", None]
    # Rows taken from it stay int32 without a copy of the dictionary.
    part = column[1:3]
    assert part.codes.dtype == np.int32 and part.values is VALUES


def test_narrower_codes_stay_narrow() -> None:
    """A packed result's one-byte codes are not widened until it is unpacked."""
    column = Coded(np.array([0, 1, -1], dtype=np.int8), VALUES)
    assert column.codes.dtype == np.int8
    assert column.to_array().tolist() == ["W1", "W2", None]


def test_unsigned_codes_become_signed() -> None:
    """-1 is NULL: codes must be signed."""
    column = Coded(np.array([0, 1], dtype=np.uint64), VALUES)
    assert column.codes.dtype == np.int32


def test_long_text_is_gathered_by_int32_codes() -> None:
    """Refs past 15 bytes live outside a ``StringDType`` array's slots, where
    NumPy 2.1 cannot gather them by an ``int32`` index; ``values_at`` can."""
    refs = np.array([f"SO-{i:020d}/1" for i in range(5001)], dtype=StringDType())
    # Codes far apart: a chunk's dictionary is then made by sorting them.
    column = Coded(np.array([5000, -1, 0], dtype=np.int64), refs)
    valid = column.codes >= 0
    assert values_at(column.values, column.codes[valid]).tolist() == [refs[5000], refs[0]]
    assert column.to_array().tolist() == [refs[5000], None, refs[0]]
    codes, words = column.chunk_dictionary(0, 3)
    assert [None if c < 0 else words[c] for c in codes.tolist()] == column.to_array().tolist()


@pytest.mark.parametrize(
    "values",
    [
        np.array(["W1", None, "W2"], dtype=object),
        np.array(["W1", None, "W2"], dtype=StringDType(na_object=None)),
        np.array(["W1", "", "W2"], dtype=StringDType()),  # no NULL of its own
    ],
)
def test_a_chunk_dictionary_holds_no_null_and_codes_say_the_text(values: np.ndarray) -> None:
    column = Coded(np.array([2, 1, 0, -1, 1], dtype=np.int32), values)
    codes, words = column.chunk_dictionary(0, 5)
    assert None not in words
    assert [None if c < 0 else words[c] for c in codes.tolist()] == column.to_array().tolist()


@settings(max_examples=200)
@given(
    words=st.lists(st.one_of(st.none(), st.text(max_size=20)), min_size=1, max_size=30),
    picks=st.lists(st.integers(-1, 29), max_size=60),
    kind=st.sampled_from(["object", "strings", "strings with NULL"]),
)
def test_to_array_says_each_rows_text_whether_rows_or_values_are_more(
    words: list[str | None], picks: list[int], kind: str
) -> None:
    """A column of fewer rows than values is gathered before it becomes
    objects, one of more the other way round: both say each row's text."""
    if kind == "strings":
        words = [w or "" for w in words]
        values = np.array(words, dtype=StringDType())
    elif kind == "strings with NULL":
        values = np.array(words, dtype=StringDType(na_object=None))
    else:
        values = np.array(words, dtype=object)
    codes = np.array([p if p < len(words) else p % len(words) for p in picks], dtype=np.int32)
    expected = [None if c < 0 else words[c] for c in codes.tolist()]
    assert Coded(codes, values).to_array().tolist() == expected
