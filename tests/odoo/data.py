"""A small furniture manufacturer in Odoo's tables, and the same business
written by hand as reference-schema rows (SPEC §4).

The company ("Atelier Bois", company 1) makes dining tables in two variants
(oak, walnut: one template-wide BoM whose top line depends on the variant)
and chairs, from legs, tops and seats it makes itself, from boards, glue,
screws, foam and fabric it buys. It has two warehouses (WH in Brussels, WH2
in Antwerp) and works Monday to Friday, closed on Christmas and over the year
end. Another company (2) shares the database; none of its rows may be read.

:func:`write_odoo` writes the Odoo rows (tables of
:mod:`tests.odoo.schema`); :data:`EXPECTED` is what a planner expects the
profile to read from them: each row written out with the reason it is there,
not computed from the Odoo rows. Rows that must *not* be read (cancelled and
draft quotations, delivered lines, consumables, archived records, other
company, transit stock, ...) are in the Odoo data with a comment saying why.

Odoo stores datetimes in UTC; the company's users are in Europe/Brussels
(UTC+1 in December), which is the ``timezone`` the profile is run with
(:data:`PARAMS`): a sales order dated 2026-12-06 23:30 UTC is a sale of
2026-12-07.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

__all__ = ["EXPECTED", "PARAMS", "PLAN_DATE", "write_odoo"]

PLAN_DATE = dt.date(2026, 12, 7)
PARAMS = {"timezone": "Europe/Brussels"}

_LOGGED = dt.datetime(2026, 12, 1, 12, 0)  # create_date / write_date of every row

Row = dict[str, Any]


def _ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def _tr(name: str) -> str:
    """A translatable name as Odoo 16+ stores it (jsonb, per language)."""
    return json.dumps({"en_US": name})


# --- the Odoo side ---------------------------------------------------------------------

# Units of measure: uom.uom.factor is "reference units per this unit" inverted,
# as Odoo stores it (a dozen: 1/12; a gram: 1000 per kg).
UNITS, DOZENS, KG, GRAMS = 1, 2, 3, 4

# Locations
WH_STOCK, WH_SHELF, WH2_STOCK, OTH_STOCK = 11, 12, 21, 31
VENDORS, CUSTOMERS, PRODUCTION, TRANSIT = 40, 41, 42, 44

# Picking types
WH_IN, WH_OUT, WH_MANU, WH_INT, WH2_IN, WH2_OUT, WH2_MANU, OTH_IN = 1, 2, 3, 4, 5, 6, 7, 8

# Products (product.product id = product.template id, except the table's variants)
TABLE_TMPL, TABLE_OAK, TABLE_WALNUT = 100, 101, 102
CHAIR, LEG, OAK_TOP, WALNUT_TOP, SEAT = 200, 210, 220, 221, 230
BEECH, OAK, WALNUT, GLUE, SCREW, FOAM, FABRIC = 310, 311, 312, 330, 340, 350, 351
SERVICE, CLOTH, OLD_STOOL, OTHER_CO_PRODUCT = 600, 601, 602, 603


def _templates() -> list[Row]:
    """(id, name, kind, uom, purchase uom, company, active, mrp lead times).

    ``kind``: 'storable', 'consu' or 'service'; written per version by
    :func:`_template_row`. Lead times: (produce_delay, days_to_prepare_mo), which
    16.0 keeps on the product and 17.0+ on the BoM.
    """
    rows = [
        (TABLE_TMPL, "Dining table", "storable", UNITS, UNITS, None, True),
        (CHAIR, "Chair", "storable", UNITS, UNITS, None, True),
        (LEG, "Table leg", "storable", UNITS, UNITS, None, True),
        (OAK_TOP, "Oak table top", "storable", UNITS, UNITS, None, True),
        (WALNUT_TOP, "Walnut table top", "storable", UNITS, UNITS, None, True),
        (SEAT, "Upholstered seat", "storable", UNITS, UNITS, 1, True),
        (BEECH, "Beech board", "storable", UNITS, UNITS, None, True),
        (OAK, "Oak board", "storable", UNITS, UNITS, None, True),
        (WALNUT, "Walnut board", "storable", UNITS, UNITS, None, True),
        (GLUE, "Wood glue", "storable", KG, KG, None, True),
        # bought by the dozen, stocked by the unit
        (SCREW, "Wood screw", "storable", UNITS, DOZENS, None, True),
        (FOAM, "Foam pad", "storable", UNITS, UNITS, None, True),
        (FABRIC, "Upholstery fabric", "storable", UNITS, UNITS, None, True),
        # not planned: a service, a consumable, an archived product, another company's
        (SERVICE, "Assembly at the customer's", "service", UNITS, UNITS, None, True),
        (CLOTH, "Cleaning cloth", "consu", UNITS, UNITS, None, True),
        (OLD_STOOL, "Old stool", "storable", UNITS, UNITS, None, False),
        (OTHER_CO_PRODUCT, "Other company's lamp", "storable", UNITS, UNITS, 2, True),
    ]
    return [
        {
            "id": i,
            "name": n,
            "kind": k,
            "uom_id": u,
            "uom_po_id": po,
            "company_id": c,
            "active": a,
        }
        for i, n, k, u, po, c, a in rows
    ]


# (produce_delay, days_to_prepare_mo) of the made products: on the template in
# 16.0, on the (first) BoM in 17.0 and 18.0
_LEAD = {TABLE_TMPL: (3, 1), CHAIR: (2, 0), LEG: (1, 0), OAK_TOP: (2, 0), WALNUT_TOP: (2, 0)}
_LEAD[SEAT] = (1, 0)


def _template_row(t: Row, version: int) -> Row:
    row = {k: v for k, v in t.items() if k != "kind"}
    row.update(
        name=_tr(t["name"]),
        categ_id=1,
        tracking="none",
        sale_ok=True,
        purchase_ok=True,
        list_price=10,
        sequence=1,
        default_code=f"P{t['id']}",
    )
    kind = t["kind"]
    if version <= 17:
        odoo_type = "product" if kind == "storable" else kind
        row.update(detailed_type=odoo_type, type=odoo_type)
    else:
        row.update(type="service" if kind == "service" else "consu", is_storable=kind == "storable")
    if version == 16:
        produce, prepare = _LEAD.get(t["id"], (0, 0))
        row.update(produce_delay=float(produce), days_to_prepare_mo=float(prepare))
    return row


def _products() -> list[Row]:
    variants = [{"id": TABLE_OAK, "tmpl": TABLE_TMPL}, {"id": TABLE_WALNUT, "tmpl": TABLE_TMPL}]
    singles = [{"id": t["id"], "tmpl": t["id"]} for t in _templates() if t["id"] != TABLE_TMPL]
    return [
        {
            "id": p["id"],
            "product_tmpl_id": p["tmpl"],
            "default_code": f"P{p['id']}",
            # archived with its template
            "active": p["id"] != OLD_STOOL,
        }
        for p in variants + singles
    ]


def _boms(version: int) -> tuple[list[Row], list[Row], list[Row]]:
    """mrp.bom, mrp.bom.line and the line/attribute-value relation."""

    def bom(i: int, tmpl: int, qty: float = 1, first: bool = True, **kw: Any) -> Row:
        row = {
            "id": i,
            "product_tmpl_id": tmpl,
            "product_id": None,
            "product_qty": qty,
            "product_uom_id": UNITS,
            "type": "normal",
            "active": True,
            "sequence": 0,
            "company_id": 1,
            "picking_type_id": None,
            "ready_to_produce": "all_available",
            "consumption": "warning",
            "code": None,
        }
        row.update(kw)
        if version >= 17:
            # a BoM that is not the product's first has other lead times, never read
            produce, prepare = _LEAD.get(tmpl, (0, 0)) if first else (9, 9)
            row.update(produce_delay=produce, days_to_prepare_mo=prepare)
        return row

    boms = [
        # template-wide: one BoM per variant
        bom(1, TABLE_TMPL),
        bom(2, CHAIR),
        # made by batches of 10
        bom(3, LEG, 10),
        bom(4, OAK_TOP),
        bom(5, WALNUT_TOP),
        # restricted to WH's manufacturing operation type: WH's BoM
        bom(6, SEAT, picking_type_id=WH_MANU),
        # not read: a later alternative (sequence 10), an archived BoM before it,
        # a kit, another company's
        bom(7, WALNUT_TOP, sequence=10, code="ALT", first=False),
        bom(8, WALNUT_TOP, sequence=-1, active=False, first=False),
        bom(9, CHAIR, sequence=5, type="phantom", first=False),
        bom(10, OTHER_CO_PRODUCT, company_id=2),
    ]

    def line(i: int, bom_id: int, product: int, qty: float, uom: int = UNITS) -> Row:
        return {
            "id": i,
            "bom_id": bom_id,
            "product_id": product,
            "product_qty": qty,
            "product_uom_id": uom,
            "sequence": i,
        }

    lines = [
        line(11, 1, LEG, 4),
        line(12, 1, OAK_TOP, 1),  # oak variant only
        line(13, 1, WALNUT_TOP, 1),  # walnut variant only
        line(14, 1, GLUE, 250, GRAMS),  # 0.25 kg
        line(15, 1, SCREW, 2, DOZENS),  # 24 screws
        line(16, 1, CLOTH, 1),  # a consumable: not planned
        line(21, 2, SEAT, 1),
        line(22, 2, LEG, 4),
        line(23, 2, SCREW, 8),
        line(31, 3, BEECH, 3),
        line(32, 3, GLUE, 100, GRAMS),
        line(41, 4, OAK, 2),
        line(51, 5, WALNUT, 2),
        line(61, 6, FOAM, 1),
        line(62, 6, FABRIC, 0.5),
        line(71, 7, OAK, 3),
        line(81, 8, OAK, 1),
        line(91, 9, SEAT, 1),
        line(101, 10, SCREW, 1),
    ]
    # product.template.attribute.value 21 = wood: oak, 22 = wood: walnut
    rel = [
        {"mrp_bom_line_id": 12, "product_template_attribute_value_id": 21},
        {"mrp_bom_line_id": 13, "product_template_attribute_value_id": 22},
    ]
    return boms, lines, rel


def _tables(version: int) -> dict[str, list[Row]]:
    """Every Odoo row, per table, in insertion order."""
    t: dict[str, list[Row]] = {}
    t["res_partner"] = [
        {"id": 1, "name": "Atelier Bois", "is_company": True, "active": True},
        {"id": 2, "name": "Other Co", "is_company": True, "active": True},
        {"id": 501, "name": "Timber Co", "is_company": True, "active": True, "supplier_rank": 1},
        {"id": 502, "name": "Forest Supply", "is_company": True, "active": True},
        {"id": 503, "name": "ChemGlue", "is_company": True, "active": True},
        {"id": 504, "name": "Screws Inc", "is_company": True, "active": True},
        {"id": 505, "name": "Foam Ltd", "is_company": True, "active": True},
        {"id": 506, "name": "Antwerp depot", "is_company": False, "active": True, "type": "other"},
        # an archived vendor: its vendor lines are not valid
        {"id": 507, "name": "Gone Foam", "is_company": True, "active": False},
        {"id": 601, "name": "Maison Dupont", "is_company": True, "active": True},
        {"id": 602, "name": "Hotel Central", "is_company": True, "active": True},
    ]
    t["resource_calendar"] = [
        {"id": 1, "name": "Standard 40 hours/week", "company_id": 1, "tz": "Europe/Brussels"},
        {"id": 2, "name": "Six days", "company_id": 2, "tz": "UTC"},
    ]
    for row in t["resource_calendar"]:
        row.update(active=True, hours_per_day=8.0, two_weeks_calendar=False)
        if version >= 18:
            row["flexible_hours"] = False
    t["res_company"] = [
        {"id": 1, "name": "Atelier Bois", "partner_id": 1, "resource_calendar_id": 1},
        {"id": 2, "name": "Other Co", "partner_id": 2, "resource_calendar_id": 2},
    ]
    for row in t["res_company"]:
        row.update(currency_id=1, active=True, sequence=10)
    attendance: list[Row] = []
    for calendar, days in ((1, range(5)), (2, range(6))):
        for day in days:
            for period, start, end in (("morning", 8, 12), ("afternoon", 13, 17)):
                attendance.append(
                    {
                        "id": len(attendance) + 1,
                        "calendar_id": calendar,
                        "name": f"day {day} {period}",
                        "dayofweek": str(day),
                        "day_period": period,
                        "hour_from": float(start),
                        "hour_to": float(end),
                    }
                )
    t["resource_calendar_attendance"] = attendance
    t["resource_calendar_leaves"] = [
        # Christmas, the whole local day (Brussels is UTC+1)
        {
            "id": 1,
            "name": "Christmas",
            "company_id": 1,
            "calendar_id": 1,
            "date_from": _ts("2026-12-24 23:00"),
            "date_to": _ts("2026-12-25 22:59:59"),
        },
        # no calendar: every calendar of the company; ends at local midnight
        {
            "id": 2,
            "name": "Year-end closure",
            "company_id": 1,
            "calendar_id": None,
            "date_from": _ts("2026-12-30 23:00"),
            "date_to": _ts("2027-01-01 23:00"),
        },
        # a person's leave (has a resource): not the company's calendar
        {
            "id": 3,
            "name": "Marc, dentist",
            "company_id": 1,
            "calendar_id": 1,
            "resource_id": 1,
            "date_from": _ts("2026-12-14 07:00"),
            "date_to": _ts("2026-12-14 16:00"),
        },
        # another company's holiday
        {
            "id": 4,
            "name": "Other Co day",
            "company_id": 2,
            "calendar_id": None,
            "date_from": _ts("2026-12-15 00:00"),
            "date_to": _ts("2026-12-15 23:59:59"),
        },
    ]
    for row in t["resource_calendar_leaves"]:
        row["time_type"] = "leave"
    t["uom_category"] = [{"id": 1, "name": _tr("Unit")}, {"id": 2, "name": _tr("Weight")}]
    t["uom_uom"] = [
        {"id": UNITS, "name": "Units", "category_id": 1, "factor": 1.0, "uom_type": "reference"},
        {"id": DOZENS, "name": "Dozens", "category_id": 1, "factor": 1 / 12, "uom_type": "bigger"},
        {"id": KG, "name": "kg", "category_id": 2, "factor": 1.0, "uom_type": "reference"},
        {"id": GRAMS, "name": "g", "category_id": 2, "factor": 1000.0, "uom_type": "smaller"},
    ]
    for row in t["uom_uom"]:
        row.update(name=_tr(row["name"]), rounding=0.01, active=True)
    t["product_category"] = [{"id": 1, "name": "All", "complete_name": "All", "parent_path": "1/"}]
    t["product_template"] = [_template_row(x, version) for x in _templates()]
    t["product_product"] = _products()
    t["product_attribute"] = [
        {"id": 1, "name": _tr("Wood"), "create_variant": "always", "display_type": "radio"}
    ]
    t["product_attribute_value"] = [
        {"id": 11, "name": _tr("Oak"), "attribute_id": 1},
        {"id": 12, "name": _tr("Walnut"), "attribute_id": 1},
    ]
    t["product_template_attribute_line"] = [
        {"id": 1, "product_tmpl_id": TABLE_TMPL, "attribute_id": 1, "active": True}
    ]
    t["product_template_attribute_value"] = [
        {"id": 21, "product_attribute_value_id": 11, "attribute_line_id": 1},
        {"id": 22, "product_attribute_value_id": 12, "attribute_line_id": 1},
    ]
    for row in t["product_template_attribute_value"]:
        row.update(ptav_active=True, product_tmpl_id=TABLE_TMPL, attribute_id=1, price_extra=0)
    t["product_variant_combination"] = [
        {"product_product_id": TABLE_OAK, "product_template_attribute_value_id": 21},
        {"product_product_id": TABLE_WALNUT, "product_template_attribute_value_id": 22},
    ]

    def seller(i: int, tmpl: int, partner: int, seq: int, min_qty: float, delay: int, **kw: Any):
        row = {
            "id": i,
            "product_tmpl_id": tmpl,
            "product_id": None,
            "partner_id": partner,
            "sequence": seq,
            "min_qty": min_qty,
            "delay": delay,
            "price": kw.pop("price", 5.0),
            "company_id": 1,
            "currency_id": 1,
        }
        row.update(kw)
        if version >= 17:
            row["discount"] = 0
        return row

    t["product_supplierinfo"] = [
        seller(1, BEECH, 501, 1, 20, 5),
        seller(2, BEECH, 502, 2, 0, 3),  # sequence 2: second
        seller(3, OAK, 501, 1, 10, 7),
        seller(4, OAK, 502, 1, 50, 9),  # same sequence, larger min_qty: first
        seller(5, WALNUT, 503, 0, 0, 1, date_end=dt.date(2020, 12, 31)),  # expired
        seller(6, WALNUT, 501, 1, 0, 10),
        seller(7, GLUE, 503, 1, 5, 4),  # 5 kg
        seller(8, SCREW, 504, 1, 10, 2),  # 10 dozens, the purchase unit
        seller(9, FOAM, 505, 1, 1, 3, product_id=FOAM),
        seller(10, FOAM, 507, 0, 1, 1),  # archived vendor
        seller(11, LEG, 501, 1, 0, 4, company_id=2),  # another company's
    ]
    t["stock_warehouse"] = [
        {"id": 1, "name": "Brussels", "code": "WH", "company_id": 1, "partner_id": 1},
        {"id": 2, "name": "Antwerp", "code": "WH2", "company_id": 1, "partner_id": 506},
        {"id": 3, "name": "Other", "code": "OTH", "company_id": 2, "partner_id": 2},
    ]
    for row in t["stock_warehouse"]:
        w = row["id"]
        row.update(
            active=True,
            view_location_id=w * 10,
            lot_stock_id=w * 10 + 1,
            reception_steps="one_step",
            delivery_steps="ship_only",
            manufacture_steps="mrp_one_step",
            sequence=w,
        )
    t["stock_location"] = [
        {"id": 10, "name": "WH", "usage": "view", "warehouse_id": 1, "company_id": 1},
        {"id": WH_STOCK, "name": "Stock", "usage": "internal", "warehouse_id": 1},
        {"id": WH_SHELF, "name": "Shelf 1", "usage": "internal", "warehouse_id": 1},
        {"id": 20, "name": "WH2", "usage": "view", "warehouse_id": 2, "company_id": 1},
        {"id": WH2_STOCK, "name": "Stock", "usage": "internal", "warehouse_id": 2},
        {"id": 30, "name": "OTH", "usage": "view", "warehouse_id": 3, "company_id": 2},
        {"id": OTH_STOCK, "name": "Stock", "usage": "internal", "warehouse_id": 3},
        {"id": VENDORS, "name": "Vendors", "usage": "supplier"},
        {"id": CUSTOMERS, "name": "Customers", "usage": "customer"},
        {"id": PRODUCTION, "name": "Production", "usage": "production"},
        {"id": 43, "name": "Inventory adjustment", "usage": "inventory"},
        {"id": TRANSIT, "name": "Inter-warehouse transit", "usage": "transit", "company_id": 1},
    ]
    for row in t["stock_location"]:
        row.setdefault("company_id", {1: 1, 2: 1, 3: 2}.get(row.get("warehouse_id") or 0))
        row.update(active=True, complete_name=row["name"])
    picking_types = [
        (WH_IN, "Receipts", "incoming", 1, "IN"),
        (WH_OUT, "Delivery Orders", "outgoing", 1, "OUT"),
        (WH_MANU, "Manufacturing", "mrp_operation", 1, "MO"),
        (WH_INT, "Internal Transfers", "internal", 1, "INT"),
        (WH2_IN, "Receipts", "incoming", 2, "IN"),
        (WH2_OUT, "Delivery Orders", "outgoing", 2, "OUT"),
        (WH2_MANU, "Manufacturing", "mrp_operation", 2, "MO"),
        (OTH_IN, "Receipts", "incoming", 3, "IN"),
    ]
    t["stock_picking_type"] = [
        {
            "id": i,
            "name": _tr(n),
            "code": c,
            "warehouse_id": w,
            "sequence_code": s,
            "company_id": 2 if w == 3 else 1,
            "active": True,
        }
        for i, n, c, w, s in picking_types
    ]
    quants = [
        (1, TABLE_OAK, WH_STOCK, 1),
        (2, CHAIR, WH_STOCK, 3),
        (3, CHAIR, WH_SHELF, 2),  # a sub-location of WH/Stock: WH
        (4, CHAIR, WH2_STOCK, 4),
        (5, LEG, WH_STOCK, 10),
        (6, BEECH, WH_STOCK, 25),
        (7, SCREW, WH_STOCK, 150),
        (8, GLUE, WH_STOCK, 1.5),
        (9, OAK_TOP, WH_STOCK, 1),
        (10, FABRIC, WH_STOCK, -2),  # Odoo lets stock go negative
        (11, OAK, TRANSIT, 10),  # in transit: in no warehouse's stock
        (12, BEECH, OTH_STOCK, 100),  # another company's warehouse
        (13, OLD_STOOL, WH_STOCK, 5),  # an archived product
    ]
    t["stock_quant"] = [
        {
            "id": i,
            "product_id": p,
            "location_id": loc,
            "quantity": q,
            "reserved_quantity": 0,
            "in_date": _ts("2026-11-01 08:00"),
            "company_id": 2 if loc == OTH_STOCK else 1,
        }
        for i, p, loc, q in quants
    ]
    orderpoints = [
        (1, BEECH, 1, WH_STOCK, 30, 100, 10, "auto", True),
        (2, SCREW, 1, WH_STOCK, 200, 600, 1, "auto", True),
        # created by the replenishment report on its own: not a rule
        (3, GLUE, 1, WH_STOCK, 0, 0, 1, "manual", True),
        # archived
        (4, FOAM, 2, WH2_STOCK, 5, 10, 1, "auto", False),
        # a manual rule somebody set: a rule
        (5, FABRIC, 1, WH_STOCK, 5, 20, 1, "manual", True),
        # a second rule for beech in WH (on a sub-location): the first one counts
        (6, BEECH, 1, WH_SHELF, 99, 999, 1, "auto", True),
    ]
    t["stock_warehouse_orderpoint"] = [
        {
            "id": i,
            "name": f"OP/{i:05d}",
            "product_id": p,
            "warehouse_id": w,
            "location_id": loc,
            "product_min_qty": lo,
            "product_max_qty": hi,
            "qty_multiple": mult,
            "trigger": trig,
            "active": act,
            "company_id": 1,
        }
        for i, p, w, loc, lo, hi, mult, trig, act in orderpoints
    ]

    # --- sales ---
    def so(i: int, state: str, date_order: str, commitment: str | None = None, **kw: Any) -> Row:
        row = {
            "id": i,
            "name": f"S{i:05d}",
            "state": state,
            "date_order": _ts(date_order),
            "commitment_date": _ts(commitment) if commitment else None,
            "partner_id": 601,
            "partner_invoice_id": 601,
            "partner_shipping_id": 601,
            "company_id": 1,
            "warehouse_id": 1,
            "picking_policy": "direct",
        }
        locked = kw.pop("locked", False)
        row.update(kw)
        if version >= 17:
            row["locked"] = locked
        return row

    t["sale_order"] = [
        so(1, "sale", "2026-11-30 09:00"),
        so(2, "sale", "2026-12-01 10:00", "2026-12-09 23:30", locked=True, partner_id=602),
        so(3, "cancel", "2026-12-01 10:00"),
        so(4, "draft", "2026-12-02 10:00"),  # a quotation
        so(5, "sale", "2026-12-02 08:00", "2026-12-20 11:00", warehouse_id=2),
        so(6, "sale", "2026-12-02 08:00", company_id=2, warehouse_id=3),
        # confirmed at 00:30 local time, the day after in UTC terms
        so(7, "sale", "2026-12-06 23:30"),
    ]

    def sol(i: int, order: int, product: int | None, qty: float, done: float = 0, **kw: Any):
        row = {
            "id": i,
            "order_id": order,
            "product_id": product,
            "product_uom_qty": qty,
            "product_uom": UNITS if product else None,
            "qty_delivered": done,
            "customer_lead": 14.0,
            "name": f"line {i}",
            "price_unit": 10,
            "sequence": i,
        }
        row.update(kw)
        orders = {o["id"]: o for o in t["sale_order"]}
        row.update(state=orders[order]["state"], company_id=orders[order]["company_id"])
        return row

    t["sale_order_line"] = [
        sol(11, 1, TABLE_OAK, 5, 2),  # 3 left
        sol(12, 1, CHAIR, 2, 0.5, product_uom=DOZENS),  # 1.5 dozens left: 18 chairs
        sol(21, 2, TABLE_WALNUT, 3),
        sol(22, 2, None, 0, display_type="line_section"),  # a section title
        sol(23, 2, CHAIR, 4, 4),  # delivered
        sol(24, 2, SERVICE, 1),  # a service
        sol(31, 3, TABLE_OAK, 10),  # cancelled order
        sol(41, 4, CHAIR, 7),  # quotation
        sol(51, 5, CHAIR, 6),
        sol(61, 6, OTHER_CO_PRODUCT, 3),  # another company
        sol(71, 7, FABRIC, 3, customer_lead=0.0),
    ]

    # --- purchases ---
    def po(i: int, state: str, partner: int, date_order: str, **kw: Any) -> Row:
        row = {
            "id": i,
            "name": f"P{i:05d}",
            "state": state,
            "partner_id": partner,
            "date_order": _ts(date_order),
            "date_planned": None,
            "company_id": 1,
            "currency_id": 1,
            "picking_type_id": WH_IN,
        }
        row.update(kw)
        return row

    t["purchase_order"] = [
        po(1, "purchase", 501, "2026-11-20 08:00"),
        po(2, "purchase", 504, "2026-11-25 08:00"),
        po(3, "cancel", 501, "2026-11-25 08:00"),
        po(4, "done", 503, "2026-11-10 08:00"),  # locked, still to receive
        po(5, "draft", 502, "2026-12-07 09:00"),  # a request for quotation
        po(6, "purchase", 501, "2026-11-02 08:00"),  # received
        po(7, "purchase", 505, "2026-12-01 08:00", picking_type_id=WH2_IN),
        po(8, "purchase", 501, "2026-12-01 08:00", company_id=2, picking_type_id=OTH_IN),
    ]

    def pol(i: int, order: int, product: int, qty: float, received: float, planned: str, **kw):
        orders = {o["id"]: o for o in t["purchase_order"]}
        row = {
            "id": i,
            "order_id": order,
            "product_id": product,
            "product_qty": qty,
            "product_uom": UNITS,
            "qty_received": received,
            "date_planned": _ts(planned),
            "name": f"line {i}",
            "price_unit": 5,
            "sequence": i,
            "state": orders[order]["state"],
            "company_id": orders[order]["company_id"],
            "partner_id": orders[order]["partner_id"],
        }
        row.update(kw)
        return row

    t["purchase_order_line"] = [
        pol(11, 1, BEECH, 50, 20, "2026-12-10 08:00"),
        pol(12, 1, WALNUT, 20, 0, "2026-12-03 08:00"),  # late
        pol(21, 2, SCREW, 10, 4, "2026-12-08 06:00", product_uom=DOZENS),  # 72 screws
        pol(31, 3, BEECH, 100, 0, "2026-12-10 08:00"),  # cancelled
        pol(41, 4, GLUE, 10, 8, "2026-12-15 09:00"),
        pol(42, 4, GLUE, 5000, 0, "2026-12-22 09:00", product_uom=GRAMS),  # 5 kg
        pol(51, 5, OAK, 40, 0, "2026-12-21 09:00"),
        pol(61, 6, BEECH, 10, 10, "2026-11-10 08:00"),  # received
        pol(71, 7, FOAM, 12, 0, "2026-12-11 08:00"),
        pol(81, 8, BEECH, 5, 0, "2026-12-11 08:00"),  # another company
    ]

    # --- manufacturing ---
    # 16.0 date_planned_start, date_planned_finished; 17.0 date_start, date_finished
    mo_start, mo_finish = (
        ("date_planned_start", "date_planned_finished")
        if version == 16
        else ("date_start", "date_finished")
    )

    def mo(i: int, state: str, product: int, qty: float, begin: str, end: str, **kw: Any) -> Row:
        row = {
            "id": i,
            "name": f"WH/MO/{i:05d}",
            "state": state,
            "product_id": product,
            "product_tmpl_id": TABLE_TMPL if product in (TABLE_OAK, TABLE_WALNUT) else product,
            "product_qty": qty,
            "product_uom_id": UNITS,
            "product_uom_qty": float(qty),
            "qty_producing": 0,
            "picking_type_id": WH_MANU,
            "location_src_id": WH_STOCK,
            "location_dest_id": WH_STOCK,
            mo_start: _ts(begin),
            mo_finish: _ts(end),
            "company_id": 1,
            "consumption": "warning",
        }
        row.update(kw)
        return row

    t["mrp_production"] = [
        mo(1, "confirmed", CHAIR, 10, "2026-12-08 07:00", "2026-12-10 15:00", bom_id=2),
        mo(2, "progress", LEG, 20, "2026-12-01 07:00", "2026-12-05 15:00", bom_id=3),
        mo(3, "draft", OAK_TOP, 4, "2026-12-14 07:00", "2026-12-16 07:00", bom_id=4),
        mo(4, "done", CHAIR, 5, "2026-11-20 07:00", "2026-11-21 15:00", bom_id=2),
        mo(5, "cancel", CHAIR, 5, "2026-12-09 07:00", "2026-12-10 15:00", bom_id=2),
        # 2 of 6 already in stock (a done finished move): 4 to come
        mo(7, "to_close", WALNUT_TOP, 6, "2026-12-09 07:00", "2026-12-11 07:00", bom_id=5),
    ]
    pickings = [
        (1, "WH/INT/00001", "assigned", WH_STOCK, WH2_STOCK, WH_INT),
        (2, "WH/INT/00002", "assigned", WH_STOCK, WH_SHELF, WH_INT),
        (3, "WH/INT/00003", "done", WH_STOCK, WH2_STOCK, WH_INT),
        (4, "WH/OUT/00001", "assigned", WH_STOCK, CUSTOMERS, WH_OUT),
        (5, "WH/IN/00001", "assigned", VENDORS, WH_STOCK, WH_IN),
    ]
    t["stock_picking"] = [
        {
            "id": i,
            "name": n,
            "state": s,
            "location_id": src,
            "location_dest_id": dst,
            "picking_type_id": pt,
            "company_id": 1,
            "move_type": "direct",
            "scheduled_date": _ts("2026-12-09 10:00"),
        }
        for i, n, s, src, dst, pt in pickings
    ]

    def move(i: int, product: int, qty: float, state: str, src: int, dst: int, date: str, **kw):
        row = {
            "id": i,
            "name": f"move {i}",
            "product_id": product,
            "product_uom_qty": qty,
            "product_uom": UNITS,
            "product_qty": qty,
            "state": state,
            "location_id": src,
            "location_dest_id": dst,
            "date": _ts(date),
            "company_id": 1,
            "procure_method": "make_to_stock",
        }
        done = kw.pop("done", qty if state == "done" else 0)
        picked = kw.pop("picked", state == "done")
        row.update(kw)
        if version == 16:
            row["quantity_done"] = done
        else:
            row.update(quantity=done, picked=picked)
        if version >= 18:
            row["location_final_id"] = None
        return row

    mo1, mo2 = {"raw_material_production_id": 1}, {"raw_material_production_id": 2}
    mo1_day = "2026-12-08 07:00"
    t["stock_move"] = [
        # WH/MO/00001: components
        move(101, SEAT, 10, "confirmed", WH_STOCK, PRODUCTION, mo1_day, **mo1),
        move(102, LEG, 16, "done", WH_STOCK, PRODUCTION, mo1_day, **mo1),  # consumed
        move(103, LEG, 24, "assigned", WH_STOCK, PRODUCTION, mo1_day, done=24, picked=True, **mo1),
        move(104, SCREW, 80, "partially_available", WH_STOCK, PRODUCTION, mo1_day, done=30, **mo1),
        move(105, CLOTH, 1, "confirmed", WH_STOCK, PRODUCTION, mo1_day, **mo1),  # consumable
        move(
            106, CHAIR, 10, "confirmed", PRODUCTION, WH_STOCK, "2026-12-10 15:00", production_id=1
        ),
        # WH/MO/00002: components, the glue counted in grams
        move(111, BEECH, 6, "assigned", WH_STOCK, PRODUCTION, "2026-12-01 07:00", done=6, **mo2),
        move(
            112,
            GLUE,
            200,
            "confirmed",
            WH_STOCK,
            PRODUCTION,
            "2026-12-01 07:00",
            product_uom=GRAMS,
            product_qty=0.2,
            **mo2,
        ),
        move(113, LEG, 20, "confirmed", PRODUCTION, WH_STOCK, "2026-12-05 15:00", production_id=2),
        # WH/MO/00003 (draft): draft moves are not read
        move(
            121,
            OAK,
            8,
            "draft",
            WH_STOCK,
            PRODUCTION,
            "2026-12-14 07:00",
            raw_material_production_id=3,
        ),
        # WH/MO/00004 (done)
        move(131, CHAIR, 5, "done", PRODUCTION, WH_STOCK, "2026-11-21 15:00", production_id=4),
        # WH/MO/00007: all consumed, 2 of 6 produced
        move(
            141,
            WALNUT,
            12,
            "done",
            WH_STOCK,
            PRODUCTION,
            "2026-12-09 07:00",
            raw_material_production_id=7,
        ),
        move(142, WALNUT_TOP, 2, "done", PRODUCTION, WH_STOCK, "2026-12-10 07:00", production_id=7),
        move(
            143,
            WALNUT_TOP,
            4,
            "confirmed",
            PRODUCTION,
            WH_STOCK,
            "2026-12-11 07:00",
            production_id=7,
        ),
        # transfers: WH -> WH2 (read), within WH and done (not read)
        move(201, CHAIR, 5, "assigned", WH_STOCK, WH2_STOCK, "2026-12-09 10:00", picking_id=1),
        move(202, BEECH, 10, "assigned", WH_STOCK, WH_SHELF, "2026-12-09 10:00", picking_id=2),
        move(203, LEG, 8, "done", WH_STOCK, WH2_STOCK, "2026-12-02 10:00", picking_id=3),
        # a delivery and a receipt: read through their order lines, not as transfers
        move(
            204,
            TABLE_OAK,
            3,
            "assigned",
            WH_STOCK,
            CUSTOMERS,
            "2026-12-14 09:00",
            picking_id=4,
            sale_line_id=11,
        ),
        move(
            205,
            BEECH,
            30,
            "assigned",
            VENDORS,
            WH_STOCK,
            "2026-12-10 08:00",
            picking_id=5,
            purchase_line_id=11,
        ),
    ]
    boms, lines, rel = _boms(version)
    t["mrp_bom"] = boms
    for line in lines:
        parent = next(b for b in boms if b["id"] == line["bom_id"])
        line["company_id"] = parent["company_id"]
        line["product_tmpl_id"] = (
            TABLE_TMPL if line["product_id"] in (TABLE_OAK, TABLE_WALNUT) else line["product_id"]
        )
        if version >= 17:
            line["manual_consumption"] = False
    t["mrp_bom_line"] = lines
    t["mrp_bom_line_product_template_attribute_value_rel"] = rel
    return t


_RELATIONS = {"product_variant_combination", "mrp_bom_line_product_template_attribute_value_rel"}


def write_odoo(conn: sa.Connection, version: int) -> None:
    """Insert the manufacturer's Odoo rows (the tables must exist)."""
    for table, rows in _tables(version).items():
        if not rows:
            continue
        if table not in _RELATIONS:
            rows = [{**r, "create_date": _LOGGED, "write_date": _LOGGED} for r in rows]
        names = sorted({k for r in rows for k in r})
        full = [{n: r.get(n) for n in names} for r in rows]
        conn.execute(
            sa.text(
                f"INSERT INTO {table} ({', '.join(names)}) "
                f"VALUES ({', '.join(':' + n for n in names)})"
            ),
            full,
        )
        if table not in _RELATIONS:
            # ids were given: move the serial past them, as Odoo's would be
            conn.exec_driver_sql(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT MAX(id) FROM {table}))"
            )


# --- what the profile must read: §4 rows, written by hand -------------------------------


def _rows(columns: str, *values: Sequence[Any]) -> list[Row]:
    names = columns.split()
    return [dict(zip(names, v, strict=True)) for v in values]


_D = dt.date.fromisoformat

EXPECTED: Mapping[str, list[Row]] = {
    # WH and WH2 of company 1 (OTH is company 2's); site: the address partner;
    # both on the company's calendar 1
    "warehouses": _rows(
        "warehouse_id site_id calendar_id",
        ("WH", "1", "1"),
        ("WH2", "506", "1"),
    ),
    "calendars": _rows("calendar_id working_weekdays", ("1", "1111100")),
    # Christmas; the year-end closure (no calendar: the company's) on the 31st and
    # the 1st, ending at midnight; not the dentist, not the other company's day
    "calendar_exceptions": _rows(
        "calendar_id day is_working",
        ("1", _D("2026-12-25"), 0),
        ("1", _D("2026-12-31"), 0),
        ("1", _D("2027-01-01"), 0),
    ),
    "coverage_groups": _rows(
        "group_id coverage_code coverage_period_days coverage_time_fence_days "
        "freeze_time_fence_days firming_time_fence_days negative_days positive_days "
        "use_working_days safety_stock_fulfillment forecast_reduction include_forecast "
        "postpone_tolerance_days",
        ("lot_for_lot", "requirement", 1, 365, 0, 0, 0, None, 0, "lead_time", "none", 0, 0),
        ("reordering_rule", "min_max", 1, 365, 0, 0, 0, None, 0, "lead_time", "none", 0, 0),
    ),
    # made: lead time produce_delay + days_to_prepare_mo; bought: the first valid
    # vendor line's vendor, delay and min_qty (in the product's unit)
    "items": _rows(
        "item_id default_order_type coverage_group_id lead_time_days min_order_qty "
        "max_order_qty multiple_qty default_vendor_id",
        ("101", "production", "lot_for_lot", 4, 0, 0, 0, None),
        ("102", "production", "lot_for_lot", 4, 0, 0, 0, None),
        ("200", "production", "lot_for_lot", 2, 0, 0, 0, None),
        # the leg's vendor line is another company's
        ("210", "production", "lot_for_lot", 1, 0, 0, 0, None),
        ("220", "production", "lot_for_lot", 2, 0, 0, 0, None),
        # BoM 5 (sequence 0) before the alternative 7; 8 is archived
        ("221", "production", "lot_for_lot", 2, 0, 0, 0, None),
        ("230", "production", "lot_for_lot", 1, 0, 0, 0, None),
        ("310", "purchase", "lot_for_lot", 5, 20, 0, 0, "501"),
        # sequence 1 both: the larger min_qty first (Forest Supply)
        ("311", "purchase", "lot_for_lot", 9, 50, 0, 0, "502"),
        # ChemGlue's line expired in 2020
        ("312", "purchase", "lot_for_lot", 10, 0, 0, 0, "501"),
        ("330", "purchase", "lot_for_lot", 4, 5, 0, 0, "503"),
        # 10 dozens
        ("340", "purchase", "lot_for_lot", 2, 120, 0, 0, "504"),
        # the archived vendor's line (sequence 0) does not count
        ("350", "purchase", "lot_for_lot", 3, 1, 0, 0, "505"),
        # no vendor
        ("351", "purchase", "lot_for_lot", 0, 0, 0, 0, None),
    ),
    "item_coverage": _rows(
        "item_id warehouse_id coverage_group_id min_qty max_qty safety_stock_qty order_type "
        "lead_time_days refill_warehouse_id vendor_id min_order_qty max_order_qty multiple_qty",
        ("310", "WH", "reordering_rule", 30, 100, None, None, None, None, None, None, None, 10),
        ("340", "WH", "reordering_rule", 200, 600, None, None, None, None, None, None, None, 1),
        ("351", "WH", "reordering_rule", 5, 20, None, None, None, None, None, None, None, 1),
    ),
    "boms": _rows(
        "bom_id item_id warehouse_id valid_from valid_to batch_qty",
        ("1/101", "101", None, None, None, 1),
        ("1/102", "102", None, None, None, 1),
        ("2", "200", None, None, None, 1),
        ("3", "210", None, None, None, 10),
        ("4", "220", None, None, None, 1),
        ("5", "221", None, None, None, 1),
        ("6", "230", "WH", None, None, 1),
    ),
    "bom_lines": _rows(
        "bom_id line_no component_item_id qty_per scrap_pct scrap_const warehouse_id",
        # the oak table: the oak top, 250 g of glue, 2 dozen screws; no cloth
        ("1/101", 11, "210", 4, 0, 0, None),
        ("1/101", 12, "220", 1, 0, 0, None),
        ("1/101", 14, "330", 0.25, 0, 0, None),
        ("1/101", 15, "340", 24, 0, 0, None),
        # the walnut table: the walnut top
        ("1/102", 11, "210", 4, 0, 0, None),
        ("1/102", 13, "221", 1, 0, 0, None),
        ("1/102", 14, "330", 0.25, 0, 0, None),
        ("1/102", 15, "340", 24, 0, 0, None),
        ("2", 21, "230", 1, 0, 0, None),
        ("2", 22, "210", 4, 0, 0, None),
        ("2", 23, "340", 8, 0, 0, None),
        ("3", 31, "310", 3, 0, 0, None),
        ("3", 32, "330", 0.1, 0, 0, None),
        ("4", 41, "311", 2, 0, 0, None),
        ("5", 51, "312", 2, 0, 0, None),
        ("6", 61, "350", 1, 0, 0, None),
        ("6", 62, "351", 0.5, 0, 0, None),
    ),
    # internal locations of WH, WH2; not the transit stock, the other company's
    # or the archived product's
    "on_hand": _rows(
        "item_id warehouse_id qty",
        ("101", "WH", 1),
        ("200", "WH", 5),
        ("200", "WH2", 4),
        ("210", "WH", 10),
        ("310", "WH", 25),
        ("340", "WH", 150),
        ("330", "WH", 1.5),
        ("220", "WH", 1),
        ("351", "WH", -2),
    ),
    # confirmed orders' open quantities; dates in Brussels
    "sales_lines": _rows(
        "order_id line_no item_id warehouse_id qty requested_date priority",
        # ordered 2026-11-30 + 14 days' customer lead time
        ("S00001", 11, "101", "WH", 3, _D("2026-12-14"), 0),
        ("S00001", 12, "200", "WH", 18, _D("2026-12-14"), 0),
        # committed for 2026-12-09 23:30 UTC, 00:30 in Brussels
        ("S00002", 21, "102", "WH", 3, _D("2026-12-10"), 0),
        ("S00005", 51, "200", "WH2", 6, _D("2026-12-20"), 0),
        ("S00007", 71, "351", "WH", 3, _D("2026-12-07"), 0),
    ),
    "purchase_lines": _rows(
        "order_id line_no item_id warehouse_id qty delivery_date vendor_id",
        ("P00001", 11, "310", "WH", 30, _D("2026-12-10"), "501"),
        ("P00001", 12, "312", "WH", 20, _D("2026-12-03"), "501"),
        ("P00002", 21, "340", "WH", 72, _D("2026-12-08"), "504"),
        # a locked ('done') order still to receive
        ("P00004", 41, "330", "WH", 2, _D("2026-12-15"), "503"),
        ("P00004", 42, "330", "WH", 5, _D("2026-12-22"), "503"),
        ("P00007", 71, "350", "WH2", 12, _D("2026-12-11"), "505"),
    ),
    "production_orders": _rows(
        "order_id item_id warehouse_id qty start_date end_date",
        ("WH/MO/00001", "200", "WH", 10, _D("2026-12-08"), _D("2026-12-10")),
        ("WH/MO/00002", "210", "WH", 20, _D("2026-12-01"), _D("2026-12-05")),
        ("WH/MO/00007", "221", "WH", 4, _D("2026-12-09"), _D("2026-12-11")),
    ),
    # open component moves in full (the consumed 16 legs are a done move)
    "production_lines": _rows(
        "order_id line_no component_item_id warehouse_id qty required_date",
        ("WH/MO/00001", 101, "230", "WH", 10, _D("2026-12-08")),
        ("WH/MO/00001", 103, "210", "WH", 24, _D("2026-12-08")),
        ("WH/MO/00001", 104, "340", "WH", 80, _D("2026-12-08")),
        ("WH/MO/00002", 111, "310", "WH", 6, _D("2026-12-01")),
        ("WH/MO/00002", 112, "330", "WH", 0.2, _D("2026-12-01")),
    ),
    "transfer_lines": _rows(
        "order_id line_no item_id from_warehouse_id to_warehouse_id qty ship_date receive_date",
        ("WH/INT/00001", 201, "200", "WH", "WH2", 5, _D("2026-12-09"), _D("2026-12-09")),
    ),
    "forecasts": [],
    # the request for quotation and the draft manufacturing order
    "firmed_planned_orders": _rows(
        "planned_order_id item_id warehouse_id order_type qty order_date due_date "
        "from_warehouse_id",
        ("P00005/51", "311", "WH", "purchase", 40, _D("2026-12-07"), _D("2026-12-21"), None),
        ("WH/MO/00003", "220", "WH", "production", 4, _D("2026-12-14"), _D("2026-12-16"), None),
    ),
}
