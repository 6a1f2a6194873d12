"""Source profiles: read the SCM data out of an ERP's own tables (SPEC §4).

Most SCM data lives in an ERP's schema, not in the reference tables of §4. A
source profile maps one: a plain TOML file that gives, for each input table
of §4, one SQL ``SELECT`` over the ERP's tables returning that table's
columns by name, or says that the ERP has no equivalent (``empty = true``).
The reader then reads ``SELECT <the columns> FROM (<query>) AS src`` exactly
as it reads a reference table (:func:`source_from`), so everything after the
read — conversion, validation, planning, delta sync — is the same.

A profile is text an integrator reads and adapts, so the format is small::

    [profile]
    name = "odoo17"
    description = "Odoo 17.0, PostgreSQL"
    dialects = ["postgresql"]      # backends its SQL is written for
    change_margin_minutes = 60     # how far back a read by change column looks

    [parameters]                   # used in queries as :name
    company_id = 1                 # the default; --param company_id=2

    [tables.items]
    query = "SELECT ... AS item_id, ... FROM product_product ..."
    change_column = "changed_at"   # optional: when a row last changed

    [tables.forecasts]
    empty = true
    reason = "Odoo Community has no demand forecast"

Every input table must be named, so that a forgotten table is an error in
the profile rather than silently no data. Parameters are bound by the
driver, never pasted into SQL; a value given on the command line takes the
TOML type of the parameter's default.

The profiles the project ships (the Odoo pack) live in
``masterplan/connector/profiles/`` and are found by name (``--source
odoo17``); anything else is a path.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from masterplan.connector.errors import ConnectorError, SchemaMismatch
from masterplan.connector.schema import name_folders
from masterplan.contract.tables import INPUT_TABLES, ColumnKind, TableSpec

__all__ = [
    "ProfileError",
    "SourceProfile",
    "SourceTypes",
    "TableSource",
    "check_dialect",
    "copy_origin",
    "load_profile",
    "parse_params",
    "parse_profile",
    "probe_source",
    "shipped_profiles",
    "source_from",
    "source_problems",
    "verify_source",
]

#: The package and folder of the shipped profiles.
_PACKAGE, _FOLDER = "masterplan.connector", "profiles"

_PROFILE_KEYS = frozenset({"name", "description", "dialects", "change_margin_minutes"})

#: How far before the last change value seen a read by change column starts,
#: by default (see :attr:`SourceProfile.change_margin_minutes`).
DEFAULT_CHANGE_MARGIN_MINUTES = 60
_TABLE_KEYS = frozenset({"query", "empty", "reason", "change_column"})
_TOP_KEYS = frozenset({"profile", "parameters", "tables"})

#: TOML types a parameter may have, and how a command-line value becomes one.
ParamValue = str | int | float | bool | dt.date


class ProfileError(ConnectorError):
    """A source profile cannot be used: it is unreadable, incomplete, refers to
    a parameter that has no value, or is written for another database."""


@dataclass(frozen=True, slots=True)
class TableSource:
    """Where one input table's rows come from.

    Attributes:
        table: The §4 input table.
        query: The SQL ``SELECT`` returning the table's columns; None when the
            ERP has no equivalent (the table is read as empty).
        reason: Why the table is empty, for the integrator.
        change_column: A column of the query's result that holds when the
            row last changed, or None.
        params: The parameter values the query uses.
    """

    table: str
    query: str | None
    reason: str = ""
    change_column: str | None = None
    params: Mapping[str, ParamValue] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SourceProfile:
    """A loaded source profile, its parameters resolved.

    Attributes:
        name: The profile's name, as messages show it.
        description: What it reads.
        origin: The file it was read from.
        dialects: SQLAlchemy dialect names its SQL is written for; empty for
            any.
        parameters: Every parameter's value (defaults, then overrides).
        tables: Per §4 input table, where its rows come from.
        change_margin_minutes: A read by change column (delta sync) reads
            the rows changed at or after the largest change value it saw
            last time *minus this margin*: a transaction that began before
            that read and committed after it wrote an earlier time than rows
            already seen. At least the longest write transaction of the ERP.
    """

    name: str
    description: str
    origin: str
    dialects: tuple[str, ...]
    parameters: Mapping[str, ParamValue]
    tables: Mapping[str, TableSource]
    change_margin_minutes: int = DEFAULT_CHANGE_MARGIN_MINUTES

    def describe(self) -> str:
        """``name (origin)`` for messages."""
        return f"source profile {self.name!r}"


def shipped_profiles() -> list[str]:
    """Names of the profiles the project ships, sorted."""
    folder = resources.files(_PACKAGE) / _FOLDER
    if not folder.is_dir():
        return []
    return sorted(p.name[: -len(".toml")] for p in folder.iterdir() if p.name.endswith(".toml"))


def load_profile(
    name_or_path: str | Path, params: Mapping[str, str] | None = None
) -> SourceProfile:
    """Load a shipped profile by name, or a profile file by path.

    Args:
        name_or_path: ``odoo17`` (a shipped profile) or a path to a ``.toml``.
        params: Parameter overrides as text (``--param name=value``).

    Raises:
        ProfileError: No such profile, or it is not a usable profile.
    """
    path = Path(name_or_path)
    if path.is_file():
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ProfileError(f"source profile {str(path)!r} cannot be read: {exc}") from exc
        return parse_profile(text, str(path), params)
    name = str(name_or_path)
    if "/" not in name and "\\" not in name and not name.endswith(".toml"):
        shipped = resources.files(_PACKAGE) / _FOLDER / f"{name}.toml"
        if shipped.is_file():
            return parse_profile(shipped.read_text(encoding="utf-8"), f"{name} (shipped)", params)
    raise ProfileError(
        f"source profile {name!r} is neither a file nor a shipped profile "
        f"(shipped: {', '.join(shipped_profiles()) or 'none'})"
    )


def parse_params(pairs: Iterable[str]) -> dict[str, str]:
    """``["company_id=2", ...]`` as a mapping (the CLI's ``--param``).

    Raises:
        ProfileError: An item has no ``=`` or no name.
    """
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise ProfileError(f"--param {pair!r}: expected NAME=VALUE")
        out[name.strip()] = value
    return out


def parse_profile(text: str, origin: str, params: Mapping[str, str] | None = None) -> SourceProfile:
    """Parse a profile's TOML text and resolve its parameters.

    Raises:
        ProfileError: The text is no valid profile; the message names the
            table or key at fault.
    """
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"source profile {origin!r} is not valid TOML: {exc}") from exc
    _unknown(doc, _TOP_KEYS, f"source profile {origin!r}")
    head = _section(doc, "profile", origin)
    _unknown(head, _PROFILE_KEYS, f"source profile {origin!r}, [profile]")
    name = str(head.get("name") or Path(origin.split(" ")[0]).stem)
    where = f"source profile {name!r} ({origin})"
    dialects = head.get("dialects", [])
    if not isinstance(dialects, list) or not all(isinstance(d, str) for d in dialects):
        raise ProfileError(f"{where}: [profile] dialects must be a list of names")
    margin = head.get("change_margin_minutes", DEFAULT_CHANGE_MARGIN_MINUTES)
    if not isinstance(margin, int) or isinstance(margin, bool) or margin < 0:
        raise ProfileError(
            f"{where}: [profile] change_margin_minutes must be a whole number of minutes "
            f"(0 or more), not {margin!r}"
        )
    values = _resolve_params(_section(doc, "parameters", origin), params or {}, where)
    tables_doc = _section(doc, "tables", origin)
    unknown = sorted(set(tables_doc) - set(INPUT_TABLES))
    if unknown:
        raise ProfileError(
            f"{where}: [tables.{unknown[0]}] is no input table of the SCM schema "
            f"(they are: {', '.join(INPUT_TABLES)})"
        )
    missing = [t for t in INPUT_TABLES if t not in tables_doc]
    if missing:
        raise ProfileError(
            f"{where}: no [tables.{missing[0]}]: give a query, or `empty = true` "
            f"with a reason where the ERP has no equivalent (missing: {', '.join(missing)})"
        )
    tables = {
        t: _table_source(t, tables_doc[t], values, f"{where}, [tables.{t}]") for t in INPUT_TABLES
    }
    return SourceProfile(
        name=name,
        description=str(head.get("description", "")),
        origin=origin,
        dialects=tuple(dialects),
        parameters=values,
        tables=tables,
        change_margin_minutes=margin,
    )


def _section(doc: Mapping[str, Any], key: str, origin: str) -> Mapping[str, Any]:
    value = doc.get(key, {})
    if not isinstance(value, dict):
        raise ProfileError(f"source profile {origin!r}: [{key}] must be a table")
    return value


def _unknown(section: Mapping[str, Any], known: frozenset[str], where: str) -> None:
    extra = sorted(set(section) - known)
    if extra:
        raise ProfileError(f"{where}: unknown key {extra[0]!r} (known: {', '.join(sorted(known))})")


def _resolve_params(
    defaults: Mapping[str, Any], given: Mapping[str, str], where: str
) -> dict[str, ParamValue]:
    values: dict[str, ParamValue] = {}
    for name, value in defaults.items():
        if not isinstance(value, str | int | float | bool | dt.date) or isinstance(
            value, dt.datetime
        ):
            raise ProfileError(
                f"{where}: parameter {name!r} must be text, a number, a boolean or a date"
            )
        values[name] = value
    for name, text in given.items():
        if name not in values:
            known = ", ".join(sorted(values)) or "none"
            raise ProfileError(f"{where}: no parameter {name!r} (it has: {known})")
        values[name] = _converted(values[name], text, f"{where}: parameter {name!r}")
    return values


def _converted(default: ParamValue, text: str, where: str) -> ParamValue:
    """``text`` in the type of ``default``."""
    try:
        if isinstance(default, bool):
            lowered = text.strip().lower()
            if lowered in ("true", "1", "yes"):
                return True
            if lowered in ("false", "0", "no"):
                return False
            raise ValueError("expected true or false")
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
        if isinstance(default, dt.date):
            return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise ProfileError(
            f"{where}: cannot read {text!r} as {type(default).__name__} ({exc})"
        ) from None
    return text


def _table_source(
    table: str, doc: Any, values: Mapping[str, ParamValue], where: str
) -> TableSource:
    if not isinstance(doc, dict):
        raise ProfileError(f"{where} must be a table")
    _unknown(doc, _TABLE_KEYS, where)
    query, empty = doc.get("query"), doc.get("empty", False)
    if not isinstance(empty, bool):
        raise ProfileError(f"{where}: empty must be true or false")
    if empty:
        if query is not None:
            raise ProfileError(f"{where}: a table with `empty = true` has no query")
        return TableSource(table, None, reason=str(doc.get("reason", "")))
    if not isinstance(query, str) or not query.strip():
        raise ProfileError(f"{where}: give a query, or `empty = true` with a reason")
    # A trailing semicolon would end the subquery the reader wraps it in.
    query = query.strip().rstrip(";").rstrip()
    change = doc.get("change_column")
    if change is not None and (not isinstance(change, str) or not change):
        raise ProfileError(f"{where}: change_column must name a column of the query")
    used = list(sa.text(query)._bindparams)
    unset = [p for p in used if p not in values]
    if unset:
        raise ProfileError(
            f"{where}: the query uses :{unset[0]}, which is no parameter of the profile "
            "(declare it under [parameters])"
        )
    return TableSource(
        table,
        query,
        reason=str(doc.get("reason", "")),
        change_column=change,
        params={p: values[p] for p in used},
    )


# --- reading through a profile -------------------------------------------------------


def check_dialect(profile: SourceProfile, bind: Engine | Connection) -> None:
    """Refuse a database the profile's SQL is not written for.

    Raises:
        ProfileError: The backend is not one of ``profile.dialects``.
    """
    name = bind.dialect.name
    if (
        profile.dialects
        and name not in profile.dialects
        and not (name in ("mysql", "mariadb") and {"mysql", "mariadb"} & set(profile.dialects))
    ):
        raise ProfileError(
            f"{profile.describe()} is written for {', '.join(profile.dialects)}; "
            f"the database is {name}"
        )


def source_from(profile: SourceProfile, spec: TableSpec) -> sa.FromClause:
    """The rows of one input table as a FROM clause: the profile's query as a
    subquery named like the table, or an empty one where the ERP has none.

    Its columns are the spec's, by name, untyped (the reader converts what the
    driver returns, as it does for a reference table).
    """
    source = profile.tables[spec.name]
    columns: list[sa.ColumnClause[Any]] = [sa.column(name) for name in spec.column_names]
    if source.query is None:
        return (
            sa.select(*(sa.null().label(name) for name in spec.column_names))
            .where(sa.false())
            .subquery(spec.name)
        )
    text = sa.text(source.query).bindparams(**source.params)
    return text.columns(*columns).subquery(spec.name)


#: Coarse kinds of a result column's declared type, where the driver says it.
_NUMBER, _TEXT, _DATE, _DATETIME, _BOOL, _OTHER, _UNKNOWN = (
    "number",
    "text",
    "date",
    "timestamp",
    "boolean",
    "other",
    "unknown",
)

#: What each §4 kind accepts. Integer ids read as text (their decimal form),
#: timestamps as their day, booleans as 0/1.
_ACCEPTS: dict[ColumnKind, frozenset[str]] = {
    ColumnKind.STR: frozenset({_TEXT, _NUMBER, _UNKNOWN}),
    ColumnKind.FLOAT: frozenset({_NUMBER, _BOOL, _UNKNOWN}),
    ColumnKind.INT: frozenset({_NUMBER, _BOOL, _UNKNOWN}),
    ColumnKind.DATE: frozenset({_DATE, _DATETIME, _UNKNOWN}),
}

_PG_KINDS = {
    **dict.fromkeys(("int2", "int4", "int8", "numeric", "float4", "float8", "oid"), _NUMBER),
    **dict.fromkeys(("text", "varchar", "bpchar", "name", "char", "uuid", "unknown"), _TEXT),
    "date": _DATE,
    "timestamp": _DATETIME,
    "timestamptz": _DATETIME,
    "bool": _BOOL,
}

# PyMySQL's FIELD_TYPE codes.
_MYSQL_KINDS = {
    **dict.fromkeys((0, 1, 2, 3, 4, 5, 8, 9, 13, 246), _NUMBER),
    **dict.fromkeys((10, 14), _DATE),
    **dict.fromkeys((7, 12), _DATETIME),
    **dict.fromkeys((15, 249, 250, 251, 252, 253, 254), _TEXT),
    6: _UNKNOWN,
}


def _column_kinds(conn: Connection, description: Any) -> list[tuple[str, str, str]]:
    """Each result column's name, coarse kind and (on PostgreSQL) type name,
    as far as the driver says."""
    out = []
    dialect = conn.dialect.name
    for col in description:
        name, code, type_name = str(col[0]), col[1], ""
        if dialect == "postgresql" and conn.dialect.driver == "psycopg":
            info = conn.connection.driver_connection.adapters.types.get(code)  # type: ignore[union-attr]
            type_name = info.name if info is not None else ""
            kind = _PG_KINDS.get(type_name, _OTHER) if info is not None else _UNKNOWN
        elif dialect in ("mysql", "mariadb") and isinstance(code, int):
            kind = _MYSQL_KINDS.get(code, _OTHER)
        else:  # SQLite and other drivers give no types: the values are checked as read
            kind = _UNKNOWN
        out.append((name, kind, type_name))
    return out


#: PostgreSQL result types as the SQLAlchemy types the ``COPY`` reader judges
#: (:func:`~connector.pgcopy.copy_eligible`); any other type keeps its table
#: on the generic reader.
_PG_COPY_TYPES: dict[str, Any] = {
    "text": sa.Text(),
    "varchar": sa.String(),
    "numeric": sa.Numeric(),
    "float4": sa.Float(),
    "float8": sa.Double(),
    "int2": sa.SmallInteger(),
    "int4": sa.Integer(),
    "int8": sa.BigInteger(),
    "date": sa.Date(),
}


#: Per input table, the result column types of its query by §4 column name
#: (None where they are not all known, or the ERP has no such table).
SourceTypes = dict[str, dict[str, Any] | None]


def source_problems(conn: Connection, profile: SourceProfile) -> list[SchemaMismatch]:
    """Run every query of the profile and report what does not fit §4 (see
    :func:`probe_source`)."""
    return probe_source(conn, profile)[0]


def probe_source(
    conn: Connection, profile: SourceProfile
) -> tuple[list[SchemaMismatch], SourceTypes]:
    """Run every query of the profile (returning no rows) and report what does
    not fit §4: a query that fails, a column that is missing or of a type the
    column cannot be read as. Each problem names the table and column.

    Queries run inside savepoints so that, on PostgreSQL, one failing query
    does not abort the transaction the others run in.

    Returns:
        Every problem found, and per input table its query's column types
        where PostgreSQL named them all (see :func:`verify_source`).
    """
    check_dialect(profile, conn)
    problems: list[SchemaMismatch] = []
    types: SourceTypes = dict.fromkeys(INPUT_TABLES)
    # Result column names compare as the backend compares column names.
    fold = name_folders(conn.dialect.name)[1]
    for name, spec in INPUT_TABLES.items():
        source = profile.tables[name]
        if source.query is None:
            continue
        where = f"{profile.describe()}, table {name!r}"
        probe = sa.text(f"SELECT * FROM ({source.query}) AS src WHERE 1 = 0").bindparams(
            **source.params
        )
        savepoint = conn.begin_nested()
        try:
            result = conn.execute(probe)
            kinds = _column_kinds(conn, result.cursor.description)
            result.close()
        except sa.exc.DBAPIError as exc:
            savepoint.rollback()
            first = (
                str(exc.orig).strip().splitlines()[0]
                if str(exc.orig).strip()
                else type(exc.orig).__name__
            )
            problems.append(SchemaMismatch(name, None, f"{where}: the query fails: {first}"))
            continue
        savepoint.commit()
        have = {fold(n): kind for n, kind, _ in kinds}
        returned = ", ".join(n for n, _, _ in kinds)
        copy_types = {fold(n): _PG_COPY_TYPES.get(t) for n, _, t in kinds}
        found = {c: copy_types.get(fold(c)) for c in spec.column_names}
        if all(t is not None for t in found.values()):
            types[name] = found
        for column in spec.columns:
            kind = have.get(fold(column.name))
            if kind is None:
                problems.append(
                    SchemaMismatch(
                        name,
                        column.name,
                        f"{where}: the query returns no column {column.name!r} "
                        f"(it returns {returned})",
                    )
                )
            elif kind not in _ACCEPTS[column.kind]:
                problems.append(
                    SchemaMismatch(
                        name,
                        column.name,
                        f"{where}: column {column.name!r} is {kind}, "
                        f"expected {_EXPECTED[column.kind]}",
                    )
                )
        change = source.change_column
        if change is not None and have.get(fold(change)) not in (_DATETIME, _DATE, _UNKNOWN):
            problems.append(
                SchemaMismatch(
                    name,
                    change,
                    f"{where}: change_column {change!r} is "
                    f"{have.get(fold(change)) or 'not returned by the query'}, "
                    "expected a timestamp",
                )
            )
    return problems, types


_EXPECTED = {
    ColumnKind.STR: "text (or an integer id)",
    ColumnKind.FLOAT: "a number",
    ColumnKind.INT: "an integer",
    ColumnKind.DATE: "a date",
}


def verify_source(conn: Connection, profile: SourceProfile) -> SourceTypes:
    """Fail on the first problem :func:`source_problems` finds.

    Returns:
        Per input table, its query's column types where PostgreSQL named them
        all (the reader reads those tables with ``COPY`` where it can).

    Raises:
        ProfileError: The profile is not written for this database.
        SchemaMismatch: A query fails, or a column is missing or of a wrong type.
    """
    problems, types = probe_source(conn, profile)
    if problems:
        raise problems[0]
    return types


def copy_origin(conn: Connection, source: TableSource) -> tuple[str, dict[str, Any] | None]:
    """A profile query as the FROM of a ``COPY (SELECT …)`` statement on
    psycopg, and its parameters.

    ``COPY`` takes no server-side parameters; psycopg binds them on the
    client, in its ``%(name)s`` style, in which a literal ``%`` is doubled.
    A query without parameters is sent as written (psycopg then reads no
    placeholders, and a doubled ``%`` would stay doubled).
    """
    assert source.query is not None
    if not source.params:
        return f"({source.query}) AS src", None
    compiled = sa.text(source.query).bindparams(**source.params).compile(dialect=conn.dialect)
    return f"({compiled}) AS src", dict(compiled.params)
