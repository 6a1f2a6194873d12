"""The columnar codec: exact round trips, and precise errors for malformed chunks."""

from __future__ import annotations

import numpy as np
import pytest

from masterplan.codec import CodecError, decode_chunk, encode_table
from masterplan.contract.rows import from_rows
from masterplan.contract.tables import INPUT_TABLES
from masterplan.v1 import columnar_pb2 as pb

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


@pytest.mark.parametrize("spread", [1, 10, 10_000], ids=["dense", "mixed", "sparse"])
def test_coded_columns_cross_the_wire_as_their_values(spread: int) -> None:
    """Engine output columns that are dictionary-coded decode to exactly the
    strings and NULLs they stand for, chunk by chunk, whether their codes span
    a narrow range (renumbered densely) or a wide one (renumbered by sort)."""
    from masterplan.contract.coded import Coded, as_array
    from masterplan.contract.tables import RESULT_OUTPUT_SPECS

    rng = np.random.default_rng(7)
    spec = RESULT_OUTPUT_SPECS["delay_messages"]
    n = 5_000
    values = np.array([f"ref-{i}-Ä" for i in range(spread * 50)], dtype=np.dtypes.StringDType())
    codes = rng.integers(-1, len(values), n)
    kinds = np.array(["so", None, "fc"], dtype=object)  # a None value is NULL too
    table = {
        "demand_kind": Coded(rng.integers(0, 3, n), kinds),
        "demand_ref": Coded(codes, values),
        "item_id": Coded(np.zeros(n, np.int64), np.array(["I"], dtype=object)),
        "warehouse_id": Coded(np.full(n, -1), np.array(["W"], dtype=object)),
        "requirement_date": np.full(n, np.datetime64("2026-01-05"), dtype="datetime64[D]"),
        "futures_date": np.full(n, np.datetime64("NaT"), dtype="datetime64[D]"),
        "delay_days": rng.random(n),
    }
    decoded = [
        decode_chunk(c, spec, i * 1_000)
        for i, c in enumerate(encode_table("delay_messages", table, 1_000))
    ]
    for name in ("demand_kind", "demand_ref", "item_id", "warehouse_id"):
        got = np.concatenate([d[name] for d in decoded])
        assert got.tolist() == as_array(table[name]).tolist(), name
    assert np.concatenate([d["demand_kind"] for d in decoded]).tolist().count(None) > 0
    chunk = next(encode_table("delay_messages", table, 1_000))
    ref_col = next(c for c in chunk.columns if c.name == "demand_ref")
    # A chunk's dictionary holds only the values its rows use.
    assert len(ref_col.dictionary) == len(set(codes[:1_000][codes[:1_000] >= 0].tolist()))


@pytest.mark.parametrize(
    "values",
    [
        ["P3", "P1", "P2", "Ä€"],  # all distinct: the rows are the dictionary
        ["P3", "P1", "P3", "P2"],  # a repeat
        ["P3", None, "P1", "P2"],  # a NULL among distinct values
        [None, None],
        [],
    ],
)
@pytest.mark.parametrize("dtype", [object, np.dtypes.StringDType(na_object=None)])
def test_text_columns_are_coded_once_per_distinct_value_in_order(
    values: list[str | None], dtype: object
) -> None:
    """A text column crosses as each distinct value once, in the order of its
    first row, and per row that value's position (-1 for NULL), whether its
    values are all distinct (ids, coded without a second pass) or not."""
    table = {"order_id": np.array(values, dtype=dtype)}
    chunks = list(encode_table("sales_lines", table, chunk_rows=10))
    if not values:
        assert chunks == []
        return
    (column,) = chunks[0].columns
    distinct = list(dict.fromkeys(v for v in values if v is not None))
    assert list(column.dictionary) == distinct
    codes = np.frombuffer(column.data, dtype="<i4").tolist()
    assert codes == [-1 if v is None else distinct.index(v) for v in values]
