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
from masterplan.server.engine.kernels import byte_table, spell_numbered

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
    spelled = spell_numbered(byte_table(table), index, num)  # type: ignore[arg-type]
    assert spelled is not None and spelled.dtype == _STR
    assert spelled.tolist() == _numpy(table, index, num).tolist()


def test_blocks_of_the_buffer_join_into_one_column(monkeypatch: pytest.MonkeyPatch) -> None:
    """More rows than one block holds: each block lands where it belongs,
    its width the longest number's."""
    monkeypatch.setattr(kernels, "_SPELL_ROWS", 7)
    table = np.array(["FG-1/DC/", "RAW-22/PLANT/", "x/\x00/"], dtype=_STR)
    index = np.arange(50) % 3
    num = np.arange(50) ** 3
    spelled = spell_numbered(byte_table(table), index, num)  # type: ignore[arg-type]
    assert spelled is not None and spelled.tolist() == _numpy(table, index, num).tolist()


def test_text_that_is_not_ascii_or_a_negative_number_is_declined() -> None:
    table = np.array(["FG-1/DC/", "Zahnrad-ü/DC/"], dtype=_STR)
    assert byte_table(table) is None
    ascii_bytes = byte_table(table[:1])
    assert ascii_bytes is not None
    assert spell_numbered(ascii_bytes, np.array([0]), np.array([-1])) is None
    empty = spell_numbered(ascii_bytes, np.array([], dtype=np.int64), np.array([]))
    assert empty is not None and empty.tolist() == []


def test_planned_order_ids_spelled_either_way_are_equal() -> None:
    """The orders' ids where the speller declines (a warehouse id not ASCII)
    are numpy's: the same rule, the slower path."""
    from masterplan.server.engine.orderrefs import _numbered

    table = np.array(["A/Lager-Süd/", "B/DC/"], dtype=_STR)
    index, num = np.array([0, 1, 1, 0]), np.array([1, 2, 10, 3])
    assert _numbered(table, byte_table(table), index, num).tolist() == [
        "A/Lager-Süd/1",
        "B/DC/2",
        "B/DC/10",
        "A/Lager-Süd/3",
    ]


@given(
    st.lists(ascii_text, min_size=1, max_size=8),
    st.lists(ascii_text, max_size=8),
    st.lists(
        st.tuples(st.integers(0, 10**6), st.integers(0, 10**12), st.integers(-1, 10**6)),
        max_size=40,
    ),
)
def test_tails_follow_the_number_where_a_row_names_one(
    heads: list[str], tails: list[str], rows: list[tuple[int, int, int]]
) -> None:
    """``PL:{id}/{line_no}`` of a dependent requirement: a tail (the BOM
    line's ``/{line_no}``) after the number, none for a transfer (-1)."""
    table = np.array(heads, dtype=_STR)
    ends = np.array(tails, dtype=_STR)
    index = np.array([i % len(heads) for i, _, _ in rows], dtype=np.int64)
    num = np.array([n for _, n, _ in rows], dtype=np.int64)
    picks = np.array(
        [t % len(tails) if tails and t >= 0 else -1 for _, _, t in rows], dtype=np.int64
    )
    head_bytes, tail_bytes = byte_table(table), byte_table(ends)
    assert head_bytes is not None and tail_bytes is not None
    spelled = spell_numbered(head_bytes, index, num, tail_bytes, picks)
    padded = np.r_[ends, np.array([""], dtype=_STR)]
    expected = np.strings.add(_numpy(table, index, num), padded[picks])
    if spelled is None:  # declined: only where a tail ends with NUL
        assert len(rows) and any(t.endswith("\x00") for t in tails)
    else:
        assert spelled.tolist() == expected.tolist()
    assert byte_table(np.r_[ends, np.array(["/ü"], dtype=_STR)]) is None


def test_nul_characters_at_the_end_of_a_head_or_tail_are_kept_or_declined() -> None:
    """Found by the properties above: numpy's fixed-width bytes and its
    ``str_len`` drop trailing NUL characters. A head's are kept (the number
    follows it); a tail ending in one, which would end the text, is
    declined."""
    heads = np.array(["\x00", "a\x00", ""], dtype=_STR)
    index, num = np.array([0, 1, 2]), np.array([0, 7, 12])
    head_bytes = byte_table(heads)
    assert head_bytes is not None
    spelled = spell_numbered(head_bytes, index, num)
    assert spelled is not None and spelled.tolist() == ["\x000", "a\x007", "12"]
    tails = byte_table(np.array(["/1", "\x00"], dtype=_STR))
    assert tails is not None
    assert spell_numbered(head_bytes, index, num, tails, np.array([0, -1, 0])) is None
    fine = byte_table(np.array(["/1", "\x00/2"], dtype=_STR))
    assert fine is not None
    spelled = spell_numbered(head_bytes, index, num, fine, np.array([1, -1, 0]))
    assert spelled is not None and spelled.tolist() == ["\x000\x00/2", "a\x007", "12/1"]


def test_spelled_into_a_slice_of_a_larger_array_the_rest_as_it_was(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A dictionary spelled in parts (a run's requirement refs, segment by
    segment) is spelled into its places; where the speller declines, the
    place is left for the caller to fill."""
    monkeypatch.setattr(kernels, "_SPELL_ROWS", 4)
    table = np.array(["PL:FG-1/DC/", "PL:RAW-22/PLANT/"], dtype=_STR)
    index = np.arange(10) % 2
    num = np.arange(10) * 7
    before = ["kept"] * 3 + [""] * 10 + ["also kept"] * 2
    out = np.array(before, dtype=_STR)
    spelled = spell_numbered(byte_table(table), index, num, out=out[3:13])  # type: ignore[arg-type]
    assert spelled is not None
    assert out.tolist() == before[:3] + _numpy(table, index, num).tolist() + before[13:]
    untouched = np.array(before, dtype=_STR)
    declined = spell_numbered(byte_table(table), index, num - 1, out=untouched[3:13])  # type: ignore[arg-type]
    assert declined is None and untouched.tolist() == before
