"""Binary COPY payloads (connector.copybinary): each row holds exactly the
values of the table, and PostgreSQL stores what the text path stores."""

from __future__ import annotations

import datetime as dt
import struct
from typing import Any
from unittest import mock

import numpy as np
import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from masterplan.connector import copybinary, writer
from masterplan.connector.copybinary import Wire, copy_binary, wire_types
from masterplan.connector.errors import InvalidResult
from masterplan.connector.reader import read_table
from masterplan.connector.schema import create_all, sql_table
from masterplan.connector.writer import ResultWrite, RunRecord, write_run
from masterplan.contract.coded import Coded
from masterplan.contract.tables import PLAN_OUTPUT_TABLES, RESULT_TABLES, ColumnKind, ColumnSpec
from tests.connector.conftest import plain_ddl

PG_EPOCH = dt.date(2000, 1, 1)

#: A column of each kind and wire form.
COLUMNS = [
    ColumnSpec("ref", ColumnKind.STR),
    ColumnSpec("qty", ColumnKind.FLOAT),
    ColumnSpec("day", ColumnKind.DATE),
    ColumnSpec("n4", ColumnKind.INT),
    ColumnSpec("n8", ColumnKind.INT),
]
WIRES = [Wire.TEXT, Wire.FLOAT8, Wire.DATE, Wire.INT4, Wire.INT8]


def _parse(payload: bytes, n_fields: int) -> list[list[bytes | None]]:
    """The rows of a payload, each field's bytes (None for NULL): a literal
    reading of the format, one field at a time."""
    rows, at = [], 0
    while at < len(payload):
        (count,) = struct.unpack_from(">h", payload, at)
        assert count == n_fields
        at += 2
        row: list[bytes | None] = []
        for _ in range(count):
            (length,) = struct.unpack_from(">i", payload, at)
            at += 4
            if length < 0:
                row.append(None)
            else:
                row.append(payload[at : at + length])
                at += length
        rows.append(row)
    assert at == len(payload)
    return rows


#: Text as the wire carries it: UTF-8, so no lone surrogate (and no zero byte).
texts = st.one_of(
    st.none(),
    st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=12),
)
floats = st.one_of(st.just(np.nan), st.floats(allow_nan=False), st.just(-0.0))
days = st.one_of(st.none(), st.dates(dt.date(1, 1, 1), dt.date(9999, 12, 31)))
ints4 = st.one_of(st.just(np.nan), st.integers(-(2**31), 2**31 - 1).map(float))
ints8 = st.one_of(st.just(np.nan), st.integers(-(2**53), 2**53).map(float))


@given(
    st.lists(st.tuples(texts, floats, days, ints4, ints8), max_size=30),
    st.text(max_size=5),
    st.permutations(range(len(COLUMNS))),
)
def test_each_row_holds_the_constants_then_every_value_in_its_wire_form(
    rows: list[tuple[Any, ...]], run: str, order: list[int]
) -> None:
    """In any column order, with the rows laid out by the compiled loop."""
    _check_rows(rows, run, order)


@given(
    st.lists(st.tuples(texts, floats, days, ints4, ints8), max_size=8),
    st.text(max_size=5),
    st.permutations(range(len(COLUMNS))),
)
def test_the_row_loop_run_as_plain_python_lays_the_same_rows(
    rows: list[tuple[Any, ...]], run: str, order: list[int]
) -> None:
    """Where numba is absent the loop runs as it is written."""
    with mock.patch.object(copybinary, "_lay_rows_compiled", lambda: copybinary._lay_rows):
        _check_rows(rows, run, order)


def test_long_text_gets_every_byte_of_its_length_word() -> None:
    values = ["x" * 70_000, "y" * 300, None, ""]
    table = {"ref": np.array(values, dtype=object), "qty": np.array([1.0, np.nan, 2.0, 3.0])}
    payload = copy_binary(COLUMNS[:2], WIRES[:2], table, ["main"], "utf-8")
    parsed = _parse(payload, 3)
    assert [row[1] for row in parsed] == [b"x" * 70_000, b"y" * 300, None, b""]
    assert [row[2] is None for row in parsed] == [False, True, False, False]


def _check_rows(rows: list[tuple[Any, ...]], run: str, order: list[int]) -> None:
    ref, qty, day, n4, n8 = (list(c) for c in zip(*rows, strict=True)) if rows else ([],) * 5
    table = {
        "ref": np.array(ref, dtype=object),
        "qty": np.array(qty, dtype=np.float64),
        "day": np.array([np.datetime64("NaT") if d is None else d for d in day], "datetime64[D]"),
        "n4": np.array(n4, dtype=np.float64),
        "n8": np.array(n8, dtype=np.float64),
    }
    columns, wires = [COLUMNS[k] for k in order], [WIRES[k] for k in order]
    payload = copy_binary(columns, wires, table, ["main", run], "utf-8")
    parsed = _parse(payload, 2 + len(COLUMNS))
    assert len(parsed) == len(rows)
    for fields, (r, q, d, i4, i8) in zip(parsed, rows, strict=True):
        assert fields[:2] == [b"main", run.encode()]
        got = dict(zip((c.name for c in columns), fields[2:], strict=True))
        assert got["ref"] == (None if r is None else r.encode())
        if np.isnan(q):
            assert got["qty"] is None
        else:
            assert got["qty"] is not None and struct.unpack(">d", got["qty"])[0] == q
            assert np.signbit(struct.unpack(">d", got["qty"])[0]) == np.signbit(q)
        assert got["day"] == (None if d is None else struct.pack(">i", (d - PG_EPOCH).days))
        assert got["n4"] == (None if np.isnan(i4) else struct.pack(">i", int(i4)))
        assert got["n8"] == (None if np.isnan(i8) else struct.pack(">q", int(i8)))


def _coded(values: list[str | None], data: st.DataObject) -> Coded:
    """``values`` as codes into a dictionary that also holds values no row
    uses, a value twice and a None value, in a drawn order; NULL drawn as
    code -1 or as the None value."""
    words = [*sorted({v for v in values if v is not None}), "unused", "unused", None]
    order = data.draw(st.permutations(range(len(words))))
    dictionary = np.array([words[k] for k in order], dtype=object)
    at = {w: i for i, w in enumerate(dictionary.tolist()) if w is not None}
    none_at = dictionary.tolist().index(None)
    codes = [at[v] if v is not None else data.draw(st.sampled_from([-1, none_at])) for v in values]
    return Coded(np.array(codes, dtype=np.int32), dictionary)


@given(st.lists(st.tuples(texts, floats), max_size=30), st.data())
def test_coded_text_makes_the_payload_plain_text_makes(
    rows: list[tuple[Any, ...]], data: st.DataObject
) -> None:
    """As a chunk crosses the wire (codes into its dictionary): each
    distinct value encoded once, the same bytes."""
    ref = [r for r, _ in rows]
    qty = np.array([q for _, q in rows], dtype=np.float64)
    plain = {"ref": np.array(ref, dtype=object), "qty": qty}
    coded = {"ref": _coded(ref, data), "qty": qty}
    columns, wires = [COLUMNS[1], COLUMNS[0]], [WIRES[1], WIRES[0]]
    want = copy_binary(columns, wires, plain, ["main", "r"], "utf-8")
    assert copy_binary(columns, wires, coded, ["main", "r"], "utf-8") == want


def test_an_integer_column_of_doubles_gets_whole_numbers_as_text_would() -> None:
    table = {"n": np.array([1.4, 2.5, -0.6, np.nan])}
    payload = copy_binary([ColumnSpec("n", ColumnKind.INT)], [Wire.FLOAT8], table, [], "utf-8")
    got = [None if f[0] is None else struct.unpack(">d", f[0])[0] for f in _parse(payload, 1)]
    assert got == [1.0, 2.0, -1.0, None]


def test_text_goes_in_the_connections_encoding() -> None:
    table = {"ref": np.array(["é", "ok", None], dtype=object)}
    payload = copy_binary(COLUMNS[:1], WIRES[:1], table, [], "latin-1")
    assert [row[0] for row in _parse(payload, 1)] == [b"\xe9", b"ok", None]


@pytest.mark.parametrize(("value", "wire"), [(2.0**31, Wire.INT4), (-(2.0**63) - 4096, Wire.INT8)])
def test_an_integer_past_its_column_is_refused_by_name(value: float, wire: Wire) -> None:
    table = {"n": np.array([1.0, value])}
    with pytest.raises(ValueError, match=r"pegging\.n: .* out of range"):
        copy_binary([ColumnSpec("n", ColumnKind.INT)], [wire], table, [], "utf-8", "pegging.")


def test_text_the_encoding_cannot_hold_is_refused_by_name() -> None:
    table = {"ref": np.array([None, "\ud800"], dtype=object)}  # a lone surrogate
    with pytest.raises(ValueError, match=r"pegging\.ref: text is not utf-8"):
        copy_binary(COLUMNS[:1], WIRES[:1], table, [], "utf-8", "pegging.")
    table = {"ref": np.array(["€"], dtype=object)}
    with pytest.raises(ValueError, match=r"pegging\.ref: text is not latin-1"):
        copy_binary(COLUMNS[:1], WIRES[:1], table, [], "latin-1", "pegging.")


def test_text_with_a_zero_byte_is_refused_by_name() -> None:
    table = {"ref": np.array(["a\x00b"], dtype=object)}
    with pytest.raises(ValueError, match=r"plan_messages\.ref: text holds a zero byte"):
        copy_binary(COLUMNS[:1], WIRES[:1], table, [], "utf-8", "plan_messages.")


# --- on PostgreSQL ---------------------------------------------------------------------


def _on_postgres(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("binary COPY is the PostgreSQL path")


def _record(run_id: str) -> RunRecord:
    start = dt.datetime(2024, 3, 1, 8, 0, tzinfo=dt.UTC)
    return RunRecord(
        run_id=run_id,
        plan_id="main",
        mode="regeneration",
        plan_date=dt.date(2024, 3, 1),
        started_at=start,
        finished_at=start + dt.timedelta(seconds=30),
    )


def _awkward_results() -> dict[str, dict[str, np.ndarray]]:
    """Every result table with values that test a wire form: NULL in every
    nullable column, non-ASCII and escaped text, the empty text, -0.0,
    the largest and smallest doubles, the first and last days a date can
    be, the largest 32-bit integer."""
    text = ["tab\there", "new\nline", "back\\slash \\N", "é € ü", "", "plain"]
    qty = [-0.0, 1e300, 5e-324, 1.25, -3.5, 7.0]
    day = ["0001-01-01", "9999-12-31", "2000-01-01", "1999-12-31", "2024-02-29", "2026-01-05"]
    whole = [0.0, 1.0, -7.0, 2.0**31 - 1, 3.0, 1.0]
    results: dict[str, dict[str, np.ndarray]] = {}
    for name in PLAN_OUTPUT_TABLES:
        table: dict[str, np.ndarray] = {}
        for k, column in enumerate(RESULT_TABLES[name].columns):
            if column.name in ("plan_id", "run_id"):
                continue
            null = k % 6 if column.nullable else -1  # a row of its own per column
            if column.kind is ColumnKind.STR:
                values: Any = [f"{v}#{i}" if i % 2 else v for i, v in enumerate(text)]
                table[column.name] = np.array(
                    [None if i == null else v for i, v in enumerate(values)], dtype=object
                )
            elif column.kind is ColumnKind.DATE:
                table[column.name] = np.array(
                    ["NaT" if i == null else d for i, d in enumerate(day)], "datetime64[D]"
                )
            else:
                numbers = qty if column.kind is ColumnKind.FLOAT else whole
                table[column.name] = np.array(
                    [np.nan if i == null else v for i, v in enumerate(numbers)]
                )
        results[name] = table
    return results


def _stored(engine: Engine, run_id: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every result table's rows of ``run_id``, as the database gives them, sorted."""
    out = {}
    with engine.connect() as conn:
        for name in PLAN_OUTPUT_TABLES:
            t = sql_table(name)
            columns = [c for c in t.columns if c.name not in ("plan_id", "run_id")]
            rows = conn.execute(sa.select(*columns).where(t.c.run_id == run_id)).all()
            out[name] = sorted((tuple(r) for r in rows), key=repr)
    return out


def test_postgres_stores_from_binary_what_it_stores_from_text(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _on_postgres(engine)
    create_all(engine)
    results = _awkward_results()
    assert write_run(engine, _record("binary"), results).written
    binary = _stored(engine, "binary")
    # -0.0 keeps its sign.
    qty = read_table(engine, "pegging")["qty"]
    assert len(qty[qty == 0]) == 1 and np.signbit(qty[qty == 0]).all()
    with monkeypatch.context() as patch:
        patch.setattr(writer, "wire_types", lambda *args: None)  # the text path
        assert write_run(engine, _record("text"), results).written  # replaces the plan
    assert binary == _stored(engine, "text")
    assert all(len(rows) == 6 for rows in binary.values())


def test_coded_text_is_stored_as_plain_text_is(engine: Engine) -> None:
    """Rows whose text comes coded, as the streamed write gets them, are
    stored as the same rows with plain text: binary COPY on PostgreSQL,
    the other paths elsewhere (they make the text from the codes)."""
    create_all(engine)
    results = _awkward_results()
    assert write_run(engine, _record("plain"), results).written
    plain = _stored(engine, "plain")
    counts = {name: 6 for name in PLAN_OUTPUT_TABLES}
    with ResultWrite(engine, _record("coded"), plan_counts=counts, rows_added=30) as write:
        for name in PLAN_OUTPUT_TABLES:
            write.add(name, {k: _as_coded(v) for k, v in results[name].items()})
        assert write.commit().written
    assert _stored(engine, "coded") == plain


def _as_coded(column: np.ndarray) -> np.ndarray | Coded:
    if column.dtype != object:
        return column
    values = column.tolist()
    dictionary = [v for v in dict.fromkeys(values) if v is not None]
    at = {v: i for i, v in enumerate(dictionary)}
    codes = np.array([-1 if v is None else at[v] for v in values], dtype=np.int32)
    return Coded(codes, np.array(dictionary, dtype=object))


@pytest.mark.parametrize(
    "dtype", [np.dtype(object), np.dtypes.StringDType()], ids=["objects", "strings"]
)
def test_a_coded_null_in_a_column_that_takes_none_is_refused(
    engine: Engine, dtype: np.dtype
) -> None:
    create_all(engine)
    table = _awkward_results()["pegging"]
    codes = np.zeros(6, dtype=np.int32)
    codes[2] = -1
    table["demand_ref"] = Coded(codes, np.array(["d"], dtype=dtype))
    counts = {name: 6 if name == "pegging" else 0 for name in PLAN_OUTPUT_TABLES}
    write = ResultWrite(engine, _record("bad"), plan_counts=counts, rows_added=6)
    with write, pytest.raises(InvalidResult, match=r"demand_ref.*NULL not allowed"):
        write.add("pegging", table)


@pytest.mark.parametrize("used", [False, True])
@pytest.mark.parametrize(
    "dtype", [np.dtype(object), np.dtypes.StringDType(na_object=None)], ids=["objects", "strings"]
)
def test_a_none_in_the_dictionary_is_refused_only_where_a_row_names_it(
    engine: Engine, used: bool, dtype: np.dtype
) -> None:
    """Objects, and numpy strings whose missing value is None, may hold a
    NULL in the dictionary (the engine's own plain strings cannot)."""
    create_all(engine)
    table = _awkward_results()["pegging"]
    codes = np.zeros(6, dtype=np.int32)
    codes[4] = 1 if used else 0
    table["demand_ref"] = Coded(codes, np.array(["d", None], dtype=dtype))
    counts = {name: 6 if name == "pegging" else 0 for name in PLAN_OUTPUT_TABLES}
    write = ResultWrite(engine, _record(f"none-{used}"), plan_counts=counts, rows_added=6)
    with write:
        if used:
            with pytest.raises(InvalidResult, match=r"demand_ref.*NULL not allowed"):
                write.add("pegging", table)
            return
        write.add("pegging", table)
        write.commit()
    with engine.connect() as conn:
        refs = conn.exec_driver_sql("SELECT demand_ref FROM pegging WHERE run_id = 'none-False'")
        assert [r for (r,) in refs] == ["d"] * 6


def test_a_column_type_binary_cannot_write_takes_the_text_path(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An integrator's result table with a NUMERIC quantity: its wire forms
    are unknown, so its rows go as text, and the others' still as binary."""
    _on_postgres(engine)
    create_all(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE pegging")
        conn.exec_driver_sql(plain_ddl(engine, RESULT_TABLES["pegging"], types={"qty": "NUMERIC"}))
    with engine.connect() as conn:
        pegging = [RESULT_TABLES["pegging"].column(c) for c in ("plan_id", "qty")]
        assert wire_types(conn, sql_table("pegging"), pegging) is None
        orders = RESULT_TABLES["planned_orders"].columns
        assert wire_types(conn, sql_table("planned_orders"), orders) is not None
    formats: list[bool] = []
    real = writer._CopyPipe.__init__

    def recording(self: Any, conn: Any, target: Any, names: Any, binary: bool = False) -> None:
        formats.append(binary)
        real(self, conn, target, names, binary)

    monkeypatch.setattr(writer._CopyPipe, "__init__", recording)
    results = _awkward_results()
    assert write_run(engine, _record("run-1"), results).written
    assert formats.count(False) == 1 and formats.count(True) == len(PLAN_OUTPUT_TABLES) - 1
    stored = read_table(engine, "pegging")
    assert sorted(stored["demand_ref"].tolist()) == sorted(results["pegging"]["demand_ref"])
    assert sorted(stored["qty"].tolist()) == sorted(results["pegging"]["qty"].tolist())


def test_a_postgres_write_has_the_row_loop_loaded_before_its_first_chunk() -> None:
    """Loaded while the run is planned, not when the first chunk waits."""
    pytest.importorskip("psycopg")
    assert writer.prepare_write(sa.create_engine("sqlite://")) is None  # no COPY there
    thread = writer.prepare_write(sa.create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none"))
    assert thread is not None
    thread.join(timeout=120)
    assert copybinary._LOOP and copybinary._LOOP[0] is not copybinary._lay_rows  # compiled
