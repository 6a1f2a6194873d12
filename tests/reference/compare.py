"""Comparison of plan results as multisets (examples/README.md): quantities
within a tolerance, dates as ISO strings, plan_messages by severity, code,
item_id and warehouse_id only (their text is free wording)."""

from __future__ import annotations

from typing import Any

Row = dict[str, Any]

QTY_COLUMNS = frozenset({"qty", "receipt_qty", "suggested_qty"})

RESULT_COLUMNS: dict[str, tuple[str, ...]] = {
    "planned_orders": (
        "planned_order_id",
        "item_id",
        "warehouse_id",
        "order_type",
        "qty",
        "order_date",
        "due_date",
        "requirement_date",
        "from_warehouse_id",
        "vendor_id",
        "bom_id",
        "firmed",
    ),
    "pegging": (
        "item_id",
        "warehouse_id",
        "supply_kind",
        "supply_ref",
        "supply_date",
        "demand_kind",
        "demand_ref",
        "demand_date",
        "qty",
    ),
    "action_messages": (
        "supply_kind",
        "supply_ref",
        "item_id",
        "warehouse_id",
        "action",
        "receipt_date",
        "receipt_qty",
        "suggested_date",
        "suggested_qty",
    ),
    "delay_messages": (
        "demand_kind",
        "demand_ref",
        "item_id",
        "warehouse_id",
        "requirement_date",
        "futures_date",
        "delay_days",
    ),
    # plan_messages.text is free wording
    "plan_messages": ("severity", "code", "item_id", "warehouse_id"),
}


def normalise(table: str, row: Row) -> Row:
    """The compared columns of one result row: a column the table lacks reads
    as None, so that a row under another name never matches."""
    return {c: row.get(c) for c in RESULT_COLUMNS[table]}


def same_row(a: Row, b: Row, tol: float) -> bool:
    for col, va in a.items():
        vb = b[col]
        if col in QTY_COLUMNS and va is not None and vb is not None:
            if abs(float(va) - float(vb)) > tol:
                return False
        elif va != vb:
            return False
    return True


def diff_results(
    got: dict[str, list[Row]], want: dict[str, list[Row]], tol: float = 1e-9
) -> list[str]:
    """Human-readable differences between two results, [] when they agree."""
    problems: list[str] = []
    for table in RESULT_COLUMNS:
        g = [normalise(table, r) for r in got.get(table, [])]
        unmatched = [normalise(table, r) for r in want.get(table, [])]
        extra: list[Row] = []
        for row in g:
            for i, cand in enumerate(unmatched):
                if same_row(row, cand, tol):
                    del unmatched[i]
                    break
            else:
                extra.append(row)
        if extra or unmatched:
            lines = [f"{table}:"]
            lines += [f"  unexpected {r}" for r in extra]
            lines += [f"  missing    {r}" for r in unmatched]
            problems.append("\n".join(lines))
    return problems
