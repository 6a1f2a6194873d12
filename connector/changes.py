"""Reading less for a delta: tables read by their change column (SPEC §6).

A source profile may name, per table, a ``change_column``: a timestamp the
query returns with every row, saying when the row last changed (Odoo's
``write_date``, or the latest of the ``write_date`` of the rows a line joins).
For a delta, such a table with a key (§4) need not be read whole. In one
read transaction (``REPEATABLE READ``, as :func:`connector.reader.read_input`
reads) the connector reads

1. the key columns of every row the query returns now (narrow, so cheap),
2. every column of the rows whose change value is NULL or at or after a
   watermark: the largest change value the last sync read, less the
   profile's ``change_margin_minutes``,

and :func:`connector.sync.merge_changes` makes of them the delta and the
state a full read would give: keys no longer returned are deleted, changed
rows that are new or differ from the state are upserted, every other row
keeps its hash from the state. The margin is there because a row written by
a transaction that began before the last read and committed after it
carries an earlier time than rows that read already saw.

What the change column must promise: a row whose content (any §4 column the
query returns) changed has a change value at or after the time of the
change, less the margin. A query that joins several tables must therefore
take the latest change value of all of them (``GREATEST`` on PostgreSQL and
MariaDB, ``MAX`` of several arguments on SQLite). Where the reads show that
the promise does not hold (a key the state does not hold is not among the
changed rows: the row entered the query's result through a change elsewhere,
say its order was confirmed), the table is read whole instead, in the same
transaction, and the read says so (:attr:`SourceRead.read_whole`).

A watermark is the database's own value, kept as text in the sync state:
no clock of this machine and no time zone conversion is involved. Values
must be timestamps or dates (a SQLite text in ISO form counts); a table whose
change values are of another kind is read whole.

``on_hand`` and ``forecasts`` have no key and are always read whole; so is
any table the first time (no watermark yet), and every table for a snapshot.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import operator
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from masterplan.connector.columns import (
    Table,
    column_from_values,
    concat_chunks,
    dtype_of,
    table_length,
)
from masterplan.connector.profile import (
    SourceProfile,
    SourceTypes,
    TableSource,
    verify_source,
)
from masterplan.connector.reader import (
    DEFAULT_CHUNK_ROWS,
    FETCH_ROWS,
    collector_paused,
    read_input,
    read_transaction,
    stream_rows,
    table_chunks,
)
from masterplan.connector.sync import (
    ChangedTable,
    SyncState,
    TableState,
    UnusableChanges,
    Watermark,
    merge_changes,
)
from masterplan.contract.tables import INPUT_TABLES, TableSpec

__all__ = [
    "ALL_ROWS",
    "SourceRead",
    "read_source",
    "reads_by_change",
    "since_value",
    "source_digest",
]

#: The label of the change column in the reads (no §4 column is named so).
_CHANGE = "mp_change_value"
#: The bound watermark's name (no profile parameter is named so).
_SINCE = "mp_change_since"
#: The watermark of a table whose read saw no change value (no rows, or all
#: NULL): the next read by change column reads all its rows.
_NO_VALUE = "none:"
#: :func:`since_value` of :data:`_NO_VALUE`: no lower bound.
ALL_ROWS: Any = object()


@dataclass(frozen=True, eq=False)
class SourceRead:
    """What one read of the SCM database gave.

    Attributes:
        tables: Tables read whole: every input table but those in ``changed``.
        changed: Tables read by their change column, merged with the sync
            state they were read against.
        watermarks: Per table read through a change column, the largest
            change value seen (for the next read by change column).
        read_whole: Tables with a change column read whole although a sync
            state was given, and why.
    """

    tables: dict[str, Table]
    changed: dict[str, ChangedTable] = field(default_factory=dict)
    watermarks: dict[str, Watermark] = field(default_factory=dict)
    read_whole: dict[str, str] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """Every table was read whole (what a snapshot needs)."""
        return not self.changed

    @property
    def rows_read(self) -> dict[str, int]:
        """Full rows read per input table: the changed rows only, where read by
        change column (a table read whole after an unusable read by change
        counts its whole read)."""
        return {
            name: self.changed[name].rows_read
            if name in self.changed
            else table_length(self.tables[name])
            for name in INPUT_TABLES
        }

    @property
    def keys_read(self) -> dict[str, int]:
        """Keys read per table read by change column."""
        return {name: c.keys_read for name, c in self.changed.items()}

    @property
    def table_rows(self) -> dict[str, int]:
        """Rows each input table holds now (as a full read would count them)."""
        return {
            name: self.changed[name].after.rows
            if name in self.changed
            else table_length(self.tables[name])
            for name in INPUT_TABLES
        }


def reads_by_change(source: SourceProfile | None) -> bool:
    """Whether ``source`` has a table read by a change column (a delta can
    then read less than every row); the reference tables have none."""
    return source is not None and any(
        t.query is not None and t.change_column for t in source.tables.values()
    )


def read_source(
    engine: Engine,
    source: SourceProfile | None,
    state: SyncState | None = None,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    on_chunk: Callable[[str, int], None] | None = None,
) -> SourceRead:
    """Read every input table, the keyed ones with a change column by change
    where ``state`` allows it.

    Args:
        engine: The SCM database.
        source: The source profile, or None for the reference tables (read
            whole, as :func:`connector.reader.read_input` reads them).
        state: The last sync's state, for a delta; None reads every table
            whole (a snapshot), still recording the watermarks.
        chunk_rows: Rows per chunk of a table read whole; driver rows are
            fetched at most :data:`~connector.reader.FETCH_ROWS` at a time.
        on_chunk: Called with the table name and the number of full rows of
            every batch read.

    Raises:
        SchemaMismatch: A query fails, or a column is missing or mistyped.
        ColumnDataError: A value cannot be converted to its column's kind.
        ProfileError: The profile is written for another kind of database.
    """
    if source is None or not reads_by_change(source):
        return SourceRead(read_input(engine, chunk_rows, on_chunk, source))
    with read_transaction(engine) as conn, collector_paused():
        types = verify_source(conn, source)
        return _read_all(conn, source, state, chunk_rows, on_chunk, types)


def _read_all(
    conn: Connection,
    source: SourceProfile,
    state: SyncState | None,
    chunk_rows: int,
    on_chunk: Callable[[str, int], None] | None,
    types: SourceTypes,
) -> SourceRead:
    margin = dt.timedelta(minutes=source.change_margin_minutes)
    out = SourceRead({})
    for name, spec in INPUT_TABLES.items():
        table_source = source.tables[name]
        if table_source.query is None or table_source.change_column is None:
            chunks = table_chunks(conn, spec, chunk_rows, types[name], source)
            out.tables[name] = concat_chunks(spec, _counted(name, chunks, on_chunk))
            continue
        digest = source_digest(table_source)
        mark = state.watermarks.get(name) if state is not None else None
        why = _why_whole(spec, state, mark, digest)
        if why is None and state is not None and mark is not None:
            by_change = _by_change(
                conn, spec, table_source, state.tables[name], mark.value, margin, chunk_rows
            )
            if isinstance(by_change, str):
                why = by_change
            else:
                merged, later = by_change
                out.changed[name] = merged
                out.watermarks[name] = Watermark(digest, later)
                if on_chunk is not None:
                    on_chunk(name, merged.rows_read)
                continue
        if why is not None and state is not None:
            out.read_whole[name] = why
        out.tables[name], top = _read_rows(
            conn, spec, _full_rows(spec, table_source), chunk_rows, on_chunk
        )
        if spec.key and top is not None:
            out.watermarks[name] = Watermark(digest, top)
    return out


def _by_change(
    conn: Connection,
    spec: TableSpec,
    source: TableSource,
    old: TableState,
    mark: str,
    margin: dt.timedelta,
    chunk_rows: int,
) -> tuple[ChangedTable, str] | str:
    """One keyed table read by its change column and merged with ``old``, and
    its new watermark; or why it must be read whole."""
    since = since_value(mark, margin)
    if since is None:
        return f"its last change value {mark!r} cannot be read back"
    changed, top = _read_changed(conn, spec, source, since, chunk_rows)
    keys = _read_keys(conn, spec, source, chunk_rows)
    try:
        merged = merge_changes(spec, old, keys, changed)
    except UnusableChanges as exc:
        return str(exc)
    # Never earlier than the last one: a row holding the largest value may
    # be gone, but that value was read. (Values of no usable kind among the
    # changed rows leave it as it was: a lower bound still.)
    return merged, mark if top in (None, _NO_VALUE) else _later(mark, top)


def _why_whole(
    spec: TableSpec, state: SyncState | None, mark: Watermark | None, digest: str
) -> str | None:
    """Why a table with a change column is read whole, or None when it need not be."""
    if not spec.key:
        return "it has no key"
    if state is None:
        return "no sync state"
    if mark is None:
        return "no change value was recorded for it at the last sync"
    if mark.source != digest:
        return "its query, parameters or change column changed since the last sync"
    return None


def _counted(
    name: str, chunks: Iterator[Table], on_chunk: Callable[[str, int], None] | None
) -> Iterator[Table]:
    for chunk in chunks:
        if on_chunk is not None:
            on_chunk(name, table_length(chunk))
        yield chunk


def source_digest(source: TableSource) -> str:
    """A digest of what a table's read depends on: query, parameters, change column."""
    text = json.dumps(
        [
            source.query,
            source.change_column,
            sorted((k, type(v).__name__, str(v)) for k, v in source.params.items()),
        ]
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


# --- the reads -------------------------------------------------------------------------


def _origin(spec: TableSpec, source: TableSource) -> sa.FromClause:
    """The profile's query as a subquery with the spec's columns and the change column."""
    assert source.query is not None and source.change_column is not None
    names = [*spec.column_names]
    if source.change_column not in names:
        names.append(source.change_column)
    text = sa.text(source.query).bindparams(**source.params)
    return text.columns(*_columns(names)).subquery(spec.name)


def _columns(names: Sequence[str]) -> list[sa.ColumnClause[Any]]:
    """Untyped columns by name: the driver's values come back as they are."""
    return [sa.column(n) for n in names]


def _full_rows(spec: TableSpec, source: TableSource) -> sa.Select[Any]:
    """The spec's columns and, last, the change column."""
    assert source.change_column is not None
    change = _columns([source.change_column])[0].label(_CHANGE)
    return sa.select(*_columns(spec.column_names), change).select_from(_origin(spec, source))


def _read_keys(conn: Connection, spec: TableSpec, source: TableSource, chunk_rows: int) -> Table:
    """The key columns of every row the query returns."""
    query = sa.select(*_columns(spec.key)).select_from(_origin(spec, source))
    parts: dict[str, list[np.ndarray]] = {k: [] for k in spec.key}
    # Converted a small batch at a time, while its objects are in cache.
    for rows in stream_rows(conn, query, min(chunk_rows, FETCH_ROWS)):
        columns = list(zip(*rows, strict=True))
        for k, values in zip(spec.key, columns, strict=True):
            parts[k].append(column_from_values(spec.name, spec.column(k), values))
    return {
        k: np.concatenate(parts[k]).astype(dtype_of(spec.column(k).kind), copy=False)
        if parts[k]
        else np.empty(0, dtype=dtype_of(spec.column(k).kind))
        for k in spec.key
    }


def _read_changed(
    conn: Connection, spec: TableSpec, source: TableSource, since: Any, chunk_rows: int
) -> tuple[Table, str | None]:
    """Full rows whose change value is NULL or at or after ``since``, and the
    largest change value among them (as watermark text)."""
    query = _full_rows(spec, source)
    if since is not ALL_ROWS:
        change = _columns([source.change_column or ""])[0]
        bound = sa.bindparam(_SINCE, since, type_=sa.types.NullType())  # the driver's own
        query = query.where(sa.or_(change.is_(None), change >= bound))
    return _read_rows(conn, spec, query, chunk_rows, None)


def _read_rows(
    conn: Connection,
    spec: TableSpec,
    query: sa.Select[Any],
    chunk_rows: int,
    on_chunk: Callable[[str, int], None] | None,
) -> tuple[Table, str | None]:
    """The spec's columns of ``query``'s rows, and the largest value of its
    last column (the change value) as watermark text: :data:`_NO_VALUE`
    where there is none, None where a value is of no kind a watermark can be."""
    tops: list[str] = []
    markable = True

    def chunks() -> Iterator[Table]:
        nonlocal markable
        for rows in stream_rows(conn, query, min(chunk_rows, FETCH_ROWS)):
            if not rows:
                continue
            columns = list(zip(*rows, strict=True))
            chunk = {
                c.name: column_from_values(spec.name, c, values)
                for c, values in zip(spec.columns, columns[:-1], strict=True)
            }
            try:
                top = _top(columns[-1])
            except _NoMark:
                markable = False
            else:
                if top is not None:
                    tops.append(top)
            if on_chunk is not None:
                on_chunk(spec.name, len(rows))
            yield chunk

    table = concat_chunks(spec, chunks())
    if not markable:
        return table, None
    return table, functools.reduce(_later, tops) if tops else _NO_VALUE


# --- change values and watermarks ---------------------------------------------------------

_not_null = functools.partial(operator.is_not, None)


class _NoMark(Exception):
    """Change values of no kind a watermark can be, or of several kinds."""


def _top(values: Sequence[Any]) -> str | None:
    """The largest non-NULL change value of one batch as watermark text, None
    when all are NULL.

    Raises:
        _NoMark: The values are of several kinds, or of none a watermark can be.
    """
    try:
        top = max(filter(_not_null, values), default=None)  # a C loop, no Python per row
    except TypeError:  # values of mixed kinds
        raise _NoMark from None
    if top is None:
        return None
    text = _mark_text(top)
    if text is None:
        raise _NoMark
    return text


def _mark_text(value: Any) -> str | None:
    """A change value as watermark text: ``kind:ISO text``; None for other kinds."""
    if isinstance(value, dt.datetime):
        return f"datetime:{value.isoformat()}"
    if isinstance(value, dt.date):
        return f"date:{value.isoformat()}"
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
        # Text with an offset does not order as text: no watermark.
        return f"text:{value}" if parsed.tzinfo is None else None
    return None


def _mark_value(text: str) -> Any:
    """The comparable value of watermark text.

    Raises:
        ValueError: No watermark text.
    """
    kind, _, body = text.partition(":")
    if kind == "datetime" or kind == "text":
        return dt.datetime.fromisoformat(body)
    if kind == "date":
        return dt.date.fromisoformat(body)
    raise ValueError(f"no watermark: {text!r}")


def _later(a: str, b: str) -> str:
    """The later of two watermarks (``b`` where they do not compare)."""
    try:
        same_kind = a.partition(":")[0] == b.partition(":")[0]
        return a if same_kind and _mark_value(a) > _mark_value(b) else b
    except (ValueError, TypeError):
        return b


def since_value(text: str, margin: dt.timedelta) -> Any:
    """What to compare the change column with: the watermark less ``margin``,
    as a value of the watermark's own kind; :data:`ALL_ROWS` after a read
    that saw no change value; None when it cannot be had.

    A ``date`` goes back by whole days (a margin of an hour reads the day
    before too). SQLite text keeps the form of the watermark (its separator
    and at most seconds, cut down, never rounded up), so that it compares as
    text with the values it came from.
    """
    if text == _NO_VALUE:
        return ALL_ROWS
    try:
        value = _mark_value(text)
        kind, _, body = text.partition(":")
        if kind == "datetime":
            return value - margin
        if kind == "date":
            return (dt.datetime.combine(value, dt.time()) - margin).date()
        start = value - margin
        if len(body) <= 10:
            return start.date().isoformat()
        return start.isoformat(sep=body[10], timespec="seconds")[: min(len(body), 19)]
    except (ValueError, TypeError, OverflowError):
        return None
