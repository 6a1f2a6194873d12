"""The walk order (SPEC §5.5) equals a plain lexsort of all keys and the refs.

``walk_order`` packs the keys into one integer where their ranges allow, and
ranks refs only where the keys tie; neither shortcut may change the order.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from numpy.dtypes import StringDType

from masterplan.server.engine.arrays import unique_strings
from masterplan.server.engine.columns import walk_order

REFS = ["PL:A/W/1/10", "PL:A/W/10/10", "PL:A-1/W/2", "SO:1/1", "SO:1/10", "FC:A/W/2024-01-01"]


@st.composite
def columns(draw: st.DrawFn) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    n = draw(st.integers(0, 60))
    # Narrow ranges make ties; a huge range forces the lexsort path.
    span = draw(st.sampled_from([1, 3, 1 << 40]))
    prio = np.array(draw(st.lists(st.sampled_from([0.0, 1.0, 2.5]), min_size=n, max_size=n)))
    kind = np.array(draw(st.lists(st.integers(0, 6), min_size=n, max_size=n)), dtype=np.int64)
    date = np.array(draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)), dtype=np.int64)
    sku = np.array(draw(st.lists(st.integers(0, span - 1), min_size=n, max_size=n)), dtype=np.int64)
    refs = np.array(
        draw(st.lists(st.sampled_from(REFS), min_size=n, max_size=n)), dtype=StringDType()
    )
    return (prio, kind, date, sku), refs


@given(columns())
def test_walk_order_is_the_lexsort_of_keys_and_refs(cols: tuple) -> None:
    keys, refs = cols
    expected = np.lexsort((unique_strings(refs)[1], *keys)) if len(refs) else np.empty(0, int)
    assert walk_order(keys, refs).tolist() == expected.tolist()


def test_walk_order_with_rank_function_sees_only_tied_rows() -> None:
    keys = (np.zeros(4), np.array([2, 1, 1, 0]))
    refs = np.array(["b", "z", "a", "c"], dtype=StringDType())
    asked: list[list[int]] = []

    def ranks(rows: np.ndarray) -> np.ndarray:
        asked.append(sorted(rows.tolist()))
        return unique_strings(refs[rows])[1]

    assert walk_order(keys, ranks).tolist() == [3, 2, 1, 0]
    assert asked == [[1, 2]]
