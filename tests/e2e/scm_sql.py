"""The SPEC §4 input tables as plain SQL, written out by hand from the spec.

End-to-end tests build their SCM databases with these statements, not with
the project's own schema code, so that they catch a connector that reads
something other than what §4 defines.
"""

INPUT_DDL = [
    "CREATE TABLE warehouses (warehouse_id VARCHAR(64) PRIMARY KEY, site_id VARCHAR(64), calendar_id VARCHAR(64))",
    "CREATE TABLE calendars (calendar_id VARCHAR(64) PRIMARY KEY, working_weekdays VARCHAR(7))",
    "CREATE TABLE calendar_exceptions (calendar_id VARCHAR(64), day DATE, is_working INTEGER)",
    "CREATE TABLE coverage_groups (group_id VARCHAR(64) PRIMARY KEY, coverage_code VARCHAR(16),"
    " coverage_period_days INTEGER, coverage_time_fence_days INTEGER, freeze_time_fence_days INTEGER,"
    " firming_time_fence_days INTEGER, negative_days INTEGER, positive_days INTEGER,"
    " use_working_days INTEGER, safety_stock_fulfillment VARCHAR(16), forecast_reduction VARCHAR(32),"
    " include_forecast INTEGER, postpone_tolerance_days INTEGER)",
    "CREATE TABLE items (item_id VARCHAR(64) PRIMARY KEY, default_order_type VARCHAR(16),"
    " coverage_group_id VARCHAR(64), lead_time_days INTEGER, min_order_qty NUMERIC(18,6),"
    " max_order_qty NUMERIC(18,6), multiple_qty NUMERIC(18,6), default_vendor_id VARCHAR(64))",
    "CREATE TABLE item_coverage (item_id VARCHAR(64), warehouse_id VARCHAR(64), coverage_group_id VARCHAR(64),"
    " min_qty NUMERIC(18,6), max_qty NUMERIC(18,6), safety_stock_qty NUMERIC(18,6), order_type VARCHAR(16),"
    " lead_time_days INTEGER, refill_warehouse_id VARCHAR(64), vendor_id VARCHAR(64),"
    " min_order_qty NUMERIC(18,6), max_order_qty NUMERIC(18,6), multiple_qty NUMERIC(18,6))",
    "CREATE TABLE boms (bom_id VARCHAR(64) PRIMARY KEY, item_id VARCHAR(64), warehouse_id VARCHAR(64),"
    " valid_from DATE, valid_to DATE, batch_qty NUMERIC(18,6))",
    "CREATE TABLE bom_lines (bom_id VARCHAR(64), line_no INTEGER, component_item_id VARCHAR(64),"
    " qty_per NUMERIC(18,6), scrap_pct NUMERIC(18,6), scrap_const NUMERIC(18,6), warehouse_id VARCHAR(64))",
    "CREATE TABLE on_hand (item_id VARCHAR(64), warehouse_id VARCHAR(64), qty NUMERIC(18,6))",
    "CREATE TABLE sales_lines (order_id VARCHAR(64), line_no INTEGER, item_id VARCHAR(64),"
    " warehouse_id VARCHAR(64), qty NUMERIC(18,6), requested_date DATE, priority INTEGER)",
    "CREATE TABLE purchase_lines (order_id VARCHAR(64), line_no INTEGER, item_id VARCHAR(64),"
    " warehouse_id VARCHAR(64), qty NUMERIC(18,6), delivery_date DATE, vendor_id VARCHAR(64))",
    "CREATE TABLE production_orders (order_id VARCHAR(64) PRIMARY KEY, item_id VARCHAR(64),"
    " warehouse_id VARCHAR(64), qty NUMERIC(18,6), start_date DATE, end_date DATE)",
    "CREATE TABLE production_lines (order_id VARCHAR(64), line_no INTEGER, component_item_id VARCHAR(64),"
    " warehouse_id VARCHAR(64), qty NUMERIC(18,6), required_date DATE)",
    "CREATE TABLE transfer_lines (order_id VARCHAR(64), line_no INTEGER, item_id VARCHAR(64),"
    " from_warehouse_id VARCHAR(64), to_warehouse_id VARCHAR(64), qty NUMERIC(18,6), ship_date DATE,"
    " receive_date DATE)",
    "CREATE TABLE forecasts (item_id VARCHAR(64), warehouse_id VARCHAR(64), forecast_date DATE,"
    " qty NUMERIC(18,6))",
    "CREATE TABLE firmed_planned_orders (planned_order_id VARCHAR(64) PRIMARY KEY, item_id VARCHAR(64),"
    " warehouse_id VARCHAR(64), order_type VARCHAR(16), qty NUMERIC(18,6), order_date DATE, due_date DATE,"
    " from_warehouse_id VARCHAR(64))",
]
