"""§5.8 Action messages (server/engine/actions.py) on hand-made receipts,
requirements and takes."""

from __future__ import annotations

import numpy as np
import pytest

from masterplan.server.engine.actions import action_messages
from masterplan.server.engine.arrays import NO_DATE
from masterplan.server.engine.kinds import R_FIRM, R_OH, R_PO, R_PRD, R_TRR
from masterplan.server.engine.netting import Pegging, WalkedRequirements
from masterplan.server.engine.requirements import Receipts
from masterplan.server.engine.skus import SkuSettings
from tests.engine.phases import T0, day, run, sales

Action = tuple[str, int | None, float | None]


@pytest.fixture(scope="module")
def settings() -> SkuSettings:
    """One SKU: coverage fence 30 days, postpone tolerance 3 days."""
    r = run(
        {
            "coverage_groups": [
                {"group_id": "G", "coverage_time_fence_days": 30, "postpone_tolerance_days": 3}
            ],
            "items": [{"item_id": "A", "coverage_group_id": "G"}],
            "sales_lines": [sales("A", 1, 0)],
        }
    )
    return r.settings


@pytest.mark.parametrize(
    ("kind", "date", "takes", "expected"),
    [
        (R_PO, 10, [], [("cancel", None, 0.0)]),
        (R_PRD, 10, [], [("cancel", None, 0.0)]),
        (R_TRR, 10, [], [("cancel", None, 0.0)]),
        (R_PO, 10, [(10, 6.0)], [("decrease", None, 6.0)]),
        (R_PO, 10, [(10, 10.0)], []),
        (R_PO, 10, [(5, 10.0)], [("advance", 5, None)]),
        (R_PO, 10, [(13, 10.0)], []),  # within the tolerance
        (R_PO, 10, [(14, 10.0)], [("postpone", 14, None)]),
        # The earliest requirement that took decides; quantity and date messages both.
        (R_PO, 10, [(20, 2.0), (14, 4.0)], [("decrease", None, 6.0), ("postpone", 14, None)]),
        (R_PO, 31, [], []),  # outside the coverage fence
        (R_OH, 0, [], []),  # not an existing order
        (R_FIRM, 10, [], []),
    ],
)
def test_action_messages(
    settings: SkuSettings,
    kind: int,
    date: int,
    takes: list[tuple[int, float]],
    expected: list[Action],
) -> None:
    rec = Receipts(
        sku=settings.sku[:1],
        sidx=np.zeros(1, dtype=np.int64),
        date=np.array([day(date)]),
        qty=np.array([10.0]),
        kind=np.array([kind]),
        ref=np.array(["PO:P/1"], dtype=np.dtypes.StringDType()),
    )
    n = len(takes)
    req = WalkedRequirements(
        date=np.array([day(d) for d, _ in takes], dtype=np.int64),
        kind=np.zeros(n, dtype=np.int64),
        ref=np.arange(n, dtype=np.int64),
        cause=np.full(n, -1, dtype=np.int64),
        short=np.zeros(n),
        sidx=np.zeros(n, dtype=np.int64),
    )
    peg = Pegging(
        req=np.arange(n, dtype=np.int64),
        src=np.zeros(n, dtype=np.int64),
        qty=np.array([q for _, q in takes], dtype=np.float64),
    )
    got = action_messages(rec, req, peg, settings, T0)
    assert got.receipt.tolist() == [0] * len(expected)
    actual = [
        (
            a,
            None if d == NO_DATE else d - T0,
            None if np.isnan(q) else q,
        )
        for a, d, q in zip(
            got.action.tolist(),
            got.suggested_date.tolist(),
            got.suggested_qty.tolist(),
            strict=True,
        )
    ]
    assert actual == expected


def test_receipts_taken_by_planned_orders_only_are_cancelled(settings: SkuSettings) -> None:
    # A take from a planned order (src < 0) is no take from the receipt.
    rec = Receipts(
        sku=settings.sku[:1],
        sidx=np.zeros(1, dtype=np.int64),
        date=np.array([day(10)]),
        qty=np.array([10.0]),
        kind=np.array([R_PO]),
        ref=np.array(["PO:P/1"], dtype=np.dtypes.StringDType()),
    )
    req = WalkedRequirements(
        *(np.array([x], dtype=np.int64) for x in (day(10), 0, 0, -1)),
        short=np.zeros(1),
        sidx=np.zeros(1, dtype=np.int64),
    )
    peg = Pegging(np.array([0]), np.array([-1]), np.array([10.0]))
    assert action_messages(rec, req, peg, settings, T0).action.tolist() == ["cancel"]
