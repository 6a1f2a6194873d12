"""The columnar codec: exact round trips, and precise errors for malformed chunks."""

from __future__ import annotations

import numpy as np
import pytest
from masterplan.v1 import columnar_pb2 as pb

from server.codec import CodecError, decode_chunk, encode_table
from server.engine.rows import from_rows
from server.engine.schema import INPUT_TABLES

SPEC = INPUT_TABLES["sales_lines"]
ROWS = [
    {
        "order_id": "S1",
        "line_no": 1,
        "item_id": "A",
        "warehouse_id": "W",
        "qty": 2.5,
        "requested_date": "2024-01-02",
        "priority": None,
    },
    {
        "order_id": "S1",
        "line_no": 2,
        "item_id": "Ä€",
        "warehouse_id": None,
        "qty": None,
        "requested_date": None,
        "priority": 3,
    },
    {
        "order_id": "S2",
        "line_no": 1,
        "item_id": "A",
        "warehouse_id": "W",
        "qty": -1.0,
        "requested_date": "1960-12-31",
        "priority": 0,
    },
]


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    if a.dtype.kind == "f":
        return bool(np.array_equal(a, b, equal_nan=True))
    if a.dtype.kind == "M":
        return bool(np.array_equal(a.astype("i8"), b.astype("i8")))
    return a.tolist() == b.tolist()


def test_round_trip_keeps_values_nulls_and_unicode() -> None:
    table = from_rows(SPEC, ROWS)
    chunks = list(encode_table("sales_lines", table, chunk_rows=2))
    assert [c.row_count for c in chunks] == [2, 1]
    parts = [decode_chunk(c, SPEC) for c in chunks]
    for name in SPEC.column_names:
        assert _same(np.concatenate([p[name] for p in parts]), table[name]), name


def _chunk() -> pb.ColumnarChunk:
    return next(encode_table("sales_lines", from_rows(SPEC, ROWS)))


def test_short_buffer_names_table_and_column() -> None:
    chunk = _chunk()
    chunk.columns[4].data = chunk.columns[4].data[:-1]
    with pytest.raises(CodecError, match=r"sales_lines\.qty") as err:
        decode_chunk(chunk, SPEC)
    assert err.value.column == "qty"


def test_string_code_outside_dictionary_names_the_row() -> None:
    chunk = _chunk()
    codes = np.frombuffer(chunk.columns[2].data, dtype="<i4").copy()
    codes[1] = 99
    chunk.columns[2].data = codes.tobytes()
    with pytest.raises(CodecError, match="row 11") as err:
        decode_chunk(chunk, SPEC, row_offset=10)
    assert (err.value.column, err.value.row) == ("item_id", 11)


def test_missing_unknown_and_mistyped_columns_are_refused() -> None:
    chunk = _chunk()
    del chunk.columns[0]
    with pytest.raises(CodecError, match="'order_id' is missing"):
        decode_chunk(chunk, SPEC)
    chunk = _chunk()
    chunk.columns[0].name = "bogus"
    with pytest.raises(CodecError, match="unknown column 'bogus'"):
        decode_chunk(chunk, SPEC)
    chunk = _chunk()
    chunk.columns[4].type = pb.COLUMN_TYPE_DATE
    with pytest.raises(CodecError, match="expected COLUMN_TYPE_FLOAT64"):
        decode_chunk(chunk, SPEC)


def test_a_column_type_no_enum_knows_is_a_codec_error() -> None:
    # found by the hypothesis fuzz test: the error message itself used to fail
    chunk = _chunk()
    chunk.columns[4].type = 5
    with pytest.raises(CodecError, match="unknown type 5"):
        decode_chunk(chunk, SPEC)
