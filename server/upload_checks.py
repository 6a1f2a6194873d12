"""What an upload's answer says of the data set it leaves (SPEC §3: the server
validates and answers with counts and warnings).

The input checks of §5.9 run on the data set as the upload leaves it (a
delta's result, not the delta alone: a changed item can make rows it never
touched name an unknown one), and the answer carries their findings in the
order a run reports them as plan messages: the first
:data:`MAX_UPLOAD_WARNINGS`, and a count per code of all of them. An
integrator learns at the upload that a row names an unknown item, rather
than from the plan's messages after a run. A client that plans next (the
connector) asks to skip them: the run says the same, and a large data set
is checked once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from masterplan.contract.coded import as_array
from masterplan.contract.columns import TableMap
from masterplan.contract.views import PlanMessageRow
from masterplan.server.engine import input_checks

__all__ = ["MAX_UPLOAD_WARNINGS", "UploadWarnings", "upload_warnings"]

#: The findings an upload's answer lists; the counts cover every one.
MAX_UPLOAD_WARNINGS = 100


@dataclass(frozen=True, slots=True)
class UploadWarnings:
    """The findings of the input checks on one data set.

    Attributes:
        first: The first :data:`MAX_UPLOAD_WARNINGS` findings, as a run's
            ``plan_messages`` rows, in the order it reports them.
        counts: Every finding, per code.
    """

    first: tuple[PlanMessageRow, ...] = ()
    counts: Mapping[str, int] = field(default_factory=dict)


def upload_warnings(tables: TableMap) -> UploadWarnings:
    """The input checks' findings on the data set ``tables``."""
    messages = {name: as_array(column) for name, column in input_checks(tables).items()}
    codes = messages["code"]
    if len(codes) == 0:
        return UploadWarnings()
    names, counts = np.unique(codes.astype(object), return_counts=True)
    head = {name: column[:MAX_UPLOAD_WARNINGS].tolist() for name, column in messages.items()}
    first = tuple(
        PlanMessageRow(
            str(head["severity"][i]),
            str(head["code"][i]),
            _text(head["item_id"][i]),
            _text(head["warehouse_id"][i]),
            str(head["text"][i]),
        )
        for i in range(len(head["code"]))
    )
    return UploadWarnings(first, {str(n): int(c) for n, c in zip(names, counts, strict=True)})


def _text(value: object) -> str | None:
    return None if value is None or value != value else str(value)
