"""PostgreSQL DDL of the Odoo tables the Odoo source profiles read, per version.

Columns and types are those Odoo's ORM gives the stored fields of each model
(``odoo/fields.py``): many2one -> ``integer``, char and selection ->
``varchar``, text and html -> ``text``, a translatable char (``translate=True``,
jsonb since 16.0) -> ``jsonb``, float -> ``double precision`` or ``numeric``
where the field has ``digits``, monetary -> ``numeric``, integer ->
``integer``, boolean -> ``boolean``, date -> ``date``, datetime ->
``timestamp without time zone`` (UTC); ``id serial`` primary key and the four
log columns on every model table; ``NOT NULL`` where the field is
``required``. Only the fields the profiles or the fixture touch, plus the
required ones, are here; a comment per table names the source file of the
model in odoo/odoo and, where another module adds fields, that module's file.

Versions: 16 (16.0), 17 (17.0), 18 (18.0). The differences that matter to the
profiles are spelled out where they occur (search for ``version``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

__all__ = ["VERSIONS", "OdooTable", "create_odoo_tables", "odoo_tables"]

VERSIONS = (16, 17, 18)

M2O = INT = "integer"
CHAR = SEL = "varchar"
TEXT = "text"
JSONB = "jsonb"
FLOAT = "double precision"
NUM = "numeric"  # a float field with digits=..., and monetary
DATE = "date"
DATETIME = "timestamp without time zone"
BOOL = "boolean"


@dataclass(frozen=True)
class OdooTable:
    """One table: a model's table (``id serial`` and the log columns added)
    or a many2many relation table (``relation``: its two columns are the key)."""

    name: str
    source: str
    columns: Sequence[tuple[str, str, bool]]  # (column, SQL type, NOT NULL)
    relation: bool = False

    def ddl(self) -> str:
        lines = [f"-- {self.source}"]
        cols: list[str] = []
        if not self.relation:
            cols.append("id serial PRIMARY KEY")
        cols += [f"{c} {t}{' NOT NULL' if req else ''}" for c, t, req in self.columns]
        if self.relation:
            cols.append(f"PRIMARY KEY ({self.columns[0][0]}, {self.columns[1][0]})")
        else:
            cols += [
                "create_uid integer",
                f"create_date {DATETIME}",
                "write_uid integer",
                f"write_date {DATETIME}",
            ]
        body = ",\n    ".join(cols)
        lines.append(f"CREATE TABLE {self.name} (\n    {body}\n)")
        return "\n".join(lines)


def _c(name: str, sql_type: str, required: bool = False) -> tuple[str, str, bool]:
    return (name, sql_type, required)


def odoo_tables(version: int) -> list[OdooTable]:
    """The tables of one Odoo version, in an order that creates them cleanly."""
    if version not in VERSIONS:
        raise ValueError(f"no Odoo schema for version {version} (have {VERSIONS})")
    v = f"{version}.0"
    t: list[OdooTable] = []

    # --- base, resource ------------------------------------------------------------
    t.append(
        OdooTable(
            "res_partner",
            f"odoo/addons/base/models/res_partner.py @ {v}",
            [
                _c("name", CHAR),
                _c("company_id", M2O),
                _c("ref", CHAR),
                _c("active", BOOL),
                _c("type", SEL),
                _c("is_company", BOOL),
                _c("commercial_partner_id", M2O),
                # supplier_rank / customer_rank: account/models/partner.py
                _c("supplier_rank", INT),
                _c("customer_rank", INT),
            ],
        )
    )
    t.append(
        OdooTable(
            "res_company",
            f"odoo/addons/base/models/res_company.py @ {v}; "
            f"resource_calendar_id: addons/resource/models/res_company.py @ {v}",
            [
                # name: related='partner_id.name', store=True, required
                _c("name", CHAR, True),
                _c("active", BOOL),
                _c("sequence", INT),
                _c("partner_id", M2O, True),
                _c("currency_id", M2O, True),
                _c("resource_calendar_id", M2O),
            ],
        )
    )
    calendar = [
        _c("name", CHAR, True),
        _c("active", BOOL),
        _c("company_id", M2O),
        _c("hours_per_day", FLOAT),
        _c("tz", SEL, True),
        _c("two_weeks_calendar", BOOL),
    ]
    if version >= 18:
        calendar.append(_c("flexible_hours", BOOL))
    t.append(
        OdooTable(
            "resource_calendar",
            f"addons/resource/models/resource_calendar.py @ {v}",
            calendar,
        )
    )
    t.append(
        OdooTable(
            "resource_calendar_attendance",
            f"addons/resource/models/resource_calendar_attendance.py @ {v}",
            [
                _c("name", CHAR, True),
                # selection '0' (Monday) .. '6' (Sunday)
                _c("dayofweek", SEL, True),
                _c("date_from", DATE),
                _c("date_to", DATE),
                _c("hour_from", FLOAT, True),
                _c("hour_to", FLOAT, True),
                _c("calendar_id", M2O, True),
                _c("day_period", SEL, True),
                _c("resource_id", M2O),
                _c("week_type", SEL),
                _c("display_type", SEL),
                _c("sequence", INT),
            ],
        )
    )
    t.append(
        OdooTable(
            "resource_calendar_leaves",
            f"addons/resource/models/resource_calendar_leaves.py @ {v}",
            [
                _c("name", CHAR),
                _c("company_id", M2O),
                _c("calendar_id", M2O),
                _c("date_from", DATETIME, True),
                _c("date_to", DATETIME, True),
                # no resource: a global leave (public holiday)
                _c("resource_id", M2O),
                _c("time_type", SEL),
            ],
        )
    )

    # --- uom, product ----------------------------------------------------------------
    t.append(
        OdooTable(
            "uom_category",
            f"addons/uom/models/uom_uom.py (uom.category) @ {v}",
            [_c("name", JSONB, True)],
        )
    )
    t.append(
        OdooTable(
            "uom_uom",
            f"addons/uom/models/uom_uom.py @ {v}",
            [
                _c("name", JSONB, True),
                _c("category_id", M2O, True),
                # factor, rounding: fields.Float(digits=0) -> numeric
                _c("factor", NUM, True),
                _c("rounding", NUM, True),
                _c("active", BOOL),
                _c("uom_type", SEL, True),
            ],
        )
    )
    t.append(
        OdooTable(
            "product_category",
            f"addons/product/models/product_category.py @ {v}",
            [
                _c("name", CHAR, True),
                _c("complete_name", CHAR),
                _c("parent_id", M2O),
                _c("parent_path", CHAR),
            ],
        )
    )
    template = [
        _c("name", JSONB, True),
        _c("sequence", INT),
        _c("categ_id", M2O, True),
        _c("uom_id", M2O, True),
        _c("uom_po_id", M2O, True),
        _c("company_id", M2O),
        _c("active", BOOL),
        _c("default_code", CHAR),
        _c("sale_ok", BOOL),
        _c("purchase_ok", BOOL),
        _c("list_price", NUM),
        # stock: tracking (required selection)
        _c("tracking", SEL, True),
    ]
    if version <= 17:
        # 16.0, 17.0: detailed_type ('consu', 'service', and 'product' = storable,
        # added by stock/models/product.py) is what the user sets; type is
        # computed from it and stored.
        template += [_c("detailed_type", SEL, True), _c("type", SEL, True)]
    else:
        # 18.0: type is 'consu' | 'service' | 'combo'; stock/models/product.py
        # adds is_storable ("Track Inventory").
        template += [_c("type", SEL, True), _c("is_storable", BOOL)]
    if version == 16:
        # 16.0 mrp/models/product.py: the manufacturing lead time is the product's
        template += [_c("produce_delay", FLOAT), _c("days_to_prepare_mo", FLOAT)]
    t.append(
        OdooTable(
            "product_template",
            f"addons/product/models/product_template.py @ {v}; tracking, "
            f"{'detailed_type' if version <= 17 else 'is_storable'}: "
            f"addons/stock/models/product.py @ {v}"
            + (f"; produce_delay: addons/mrp/models/product.py @ {v}" if version == 16 else ""),
            template,
        )
    )
    t.append(
        OdooTable(
            "product_product",
            f"addons/product/models/product_product.py @ {v}",
            [
                _c("product_tmpl_id", M2O, True),
                _c("default_code", CHAR),
                _c("active", BOOL),
                _c("barcode", CHAR),
                _c("combination_indices", CHAR),
            ],
        )
    )
    t.append(
        OdooTable(
            "product_attribute",
            f"addons/product/models/product_attribute.py @ {v}",
            [
                _c("name", JSONB, True),
                _c("sequence", INT),
                _c("create_variant", SEL, True),
                _c("display_type", SEL, True),
            ],
        )
    )
    t.append(
        OdooTable(
            "product_attribute_value",
            f"addons/product/models/product_attribute_value.py @ {v}",
            [
                _c("name", JSONB, True),
                _c("sequence", INT),
                _c("attribute_id", M2O, True),
            ],
        )
    )
    t.append(
        OdooTable(
            "product_template_attribute_line",
            f"addons/product/models/product_template_attribute_line.py @ {v}",
            [
                _c("active", BOOL),
                _c("product_tmpl_id", M2O, True),
                _c("attribute_id", M2O, True),
                _c("sequence", INT),
            ],
        )
    )
    t.append(
        OdooTable(
            "product_template_attribute_value",
            f"addons/product/models/product_template_attribute_value.py @ {v}",
            [
                _c("ptav_active", BOOL),
                _c("product_attribute_value_id", M2O, True),
                _c("attribute_line_id", M2O, True),
                _c("price_extra", NUM),
                # related, stored
                _c("product_tmpl_id", M2O),
                _c("attribute_id", M2O),
            ],
        )
    )
    t.append(
        OdooTable(
            "product_variant_combination",
            f"product.product.product_template_attribute_value_ids "
            f"(addons/product/models/product_product.py @ {v})",
            [
                _c("product_product_id", M2O, True),
                _c("product_template_attribute_value_id", M2O, True),
            ],
            relation=True,
        )
    )
    supplierinfo = [
        _c("partner_id", M2O, True),
        _c("product_name", CHAR),
        _c("product_code", CHAR),
        _c("sequence", INT),
        # in the purchase unit (product_uom: related product_tmpl_id.uom_po_id)
        _c("min_qty", NUM, True),
        _c("price", NUM, True),
        _c("company_id", M2O),
        _c("currency_id", M2O, True),
        _c("date_start", DATE),
        _c("date_end", DATE),
        _c("product_id", M2O),
        _c("product_tmpl_id", M2O),
        _c("delay", INT, True),
    ]
    if version >= 17:
        supplierinfo.append(_c("discount", NUM))
    t.append(
        OdooTable(
            "product_supplierinfo",
            f"addons/product/models/product_supplierinfo.py @ {v}",
            supplierinfo,
        )
    )

    # --- stock -----------------------------------------------------------------------
    t.append(
        OdooTable(
            "stock_location",
            f"addons/stock/models/stock_location.py @ {v}",
            [
                _c("name", CHAR, True),
                _c("complete_name", CHAR),
                _c("active", BOOL),
                # 'supplier' | 'view' | 'internal' | 'customer' | 'inventory'
                # | 'production' | 'transit'
                _c("usage", SEL, True),
                _c("location_id", M2O),
                _c("parent_path", CHAR),
                _c("company_id", M2O),
                # computed from the view location's parent_path, stored
                _c("warehouse_id", M2O),
                _c("scrap_location", BOOL),
                _c("replenish_location", BOOL),
            ],
        )
    )
    t.append(
        OdooTable(
            "stock_warehouse",
            f"addons/stock/models/stock_warehouse.py @ {v}; "
            f"manufacture_steps: addons/mrp/models/stock_warehouse.py @ {v}",
            [
                _c("name", CHAR, True),
                _c("active", BOOL),
                _c("company_id", M2O, True),
                _c("partner_id", M2O),
                _c("view_location_id", M2O, True),
                _c("lot_stock_id", M2O, True),
                # size=5, unique per company
                _c("code", "varchar(5)", True),
                _c("reception_steps", SEL, True),
                _c("delivery_steps", SEL, True),
                _c("manufacture_steps", SEL, True),
                _c("sequence", INT),
            ],
        )
    )
    t.append(
        OdooTable(
            "stock_picking_type",
            f"addons/stock/models/stock_picking.py (stock.picking.type) @ {v}",
            [
                _c("name", JSONB, True),
                # 'incoming' | 'outgoing' | 'internal' (+ 'mrp_operation' from mrp)
                _c("code", SEL, True),
                _c("sequence", INT),
                _c("sequence_code", CHAR, True),
                _c("default_location_src_id", M2O),
                _c("default_location_dest_id", M2O),
                _c("warehouse_id", M2O),
                _c("active", BOOL),
                _c("company_id", M2O, True),
            ],
        )
    )
    t.append(
        OdooTable(
            "stock_picking",
            f"addons/stock/models/stock_picking.py @ {v}",
            [
                _c("name", CHAR),
                _c("origin", CHAR),
                _c("state", SEL),
                _c("scheduled_date", DATETIME),
                _c("location_id", M2O, True),
                _c("location_dest_id", M2O, True),
                _c("picking_type_id", M2O, True),
                _c("partner_id", M2O),
                _c("company_id", M2O),
                _c("move_type", SEL, True),
                _c("priority", SEL),
            ],
        )
    )
    t.append(
        OdooTable(
            "stock_quant",
            f"addons/stock/models/stock_quant.py @ {v}",
            [
                _c("product_id", M2O, True),
                _c("company_id", M2O),
                _c("location_id", M2O, True),
                _c("lot_id", M2O),
                _c("package_id", M2O),
                _c("owner_id", M2O),
                # in the product's unit
                _c("quantity", NUM),
                _c("reserved_quantity", NUM, True),
                _c("in_date", DATETIME, True),
            ],
        )
    )
    t.append(
        OdooTable(
            "stock_warehouse_orderpoint",
            f"addons/stock/models/stock_orderpoint.py @ {v}",
            [
                _c("name", CHAR, True),
                # 'auto' | 'manual'
                _c("trigger", SEL, True),
                _c("active", BOOL),
                _c("snoozed_until", DATE),
                _c("warehouse_id", M2O, True),
                _c("location_id", M2O, True),
                _c("product_id", M2O, True),
                # in the product's unit
                _c("product_min_qty", NUM, True),
                _c("product_max_qty", NUM, True),
                _c("qty_multiple", NUM, True),
                _c("company_id", M2O, True),
                _c("route_id", M2O),
            ],
        )
    )

    # --- sale, purchase ------------------------------------------------------------------
    sale_order = [
        _c("name", CHAR, True),
        # 16.0: draft | sent | sale | done | cancel; 17.0, 18.0: draft | sent |
        # sale | cancel, a confirmed order being locked by the locked flag
        _c("state", SEL),
        _c("date_order", DATETIME, True),
        _c("commitment_date", DATETIME),
        _c("partner_id", M2O, True),
        _c("partner_invoice_id", M2O, True),
        _c("partner_shipping_id", M2O, True),
        _c("company_id", M2O, True),
        _c("user_id", M2O),
        # sale_stock/models/sale_order.py
        _c("warehouse_id", M2O, True),
        _c("picking_policy", SEL, True),
    ]
    if version >= 17:
        sale_order.append(_c("locked", BOOL))
    t.append(
        OdooTable(
            "sale_order",
            f"addons/sale/models/sale_order.py @ {v}; warehouse_id, picking_policy: "
            f"addons/sale_stock/models/sale_order.py @ {v}",
            sale_order,
        )
    )
    t.append(
        OdooTable(
            "sale_order_line",
            f"addons/sale/models/sale_order_line.py @ {v}; route_id: "
            f"addons/sale_stock/models/sale_order_line.py @ {v}",
            [
                _c("order_id", M2O, True),
                _c("sequence", INT),
                _c("company_id", M2O),  # related order_id.company_id, stored
                _c("state", SEL),  # related order_id.state, stored
                _c("display_type", SEL),
                _c("name", TEXT, True),
                _c("product_id", M2O),
                # in the line's unit, product_uom
                _c("product_uom_qty", NUM, True),
                _c("product_uom", M2O),
                _c("qty_delivered", NUM),
                _c("qty_delivered_method", SEL),
                _c("price_unit", NUM, True),
                _c("customer_lead", FLOAT, True),
                _c("route_id", M2O),
            ],
        )
    )
    t.append(
        OdooTable(
            "purchase_order",
            f"addons/purchase/models/purchase_order.py @ {v}; picking_type_id: "
            f"addons/purchase_stock/models/purchase_order.py @ {v}",
            [
                _c("name", CHAR, True),
                _c("priority", SEL),
                _c("origin", CHAR),
                _c("partner_id", M2O, True),
                # draft | sent | to approve | purchase | done | cancel
                _c("state", SEL),
                _c("date_order", DATETIME, True),
                _c("date_approve", DATETIME),
                _c("date_planned", DATETIME),
                _c("company_id", M2O, True),
                _c("currency_id", M2O, True),
                _c("picking_type_id", M2O, True),
            ],
        )
    )
    t.append(
        OdooTable(
            "purchase_order_line",
            f"addons/purchase/models/purchase_order_line.py @ {v}"
            if version >= 17
            else f"addons/purchase/models/purchase.py (purchase.order.line) @ {v}",
            [
                _c("name", TEXT, True),
                _c("sequence", INT),
                # in the line's unit, product_uom
                _c("product_qty", NUM, True),
                # product_qty in the product's unit (computed, stored, no digits)
                _c("product_uom_qty", FLOAT),
                _c("date_planned", DATETIME),
                _c("product_uom", M2O),
                _c("product_id", M2O),
                _c("price_unit", NUM, True),
                _c("order_id", M2O, True),
                _c("company_id", M2O),  # related, stored
                _c("state", SEL),  # related, stored
                _c("partner_id", M2O),  # related, stored
                _c("display_type", SEL),
                _c("qty_received_method", SEL),
                _c("qty_received", NUM),
            ],
        )
    )

    # --- mrp ---------------------------------------------------------------------------
    bom = [
        _c("code", CHAR),
        _c("active", BOOL),
        # 'normal' (manufacture) | 'phantom' (kit)
        _c("type", SEL, True),
        _c("product_tmpl_id", M2O, True),
        _c("product_id", M2O),
        _c("product_qty", NUM, True),
        _c("product_uom_id", M2O, True),
        _c("sequence", INT),
        _c("ready_to_produce", SEL, True),
        _c("picking_type_id", M2O),
        _c("company_id", M2O),
        _c("consumption", SEL, True),
        _c("allow_operation_dependencies", BOOL),
    ]
    if version >= 17:
        # 17.0 moved the manufacturing lead time from the product to the BoM
        bom += [_c("produce_delay", INT), _c("days_to_prepare_mo", INT)]
    t.append(OdooTable("mrp_bom", f"addons/mrp/models/mrp_bom.py @ {v}", bom))
    bom_line = [
        _c("product_id", M2O, True),
        _c("product_tmpl_id", M2O),  # related, stored
        _c("company_id", M2O),  # related, stored
        _c("product_qty", NUM, True),
        _c("product_uom_id", M2O, True),
        _c("sequence", INT),
        _c("bom_id", M2O, True),
        _c("operation_id", M2O),
    ]
    if version >= 17:
        bom_line.append(_c("manual_consumption", BOOL))
    t.append(
        OdooTable("mrp_bom_line", f"addons/mrp/models/mrp_bom.py (mrp.bom.line) @ {v}", bom_line)
    )
    t.append(
        OdooTable(
            "mrp_bom_line_product_template_attribute_value_rel",
            f"mrp.bom.line.bom_product_template_attribute_value_ids "
            f"(addons/mrp/models/mrp_bom.py @ {v}): the line applies to the variants "
            "with these attribute values",
            [
                _c("mrp_bom_line_id", M2O, True),
                _c("product_template_attribute_value_id", M2O, True),
            ],
            relation=True,
        )
    )
    start, finish = (
        ("date_planned_start", "date_planned_finished")
        if version == 16
        else ("date_start", "date_finished")
    )
    t.append(
        OdooTable(
            "mrp_production",
            f"addons/mrp/models/mrp_production.py @ {v}",
            [
                _c("name", CHAR, True),
                _c("priority", SEL),
                _c("origin", CHAR),
                _c("product_id", M2O, True),
                _c("product_tmpl_id", M2O),  # related, stored
                # in product_uom_id
                _c("product_qty", NUM, True),
                _c("product_uom_id", M2O, True),
                _c("qty_producing", NUM),
                _c("product_uom_qty", FLOAT),  # in the product's unit, stored
                _c("picking_type_id", M2O, True),
                _c("location_src_id", M2O, True),
                _c("location_dest_id", M2O, True),
                _c("date_deadline", DATETIME),
                # 16.0: date_planned_start, date_planned_finished; 17.0: date_start,
                # date_finished
                _c(start, DATETIME, True),
                _c(finish, DATETIME),
                _c("bom_id", M2O),
                # draft | confirmed | progress | to_close | done | cancel
                _c("state", SEL),
                _c("company_id", M2O, True),
                _c("consumption", SEL, True),
                _c("user_id", M2O),
            ],
        )
    )
    move = [
        _c("name", CHAR, True),
        _c("sequence", INT),
        _c("priority", SEL),
        _c("date", DATETIME, True),
        _c("date_deadline", DATETIME),
        _c("company_id", M2O, True),
        _c("product_id", M2O, True),
        # the demand, in product_uom
        _c("product_uom_qty", NUM, True),
        _c("product_uom", M2O, True),
        # product_uom_qty in the product's unit (computed, stored, digits=0)
        _c("product_qty", NUM),
        _c("location_id", M2O, True),
        _c("location_dest_id", M2O, True),
        _c("partner_id", M2O),
        _c("picking_id", M2O),
        # draft | waiting | confirmed | partially_available | assigned | done | cancel
        _c("state", SEL),
        _c("origin", CHAR),
        _c("procure_method", SEL, True),
        _c("picking_type_id", M2O),
        _c("warehouse_id", M2O),
        _c("reference", CHAR),
        # mrp/models/stock_move.py
        _c("raw_material_production_id", M2O),
        _c("production_id", M2O),
        _c("bom_line_id", M2O),
        # sale_stock, purchase_stock
        _c("sale_line_id", M2O),
        _c("purchase_line_id", M2O),
    ]
    if version == 16:
        # 16.0: the done quantity, in product_uom (computed from the move lines, stored)
        move.append(_c("quantity_done", NUM))
    else:
        # 17.0: quantity (reserved, then picked, then done; in product_uom) and picked
        move += [_c("quantity", NUM), _c("picked", BOOL)]
    if version >= 18:
        move.append(_c("location_final_id", M2O))
    t.append(
        OdooTable(
            "stock_move",
            f"addons/stock/models/stock_move.py @ {v}; raw_material_production_id, "
            f"production_id, bom_line_id: addons/mrp/models/stock_move.py @ {v}",
            move,
        )
    )
    return t


def create_odoo_tables(conn: sa.Connection, version: int) -> None:
    """Create the tables of ``version`` in the connection's current schema."""
    for table in odoo_tables(version):
        conn.exec_driver_sql(table.ddl())
