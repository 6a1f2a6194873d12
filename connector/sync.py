"""Delta sync, the connector's side (SPEC §6): what changed since the last sync.

The SCM database needs no change-tracking column: the connector keeps, per
server, tenant, plan and database, a 128-bit content hash of every row it
last sent (:class:`SyncState`, one file in a state directory), reads every
input table again (or, where it has a change column, less: see below),
hashes it, and sends only the difference (:func:`compute_delta`).

Identity of a row (§6): in a table with a key (``TableSpec.key``, the primary
or unique key of §4) a row is named by its key columns, and a row whose key
stays but whose content changed is one upsert; in ``on_hand`` and
``forecasts``, which have no key, the whole row is its identity, equal rows
may repeat and their multiplicity matters, and a changed row is one delete
plus one upsert.

How the server applies a :class:`Delta`: the deletes first, then the upserts;
a keyed upsert replaces the row with the same key (or adds one), a keyed
delete removes the row with that key; an unkeyed upsert adds a row and an
unkeyed delete removes one equal row (``server/delta.py`` applies it). Key
values compare NULL equal to NULL, as the hashes here do.

A keyed table may hold several rows with one key (the engine reports them as
``DUPLICATE_KEY``). The server's rule makes most of that expressible: a
keyed delete removes every row with its key, and a keyed upsert replaces all
of them by one. What no delta can say is "this key now has these several
rows", since a delta may name a key once: when the new rows share a key and
those rows changed, the delta is not sendable and says why
(:attr:`Delta.fallback`), and the caller sends a snapshot instead.

The hash depends on the content of every column of the §4 table and on
nothing else. Where a keyed table has an ``updated_at``-style column (a
source profile's ``change_column``), the connector may read only its keys
and the rows changed since the last sync (:mod:`connector.changes`);
:func:`merge_changes` turns that into the same delta and the same state a
full read gives, taking the unchanged rows' hashes from the state. Which
rows are read changes, never how a row hashes. The state keeps, per such
table, the largest change value read (:class:`Watermark`).

Hashing is vectorised over whole columns (no Python loop per row): 1M rows of
``sales_lines`` (three text columns, four others) hash, rows and keys
together, in about 0.42 s on one core of a 2-core machine.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from masterplan.contract.columns import Table, dtype_of, empty_table, table_length, take
from masterplan.contract.tables import INPUT_TABLES, ColumnKind, ColumnSpec, TableSpec

__all__ = [
    "ChangedTable",
    "Delta",
    "SnapshotStates",
    "StateUnavailable",
    "SyncState",
    "SyncStore",
    "TableDelta",
    "TableState",
    "UnusableChanges",
    "Watermark",
    "compute_delta",
    "default_state_dir",
    "key_columns",
    "key_hashes",
    "merge_changes",
    "row_hashes",
    "snapshot_state",
]

# --- hashing -------------------------------------------------------------------------
#
# Two independent 64-bit lanes, computed side by side as a (2, n) uint64 array
# (lanes as rows, so that every numpy loop runs over n contiguous values). A
# column is absorbed word by word: h = mix(h ^ word), where mix is an
# xorshift-multiply-xorshift with an odd per-lane multiplier (a bijection of
# h, so no word is lost); a row hash absorbs its columns' words in spec order
# and ends with the splitmix64 / murmur3 finalisers. Arithmetic wraps
# modulo 2**64 on purpose.

_U64 = np.uint64
_SEEDS = np.array([[0x243F6A8885A308D3], [0x13198A2E03707344]], dtype=_U64)  # digits of pi
_KEY_SEEDS = np.array([[0xA4093822299F31D0], [0x082EFA98EC4E6C89]], dtype=_U64)
_STR_SEEDS = np.array([[0x452821E638D01377], [0xBE5466CF34E90C6C]], dtype=_U64)
_MUL = np.array([[0x9E3779B97F4A7C15], [0xC2B2AE3D27D4EB4F]], dtype=_U64)
_FIN_SHIFTS = np.array([[30, 27, 31], [33, 33, 33]], dtype=_U64)
_FIN_MUL = np.array(
    [[0xBF58476D1CE4E5B9, 0x94D049BB133111EB], [0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53]],
    dtype=_U64,
)
_S29, _S32 = _U64(29), _U64(32)
_NONE = np.array(None, dtype=object)

#: Bits of the one NaN that every NaN (and NULL) of a number column hashes as.
_NAN_BITS = np.array([np.nan], dtype="<f8").view("<u8")[0]
#: Tags in the low bits of a string's header word: NULL is header 0.
_TAG_NARROW, _TAG_WIDE = 1, 2
#: Bytes of one fixed-width copy of a string column (at four bytes a character,
#: the most it can take) above which its rows are split by length.
_STR_BATCH_BYTES = 256 << 20


class _Lanes:
    """The (2, n) hash state of n rows, mixed in place.

    Every step writes into the state or into scratch arrays kept for the
    whole column: a fresh 16 MB temporary per step (page faults) costs more
    than the arithmetic on it.
    """

    def __init__(self, seeds: np.ndarray, n: int) -> None:
        self.h = np.empty((2, n), dtype=_U64)
        self.h[:] = seeds
        self._scratch = np.empty_like(self.h)
        self._spare: np.ndarray | None = None

    def absorb(self, words: np.ndarray, where: np.ndarray | None = None) -> None:
        """Absorb one word per row ((n,) for both lanes, or (2, n)); only rows ``where``."""
        if where is None:
            self._mix(self.h, words)
            return
        if self._spare is None:
            self._spare = np.empty_like(self.h)
        np.copyto(self._spare, self.h)
        self._mix(self._spare, words)
        np.copyto(self.h, self._spare, where=where)

    def _mix(self, h: np.ndarray, words: np.ndarray) -> None:
        # h = xorshift32(odd_multiplier * xorshift29(h ^ words)): a bijection of h.
        scratch = self._scratch
        np.bitwise_xor(h, words, out=h)
        np.right_shift(h, _S29, out=scratch)
        np.bitwise_xor(h, scratch, out=h)
        np.multiply(h, _MUL, out=h)
        np.right_shift(h, _S32, out=scratch)
        np.bitwise_xor(h, scratch, out=h)

    def finish(self) -> np.ndarray:
        """Avalanche both lanes (splitmix64 on lane 0, murmur3 fmix64 on lane 1)."""
        h, scratch = self.h, self._scratch
        for step in range(3):
            np.right_shift(h, _FIN_SHIFTS[:, step : step + 1], out=scratch)
            np.bitwise_xor(h, scratch, out=h)
            if step < 2:
                np.multiply(h, _FIN_MUL[:, step : step + 1], out=h)
        return h


def _float_words(column: np.ndarray) -> np.ndarray:
    """IEEE bits of a number column: -0.0 as 0.0, every NaN (= NULL) as one NaN."""
    with np.errstate(invalid="ignore"):  # a signalling NaN is as NULL as any other
        values = np.asarray(column, dtype=np.float64) + 0.0  # -0.0 + 0.0 == +0.0
    bits = values.astype("<f8", copy=False).view("<u8")
    return np.where(np.isnan(values), _NAN_BITS, bits)


def _date_words(column: np.ndarray) -> np.ndarray:
    """Days since the epoch; NaT is int64's minimum, no date's day number."""
    return np.asarray(column, dtype="datetime64[D]").view(np.int64).astype("<i8").view("<u8")


def _as_objects(column: np.ndarray) -> np.ndarray:
    """A string column as ``object`` values, ``None`` for NULL.

    ``StringDType`` and ``U`` arrays convert in one numpy call; equal strings
    then hash equal whichever array type held them.
    """
    if column.dtype == object:
        return column
    return np.asarray(column).astype(object)


def _nulls(values: np.ndarray) -> np.ndarray:
    """``True`` where an ``object`` array holds ``None`` (one comparison per value, in C)."""
    return np.equal(values, _NONE)


def _str_hashes(column: np.ndarray) -> np.ndarray:
    """Per-lane hashes (2, n) of a string column.

    A value is absorbed as a header word (0 for NULL, else its length in code
    points and a tag) followed by its code points packed into little-endian
    words: eight per word when every code point is below 256 (``narrow``, the
    common case, which for ASCII text is just its bytes), two per word
    otherwise. The header makes NULL differ from ``""`` and makes the
    encoding prefix-free, so "ab","c" and "a","bc" in adjacent columns differ.
    The choice of packing depends on the value only, never on its neighbours.
    """
    values = _as_objects(column)
    n = len(values)
    # Exact lengths (numpy's string functions ignore trailing NUL characters),
    # in one pass when there is no NULL, the common case of an id column.
    try:
        lengths = np.fromiter(map(len, values), dtype=np.int64, count=n)
        null = None
    except TypeError:
        null = _nulls(values)
        values = np.where(null, "", values)
        lengths = np.fromiter(map(len, values), dtype=np.int64, count=n)
    header = (lengths.astype(_U64) << _U64(2)) | _U64(_TAG_NARROW)
    if null is not None:
        header[null] = 0
    batches = list(_length_batches(lengths))
    if batches == [None]:
        return _string_batch(values, lengths, header)
    h = np.empty((2, n), dtype=_U64)
    for rows in batches:
        h[:, rows] = _string_batch(values[rows], lengths[rows], header[rows])
    return h


def _length_batches(lengths: np.ndarray) -> Iterable[np.ndarray | None]:
    """Row groups whose fixed-width copies stay small; ``None``: all rows at once.

    One very long value must not make every row of a million as wide as it:
    rows are split into classes of lengths within a factor of four, so a
    class's fixed-width copy is at most 16 times the size of its text.
    """
    width = int(lengths.max(initial=0))
    if len(lengths) * max(width, 1) * 4 <= _STR_BATCH_BYTES:
        yield None
        return
    classes = np.ceil(np.log2(np.maximum(lengths, 16) / 16) / 2).astype(np.int64)
    for c in np.unique(classes):
        yield np.flatnonzero(classes == c)


def _string_batch(values: np.ndarray, lengths: np.ndarray, header: np.ndarray) -> np.ndarray:
    """Hash one batch of strings (no NULL left: those are ``""`` with header 0).

    The result is not finished: the row hash that absorbs it finishes.
    """
    lanes = _Lanes(_STR_SEEDS, len(values))
    width = int(lengths.max(initial=0))
    try:
        # ASCII only (else it raises): then the code points are the bytes.
        # A width that is a multiple of 8 makes the bytes words without a copy.
        padded = _round_up(width, 8)
        narrow = values.astype(f"S{padded}").view("<u8").reshape(len(values), padded // 8)
    except UnicodeEncodeError:
        return _unicode_batch(lanes, values, lengths, header, width)
    lanes.absorb(header)
    _absorb_words(lanes, narrow, lengths, 8)
    return lanes.h


def _round_up(width: int, multiple: int) -> int:
    """``width`` rounded up to a positive multiple of ``multiple``."""
    return max(-(-width // multiple), 1) * multiple


def _unicode_batch(
    lanes: _Lanes, values: np.ndarray, lengths: np.ndarray, header: np.ndarray, width: int
) -> np.ndarray:
    """The ASCII path's hashes for text with other characters (slower, rarer)."""
    padded = _round_up(width, 8)
    points = values.astype(f"U{padded}").view("<u4").reshape(len(values), padded)
    wide = points.max(axis=1) >= 256
    lanes.absorb(np.where(wide, header ^ _U64(_TAG_NARROW ^ _TAG_WIDE), header))
    h = lanes.h
    for rows, per_word, matrix in (
        (~wide, 8, points[~wide].astype("<u1")),
        (wide, 2, points[wide]),
    ):
        if rows.any():
            part = _Lanes(_STR_SEEDS, int(rows.sum()))
            part.h[:] = h[:, rows]
            _absorb_words(part, matrix.view("<u8"), lengths[rows], per_word)
            h[:, rows] = part.h
    return h


def _absorb_words(lanes: _Lanes, words: np.ndarray, lengths: np.ndarray, per_word: int) -> None:
    """Absorb word ``j`` (column ``j`` of ``words``, (rows, words)) of every row
    whose value has more than ``j`` words (``per_word`` code points each).

    Only a value's own words are absorbed, never padding, so that the hash
    does not depend on the widest value of the batch.
    """
    counts = -(-lengths // per_word)
    for j in range(int(counts.max(initial=0))):
        active = counts > j
        lanes.absorb(words[:, j], None if active.all() else active)


def _column_words(kind: ColumnKind, column: np.ndarray) -> np.ndarray:
    """What a row hash absorbs for one column: (n,) words or (2, n) lanes."""
    if kind is ColumnKind.STR:
        return _str_hashes(column)
    if kind is ColumnKind.DATE:
        return _date_words(column)
    return _float_words(column)


def _named_column_words(spec: TableSpec, column: ColumnSpec, values: np.ndarray) -> np.ndarray:
    """:func:`_column_words`, with an error that names the table and column."""
    try:
        return _column_words(column.kind, values)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"table {spec.name!r}, column {column.name!r}: cannot hash it as "
            f"{column.kind.value} ({exc})"
        ) from exc


def _fold(seeds: np.ndarray, parts: Iterable[np.ndarray], n: int) -> np.ndarray:
    """Absorb the columns' words in order and finish: (n, 2) uint64."""
    lanes = _Lanes(seeds, n)
    for words in parts:
        lanes.absorb(words)
    return lanes.finish().T


def key_columns(spec: TableSpec) -> tuple[str, ...]:
    """The columns that identify a row: the key of §4, or every column without one."""
    return spec.key or spec.column_names


def _check_table(
    spec: TableSpec,
    table: Mapping[str, np.ndarray],
    names: tuple[str, ...] | None = None,
    what: str = "column",
) -> int:
    """Number of rows; raises ``ValueError`` naming a missing or ragged column
    (of ``names``, by default every column of the spec)."""
    lengths = set()
    for name in spec.column_names if names is None else names:
        if name not in table:
            raise ValueError(f"table {spec.name!r} has no {what} {name!r}")
        lengths.add(len(table[name]))
    if len(lengths) > 1:
        raise ValueError(f"table {spec.name!r}: {what}s of different lengths {sorted(lengths)}")
    return lengths.pop() if lengths else 0


def _hashes(spec: TableSpec, table: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Row and key hashes, each (n, 2) uint64, every column converted once."""
    n = _check_table(spec, table)
    words = {c.name: _named_column_words(spec, c, table[c.name]) for c in spec.columns}
    rows = _fold(_SEEDS, (words[c] for c in spec.column_names), n)
    if not spec.key:
        return rows, rows
    return rows, _fold(_KEY_SEEDS, (words[c] for c in spec.key), n)


def row_hashes(spec: TableSpec, table: Mapping[str, np.ndarray]) -> np.ndarray:
    """128-bit content hash of every row of a §4 table.

    Args:
        spec: The table's spec; its columns, in their canonical order, are
            what is hashed (other entries of ``table`` are ignored).
        table: Column arrays in the conventions of
            :mod:`masterplan.contract.tables`; strings may be ``object``
            (``None`` for NULL) or ``StringDType`` arrays.

    Returns:
        ``(n, 2)`` uint64: two independent 64-bit hashes per row. Equal rows
        hash equal; NULL differs from every value (``""`` and ``0`` included);
        ``-0.0`` hashes as ``0.0`` and every NaN as NULL (they are NULL).

    Raises:
        ValueError: A column of ``spec`` is missing, the lengths differ, or a
            value is not of its column's kind (the message names the column).
    """
    return _hashes(spec, table)[0]


def key_hashes(spec: TableSpec, table: Mapping[str, np.ndarray]) -> np.ndarray:
    """128-bit hash of every row's identity: its key columns, or all of them.

    For ``on_hand`` and ``forecasts``, which have no key, this is
    :func:`row_hashes`. Same shape and dtype as :func:`row_hashes`.
    """
    return _hashes(spec, table)[1]


def _key_column_hashes(spec: TableSpec, keys: Mapping[str, np.ndarray]) -> np.ndarray:
    """:func:`key_hashes` of rows of which only the key columns were read.

    The same words folded in the same order as :func:`_hashes` folds them,
    so the result is bit for bit the key hash of the whole rows.
    """
    n = _check_table(spec, keys, spec.key, what="key column")
    return _fold(
        _KEY_SEEDS, (_named_column_words(spec, spec.column(c), keys[c]) for c in spec.key), n
    )


# --- grouping equal hashes ----------------------------------------------------------


def _group(words: np.ndarray) -> tuple[np.ndarray, int]:
    """Number equal rows of a (n, k) uint64 array alike: (group of each row, groups).

    Sorts by the first word only (an integer sort, several times faster than
    sorting 128-bit records) and sorts on all words only when two different
    rows share the first word, which for hashes is a one in 2**64 event.
    """
    n = len(words)
    if n == 0:
        return np.empty(0, dtype=np.int64), 0
    order = np.argsort(words[:, 0])
    ordered = words[order]
    starts = np.empty(n, dtype=bool)
    starts[0] = True
    np.not_equal(ordered[1:, 0], ordered[:-1, 0], out=starts[1:])
    tied = ~starts[1:]
    if words.shape[1] > 1 and (ordered[1:, 1:][tied] != ordered[:-1, 1:][tied]).any():
        order = np.lexsort(words.T[::-1])
        ordered = words[order]
        starts[1:] = (ordered[1:] != ordered[:-1]).any(axis=1)
    numbers = np.cumsum(starts) - 1
    group = np.empty(n, dtype=np.int64)
    group[order] = numbers
    return group, int(numbers[-1]) + 1


def _surplus(group: np.ndarray, counts_other: np.ndarray) -> np.ndarray:
    """Positions of the occurrences of each group beyond the other side's count.

    With ``group`` the groups of one side's rows, returns (sorted) the
    positions of all but the first ``counts_other[g]`` rows of each group
    ``g``: the rows this side has more of than the other.
    """
    order = np.argsort(group, kind="stable")
    ordered = group[order]
    rank = np.arange(len(group)) - np.searchsorted(ordered, ordered, side="left")
    return np.sort(order[rank >= counts_other[ordered]])


# --- state ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class TableState:
    """What the connector remembers of one table as last synced.

    Attributes:
        row_hashes: ``(n, 2)`` uint64, :func:`row_hashes` of the rows.
        key_hashes: ``(n, 2)`` uint64, :func:`key_hashes` of the rows.
        keys: The rows' key columns (all columns for a table without a key),
            because a delete names a removed row by them and the database no
            longer has it.
    """

    row_hashes: np.ndarray
    key_hashes: np.ndarray
    keys: Table

    @property
    def rows(self) -> int:
        """Number of rows synced."""
        return len(self.row_hashes)


@dataclass(frozen=True, slots=True)
class Watermark:
    """The largest change value one table's read saw (SPEC §6: a table read
    by its ``updated_at``-style column).

    Attributes:
        source: A digest of what was read (the query, its parameters, the
            change column): a watermark of another query says nothing.
        value: The value as the database gave it, in the text form of
            :mod:`connector.changes` (``datetime:2026-01-05T10:00:00``); no
            clock or time zone is involved.
    """

    source: str
    value: str


@dataclass(frozen=True, eq=False)
class SyncState:
    """The data set the server holds, as far as computing the next delta needs.

    Attributes:
        etag: The server's etag of that data set: a delta's ``base_etag``.
        version: The server's version number of that data set.
        tables: Table name -> :class:`TableState`, for every input table.
        watermarks: Table name -> :class:`Watermark`, for the tables read
            through a change column (none in a state file of an older
            version: those tables are then read whole once).
    """

    etag: str
    version: int
    tables: Mapping[str, TableState]
    watermarks: Mapping[str, Watermark] = field(default_factory=dict)


def _table_state(spec: TableSpec, table: Mapping[str, np.ndarray]) -> TableState:
    rows, keys = _hashes(spec, table)
    return TableState(rows, keys, _key_values(spec, table))


def _key_values(spec: TableSpec, table: Mapping[str, np.ndarray]) -> Table:
    """Copies of the identifying columns, strings as ``object`` arrays (as the file holds them).

    Copies, so that the state stays what was synced whatever the caller does
    with its arrays afterwards.
    """
    return {
        name: np.array(table[name], dtype=dtype_of(spec.column(name).kind), copy=True)
        for name in key_columns(spec)
    }


def _input_tables(tables: Mapping[str, Table]) -> dict[str, Table]:
    """Every input table, an absent one as empty (as a snapshot upload counts it)."""
    unknown = sorted(set(tables) - set(INPUT_TABLES))
    if unknown:
        raise ValueError(f"not input tables of §4: {unknown}")
    return {name: tables.get(name) or empty_table(spec) for name, spec in INPUT_TABLES.items()}


def snapshot_state(
    tables: Mapping[str, Table],
    etag: str,
    version: int,
    watermarks: Mapping[str, Watermark] | None = None,
) -> SyncState:
    """The state after the server applied a snapshot of ``tables``.

    Args:
        tables: The tables sent (absent input tables count as empty).
        etag: ``UploadDatasetResponse.etag``.
        version: ``UploadDatasetResponse.version``.
        watermarks: The change values the read of ``tables`` saw.
    """
    tables = _input_tables(tables)
    return SyncState(
        etag,
        version,
        {name: _table_state(INPUT_TABLES[name], t) for name, t in tables.items()},
        dict(watermarks or {}),
    )


class SnapshotStates:
    """The state of a snapshot sent in pieces (:func:`connector.reader.stream_input`),
    built piece by piece: hashes are row by row, so a table's state is its
    pieces' states end to end, and no piece need be kept once hashed."""

    def __init__(self) -> None:
        self._parts: dict[str, list[TableState]] = {}

    def add(self, name: str, piece: Mapping[str, np.ndarray]) -> None:
        """Hash the rows of one piece of input table ``name``."""
        spec = INPUT_TABLES[name]
        self._parts.setdefault(name, []).append(_table_state(spec, piece))

    def state(
        self, etag: str, version: int, watermarks: Mapping[str, Watermark] | None = None
    ) -> SyncState:
        """What :func:`snapshot_state` gives for the pieces' tables joined."""
        tables: dict[str, TableState] = {}
        for name, spec in INPUT_TABLES.items():
            parts = self._parts.get(name) or [_table_state(spec, empty_table(spec))]
            if len(parts) == 1:
                tables[name] = parts[0]
                continue
            rows = np.concatenate([p.row_hashes for p in parts])
            keys = rows if not spec.key else np.concatenate([p.key_hashes for p in parts])
            tables[name] = TableState(
                rows,
                keys,
                {c: np.concatenate([p.keys[c] for p in parts]) for c in key_columns(spec)},
            )
        return SyncState(etag, version, tables, dict(watermarks or {}))


# --- delta ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class TableDelta:
    """The change of one table.

    Attributes:
        upserts: Full rows (every column of the §4 table): new rows and, in a
            keyed table, rows whose content changed.
        deletes: Keyed table: the key columns of rows whose key is gone.
            Unkeyed table: every column of a removed row, one row per removed
            occurrence.
    """

    upserts: Table
    deletes: Table

    @property
    def upserted(self) -> int:
        """Number of upsert rows."""
        return table_length(self.upserts)

    @property
    def deleted(self) -> int:
        """Number of delete rows."""
        return table_length(self.deletes)


@dataclass(frozen=True, eq=False)
class Delta:
    """What to send to turn the server's data set into the tables just read.

    Attributes:
        tables: Table name -> :class:`TableDelta`, for every input table.
        fallback: ``None`` when the delta can be sent; otherwise why a
            snapshot must be sent instead (no state, or changed rows that
            share a key). Then ``tables`` is not to be sent.
        after: Table name -> :class:`TableState` of the tables the delta
            leads to, for :meth:`new_state` (hashed once, here).
        watermarks: The change values the read saw, for :meth:`new_state`.
    """

    tables: Mapping[str, TableDelta]
    fallback: str | None = None
    after: Mapping[str, TableState] = field(default_factory=dict, repr=False)
    watermarks: Mapping[str, Watermark] = field(default_factory=dict, repr=False)

    @property
    def upserted(self) -> int:
        """Rows upserted, all tables together."""
        return sum(t.upserted for t in self.tables.values())

    @property
    def deleted(self) -> int:
        """Rows deleted, all tables together."""
        return sum(t.deleted for t in self.tables.values())

    @property
    def is_empty(self) -> bool:
        """Nothing to send: no row changed and a delta is possible at all."""
        return self.fallback is None and self.upserted == 0 and self.deleted == 0

    def new_state(self, etag: str, version: int) -> SyncState:
        """The state once the server applied this delta (or a snapshot of the same tables)."""
        return SyncState(etag, version, dict(self.after), dict(self.watermarks))


def compute_delta(
    state: SyncState | None,
    tables: Mapping[str, Table],
    changed: Mapping[str, ChangedTable] | None = None,
    watermarks: Mapping[str, Watermark] | None = None,
) -> Delta:
    """The delta from the data set of ``state`` to ``tables``.

    Args:
        state: What was last synced, or ``None`` when nothing is known; then
            the delta upserts every row and its :attr:`Delta.fallback` says
            that a snapshot is needed.
        tables: Every input table as read now (an absent one counts as
            empty), except those in ``changed``.
        changed: Tables read by their change column, merged with ``state``
            (:func:`merge_changes`); their delta is already known.
        watermarks: The change values the read saw, kept in the new state.

    Returns:
        The delta; applying it (deletes, then upserts) to the rows of
        ``state`` gives the rows of ``tables``, each table as a multiset.

    Raises:
        ValueError: A table is no input table, lacks a column of §4, or holds
            a value not of its column's kind; or ``changed`` without a state.
    """
    changed = dict(changed or {})
    if changed and state is None:
        raise ValueError(f"tables read by change column need a sync state: {sorted(changed)}")
    both = sorted(set(changed) & set(tables))
    if both:
        raise ValueError(f"tables given both whole and by change column: {both}")
    tables = _input_tables(tables)  # (a changed table's entry is an unused empty one)
    deltas: dict[str, TableDelta] = {}
    following: dict[str, TableState] = {}
    reasons: list[str] = [] if state is not None else ["no sync state"]
    for name, table in tables.items():
        if name in changed:
            deltas[name], following[name] = changed[name].delta, changed[name].after
            continue
        spec = INPUT_TABLES[name]
        new = _table_state(spec, table)
        following[name] = new
        old = state.tables.get(name) if state is not None else None
        old = old if old is not None else _table_state(spec, empty_table(spec))
        delta, reason = _table_delta(spec, old, new, table)
        deltas[name] = delta
        if reason is not None:
            reasons.append(reason)
    return Delta(deltas, "; ".join(reasons) if reasons else None, following, dict(watermarks or {}))


def _table_delta(
    spec: TableSpec, old: TableState, new: TableState, table: Mapping[str, np.ndarray]
) -> tuple[TableDelta, str | None]:
    if old.rows == new.rows and np.array_equal(old.row_hashes, new.row_hashes):
        # The same rows in the same order, as a database mostly reads back an
        # unchanged table: no change, without sorting either side.
        nothing = np.empty(0, dtype=np.int64)
        return TableDelta(
            upserts=_rows(spec, table, nothing), deletes=take(old.keys, nothing)
        ), None
    if spec.key:
        return _keyed_delta(spec, old, new, table)
    return _unkeyed_delta(spec, old, new, table), None


def _rows(spec: TableSpec, table: Mapping[str, np.ndarray], positions: np.ndarray) -> Table:
    return take({name: table[name] for name in spec.column_names}, positions)


def _unkeyed_delta(
    spec: TableSpec, old: TableState, new: TableState, table: Mapping[str, np.ndarray]
) -> TableDelta:
    """Multiset difference of whole rows: surplus old rows go, surplus new rows come."""
    group, groups = _group(np.concatenate([old.row_hashes, new.row_hashes]))
    old_group, new_group = group[: old.rows], group[old.rows :]
    old_counts = np.bincount(old_group, minlength=groups)
    new_counts = np.bincount(new_group, minlength=groups)
    return TableDelta(
        upserts=_rows(spec, table, _surplus(new_group, old_counts)),
        deletes=take(old.keys, _surplus(old_group, new_counts)),
    )


def _keyed_delta(
    spec: TableSpec, old: TableState, new: TableState, table: Mapping[str, np.ndarray]
) -> tuple[TableDelta, str | None]:
    """Rows matched by key: gone keys are deleted, new or changed rows upserted.

    A key the old rows hold several times is no obstacle: its delete removes
    all of them and its upsert replaces all of them by one (the server's
    rule). A key the new rows hold several times is, unless its rows stayed
    as they were: a delta names a row by its key only once.
    """
    group, groups = _group(np.concatenate([old.key_hashes, new.key_hashes]))
    old_group, new_group = group[: old.rows], group[old.rows :]
    old_counts = np.bincount(old_group, minlength=groups)
    new_counts = np.bincount(new_group, minlength=groups)
    old_at = np.full(groups, -1, dtype=np.int64)
    old_at[old_group] = np.arange(old.rows)
    new_at = np.full(groups, -1, dtype=np.int64)
    new_at[new_group] = np.arange(new.rows)

    pairs = np.flatnonzero((old_counts == 1) & (new_counts == 1))
    changed = np.ones(groups, dtype=bool)
    changed[pairs] = (old.row_hashes[old_at[pairs]] != new.row_hashes[new_at[pairs]]).any(axis=1)
    gone = (old_counts > 0) & (new_counts == 0)
    upsert = (new_counts == 1) & changed

    reason = None
    if (new_counts > 1).any():
        reason = _repeated_key_change(spec, old, new, table, group, new_counts > 1)
    delta = TableDelta(
        upserts=_rows(spec, table, np.sort(new_at[upsert])),
        deletes=take(old.keys, np.sort(old_at[gone])),
    )
    return delta, reason


def _repeated_key_change(
    spec: TableSpec,
    old: TableState,
    new: TableState,
    table: Mapping[str, np.ndarray],
    group: np.ndarray,
    repeated: np.ndarray,
) -> str | None:
    """Why no delta can reach the new rows that share a key, or ``None``.

    Keys the new rows hold several times (``repeated``, per key group) are
    fine when their rows stayed exactly as they were (the same rows, as many
    times); otherwise the first such key is named.
    """
    in_old = repeated[group[: old.rows]]
    in_new = repeated[group[old.rows :]]
    pair_group, pair_groups = _group(
        np.concatenate(
            [
                np.hstack([old.key_hashes[in_old], old.row_hashes[in_old]]),
                np.hstack([new.key_hashes[in_new], new.row_hashes[in_new]]),
            ]
        )
    )
    n_old = int(in_old.sum())
    differ = np.bincount(pair_group[:n_old], minlength=pair_groups) != np.bincount(
        pair_group[n_old:], minlength=pair_groups
    )
    # Every differing key has a new row, whether or not its old rows differ.
    changed_keys = np.zeros(len(repeated), dtype=bool)
    changed_keys[group[: old.rows][in_old][differ[pair_group[:n_old]]]] = True
    changed_keys[group[old.rows :][in_new][differ[pair_group[n_old:]]]] = True
    culprits = np.flatnonzero(in_new & changed_keys[group[old.rows :]])
    if not len(culprits):
        return None
    example = _describe_key(spec, table, int(culprits[0]))
    count = int(np.count_nonzero(group[old.rows :] == group[old.rows + culprits[0]]))
    return (
        f"table {spec.name!r}: {count} rows share the key {example} and changed, "
        "and a delta can name a key once only"
    )


def _describe_key(spec: TableSpec, table: Mapping[str, np.ndarray], position: int) -> str:
    parts = []
    for name in spec.key:
        value = table[name][position]
        kind = spec.column(name).kind
        if kind is ColumnKind.DATE:
            value = None if np.isnat(value) else str(value)
        elif kind is not ColumnKind.STR:
            number = float(value)
            value = None if number != number else int(number) if number.is_integer() else number
        parts.append(f"{name}={value!r}")
    return "(" + ", ".join(parts) + ")"


# --- tables read by their change column ---------------------------------------------


class UnusableChanges(Exception):
    """A table's change column cannot say what changed this time; the message
    says why (the table is then read whole)."""


@dataclass(frozen=True, eq=False)
class ChangedTable:
    """A keyed table read by its change column, merged with the last sync's state.

    Attributes:
        delta: What changed: the changed rows that are new or differ from the
            state's row of their key, and the keys the query no longer returns.
        after: The table's state now, equal to the state of a full read (up
            to the order of rows): every key the query returns, with the new
            row hash of a changed row and the state's for any other.
        rows_read: Full rows read (the changed ones).
        keys_read: Keys read (every row of the table).
    """

    delta: TableDelta
    after: TableState
    rows_read: int
    keys_read: int


def merge_changes(
    spec: TableSpec,
    old: TableState,
    keys: Mapping[str, np.ndarray],
    changed: Mapping[str, np.ndarray],
) -> ChangedTable:
    """The delta and new state of a keyed table of which only the keys of all
    rows and the full rows changed since the last sync were read.

    Both reads must come from one snapshot of the database, and ``changed``
    must hold every row whose content may differ from the state's: that is
    what the change column promises, and what is checked where it can be. A
    row whose key is new must be among the changed rows; where one is not
    (a row that entered the query's result through a change elsewhere, say
    its order was confirmed), the change column does not tell everything.

    Args:
        spec: A table with a key.
        old: The table as last synced.
        keys: The key columns of every row the table holds now.
        changed: Every column of the rows changed since the last sync.

    Raises:
        UnusableChanges: The reads cannot stand for a full read: a new key
            is not among the changed rows, a changed row's key is not among
            the keys, or a key is held by several rows (which only a full
            read handles).
        ValueError: ``spec`` has no key, or a column is missing or of a wrong kind.
    """
    if not spec.key:
        raise ValueError(f"table {spec.name!r} has no key: it is read whole")
    present = _key_column_hashes(spec, keys)
    rows_c, keys_c = _hashes(spec, changed)
    n_old, n_now, n_chg = old.rows, len(present), len(rows_c)
    group, groups = _group(np.concatenate([old.key_hashes, present, keys_c]))
    g_old, g_now, g_chg = np.split(group, [n_old, n_old + n_now])
    c_old = np.bincount(g_old, minlength=groups)
    c_now = np.bincount(g_now, minlength=groups)
    c_chg = np.bincount(g_chg, minlength=groups)

    def refuse(count: int, what: str) -> UnusableChanges:
        return UnusableChanges(f"table {spec.name!r}: {count} {what}")

    if (c_old > 1).any():
        raise refuse(int((c_old > 1).sum()), "keys held by several rows at the last sync")
    if (c_now > 1).any() or (c_chg > 1).any():
        raise refuse(int(((c_now > 1) | (c_chg > 1)).sum()), "keys held by several rows")
    lost = (c_chg > 0) & (c_now == 0)
    if lost.any():
        raise refuse(int(lost.sum()), "changed rows whose keys the query does not return")
    entered = (c_now > 0) & (c_old == 0) & (c_chg == 0)
    if entered.any():
        first = int(np.flatnonzero(entered[g_now])[0])
        raise refuse(
            int(entered.sum()),
            "rows entered the query's result without a change of their change column "
            f"(such as {_describe_key(spec, keys, first)})",
        )

    old_at = np.full(groups, -1, dtype=np.int64)
    old_at[g_old] = np.arange(n_old)
    chg_at = np.full(groups, -1, dtype=np.int64)
    chg_at[g_chg] = np.arange(n_chg)

    # The state now: each key the query returns, in its order, with its row hash.
    from_changed = c_chg[g_now] > 0
    row_hashes = np.empty((n_now, 2), dtype=_U64)
    row_hashes[from_changed] = rows_c[chg_at[g_now[from_changed]]]
    row_hashes[~from_changed] = old.row_hashes[old_at[g_now[~from_changed]]]
    after = TableState(row_hashes, present, _key_values(spec, keys))

    # Upsert a changed row that is new or differs; delete a key that is gone.
    has_old = c_old[g_chg] > 0
    differs = np.ones(n_chg, dtype=bool)
    differs[has_old] = (old.row_hashes[old_at[g_chg[has_old]]] != rows_c[has_old]).any(axis=1)
    gone = (c_old > 0) & (c_now == 0)
    delta = TableDelta(
        upserts=_rows(spec, changed, np.flatnonzero(differs)),
        deletes=take(old.keys, np.sort(old_at[gone])),
    )
    return ChangedTable(delta, after, rows_read=n_chg, keys_read=n_now)


# --- the state file ------------------------------------------------------------------


class StateUnavailable(Exception):
    """There is no usable sync state: the caller sends a snapshot.

    The message says why (no file yet, unreadable, corrupt, made for other
    tables or another server).
    """


#: Bumped when the layout of the state file changes; other layouts are no state.
_FORMAT = 1


def default_state_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where sync state lives by default.

    ``$MASTERPLAN_STATE_DIR``, else ``$XDG_STATE_HOME/masterplan``, else
    ``~/.local/state/masterplan``. ``environ`` defaults to ``os.environ``;
    call this where configuration is built, not deep in the code.
    """
    env = os.environ if environ is None else environ
    if env.get("MASTERPLAN_STATE_DIR"):
        return Path(env["MASTERPLAN_STATE_DIR"])
    if env.get("XDG_STATE_HOME"):
        return Path(env["XDG_STATE_HOME"]) / "masterplan"
    return Path("~/.local/state/masterplan").expanduser()


def _url_without_password(database_url: str) -> str:
    """The database URL as it identifies a database, never holding a password."""
    try:
        url = make_url(database_url)
    except ArgumentError:
        return database_url.split("@")[-1]  # not a URL; keep no user part either
    clean = URL.create(
        url.drivername,
        username=url.username,
        host=url.host,
        port=url.port,
        database=url.database,
        query={k: v for k, v in url.query.items() if k.lower() != "password"},
    )
    return clean.render_as_string(hide_password=False)


@dataclass(frozen=True)
class SyncStore:
    """The state file of one (server, tenant, plan, database).

    Attributes:
        directory: The state directory (see :func:`default_state_dir`).
        server: Server address, as the client connects to it.
        tenant: Tenant id.
        plan: Plan id.
        database_url: The SCM database's URL; its password is never stored
            nor hashed into the file name.
    """

    directory: Path
    server: str
    tenant: str
    plan: str
    database_url: str

    @property
    def identity(self) -> str:
        """What the state belongs to, as stored in the file and hashed into its name."""
        return json.dumps(
            [self.server, self.tenant, self.plan, _url_without_password(self.database_url)]
        )

    @property
    def path(self) -> Path:
        """``sync-{hash of identity}.npz`` in :attr:`directory`."""
        digest = hashlib.sha256(self.identity.encode("utf-8")).hexdigest()[:32]
        return self.directory / f"sync-{digest}.npz"

    def load(self) -> SyncState:
        """Read the state.

        Raises:
            StateUnavailable: No file, or one that cannot be used; the message
                says which and why.
        """
        path = self.path
        try:
            with np.load(path, allow_pickle=False) as npz:
                return _decode(npz, self.identity)
        except FileNotFoundError:
            raise StateUnavailable(f"no sync state yet ({path})") from None
        except (
            OSError,
            ValueError,
            KeyError,
            IndexError,
            TypeError,
            EOFError,
            zipfile.BadZipFile,
        ) as exc:
            raise StateUnavailable(f"sync state {path} is unreadable: {exc}") from exc

    def save(self, state: SyncState) -> None:
        """Write the state atomically: a reader sees the old file or the new one."""
        self.directory.mkdir(parents=True, exist_ok=True)
        arrays = _encode(state, self.identity)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=self.path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)  # type: ignore[arg-type]
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_directory(self.directory)

    def discard(self) -> None:
        """Forget the state (the next run sends a snapshot)."""
        self.path.unlink(missing_ok=True)


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable too (POSIX; elsewhere a directory cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# File layout (``.npz``, no pickled objects; every array little-endian):
#   format            int64 (1,)    _FORMAT
#   identity          uint8         UTF-8 JSON [server, tenant, plan, url without password]
#   etag              uint8         UTF-8
#   version           int64 (1,)
#   watermarks        uint8         UTF-8 JSON {table: [source, value]} (absent in older
#                                   files: no watermarks)
#   {table}/columns   uint8         UTF-8 JSON of the stored columns' names
#   {table}/rows      uint64 (n, 2) row hashes
#   {table}/keys      uint64 (n, 2) key hashes
#   {table}/{col}     float64 / datetime64[D] (n,) for number and date columns
#   {table}/{col}/text uint8        UTF-8 of the values joined by one separator
#   {table}/{col}/sep  int64 (1,)   the separator's code point (in no value)
#   {table}/{col}/null bool (n,)    NULL mask


def _utf8(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-8", "surrogatepass"), dtype=np.uint8)


def _text(array: np.ndarray) -> str:
    return bytes(np.asarray(array, dtype=np.uint8)).decode("utf-8", "surrogatepass")


def _encode(state: SyncState, identity: str) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {
        "format": np.array([_FORMAT], dtype="<i8"),
        "identity": _utf8(identity),
        "etag": _utf8(state.etag),
        "version": np.array([state.version], dtype="<i8"),
        "watermarks": _utf8(
            json.dumps({name: [w.source, w.value] for name, w in state.watermarks.items()})
        ),
    }
    for name, ts in state.tables.items():
        spec = INPUT_TABLES[name]
        arrays[f"{name}/columns"] = _utf8(json.dumps(list(key_columns(spec))))
        arrays[f"{name}/rows"] = np.asarray(ts.row_hashes, dtype="<u8")
        arrays[f"{name}/keys"] = np.asarray(ts.key_hashes, dtype="<u8")
        for column in key_columns(spec):
            kind = spec.column(column).kind
            if kind is ColumnKind.STR:
                arrays.update(_encode_strings(f"{name}/{column}", ts.keys[column]))
            else:
                dtype = "<M8[D]" if kind is ColumnKind.DATE else "<f8"
                arrays[f"{name}/{column}"] = np.asarray(ts.keys[column], dtype=dtype)
    return arrays


def _encode_strings(prefix: str, column: np.ndarray) -> dict[str, np.ndarray]:
    """Strings as one UTF-8 text, joined by a character that no value holds."""
    values = _as_objects(column)
    null = _nulls(values)
    strings: list[str] = np.where(null, "", values).tolist()
    joined = "\x1f".join(strings)
    sep = _separator(strings, joined)
    if sep != "\x1f":
        joined = sep.join(strings)
    return {
        f"{prefix}/text": _utf8(joined),
        f"{prefix}/sep": np.array([ord(sep)], dtype="<i8"),
        f"{prefix}/null": np.asarray(null, dtype=bool),
    }


def _separator(strings: list[str], joined: str) -> str:
    """A character in none of ``strings``: the unit separator unless a value holds one.

    Joined with the unit separator, the text holds exactly ``len - 1`` of them
    when no value does; otherwise the first code point absent from the text.
    """
    if joined.count("\x1f") == max(len(strings) - 1, 0):
        return "\x1f"
    present = set(joined)
    return next(chr(c) for c in range(0xE000, 0x110000) if chr(c) not in present)


def _decode_strings(npz: Any, prefix: str, n: int) -> np.ndarray:
    text = _text(npz[f"{prefix}/text"])
    sep = chr(int(npz[f"{prefix}/sep"][0]))
    null = np.asarray(npz[f"{prefix}/null"], dtype=bool)
    pieces = text.split(sep) if n else []
    if len(pieces) != n or null.shape != (n,):
        raise ValueError(f"{prefix}: {len(pieces)} strings for {n} rows")
    values = np.empty(n, dtype=object)
    values[:] = pieces
    values[null] = None
    return values


def _decode(npz: Any, identity: str) -> SyncState:
    if int(npz["format"][0]) != _FORMAT:
        raise ValueError(f"file format {int(npz['format'][0])}, this version reads {_FORMAT}")
    if _text(npz["identity"]) != identity:
        raise ValueError("it belongs to another server, tenant, plan or database")
    tables = {name: _decode_table(npz, spec) for name, spec in INPUT_TABLES.items()}
    watermarks = _decode_watermarks(npz) if "watermarks" in npz.files else {}
    return SyncState(_text(npz["etag"]), int(npz["version"][0]), tables, watermarks)


def _decode_watermarks(npz: Any) -> dict[str, Watermark]:
    stored = json.loads(_text(npz["watermarks"]))
    if not isinstance(stored, dict):
        raise ValueError("watermarks are no mapping")
    out = {}
    for name, pair in stored.items():
        if (
            name not in INPUT_TABLES
            or not isinstance(pair, list)
            or len(pair) != 2
            or not all(isinstance(v, str) for v in pair)
        ):
            raise ValueError(f"watermark of {name!r} is not [source, value]")
        out[name] = Watermark(pair[0], pair[1])
    return out


def _decode_table(npz: Any, spec: TableSpec) -> TableState:
    name = spec.name
    if f"{name}/columns" not in npz.files:
        raise ValueError(f"no table {name!r}")
    if json.loads(_text(npz[f"{name}/columns"])) != list(key_columns(spec)):
        raise ValueError(f"table {name!r} was stored with other columns")
    rows = np.asarray(npz[f"{name}/rows"], dtype=np.uint64)
    keys = np.asarray(npz[f"{name}/keys"], dtype=np.uint64)
    n = len(rows)
    if rows.shape != (n, 2) or keys.shape != (n, 2):
        raise ValueError(f"table {name!r}: hashes of shapes {rows.shape} and {keys.shape}")
    values: Table = {}
    for column in key_columns(spec):
        kind = spec.column(column).kind
        if kind is ColumnKind.STR:
            values[column] = _decode_strings(npz, f"{name}/{column}", n)
        else:
            values[column] = np.asarray(npz[f"{name}/{column}"], dtype=dtype_of(kind))
            if values[column].shape != (n,):
                raise ValueError(f"table {name!r}, column {column!r}: not {n} values")
    return TableState(rows, keys, values)
