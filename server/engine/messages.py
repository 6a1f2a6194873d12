"""Plan messages (SPEC §5.9) as immutable blocks of ``plan_messages`` rows.

Each phase that finds something to report returns its messages as one
:class:`Messages` value; the run joins them in phase order, so that the
table lists validation first, then SKU settings, cycles, firmed orders and
planned orders, as the phases met them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from masterplan.server.engine.types import Table

__all__ = ["Messages"]


def _none() -> np.ndarray:
    return np.empty(0, dtype=object)


@dataclass(frozen=True, slots=True)
class Messages:
    """Rows of the ``plan_messages`` table.

    Attributes
    ----------
    severity, code : object (M,)
        ``"warning"`` or ``"error"``; the stable message code (§5.9).
    item_id, warehouse_id : object (M,)
        The SKU the message is about; ``None`` where it names none.
    text : object (M,)
        The explanation, for people.
    """

    severity: np.ndarray = field(default_factory=_none)
    code: np.ndarray = field(default_factory=_none)
    item_id: np.ndarray = field(default_factory=_none)
    warehouse_id: np.ndarray = field(default_factory=_none)
    text: np.ndarray = field(default_factory=_none)

    @classmethod
    def of(
        cls,
        severity: str,
        code: str,
        item_id: np.ndarray,
        warehouse_id: np.ndarray,
        text: np.ndarray,
    ) -> Messages:
        """Messages of one severity and code, one per entry of ``text``."""
        n = len(text)
        return cls(
            np.full(n, severity, dtype=object),
            np.full(n, code, dtype=object),
            np.asarray(item_id, dtype=object),
            np.asarray(warehouse_id, dtype=object),
            np.asarray(text, dtype=object),
        )

    @classmethod
    def concat(cls, parts: Iterable[Messages]) -> Messages:
        """The rows of ``parts``, in order."""
        rows = [p for p in parts if len(p)]
        if not rows:
            return cls()
        return cls(
            np.concatenate([p.severity for p in rows]),
            np.concatenate([p.code for p in rows]),
            np.concatenate([p.item_id for p in rows]),
            np.concatenate([p.warehouse_id for p in rows]),
            np.concatenate([p.text for p in rows]),
        )

    def __len__(self) -> int:
        return len(self.text)

    def table(self) -> Table:
        """The ``plan_messages`` columns (without ``run_id``)."""
        return {
            "severity": self.severity,
            "code": self.code,
            "item_id": self.item_id,
            "warehouse_id": self.warehouse_id,
            "text": self.text,
        }
