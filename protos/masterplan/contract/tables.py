"""The tables of the reference SCM schema (SPEC §4) as plain data.

This module is the single source of truth for table and column names: the
engine validates its input against it, the connector builds its SQLAlchemy
tables from it and the codec checks wire chunks against it. It imports the
standard library only, so that the engine stays a pure library.

In memory a table is a ``dict`` of column name to a 1-D numpy array, all of
one length (struct of arrays):

* ``STR`` columns are ``object`` arrays of ``str``, ``None`` for NULL, or
  numpy ``StringDType`` arrays where a column holds no NULL (the engine's
  generated refs and ids: no conversion to Python objects on the hot path);
* ``FLOAT`` and ``INT`` columns are ``float64`` arrays, ``NaN`` for NULL
  (``INT`` only changes the SQL type and how a number prints);
* ``DATE`` columns are ``datetime64[D]`` arrays, ``NaT`` for NULL.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "BOOKKEEPING_COLUMNS",
    "INPUT_TABLES",
    "PLAN_OUTPUT_TABLES",
    "RESULT_TABLES",
    "ColumnKind",
    "ColumnSpec",
    "TableSpec",
]


class ColumnKind(StrEnum):
    """Logical type of a column; decides the SQL type and the numpy dtype."""

    STR = "str"
    FLOAT = "float"
    INT = "int"
    DATE = "date"


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    """One column of a §4 table.

    Attributes:
        name: Column name, part of the public interface.
        kind: Logical type.
        nullable: Whether §4 marks the column ``?``. Non-nullable columns may
            still hold NULL in an integrator's database; §5.2 gives defaults.
    """

    name: str
    kind: ColumnKind
    nullable: bool = False


@dataclass(frozen=True, slots=True)
class TableSpec:
    """One §4 table: its columns, primary key and the other keys that hold.

    Attributes:
        name: Table name, part of the public interface.
        columns: Columns in their canonical order.
        primary_key: Primary-key columns (empty when the table has none).
        unique_key: Columns of the key §4 says holds besides the primary key;
            the engine reports rows sharing it as ``DUPLICATE_KEY``.
        indexes: Extra indexes ``scm init`` creates, for readers and writers.
    """

    name: str
    columns: tuple[ColumnSpec, ...]
    primary_key: tuple[str, ...] = ()
    unique_key: tuple[str, ...] = ()
    indexes: tuple[tuple[str, ...], ...] = ()

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def key(self) -> tuple[str, ...]:
        """The key whose duplicates are reported (primary or unique key)."""
        return self.primary_key or self.unique_key

    def column(self, name: str) -> ColumnSpec:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"table {self.name!r} has no column {name!r}")


S, F, D = ColumnKind.STR, ColumnKind.FLOAT, ColumnKind.DATE
I = ColumnKind.INT  # noqa: E741 - reads like the column table of SPEC §4


def _c(name: str, kind: ColumnKind, nullable: bool = False) -> ColumnSpec:
    return ColumnSpec(name, kind, nullable)


def _tables(*specs: TableSpec) -> dict[str, TableSpec]:
    return {t.name: t for t in specs}


INPUT_TABLES: dict[str, TableSpec] = _tables(
    # Setup and master data
    TableSpec(
        "warehouses",
        (_c("warehouse_id", S), _c("site_id", S), _c("calendar_id", S, True)),
        primary_key=("warehouse_id",),
    ),
    TableSpec(
        "calendars",
        (_c("calendar_id", S), _c("working_weekdays", S)),
        primary_key=("calendar_id",),
    ),
    TableSpec(
        "calendar_exceptions",
        (_c("calendar_id", S), _c("day", D), _c("is_working", I)),
        unique_key=("calendar_id", "day"),
    ),
    TableSpec(
        "coverage_groups",
        (
            _c("group_id", S),
            _c("coverage_code", S),
            _c("coverage_period_days", I),
            _c("coverage_time_fence_days", I),
            _c("freeze_time_fence_days", I),
            _c("firming_time_fence_days", I),
            _c("negative_days", I),
            _c("positive_days", I, True),
            _c("use_working_days", I),
            _c("safety_stock_fulfillment", S),
            _c("forecast_reduction", S),
            _c("include_forecast", I),
            _c("postpone_tolerance_days", I),
        ),
        primary_key=("group_id",),
    ),
    TableSpec(
        "items",
        (
            _c("item_id", S),
            _c("default_order_type", S),
            _c("coverage_group_id", S, True),
            _c("lead_time_days", I),
            _c("min_order_qty", F),
            _c("max_order_qty", F),
            _c("multiple_qty", F),
            _c("default_vendor_id", S, True),
        ),
        primary_key=("item_id",),
    ),
    TableSpec(
        "item_coverage",
        (
            _c("item_id", S),
            _c("warehouse_id", S),
            _c("coverage_group_id", S, True),
            _c("min_qty", F, True),
            _c("max_qty", F, True),
            _c("safety_stock_qty", F, True),
            _c("order_type", S, True),
            _c("lead_time_days", I, True),
            _c("refill_warehouse_id", S, True),
            _c("vendor_id", S, True),
            _c("min_order_qty", F, True),
            _c("max_order_qty", F, True),
            _c("multiple_qty", F, True),
        ),
        unique_key=("item_id", "warehouse_id"),
    ),
    TableSpec(
        "boms",
        (
            _c("bom_id", S),
            _c("item_id", S),
            _c("warehouse_id", S, True),
            _c("valid_from", D, True),
            _c("valid_to", D, True),
            _c("batch_qty", F),
        ),
        primary_key=("bom_id",),
        indexes=(("item_id",),),
    ),
    TableSpec(
        "bom_lines",
        (
            _c("bom_id", S),
            _c("line_no", I),
            _c("component_item_id", S),
            _c("qty_per", F),
            _c("scrap_pct", F),
            _c("scrap_const", F),
            _c("warehouse_id", S, True),
        ),
        unique_key=("bom_id", "line_no"),
    ),
    # Transactions
    TableSpec(
        "on_hand",
        (_c("item_id", S), _c("warehouse_id", S), _c("qty", F)),
        indexes=(("item_id", "warehouse_id"),),
    ),
    TableSpec(
        "sales_lines",
        (
            _c("order_id", S),
            _c("line_no", I),
            _c("item_id", S),
            _c("warehouse_id", S),
            _c("qty", F),
            _c("requested_date", D),
            _c("priority", I),
        ),
        unique_key=("order_id", "line_no"),
    ),
    TableSpec(
        "purchase_lines",
        (
            _c("order_id", S),
            _c("line_no", I),
            _c("item_id", S),
            _c("warehouse_id", S),
            _c("qty", F),
            _c("delivery_date", D),
            _c("vendor_id", S, True),
        ),
        unique_key=("order_id", "line_no"),
    ),
    TableSpec(
        "production_orders",
        (
            _c("order_id", S),
            _c("item_id", S),
            _c("warehouse_id", S),
            _c("qty", F),
            _c("start_date", D),
            _c("end_date", D),
        ),
        primary_key=("order_id",),
    ),
    TableSpec(
        "production_lines",
        (
            _c("order_id", S),
            _c("line_no", I),
            _c("component_item_id", S),
            _c("warehouse_id", S),
            _c("qty", F),
            _c("required_date", D),
        ),
        unique_key=("order_id", "line_no"),
    ),
    TableSpec(
        "transfer_lines",
        (
            _c("order_id", S),
            _c("line_no", I),
            _c("item_id", S),
            _c("from_warehouse_id", S),
            _c("to_warehouse_id", S),
            _c("qty", F),
            _c("ship_date", D),
            _c("receive_date", D),
        ),
        unique_key=("order_id", "line_no"),
    ),
    TableSpec(
        "forecasts",
        (_c("item_id", S), _c("warehouse_id", S), _c("forecast_date", D), _c("qty", F)),
        indexes=(("item_id", "warehouse_id"),),
    ),
    TableSpec(
        "firmed_planned_orders",
        (
            _c("planned_order_id", S),
            _c("item_id", S),
            _c("warehouse_id", S),
            _c("order_type", S),
            _c("qty", F),
            _c("order_date", D),
            _c("due_date", D),
            _c("from_warehouse_id", S, True),
        ),
        primary_key=("planned_order_id",),
    ),
)

# The plan's output tables have one index each: the plan and the ref (or id)
# that readers look a row up by, which the difference write uses too to find
# the rows it deletes. Nothing reads them by ``run_id``, and every index is
# paid for by every row a run writes (a third of a large write on SQLite and
# PostgreSQL), so there is none on it.
RESULT_TABLES: dict[str, TableSpec] = _tables(
    TableSpec(
        "plans",
        (_c("plan_id", S), _c("current_run_id", S, True)),
        primary_key=("plan_id",),
    ),
    TableSpec(
        "plan_runs",
        (
            _c("run_id", S),
            _c("plan_id", S),
            _c("mode", S),
            _c("plan_date", D),
            _c("status", S),
            _c("started_at", S),
            _c("finished_at", S),
            _c("planned_order_count", I),
            _c("pegging_count", I),
            _c("action_message_count", I),
            _c("delay_message_count", I),
            _c("plan_message_count", I),
            _c("base_run_id", S, True),
            _c("rows_added", I),
            _c("rows_removed", I),
        ),
        primary_key=("run_id",),
        indexes=(("plan_id",),),
    ),
    TableSpec(
        "planned_orders",
        (
            _c("plan_id", S),
            _c("run_id", S),
            _c("planned_order_id", S),
            _c("item_id", S),
            _c("warehouse_id", S),
            _c("order_type", S),
            _c("qty", F),
            _c("order_date", D),
            _c("due_date", D),
            _c("requirement_date", D),
            _c("from_warehouse_id", S, True),
            _c("vendor_id", S, True),
            _c("bom_id", S, True),
            _c("firmed", I),
        ),
        indexes=(("plan_id", "planned_order_id"),),
    ),
    TableSpec(
        "pegging",
        (
            _c("plan_id", S),
            _c("run_id", S),
            _c("item_id", S),
            _c("warehouse_id", S),
            _c("supply_kind", S),
            _c("supply_ref", S),
            _c("supply_date", D),
            _c("demand_kind", S),
            _c("demand_ref", S),
            _c("demand_date", D),
            _c("qty", F),
        ),
        indexes=(("plan_id", "demand_ref"),),
    ),
    TableSpec(
        "action_messages",
        (
            _c("plan_id", S),
            _c("run_id", S),
            _c("supply_kind", S),
            _c("supply_ref", S),
            _c("item_id", S),
            _c("warehouse_id", S),
            _c("action", S),
            _c("receipt_date", D),
            _c("receipt_qty", F),
            _c("suggested_date", D, True),
            _c("suggested_qty", F, True),
        ),
        indexes=(("plan_id", "supply_ref"),),
    ),
    TableSpec(
        "delay_messages",
        (
            _c("plan_id", S),
            _c("run_id", S),
            _c("demand_kind", S),
            _c("demand_ref", S),
            _c("item_id", S),
            _c("warehouse_id", S),
            _c("requirement_date", D),
            _c("futures_date", D, True),
            _c("delay_days", I, True),
        ),
        indexes=(("plan_id", "demand_ref"),),
    ),
    TableSpec(
        "plan_messages",
        (
            _c("plan_id", S),
            _c("run_id", S),
            _c("severity", S),
            _c("code", S),
            _c("item_id", S, True),
            _c("warehouse_id", S, True),
            _c("text", S),
        ),
        indexes=(("plan_id", "code"),),
    ),
)

#: Result tables that hold the rows of each plan's current plan (all but
#: ``plans`` and ``plan_runs``). Their first index is ``plan_id`` and a
#: column that is never NULL and tells rows apart well: the writer finds a
#: removed row through it.
PLAN_OUTPUT_TABLES: tuple[str, ...] = (
    "planned_orders",
    "pegging",
    "action_messages",
    "delay_messages",
    "plan_messages",
)


#: Columns of a result row that say where it is kept, not what it says: the
#: writer adds them; the engine and the wire never carry them.
BOOKKEEPING_COLUMNS: tuple[str, ...] = ("plan_id", "run_id")


def _without_bookkeeping(spec: TableSpec) -> TableSpec:
    return TableSpec(spec.name, tuple(c for c in spec.columns if c.name not in BOOKKEEPING_COLUMNS))


#: The plan output tables as the engine produces them and the wire carries
#: them: the result tables' columns without ``plan_id`` and ``run_id``.
RESULT_OUTPUT_SPECS: dict[str, TableSpec] = {
    name: _without_bookkeeping(RESULT_TABLES[name]) for name in PLAN_OUTPUT_TABLES
}
