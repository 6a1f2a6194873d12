"""A realistic sample SCM database for ``masterplan demo``: a small manufacturer.

Two warehouses: the plant ``PLANT`` makes finished goods from sub-assemblies
and purchased parts (three BOM levels), the distribution centre ``DC`` is
refilled from the plant by transfer. Sales orders and weekly forecasts sit on
finished goods in both warehouses; on-hand on a third of the SKUs; open
purchase orders on parts, some early, some late, some more than needed, so
that the plan shows pegging, delays and action messages. Seeded: the same
database every time.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import sqlalchemy as sa

from masterplan.connector.schema import create_all, sql_table

__all__ = ["build_demo_database"]


def build_demo_database(url: str, plan_date: dt.date, seed: int = 7) -> dict[str, int]:
    """Create the §4 tables at ``url`` and fill them; returns rows per table."""
    rng = random.Random(seed)
    rows: dict[str, list[dict[str, Any]]] = {}

    def add(table: str, **row: Any) -> None:
        rows.setdefault(table, []).append(row)

    add("warehouses", warehouse_id="PLANT", site_id="S1", calendar_id=None)
    add("warehouses", warehouse_id="DC", site_id="S1", calendar_id=None)
    add(
        "coverage_groups",
        group_id="MTO",
        coverage_code="requirement",
        coverage_period_days=1,
        coverage_time_fence_days=120,
        freeze_time_fence_days=2,
        firming_time_fence_days=5,
        negative_days=3,
        positive_days=None,
        use_working_days=0,
        safety_stock_fulfillment="today",
        forecast_reduction="transactions_period",
        include_forecast=1,
        postpone_tolerance_days=3,
    )
    n_fg, n_sub, n_part = 12, 10, 24
    fgs = [f"FG-{i:03d}" for i in range(1, n_fg + 1)]
    subs = [f"SA-{i:03d}" for i in range(1, n_sub + 1)]
    parts = [f"RM-{i:03d}" for i in range(1, n_part + 1)]
    vendors = ["V-ACME", "V-BOLT", "V-CAST"]
    for item in fgs:
        add(
            "items",
            item_id=item,
            default_order_type="production",
            coverage_group_id="MTO",
            lead_time_days=rng.randint(2, 5),
            min_order_qty=0,
            max_order_qty=0,
            multiple_qty=rng.choice([0, 5, 10]),
            default_vendor_id=None,
        )
        add(
            "item_coverage",
            item_id=item,
            warehouse_id="DC",
            order_type="transfer",
            lead_time_days=2,
            refill_warehouse_id="PLANT",
            safety_stock_qty=rng.choice([0, 5]),
        )
    for item in subs:
        add(
            "items",
            item_id=item,
            default_order_type="production",
            coverage_group_id="MTO",
            lead_time_days=rng.randint(3, 7),
            min_order_qty=rng.choice([0, 20]),
            max_order_qty=0,
            multiple_qty=0,
            default_vendor_id=None,
        )
    for item in parts:
        add(
            "items",
            item_id=item,
            default_order_type="purchase",
            coverage_group_id="MTO",
            lead_time_days=rng.randint(5, 21),
            min_order_qty=rng.choice([0, 50, 100]),
            max_order_qty=rng.choice([0, 0, 500]),
            multiple_qty=rng.choice([0, 10, 25]),
            default_vendor_id=rng.choice(vendors),
        )
    for item in fgs + subs:
        bom_id = f"BOM-{item}"
        add(
            "boms",
            bom_id=bom_id,
            item_id=item,
            warehouse_id=None,
            valid_from=None,
            valid_to=None,
            batch_qty=1,
        )
        pool = subs + parts if item in fgs else parts
        for line, comp in enumerate(rng.sample(pool, rng.randint(2, 4)), start=1):
            add(
                "bom_lines",
                bom_id=bom_id,
                line_no=line * 10,
                component_item_id=comp,
                qty_per=rng.choice([1, 1, 2, 3, 4]),
                scrap_pct=rng.choice([0, 0, 2, 5]),
                scrap_const=0,
                warehouse_id=None,
            )
    for item in fgs + subs + parts:
        if rng.random() < 1 / 3:
            add("on_hand", item_id=item, warehouse_id="PLANT", qty=rng.randint(5, 200))
    order = 1000
    for _ in range(60):
        order += 1
        item = rng.choice(fgs)
        add(
            "sales_lines",
            order_id=f"SO-{order}",
            line_no=1,
            item_id=item,
            warehouse_id=rng.choice(["PLANT", "DC"]),
            qty=rng.randint(1, 40),
            requested_date=plan_date + dt.timedelta(days=rng.randint(-3, 60)),
            priority=rng.choice([0, 0, 1]),
        )
    for item in fgs[:6]:
        for week in range(1, 9):
            add(
                "forecasts",
                item_id=item,
                warehouse_id="DC",
                forecast_date=plan_date + dt.timedelta(weeks=week),
                qty=rng.randint(10, 30),
            )
    po = 5000
    for item in rng.sample(parts, 14):
        po += 1
        add(
            "purchase_lines",
            order_id=f"PO-{po}",
            line_no=1,
            item_id=item,
            warehouse_id="PLANT",
            qty=rng.choice([50, 100, 200, 400]),
            delivery_date=plan_date + dt.timedelta(days=rng.randint(-2, 45)),
            vendor_id=None,
        )

    engine = sa.create_engine(url)
    try:
        create_all(engine)
        with engine.begin() as conn:
            for table, data in rows.items():
                t = sql_table(table)
                conn.execute(t.delete())
                conn.execute(t.insert(), [{c.name: r.get(c.name) for c in t.columns} for r in data])
    finally:
        engine.dispose()
    return {table: len(data) for table, data in rows.items()}
