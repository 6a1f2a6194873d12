"""Simulation (what-if, capable-to-promise): a delta planned without being applied (SPEC §6).

A simulation takes the plan's data set as the store holds it, applies a
delta to a copy, plans the copy with the engine as RunPlan does (in a worker
thread, cancellable, within the tenant's engine seconds) and answers two
questions: what would the plan's result tables look like (the difference to
the result of the plan's newest succeeded run), and when could each named
demand be delivered (its futures date, SPEC §5.7, with the supplies pegged to
it). Nothing is stored: not the data set, not a run, not a result.

The domain part (:func:`simulate`, :func:`promises`) knows neither gRPC nor
SQL; :func:`simulation_to_proto` is the wire form of its answer.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from masterplan.codec import encode_table, table_nbytes
from masterplan.contract.coded import Coded, as_array
from masterplan.contract.columns import Table, TableMap, table_length
from masterplan.contract.difference import Difference, difference
from masterplan.contract.tables import PLAN_OUTPUT_TABLES
from masterplan.server.delta import apply_delta
from masterplan.server.engine import NetChange, PlanParams, PlanResult, RunBasis, net_change
from masterplan.server.engine.arrays import number_text
from masterplan.server.engine.types import ResultTable
from masterplan.server.runs import Compute, regenerate_job, run_engine
from masterplan.server.store import RunRecord
from masterplan.v1 import columnar_pb2
from masterplan.v1 import planning_pb2 as pb

__all__ = [
    "Baseline",
    "Promise",
    "PromisedSupply",
    "Simulation",
    "baseline",
    "promises",
    "simulate",
    "simulation_to_proto",
]

#: The refs of the demand kinds that get no delay message (§5.7): production
#: order lines (``prdl``) and planned orders' dependent requirements (``pl``).
_NO_DELAY_MESSAGE_REFS = ("PRDL:", "PL:")

#: ``SO:{order_id}/{line_no}``: the ref of a sales line (SPEC §4). The order
#: id may hold ``/``; the line number is what follows the last one.
_SALES_REF = re.compile(r"^SO:(?P<order>.*)/(?P<line>[^/]*)$")


@dataclass(frozen=True, slots=True)
class Baseline:
    """What a simulation starts from besides the data set: the plan's newest succeeded run.

    Attributes:
        run_id: That run's id; empty when the plan has no succeeded run or
            the store no longer holds its results.
        plan_date: Its plan date; None without a run.
        default_group: Its default coverage group, when the run record
            keeps one.
        tables: Its result tables when the store still holds them; None
            otherwise (the difference is then to an empty plan).
        basis: What the engine kept of it, for a net change; None when the
            store no longer holds it.
        dataset_version: The version of the data set it planned.
    """

    run_id: str = ""
    plan_date: dt.date | None = None
    default_group: str | None = None
    tables: Mapping[str, ResultTable] | None = None
    basis: RunBasis | None = None
    dataset_version: int | None = None


def baseline(runs: Iterable[RunRecord]) -> Baseline:
    """The newest succeeded run of ``runs`` (newest first, as the store lists them).

    The results are read once: the store may drop them meanwhile (a newer
    run succeeds), and the simulation then still compares with what it read.
    """
    for rec in runs:
        if rec.state != "SUCCEEDED":
            continue
        results, basis = rec.results, rec.basis
        # RunRecord keeps a default group only where RunPlan records it.
        group = rec.default_group
        return Baseline(
            rec.run_id if results is not None else "",
            rec.plan_date,
            group if isinstance(group, str) else None,
            results,
            basis if results is not None else None,
            rec.dataset_version,
        )
    return Baseline()


@dataclass(frozen=True, slots=True)
class PromisedSupply:
    """A supply pegged to a promised demand.

    Attributes:
        kind: The supply's kind (``oh``, ``po``, ``pl``, ...).
        ref: Its ref (SPEC §4).
        date: Its netting date.
        qty: The quantity pegged to the demand.
        planned: A planned order of the simulated plan (a row of its
            ``planned_orders``, inside the firming fence or not); False for
            stock, existing orders and firmed planned orders of the input.
    """

    kind: str
    ref: str
    date: dt.date | None
    qty: float
    planned: bool


@dataclass(frozen=True, slots=True)
class Promise:
    """When a demand of the simulated plan can be covered (SPEC §5.7).

    Attributes:
        ref: The demand's ref as asked.
        unknown: The ref names no demand of the simulated plan; the other
            fields are empty then.
        item_id, warehouse_id: The demand's SKU.
        requirement_date: The date it asks for (effective: never before T0).
        futures_date: The date the plan covers it: ``requirement_date`` when
            it is on time, None when it is never covered.
        delay_days: Days late (0 on time or never covered).
        supplies: The supplies pegged to it, in pegging order.
    """

    ref: str
    unknown: bool = False
    item_id: str = ""
    warehouse_id: str = ""
    requirement_date: dt.date | None = None
    futures_date: dt.date | None = None
    delay_days: int = 0
    supplies: tuple[PromisedSupply, ...] = ()

    @property
    def never_covered(self) -> bool:
        """A known demand the plan never covers in full."""
        return not self.unknown and self.futures_date is None


@dataclass(frozen=True, slots=True)
class Simulation:
    """The answer of one simulation.

    Attributes:
        plan_date: The plan date it planned with.
        base_run_id: The run the difference is against; empty for an empty plan.
        result: The simulated plan: its re-planned rows only when it was planned
            as a net change of the base run (the rest is the base run's).
        difference: Its difference to the base run's result.
        promises: One per demand ref asked, in the order asked.
        seconds: Wall-clock seconds of the whole simulation.
    """

    plan_date: dt.date
    base_run_id: str
    result: PlanResult
    difference: Difference
    promises: list[Promise]
    seconds: float

    @property
    def nbytes(self) -> int:
        """Bytes the simulated plan and its difference hold until the answer is sent."""
        held = sum(table_nbytes(t) for t in self.result.tables.values())
        for tables in (self.difference.added, self.difference.removed):
            held += sum(table_nbytes(t) for t in tables.values())
        return held


def _copy(tables: TableMap) -> dict[str, Table]:
    """New dicts over the same arrays: the delta replaces tables and columns in
    the copy, never in the data set the store holds (whose arrays nobody
    writes into)."""
    return {name: dict(table) for name, table in tables.items()}


def simulate(
    tables: TableMap,
    upserts: Mapping[str, Table],
    deletes: Mapping[str, Table],
    params: PlanParams,
    demand_refs: Sequence[str],
    *,
    base: Baseline,
    cancel: threading.Event,
    max_seconds: float | None = None,
    version: int | None = None,
) -> Simulation:
    """Plan ``tables`` with a delta applied, and answer for ``demand_refs``.

    Args:
        tables: The plan's data set (§4 input tables); left as it is.
        upserts: Rows added or replacing the row with the same key, per table.
        deletes: Rows removed, named by their key, per table.
        params: Plan date, default group and the run's size limits.
        demand_refs: Demands to promise (SPEC §4 refs).
        base: The plan's newest succeeded run (:func:`baseline`).
        cancel: Set by anyone who wants the simulation to stop.
        max_seconds: The tenant's engine seconds.
        version: The version of ``tables``: when it is the one the base run
            planned, the engine is told which rows the delta changed instead
            of comparing the data sets.

    Raises:
        InvalidArgument: a bad delta (from :func:`server.delta.apply_delta`).
        Cancelled: ``cancel`` was set.
        QuotaExceeded: engine seconds, planned orders or result rows.
    """
    started = time.monotonic()
    data, counts = apply_delta(_copy(tables), dict(upserts), dict(deletes))
    job: Compute = regenerate_job
    basis = base.basis
    named = frozenset(r for r in demand_refs if r.startswith(_NO_DELAY_MESSAGE_REFS))
    if named:
        # A prdl or pl demand's futures date is written nowhere (no delay
        # message): the simulation plans the whole data set, asked for it.
        # A net change would re-plan its SKU only where the delta reaches it.
        params = dataclasses.replace(params, delays_of=named)
        basis = None
    if basis is not None:
        # The delta is all that changed since the base run only when the data
        # set is the one that run planned; otherwise the engine compares.
        touched = sources = None
        if version is not None and version == base.dataset_version:
            touched = {
                name: (counts.removed.get(name, {}), upserts.get(name, {}))
                for name in counts.upserted
            }
            sources = counts.sources

        def job(
            data: TableMap, params: PlanParams, hook: Callable[[str, float], None]
        ) -> NetChange:
            return net_change(
                basis, data, params, hook, touched=touched, keep=False, sources=sources
            )

    outcome: NetChange | None = None
    for event in run_engine(data, params, cancel, max_seconds, job):
        if isinstance(event, NetChange):
            outcome = event
    assert outcome is not None  # run_engine yields the result or raises
    result = outcome.result
    if outcome.before is not None and outcome.after is not None and base.tables is not None:
        # Rows outside the re-planned SKUs are the base run's: compare the rest.
        diff = difference(outcome.before, outcome.after)
    else:
        # No result held: the difference is to an empty plan (every row added).
        diff = difference(base.tables or {}, result.tables)
    answers = _promises(outcome, base, data, params.plan_date, demand_refs)
    return Simulation(
        params.plan_date,
        base.run_id,
        result,
        diff,
        answers,
        time.monotonic() - started,
    )


# -- promises --------------------------------------------------------------------
def _promises(
    outcome: NetChange, base: Baseline, data: TableMap, plan_date: dt.date, refs: Sequence[str]
) -> list[Promise]:
    """:func:`promises` of a simulated plan, read from the re-planned rows
    where a demand has rows there (a promised line always does), from the
    whole plan otherwise: a plan's pegging holds millions of rows. A net
    change's rows outside the re-planned SKUs are the base run's."""
    after = outcome.after
    if after is None:
        result = outcome.result
        return promises(result.tables, data, plan_date, refs, result.named_delays)
    whole = outcome.result.tables if outcome.whole else base.tables
    assert whole is not None  # a net change had a base run

    def demands(tables: Mapping[str, ResultTable]) -> set[str]:
        refs = as_array(tables["pegging"]["demand_ref"]).tolist()
        refs += as_array(tables["delay_messages"]["demand_ref"]).tolist()
        return {str(r) for r in refs}

    # A demand of a re-planned SKU is answered from the re-planned rows,
    # also when it has none there (it left the plan); any other demand's
    # rows are the base run's.
    replanned = demands(after) | (demands(outcome.before) if outcome.before else set())
    near = [r for r in refs if r in replanned]
    far = [r for r in refs if r not in replanned]
    answers = dict(zip(near, promises(after, data, plan_date, near), strict=True))
    if far:
        answers |= dict(zip(far, promises(whole, data, plan_date, far), strict=True))
    return [answers[r] for r in refs]


def _rows_naming(column: np.ndarray | Coded, wanted: set[str]) -> np.ndarray:
    """Positions of the rows whose value is in ``wanted``.

    A coded column is matched on its values, then on its integer codes: one
    pass over the distinct refs, never a string comparison per row.
    """
    if not wanted:
        return np.empty(0, dtype=np.int64)
    if isinstance(column, Coded):
        values = column.values.tolist()
        hits = np.array([i for i, v in enumerate(values) if v in wanted], dtype=np.int64)
        if len(hits) == 0:
            return np.empty(0, dtype=np.int64)
        return np.flatnonzero(np.isin(column.codes, hits))
    return np.flatnonzero(np.fromiter((v in wanted for v in column.tolist()), dtype=bool))


def _rows(table: Mapping[str, np.ndarray | Coded], index: np.ndarray) -> list[dict[str, object]]:
    """Rows ``index`` of ``table`` as plain values (a handful per promise)."""
    columns = {name: as_array(col[index]).tolist() for name, col in table.items()}
    return [{name: values[i] for name, values in columns.items()} for i in range(len(index))]


def _date(value: object) -> dt.date | None:
    """A date of a result row (numpy days come back as ``date``, NaT as None)."""
    return value if isinstance(value, dt.date) else None


def _planned_refs(planned_orders: Mapping[str, np.ndarray | Coded], refs: set[str]) -> set[str]:
    """Those of ``refs`` that name a planned order of the plan.

    ``planned_orders`` holds the run's own orders only, those inside the
    firming fence (``firmed`` 1) included: they are orders the plan adds
    too. A ``PL:`` supply not in it is a firmed planned order of the input.
    """
    ids = {ref[3:] for ref in refs if ref.startswith("PL:")}
    index = _rows_naming(planned_orders["planned_order_id"], ids)
    return {f"PL:{order_id}" for order_id in as_array(planned_orders["planned_order_id"][index])}


def _sales_line(data: TableMap, ref: str, plan_date: dt.date) -> Promise | None:
    """The promise of a sales line that the plan neither pegged nor delayed, or None.

    Such a line plans nothing: zero quantity (on time), or beyond its SKU's
    coverage time fence or dropped by the checks of §5.9 (never covered).
    """
    match = _SALES_REF.match(ref)
    if match is None:
        return None
    lines = data["sales_lines"]
    if table_length(lines) == 0:
        return None
    same = (lines["order_id"] == match["order"]) & (number_text(lines["line_no"]) == match["line"])
    index = np.flatnonzero(same)
    if len(index) == 0:
        return None
    row = _rows({k: lines[k] for k in ("item_id", "warehouse_id", "qty", "requested_date")}, index)
    first = row[0]
    requested = _date(first["requested_date"])
    date = max(requested, plan_date) if requested is not None else None
    qty = first["qty"]
    nothing_needed = isinstance(qty, float) and qty <= 0
    return Promise(
        ref,
        item_id=str(first["item_id"] or ""),
        warehouse_id=str(first["warehouse_id"] or ""),
        requirement_date=date,
        futures_date=date if nothing_needed else None,
    )


def promises(
    result: Mapping[str, ResultTable],
    data: TableMap,
    plan_date: dt.date,
    refs: Sequence[str],
    named_delays: ResultTable | None = None,
) -> list[Promise]:
    """The promise of each demand ref, from a plan's delay messages and pegging.

    A late demand has a delay message (SPEC §5.7): its futures date and
    delay. A demand pegged without one is on time: its futures date is its
    requirement date. Delay messages are written for kinds ``so``, ``fc``,
    ``tri`` and ``ss`` only; the delays of ``prdl`` and ``pl`` demands come
    in ``named_delays`` (:attr:`PlanResult.named_delays`, for a plan asked
    for them), without which such a demand reads as on time whenever it is
    pegged. A sales line of the data that the plan did not peg is answered
    from the data (:func:`_sales_line`); any other ref is ``unknown``.

    Args:
        result: The plan's output tables (text columns may be coded).
        data: The input tables the plan was made from.
        plan_date: The plan's T0.
        refs: Demand refs, answered in this order (repeats answered again).
        named_delays: The delays of the plan's delayed ``prdl`` and ``pl``
            requirements among ``refs``, in the delay messages' columns.
    """
    wanted = set(refs)
    delays = result["delay_messages"]
    pegging = result["pegging"]
    delay_rows = _rows(delays, _rows_naming(delays["demand_ref"], wanted))
    if named_delays is not None:
        delay_rows += _rows(named_delays, _rows_naming(named_delays["demand_ref"], wanted))
    peg_rows = _rows(pegging, _rows_naming(pegging["demand_ref"], wanted))
    late = {str(r["demand_ref"]): r for r in delay_rows}
    pegged: dict[str, list[dict[str, object]]] = {}
    for r in peg_rows:
        pegged.setdefault(str(r["demand_ref"]), []).append(r)
    planned = _planned_refs(
        result["planned_orders"],
        {str(r["supply_ref"]) for r in peg_rows if r["supply_kind"] == "pl"},
    )
    out: list[Promise] = []
    for ref in refs:
        supplies = tuple(
            PromisedSupply(
                str(r["supply_kind"]),
                str(r["supply_ref"]),
                _date(r["supply_date"]),
                float(r["qty"]),  # type: ignore[arg-type]
                r["supply_kind"] == "pl" and r["supply_ref"] in planned,
            )
            for r in pegged.get(ref, ())
        )
        if ref in late:
            r = late[ref]
            delay = r["delay_days"]
            out.append(
                Promise(
                    ref,
                    item_id=str(r["item_id"]),
                    warehouse_id=str(r["warehouse_id"]),
                    requirement_date=_date(r["requirement_date"]),
                    futures_date=_date(r["futures_date"]),
                    delay_days=int(delay) if isinstance(delay, float) and delay == delay else 0,
                    supplies=supplies,
                )
            )
        elif ref in pegged:
            first = pegged[ref][0]
            date = _date(first["demand_date"])
            out.append(
                Promise(
                    ref,
                    item_id=str(first["item_id"]),
                    warehouse_id=str(first["warehouse_id"]),
                    requirement_date=date,
                    futures_date=date,
                    supplies=supplies,
                )
            )
        else:
            out.append(_sales_line(data, ref, plan_date) or Promise(ref, unknown=True))
    return out


# -- the wire form ---------------------------------------------------------------
def _iso(value: dt.date | None) -> str:
    return value.isoformat() if value is not None else ""


def _promise_to_proto(p: Promise) -> pb.DemandPromise:
    return pb.DemandPromise(
        ref=p.ref,
        item_id=p.item_id,
        warehouse_id=p.warehouse_id,
        requirement_date=_iso(p.requirement_date),
        futures_date=_iso(p.futures_date),
        delay_days=p.delay_days,
        never_covered=p.never_covered,
        supplies=[
            pb.PromisedSupply(
                kind=s.kind, ref=s.ref, date=_iso(s.date), qty=s.qty, planned=s.planned
            )
            for s in p.supplies
        ],
        unknown=p.unknown,
    )


def _difference_chunks(diff: Difference, chunk_rows: int) -> Iterator[columnar_pb2.ColumnarChunk]:
    """The rows removed (CHANGE_KIND_DELETE), then the rows added (CHANGE_KIND_UPSERT)."""
    for change, tables in (
        (columnar_pb2.CHANGE_KIND_DELETE, diff.removed),
        (columnar_pb2.CHANGE_KIND_UPSERT, diff.added),
    ):
        for name in PLAN_OUTPUT_TABLES:
            for chunk in encode_table(name, tables[name], chunk_rows):
                chunk.change = change
                yield chunk


def simulation_to_proto(
    sim: Simulation, *, include_difference: bool, chunk_rows: int
) -> pb.SimulateResponse:
    """Simulate's answer; the difference's rows only when asked for."""
    counts = sim.difference.counts()
    return pb.SimulateResponse(
        promises=[_promise_to_proto(p) for p in sim.promises],
        base_run_id=sim.base_run_id,
        rows_added=sim.difference.rows_added,
        rows_removed=sim.difference.rows_removed,
        difference=list(_difference_chunks(sim.difference, chunk_rows))
        if include_difference
        else [],
        added_counts={name: added for name, (_removed, added) in counts.items()},
        removed_counts={name: removed for name, (removed, _added) in counts.items()},
        seconds=sim.seconds,
        plan_date=sim.plan_date.isoformat(),
    )
