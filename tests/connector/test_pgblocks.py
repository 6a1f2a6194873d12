"""Tests of the PostgreSQL reader by runs of heap blocks (connector.pgblocks).

A plain table read as runs of blocks must give exactly the rows the generic
reader gives (as a set: runs read again row by row come last), for every
kind of value, over tables of many blocks with deleted rows and vacuumed
gaps, and only the rows of the read's snapshot. The decoder's refusals are
tested on hand-made rows, on every backend.
"""

from __future__ import annotations

import datetime as dt
import struct
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from masterplan.connector import pgblocks, reader
from masterplan.connector.columns import concat_chunks
from masterplan.connector.errors import ColumnDataError
from masterplan.connector.pgblocks import blocks_per_run, decode_run
from masterplan.connector.pgcopy import CopyFormatError
from masterplan.connector.reader import iter_table_chunks, read_table, stream_input
from masterplan.contract.tables import INPUT_TABLES
from tests.connector.test_pgcopy import _assert_same, _generic, _sales_rows, on_postgres

CreatePlain = Callable[..., None]
InsertRows = Callable[[str, Sequence[Mapping[str, Any]]], None]

SALES = INPUT_TABLES["sales_lines"]
ON_HAND = INPUT_TABLES["on_hand"]


def _sorted(table: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``table``'s rows in one order whatever order they were read in."""
    order = np.lexsort([np.asarray(v).astype(str) for v in table.values()])
    return {c: v[order] for c, v in table.items()}


@pytest.fixture
def paths(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    """Count the tables read by runs of blocks and the runs read again row
    by row; fail any generic read."""
    seen = {"blocks": 0, "again": 0}
    block_chunks = reader.block_chunks
    copy_chunks = pgblocks.copy_chunks

    def spy_blocks(*args: Any) -> Any:
        seen["blocks"] += 1
        return block_chunks(*args)

    def spy_again(*args: Any) -> Any:
        seen["again"] += 1
        return copy_chunks(*args)

    def refuse(*args: Any) -> Any:
        raise AssertionError("read the generic way")

    monkeypatch.setattr(reader, "block_chunks", spy_blocks)
    monkeypatch.setattr(pgblocks, "copy_chunks", spy_again)
    monkeypatch.setattr(reader, "_generic_chunks", refuse)
    yield seen


def _many_rows(n: int) -> list[dict[str, Any]]:
    """Sales lines over many heap blocks: NULL text, text beyond ASCII, and
    in a few rows only an empty string or the separator (their runs are
    read again row by row)."""
    rows = _sales_rows(n)
    for i, row in enumerate(rows[: n - 50]):
        for column in ("item_id", "warehouse_id"):
            if row[column] == "":
                row[column] = "B"
        if i == n // 2:
            row["warehouse_id"] = "W\x1fX"
    return rows


@on_postgres
@pytest.mark.parametrize("chunk_rows", [7, 2000, 65536])
def test_runs_of_blocks_read_exactly_what_the_generic_reader_reads(
    engine: Engine,
    create_plain_tables: CreatePlain,
    insert_rows: InsertRows,
    paths: dict[str, int],
    chunk_rows: int,
) -> None:
    create_plain_tables(["sales_lines"])
    insert_rows("sales_lines", _many_rows(3000))  # about 120 blocks of 8 kB
    want = _generic(engine, "sales_lines")
    chunks = list(iter_table_chunks(engine, "sales_lines", chunk_rows))
    assert paths["blocks"] == 1
    # The run with the separator, and the one or two with empty strings.
    assert 2 <= paths["again"] <= 3
    assert all(1 <= len(c["qty"]) <= chunk_rows for c in chunks)
    got = concat_chunks(SALES, chunks)
    assert len(got["qty"]) == 3000
    _assert_same(_sorted(got), _sorted(want))
    assert got["warehouse_id"].tolist().count(None) == want["warehouse_id"].tolist().count(None)


_TEXT = st.one_of(
    st.none(),
    st.sampled_from(["", "\x1f", "a\x1fb", "A", "W", "Ä/ß–日本", "tab\tand\nnewline\\"]),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=6),
)
_INT = st.none() | st.integers(-(2**31), 2**31 - 1)
_SALES_ROW = st.fixed_dictionaries(
    {
        "order_id": _TEXT,
        "line_no": _INT,
        "item_id": _TEXT,
        "warehouse_id": _TEXT,
        "qty": st.none() | st.floats(allow_nan=False),
        "requested_date": st.none()
        | st.dates(dt.date(1, 1, 1), dt.date(9999, 12, 31)).map(dt.date.isoformat),
        "priority": _INT,
    }
)


@on_postgres
@settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(_SALES_ROW, max_size=400), chunk_rows=st.sampled_from([1, 7, 1000]))
def test_random_tables_read_in_runs_as_the_generic_reader_reads_them(
    engine: Engine,
    create_plain_tables: CreatePlain,
    insert_rows: InsertRows,
    rows: list[dict[str, Any]],
    chunk_rows: int,
) -> None:
    """Any mix of NULLs, empty strings, separators, text beyond ASCII,
    extreme numbers and dates, over one block or several."""
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS sales_lines")
    create_plain_tables(
        ["sales_lines"],
        types={
            "sales_lines": {"qty": "DOUBLE PRECISION", "line_no": "INTEGER", "priority": "INTEGER"}
        },
    )
    insert_rows("sales_lines", rows)
    want = _generic(engine, "sales_lines")
    chunks = list(iter_table_chunks(engine, "sales_lines", chunk_rows))
    assert all(1 <= len(c["qty"]) <= chunk_rows for c in chunks)
    got = concat_chunks(SALES, chunks)
    _assert_same(_sorted(got), _sorted(want))


@on_postgres
def test_deleted_rows_and_vacuumed_blocks_are_not_read(
    engine: Engine, create_plain_tables: CreatePlain, insert_rows: InsertRows, paths: dict[str, int]
) -> None:
    """Rows deleted (dead tuples still in their blocks, then blocks emptied
    by VACUUM in the middle of the table) are not read, and no run is
    counted twice."""
    create_plain_tables(["on_hand"])
    insert_rows(
        "on_hand", [{"item_id": f"I{i}", "warehouse_id": "W", "qty": i} for i in range(6000)]
    )
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM on_hand WHERE qty >= 1000 AND qty < 4000")
    assert sorted(read_table(engine, "on_hand", chunk_rows=300)["qty"]) == [
        float(i) for i in [*range(1000), *range(4000, 6000)]
    ]
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE on_hand")
    got = read_table(engine, "on_hand", chunk_rows=300)
    _assert_same(_sorted(got), _sorted(_generic(engine, "on_hand")))
    assert len(got["qty"]) == 3000
    assert paths == {"blocks": 2, "again": 0}


@on_postgres
def test_rows_added_after_the_snapshot_in_new_blocks_are_not_read(
    engine: Engine, create_plain_tables: CreatePlain, insert_rows: InsertRows
) -> None:
    """The runs are counted from the table's size when the statement starts,
    after the read's snapshot: blocks another transaction adds meanwhile
    hold only rows the snapshot does not see."""
    create_plain_tables()
    insert_rows("forecasts", [{"item_id": "A", "warehouse_id": "W", "qty": 1}] * 10)
    pieces = stream_input(engine, chunk_rows=1000)
    assert next(pieces)[0] == "warehouses"  # the snapshot is taken
    insert_rows("forecasts", [{"item_id": "B", "warehouse_id": "W", "qty": 2}] * 5000)
    forecasts = [piece for name, piece in pieces if name == "forecasts"]
    assert concat_chunks(INPUT_TABLES["forecasts"], forecasts)["qty"].tolist() == [1.0] * 10


@on_postgres
@pytest.mark.parametrize(
    ("statements", "rows"),
    [
        # A view has no heap blocks.
        (["ALTER TABLE on_hand RENAME TO stock", "CREATE VIEW on_hand AS SELECT * FROM stock"], 1),
        # A parent's read holds its children's rows, which live in their own blocks.
        (
            [
                "CREATE TABLE on_hand_more () INHERITS (on_hand)",
                "INSERT INTO on_hand_more SELECT 'B' || i, 'W', i FROM generate_series(1, 3000) i",
            ],
            3001,
        ),
    ],
    ids=["view", "inheritance"],
)
def test_a_relation_not_of_its_own_blocks_is_read_row_by_row(
    engine: Engine,
    create_plain_tables: CreatePlain,
    insert_rows: InsertRows,
    monkeypatch: pytest.MonkeyPatch,
    statements: list[str],
    rows: int,
) -> None:
    create_plain_tables(["on_hand"])
    insert_rows("on_hand", [{"item_id": "A", "warehouse_id": "W", "qty": 2.5}])
    with engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)

    def refuse(*args: Any) -> Any:
        raise AssertionError("read by runs of blocks")

    monkeypatch.setattr(reader, "block_chunks", refuse)
    table = read_table(engine, "on_hand")
    assert len(table["qty"]) == rows and 2.5 in table["qty"].tolist()


@on_postgres
def test_a_cast_the_server_refuses_reads_the_generic_way(
    engine: Engine, create_plain_tables: CreatePlain
) -> None:
    """A number past ``float8`` fails the run's statement inside its
    savepoint; the table is read the generic way, whole."""
    create_plain_tables(["on_hand"], types={"on_hand": {"qty": "NUMERIC"}})
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO on_hand VALUES ('A', 'W', 1e400), ('B', 'W', 2)")
    assert sorted(read_table(engine, "on_hand")["qty"].tolist()) == [2.0, float("inf")]


@on_postgres
def test_the_benchmarks_floor_of_this_path_reads_every_row(
    engine: Engine, create_plain_tables: CreatePlain, insert_rows: InsertRows
) -> None:
    """The floor the benchmark quotes beside the read counts the rows of
    the same runs: the rows the reader reads."""
    from bench.floors import read_blocks_floor

    create_plain_tables()
    insert_rows("sales_lines", _many_rows(3000))
    insert_rows("on_hand", [{"item_id": "A", "warehouse_id": "W", "qty": 1}] * 10)
    seconds, rows = read_blocks_floor(engine)
    assert rows == 3010 and seconds > 0


def test_runs_are_sized_by_the_statistics_or_by_the_fullest_page() -> None:
    assert blocks_per_run(65536, pages=1000, tuples=100_000) == 655
    assert blocks_per_run(65536, pages=0, tuples=-1) == 65536 // 291
    assert blocks_per_run(10, pages=10, tuples=1000) == 1


# --- the decoder on hand-made rows ---------------------------------------------------


def _field(value: bytes | None) -> bytes:
    return struct.pack(">i", -1) if value is None else struct.pack(">i", len(value)) + value


def _float8s(values: Sequence[float], head: Sequence[int] | None = None) -> bytes:
    out = struct.pack(">5i", *(head or (1, 0, 701, len(values), 1)))
    return out + b"".join(struct.pack(">id", 8, v) for v in values)


def _run(
    qty: Sequence[float],
    items: str,
    warehouses: str,
    empty: int = 0,
    fields: int = 6,
    head: Sequence[int] | None = None,
) -> bytes:
    """An on_hand run as the statement sends it: run, rows, empty strings,
    qty, then the text joined by the separator."""
    values = [
        struct.pack(">q", 4),
        struct.pack(">q", len(qty)),
        struct.pack(">q", empty),
        _float8s(qty, head),
        items.encode(),
        warehouses.encode(),
    ]
    return struct.pack(">h", fields) + b"".join(_field(v) for v in values[:fields])


def test_decoder_reads_a_hand_made_run() -> None:
    run, table = decode_run(
        ON_HAND, _run([1.5, float("nan"), -2], "A\x1f\x1fÄ", "W\x1fW\x1fV"), "utf-8"
    )
    assert run == 4 and table is not None
    assert table["item_id"].tolist() == ["A", None, "Ä"]
    assert table["warehouse_id"].tolist() == ["W", "W", "V"]
    np.testing.assert_array_equal(table["qty"], [1.5, np.nan, -2.0])


def test_decoder_sets_aside_a_run_it_cannot_split() -> None:
    """An empty string, or the separator inside a value: the run is read
    again row by row."""
    assert decode_run(ON_HAND, _run([1, 2], "A\x1fB", "W\x1fW", empty=1), "utf-8") == (4, None)
    assert decode_run(ON_HAND, _run([1, 2], "A\x1fB\x1fC", "W\x1fW"), "utf-8") == (4, None)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (_run([1.0], "A", "W", fields=5), "another number of fields"),
        (_run([1.0], "A", "W") + b"x", "does not end where its fields do"),
        (_run([1.0], "A", "W")[:-1], "reaches past its row"),
        (_run([1.0], "A", "W", head=(1, 1, 701, 1, 1)), "not one dimension"),
        (_run([1.0], "A", "W", head=(1, 0, 23, 1, 1)), "not one dimension"),
        (_run([1.0, 2.0], "A", "W", head=(1, 0, 701, 2, 1))[:-30], "reaches past|not of its rows"),
    ],
)
def test_decoder_refuses_a_run_of_another_shape(row: bytes, message: str) -> None:
    with pytest.raises(CopyFormatError, match=message):
        decode_run(ON_HAND, row, "utf-8")


def test_decoder_names_the_column_of_undecodable_text() -> None:
    row = _run([1.0], "A", "W")
    bad = row.replace(_field(b"W"), _field(b"\xff\xfe"))
    with pytest.raises(ColumnDataError) as info:
        decode_run(ON_HAND, bad, "utf-8")
    assert (info.value.table, info.value.column) == ("on_hand", "warehouse_id")
