"""Array helpers the engine builds on, against numpy's own definitions."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from masterplan.server.engine.arrays import unique_ints

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
