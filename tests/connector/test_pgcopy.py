"""Tests of the PostgreSQL binary COPY reader (connector.pgcopy).

Against a real PostgreSQL, the COPY read must give exactly the arrays the
generic reader gives, for every kind of value an integrator's table holds;
tables whose types COPY would read differently stay generic. The decoder's
refusals are tested on hand-made streams, on every backend.
"""

from __future__ import annotations

import datetime as dt
import struct
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from masterplan.connector import reader
from masterplan.connector.columns import concat_chunks
from masterplan.connector.errors import ColumnDataError
from masterplan.connector.pgcopy import CopyFormatError, decode_rows
from masterplan.connector.reader import iter_table_chunks, read_input, read_table
from masterplan.contract.columns import UNREADABLE_DATE
from masterplan.contract.tables import INPUT_TABLES

CreatePlain = Callable[..., None]
InsertRows = Callable[[str, Sequence[Mapping[str, Any]]], None]

SALES = INPUT_TABLES["sales_lines"]

#: The generic read, kept before any test replaces it.
GENERIC_CHUNKS = reader._generic_chunks


#: The database tests run on PostgreSQL only: binary COPY is its read path.
on_postgres = pytest.mark.parametrize(
    "db_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)


def _generic(engine: Engine, table: str, chunk_rows: int = 1000) -> dict[str, np.ndarray]:
    with engine.connect() as conn:
        spec = INPUT_TABLES[table]
        return concat_chunks(spec, GENERIC_CHUNKS(conn, spec, chunk_rows))


def _assert_same(got: Mapping[str, np.ndarray], want: Mapping[str, np.ndarray]) -> None:
    assert list(got) == list(want)
    for name, expected in want.items():
        actual = got[name]
        assert actual.dtype == expected.dtype, name
        if expected.dtype == object:
            assert actual.tolist() == expected.tolist(), name
            assert [type(v) for v in actual] == [type(v) for v in expected], name
        else:
            np.testing.assert_array_equal(actual, expected, err_msg=name)


@pytest.fixture
def copy_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Fail any generic read; yield the tables read through COPY (row by
    row, or by runs of heap blocks: :mod:`connector.pgblocks`)."""
    copied: list[str] = []
    copy_chunks = reader.copy_chunks
    block_chunks = reader.block_chunks

    def spy(conn: Any, spec: Any, chunk_rows: int, *origin: Any) -> Any:
        copied.append(spec.name)
        return copy_chunks(conn, spec, chunk_rows, *origin)

    def spy_blocks(conn: Any, spec: Any, chunk_rows: int, *heap: Any) -> Any:
        copied.append(spec.name)
        return block_chunks(conn, spec, chunk_rows, *heap)

    def refuse(*args: Any) -> Any:
        raise AssertionError("read the generic way")

    monkeypatch.setattr(reader, "copy_chunks", spy)
    monkeypatch.setattr(reader, "block_chunks", spy_blocks)
    monkeypatch.setattr(reader, "_generic_chunks", refuse)
    yield copied


def _sales_rows(n: int) -> list[dict[str, Any]]:
    """Sales lines with every kind of value: NULL in each column, empty and
    long text, text beyond ASCII, integers, fractions, far dates."""
    names = ["A", "", "Ä/ß–日本", "é" * 150, "tab\tand\nnewline\\", "W"]  # 300 bytes
    rows = []
    for i in range(n):
        rows.append(
            {
                "order_id": None if i % 7 == 3 else f"SO-{i}",
                "line_no": None if i % 5 == 4 else i,
                "item_id": names[i % len(names)],
                "warehouse_id": None if i % 4 == 1 else names[(i + 1) % len(names)],
                "qty": None if i % 6 == 2 else (i * 1.000001) - 3,
                "requested_date": None
                if i % 9 == 5
                else (dt.date(1900, 1, 1) + dt.timedelta(days=137 * i)).isoformat(),
                "priority": None if i % 3 == 0 else -i,
            }
        )
    return rows


@on_postgres
@pytest.mark.parametrize("chunk_rows", [1, 2, 7, 1000])
def test_copy_reads_exactly_what_the_generic_reader_reads(
    engine: Engine,
    create_plain_tables: CreatePlain,
    insert_rows: InsertRows,
    copy_only: list[str],
    chunk_rows: int,
) -> None:
    create_plain_tables(["sales_lines"])
    insert_rows("sales_lines", _sales_rows(40))
    want = _generic(engine, "sales_lines")
    chunks = list(iter_table_chunks(engine, "sales_lines", chunk_rows))
    assert copy_only == ["sales_lines"]
    assert all(1 <= len(c["qty"]) <= chunk_rows for c in chunks)
    assert sum(len(c["qty"]) for c in chunks) == 40
    _assert_same(concat_chunks(SALES, chunks), want)


@on_postgres
def test_read_input_copies_every_table_in_one_snapshot(
    engine: Engine,
    create_plain_tables: CreatePlain,
    insert_rows: InsertRows,
    copy_only: list[str],
) -> None:
    create_plain_tables()
    insert_rows("sales_lines", _sales_rows(12))
    insert_rows("on_hand", [{"item_id": "A", "warehouse_id": "W", "qty": 2.5}])
    data = read_input(engine, chunk_rows=5)
    assert sorted(copy_only) == sorted(INPUT_TABLES)
    assert len(data["sales_lines"]["qty"]) == 12
    assert data["on_hand"]["qty"].tolist() == [2.5]
    assert len(data["forecasts"]["qty"]) == 0
    assert data["forecasts"]["forecast_date"].dtype == np.dtype("datetime64[D]")


@on_postgres
def test_tables_of_other_types_read_the_generic_way(
    engine: Engine, create_plain_tables: CreatePlain, insert_rows: InsertRows
) -> None:
    """A char(n) id keeps its padding and a timestamp its own day, as before."""
    create_plain_tables(
        ["forecasts"],
        types={"forecasts": {"item_id": "CHAR(4)", "forecast_date": "TIMESTAMP"}},
    )
    insert_rows(
        "forecasts",
        [{"item_id": "A", "warehouse_id": "W", "forecast_date": "2024-02-29 23:59", "qty": 1}],
    )
    table = read_table(engine, "forecasts")
    assert table["item_id"].tolist() == ["A   "]
    assert table["forecast_date"].tolist() == [dt.date(2024, 2, 29)]


@on_postgres
def test_a_number_past_float8_reads_as_the_generic_reader_reads_it(
    engine: Engine, create_plain_tables: CreatePlain, insert_rows: InsertRows
) -> None:
    """The server refuses to cast it; the table is read again the generic
    way from a savepoint, and the rest of the snapshot reads on."""
    create_plain_tables(types={"on_hand": {"qty": "NUMERIC"}})
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO on_hand VALUES ('A', 'W', 1e400), ('B', 'W', 2)")
    insert_rows("sales_lines", _sales_rows(3))
    data = read_input(engine)
    assert sorted(data["on_hand"]["qty"].tolist()) == [2.0, float("inf")]
    _assert_same(data["sales_lines"], _generic(engine, "sales_lines"))


@on_postgres
def test_a_date_no_python_date_can_be_is_read_as_unreadable(
    engine: Engine, create_plain_tables: CreatePlain
) -> None:
    """``infinity`` and years outside 1 to 9999 are days to ``COPY``: they
    read as ``UNREADABLE_DATE``, as the generic reader reads them, so that
    the engine leaves their rows out instead of the run failing."""
    create_plain_tables(["forecasts"])
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO forecasts VALUES ('A', 'W', 'infinity', 1), ('B', 'W', '-infinity', 2), "
            "('C', 'W', '10000-01-01', 3), ('D', 'W', '0001-01-01 BC', 4), "
            "('E', 'W', '9999-12-31', 5), ('F', 'W', NULL, 6)"
        )
    table = read_table(engine, "forecasts")
    days = dict(zip(table["item_id"].tolist(), table["forecast_date"], strict=True))
    assert [days[k] == UNREADABLE_DATE for k in "ABCDEF"] == [True] * 4 + [False] * 2
    assert days["E"] == np.datetime64("9999-12-31") and np.isnat(days["F"])
    _assert_same(table, _generic(engine, "forecasts"))


# --- the decoder on hand-made streams --------------------------------------------------

ON_HAND = INPUT_TABLES["on_hand"]


def _row(item: bytes | None, warehouse: bytes | None, qty: float, fields: int = 3) -> bytes:
    """An on_hand row as the COPY statement sends it: qty first, then text."""
    out = struct.pack(">hid", fields, 8, qty)
    for text in (item, warehouse):
        out += struct.pack(">i", -1) if text is None else struct.pack(">i", len(text)) + text
    return out


def test_decoder_reads_hand_made_rows() -> None:
    rows = [_row(b"A", b"W", 1.5), _row(None, "Ä".encode(), float("nan")), _row(b"", b"W", -2)]
    table = decode_rows(ON_HAND, rows, "utf-8")
    assert table["item_id"].tolist() == ["A", None, ""]
    assert table["warehouse_id"].tolist() == ["W", "Ä", "W"]
    np.testing.assert_array_equal(table["qty"], [1.5, np.nan, -2.0])


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (_row(b"A", b"W", 1.0, fields=4), "another number of fields"),
        (_row(b"A", b"W", 1.0) + b"x", "does not end where its fields do"),
        (_row(b"A", b"W", 1.0)[:-1], "does not end where its fields do|past its row"),
        (struct.pack(">hif", 3, 4, 1.0) + b"\0" * 8, "another width|shorter"),
        (b"\0\3", "shorter than its fields"),
    ],
)
def test_decoder_refuses_a_stream_of_another_shape(row: bytes, message: str) -> None:
    with pytest.raises(CopyFormatError, match=message):
        decode_rows(ON_HAND, [_row(b"A", b"W", 1.0), row], "utf-8")


def test_decoder_names_the_column_of_undecodable_text() -> None:
    with pytest.raises(ColumnDataError) as info:
        decode_rows(ON_HAND, [_row(b"A", b"\xff\xfe", 1.0)], "utf-8")
    assert (info.value.table, info.value.column) == ("on_hand", "warehouse_id")


def test_the_column_types_that_copy_reads_exactly() -> None:
    from masterplan.connector.pgcopy import copy_eligible

    plain = {
        "item_id": sa.VARCHAR(40),
        "warehouse_id": sa.TEXT(),
        "qty": sa.NUMERIC(18, 6),
    }
    assert copy_eligible(ON_HAND, plain)
    assert copy_eligible(ON_HAND, {**plain, "qty": sa.DOUBLE_PRECISION()})
    assert copy_eligible(ON_HAND, {**plain, "qty": sa.INTEGER()})
    assert not copy_eligible(ON_HAND, {**plain, "item_id": sa.CHAR(4)})
    assert not copy_eligible(ON_HAND, {**plain, "item_id": sa.INTEGER()})
    assert not copy_eligible(ON_HAND, {**plain, "qty": sa.BOOLEAN()})
    assert not copy_eligible(ON_HAND, {k: v for k, v in plain.items() if k != "qty"})
    dates = {**{c.name: sa.TEXT() for c in INPUT_TABLES["forecasts"].columns}}
    dates.update(qty=sa.FLOAT(), forecast_date=sa.DATE())
    assert copy_eligible(INPUT_TABLES["forecasts"], dates)
    assert not copy_eligible(INPUT_TABLES["forecasts"], {**dates, "forecast_date": sa.DATETIME()})


@on_postgres
def test_a_source_profile_is_read_with_copy_too(
    engine: Engine, db_url: str, copy_only: list[str]
) -> None:
    """Profile queries whose result types PostgreSQL names (text, numbers,
    dates) are read with COPY, their parameters bound on the client and a
    literal ``%`` kept, and give what the reference tables held."""
    from masterplan.connector.demo import build_demo_database
    from masterplan.connector.profile import parse_profile
    from tests.e2e.test_source_profiles import erp_profile, move_into_erp_tables

    build_demo_database(db_url, dt.date(2026, 12, 7))
    with engine.connect() as conn:
        want = {
            name: concat_chunks(spec, GENERIC_CHUNKS(conn, spec, 1000))
            for name, spec in INPUT_TABLES.items()
        }
    move_into_erp_tables(db_url)
    text = erp_profile(
        {
            # A parameter, and a % that psycopg must not take for a placeholder.
            "sales_lines": "WHERE warehouse_id <> :skip AND order_id NOT LIKE '%-none'",
            "items": "WHERE item_id LIKE '%'",
        },
        params='skip = "none"\n',
    )
    got = read_input(engine, source=parse_profile(text, "erp.toml"))
    assert sorted(copied for copied in copy_only) == sorted(INPUT_TABLES)

    def sorted_rows(table: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        order = np.lexsort([np.asarray(v).astype(str) for v in table.values()])
        return {c: v[order] for c, v in table.items()}

    for name in INPUT_TABLES:
        _assert_same(sorted_rows(got[name]), sorted_rows(want[name]))
