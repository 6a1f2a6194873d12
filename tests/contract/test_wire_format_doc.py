"""docs/wire-format.md stays true: its tables, example and claims against the code.

A client written in another language from that page alone must get every
column's wire type and nullability right, so the page's per-table column
lists are compared with ``masterplan.contract.tables`` and with what the
codec really puts on the wire, and each behaviour the page states is
exercised here.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import numpy as np
import pytest

from masterplan.codec import DEFAULT_CHUNK_ROWS, CodecError, decode_chunk, encode_table
from masterplan.contract.rows import from_rows, to_rows
from masterplan.contract.tables import (
    INPUT_TABLES,
    PLAN_OUTPUT_TABLES,
    RESULT_OUTPUT_SPECS,
    RESULT_TABLES,
    ColumnKind,
    TableSpec,
)
from masterplan.server.config import ServerConfig
from masterplan.server.errors import InvalidArgument
from masterplan.server.servicers.planning import MAX_CHUNK_ROWS
from masterplan.server.uploads import assemble
from masterplan.tenancy.quotas import GiB, Quotas
from masterplan.v1 import columnar_pb2 as pb

DOC = Path(__file__).parents[2] / "docs" / "wire-format.md"
TEXT = DOC.read_text(encoding="utf-8")

#: The page's words for the column kinds.
KIND_WORDS = {
    ColumnKind.STR: "text",
    ColumnKind.FLOAT: "number",
    ColumnKind.INT: "whole number",
    ColumnKind.DATE: "date",
}
ROW = re.compile(r"^\| `(\w+)` \| (\w+) \| ([\w ]+?) \| (yes|no) \|.*\|$")


def _section(title: str) -> str:
    """The text under ``## title`` up to the next ``## `` heading."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", TEXT, re.M | re.S)
    assert match, f"docs/wire-format.md has no section {title!r}"
    return match.group(1)


def _documented(title: str) -> dict[str, list[tuple[str, str, str, bool]]]:
    """``{table: [(column, wire type, kind, nullable), ...]}`` of one section."""
    tables: dict[str, list[tuple[str, str, str, bool]]] = {}
    current: list[tuple[str, str, str, bool]] | None = None
    for line in _section(title).splitlines():
        heading = re.fullmatch(r"### `(\w+)`", line)
        if heading:
            current = tables.setdefault(heading.group(1), [])
        elif current is not None and (row := ROW.match(line)):
            name, wire, kind, nullable = row.groups()
            current.append((name, wire, kind, nullable == "yes"))
    return tables


def _wire_types(name: str, spec: TableSpec) -> dict[str, str]:
    """Each column's type as the codec really encodes it (one all-NULL row)."""
    (chunk,) = encode_table(name, from_rows(spec, [{}]))
    prefix = "COLUMN_TYPE_"
    return {c.name: pb.ColumnType.Name(c.type).removeprefix(prefix) for c in chunk.columns}


def _expected(specs: dict[str, TableSpec]) -> dict[str, list[tuple[str, str, str, bool]]]:
    out = {}
    for name, spec in specs.items():
        wire = _wire_types(name, spec)
        out[name] = [(c.name, wire[c.name], KIND_WORDS[c.kind], c.nullable) for c in spec.columns]
    return out


# -- the per-table column lists ------------------------------------------------------
@pytest.mark.parametrize(
    ("title", "specs"),
    [("Input tables", INPUT_TABLES), ("Result tables", RESULT_OUTPUT_SPECS)],
    ids=["input", "result"],
)
def test_every_table_and_column_is_documented_with_its_wire_type_and_nullability(
    title: str, specs: dict[str, TableSpec]
) -> None:
    documented = _documented(title)
    expected = _expected(specs)
    assert list(documented) == list(expected), "tables missing, extra or out of order"
    for name in expected:
        assert documented[name] == expected[name], f"docs/wire-format.md, table {name}"


def test_the_result_tables_that_never_cross_the_wire_are_named() -> None:
    assert set(RESULT_TABLES) - set(PLAN_OUTPUT_TABLES) == {"plans", "plan_runs"}
    results = _section("Results of a run")
    assert "`plans`" in results and "`plan_runs`" in results
    order = ", ".join(f"`{name}`" for name in PLAN_OUTPUT_TABLES)
    assert order in " ".join(results.split()), "the stream's table order"


# -- the example chunk ------------------------------------------------------------------
def _block(tag: str) -> str:
    match = re.search(rf"^```{re.escape(tag)}\n(.*?)^```$", TEXT, re.M | re.S)
    assert match, f"docs/wire-format.md has no ```{tag} block"
    return match.group(1)


def _example_chunk() -> pb.ColumnarChunk:
    lines = _block("text wire-example-chunk").splitlines()
    table = lines[0].removeprefix("table ").strip()
    columns = []
    for line in lines[1:]:
        m = re.fullmatch(r"(\w+)\s+(\w+)\s+(?:dictionary (\[.*?\])\s+)?data ([0-9a-f ]+)", line)
        assert m, line
        name, wire, dictionary, data = m.groups()
        columns.append(
            pb.Column(
                name=name,
                type=pb.ColumnType.Value(f"COLUMN_TYPE_{wire}"),
                data=bytes.fromhex(data),
                dictionary=json.loads(dictionary) if dictionary else [],
            )
        )
    rows = len(json.loads(_block("json wire-example-rows")))
    return pb.ColumnarChunk(table=table, row_count=rows, columns=columns)


def test_the_example_chunk_decodes_to_the_example_rows_and_is_what_the_codec_sends() -> None:
    rows = json.loads(_block("json wire-example-rows"))
    chunk = _example_chunk()
    spec = INPUT_TABLES[chunk.table]
    decoded = to_rows(decode_chunk(chunk, spec), spec)
    as_json = [
        {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in row.items()}
        for row in decoded
    ]
    assert as_json == rows
    (encoded,) = encode_table(chunk.table, from_rows(spec, rows))
    assert encoded == chunk


# -- the encodings and refusals the page states ----------------------------------------
def _warehouses(*columns: pb.Column, rows: int = 1) -> pb.ColumnarChunk:
    return pb.ColumnarChunk(table="warehouses", row_count=rows, columns=list(columns))


def _string(name: str, codes: list[int], dictionary: list[str]) -> pb.Column:
    return pb.Column(
        name=name,
        type=pb.COLUMN_TYPE_STRING,
        data=np.array(codes, "<i4").tobytes(),
        dictionary=dictionary,
    )


WH = _string("warehouse_id", [0], ["W1"])
SITE = _string("site_id", [0], ["S"])
CALENDAR = _string("calendar_id", [-1], [])


def test_strings_null_is_minus_one_and_dictionaries_may_repeat_or_waste() -> None:
    table = decode_chunk(_warehouses(CALENDAR, SITE, WH), INPUT_TABLES["warehouses"])
    assert to_rows(table) == [{"warehouse_id": "W1", "site_id": "S", "calendar_id": None}]
    chunk = _warehouses(
        _string("warehouse_id", [0, 1, 2], ["W1", "W2", "W3"]),
        _string("site_id", [1, 1, 0], ["S", "S", "unused"]),  # repeated, one unused
        _string("calendar_id", [-1, -1, -1], []),
        rows=3,
    )
    rows = to_rows(decode_chunk(chunk, INPUT_TABLES["warehouses"]))
    assert [r["site_id"] for r in rows] == ["S", "S", "S"]


def test_a_dictionary_holds_at_most_one_string_per_row() -> None:
    chunk = _warehouses(WH, CALENDAR, _string("site_id", [0], ["S", "unused"]))
    with pytest.raises(CodecError, match="a dictionary of 2 strings for 1 rows"):
        decode_chunk(chunk, INPUT_TABLES["warehouses"])


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ((WH, SITE), "'calendar_id' is missing"),  # nullable, still required
        ((WH, CALENDAR), "'site_id' is missing"),
        ((WH, SITE, CALENDAR, _string("extra", [0], ["x"])), "unknown column 'extra'"),
        ((WH, SITE, CALENDAR, SITE), "'site_id' sent twice"),
        (
            (WH, CALENDAR, pb.Column(name="site_id", type=pb.COLUMN_TYPE_FLOAT64, data=bytes(8))),
            "type COLUMN_TYPE_FLOAT64, expected COLUMN_TYPE_STRING",
        ),
        ((WH, SITE, _string("calendar_id", [1], ["C"])), "string code 1 outside"),
        ((WH, SITE, _string("calendar_id", [-2], [])), "string code -2 outside"),
        ((WH, SITE, _string("calendar_id", [-1, -1], [])), "8 bytes for 1 rows of 4 bytes"),
    ],
    ids=[
        "missing-nullable",
        "missing",
        "unknown",
        "twice",
        "type",
        "code-past",
        "code-below",
        "length",
    ],
)
def test_refused_chunks(columns: tuple[pb.Column, ...], message: str) -> None:
    with pytest.raises(CodecError, match=re.escape(message)):
        decode_chunk(_warehouses(*columns), INPUT_TABLES["warehouses"])


def test_numbers_nan_is_null_infinity_refused_dates_int32_min_is_null() -> None:
    spec = INPUT_TABLES["forecasts"]
    columns = [
        _string("item_id", [0, 0], ["I"]),
        _string("warehouse_id", [0, 0], ["W"]),
        pb.Column(
            name="forecast_date",
            type=pb.COLUMN_TYPE_DATE,
            data=np.array([20463, np.iinfo(np.int32).min], "<i4").tobytes(),
        ),
        pb.Column(
            name="qty", type=pb.COLUMN_TYPE_FLOAT64, data=np.array([2.5, np.nan], "<f8").tobytes()
        ),
    ]
    chunk = pb.ColumnarChunk(table="forecasts", row_count=2, columns=columns)
    rows = to_rows(decode_chunk(chunk, spec), spec)
    assert [(r["forecast_date"], r["qty"]) for r in rows] == [
        (dt.date(2026, 1, 10), 2.5),
        (None, None),
    ]
    chunk.columns[3].data = np.array([2.5, np.inf], "<f8").tobytes()
    with pytest.raises(CodecError, match="row 1 is not a finite number"):
        decode_chunk(chunk, spec)


def test_a_snapshot_with_tables_left_out_zero_row_chunks_and_split_tables() -> None:
    empty = _warehouses(
        _string("warehouse_id", [], []),
        _string("site_id", [], []),
        _string("calendar_id", [], []),
        rows=0,
    )
    tables = assemble(
        [empty, _warehouses(WH, SITE, CALENDAR), _warehouses(WH, SITE, CALENDAR)], 10, 10**6
    )
    assert set(tables) == set(INPUT_TABLES)  # every table, those not sent empty
    assert len(tables["warehouses"]["warehouse_id"]) == 2
    assert len(tables["items"]["item_id"]) == 0
    with pytest.raises(InvalidArgument, match="unknown table"):
        assemble([pb.ColumnarChunk(table="nope")], 10, 10**6)
    delete = _warehouses(WH, SITE, CALENDAR)
    delete.change = pb.CHANGE_KIND_DELETE
    with pytest.raises(InvalidArgument, match="cannot delete"):
        assemble([delete], 10, 10**6)


def test_the_limits_the_page_states_are_the_defaults() -> None:
    limits = _section("Limits")
    config, quotas = ServerConfig(), Quotas()
    assert f"{config.max_message_bytes:,} bytes" in limits
    assert f"{quotas.max_rows:,}" in limits
    assert f"{quotas.max_upload_bytes // GiB} GiB" in limits
    assert f"{quotas.max_memory_bytes // GiB} GiB" in limits
    assert f"{config.result_chunk_rows:,} by default, at most {MAX_CHUNK_ROWS:,}" in limits
    assert f"{DEFAULT_CHUNK_ROWS:,} is a good size" in limits
