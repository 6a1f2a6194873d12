"""The plan's output tables: planned orders, pegging, action, delay and plan messages.

Id, kind and ref columns are :class:`~masterplan.contract.coded.Coded` into
arrays the run already holds (a planned order's id once per order, every
requirement ref once per code), so no text is gathered row by row; the
codec or :meth:`~masterplan.server.engine.types.PlanResult.arrays` decodes
them where plain arrays are wanted.
"""

from __future__ import annotations

import numpy as np

from masterplan.contract.coded import Coded
from masterplan.server.engine.actions import ActionMessages
from masterplan.server.engine.arrays import NO_DATE, as_objects, as_text, gather, text, to_datetime
from masterplan.server.engine.delays import Delays
from masterplan.server.engine.kinds import (
    K_FC,
    K_SO,
    K_SS,
    K_TRI,
    ORDER_PURCHASE,
    ORDER_TRANSFER,
    ORDER_TYPE_NAMES,
    R_FIRM,
    REC_KIND_NAMES,
    REQ_KIND_NAMES,
)
from masterplan.server.engine.messages import Messages
from masterplan.server.engine.netting import Netting
from masterplan.server.engine.orderrefs import OrderRefs
from masterplan.server.engine.skus import Masters, SkuSettings, sku_ids
from masterplan.server.engine.types import ResultTable

__all__ = ["output_tables"]


def output_tables(
    m: Masters,
    s: SkuSettings,
    refs: OrderRefs,
    net: Netting,
    late: Delays,
    actions: ActionMessages,
    messages: Messages,
) -> dict[str, ResultTable]:
    """The five output tables of a run, without ``run_id``.

    Parameters
    ----------
    m, s : Masters, SkuSettings
        The run's masters and SKUs.
    refs : OrderRefs
        Spells planned order ids and requirement refs.
    net : Netting
        Receipts, requirements, planned orders and pegging.
    late : Delays
        Futures of the requirements.
    actions : ActionMessages
        Action messages of existing receipts.
    messages : Messages
        Every plan message of the run, in phase order.
    """
    rec, po, req = net.receipts, net.orders, net.requirements
    tables: dict[str, ResultTable] = {}
    po_sidx = po.sidx
    otype = po.otype
    # Planned order ids and refs are spelled once, here. ``PL:{id}`` is
    # spelled into the supply refs' dictionary, and the requirement refs
    # read it there: a copy of its own would be held to the end of the
    # output, the run's peak (0.17 KB per SKU).
    ids = refs.ids(po_sidx, po.num)
    n_rec = len(rec.ref)
    supply_refs = np.concatenate([as_text(rec.ref), text("PL:", ids)])
    req_refs = refs.values(net.book, supply_refs[n_rec:])
    tables["planned_orders"] = {
        "planned_order_id": ids,
        "item_id": Coded(s.item[po_sidx], m.item_ids),
        "warehouse_id": Coded(s.wh[po_sidx], m.warehouse_ids),
        "order_type": Coded(otype, ORDER_TYPE_NAMES),
        "qty": po.qty,
        "order_date": to_datetime(po.order),
        "due_date": to_datetime(po.due),
        "requirement_date": to_datetime(po.netting),
        "from_warehouse_id": Coded(
            np.where((otype == ORDER_TRANSFER) & (po.source >= 0), po.source % m.n_wh, -1),
            m.warehouse_ids,
        ),
        "vendor_id": Coded(np.where(otype == ORDER_PURCHASE, po_sidx, -1), s.vendor),
        "bom_id": Coded(po.bom, m.boms["bom_id"]),
        "firmed": po.firmed.astype(np.float64),
    }
    tables["pegging"] = _pegging_table(m, s, net, supply_refs, req_refs)
    tables["action_messages"] = _action_table(m, s, net, actions)
    # Delay messages for delayed so, fc, tri and ss requirements.
    dm = np.flatnonzero(late.delayed & np.isin(req.kind, [K_SO, K_FC, K_TRI, K_SS]))
    fut = late.futures[dm]
    never = fut >= NO_DATE
    d_sidx = req.sidx[dm]
    tables["delay_messages"] = {
        "demand_kind": Coded(req.kind[dm], REQ_KIND_NAMES),
        "demand_ref": Coded(req.ref[dm], req_refs),
        "item_id": Coded(s.item[d_sidx], m.item_ids),
        "warehouse_id": Coded(s.wh[d_sidx], m.warehouse_ids),
        "requirement_date": to_datetime(req.date[dm]),
        "futures_date": to_datetime(np.where(never, NO_DATE, fut)),
        "delay_days": np.where(never, np.nan, (fut - req.date[dm]).astype(np.float64)),
    }
    tables["plan_messages"] = {**messages.table()}
    return tables


def _pegging_table(
    m: Masters, s: SkuSettings, net: Netting, supply_refs: np.ndarray, req_refs: np.ndarray
) -> ResultTable:
    """The ``pegging`` columns. A supply is a receipt (``src >= 0``) or
    planned order ``-1 - src``, whose ref is ``supply_refs[n_rec + k]``.

    The table has a row per take, the most rows of the run; each row-sized
    index is dropped as soon as the columns that read it are made, so that
    no more than one is held beside the table (the output is the run's
    peak).
    """
    rec, po, req, peg = net.receipts, net.orders, net.requirements, net.pegging
    src, rq = peg.src, peg.req
    is_rec = src >= 0
    table: ResultTable = {}
    r_sidx = req.sidx[rq]
    table["item_id"] = Coded(s.item[r_sidx], m.item_ids)
    table["warehouse_id"] = Coded(s.wh[r_sidx], m.warehouse_ids)
    del r_sidx
    ri = np.where(is_rec, src, -1)
    # A planned order's supply kind is "pl", the name of firmed receipts.
    table["supply_kind"] = Coded(np.where(is_rec, gather(rec.kind, ri, 0), R_FIRM), REC_KIND_NAMES)
    day = gather(rec.date, ri, 0)
    del ri
    table["supply_ref"] = Coded(np.where(is_rec, src, len(rec.ref) - 1 - src), supply_refs)
    pk = np.where(is_rec, -1, -1 - src)
    table["supply_date"] = to_datetime(np.where(is_rec, day, gather(po.netting, pk, 0)))
    del pk, day
    table["demand_kind"] = Coded(req.kind[rq], REQ_KIND_NAMES)
    table["demand_ref"] = Coded(req.ref[rq], req_refs)
    table["demand_date"] = to_datetime(req.date[rq])
    table["qty"] = peg.qty
    return table


def _action_table(m: Masters, s: SkuSettings, net: Netting, actions: ActionMessages) -> ResultTable:
    """The ``action_messages`` columns: the receipt's kind, ref, SKU, date and quantity."""
    rec = net.receipts
    i = actions.receipt
    item, wh = sku_ids(m, s, rec.sidx[i])
    return {
        "supply_kind": REC_KIND_NAMES[rec.kind[i]],
        "supply_ref": as_objects(rec.ref[i]),
        "item_id": item,
        "warehouse_id": wh,
        "action": actions.action,
        "receipt_date": to_datetime(rec.date[i]),
        "receipt_qty": rec.qty[i],
        "suggested_date": to_datetime(actions.suggested_date),
        "suggested_qty": actions.suggested_qty,
    }
