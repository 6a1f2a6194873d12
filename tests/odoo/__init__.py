"""An Odoo database in miniature: the tables the Odoo source profiles read, as
Odoo's ORM creates them (:mod:`tests.odoo.schema`), and a small
manufacturer's data written into them, with the same data written by hand
as reference-schema rows (:mod:`tests.odoo.data`)."""
