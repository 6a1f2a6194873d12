"""A net change's patched result table: whatever patches it takes, its rows
and the rows it hands out per SKU are those of the table it stands for.

The reference keeps the table whole (a list of ``(sku, value)`` rows) and
replaces a SKU's rows literally; :class:`PatchedTable` must agree with it
after every patch, with rows of no SKU (-1) in the base and compaction on
and off.
"""

from __future__ import annotations

from unittest import mock

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from masterplan.server.engine import layers
from masterplan.server.engine.layers import PatchedTable

SLOTS = 6

_skus = st.integers(-1, SLOTS - 1)
_rows = st.lists(_skus, max_size=12)
_patches = st.lists(
    st.tuples(st.sets(st.integers(0, SLOTS - 1), max_size=SLOTS), st.lists(_skus, max_size=6)),
    max_size=6,
)


def _table(skus: list[int], first: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Rows of SKU numbers ``skus`` with a distinct ``value`` each (from ``first``)."""
    sku = np.array(skus, dtype=np.int64)
    return {"value": np.arange(first, first + len(sku), dtype=np.int64), "sku": sku}, sku


def _reference_rows(rows: list[tuple[int, int]], flags: np.ndarray) -> list[tuple[int, int]]:
    return [(s, v) for s, v in rows if s >= 0 and flags[s]]


@given(base=_rows, patches=_patches, compact=st.booleans())
def test_a_patched_table_holds_the_rows_of_the_table_it_stands_for(
    base: list[int], patches: list[tuple[set[int], list[int]]], compact: bool
) -> None:
    limits = (0, 0.0) if compact else (layers._COMPACT_MIN, layers._COMPACT_SHARE)
    with (
        mock.patch.object(layers, "_COMPACT_MIN", limits[0]),
        mock.patch.object(layers, "_COMPACT_SHARE", limits[1]),
    ):
        columns, sku = _table(base, 0)
        table = PatchedTable.of(columns, sku, SLOTS)
        # The reference: base rows kept in order, each SKU's new rows after them.
        reference = list(zip(base, columns["value"].tolist(), strict=True))
        first = len(base)
        for replaced_skus, new_skus in patches:
            flags = np.zeros(SLOTS + 1, dtype=bool)
            flags[list(replaced_skus)] = True
            # The rows handed out for the flagged SKUs are theirs, in table order.
            got = table.rows_of(flags)
            assert list(zip(got["sku"].tolist(), got["value"].tolist(), strict=True)) == (
                _reference_rows(reference, flags)
            )
            # A patch brings rows of the replaced SKUs only.
            new = [s for s in new_skus if s >= 0 and flags[s]]
            rows, new_sku = _table(new, first)
            first += len(new)
            table = table.replaced(flags, rows, new_sku)
            reference = [(s, v) for s, v in reference if s < 0 or not flags[s]]
            reference += list(zip(new, rows["value"].tolist(), strict=True))
            assert len(table) == len(reference)
            whole = table.table()
            assert list(zip(whole["sku"].tolist(), whole["value"].tolist(), strict=True)) == (
                reference
            )
