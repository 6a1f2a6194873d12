"""The input read piece by piece (``stream_input``), on each backend: the
rows of a whole read, every table named, and a sync state built piece by
piece equal to the state of the whole tables."""

from __future__ import annotations

import gc
from collections import Counter

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bench.generate import generate_tables, write_database
from masterplan.connector.errors import SchemaMismatch
from masterplan.connector.reader import read_input, stream_input
from masterplan.connector.schema import create_all
from masterplan.connector.sync import SnapshotStates, row_hashes, snapshot_state
from masterplan.contract.columns import Table, table_length
from masterplan.contract.tables import INPUT_TABLES


@pytest.fixture
def filled(engine: Engine) -> Engine:
    create_all(engine)
    write_database(generate_tables(300, seed=3), engine)
    return engine


def _rows(table: Table, name: str) -> Counter[bytes]:
    return Counter(h.tobytes() for h in row_hashes(INPUT_TABLES[name], table))


def test_pieces_are_the_rows_of_a_whole_read(filled: Engine) -> None:
    whole = read_input(filled)
    pieces = list(stream_input(filled, chunk_rows=97))
    names = [name for name, _ in pieces]
    # Tables whole and in order, each named at least once.
    assert list(dict.fromkeys(names)) == list(INPUT_TABLES)
    assert max(table_length(p) for _, p in pieces) <= 97
    assert any(names.count(n) > 2 for n in INPUT_TABLES), "no table came in several pieces"
    for name in INPUT_TABLES:
        mine = [p for n, p in pieces if n == name]
        got: Counter[bytes] = sum((_rows(p, name) for p in mine), Counter())
        assert got == _rows(whole[name], name), name
        for col in INPUT_TABLES[name].column_names:
            assert {p[col].dtype for p in mine} == {whole[name][col].dtype}, (name, col)


def test_a_piece_holds_arrays_of_its_own(filled: Engine) -> None:
    """A piece sent on and dropped frees its memory: none of its arrays is
    a view that keeps a larger buffer (a table's chunk, a COPY block) alive."""
    viewing = [
        (name, col)
        for name, piece in stream_input(filled, chunk_rows=97)
        for col, array in piece.items()
        if array.base is not None
    ]
    assert viewing == []


def test_a_state_made_piece_by_piece_is_the_whole_tables_state(filled: Engine) -> None:
    states = SnapshotStates()
    for name, piece in stream_input(filled, chunk_rows=97):
        states.add(name, piece)
    built = states.state("etag", 3)
    whole = snapshot_state(read_input(filled), "etag", 3)
    assert built.etag == whole.etag and built.version == whole.version
    for name in INPUT_TABLES:
        a, b = built.tables[name], whole.tables[name]
        assert np.array_equal(a.row_hashes, b.row_hashes), name
        assert np.array_equal(a.key_hashes, b.key_hashes), name
        assert a.keys.keys() == b.keys.keys()
        for col in a.keys:
            assert list(a.keys[col]) == list(b.keys[col]), (name, col)


def test_a_missing_table_fails_before_the_first_piece(filled: Engine) -> None:
    with filled.begin() as conn:
        conn.execute(sa.text("DROP TABLE forecasts"))
    pieces = stream_input(filled)
    with pytest.raises(SchemaMismatch, match="forecasts"):
        next(pieces)


_ROW_TYPES = frozenset({"tuple", "Row", "memoryview"})


def test_a_piece_comes_without_the_driver_rows_it_was_made_of(engine: Engine) -> None:
    """The collector is paused while the driver makes a piece's objects (a
    tuple or message per row); those are gone by the time the piece is
    handed on, so that the collector, resumed, does not walk them (it took
    0.6 s of a 1M-SKU read from PostgreSQL). Counted with the collector
    off, among the objects it tracks made since the read began: a row is a
    tuple (SQLite), a ``Row`` (SQLAlchemy) or a message (``COPY``)."""
    create_all(engine)
    write_database(generate_tables(3000, seed=3), engine)
    # Counted as the pieces come, judged once the read is over (a read left
    # open would hold its transaction, and its locks, past the test).
    alive: list[tuple[str, int, int]] = []
    gc.collect()
    gc.disable()
    try:
        for name, piece in stream_input(engine, chunk_rows=4000):
            if table_length(piece) >= 1000:
                rows = sum(1 for o in gc.get_objects(0) if type(o).__name__ in _ROW_TYPES)
                alive.append((name, rows, table_length(piece)))
    finally:
        gc.enable()
    assert len(alive) >= 3
    assert [(name, rows) for name, rows, n in alive if rows >= n // 2] == []
