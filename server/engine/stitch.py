"""Joining the previous run's rows with a partial plan's rows, table by table.

A net change keeps the previous run's rows of the SKUs it did not re-plan
and adds the re-planned SKUs' rows (:mod:`.incremental`). Every result row
belongs to one SKU (a pegging row and a delay message to their demand's),
so each table is split by a mask over its rows' SKU numbers. Columns stay
dictionary-encoded: two :class:`~masterplan.contract.coded.Coded` columns
join by offsetting the second one's codes past the first one's values, and
the item and warehouse columns, whose dictionaries are the master ids both
runs share, join without growing theirs.
"""

from __future__ import annotations

import numpy as np

from masterplan.contract.coded import CODE_DTYPE, Coded, values_at
from masterplan.server.engine.messages import Messages
from masterplan.server.engine.skus import Masters
from masterplan.server.engine.types import ResultTable

__all__ = ["join_columns", "row_skus", "select_messages"]

#: A dictionary this much larger than the rows that use it is compacted.
_SLACK = 2


def row_skus(m: Masters, table: ResultTable) -> np.ndarray:
    """int64 (N,): the SKU number of each row of a result table, by its
    ``item_id`` and ``warehouse_id`` (coded into the master ids, or plain)."""
    item, wh = table["item_id"], table["warehouse_id"]
    if isinstance(item, Coded) and isinstance(wh, Coded):
        return item.codes.astype(np.int64) * m.n_wh + wh.codes.astype(np.int64)
    return m.known_sku(np.asarray(item), np.asarray(wh))


def _compact(column: Coded) -> Coded:
    """The column with a dictionary of just the values its rows use."""
    codes = column.codes
    if len(column.values) <= _SLACK * len(codes) + 4096:
        return column
    valid = codes >= 0
    used, local = np.unique(codes[valid], return_inverse=True)
    out = np.full(len(codes), -1, dtype=CODE_DTYPE)
    out[valid] = local.reshape(-1)
    return Coded(out, values_at(column.values, used))


def _kept_then(first: np.ndarray, keep: np.ndarray, second: np.ndarray) -> np.ndarray:
    """``first[keep]`` then ``second``, in one new array."""
    return np.concatenate([first[keep], second])


def join_columns(
    first: np.ndarray | Coded,
    keep: np.ndarray,
    second: np.ndarray | Coded,
    second_codes: np.ndarray | None = None,
) -> np.ndarray | Coded:
    """``first``'s rows where ``keep`` (a mask), then ``second``'s, as one column.

    ``second_codes``, when given, are ``second``'s codes already translated
    into ``first``'s dictionary (item and warehouse ids).
    """
    if isinstance(first, Coded) and isinstance(second, Coded):
        if second_codes is not None:
            return Coded(_kept_then(first.codes, keep, second_codes), first.values)
        if first.values is second.values:
            return Coded(_kept_then(first.codes, keep, second.codes), first.values)
        # Object dictionaries join by copying pointers; numpy strings would
        # copy every string, and a plan's ref dictionary holds millions.
        a, b = first.values, second.values
        a = a if a.dtype == object else a.astype(object)
        b = b if b.dtype == object else b.astype(object)
        offset = np.where(second.codes >= 0, second.codes.astype(np.int64) + len(a), -1)
        joined = Coded(_kept_then(first.codes, keep, offset), np.concatenate([a, b]))
        return _compact(joined)
    a = first.to_array() if isinstance(first, Coded) else first
    b = second.to_array() if isinstance(second, Coded) else second
    if a.dtype != b.dtype:
        a, b = a.astype(object), b.astype(object)
    return _kept_then(a, keep, b)


def select_messages(messages: Messages, rows: np.ndarray) -> Messages:
    """The messages ``rows`` (a mask or positions)."""
    return Messages(
        messages.severity[rows],
        messages.code[rows],
        messages.item_id[rows],
        messages.warehouse_id[rows],
        messages.text[rows],
    )
