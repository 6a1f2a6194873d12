"""The reference SCM schema (SPEC §4) as SQLAlchemy Core tables.

The tables are derived from :mod:`masterplan.contract.tables`, the single source of
truth of names, so that the engine, the codec and the database cannot
disagree. The same ``MetaData`` works on SQLite, PostgreSQL and MariaDB.

Nullability: input columns are nullable except primary keys, because §4 lets
an integrator's database hold NULL in any column (§5.2 gives the defaults).
Result columns are ``NOT NULL`` unless §4 marks them ``?``: the connector
writes them, and the database should refuse a broken result.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Connection, Engine

from masterplan.connector.errors import SchemaMismatch
from masterplan.contract.tables import (
    INPUT_TABLES,
    PLAN_OUTPUT_TABLES,
    RESULT_TABLES,
    ColumnKind,
    ColumnSpec,
    TableSpec,
)

__all__ = [
    "ALL_TABLES",
    "METADATA",
    "SORT_THREADS",
    "SchemaMismatch",
    "create_all",
    "make_indexes",
    "migrate_results",
    "name_folders",
    "old_layout_tables",
    "present_tables",
    "sql_table",
    "table_spec",
    "verify_schema",
]

#: Length of id columns. 255 keeps composite keys under MariaDB's 3072-byte
#: index limit in utf8mb4 (4 bytes per character).
ID_LENGTH = 255
#: Length of columns that embed ids (refs such as ``PL:{item}/{wh}/{n}/{line}``).
REF_LENGTH = 1024
#: Planned-order ids are ``{item}/{warehouse}/{n}``: two ids, two slashes
#: and up to 20 digits (2,128 bytes in utf8mb4, still within a key).
PLANNED_ORDER_ID_LENGTH = 2 * ID_LENGTH + 2 + 20

#: Every §4 table spec by name, inputs first.
ALL_TABLES: dict[str, TableSpec] = {**INPUT_TABLES, **RESULT_TABLES}

METADATA = sa.MetaData()


def _sql_type(column: ColumnSpec) -> sa.types.TypeEngine[Any]:
    """Pick the SQL type of a §4 column.

    Quantities are ``Double`` rather than ``Float``: on MariaDB a bare
    ``FLOAT`` is single precision and would lose digits.
    """
    if column.kind is ColumnKind.STR:
        if column.name == "text":
            return sa.Text()
        if column.name.endswith("_ref"):
            return sa.String(REF_LENGTH)
        if column.name == "planned_order_id":
            return sa.String(PLANNED_ORDER_ID_LENGTH)
        return sa.String(ID_LENGTH)
    if column.kind is ColumnKind.INT:
        return sa.Integer()
    if column.kind is ColumnKind.DATE:
        return sa.Date()
    return sa.Double()


def _build_table(spec: TableSpec, *, result: bool) -> sa.Table:
    items: list[sa.schema.SchemaItem] = [
        sa.Column(
            c.name,
            _sql_type(c),
            primary_key=c.name in spec.primary_key,
            nullable=c.name not in spec.primary_key and (c.nullable or not result),
            autoincrement=False,
        )
        for c in spec.columns
    ]
    if spec.unique_key:
        items.append(sa.UniqueConstraint(*spec.unique_key, name=_name("uq", spec, spec.unique_key)))
    items.extend(_index(spec, cols) for cols in spec.indexes)
    # MariaDB: a transactional engine (the writer relies on rollback), a
    # character set that holds any id, and a binary collation, so that ids
    # compare as the engine compares them (``a`` is not ``A``), whatever the
    # server's defaults are.
    return sa.Table(
        spec.name,
        METADATA,
        *items,
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )


def _text_length(column: ColumnSpec) -> int:
    """Characters a text column holds (0 for other kinds and unbounded text)."""
    sql_type = _sql_type(column)
    return (sql_type.length or 0) if isinstance(sql_type, sa.String) else 0


def _index(spec: TableSpec, columns: tuple[str, ...], table: sa.Table | None = None) -> sa.Index:
    """An index (on ``table``'s columns when given); on MariaDB, long text
    columns are indexed by a prefix.

    InnoDB keys hold at most 3072 bytes, and a ref column holds 1024
    characters of up to 4 bytes: its first 255 characters tell refs apart.
    """
    long = {
        c.name: ID_LENGTH for c in spec.columns if c.name in columns and _text_length(c) > ID_LENGTH
    }
    exprs = [table.c[c] for c in columns] if table is not None else columns
    return sa.Index(_name("ix", spec, columns), *exprs, mysql_length=long or None)


def _name(prefix: str, spec: TableSpec, columns: Iterable[str]) -> str:
    return "_".join((prefix, spec.name, *columns))


for _spec in INPUT_TABLES.values():
    _build_table(_spec, result=False)
for _spec in RESULT_TABLES.values():
    _build_table(_spec, result=True)
del _spec


def table_spec(name: str) -> TableSpec:
    """Return the §4 spec of table ``name`` (input or result).

    Raises:
        KeyError: ``name`` is no §4 table.
    """
    try:
        return ALL_TABLES[name]
    except KeyError:
        raise KeyError(f"{name!r} is not a table of the SCM schema") from None


def sql_table(name: str) -> sa.Table:
    """Return the SQLAlchemy table of §4 table ``name``."""
    table_spec(name)
    return METADATA.tables[name]


def create_engine(url: str) -> Engine:
    """The SQLAlchemy engine the connector uses for an SCM database URL.

    On MariaDB/MySQL, connections never ask for ``LOAD DATA LOCAL INFILE``
    unless the URL does (``?local_infile=1``, which SQLAlchemy hands to
    PyMySQL): the capability lets the server read any file the client
    process can read, and a server with ``local_infile`` off (MySQL 8's
    default) refuses it anyway. Without it the writer sends multi-row
    INSERTs; with it the writer loads files, and falls back to INSERTs when
    the server refuses (see :mod:`connector.writer`).
    """
    return sa.create_engine(sa.engine.make_url(url))


def create_all(engine: Engine) -> list[str]:
    """Create every §4 table (inputs and results) with their keys and indexes.

    This is ``masterplan scm init``. Existing tables are left as they are
    (``checkfirst``), so running it twice is harmless and never drops data;
    result tables in the layout of masterplan 0.1 are migrated first
    (:func:`migrate_results`).

    Returns:
        What the migration did, one line per step (empty when nothing).
    """
    steps = migrate_results(engine)
    _create_missing(engine, list(METADATA.tables.values()))
    return steps


def _create_missing(engine: Engine | Connection, tables: list[sa.Table]) -> None:
    """Create those of ``tables`` the database lacks; leave the others be.

    On MariaDB and MySQL the tables are declared ``utf8mb4_bin`` (ids compare
    as plain strings, SPEC §5), which still pads: ``e`` and ``e `` would be
    one key. New tables get the server's binary collation without padding
    where it has one (MariaDB's ``utf8mb4_nopad_bin``, MySQL 8's
    ``utf8mb4_0900_bin``); tables that exist keep theirs.
    """
    existing = set(sa.inspect(engine).get_table_names())
    METADATA.create_all(engine, tables=tables, checkfirst=True)
    collation = _nopad_collation(engine)
    if collation is None:
        return
    made = [t.name for t in tables if t.name not in existing]
    with _begin(engine) as conn:
        for name in made:
            conn.exec_driver_sql(
                f"ALTER TABLE `{name}` CONVERT TO CHARACTER SET utf8mb4 COLLATE {collation}"
            )


def _nopad_collation(engine: Engine | Connection) -> str | None:
    """The binary, non-padding utf8mb4 collation of a MariaDB or MySQL server."""
    dialect = engine.dialect
    if dialect.name not in ("mysql", "mariadb"):
        return None
    if getattr(dialect, "is_mariadb", False):
        return "utf8mb4_nopad_bin"
    version = getattr(dialect, "server_version_info", None) or ()
    return "utf8mb4_0900_bin" if tuple(version[:1]) >= (8,) else None


@contextlib.contextmanager
def _begin(engine: Engine | Connection) -> Iterator[Connection]:
    """A transaction on an engine, or the connection's own (DDL commits on MariaDB)."""
    if isinstance(engine, Connection):
        yield engine
    else:
        with engine.begin() as conn:
            yield conn


#: The columns the current-plan layout of the result tables added (SPEC §4):
#: a database that lacks them was written by masterplan 0.1, which kept
#: every run's rows apart by ``run_id``.
_LAYOUT_COLUMNS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(PLAN_OUTPUT_TABLES, ("plan_id",)),
    "plan_runs": ("base_run_id", "rows_added", "rows_removed"),
}

OLD_LAYOUT_HINT = (
    "`masterplan scm init --db URL` migrates it: each plan keeps the rows of "
    "its current run, the rows of older runs are deleted, plan_runs keeps its history"
)


def present_tables(engine: Engine | Connection, names: Iterable[str]) -> list[str]:
    """Those of ``names`` that the database has, matched as the backend
    matches a table's name (:func:`name_folders`): on PostgreSQL a table
    ``"Plans"`` is not ``plans``."""
    inspector = sa.inspect(engine)
    fold_table, _ = name_folders(inspector.dialect.name)
    existing = {fold_table(t) for t in inspector.get_table_names()}
    return [name for name in names if fold_table(name) in existing]


def old_layout_tables(engine: Engine | Connection) -> list[str]:
    """Result tables that exist in the layout of masterplan 0.1 (no ``plan_id``)."""
    inspector = sa.inspect(engine)
    fold_table, fold_column = name_folders(inspector.dialect.name)
    existing = {fold_table(t): t for t in inspector.get_table_names()}
    old = []
    for name, added in _LAYOUT_COLUMNS.items():
        actual = existing.get(fold_table(name))
        if actual is None:
            continue
        have = {fold_column(c["name"]) for c in inspector.get_columns(actual)}
        if any(fold_column(c) not in have for c in added):
            old.append(name)
    return old


def migrate_results(engine: Engine) -> list[str]:
    """Bring result tables of masterplan 0.1 to the current-plan layout (SPEC §4).

    0.1 kept the rows of every run, told apart by ``run_id``, until pruned;
    now the result tables hold each plan's current plan, its rows told apart
    by ``plan_id``. For each output table: add ``plan_id`` (nullable here,
    since not every backend can tighten a column in place; the writer always
    fills it), fill it from ``plan_runs``, delete the rows of runs that are
    no plan's current run, add the new index; ``plan_runs`` gains
    ``base_run_id``, ``rows_added`` and ``rows_removed`` (NULL for the runs
    before). Each step checks first, so a migration broken off (MariaDB
    commits every DDL statement) is finished by running it again.

    Returns:
        One line per step taken.
    """
    old = old_layout_tables(engine)
    if not old:
        return []
    steps: list[str] = []
    with engine.begin() as conn:
        quote = conn.dialect.identifier_preparer.quote
        inspector = sa.inspect(conn)
        for name in old:
            have = {c["name"].lower() for c in inspector.get_columns(name)}
            spec = RESULT_TABLES[name]
            for column in _LAYOUT_COLUMNS[name]:
                if column in have:
                    continue
                sql_type = _sql_type(spec.column(column)).compile(dialect=conn.dialect)
                conn.exec_driver_sql(
                    f"ALTER TABLE {quote(name)} ADD COLUMN {quote(column)} {sql_type} NULL"
                )
                steps.append(f"{name}: added column {column}")
            if name in PLAN_OUTPUT_TABLES:
                steps.extend(_migrate_rows(conn, name))
    return steps


def _migrate_rows(conn: Connection, name: str) -> list[str]:
    """Keep the current plan's rows of one output table, with their ``plan_id``."""
    table = sa.table(name, sa.column("plan_id"), sa.column("run_id"))
    runs = sa.table("plan_runs", sa.column("run_id"), sa.column("plan_id"))
    plans = sa.table("plans", sa.column("current_run_id"))
    current = sa.select(plans.c.current_run_id).where(plans.c.current_run_id.is_not(None))
    deleted = conn.execute(
        sa.delete(table).where(table.c.run_id.not_in(current.scalar_subquery()))
    ).rowcount
    conn.execute(
        sa.update(table)
        .where(table.c.plan_id.is_(None))
        .values(
            plan_id=sa.select(runs.c.plan_id)
            .where(runs.c.run_id == table.c.run_id)
            .scalar_subquery()
        )
    )
    steps = [f"{name}: deleted {deleted} rows of runs that are no plan's current run"]
    spec = RESULT_TABLES[name]
    columns = spec.indexes[0]
    existing = {i["name"] for i in sa.inspect(conn).get_indexes(name)}
    if _name("ix", spec, columns) not in existing:
        # The index on a stand-in of the table that holds just its columns.
        stand_in = sa.Table(
            name, sa.MetaData(), *(sa.Column(c, _sql_type(spec.column(c))) for c in columns)
        )
        index = _index(spec, columns, stand_in)
        index.create(conn)
        steps.append(f"{name}: created index {index.name}")
    return steps


def create_result_tables(engine: Engine | Connection) -> None:
    """Create the result tables that are missing (never an input table).

    The connector owns the result tables, so a run may create them; a missing
    *input* table must fail the run instead (SPEC §4).
    """
    from masterplan.contract.tables import RESULT_TABLES

    _create_missing(engine, [METADATA.tables[n] for n in RESULT_TABLES])


def verify_schema(
    engine: Engine | Connection,
    tables: Iterable[str] | Mapping[str, TableSpec] = INPUT_TABLES,
) -> dict[str, dict[str, Any]]:
    """Check that the database has every table and column the connector uses.

    Tables and views count alike. Only names are checked, not types: integrators create these tables
    themselves, with ``NUMERIC`` or ``FLOAT`` quantities, and the reader
    converts whatever the driver returns. A run must fail naming what is
    missing (SPEC §4) rather than with a driver's SQL error.

    Args:
        engine: Engine or connection to the SCM database.
        tables: Names of the tables to check, in the order to check them
            (a mapping such as ``RESULT_TABLES`` is iterated for its keys).
            Defaults to every input table.

    Returns:
        Per table, the database's type of each of its columns (SQLAlchemy
        type objects as reflected), by canonical column name: the reader
        picks its fastest exact path by them.

    Raises:
        SchemaMismatch: The first missing table, or the first missing column
            in canonical order of the first table that lacks one.
        KeyError: A name is no §4 table.
    """
    specs = [table_spec(name) for name in tables]
    inspector = sa.inspect(engine)
    fold_table, fold_column = name_folders(inspector.dialect.name)
    # A view is read exactly as a table is (SPEC §4): an integrator may map
    # the ERP's own tables onto these names with views.
    names = [*inspector.get_table_names(), *inspector.get_view_names()]
    existing = {fold_table(t): t for t in names}
    types: dict[str, dict[str, Any]] = {}
    for spec in specs:
        actual = existing.get(fold_table(spec.name))
        if actual is None:
            raise SchemaMismatch(
                spec.name,
                None,
                f"table {spec.name!r} is missing from the SCM database "
                "(`masterplan scm init` creates every table; a view of that name "
                "does as well, and `--source PROFILE` reads through an ERP's own tables)",
            )
        have = {fold_column(c["name"]): c["type"] for c in inspector.get_columns(actual)}
        for column in spec.column_names:
            if fold_column(column) not in have:
                raise SchemaMismatch(
                    spec.name,
                    column,
                    f"table {spec.name!r} has no column {column!r}",
                )
        types[spec.name] = {column: have[fold_column(column)] for column in spec.column_names}
    return types


def name_folders(dialect_name: str) -> tuple[Callable[[str], str], Callable[[str], str]]:
    """Return how to compare table names and column names on this backend.

    SQLite matches table and column names case-insensitively and MariaDB
    column names (its table names follow the file system, case-sensitive on
    Linux), so ``ITEM_ID`` answers to ``item_id`` there. PostgreSQL folds
    unquoted names to lower case at creation, so a mixed-case name there
    really is another name.
    """
    if dialect_name == "sqlite":
        return str.lower, str.lower
    if dialect_name in ("mysql", "mariadb"):
        return _identity, str.lower
    return _identity, _identity


def _identity(name: str) -> str:
    return name


#: SQLite's quoting of an identifier, as its dialect writes every other.
_SQLITE_QUOTE = sqlite.dialect().identifier_preparer.quote

#: Runs one SQL statement with its parameters (``?`` on SQLite, ``%s`` on
#: PostgreSQL) on a connection; the rows it returns (none for a statement
#: that returns none).
Statement = Callable[[str, tuple[Any, ...]], list[tuple[Any, ...]]]


def drop_plain_indexes(run: Statement, quoted_table: str, dialect: str = "sqlite") -> list[str]:
    """Drop table ``quoted_table``'s plain indexes (``CREATE INDEX``, not
    unique, not made for a constraint); the statements that make them again
    after a load, as the database keeps them.

    ``run`` executes a statement, so that the writer's SQLAlchemy connection
    and the benchmark's plain driver cursor drop the same indexes the same
    way. ``dialect``: ``sqlite`` or ``postgresql``.
    """
    if dialect == "postgresql":
        return _drop_postgres_plain_indexes(run, quoted_table)
    # Listed whole first: an index is not dropped while a statement reads its table.
    listed = run(f"PRAGMA index_list({quoted_table})", ())
    statements = []
    for _, name, unique, origin, *_ in listed:
        if unique or origin != "c":
            continue
        rows = run("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?", (name,))
        if rows and rows[0][0]:
            run(f"DROP INDEX {_SQLITE_QUOTE(name)}", ())
            statements.append(rows[0][0])
    return statements


#: Helper threads SQLite's sorter may take to make an index again after a
#: load (``PRAGMA threads``; SQLite caps them at its build's limit, 8 by
#: default).
SORT_THREADS = os.cpu_count() or 1


def make_indexes(
    run: Statement, statements: Iterable[str], dialect: str = "sqlite", threads: int | None = None
) -> None:
    """Run ``statements`` (what :func:`drop_plain_indexes` returned), which
    make a loaded table's indexes again.

    On SQLite the connection's sorter may use ``threads`` helper threads
    (:data:`SORT_THREADS` unless given; 0: none) while it does (its setting
    put back after): each index is one
    sort of the table's keys, and SQLite sorts on one core unless told
    otherwise. The 1.25M result rows of 100k SKUs had their indexes made in
    0.79-0.80 s with two threads, 1.04-1.10 s without
    (``docs/performance.md``). The setting is the connection's alone and
    changes nothing that is stored.
    """
    statements = list(statements)
    if not statements:
        return
    if dialect != "sqlite":
        for statement in statements:
            run(statement, ())
        return
    (before,) = run("PRAGMA threads", ())[0]
    run(f"PRAGMA threads = {int(SORT_THREADS if threads is None else threads)}", ())
    try:
        for statement in statements:
            run(statement, ())
    finally:
        run(f"PRAGMA threads = {int(before)}", ())


#: A PostgreSQL table's indexes that :func:`drop_plain_indexes` may drop and
#: make again from ``pg_get_indexdef`` alone: not unique (a unique key
#: refuses a duplicate as it is inserted), not a constraint's, valid, and
#: holding nothing that definition leaves out (a tablespace, a comment, the
#: ``CLUSTER`` mark). Only the table's owner may drop them.
_POSTGRES_PLAIN_INDEXES = """
SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
FROM pg_index i
JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_class x ON x.oid = i.indexrelid
WHERE i.indrelid = to_regclass(%s) AND t.relkind = 'r'
  AND pg_has_role(t.relowner, 'USAGE')
  AND NOT i.indisunique AND NOT i.indisexclusion AND NOT i.indisclustered
  AND i.indisvalid AND i.indisready AND x.reltablespace = 0
  AND obj_description(i.indexrelid, 'pg_class') IS NULL
  AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
ORDER BY 1
"""


def _drop_postgres_plain_indexes(run: Statement, quoted_table: str) -> list[str]:
    statements = []
    for name, definition in run(_POSTGRES_PLAIN_INDEXES, (quoted_table,)):
        run(f"DROP INDEX {name}", ())
        statements.append(definition)
    return statements
