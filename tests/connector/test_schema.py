"""Tests of connector.schema: ``scm init`` tables and schema verification."""

from __future__ import annotations

import pickle
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from masterplan.connector.errors import SchemaMismatch
from masterplan.connector.schema import (
    METADATA,
    create_all,
    create_result_tables,
    sql_table,
    verify_schema,
)
from masterplan.contract.tables import INPUT_TABLES, RESULT_TABLES

CreatePlain = Callable[..., None]


def test_metadata_mirrors_the_engine_schema() -> None:
    assert set(METADATA.tables) == set(INPUT_TABLES) | set(RESULT_TABLES)
    for name, spec in {**INPUT_TABLES, **RESULT_TABLES}.items():
        table = METADATA.tables[name]
        assert [c.name for c in table.columns] == list(spec.column_names)
        assert tuple(c.name for c in table.primary_key.columns) == spec.primary_key


def test_result_columns_are_not_null_unless_marked() -> None:
    for name, spec in RESULT_TABLES.items():
        for column in spec.columns:
            assert sql_table(name).c[column.name].nullable == column.nullable, (name, column)


def test_create_all_is_idempotent_and_passes_verification(engine: Engine) -> None:
    create_all(engine)
    create_all(engine)
    assert set(sa.inspect(engine).get_table_names()) >= set(METADATA.tables)
    verify_schema(engine, INPUT_TABLES)
    verify_schema(engine, RESULT_TABLES)


def test_create_all_keeps_existing_rows(engine: Engine) -> None:
    create_all(engine)
    with engine.begin() as conn:
        conn.execute(sql_table("items").insert(), [{"item_id": "A", "lead_time_days": 3}])
    create_all(engine)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sql_table("items").c.item_id)).scalars().all() == ["A"]


def test_create_all_creates_keys_and_indexes(engine: Engine) -> None:
    create_all(engine)
    inspector = sa.inspect(engine)
    for name, spec in {**INPUT_TABLES, **RESULT_TABLES}.items():
        pk = inspector.get_pk_constraint(name)["constrained_columns"]
        assert tuple(pk) == spec.primary_key, name
        unique = {
            tuple(map(str, u["column_names"])) for u in inspector.get_unique_constraints(name)
        }
        # MariaDB reports a unique key as a unique index as well.
        unique |= {
            tuple(map(str, i["column_names"])) for i in inspector.get_indexes(name) if i["unique"]
        }
        if spec.unique_key:
            assert spec.unique_key in unique, name
        indexed = {tuple(map(str, i["column_names"])) for i in inspector.get_indexes(name)}
        for columns in spec.indexes:
            assert columns in indexed, (name, columns)


def test_unique_key_is_enforced(engine: Engine) -> None:
    create_all(engine)
    row = {"order_id": "S1", "line_no": 1, "item_id": "A", "warehouse_id": "W", "qty": 1.0}
    with engine.begin() as conn:
        conn.execute(sql_table("sales_lines").insert(), [row])
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(sql_table("sales_lines").insert(), [row])


def test_ids_compare_as_plain_strings_in_the_result_tables_a_run_creates(engine: Engine) -> None:
    """The result tables a run creates (``create_result_tables``) too."""
    create_result_tables(engine)
    table = sql_table("plans")
    with engine.begin() as conn:
        conn.execute(table.insert(), [{"plan_id": "p"}, {"plan_id": "p "}, {"plan_id": "P"}])
    with engine.connect() as conn:
        found = conn.execute(sa.select(table.c.plan_id).where(table.c.plan_id == "p"))
        assert found.scalars().all() == ["p"]


def test_ids_compare_as_plain_strings(engine: Engine) -> None:
    """SPEC §5: ids compare as plain strings. MariaDB's default collation is
    case- and accent-insensitive: ``W`` and ``w`` would be one key there and
    ``WHERE warehouse_id = 'w'`` would find ``W``; its binary collation
    pads, so ``e`` and ``e `` would still be one key."""
    create_all(engine)
    ids = ["W", "w", "e", "é", "E", "e ", " e"]
    table = sql_table("warehouses")
    with engine.begin() as conn:
        conn.execute(table.insert(), [{"warehouse_id": i, "site_id": "S"} for i in ids])
    with engine.connect() as conn:
        for i in ids:
            found = conn.execute(sa.select(table.c.warehouse_id).where(table.c.warehouse_id == i))
            assert found.scalars().all() == [i], i


def test_quantities_keep_double_precision(engine: Engine) -> None:
    # A bare FLOAT on MariaDB is single precision; quantities must round-trip.
    create_all(engine)
    qty = 0.1 + 1e-12
    with engine.begin() as conn:
        conn.execute(
            sql_table("on_hand").insert(), [{"item_id": "A", "warehouse_id": "W", "qty": qty}]
        )
    with engine.connect() as conn:
        assert conn.execute(sa.select(sql_table("on_hand").c.qty)).scalar_one() == qty


def test_verify_accepts_plain_sql_tables(engine: Engine, create_plain_tables: CreatePlain) -> None:
    create_plain_tables()
    verify_schema(engine)


def test_missing_input_table_is_named(engine: Engine, create_plain_tables: CreatePlain) -> None:
    create_plain_tables(skip_tables=["forecasts"])
    with pytest.raises(SchemaMismatch) as info:
        verify_schema(engine)
    assert (info.value.table, info.value.column) == ("forecasts", None)
    assert "'forecasts'" in str(info.value)


def test_missing_input_column_is_named(engine: Engine, create_plain_tables: CreatePlain) -> None:
    create_plain_tables(without={"sales_lines": ["priority"]})
    with pytest.raises(SchemaMismatch) as info:
        verify_schema(engine)
    assert (info.value.table, info.value.column) == ("sales_lines", "priority")
    assert "'sales_lines'" in str(info.value) and "'priority'" in str(info.value)


def test_first_missing_thing_is_reported_in_canonical_order(
    engine: Engine, create_plain_tables: CreatePlain
) -> None:
    create_plain_tables(
        skip_tables=["forecasts"], without={"items": ["multiple_qty", "lead_time_days"]}
    )
    with pytest.raises(SchemaMismatch) as info:
        verify_schema(engine)
    assert (info.value.table, info.value.column) == ("items", "lead_time_days")


def test_result_tables_are_verified_separately(
    engine: Engine, create_plain_tables: CreatePlain
) -> None:
    create_plain_tables()
    verify_schema(engine, INPUT_TABLES)
    with pytest.raises(SchemaMismatch) as info:
        verify_schema(engine, RESULT_TABLES)
    assert (info.value.table, info.value.column) == ("plans", None)

    create_plain_tables(list(RESULT_TABLES), without={"delay_messages": ["delay_days"]})
    with pytest.raises(SchemaMismatch) as info:
        verify_schema(engine, RESULT_TABLES)
    assert (info.value.table, info.value.column) == ("delay_messages", "delay_days")


def test_verify_subset_of_tables(engine: Engine, create_plain_tables: CreatePlain) -> None:
    create_plain_tables(["items", "warehouses"])
    verify_schema(engine, ["items", "warehouses"])
    with pytest.raises(KeyError, match="not a table"):
        verify_schema(engine, ["nonsense"])


def test_schema_mismatch_pickles() -> None:
    error = pickle.loads(pickle.dumps(SchemaMismatch("items", "item_id", "msg")))
    assert (error.table, error.column, error.message) == ("items", "item_id", "msg")


def test_column_names_match_case_insensitively_on_sqlite(tmp_path: object) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path}/case.db")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE Items (ITEM_ID TEXT)")
    with pytest.raises(SchemaMismatch) as info:
        verify_schema(engine, ["items"])
    assert info.value.column == "default_order_type"
    engine.dispose()
