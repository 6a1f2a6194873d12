"""Rows in PostgreSQL's ``COPY`` text format, made column by column.

Writing a result through ``COPY ... FROM STDIN`` row by row (psycopg's
``write_row``) costs a Python call and a conversion per value: about as
long as the server takes to store the rows. Here each column becomes its
text at once (numpy formats numbers and dates; text is escaped only where a
column holds a character that needs it), rows are joined in C
(``str.join``), and the server parses the payload as it parses any COPY.

The format (PostgreSQL's ``COPY`` text format): columns separated by a tab,
rows ended by a newline, NULL as ``\\N``, and in text a backslash, tab,
newline and carriage return written as ``\\\\``, ``\\t``, ``\\n`` and ``\\r``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from masterplan.connector.columns import iso_days
from masterplan.contract.tables import ColumnKind, ColumnSpec

__all__ = ["copy_text", "escape", "text_words"]

NULL = "\\N"
#: What the text format escapes, and how.
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_SPECIAL = ("\\", "\t", "\n", "\r")


def escape(text: str) -> str:
    """``text`` as a value of the text format."""
    return text.translate(_ESCAPES)


def text_words(values: np.ndarray, sep: str) -> tuple[list[str], np.ndarray, str]:
    """A text column's non-NULL values as ``str``, its NULL mask, and the
    values joined with ``sep``: what both COPY formats build their text from.

    The join proves the values are all ``str`` (it fails on anything else)
    at C speed; where ids are declared as numbers they are spelled with
    ``str``.
    """
    objects = np.asarray(values, dtype=object)
    words = objects.tolist()
    try:  # all text, hence no NULL: the usual column, with no pass for NULLs
        return words, np.zeros(len(words), dtype=np.bool_), sep.join(words)
    except TypeError:
        pass
    nulls = objects == None  # noqa: E711 - element-wise, in C
    words = objects[~nulls].tolist()
    try:
        joined = sep.join(words)
    except TypeError:
        words = [str(v) for v in words]
        joined = sep.join(words)
    return words, nulls, joined


def _text_column(values: np.ndarray) -> list[str]:
    words, nulls, joined = text_words(values, "")
    if any(c in joined for c in _SPECIAL):  # rare: escape value by value
        words = [escape(t) for t in words]
    if nulls.any():
        out = np.full(len(nulls), NULL, dtype=object)
        out[~nulls] = words
        return list(out.tolist())
    return words


def _number_column(values: np.ndarray, integer: bool) -> list[str]:
    numbers = np.asarray(values, dtype=np.float64)
    nulls = np.isnan(numbers)
    known = numbers[~nulls] if nulls.any() else numbers
    if integer:
        known = np.rint(known).astype(np.int64)
    # A plan's quantities repeat: each distinct value is formatted once
    # (numpy writes the shortest text that reads back as the same float).
    # Distinct by bits, so that -0.0 keeps its sign.
    _, first, where = np.unique(known.view(np.int64), return_index=True, return_inverse=True)
    text = known[first].astype(str).astype(object)[where]
    if nulls.any():
        out = np.full(len(numbers), NULL, dtype=object)
        out[~nulls] = text
        return list(out.tolist())
    return list(text.tolist())


def _date_column(values: np.ndarray) -> list[str]:
    days = np.asarray(values, dtype="datetime64[D]")
    # Each day of the column's span is formatted once (a plan's dates span
    # a few years); NULL is NaT.
    out = iso_days(days)
    nulls = np.isnat(days)
    if nulls.any():
        out[nulls] = NULL
    return list(out.tolist())


def _column(column: ColumnSpec, values: np.ndarray) -> list[str]:
    if column.kind is ColumnKind.STR:
        return _text_column(values)
    if column.kind is ColumnKind.DATE:
        return _date_column(values)
    return _number_column(values, column.kind is ColumnKind.INT)


def copy_text(
    columns: Sequence[ColumnSpec],
    table: Mapping[str, np.ndarray],
    constants: Mapping[str, str] | None = None,
) -> str:
    """The rows of ``table`` (in the in-memory conventions) as a COPY text payload.

    Args:
        columns: The columns to write, in the order the ``COPY`` names them.
        table: Their arrays, equally long.
        constants: Columns with one text value on every row (``plan_id``,
            ``run_id``), by name; they come first.
    """
    n = len(next(iter(table.values()))) if table else 0
    if n == 0:
        return ""
    parts = [_column(c, np.asarray(table[c.name])) for c in columns]
    # The constant columns open every row: joined once, they go into the
    # rows' separator instead of into every row's join.
    head = "".join(escape(value) + "\t" for value in (constants or {}).values())
    if not parts:
        return (head[:-1] + "\n") * n
    rows = map("\t".join, zip(*parts, strict=True))
    return head + ("\n" + head).join(rows) + "\n"
