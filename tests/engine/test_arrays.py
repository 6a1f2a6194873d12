"""Array helpers the engine builds on, against numpy's own definitions."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from masterplan.server.engine.arrays import NO_DATE, gather, narrow, to_datetime, unique_ints

_INT_TYPES = st.sampled_from([np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint64])


@given(_INT_TYPES.flatmap(lambda t: hnp.arrays(t, st.integers(0, 300))))
def test_unique_ints_is_numpys_unique(values: np.ndarray) -> None:
    """Dense and sparse ranges, narrow types whose range minus its minimum
    overflows the type, empty arrays: sorted distinct values, same dtype."""
    got = unique_ints(values)
    want = np.unique(values)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


def test_unique_ints_of_a_wide_range_and_of_sku_numbers() -> None:
    wide = np.array([2**40, -(2**40), 7, 7, 0], dtype=np.int64)
    np.testing.assert_array_equal(unique_ints(wide), [-(2**40), 0, 7, 2**40])
    skus = np.random.default_rng(3).integers(0, 100_000, 400_000)
    np.testing.assert_array_equal(unique_ints(skus), np.unique(skus))


def test_unique_ints_of_unsigned_values_beyond_int64() -> None:
    """A dense range above ``2**63 - 1`` cannot be marked in int64 positions."""
    big = np.array([2**63, 2**63 + 2, 2**63], dtype=np.uint64)
    got = unique_ints(big)
    assert got.dtype == np.uint64
    np.testing.assert_array_equal(got, np.array([2**63, 2**63 + 2], dtype=np.uint64))


def test_narrow_keeps_every_value_and_narrows_only_what_fits() -> None:
    small = np.array([-(2**31), 0, 2**31 - 1], dtype=np.int64)
    narrowed = narrow(small)
    assert narrowed.dtype == np.int32
    assert narrowed.tolist() == small.tolist()
    for wide in ([2**31], [-(2**31) - 1], [0, NO_DATE]):
        values = np.array(wide, dtype=np.int64)
        assert narrow(values) is values
    floats, empty = np.array([1.5]), np.empty(0, dtype=np.int64)
    assert narrow(floats) is floats
    assert narrow(empty) is empty


@given(
    st.lists(st.integers(-5, 5), max_size=20),
    st.sampled_from([np.int32, np.int64]),
)
def test_gather_fills_negative_positions_whatever_the_index_width(
    picks: list[int], width: type
) -> None:
    values = np.array([10.0, 11.0, 12.0, 13.0, 14.0, 15.0])
    got = gather(values, np.array(picks, dtype=width), -1.0)
    assert got.dtype == values.dtype
    assert got.tolist() == [values[p] if p >= 0 else -1.0 for p in picks]


def test_days_to_dates_whatever_their_width() -> None:
    wide = np.array([0, 20458, -5, NO_DATE], dtype=np.int64)
    assert to_datetime(wide).astype(str).tolist() == [
        "1970-01-01",
        "2026-01-05",
        "1969-12-27",
        "NaT",
    ]
    assert to_datetime(wide[:3].astype(np.int32)).tolist() == to_datetime(wide[:3]).tolist()
