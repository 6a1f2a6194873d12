"""``kernels.factorize``: the hash table that numbers a data set's item ids
when it is cut into clusters (:mod:`server.engine.partition`)."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from masterplan.server.engine.kernels import factorize

_INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)


def _first_appearance_codes(values: list[int]) -> list[int]:
    seen: dict[int, int] = {}
    return [seen.setdefault(v, len(seen)) for v in values]


@given(st.lists(st.one_of(_INT64, st.integers(0, 40)), max_size=300), st.integers(0, 50))
def test_codes_number_equal_values_alike_in_order_of_first_appearance(
    values: list[int], expected: int
) -> None:
    """Whatever the estimate of distinct values (the table grows past it)."""
    got = factorize(np.array(values, dtype=np.int64), expected)
    assert got.dtype == np.int64
    assert got.tolist() == _first_appearance_codes(values)


def test_values_that_share_their_low_bits_probe_past_each_other() -> None:
    """Hashes equal in every bit a small table looks at, and the growth of a
    table sized far too small."""
    values = np.array([k << 40 for k in range(1000)] * 3 + [-1, -1, 0], dtype=np.int64)
    got = factorize(values, 1)
    assert got.tolist() == _first_appearance_codes(values.tolist())
    assert got.max() == 1000
