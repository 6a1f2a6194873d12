"""The compiled speller of planned-order ids: numpy's spelling, byte for byte.

``kernels.spell_numbered`` writes ``{head}{n}`` (a planned order's
``{item}/{warehouse}/`` or ``PL:{item}/{warehouse}/`` and its number) into a
byte buffer and casts it to text; what it gives must be exactly what
``numpy.strings.add`` gives, and where it cannot (text that is not ASCII, a
negative number) it must decline rather than spell something else.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.dtypes import StringDType

from masterplan.server.engine import kernels
from masterplan.server.engine.kernels import spell_numbered

_STR = StringDType()

ascii_text = st.text(st.characters(min_codepoint=0, max_codepoint=127), max_size=40)


def _numpy(heads: np.ndarray, index: np.ndarray, num: np.ndarray) -> np.ndarray:
    return np.strings.add(heads[index], num.astype(_STR))


@given(
    st.lists(ascii_text, min_size=1, max_size=20),
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 2**63 - 1)), max_size=60),
)
def test_ascii_heads_are_spelled_as_numpy_spells_them(
    heads: list[str], rows: list[tuple[int, int]]
) -> None:
    table = np.array(heads, dtype=_STR)
    index = np.array([i % len(heads) for i, _ in rows], dtype=np.int64)
    num = np.array([n for _, n in rows], dtype=np.int64)
    spelled = spell_numbered(table, index, num)
    assert spelled is not None and spelled.dtype == _STR
    assert spelled.tolist() == _numpy(table, index, num).tolist()


def test_blocks_of_the_buffer_join_into_one_column(monkeypatch: pytest.MonkeyPatch) -> None:
    """More rows than one block holds: each block lands where it belongs,
    its width the longest number's."""
    monkeypatch.setattr(kernels, "_SPELL_ROWS", 7)
    table = np.array(["FG-1/DC/", "RAW-22/PLANT/", "x/\x00/"], dtype=_STR)
    index = np.arange(50) % 3
    num = np.arange(50) ** 3
    assert spell_numbered(table, index, num).tolist() == _numpy(table, index, num).tolist()  # type: ignore[union-attr]


def test_text_that_is_not_ascii_or_a_negative_number_is_declined() -> None:
    table = np.array(["FG-1/DC/", "Zahnrad-ü/DC/"], dtype=_STR)
    assert spell_numbered(table, np.array([0, 1]), np.array([1, 2])) is None
    assert spell_numbered(table[:1], np.array([0]), np.array([-1])) is None
    assert spell_numbered(table, np.array([], dtype=np.int64), np.array([])).tolist() == []  # type: ignore[union-attr]


def test_planned_order_ids_spelled_either_way_are_equal() -> None:
    """The orders' ids where the speller declines (a warehouse id not ASCII)
    are numpy's: the same rule, the slower path."""
    from masterplan.server.engine.orderrefs import _numbered

    table = np.array(["A/Lager-Süd/", "B/DC/"], dtype=_STR)
    index, num = np.array([0, 1, 1, 0]), np.array([1, 2, 10, 3])
    assert _numbered(table, index, num).tolist() == [
        "A/Lager-Süd/1",
        "B/DC/2",
        "B/DC/10",
        "A/Lager-Süd/3",
    ]
