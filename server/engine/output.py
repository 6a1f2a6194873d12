"""The plan's output tables: planned orders, pegging, action, delay and plan messages.

Id, kind and ref columns are :class:`~masterplan.contract.coded.Coded` into
arrays the run already holds (a planned order's id once per order, every
requirement ref once per code), so no text is gathered row by row; the
codec or :meth:`~masterplan.server.engine.types.PlanResult.arrays` decodes
them where plain arrays are wanted.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np

from masterplan.contract.coded import CODE_DTYPE, Coded
from masterplan.server.engine.actions import ActionMessages
from masterplan.server.engine.arrays import (
    NO_DATE,
    as_objects,
    gather,
    narrow,
    to_datetime,
)
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
from masterplan.server.engine.orders import PlannedOrders
from masterplan.server.engine.requirements import Receipts
from masterplan.server.engine.skus import Masters, SkuSettings, sku_ids
from masterplan.server.engine.types import ResultTable

__all__ = ["Handed", "output_tables"]

#: The output tables in the order a run lists them.
_TABLES = ("planned_orders", "pegging", "action_messages", "delay_messages", "plan_messages")


@dataclass(slots=True)
class Handed:
    """The netting and delays a run's output is made from, handed over.

    :func:`output_tables` takes them out of here and drops each array once
    the columns that read it are made: the output is the run's peak, and
    the netting's arrays are most of what the run holds beside the tables
    it builds. A caller that keeps its own references (a run that keeps its
    basis) frees nothing early and gets the same tables.
    """

    net: Netting | None
    late: Delays | None


def output_tables(
    m: Masters,
    s: SkuSettings,
    refs: OrderRefs,
    handed: Handed,
    actions: ActionMessages,
    messages: Messages,
    delays_of: Collection[str] = (),
) -> tuple[dict[str, ResultTable], ResultTable | None]:
    """The five output tables of a run, without ``run_id``; and, where
    ``delays_of`` names requirement refs, the delays of those of them that
    are delayed and of a kind without delay messages (:func:`_named_delays`).

    Parameters
    ----------
    m, s : Masters, SkuSettings
        The run's masters and SKUs.
    refs : OrderRefs
        Spells planned order ids and requirement refs.
    handed : Handed
        The netting (receipts, requirements, planned orders and pegging) and
        the requirements' futures; emptied.
    actions : ActionMessages
        Action messages of existing receipts.
    messages : Messages
        Every plan message of the run, in phase order.
    delays_of : collection of str
        Requirement refs whose delays are asked for, whatever their kind.
    """
    net, late = handed.net, handed.late
    if net is None or late is None:
        raise ValueError("the netting and delays were already handed to an output")
    handed.net = handed.late = None
    rec, po, req, peg, book = net.receipts, net.orders, net.requirements, net.pegging, net.book
    del net
    tables: dict[str, ResultTable] = {}
    # The requirements' columns that the delay messages and the pegging
    # read; the rest (the shortfalls, the causes) goes before the refs are
    # spelled, the output's peak.
    pool = {"sidx": req.sidx, "kind": req.kind, "ref": req.ref, "date": req.date}
    del req
    # Planned order ids and refs are spelled once, here. ``PL:{id}`` is
    # spelled into the supply refs' dictionary, and the requirement refs
    # read it there: a copy of its own would be held to the end of the
    # output, the run's peak (0.17 KB per SKU).
    ids = refs.ids(po.sidx, po.num)
    n_rec = len(rec.ref)
    supply_refs = refs.supply_values(rec.ref, po.sidx, po.num)
    req_refs = refs.values(book, supply_refs[n_rec:], po.sidx, po.num)
    del book
    refs.release()
    tables["action_messages"] = _action_table(m, s, rec, actions)
    tables["delay_messages"] = _delay_table(m, s, pool, late, req_refs)
    named = _named_delays(m, s, pool, late, req_refs, delays_of) if delays_of else None
    del late
    tables["planned_orders"] = _order_table(m, s, po, ids)
    pool.update(
        peg_req=peg.req,
        peg_src=peg.src,
        peg_qty=peg.qty,
        po_netting=po.netting,
        rec_kind=rec.kind,
        rec_date=rec.date,
    )
    del po, peg, rec
    tables["pegging"] = _pegging_table(m, s, pool, supply_refs, req_refs)
    tables["plan_messages"] = {**messages.table()}
    return {name: tables[name] for name in _TABLES}, named


def _code_type(values: np.ndarray) -> np.dtype:
    """The narrowest signed integer type of codes into ``values``.

    A plan holds its coded columns while it is current, and the previous
    plan is held while the next run builds its own: a warehouse or kind
    code in one byte a row rather than four took 0.12 KB per SKU off each
    result of the benchmark's model. The count of values fits too: readers
    of the codes put NULL's entry there (:meth:`Coded.to_array`).
    """
    n = len(values)
    for dtype in (np.int8, np.int16):
        if n < np.iinfo(dtype).max:
            return np.dtype(dtype)
    return CODE_DTYPE


def _coded(codes: np.ndarray, values: np.ndarray) -> Coded:
    """``codes`` into ``values``, in :func:`_code_type`."""
    return Coded(codes.astype(_code_type(values), copy=False), values)


def _sku_coded(per_sku: np.ndarray, sidx: np.ndarray, values: np.ndarray) -> Coded:
    """The codes ``per_sku`` (an item or warehouse per SKU) of rows whose SKU
    positions are ``sidx``: gathered in :func:`_code_type`, with no wider copy."""
    return Coded(per_sku.astype(_code_type(values), copy=False)[sidx], values)


def _order_table(m: Masters, s: SkuSettings, po: PlannedOrders, ids: np.ndarray) -> ResultTable:
    """The ``planned_orders`` columns."""
    po_sidx = po.sidx
    otype = po.otype
    return {
        "planned_order_id": ids,
        "item_id": _sku_coded(s.item, po_sidx, m.item_ids),
        "warehouse_id": _sku_coded(s.wh, po_sidx, m.warehouse_ids),
        "order_type": _coded(otype, ORDER_TYPE_NAMES),
        "qty": po.qty,
        "order_date": to_datetime(po.order),
        "due_date": to_datetime(po.due),
        "requirement_date": to_datetime(po.netting),
        "from_warehouse_id": _coded(
            np.where((otype == ORDER_TRANSFER) & (po.source >= 0), po.source % m.n_wh, -1),
            m.warehouse_ids,
        ),
        "vendor_id": _coded(np.where(otype == ORDER_PURCHASE, po_sidx, -1), s.vendor),
        "bom_id": _coded(po.bom, m.boms["bom_id"]),
        "firmed": po.firmed.astype(np.float64),
    }


#: The requirement kinds that get delay messages (§5.7).
_DELAY_MESSAGE_KINDS = [K_SO, K_FC, K_TRI, K_SS]


def _delay_table(
    m: Masters, s: SkuSettings, req: dict[str, np.ndarray], late: Delays, req_refs: np.ndarray
) -> ResultTable:
    """The ``delay_messages`` columns: delayed so, fc, tri and ss requirements.
    ``req`` holds the requirements' ``sidx``, ``kind``, ``ref`` and ``date``."""
    dm = np.flatnonzero(late.delayed & np.isin(req["kind"], _DELAY_MESSAGE_KINDS))
    return _delay_rows(m, s, req, late, req_refs, dm)


def _named_delays(
    m: Masters,
    s: SkuSettings,
    req: dict[str, np.ndarray],
    late: Delays,
    req_refs: np.ndarray,
    named: Collection[str],
) -> ResultTable:
    """The ``delay_messages`` columns of the delayed requirements that
    ``named`` names and that get no delay message (``prdl``, ``pl``): their
    futures dates are computed as every requirement's (§5.7) but written
    nowhere, and a simulation that promises such a demand needs them."""
    wanted = np.array(sorted(named), dtype=object)
    codes = np.flatnonzero(np.isin(req_refs, wanted))
    rows = late.delayed & np.isin(req["ref"], codes)
    rows &= ~np.isin(req["kind"], _DELAY_MESSAGE_KINDS)
    return _delay_rows(m, s, req, late, req_refs, np.flatnonzero(rows))


def _delay_rows(
    m: Masters,
    s: SkuSettings,
    req: dict[str, np.ndarray],
    late: Delays,
    req_refs: np.ndarray,
    dm: np.ndarray,
) -> ResultTable:
    """The ``delay_messages`` columns of requirements ``dm``."""
    kind, date = req["kind"], req["date"]
    fut = late.futures[dm]
    never = fut >= NO_DATE
    d_sidx = req["sidx"][dm]
    return {
        "demand_kind": _coded(kind[dm], REQ_KIND_NAMES),
        "demand_ref": _coded(req["ref"][dm], req_refs),
        "item_id": _sku_coded(s.item, d_sidx, m.item_ids),
        "warehouse_id": _sku_coded(s.wh, d_sidx, m.warehouse_ids),
        "requirement_date": to_datetime(date[dm]),
        "futures_date": to_datetime(np.where(never, NO_DATE, fut)),
        "delay_days": np.where(never, np.nan, (fut - date[dm]).astype(np.float64)),
    }


def _pegging_table(
    m: Masters,
    s: SkuSettings,
    pool: dict[str, np.ndarray],
    supply_refs: np.ndarray,
    req_refs: np.ndarray,
) -> ResultTable:
    """The ``pegging`` columns. A supply is a receipt (``src >= 0``) or
    planned order ``-1 - src``, whose ref is ``supply_refs[n_rec + k]``.

    ``pool`` holds the arrays the table reads (the requirements', the
    pegging's, the planned orders' netting dates and the receipts' kinds and
    dates) and is emptied: the table has a row per take, the most rows of
    the run, and each array and row-sized index is dropped as soon as the
    columns that read it are made.
    """
    src, rq = pool.pop("peg_src"), pool.pop("peg_req")
    is_rec = src >= 0
    table: ResultTable = {}
    r_sidx = pool.pop("sidx")[rq]
    table["item_id"] = _sku_coded(s.item, r_sidx, m.item_ids)
    table["warehouse_id"] = _sku_coded(s.wh, r_sidx, m.warehouse_ids)
    del r_sidx
    ri = np.where(is_rec, src, -1)
    rec_kind, rec_date = pool.pop("rec_kind"), narrow(pool.pop("rec_date"))
    # A planned order's supply kind is "pl", the name of firmed receipts.
    table["supply_kind"] = _coded(np.where(is_rec, gather(rec_kind, ri, 0), R_FIRM), REC_KIND_NAMES)
    day = gather(rec_date, ri, 0)
    del ri
    table["supply_ref"] = _coded(np.where(is_rec, src, len(rec_kind) - 1 - src), supply_refs)
    pk = np.where(is_rec, -1, -1 - src)
    del src, is_rec
    table["supply_date"] = to_datetime(np.where(pk < 0, day, gather(pool.pop("po_netting"), pk, 0)))
    del pk, day
    table["demand_kind"] = _coded(pool.pop("kind")[rq], REQ_KIND_NAMES)
    table["demand_ref"] = _coded(pool.pop("ref")[rq], req_refs)
    table["demand_date"] = to_datetime(pool.pop("date")[rq])
    table["qty"] = pool.pop("peg_qty")
    return table


def _action_table(
    m: Masters, s: SkuSettings, rec: Receipts, actions: ActionMessages
) -> ResultTable:
    """The ``action_messages`` columns: the receipt's kind, ref, SKU, date and quantity."""
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
