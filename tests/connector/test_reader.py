"""Tests of connector.reader against tables created with plain SQL."""

from __future__ import annotations

import datetime as dt
import gc
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from masterplan.connector import reader
from masterplan.connector.columns import column_from_values, concat_chunks, empty_table
from masterplan.connector.errors import ColumnDataError, SchemaMismatch
from masterplan.connector.reader import iter_table_chunks, read_input, read_table
from masterplan.connector.schema import create_all
from masterplan.contract.columns import UNREADABLE_DATE
from masterplan.contract.tables import INPUT_TABLES, ColumnKind

CreatePlain = Callable[..., None]
InsertRows = Callable[[str, Sequence[Mapping[str, Any]]], None]

EXPECTED_DTYPES = {
    ColumnKind.STR: np.dtype(object),
    ColumnKind.FLOAT: np.dtype(np.float64),
    ColumnKind.INT: np.dtype(np.float64),
    ColumnKind.DATE: np.dtype("datetime64[D]"),
}


def _check_conventions(name: str, table: Mapping[str, np.ndarray]) -> int:
    """Assert canonical columns, dtypes and equal lengths; return the length."""
    spec = INPUT_TABLES[name]
    assert list(table) == list(spec.column_names), name
    lengths = {len(a) for a in table.values()}
    assert len(lengths) == 1, name
    for column in spec.columns:
        array = table[column.name]
        assert array.ndim == 1
        assert array.dtype == EXPECTED_DTYPES[column.kind], (name, column.name, array.dtype)
        if column.kind is ColumnKind.STR:
            assert all(v is None or type(v) is str for v in array), (name, column.name)
    return lengths.pop()


def test_read_input_types_values_and_nulls(
    engine: Engine, create_plain_tables: CreatePlain, insert_rows: InsertRows
) -> None:
    create_plain_tables()
    insert_rows(
        "sales_lines",
        [
            {
                "order_id": "S1",
                "line_no": 1,
                "item_id": "A",
                "warehouse_id": "W1",
                "qty": 2.5,
                "requested_date": "2024-03-01",
                "priority": 3,
            },
            {
                "order_id": "S1",
                "line_no": 2,
                "item_id": "B",
                "warehouse_id": "W1",
                "qty": None,
                "requested_date": None,
                "priority": None,
            },
            {
                "order_id": "S2",
                "line_no": 1,
                "item_id": "Ä/ß",
                "warehouse_id": None,
                "qty": 1e-6,
                "requested_date": "2023-12-31",
                "priority": 0,
            },
        ],
    )
    insert_rows(
        "boms",
        [
            {
                "bom_id": "B1",
                "item_id": "A",
                "warehouse_id": None,
                "valid_from": None,
                "valid_to": "2030-01-01",
                "batch_qty": 2,
            },
        ],
    )
    insert_rows(
        "coverage_groups",
        [
            {
                "group_id": "G",
                "coverage_code": "period",
                "coverage_period_days": 7,
                "positive_days": None,
                "use_working_days": 1,
            }
        ],
    )

    data = read_input(engine, chunk_rows=2)

    assert set(data) == set(INPUT_TABLES)
    for name, table in data.items():
        _check_conventions(name, table)

    sales = data["sales_lines"]
    order = np.argsort(sales["order_id"].astype(str) + "/" + sales["line_no"].astype(str))
    sales = {k: v[order] for k, v in sales.items()}
    assert sales["order_id"].tolist() == ["S1", "S1", "S2"]
    assert sales["line_no"].tolist() == [1.0, 2.0, 1.0]
    assert sales["item_id"].tolist() == ["A", "B", "Ä/ß"]
    assert sales["warehouse_id"].tolist() == ["W1", "W1", None]
    np.testing.assert_array_equal(sales["qty"], [2.5, np.nan, 1e-6])
    np.testing.assert_array_equal(
        sales["requested_date"],
        np.array(["2024-03-01", "NaT", "2023-12-31"], dtype="datetime64[D]"),
    )
    np.testing.assert_array_equal(sales["priority"], [3.0, np.nan, 0.0])

    boms = data["boms"]
    assert boms["warehouse_id"].tolist() == [None]
    assert np.isnat(boms["valid_from"][0])
    assert boms["valid_to"][0] == np.datetime64("2030-01-01")
    assert boms["batch_qty"].tolist() == [2.0]

    groups = data["coverage_groups"]
    assert groups["coverage_period_days"].tolist() == [7.0]
    assert np.isnan(groups["positive_days"][0])
    assert np.isnan(groups["negative_days"][0])  # column never given: NULL

    assert len(data["forecasts"]["qty"]) == 0
    assert len(data["transfer_lines"]["ship_date"]) == 0


def test_empty_table_gives_typed_zero_length_arrays(
    engine: Engine, create_plain_tables: CreatePlain
) -> None:
    create_plain_tables(["transfer_lines"])
    assert list(iter_table_chunks(engine, "transfer_lines")) == []
    table = read_table(engine, "transfer_lines")
    assert _check_conventions("transfer_lines", table) == 0
    for name, spec in INPUT_TABLES.items():
        assert _check_conventions(name, empty_table(spec)) == 0
        assert _check_conventions(name, concat_chunks(spec, [])) == 0


def test_chunks_are_bounded(
    engine: Engine, create_plain_tables: CreatePlain, insert_rows: InsertRows
) -> None:
    create_plain_tables(["on_hand"])
    n = 2500
    insert_rows(
        "on_hand",
        [{"item_id": f"I{i:05d}", "warehouse_id": "W", "qty": float(i)} for i in range(n)],
    )
    chunks = list(iter_table_chunks(engine, "on_hand", chunk_rows=1000))
    sizes = [len(c["qty"]) for c in chunks]
    if engine.dialect.name == "postgresql":
        # Runs of whole heap blocks (connector.pgblocks), each within the bound.
        assert len(sizes) >= 3 and max(sizes) <= 1000
    else:
        assert sizes == [1000, 1000, 500]
    whole = concat_chunks(INPUT_TABLES["on_hand"], chunks)
    assert sorted(whole["qty"].tolist()) == [float(i) for i in range(n)]
    assert sorted(whole["item_id"].tolist()) == [f"I{i:05d}" for i in range(n)]


@pytest.mark.parametrize("chunk_rows", [1, 3, 4, 5, 8, 23, 50])
def test_rows_fetched_a_few_at_a_time_fill_chunks_up_to_the_bound(
    engine: Engine,
    create_plain_tables: CreatePlain,
    insert_rows: InsertRows,
    monkeypatch: pytest.MonkeyPatch,
    chunk_rows: int,
) -> None:
    """The generic path fetches FETCH_ROWS rows at a time and writes each
    batch's columns into its chunk: every chunk but the last holds exactly
    ``chunk_rows`` rows, whichever way the batches fall across chunks, and
    the rows come in the order of a read in one batch."""
    # PostgreSQL reads tables of ordinary types through COPY; a char(n) id
    # keeps this one on driver rows.
    order_type = "CHAR(6)" if engine.dialect.name == "postgresql" else None
    create_plain_tables(["sales_lines"], types={"sales_lines": {"order_id": order_type}})
    n = 23
    insert_rows(
        "sales_lines",
        [
            {
                "order_id": f"S{i:05d}",
                "line_no": i % 4,
                "item_id": f"I{i % 7}",
                "warehouse_id": "W",
                "qty": 0.5 * i,
                "requested_date": dt.date(2026, 1, 1) + dt.timedelta(days=i % 9),
                "priority": i,
            }
            for i in range(n)
        ],
    )
    spec = INPUT_TABLES["sales_lines"]
    whole = read_table(engine, "sales_lines", chunk_rows=1000)
    monkeypatch.setattr(reader, "FETCH_ROWS", 4)
    chunks = list(iter_table_chunks(engine, "sales_lines", chunk_rows=chunk_rows))
    sizes = [len(c["qty"]) for c in chunks]
    assert sizes == [chunk_rows] * (n // chunk_rows) + ([n % chunk_rows] if n % chunk_rows else [])
    for chunk in chunks:
        assert list(chunk) == list(spec.column_names)
        for c in spec.columns:
            assert chunk[c.name].dtype == whole[c.name].dtype, c.name
    joined = concat_chunks(spec, chunks)
    for name in spec.column_names:
        assert joined[name].tolist() == whole[name].tolist(), name
    assert sorted(joined["priority"].tolist()) == list(range(n))


def test_reads_through_a_server_side_cursor(
    engine: Engine, create_plain_tables: CreatePlain, insert_rows: InsertRows
) -> None:
    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite has no server-side cursors (its cursor is lazy anyway)")
    # PostgreSQL reads tables of ordinary types through COPY
    # (tests/connector/test_pgcopy.py); a char(n) id keeps this one generic.
    item_type = "CHAR(4)" if engine.dialect.name == "postgresql" else None
    create_plain_tables(["on_hand"], types={"on_hand": {"item_id": item_type}})
    insert_rows("on_hand", [{"item_id": "A", "warehouse_id": "W", "qty": 1.0}] * 5)
    seen: list[str] = []

    def spy(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "on_hand" in statement:
            seen.append(type(cursor).__name__)

    sa.event.listen(engine, "before_cursor_execute", spy)
    try:
        assert sum(len(c["qty"]) for c in iter_table_chunks(engine, "on_hand", 2)) == 5
    finally:
        sa.event.remove(engine, "before_cursor_execute", spy)
    # psycopg's named cursor / PyMySQL's unbuffered cursor.
    assert seen and seen[0] in {"ServerCursor", "SSCursor"}, seen


def test_ids_in_integer_columns_become_strings(
    engine: Engine, create_plain_tables: CreatePlain, insert_rows: InsertRows
) -> None:
    create_plain_tables(["on_hand"], types={"on_hand": {"item_id": "INTEGER"}})
    insert_rows("on_hand", [{"item_id": 42, "warehouse_id": "W", "qty": 1}])
    table = read_table(engine, "on_hand")
    assert table["item_id"].tolist() == ["42"]
    assert table["qty"].dtype == np.float64


def test_float_columns_declared_double(
    engine: Engine, create_plain_tables: CreatePlain, insert_rows: InsertRows
) -> None:
    double = "REAL" if engine.dialect.name == "sqlite" else "DOUBLE PRECISION"
    create_plain_tables(["on_hand"], types={"on_hand": {"qty": double}})
    insert_rows("on_hand", [{"item_id": "A", "warehouse_id": "W", "qty": 0.1 + 1e-12}])
    assert read_table(engine, "on_hand")["qty"].tolist() == [0.1 + 1e-12]


def test_sqlite_date_strings(tmp_path: Any) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path}/dates.db")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE forecasts (item_id TEXT, warehouse_id TEXT, forecast_date DATE, qty REAL)"
        )
        conn.exec_driver_sql(
            "INSERT INTO forecasts VALUES ('A', 'W', '2024-01-05', 1), "
            "('A', 'W', '2024-01-06 00:00:00', 2), ('A', 'W', '2024-01-07T13:45:00', 3), "
            "('A', 'W', NULL, 4)"
        )
    table = read_table(engine, "forecasts")
    np.testing.assert_array_equal(
        table["forecast_date"],
        np.array(["2024-01-05", "2024-01-06", "2024-01-07", "NaT"], dtype="datetime64[D]"),
    )
    engine.dispose()


def test_dates_from_datetime_columns(
    engine: Engine, create_plain_tables: CreatePlain, insert_rows: InsertRows
) -> None:
    timestamp = {"sqlite": "TIMESTAMP", "postgresql": "TIMESTAMP", "mysql": "DATETIME"}
    create_plain_tables(
        ["forecasts"], types={"forecasts": {"forecast_date": timestamp[engine.dialect.name]}}
    )
    insert_rows(
        "forecasts",
        [{"item_id": "A", "warehouse_id": "W", "forecast_date": "2024-02-29 23:59:00", "qty": 1}],
    )
    assert read_table(engine, "forecasts")["forecast_date"].tolist() == [dt.date(2024, 2, 29)]


#: Dates each backend can hold that name no day Python (or a plan) can have.
BAD_DATES: dict[str, list[str]] = {
    "sqlite": ["2026-02-30", "soon", "", "NaT", "today", "2026", "12000-01-01", "0000-01-01"],
    "postgresql": ["infinity", "-infinity", "10000-01-01", "0044-03-15 BC"],
    "mysql": ["0000-00-00", "2026-00-10", "2026-02-00"],
}


@pytest.mark.parametrize("column_type", ["DATE", "TIMESTAMP"])
def test_a_date_that_names_no_day_is_read_as_unreadable_not_null(
    engine: Engine, create_plain_tables: CreatePlain, column_type: str
) -> None:
    """In a nullable column too (``boms.valid_to``): an unreadable value must
    not pass for NULL. On PostgreSQL, ``DATE`` is read through ``COPY`` and
    ``TIMESTAMP`` through psycopg's rows."""
    dialect = engine.dialect.name
    sql_type = "DATETIME" if column_type == "TIMESTAMP" and dialect == "mysql" else column_type
    create_plain_tables(["boms"], types={"boms": {"valid_to": sql_type}})
    bad = BAD_DATES[dialect]
    values = ["2026-01-05", None, *bad]
    if dialect == "sqlite":
        values.append(20260105)  # an integer is no date either (numpy would read days)
    with engine.begin() as conn:
        if dialect == "mysql":  # a server mode that lets zero dates in
            conn.exec_driver_sql("SET SESSION sql_mode = ''")
        conn.execute(
            sa.text("INSERT INTO boms (bom_id, item_id, valid_to) VALUES (:b, 'A', :d)"),
            [{"b": f"B{k:02d}", "d": v} for k, v in enumerate(values)],
        )
    table = read_table(engine, "boms")
    got = dict(zip(table["bom_id"].tolist(), table["valid_to"], strict=True))
    assert got["B00"] == np.datetime64("2026-01-05")
    assert np.isnat(got["B01"])
    for k in range(2, len(values)):
        assert got[f"B{k:02d}"] == UNREADABLE_DATE, values[k]


@pytest.mark.parametrize(
    "value",
    [
        "2026-02-30",
        "soon",
        "",
        "NaT",
        "nat",
        "today",
        "now",
        "2026",
        "2026-03",
        "10000-01-01",
        "0000-01-01",
        "-0001-01-01",
        "2026-01-05 junk",
        20260105,
        45000,
        2460000.5,
    ],
)
def test_numpy_leniencies_are_no_dates(value: Any) -> None:
    column = INPUT_TABLES["sales_lines"].column("requested_date")
    got = column_from_values("sales_lines", column, ["2026-01-05", value, None, "2026-01-06"])
    assert got.tolist()[0] == dt.date(2026, 1, 5)
    assert got[1] == UNREADABLE_DATE
    assert np.isnat(got[2])
    assert got.tolist()[3] == dt.date(2026, 1, 6)


@pytest.mark.parametrize(
    ("value", "day"),
    [
        ("2024-01-06 13:45:00", "2024-01-06"),
        ("2024-01-06T13:45", "2024-01-06"),
        ("  2024-01-06", "2024-01-06"),
        ("0001-01-01", "0001-01-01"),
        ("9999-12-31", "9999-12-31"),
        (dt.datetime(2024, 1, 6, 23, 59), "2024-01-06"),
        (dt.date(2024, 1, 6), "2024-01-06"),
    ],
)
def test_dates_read_as_before(value: Any, day: str) -> None:
    column = INPUT_TABLES["sales_lines"].column("requested_date")
    for values in ([value], [value, "soon"]):  # the fast path, and the one by one
        assert column_from_values("sales_lines", column, values)[0] == np.datetime64(day)


def test_unreadable_value_names_table_and_column(tmp_path: Any) -> None:
    # SQLite's type affinity lets text into a NUMERIC column.
    engine = sa.create_engine(f"sqlite:///{tmp_path}/bad.db")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE on_hand (item_id TEXT, warehouse_id TEXT, qty NUMERIC)")
        conn.exec_driver_sql("INSERT INTO on_hand VALUES ('A', 'W', 1), ('B', 'W', 'lots')")
    with pytest.raises(ColumnDataError) as info:
        read_table(engine, "on_hand")
    assert (info.value.table, info.value.column) == ("on_hand", "qty")
    assert "'lots'" in str(info.value)
    engine.dispose()


def test_read_input_fails_on_missing_column_before_reading(
    engine: Engine, create_plain_tables: CreatePlain
) -> None:
    create_plain_tables(without={"purchase_lines": ["vendor_id"]})
    with pytest.raises(SchemaMismatch) as info:
        read_input(engine)
    assert (info.value.table, info.value.column) == ("purchase_lines", "vendor_id")


def test_read_input_fails_on_missing_table(
    engine: Engine, create_plain_tables: CreatePlain
) -> None:
    create_plain_tables(skip_tables=["calendar_exceptions"])
    with pytest.raises(SchemaMismatch) as info:
        read_input(engine)
    assert (info.value.table, info.value.column) == ("calendar_exceptions", None)


def test_selects_only_spec_columns_in_canonical_order(
    engine: Engine, insert_rows: InsertRows
) -> None:
    with engine.begin() as conn:
        # Extra column, and columns in another order than the spec's.
        conn.exec_driver_sql(
            "CREATE TABLE on_hand (qty NUMERIC(18, 6), note VARCHAR(20), "
            "warehouse_id VARCHAR(20), item_id VARCHAR(20))"
        )
    insert_rows("on_hand", [{"qty": 5, "note": "x", "warehouse_id": "W", "item_id": "A"}])
    table = read_table(engine, "on_hand")
    assert list(table) == ["item_id", "warehouse_id", "qty"]
    assert (table["item_id"][0], table["warehouse_id"][0], table["qty"][0]) == ("A", "W", 5.0)


def test_invalid_arguments(engine: Engine) -> None:
    with pytest.raises(ValueError, match="chunk_rows"):
        next(iter_table_chunks(engine, "on_hand", chunk_rows=0))
    with pytest.raises(KeyError, match="not a table"):
        next(iter_table_chunks(engine, "nonsense"))


def test_the_collector_is_off_while_reading_and_back_on_after(tmp_path: Any) -> None:
    """Reading pauses Python's cyclic collector (it rescanned every row
    object, half of a large read) and turns it back on, after a failed
    read too."""
    engine = sa.create_engine(f"sqlite:///{tmp_path}/scm.db")
    create_all(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO on_hand VALUES ('A', 'W', 1)")
    during: list[bool] = []
    read_input(engine, on_chunk=lambda name, rows: during.append(gc.isenabled()))
    assert during == [False] and gc.isenabled()
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO on_hand VALUES ('B', 'W', 'lots')")
    with pytest.raises(ColumnDataError):
        read_input(engine)
    assert gc.isenabled()
    engine.dispose()
