"""Applying a delta upload (SPEC §6) to a plan's data set: a pure function of arrays.

A delta names rows by their table's key (:attr:`TableSpec.key`); in a table
without one (``on_hand``, ``forecasts``) the whole row is its identity, and
several equal rows are several rows (equal ``on_hand`` rows add up, so one
delete row removes *one* of them). Deletes apply first, then upserts.

Rows are matched without a Python loop over them. The delta's rows (deletes
and upserts, usually few) get dense integer ids per key: equal keys, and
NULL with NULL, share an id. Each row of the data set (usually many) is then
looked up among those ids, column by column: numbers and dates by binary
search in the delta's sorted values, text in a ``dict`` of the delta's
strings (one pass at C speed; Python strings have no numpy order that holds
``None``). A row whose key no delta row has gets the id ``k`` (one past the
delta's ids), which nothing deletes or replaces; everything after that is
array indexing on ids.

Nothing here touches the store or the wire: :func:`apply_delta` takes tables
and returns tables, and raises :class:`InvalidArgument` for a delta that does
not fit the data set, before anything is built.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from masterplan.codec import table_nbytes
from masterplan.contract.columns import Table, dtype_of, empty_table, table_length
from masterplan.contract.tables import INPUT_TABLES, TableSpec
from masterplan.server.errors import InvalidArgument

__all__ = ["DeltaCounts", "apply_delta", "delete_spec", "identity", "result_nbytes"]

#: Bit pattern every NaN is folded onto, so that NULL numbers compare equal.
_NAN_BITS = np.array([np.nan], dtype=np.float64).view(np.int64)[0]


@dataclass(frozen=True, slots=True)
class DeltaCounts:
    """What a delta did, per table (tables it left alone are absent).

    Attributes:
        upserted: Upsert rows applied (rows replaced plus rows added).
        replaced: Of those, the rows that replaced a row with the same key.
        deleted: Rows of the data set that the delete rows removed.
        removed: The rows of the data set the delta removed or replaced (every
            column), per changed table: with the upserts, what a net change
            reads to find the SKUs the delta touched.
        sources: Per changed table, the row of the data set's table that each
            row of the new table is, unchanged, and -1 for a row that replaced
            one or was added: what lets a net change check the new rows only.
    """

    upserted: dict[str, int] = field(default_factory=dict)
    replaced: dict[str, int] = field(default_factory=dict)
    deleted: dict[str, int] = field(default_factory=dict)
    removed: dict[str, Table] = field(default_factory=dict)
    sources: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def rows_upserted(self) -> int:
        """Upsert rows of all tables together."""
        return sum(self.upserted.values())

    @property
    def rows_deleted(self) -> int:
        """Rows removed from all tables together."""
        return sum(self.deleted.values())


def identity(spec: TableSpec) -> tuple[str, ...]:
    """The columns that name a row of ``spec``: its key, or every column without one."""
    return spec.key or spec.column_names


def delete_spec(spec: TableSpec) -> TableSpec:
    """The columns a delete row of ``spec`` must carry: :func:`identity`'s, in order.

    A delete chunk of a keyed table may carry the other columns too (they
    are ignored); one of a table without a key carries them all.
    """
    return TableSpec(spec.name, tuple(spec.column(c) for c in identity(spec)))


def result_nbytes(
    tables: Mapping[str, Table], upserts: Mapping[str, Table], deletes: Mapping[str, Table]
) -> int:
    """Bytes, at most, of the tables :func:`apply_delta` builds anew (the changed ones).

    Known before they are built, so that a caller can claim the memory first.
    """
    total = 0
    for name in {*upserts, *deletes}:
        old, ups = tables.get(name), upserts.get(name)
        rows = table_length(old) if old is not None else 0
        rows += table_length(ups) if ups is not None else 0
        total += table_nbytes(old) if old is not None else 0
        total += table_nbytes(ups) if ups is not None else 0
        total += 8 * rows  # the new table's sources
    return total


def apply_delta(
    tables: Mapping[str, Table],
    upserts: Mapping[str, Table],
    deletes: Mapping[str, Table],
) -> tuple[dict[str, Table], DeltaCounts]:
    """The data set after a delta: ``deletes`` removed first, then ``upserts`` applied.

    Parameters
    ----------
    tables : mapping of str to Table
        The current data set, §4 input tables by name (a table left out is
        empty). Not modified.
    upserts : mapping of str to Table
        Rows to upsert per table, every column present. In a keyed table a
        row replaces the row with its key (in place) or is appended; in a
        table without a key it is appended.
    deletes : mapping of str to Table
        Rows to delete per table: the key columns of a keyed table (other
        columns are ignored), every column of a table without a key. A row
        removes the row with its key (every row with it, should the data set
        hold the key twice); in a table without a key, one occurrence of an
        equal row (the first).

    Returns
    -------
    tables : dict of str to Table
        Every §4 input table. A table the delta does not change (no upsert
        and no delete row) is the very object passed in; a changed one keeps
        its surviving rows in their order, replaced rows in their place and
        new rows appended, with the dtypes of :mod:`masterplan.contract.columns`.
    counts : DeltaCounts
        Rows upserted, replaced and deleted per changed table.

    Raises
    ------
    InvalidArgument
        An unknown table; a delete row that names no row of the data set
        (the client's idea of the data set is wrong); two delete rows or two
        upsert rows with the same key in one table; a missing column. The
        message and metadata name the table, the row (counted over the
        table's delete or upsert rows from 0) and the key.
    """
    for name in (*upserts, *deletes):
        if name not in INPUT_TABLES:
            raise InvalidArgument(f"a delta names unknown table {name!r}", table=name)
    out: dict[str, Table] = {}
    counts = DeltaCounts()
    for name, spec in INPUT_TABLES.items():
        old = tables.get(name)
        if old is None:
            old = empty_table(spec)
        ups, dels = upserts.get(name), deletes.get(name)
        n_ups = table_length(ups) if ups is not None else 0
        n_dels = table_length(dels) if dels is not None else 0
        if n_ups == 0 and n_dels == 0:
            out[name] = old
            continue
        ups = _complete(spec, ups, spec.column_names, "upsert")
        dels = _complete(spec, dels, identity(spec), "delete")
        out[name] = _apply_table(spec, old, ups, dels, counts)
    return out, counts


def _complete(spec: TableSpec, table: Table | None, need: Sequence[str], change: str) -> Table:
    """``table`` restricted to ``need``'s columns (an empty one for None)."""
    if table is None:
        return {c: np.empty(0, dtype=dtype_of(spec.column(c).kind)) for c in need}
    missing = [c for c in need if c not in table]
    if missing:
        raise InvalidArgument(
            f"{spec.name}: {change} rows lack column {missing[0]!r}",
            table=spec.name,
            column=missing[0],
        )
    return {c: table[c] for c in need}


def _apply_table(
    spec: TableSpec, old: Table, ups: Table, dels: Table, counts: DeltaCounts
) -> Table:
    """One table's delta; records what it did in ``counts``."""
    key = identity(spec)
    n_dels = table_length(dels)
    o, ids, k = _row_ids([(old[c], _joined(dels[c], ups[c])) for c in key])
    d, u = ids[:n_dels], ids[n_dels:]
    n_ids = k + 1  # the delta's keys, and one slot for the rows of no delta key
    if spec.key:
        keep = _keyed_deletes(spec, dels, o, d, n_ids)
        kept, target, added = _keyed_upserts(spec, ups, o, u, keep, n_ids)
    else:
        keep = _unkeyed_deletes(spec, dels, o, d, n_ids)
        kept = np.flatnonzero(keep)
        target = np.full(len(kept), -1, dtype=np.intp)
        added = np.arange(len(u), dtype=np.intp)
    counts.upserted[spec.name] = len(u)
    counts.replaced[spec.name] = int(np.count_nonzero(target >= 0))
    counts.deleted[spec.name] = len(o) - int(np.count_nonzero(keep))
    gone = np.concatenate([np.flatnonzero(~keep), kept[target >= 0]])
    counts.removed[spec.name] = {c: old[c][gone] for c in spec.column_names}
    counts.sources[spec.name] = np.concatenate(
        [np.where(target >= 0, -1, kept), np.full(len(added), -1)]
    ).astype(np.int64)
    return _build(spec, old, ups, kept, target, added)


def _keyed_deletes(
    spec: TableSpec, dels: Table, o: np.ndarray, d: np.ndarray, n_ids: int
) -> np.ndarray:
    """Mask of the old rows no delete row names; refuses repeated or unknown keys."""
    keep = np.ones(len(o), dtype=bool)
    if not len(d):
        return keep
    _refuse_repeats(spec, dels, d, "delete")
    held = np.bincount(o, minlength=n_ids)
    unknown = np.flatnonzero(held[d] == 0)
    if len(unknown):
        _refuse_unknown(spec, dels, int(unknown[0]))
    gone = np.zeros(n_ids, dtype=bool)
    gone[d] = True
    return ~gone[o]


def _keyed_upserts(
    spec: TableSpec, ups: Table, o: np.ndarray, u: np.ndarray, keep: np.ndarray, n_ids: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which old rows stay, which upsert replaces each, and which upserts are new.

    Returns:
        ``kept`` (int positions of the surviving old rows, in order),
        ``target`` (per kept row, the upsert row replacing it, or -1) and
        ``added`` (the upsert rows that are appended, in order).
    """
    kept = np.flatnonzero(keep)
    if not len(u):
        return kept, np.full(len(kept), -1, dtype=np.intp), np.empty(0, dtype=np.intp)
    _refuse_repeats(spec, ups, u, "upsert")
    at = np.full(n_ids, -1, dtype=np.intp)
    at[u] = np.arange(len(u), dtype=np.intp)
    ko = o[kept]
    target = at[ko]
    hit = np.flatnonzero(target >= 0)
    if len(hit) and np.bincount(ko[hit], minlength=n_ids).max() > 1:
        # The data set holds a key twice (the engine reports it as
        # DUPLICATE_KEY): the upsert takes the first row's place, the
        # others go, so that the key then names one row.
        later = np.zeros(len(ko), dtype=bool)
        later[hit[_occurrence(ko[hit]) > 0]] = True
        kept, target = kept[~later], target[~later]
    matched = np.zeros(len(u), dtype=bool)
    matched[target[target >= 0]] = True
    return kept, target, np.flatnonzero(~matched)


def _unkeyed_deletes(
    spec: TableSpec, dels: Table, o: np.ndarray, d: np.ndarray, n_ids: int
) -> np.ndarray:
    """Mask of the old rows that stay: each delete row removes one equal row, the first."""
    keep = np.ones(len(o), dtype=bool)
    if not len(d):
        return keep
    held = np.bincount(o, minlength=n_ids)
    excess = np.flatnonzero(_occurrence(d) >= held[d])
    if len(excess):
        _refuse_unknown(spec, dels, int(excess[0]))
    removed = np.bincount(d, minlength=n_ids)
    named = np.flatnonzero(removed[o] > 0)  # rows some delete row is equal to
    first = named[_occurrence(o[named]) < removed[o[named]]]
    keep[first] = False
    return keep


def _build(
    spec: TableSpec,
    old: Table,
    ups: Table,
    kept: np.ndarray,
    target: np.ndarray,
    added: np.ndarray,
) -> Table:
    """The surviving old rows (replaced ones overwritten in place), then the new rows."""
    replaced = np.flatnonzero(target >= 0)
    sources = target[replaced]
    out: Table = {}
    for c in spec.columns:
        a, b = old[c.name], ups[c.name]
        dtype = a.dtype if a.dtype == b.dtype else dtype_of(c.kind)
        col = np.empty(len(kept) + len(added), dtype=dtype)
        col[: len(kept)] = a[kept]
        col[replaced] = b[sources]
        col[len(kept) :] = b[added]
        out[c.name] = col
    return out


# -- row ids -------------------------------------------------------------------------
def _row_ids(
    columns: Sequence[tuple[np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray, int]:
    """Ids of a table's rows and of a delta's rows: equal keys, equal ids.

    Args:
        columns: Per identity column, the data set's values and the delta's.

    Returns:
        The data set rows' ids, the delta rows' ids (dense, ``0 .. k-1``)
        and ``k``; a data set row whose key no delta row has gets ``k``.
    """
    old_ids: np.ndarray | None = None
    ids: np.ndarray | None = None
    k = 0
    for old, delta in columns:
        old_codes, codes, n = _codes(_comparable(old), _comparable(delta))
        if old_ids is None or ids is None:
            old_ids, ids, k = old_codes, codes, n
            continue
        # Fold this column in, dense again after every fold so that the
        # product stays far below 2**63 however many columns a key has.
        distinct, inverse = np.unique(ids * n + codes, return_inverse=True)
        both = (old_ids >= 0) & (old_codes >= 0)
        old_ids = _lookup(distinct, np.where(both, old_ids * n + old_codes, -1))
        ids, k = inverse.astype(np.int64).reshape(-1), len(distinct)
    assert old_ids is not None and ids is not None, "an identity has at least one column"
    old_ids[old_ids < 0] = k
    return old_ids, ids, k


def _joined(deletes: np.ndarray, upserts: np.ndarray) -> np.ndarray:
    """A delta's values of one column, deletes first (comparable, as one dtype)."""
    return np.concatenate([_comparable(deletes), _comparable(upserts)])


def _comparable(col: np.ndarray) -> np.ndarray:
    """The column as values whose equality is the delta's: NULL equals NULL.

    Numbers become the int64 bits of their value (every NaN one pattern,
    ``-0.0`` as ``0.0``: exact value equality), dates their day number (NaT
    one number); text stays ``object`` (``None`` equals ``None``).
    """
    kind = col.dtype.kind
    if kind == "f":
        x = col.astype(np.float64) + 0.0  # a copy; -0.0 + 0.0 is 0.0
        bits = x.view(np.int64)
        bits[np.isnan(x)] = _NAN_BITS
        return bits
    if kind == "M":
        return col.astype("datetime64[D]").view(np.int64)
    if kind in "iub":
        return col.astype(np.int64)
    return col.astype(object)


def _codes(old: np.ndarray, delta: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Codes of one column: the delta's dense, the data set's the same or -1.

    Returns:
        The data set's codes (-1 for a value no delta row has), the delta's
        codes (``0 .. n-1``) and ``n``.
    """
    if delta.dtype == object:
        values = delta.tolist()
        position = dict(zip(dict.fromkeys(values), itertools.count()))
        codes = np.fromiter(map(position.__getitem__, values), dtype=np.int64, count=len(values))
        old_codes = np.fromiter(
            map(position.get, old.tolist(), itertools.repeat(-1)), dtype=np.int64, count=len(old)
        )
        return old_codes, codes, len(position)
    distinct, inverse = np.unique(delta, return_inverse=True)
    return _lookup(distinct, old), inverse.astype(np.int64).reshape(-1), len(distinct)


def _lookup(distinct: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Positions of ``values`` in the sorted ``distinct``, -1 where absent."""
    if not len(distinct):
        return np.full(len(values), -1, dtype=np.int64)
    at = np.minimum(np.searchsorted(distinct, values), len(distinct) - 1)
    return np.where(distinct[at] == values, at, -1).astype(np.int64)


def _occurrence(ids: np.ndarray) -> np.ndarray:
    """Per row, how many earlier rows have the same id (0 for the first)."""
    n = len(ids)
    order = np.argsort(ids, kind="stable")
    ordered = ids[order]
    starts = np.ones(n, dtype=bool)
    starts[1:] = ordered[1:] != ordered[:-1]
    positions = np.arange(n)
    first = np.maximum.accumulate(np.where(starts, positions, 0))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = positions - first
    return rank


# -- refusals ------------------------------------------------------------------------
def _refuse_repeats(spec: TableSpec, rows: Table, ids: np.ndarray, change: str) -> None:
    """Refuse two rows of one change kind with one key, naming both."""
    repeats = np.flatnonzero(_occurrence(ids) > 0)
    if not len(repeats):
        return
    second = int(repeats[0])
    first = int(np.flatnonzero(ids == ids[second])[0])
    key = _key_text(spec, rows, second)
    raise InvalidArgument(
        f"{spec.name}: {change} rows {first} and {second} have the same key ({key}); "
        "a delta may name a row once: nothing applied",
        field="chunk",
        table=spec.name,
        row=second,
        first_row=first,
        key=key,
        change=change,
    )


def _refuse_unknown(spec: TableSpec, dels: Table, row: int) -> None:
    """Refuse a delete row that names no row of the data set (or one too many)."""
    key = _key_text(spec, dels, row)
    what = "row" if spec.key else "row (or more equal rows than it holds)"
    raise InvalidArgument(
        f"{spec.name}: delete row {row} names no {what} of the data set ({key}): "
        "the delta was made against other data; send a snapshot. Nothing applied",
        field="chunk",
        table=spec.name,
        row=row,
        key=key,
        change="delete",
    )


def _key_text(spec: TableSpec, rows: Table, row: int) -> str:
    """``order_id='SO1', line_no=1``: the identity columns of one row, NULL as NULL."""
    return ", ".join(f"{c}={_value_text(rows[c][row])}" for c in identity(spec))


def _value_text(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, np.datetime64):
        return "NULL" if np.isnat(value) else str(value.astype(dt.date))
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return "NULL"
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    return repr(str(value))
