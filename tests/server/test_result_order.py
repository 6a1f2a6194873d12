"""Result rows stream in the order of their table's database index, where asked.

A writer stores the rows as they arrive; arriving in the order of the
result table's index (``TableSpec.indexes``), each index entry goes beside
the one before (on PostgreSQL a third of the write's time). The order is a
permutation: every row comes once, whole, whatever the chunking. Unasked,
the rows come in the engine's order, with no sort.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from numpy.dtypes import StringDType

from bench.generate import DEFAULT_PLAN_DATE, generate_tables
from masterplan.codec import concat, decode_chunk, encode_table
from masterplan.connector.writer import writes_in_index_order
from masterplan.contract.coded import Coded
from masterplan.contract.columns import table_length
from masterplan.contract.rows import to_rows
from masterplan.contract.tables import (
    BOOKKEEPING_COLUMNS,
    PLAN_OUTPUT_TABLES,
    RESULT_OUTPUT_SPECS,
    RESULT_TABLES,
    ColumnKind,
    ColumnSpec,
    TableSpec,
)
from masterplan.server.engine import PlanParams, plan
from masterplan.server.results_stream import ResultStream, index_order
from masterplan.v1 import planning_pb2
from tests.server.test_run_difference import MAIN, scm, tables

PEGGING = RESULT_TABLES["pegging"]


def _key(value: Any) -> tuple[int, Any]:
    """Sort key of a cell: NULL first, then by value (code point for text)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return (0, 0)
    return (1, value)


def _sorted_positions(keys: list[tuple[Any, ...]]) -> list[int]:
    return sorted(range(len(keys)), key=lambda i: tuple(_key(v) for v in keys[i]))


def test_a_coded_key_sorts_by_its_text_with_null_first_and_ties_in_place() -> None:
    # The dictionary is in no order, holds a None and an unused value, and
    # some rows are NULL by code -1.
    values = np.array(["SO:9", "PL:b/1", None, "FC:1", "PL:a/10", "zz"], dtype=object)
    codes = np.array([0, 1, -1, 3, 4, 2, 1, 0, 3, -1])
    order = index_order(PEGGING, {"demand_ref": Coded(codes, values)})
    assert order is not None
    texts = [None if c < 0 else values[c] for c in codes]
    assert order.tolist() == _sorted_positions([(t,) for t in texts])


@pytest.mark.parametrize("dtype", [object, StringDType()])
def test_a_dictionary_holding_a_text_twice_still_sorts_the_rows_by_text(dtype: Any) -> None:
    """The engine's numpy strings are placed without comparing neighbours:
    rows of one text under two codes come together, in text order."""
    values = np.array(["b", "a", "c", "a", "b"], dtype=dtype)
    codes = np.array([3, 0, 1, -1, 4, 2, 3, 1, 0])
    order = index_order(PEGGING, {"demand_ref": Coded(codes, values)})
    assert order is not None and sorted(order.tolist()) == list(range(len(codes)))
    texts = [None if c < 0 else str(values[c]) for c in codes]
    got = [_key(texts[i]) for i in order.tolist()]
    assert got == sorted(got)
    # Within one code, the rows keep their order.
    for code in set(codes.tolist()):
        rows = [i for i in order.tolist() if codes[i] == code]
        assert rows == sorted(rows)


@pytest.mark.parametrize("dtype", [object, StringDType()])
def test_a_plain_text_key_sorts_the_same(dtype: Any) -> None:
    texts = ["PL:x/2", "PL:x/10", "PL:x/1", "PL:a/1", "PL:x/2"]
    column = np.array(texts, dtype=dtype)
    order = index_order(RESULT_TABLES["planned_orders"], {"planned_order_id": column})
    assert order is not None
    assert order.tolist() == _sorted_positions([(t,) for t in texts])
    assert order.tolist() == [3, 2, 1, 0, 4]  # code point order: "1" < "10" < "2"


def test_an_index_of_several_columns_sorts_by_each_in_turn() -> None:
    spec = TableSpec(
        "t",
        (
            ColumnSpec("plan_id", ColumnKind.STR),
            ColumnSpec("a", ColumnKind.STR),
            ColumnSpec("b", ColumnKind.FLOAT),
            ColumnSpec("c", ColumnKind.DATE),
        ),
        indexes=(("plan_id", "a", "b", "c"),),
    )
    rng = np.random.default_rng(3)
    n = 200
    a = np.array([rng.choice(["x", "y", None]) for _ in range(n)], dtype=object)
    b = rng.integers(0, 3, n).astype(np.float64)
    b[rng.random(n) < 0.2] = np.nan
    c = np.datetime64("2026-01-05") + rng.integers(0, 4, n)
    c[rng.random(n) < 0.2] = np.datetime64("NaT")
    plain = index_order(spec, {"a": a, "b": b, "c": c})
    assert plain is not None
    # The same text coded: equal text, equal rank, whatever its code.
    codes = np.array([{"y": 0, "x": 1, None: -1}[v] for v in a])
    coded = index_order(spec, {"a": Coded(codes, np.array(["y", "x"])), "b": b, "c": c})
    assert coded is not None and coded.tolist() == plain.tolist()
    cells = [
        (a[i], None if np.isnan(b[i]) else float(b[i]), None if np.isnat(c[i]) else str(c[i]))
        for i in range(n)
    ]
    assert plain.tolist() == _sorted_positions(cells)


def test_no_index_or_a_missing_column_keeps_the_rows_as_they_are() -> None:
    assert index_order(PEGGING, {"qty": np.ones(3)}) is None
    assert index_order(PEGGING, {"demand_ref": np.array([], dtype=object)}) is None
    bare = TableSpec("t", (ColumnSpec("a", ColumnKind.STR),))
    assert index_order(bare, {"a": np.array(["b", "a"], dtype=object)}) is None


def test_encode_table_refuses_an_order_of_another_length() -> None:
    with pytest.raises(ValueError, match="order has 1 positions for 2 rows"):
        list(encode_table("pegging", {"qty": np.ones(2)}, 10, order=np.array([0])))


def _index_column(name: str) -> str:
    (column,) = (c for c in RESULT_TABLES[name].indexes[0] if c not in BOOKKEEPING_COLUMNS)
    return column


def _rows(name: str, table: Any) -> Counter[str]:
    return Counter(repr(r) for r in to_rows(table, RESULT_OUTPUT_SPECS[name]))


def test_a_plans_stream_holds_every_row_once_each_table_in_its_index_order() -> None:
    result = plan(generate_tables(3000, seed=5), PlanParams(DEFAULT_PLAN_DATE))
    arrays = result.arrays()
    received: dict[str, list[Any]] = {name: [] for name in PLAN_OUTPUT_TABLES}
    for chunk in ResultStream(added=result.tables, ordered=True).chunks(chunk_rows=97):
        received[chunk.table].append(decode_chunk(chunk, RESULT_OUTPUT_SPECS[chunk.table]))
    for name in PLAN_OUTPUT_TABLES:
        spec = RESULT_OUTPUT_SPECS[name]
        got = concat(spec, received[name])
        assert table_length(got) == table_length(arrays[name]), name
        assert _rows(name, got) == _rows(name, arrays[name]), name
        keys = [_key(v) for v in got[_index_column(name)].tolist()]
        assert keys == sorted(keys), name
    assert table_length(arrays["pegging"]) > 1000


def test_unasked_the_rows_come_in_the_engines_order() -> None:
    result = plan(generate_tables(3000, seed=5), PlanParams(DEFAULT_PLAN_DATE))
    chunks = list(ResultStream(added=result.tables).chunks(chunk_rows=97))
    first = next(c for c in chunks if c.table == "pegging")
    got = decode_chunk(first, RESULT_OUTPUT_SPECS["pegging"])
    engine = result.arrays()["pegging"]["demand_ref"][: first.row_count]
    assert got["demand_ref"].tolist() == engine.tolist()
    keys = [_key(v) for v in engine.tolist()]
    assert keys != sorted(keys)  # else this would not tell the two apart


def test_a_big_dictionary_of_which_a_row_uses_few_values() -> None:
    """A difference's rows use a few of the run's refs: those are ranked,
    not the whole dictionary, and they sort as their text."""
    values = np.array([f"R{i:05d}" for i in range(10_000)][::-1], dtype=StringDType())
    codes = np.array([5, 9_999, 17, 5, 4_000, -1, 0])
    order = index_order(PEGGING, {"demand_ref": Coded(codes, values)})
    assert order is not None
    texts = [None if c < 0 else str(values[c]) for c in codes]
    assert order.tolist() == _sorted_positions([(t,) for t in texts])


def _stream_keys(events: Any) -> dict[str, list[tuple[int, Any]]]:
    keys: dict[str, list[tuple[int, Any]]] = {name: [] for name in PLAN_OUTPUT_TABLES}
    for event in events:
        if event.WhichOneof("event") == "result_chunk":
            chunk = event.result_chunk
            table = decode_chunk(chunk, RESULT_OUTPUT_SPECS[chunk.table])
            keys[chunk.table].extend(_key(v) for v in table[_index_column(chunk.table)].tolist())
    return keys


def test_a_run_and_its_results_read_again_over_loopback_come_in_index_order(live: Any) -> None:
    data, t0 = scm()
    with live.client("acme") as c:
        c.upload(MAIN, tables(data))
        request = planning_pb2.RunPlanRequest(
            parent=MAIN, plan_date=t0.isoformat(), run_id="r1", chunk_rows=1, index_order=True
        )
        ran = _stream_keys(c.run_plan_events(request))
        again = c.read_run_results(f"{MAIN}/runs/r1", index_order=True)
    assert len(ran["pegging"]) > 3
    for name, keys in ran.items():
        assert keys == sorted(keys), name
        read = [_key(v) for v in again.tables[name][_index_column(name)].tolist()]
        assert read == keys, name


def test_postgresql_writers_ask_for_index_order_and_the_others_do_not() -> None:
    """Measured: PostgreSQL stores rows in index order in two thirds of the
    time; SQLite and MariaDB in the same time, so they spare the server the sort."""
    urls = {
        "postgresql+psycopg://u@h/db": True,
        "sqlite://": False,
        "mysql+pymysql://u@h/db": False,
    }
    for url, ordered in urls.items():
        assert writes_in_index_order(sa.create_engine(url)) is ordered, url


def test_a_stream_closed_early_sorts_no_more_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tables' orders are sorted out on a thread while the stream runs;
    a client gone after the first chunk leaves the sorts not yet begun undone."""
    from masterplan.server import results_stream

    result = plan(generate_tables(3000, seed=5), PlanParams(DEFAULT_PLAN_DATE))
    sorted_tables: list[str] = []
    release = threading.Event()

    def slow_order(spec: TableSpec, table: Any, ranked: Any = None) -> Any:
        sorted_tables.append(spec.name)
        if spec.name == "pegging":
            assert release.wait(10)
        return index_order(spec, table, ranked)

    monkeypatch.setattr(results_stream, "index_order", slow_order)
    chunks = ResultStream(added=result.tables, ordered=True).chunks(chunk_rows=10)
    assert next(chunks).table == "planned_orders"
    chunks.close()
    release.set()
    deadline = time.monotonic() + 10
    while any(t.name.startswith("result-order") for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the sorting thread outlived its stream"
        time.sleep(0.01)
    assert sorted_tables == ["planned_orders", "pegging"]
