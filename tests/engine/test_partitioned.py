"""A plan over partitions (SPEC §2 scale-out): exactly the inline plan.

The property test plans random models inline and over up to three
partitions, on a thread pool and on an executor that pickles each task and
its (packed) result as a process pool does, and compares every output table
as a multiset of rows (a result table is a set; the partitions' rows come in another
order). A model that fails inline must fail the same way partitioned. The
examples below pin how the data set is cut: clusters whole, the shared
tables in every partition, each input check reported once, and the run's
limits applied to the joined plan.
"""

from __future__ import annotations

import datetime as dt
import json
import pickle
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from masterplan.contract.columns import Table, table_length
from masterplan.contract.rows import from_rows, to_rows
from masterplan.contract.tables import INPUT_TABLES, PLAN_OUTPUT_TABLES, RESULT_TABLES
from masterplan.server.engine import InvalidPlanInput, PlanParams, PlanTooLarge, plan
from masterplan.server.engine.partition import SHARED_TABLES, lopsided, split
from masterplan.server.engine.partitioned import plan_partitioned
from tests.differential.strategies import models

Rows = dict[str, list[dict[str, Any]]]
EXAMPLES = sorted((Path(__file__).parents[1] / "data" / "examples").glob("*.json"))


@pytest.fixture(scope="module")
def threads() -> Iterator[Executor]:
    with ThreadPoolExecutor(2) as pool:
        yield pool


class _Pickling(Executor):
    """Runs each task here, its arguments and its result through pickle: what
    a process pool's task crosses, without the processes."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        fn, args, kwargs = pickle.loads(pickle.dumps((fn, args, kwargs)))
        future.set_result(pickle.loads(pickle.dumps(fn(*args, **kwargs))))
        return future


def _data(rows: Rows) -> dict[str, Table]:
    return {name: from_rows(spec, rows.get(name, [])) for name, spec in INPUT_TABLES.items()}


def _canonical(tables: Any) -> dict[str, Counter[str]]:
    """Every output table as a multiset of its rows (exact values)."""
    return {
        name: Counter(repr(sorted(r.items())) for r in to_rows(tables[name], RESULT_TABLES[name]))
        for name in PLAN_OUTPUT_TABLES
    }


def _outcome(run: Any) -> tuple[str, Any]:
    try:
        return "plan", _canonical(run().tables)
    except (InvalidPlanInput, PlanTooLarge) as error:
        return type(error).__name__, None


def _same_plan(data: dict[str, Table], params: PlanParams, executor: Executor, n: int) -> None:
    inline = _outcome(lambda: plan(data, params))
    # Every cut is planned partitioned, however unbalanced (a small model's
    # cuts are); the service plans a lopsided one inline.
    parted = _outcome(lambda: plan_partitioned(data, params, executor, n, inline_share=1.0))
    assert parted[0] == inline[0]
    if inline[1] is None:
        return
    for name in PLAN_OUTPUT_TABLES:
        extra = parted[1][name] - inline[1][name]
        missing = inline[1][name] - parted[1][name]
        assert not extra and not missing, (name, sorted(extra)[:3], sorted(missing)[:3])


@settings(
    max_examples=settings.default.max_examples * 2,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    deadline=None,
)
@given(models())
def test_partitioned_plan_is_the_inline_plan(threads: Executor, model: Any) -> None:
    rows, plan_date, group = model
    data = _data(rows)
    note(f"partitions: {[table_length(p['items']) for p in split(data, 3).parts]}")
    params = PlanParams(dt.date.fromisoformat(plan_date), group)
    _same_plan(data, params, threads, 2)
    _same_plan(data, params, _Pickling(), 3)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_worked_examples_partitioned(threads: Executor, path: Path) -> None:
    data, params = example_input(path)
    _same_plan(data, params, threads, 4)


def example_input(path: Path) -> tuple[dict[str, Table], PlanParams]:
    """A worked example's data set and run parameters."""
    example = json.loads(path.read_text())
    data = _data(example["input"])
    return data, PlanParams(
        dt.date.fromisoformat(example["plan_date"]), example.get("default_group")
    )


def _model() -> Rows:
    """Four items: A made of B (a BOM), C and D alone; D also in a production
    order whose line consumes C, which ties C and D though no BOM does."""
    return {
        "warehouses": [{"warehouse_id": "W", "site_id": "S"}],
        "coverage_groups": [
            {"group_id": "G", "coverage_code": "requirement"},
            {"group_id": "BAD", "coverage_code": "nonsense"},
        ],
        "items": [
            {"item_id": i, "coverage_group_id": "G", "lead_time_days": 1}
            for i in ("A", "B", "C", "D", "E")
        ],
        "boms": [{"bom_id": "BA", "item_id": "A", "warehouse_id": "W", "batch_qty": 1}],
        "bom_lines": [{"bom_id": "BA", "line_no": 1, "component_item_id": "B", "qty_per": 2}],
        "production_orders": [
            {
                "order_id": "MO1",
                "item_id": "D",
                "warehouse_id": "W",
                "qty": 1,
                "start_date": "2026-01-06",
                "end_date": "2026-01-07",
            }
        ],
        "production_lines": [
            {
                "order_id": "MO1",
                "line_no": 1,
                "component_item_id": "C",
                "warehouse_id": "W",
                "qty": 3,
                "required_date": "2026-01-06",
            }
        ],
        "sales_lines": [
            {
                "order_id": "S1",
                "line_no": n,
                "item_id": item,
                "warehouse_id": "W",
                "qty": 5,
                "requested_date": "2026-01-12",
            }
            for n, item in enumerate(("A", "D", "E"))
        ]
        # A key shared by rows of two items: both are left out, so E's row
        # must be checked beside D's.
        + [
            {
                "order_id": "S2",
                "line_no": 1,
                "item_id": item,
                "warehouse_id": "W",
                "qty": 1,
                "requested_date": "2026-01-12",
            }
            for item in ("D", "E")
        ],
    }


def _items(part: dict[str, Table]) -> set[str]:
    return {str(v) for name in ("items", "sales_lines") for v in part[name]["item_id"]}


def test_split_keeps_clusters_whole_and_shares_the_masters() -> None:
    data = _data(_model())
    cut = split(data, 4)
    groups = sorted(sorted(_items(p)) for p in cut.parts)
    # A with B (BOM); C, D and E (production line, shared sales key).
    assert groups == [["A", "B"], ["C", "D", "E"]]
    assert cut.clusters == 2
    for part in cut.parts:
        for name in SHARED_TABLES:
            assert part[name] is data[name]
    for name in INPUT_TABLES:
        if name not in SHARED_TABLES:
            assert sum(table_length(p[name]) for p in cut.parts) == table_length(data[name])


def test_shared_tables_are_checked_once(threads: Executor) -> None:
    """The coverage group with an unknown code is one message in the joined plan, not one
    per partition; the duplicate sales key's two rows are two messages."""
    data = _data(_model())
    params = PlanParams(dt.date(2026, 1, 5))
    result = plan_partitioned(data, params, threads, 4, inline_share=1.0)
    assert result.phase_seconds["partitions"] > 0
    texts = Counter(str(t) for t in np.asarray(result.tables["plan_messages"]["text"]))
    inline = Counter(str(t) for t in plan(data, params).tables["plan_messages"]["text"])
    assert texts == inline
    assert sum("'BAD'" in t for t in texts.elements()) == 1
    assert sum("S2" in t for t in texts.elements()) == 2


def test_limits_apply_to_the_joined_plan(threads: Executor) -> None:
    """Each partition's plan is within the limit; together they pass it."""
    data = _data(_model())
    free = PlanParams(dt.date(2026, 1, 5))
    made = [
        int((plan(part, free).tables["planned_orders"]["firmed"] == 0).sum())
        for part in split(data, 2).parts
    ]
    assert len(made) == 2 and min(made) > 0
    params = PlanParams(dt.date(2026, 1, 5), max_planned_orders=max(made))
    with pytest.raises(PlanTooLarge):
        plan(data, params)
    with pytest.raises(PlanTooLarge) as raised:
        plan_partitioned(data, params, threads, 2, inline_share=1.0)
    assert raised.value.resource == "planned_orders"
    assert raised.value.requested == sum(made)


def test_a_failed_partition_fails_the_run(
    threads: Executor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A partition's error is the run's; no plan of the others comes back."""
    from masterplan.server.engine import partitioned

    real = partitioned.plan_part

    def second_fails(data: Any, params: PlanParams, report_shared: bool, pieces: bool) -> Any:
        if not report_shared:
            raise InvalidPlanInput("the second partition cannot be planned")
        return real(data, params, report_shared, pieces)

    monkeypatch.setattr(partitioned, "plan_part", second_fails)
    with pytest.raises(InvalidPlanInput, match="second partition"):
        plan_partitioned(
            _data(_model()), PlanParams(dt.date(2026, 1, 5)), threads, 2, inline_share=1.0
        )


def test_a_cancelled_run_stops(threads: Executor) -> None:
    """A progress callback that raises (a cancellation) stops the run."""

    def cancel(phase: str, fraction: float) -> None:
        if phase == "netting":
            raise KeyboardInterrupt

    params = PlanParams(dt.date(2026, 1, 5), stop=np.zeros(1, dtype=np.int8))
    with pytest.raises(KeyboardInterrupt):
        plan_partitioned(_data(_model()), params, threads, 2, cancel, inline_share=1.0)
    assert params.stop is not None and params.stop[0] == 1


def test_a_lopsided_cut_is_planned_inline(threads: Executor) -> None:
    """One partition with most of the rows: no task is worth its cost."""
    data = _data(_model())
    result = plan_partitioned(data, PlanParams(dt.date(2026, 1, 5)), threads, 2, inline_share=0.5)
    assert "partitions" not in result.phase_seconds and "split" in result.phase_seconds
    assert _canonical(result.tables) == _canonical(
        plan(data, PlanParams(dt.date(2026, 1, 5))).tables
    )


def test_a_lopsided_cut_is_not_made() -> None:
    """Given the share above which a run plans whole, the cut that passes it
    hands back the data set itself, uncopied, with its clusters counted."""
    data = _data(_model())
    full = split(data, 2)
    assert len(full.parts) == 2 and full.rows.max() > 0.5 * full.rows.sum()
    kept = split(data, 2, inline_share=0.5)
    assert len(kept.parts) == 1
    assert all(kept.parts[0][name] is data[name] for name in data)
    assert kept.clusters == full.clusters and kept.largest == full.largest
    assert kept.rows.tolist() == [full.rows.sum()]
    assert len(split(data, 2, inline_share=0.9).parts) == 2


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], deadline=None)
@given(models(), st.sampled_from([0.3, 0.5, 0.8, 0.95]), st.integers(2, 4))
def test_a_cut_is_made_exactly_when_it_is_not_lopsided(model: Any, share: float, n: int) -> None:
    """The cut stops before the duplicate keys' edges where one cluster is
    already above the share: the decision must be the full cut's."""
    data = _data(model[0])
    full = split(data, n)
    cut = split(data, n, inline_share=share)
    if lopsided(full.rows, share):
        assert len(cut.parts) == 1 and all(cut.parts[0][name] is data[name] for name in data)
        assert cut.rows.tolist() == [full.rows.sum()]
        assert cut.clusters >= full.clusters and cut.largest <= full.largest
    else:
        assert cut.rows.tolist() == full.rows.tolist()
        assert (cut.clusters, cut.largest) == (full.clusters, full.largest)


def test_process_pool_gives_the_inline_plan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Results come back through spill files, each removed once read."""
    from masterplan.server.engine import partitioned

    monkeypatch.setattr(partitioned, "spill_directory", lambda: str(tmp_path))
    data = _data(_model())
    params = PlanParams(dt.date(2026, 1, 5))
    with ProcessPoolExecutor(2) as pool:
        _same_plan(data, params, pool, 2)
    assert not list(tmp_path.iterdir())


def test_a_result_that_cannot_be_spilled_comes_through_the_pipe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A spill directory that cannot take the file (full, or gone) costs
    speed, not the run."""
    from masterplan.server.engine import partitioned

    monkeypatch.setattr(partitioned, "spill_directory", lambda: str(tmp_path / "missing"))
    with ProcessPoolExecutor(2) as pool:
        _same_plan(_data(_model()), PlanParams(dt.date(2026, 1, 5)), pool, 2)


def test_a_cancelled_process_pool_run_leaves_no_spill_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The partitions still planning when a run is cancelled write their
    results out; those are dropped, and their files removed."""
    from masterplan.server.engine import partitioned

    monkeypatch.setattr(partitioned, "spill_directory", lambda: str(tmp_path))
    rows = _model()
    data = _data(rows)

    def cancel(phase: str, fraction: float) -> None:
        if phase == "netting":
            raise KeyboardInterrupt

    with ProcessPoolExecutor(3) as pool, pytest.raises(KeyboardInterrupt):
        plan_partitioned(data, PlanParams(dt.date(2026, 1, 5)), pool, 3, cancel, 1.0)
    assert not list(tmp_path.iterdir())
