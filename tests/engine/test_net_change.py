"""Net change in the engine (SPEC §6): after every change, exactly a regeneration.

The property test plans random sequences of changes — rows of every
transaction table deleted, added and replaced under the same key, now and
then a master table or the plan date too — as net changes, each reusing the
previous step's basis, and compares every output table with a regeneration
of the same data. Half the steps tell the engine which rows changed (as the
server does after a delta), the others let it compare the data sets. The
same runs again from a first plan made over partitions, whose basis the
first net change makes from the partitions' pieces.

The examples below it pin what the property cannot see: that a net change
re-plans only what a change reaches, that a change which moves a shared
component's delays re-plans the parents above it, and why a net change falls
back to a regeneration.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections import Counter
from collections.abc import Callable
from typing import Any
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from masterplan.contract.columns import Table
from masterplan.contract.rows import from_rows, to_rows
from masterplan.contract.tables import INPUT_TABLES, PLAN_OUTPUT_TABLES, RESULT_TABLES
from masterplan.server.engine import (
    InvalidPlanInput,
    NetChange,
    PlanParams,
    PlanResult,
    PlanTooLarge,
    RunBasis,
    layers,
    net_change,
    plan,
    regenerate,
)
from masterplan.server.engine.layers import LayeredTables
from masterplan.server.engine.partition import split
from masterplan.server.engine.partitioned import regenerate_cut
from masterplan.server.engine.rowdiff import MASTER_TABLES
from tests.differential.strategies import INPUT_TABLE_NAMES, models
from tests.engine.test_partitioned import _Pickling

Rows = dict[str, list[dict[str, Any]]]
Step = tuple[Rows, str, str | None, bool]

#: Sequences per run: twice the profile's examples (1,000 in CI), each of 1-4 changes.
EXAMPLES = settings.default.max_examples * 2


def _data(rows: Rows) -> dict[str, Table]:
    return {name: from_rows(spec, rows.get(name, [])) for name, spec in INPUT_TABLES.items()}


def _canonical(tables: dict[str, Any]) -> dict[str, Counter[str]]:
    """Every output table as a multiset of its rows (exact values)."""
    return {
        name: Counter(repr(sorted(r.items())) for r in to_rows(tables[name], RESULT_TABLES[name]))
        for name in PLAN_OUTPUT_TABLES
    }


def _key(table: str, row: dict[str, Any]) -> str:
    spec = INPUT_TABLES[table]
    return repr([row.get(c) for c in (spec.key or spec.column_names)])


def _touched(old: Rows, new: Rows) -> dict[str, tuple[Table, Table]]:
    """The rows that left and came, per table, as the server's delta says them:
    in a keyed table every row of a key that changed, in the others the rows
    that are not in the other version."""
    out = {}
    for name, spec in INPUT_TABLES.items():
        a, b = old.get(name, []), new.get(name, [])
        ca, cb = Counter(repr(r) for r in a), Counter(repr(r) for r in b)
        if ca == cb:
            continue
        if spec.key:
            keys = {_key(name, r) for r in a if ca[repr(r)] != cb[repr(r)]}
            keys |= {_key(name, r) for r in b if ca[repr(r)] != cb[repr(r)]}
            left = [r for r in a if _key(name, r) in keys]
            came = [r for r in b if _key(name, r) in keys]
        else:
            left, came = _surplus(a, ca - cb), _surplus(b, cb - ca)
        out[name] = (from_rows(spec, left), from_rows(spec, came))
    return out


def _sources(old: Rows, new: Rows) -> dict[str, np.ndarray]:
    """Per changed table, the old row each new row is (an equal row, each
    old row taken once), -1 for none: what the server's delta gives."""
    out = {}
    for name in INPUT_TABLES:
        a, b = old.get(name, []), new.get(name, [])
        if a == b:
            continue
        free: dict[str, list[int]] = {}
        for i, r in enumerate(a):
            free.setdefault(repr(r), []).append(i)
        out[name] = np.array(
            [free[repr(r)].pop(0) if free.get(repr(r)) else -1 for r in b], dtype=np.int64
        )
    return out


def _surplus(rows: list[dict[str, Any]], counts: Counter[str]) -> list[dict[str, Any]]:
    """Rows of ``rows``, each as many times as ``counts`` says."""
    out = []
    for r in rows:
        if counts[repr(r)] > 0:
            counts[repr(r)] -= 1
            out.append(r)
    return out


@st.composite
def change_sequences(draw: st.DrawFn) -> list[Step]:
    """A first model, then 1-4 changes. Each keeps most rows of the step
    before and adds a few of a fresh model's; the master tables change in
    one step of six, the plan date in one of ten; some steps change a single
    row."""
    first, plan_date, group = draw(models())
    steps: list[Step] = [(first, plan_date, group, False)]
    for _ in range(draw(st.integers(1, 4))):
        rows, plan_date, group, _ = steps[-1]
        fresh, fresh_date, _ = draw(models())
        masters = draw(st.integers(0, 5)) == 0
        single = draw(st.integers(0, 2)) == 0
        mixed: Rows = {}
        for name in INPUT_TABLE_NAMES:
            old, new = rows.get(name, []), fresh.get(name, [])
            if name in MASTER_TABLES and not masters:
                mixed[name] = old
                continue
            if single:
                keep = [True] * len(old)
                take = [False] * len(new)
            else:
                keep = draw(
                    st.lists(st.integers(0, 3).map(bool), min_size=len(old), max_size=len(old))
                )
                take = draw(
                    st.lists(
                        st.integers(0, 3).map(lambda x: x == 0),
                        min_size=len(new),
                        max_size=len(new),
                    )
                )
            mixed[name] = [r for r, k in zip(old, keep, strict=True) if k]
            mixed[name] += [r for r, t in zip(new, take, strict=True) if t]
        if single:
            table = draw(st.sampled_from([n for n in INPUT_TABLE_NAMES if n not in MASTER_TABLES]))
            if mixed[table] and draw(st.booleans()):
                del mixed[table][draw(st.integers(0, len(mixed[table]) - 1))]
            elif fresh.get(table):
                mixed[table].append(draw(st.sampled_from(fresh[table])))
        if draw(st.integers(0, 9)) == 0:
            plan_date = fresh_date
        steps.append((mixed, plan_date, group, draw(st.booleans())))
    return steps


#: The first run of a sequence: a data set and parameters in, the plan and its basis out.
Start = Callable[[dict[str, Table], PlanParams], tuple[PlanResult, RunBasis]]


def _over_partitions(data: dict[str, Table], params: PlanParams) -> tuple[PlanResult, RunBasis]:
    """A regeneration over three partitions, every task and result pickled
    as a process pool's are."""
    return regenerate_cut(split(data, 3), data, params, _Pickling())


def _check(steps: list[Step], start: Start = regenerate) -> list[NetChange]:
    rows, plan_date, group, _ = steps[0]
    params = PlanParams(dt.date.fromisoformat(plan_date), group)
    basis: RunBasis | None
    try:
        first, basis = start(_data(rows), params)
    except InvalidPlanInput:
        return []
    previous = _canonical(first.tables)
    done = []
    for i, (new_rows, plan_date, group, hinted) in enumerate(steps[1:], 1):
        params = PlanParams(dt.date.fromisoformat(plan_date), group)
        data = _data(new_rows)
        touched = _touched(rows, new_rows) if hinted else None
        sources = _sources(rows, new_rows) if hinted else None
        kw: dict[str, Any] = {"max_share": 1.0, "touched": touched, "sources": sources}
        try:
            want = _canonical(plan(data, params).tables)
        except InvalidPlanInput:
            with pytest.raises(InvalidPlanInput):
                net_change(basis, data, params, **kw)
            return done
        got = net_change(basis, data, params, **kw)
        with contextlib.suppress(InvalidArgument):  # outside hypothesis: no notes
            note(f"step {i}: {got.fallback_reason or 'reused'}, {got.skus_planned} SKUs planned")
        tables = got.result.tables
        if isinstance(tables, LayeredTables) and i % 3:
            # Read without joining the patches for good: the next net change
            # then builds on a patch of a patch, as on a server nobody reads.
            have = _canonical(tables.joined())
        else:
            have = _canonical(tables)
        for name in PLAN_OUTPUT_TABLES:
            extra, missing = have[name] - want[name], want[name] - have[name]
            assert not extra and not missing, (
                f"step {i} {name}: net change only {list(extra)[:3]}, regeneration only "
                f"{list(missing)[:3]}"
            )
        if got.before is not None and got.after is not None:
            # What the server streams: the previous plan less ``before``
            # plus ``after`` must be this plan.
            removed, added = _canonical(got.before), _canonical(got.after)
            for name in PLAN_OUTPUT_TABLES:
                assert not removed[name] - previous[name], (
                    f"step {i} {name}: removes a row not held"
                )
                assert previous[name] - removed[name] + added[name] == have[name], (
                    f"step {i} {name}: the difference does not make the plan"
                )
        done.append(got)
        assert got.basis is not None
        basis, rows, previous = got.basis, new_rows, have
    return done


_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large]


@settings(suppress_health_check=_HEALTH, max_examples=EXAMPLES, deadline=None)
@given(change_sequences())
def test_every_net_change_equals_a_regeneration(steps: list[Step]) -> None:
    _check(steps)


@settings(suppress_health_check=_HEALTH, max_examples=max(EXAMPLES // 2, 10), deadline=None)
@given(change_sequences())
def test_net_changes_after_a_plan_made_over_partitions_equal_regenerations(
    steps: list[Step],
) -> None:
    """The first plan made over partitions (SPEC §2): the first net change
    makes its basis from the partitions' pieces, and builds on it."""
    _check(steps, _over_partitions)


@settings(suppress_health_check=_HEALTH, max_examples=max(EXAMPLES // 4, 10), deadline=None)
@given(change_sequences())
def test_every_net_change_equals_a_regeneration_with_every_patch_joined(
    steps: list[Step],
) -> None:
    """The same with a patch joined into a new base at every net change."""
    with (
        mock.patch.object(layers, "_COMPACT_MIN", 0),
        mock.patch.object(layers, "_COMPACT_SHARE", 0.0),
    ):
        _check(steps)


@pytest.mark.slow
@settings(suppress_health_check=_HEALTH, max_examples=20_000, derandomize=False, deadline=None)
@given(change_sequences())
def test_every_net_change_equals_a_regeneration_at_length(steps: list[Step]) -> None:
    """20,000 random sequences: ``pytest -m slow``."""
    _check(steps)


# -- examples ----------------------------------------------------------------------
T0 = "2026-03-02"


def _model(sales_a: float, on_hand_c: float = 10.0) -> Rows:
    """Two made products A and B that share a bought component C.

    A needs C on T0 (its order is due at once), B on T0 + 1; C's lead time is
    5 days, so a C requirement that the 10 on hand cannot cover is late.
    """
    day = dt.date.fromisoformat(T0)
    return {
        "warehouses": [{"warehouse_id": "W", "site_id": "S"}],
        "coverage_groups": [{"group_id": "G", "coverage_code": "requirement"}],
        "items": [
            {"item_id": "A", "coverage_group_id": "G", "default_order_type": "production"},
            {"item_id": "B", "coverage_group_id": "G", "default_order_type": "production"},
            {"item_id": "C", "coverage_group_id": "G", "lead_time_days": 5},
            {"item_id": "D", "coverage_group_id": "G"},
        ],
        "boms": [
            {"bom_id": "BA", "item_id": "A", "batch_qty": 1},
            {"bom_id": "BB", "item_id": "B", "batch_qty": 1},
        ],
        "bom_lines": [
            {"bom_id": "BA", "line_no": 1, "component_item_id": "C", "qty_per": 1},
            {"bom_id": "BB", "line_no": 1, "component_item_id": "C", "qty_per": 1},
        ],
        "on_hand": [{"item_id": "C", "warehouse_id": "W", "qty": on_hand_c}],
        "sales_lines": [
            {
                "order_id": "SA",
                "line_no": 1,
                "item_id": "A",
                "warehouse_id": "W",
                "qty": sales_a,
                "requested_date": T0,
            },
            {
                "order_id": "SB",
                "line_no": 1,
                "item_id": "B",
                "warehouse_id": "W",
                "qty": 10,
                "requested_date": (day + dt.timedelta(days=1)).isoformat(),
            },
            {
                "order_id": "SD",
                "line_no": 1,
                "item_id": "D",
                "warehouse_id": "W",
                "qty": 3,
                "requested_date": T0,
            },
        ],
    }


def _net_change(before: Rows, after: Rows, **kw: Any) -> tuple[NetChange, dict[str, Any]]:
    params = PlanParams(dt.date.fromisoformat(T0))
    _, basis = regenerate(_data(before), params)
    got = net_change(basis, _data(after), params, **kw)
    want = _canonical(plan(_data(after), params).tables)
    assert _canonical(got.result.tables) == want
    return got, {n: to_rows(got.result.tables[n], RESULT_TABLES[n]) for n in PLAN_OUTPUT_TABLES}


def test_a_changed_sales_line_replans_its_sku_and_what_it_draws_on_only() -> None:
    # A's demand stays within C's stock: B's requirement of C keeps its supply.
    got, tables = _net_change(_model(0, on_hand_c=20), _model(0.5, on_hand_c=20), max_share=1.0)
    assert got.fallback_reason == ""
    assert got.skus_planned == 2  # A and C; B and D are reused
    assert {r["item_id"] for r in tables["planned_orders"]} == {"A", "B", "D"}


def test_net_changes_in_a_row_build_on_the_patches_before_them() -> None:
    """Nobody reads the plan between these net changes. The second re-plans
    A and C again, whose rows only the first one's patch holds; the third
    re-plans B and C, and takes the orders of A (a parent outside it) from
    that patch."""
    third = _model(0.7, on_hand_c=20)
    for row in third["sales_lines"]:
        if row["order_id"] == "SB":
            row["qty"] = 12
    steps: list[Step] = [
        (_model(0, on_hand_c=20), T0, None, False),
        (_model(0.5, on_hand_c=20), T0, None, True),
        (_model(0.7, on_hand_c=20), T0, None, False),
        (third, T0, None, True),
    ]
    done = _check(steps)
    assert [(d.fallback_reason, d.skus_planned) for d in done] == [("", 2)] * 3
    layered = done[1].result.tables
    assert isinstance(layered, LayeredTables)
    assert len(layered.part("planned_orders").patch_sku) > 0


def test_a_change_that_delays_a_shared_component_replans_the_parents_it_delays() -> None:
    # A now takes all of C's stock first: B's requirement of C waits for a new
    # order of C (5 days), so B's sales line is late, though nothing of B changed.
    got, tables = _net_change(_model(sales_a=0), _model(sales_a=10), max_share=1.0)
    assert got.fallback_reason == ""
    assert got.skus_planned == 3  # A, C, and B, whose delays moved; D is reused
    late = {r["demand_ref"]: r["delay_days"] for r in tables["delay_messages"]}
    assert late["SO:SB/1"] == 4


def test_a_change_that_reaches_most_skus_is_planned_as_a_regeneration() -> None:
    got, _ = _net_change(_model(sales_a=0), _model(sales_a=10), max_share=0.5)
    assert got.fallback_reason == "the change reaches 3 of 4 SKUs"
    assert got.skus_planned == 4


def test_changed_master_data_and_another_plan_date_are_planned_as_regenerations() -> None:
    before, after = _model(sales_a=1), _model(sales_a=1)
    after["items"][2]["lead_time_days"] = 6
    got, _ = _net_change(before, after, max_share=1.0)
    assert got.fallback_reason == "the master data changed (items)"
    params = PlanParams(dt.date.fromisoformat(T0))
    _, basis = regenerate(_data(before), params)
    later = net_change(basis, _data(before), PlanParams(dt.date(2026, 3, 3)))
    assert later.fallback_reason == "the plan date changed from 2026-03-02 to 2026-03-03"


def test_a_firmed_order_with_a_planned_orders_id_falls_back_rather_than_collide() -> None:
    before = _model(sales_a=0)
    after = _model(sales_a=0.5)
    # B's planned order B/W/1 is what the net change reuses; a firmed order of
    # A with that id would meet it in the small plan.
    after["firmed_planned_orders"] = [
        {
            "planned_order_id": "B/W/1",
            "item_id": "C",
            "warehouse_id": "W",
            "order_type": "purchase",
            "qty": 1,
            "order_date": T0,
            "due_date": T0,
        }
    ]
    got, _ = _net_change(before, after, max_share=1.0)
    assert "has the id of a planned order" in got.fallback_reason


@pytest.mark.parametrize("keep", [True, False])
def test_a_net_change_keeps_the_size_limits_of_the_whole_plan(keep: bool) -> None:
    """The limits bound the whole plan, not the few SKUs re-planned (a
    simulation, which joins nothing, included)."""
    before, after = _model(0, on_hand_c=20), _model(0.5, on_hand_c=20)
    params = PlanParams(dt.date.fromisoformat(T0))
    whole, basis = regenerate(_data(before), params)
    rows = sum(whole.row_counts().values())
    tight = PlanParams(params.plan_date, max_result_rows=rows - 1)
    with pytest.raises(PlanTooLarge) as info:
        net_change(basis, _data(after), tight, max_share=1.0, keep=keep)
    assert info.value.resource == "result_rows"
    orders = whole.row_counts()["planned_orders"]
    tight = PlanParams(params.plan_date, max_planned_orders=orders - 1)
    with pytest.raises(PlanTooLarge) as info:
        net_change(basis, _data(after), tight, max_share=1.0, keep=keep)
    assert info.value.resource == "planned_orders"
