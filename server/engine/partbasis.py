"""The basis of a plan made over partitions, for its next net change (SPEC §2, §6).

A net change reuses a run through its :class:`~.basis.PlanBasis`: the data
it planned, its result, the whole data set's front (input checks, SKU index,
graph, levels), its delayed dependent requirements and its netting's plan
messages, numbered by the whole data set's SKUs. A plan made over partitions
has no such run: each partition planned its own SKUs with masters of its
own, so its SKU numbers and its result's coded ids are its own.

So each partition sends, beside its result, the pieces only it knows, with
ids instead of its SKU numbers (:func:`part_pieces`): its delayed dependent
requirements and its netting's plan messages. They travel as two more
tables of its result (:data:`LATE`, :data:`NET_MESSAGES`), joined with the
others, and are taken out of the joined result (:func:`take_pieces`).

The rest is made when a net change first asks for it
(:meth:`PartitionedBasis.plan_basis`): the front of the whole data set,
about a quarter of an inline regeneration's time, then the pieces numbered
and the result's item and warehouse columns coded by the whole data set's
masters, as a run of the whole data set codes them. The partitioned run
itself does not compute the front: at 10M SKUs on 16 cores it takes longer
than the partitions' tasks, and a plan that is never changed would pay it
for nothing.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Mapping

import numpy as np

from masterplan.contract.coded import Coded, as_array
from masterplan.server.engine.arrays import gather, lookup
from masterplan.server.engine.basis import PlanBasis, message_skus, sorted_edges
from masterplan.server.engine.front import Phases, plan_front
from masterplan.server.engine.layers import PatchedTable
from masterplan.server.engine.messages import Messages
from masterplan.server.engine.skus import Masters
from masterplan.server.engine.types import PlanParams, ResultTable, TableMap

__all__ = [
    "LATE",
    "NET_MESSAGES",
    "PartitionedBasis",
    "RunBasis",
    "part_pieces",
    "take_pieces",
]

#: The partition result's table of its delayed dependent requirements.
LATE = "late_requirements"
#: The partition result's table of its netting's plan messages.
NET_MESSAGES = "netting_messages"

#: Output tables whose item and warehouse columns a net change reads as SKU numbers.
_SKU_TABLES = ("planned_orders", "pegging", "action_messages", "delay_messages")


def part_pieces(basis: PlanBasis) -> dict[str, ResultTable]:
    """A partition's :data:`LATE` and :data:`NET_MESSAGES` tables, from its
    own basis: SKU numbers spelled as item and warehouse ids."""
    m = basis.front.index.masters
    late = basis.late.table()
    parent_item, parent_wh = m.ids(np.asarray(late["parent"]))
    item, wh = m.ids(np.asarray(late["sku"]))
    return {
        LATE: {
            "parent_item_id": parent_item,
            "parent_warehouse_id": parent_wh,
            "item_id": item,
            "warehouse_id": wh,
            "ref": late["ref"],
            "futures": late["futures"],
        },
        NET_MESSAGES: dict(basis.net_messages.table()),
    }


def take_pieces(
    tables: Mapping[str, ResultTable],
) -> tuple[dict[str, ResultTable], dict[str, ResultTable]]:
    """The joined result's output tables, and the pieces :func:`part_pieces` made."""
    out = {name: t for name, t in tables.items() if name not in (LATE, NET_MESSAGES)}
    return out, {LATE: tables[LATE], NET_MESSAGES: tables[NET_MESSAGES]}


class PartitionedBasis:
    """What a net change reuses of a plan made over partitions; the
    :class:`~.basis.PlanBasis` itself is made on first use, once.

    Parameters
    ----------
    data : TableMap
        The input tables the run planned (held, not copied).
    plan_date, default_group
        The run's parameters.
    tables : dict of ResultTable
        The run's joined output tables.
    pieces : dict of ResultTable
        The partitions' :data:`LATE` and :data:`NET_MESSAGES` rows, joined.
    """

    def __init__(
        self,
        data: TableMap,
        plan_date: dt.date,
        default_group: str | None,
        tables: Mapping[str, ResultTable],
        pieces: Mapping[str, ResultTable],
    ) -> None:
        self.data = data
        self.plan_date = plan_date
        self.default_group = default_group
        self.tables = tables
        self._pieces = pieces
        self._basis: PlanBasis | None = None
        self._lock = threading.Lock()

    @property
    def arrays_nbytes(self) -> int:
        """Bytes held beyond the data and result tables (see
        :attr:`PlanBasis.arrays_nbytes`): the pieces' until the basis is
        made, then the basis's and its recoded id columns'."""
        basis = self._basis
        if basis is None:
            held = 0
            for table in self._pieces.values():
                for column in table.values():
                    values = as_array(column)
                    # Object text: the pointer and a short Python string each.
                    held += values.nbytes + (80 * len(values) if values.dtype.hasobject else 0)
            return held
        codes = 0
        for name in _SKU_TABLES:
            for col in ("item_id", "warehouse_id"):
                column = basis.tables[name][col]
                if isinstance(column, Coded):
                    codes += column.codes.nbytes
        return basis.arrays_nbytes + codes

    def plan_basis(self, clock: Phases) -> PlanBasis:
        """The :class:`~.basis.PlanBasis` a run of the whole data set would
        have kept (its result's rows in the partitions' order); the first
        call makes it, its front's phases timed by ``clock``."""
        with self._lock:
            if self._basis is None:
                self._basis = self._make(clock)
                self._pieces = {}
            return self._basis

    def _make(self, clock: Phases) -> PlanBasis:
        params = PlanParams(self.plan_date, self.default_group)
        front = plan_front(self.data, params, clock)
        m, s = front.index.masters, front.graph.settings
        tables = {
            name: _coded_by(m, table) if name in _SKU_TABLES else table
            for name, table in self.tables.items()
        }
        late_rows = self._pieces[LATE]
        late_sku = m.known_sku(_text(late_rows["item_id"]), _text(late_rows["warehouse_id"]))
        late = {
            "parent": m.known_sku(
                _text(late_rows["parent_item_id"]), _text(late_rows["parent_warehouse_id"])
            ),
            "sku": late_sku,
            "ref": late_rows["ref"],
            "futures": late_rows["futures"],
        }
        messages = Messages(
            **{name: _text(col) for name, col in self._pieces[NET_MESSAGES].items()}
        )
        src, dst = sorted_edges(s.sku[front.graph.src], s.sku[front.graph.dst])
        return PlanBasis(
            data=self.data,
            plan_date=self.plan_date,
            default_group=self.default_group,
            tables=tables,
            sku=s.sku.copy(),
            edge_src=src,
            edge_dst=dst,
            late=PatchedTable.of(late, late_sku, len(m.item_ids) * m.n_wh),
            net_messages=messages,
            net_message_sku=message_skus(m, messages),
            front=front,
        )


def _text(column: np.ndarray | Coded) -> np.ndarray:
    """``column`` as an object array of ``str`` (``None`` for NULL)."""
    return np.asarray(as_array(column), dtype=object)


def _coded_by(m: Masters, table: ResultTable) -> ResultTable:
    """``table`` with ``item_id`` and ``warehouse_id`` coded by positions among
    ``m``'s ids, which a net change reads as SKU numbers (:func:`~.stitch.row_skus`)."""
    out = dict(table)
    for col, ids, position in (
        ("item_id", m.item_ids, m.item_pos),
        ("warehouse_id", m.warehouse_ids, m.wh_pos),
    ):
        column = table[col]
        if not isinstance(column, Coded):
            continue
        where = lookup(_text(column.values), position)
        out[col] = Coded(gather(where, column.codes, -1), ids)
    return out


#: What a run keeps for its plan's next net change.
RunBasis = PlanBasis | PartitionedBasis
