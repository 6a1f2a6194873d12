"""Tests for client.report: the plan report as one self-contained, escaped HTML file.

The report is built from a synthetic :class:`PlanReport` (no database): late
demands including one never covered, action messages of every type with more
than a table's worth of one, plan messages of several codes, a pegging tree
three levels deep with a late planned order, and three charts with and
without stock levels. An id carrying ``<script>`` checks the escaping.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections import Counter
from html.parser import HTMLParser

import pytest

from masterplan.client.report import MAX_GROUP_ROWS, render_report
from masterplan.contract.views import (
    ActionMessageRow,
    DelayMessageRow,
    DelayPath,
    DelayStep,
    InventorySeries,
    PegNode,
    PlanMessageRow,
    PlanReport,
    RunInfo,
)

HOSTILE = '<script>alert("x")</script>'
"""An item id a careless renderer would run as a script."""

D0 = dt.date(2025, 3, 3)


def day(n: int) -> dt.date:
    return D0 + dt.timedelta(days=n)


# --- the synthetic report -----------------------------------------------------------------


def _delays() -> tuple[DelayPath, ...]:
    never = DelayMessageRow("so", "SO-9001", "BIKE-RED", "WH1", day(5), None, None)
    late = DelayMessageRow("so", "SO-9002", "BIKE-BLUE", "WH1", day(7), day(30), 23)
    hostile = DelayMessageRow("fc", "FC-7&7", HOSTILE, "WH2", day(10), day(14), 4)
    return (
        DelayPath(
            demand=never,
            steps=(DelayStep(0, "so", "SO-9001", "BIKE-RED", "WH1", day(5), None, None, None),),
            cause="Nothing can cover BIKE-RED at WH1: the item has no vendor and no BOM.",
        ),
        DelayPath(
            demand=late,
            steps=(
                DelayStep(0, "so", "SO-9002", "BIKE-BLUE", "WH1", day(7), "pl", "PL-1", day(30)),
                DelayStep(1, "pl", "PL-1/dep", "FRAME", "WH1", day(2), "pl", "PL-2", day(25)),
                DelayStep(2, "pl", "PL-2/dep", "TUBE", "WH1", day(-3), "pl", "PL-3", day(20)),
            ),
            cause="TUBE at WH1 is bought with a 23-day lead time from the plan date.",
        ),
        DelayPath(
            demand=hostile,
            steps=(DelayStep(0, "fc", "FC-7&7", HOSTILE, "WH2", day(10), "po", "PO-5", day(14)),),
            cause=f"The purchase order PO-5 of {HOSTILE} arrives on {day(14)}.",
        ),
    )


ACTION_COUNTS = {"advance": 57, "postpone": 3, "decrease": 2, "cancel": 1}


def _actions() -> tuple[ActionMessageRow, ...]:
    rows: list[ActionMessageRow] = []
    for action, n in ACTION_COUNTS.items():
        for i in range(n):
            receipt = day(20 + i)
            suggested_date = {
                "advance": receipt - dt.timedelta(days=5),
                "postpone": receipt + dt.timedelta(days=9),
            }.get(action)
            suggested_qty = 40.0 if action == "decrease" else None
            rows.append(
                ActionMessageRow(
                    "po",
                    f"PO-{action[:3].upper()}-{i:03d}",
                    f"PART-{i % 7}",
                    "WH1",
                    action,
                    receipt,
                    100.0,
                    suggested_date,
                    suggested_qty,
                )
            )
    return tuple(rows)


PLAN_MESSAGE_COUNTS = {"no_vendor": 2, "lead_time_missing": 61, "negative_on_hand": 1}


def _plan_messages() -> tuple[PlanMessageRow, ...]:
    rows: list[PlanMessageRow] = []
    for code, n in PLAN_MESSAGE_COUNTS.items():
        severity = "error" if code == "no_vendor" else "warning"
        for i in range(n):
            rows.append(
                PlanMessageRow(severity, code, f"ITEM-{code[:3]}-{i}", "WH1", f"{code} on line {i}")
            )
    rows.append(PlanMessageRow("warning", "odd_text", HOSTILE, None, f"text {HOSTILE} & more"))
    return tuple(rows)


def _tree() -> PegNode:
    late_order = PegNode("supply", "pl", "PL-3", "TUBE", "WH1", day(-3), 80.0, 2, due_date=day(20))
    on_time = PegNode("supply", "oh", "OH-TUBE", "TUBE", "WH1", D0, 20.0, 2)
    tube = PegNode(
        "demand", "pl", "PL-2/dep", "TUBE", "WH1", day(-3), 100.0, 2, children=(on_time, late_order)
    )
    frame_order = PegNode(
        "supply", "pl", "PL-2", "FRAME", "WH1", day(2), 50.0, 1, due_date=day(25), children=(tube,)
    )
    frame = PegNode(
        "demand", "pl", "PL-1/dep", "FRAME", "WH1", day(2), 50.0, 1, children=(frame_order,)
    )
    bike_order = PegNode(
        "supply",
        "pl",
        "PL-1",
        "BIKE-BLUE",
        "WH1",
        day(7),
        50.0,
        0,
        due_date=day(30),
        children=(frame,),
    )
    return PegNode(
        "demand", "so", "SO-9002", "BIKE-BLUE", "WH1", day(7), 50.0, 0, children=(bike_order,)
    )


def _charts() -> tuple[InventorySeries, ...]:
    dates = tuple(day(7 * i) for i in range(12))
    return (
        InventorySeries(
            "BIKE-BLUE",
            "WH1",
            dates,
            (120, 80, 40, -10, -60, 30, 90, 50, 10, -20, 70, 110),
            safety_stock=25.0,
            min_qty=None,
            max_qty=None,
        ),
        InventorySeries(
            "FRAME", "WH1", dates, tuple(float(200 - 15 * i) for i in range(12)), 10.0, 40.0, 220.0
        ),
        InventorySeries(HOSTILE, "WH2", dates[:5], (5.0, 3.0, 3.0, 1.5, 0.0), None, None, None),
    )


def make_report(n_charts: int | None = None) -> PlanReport:
    """A report with something in every section (shared with the Chromium test).

    Args:
        n_charts: Chart count: the three synthetic charts by default, or that
            many copies of them under distinct SKU names.
    """
    charts = _charts()
    if n_charts is not None:
        charts = tuple(
            InventorySeries(
                f"SKU-{i:02d}",
                c.warehouse_id,
                c.dates,
                c.projected,
                c.safety_stock,
                c.min_qty,
                c.max_qty,
            )
            for i, c in ((i, charts[i % len(charts)]) for i in range(n_charts))
        )
    actions = _actions()
    messages = _plan_messages()
    delays = _delays()
    run = RunInfo(
        plan_id="main",
        run_id="run-2025-03-03-0001",
        mode="regeneration",
        base_run_id=None,
        plan_date=D0,
        started_at=dt.datetime(2025, 3, 3, 6, 0, 0, tzinfo=dt.UTC),
        finished_at=dt.datetime(2025, 3, 3, 6, 0, 4, tzinfo=dt.UTC),
        planned_order_count=1234,
        pegging_count=5678,
        action_message_count=len(actions),
        delay_message_count=len(delays),
        plan_message_count=len(messages),
        rows_added=321,
        rows_removed=12,
    )
    return PlanReport(run, delays, actions, messages, _tree(), charts)


# --- a structural reading of the HTML -----------------------------------------------------

_VOID = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
    "wbr",
}


class _Document(HTMLParser):
    """Checks that tags nest and collects what the tests look at."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: Counter[str] = Counter()
        self.attrs: list[tuple[str, str, str | None]] = []
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.doctype: str | None = None

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._record(tag, attrs)
        if tag not in _VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._record(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def _record(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] += 1
        self.elements.append((tag, dict(attrs)))
        self.attrs.extend((tag, name, value) for name, value in attrs)


def parse(document: str) -> _Document:
    parser = _Document()
    parser.feed(document)
    parser.close()
    return parser


@pytest.fixture(scope="module")
def report() -> PlanReport:
    return make_report()


@pytest.fixture(scope="module")
def document(report: PlanReport) -> str:
    return render_report(report)


@pytest.fixture(scope="module")
def parsed(document: str) -> _Document:
    return parse(document)


def _svgs(document: str) -> list[str]:
    return re.findall(r"<svg\b.*?</svg>", document, flags=re.DOTALL)


# --- the tests ----------------------------------------------------------------------------


def test_the_document_is_well_formed_html5(document: str, parsed: _Document) -> None:
    assert document.startswith("<!DOCTYPE html>")
    assert parsed.doctype is not None and parsed.doctype.lower() == "doctype html"
    assert parsed.errors == []
    assert parsed.stack == [], f"unclosed tags: {parsed.stack}"
    assert parsed.tags["html"] == parsed.tags["head"] == parsed.tags["body"] == 1
    assert ("meta", {"charset": "utf-8"}) in parsed.elements


def test_the_document_fetches_nothing_from_the_network(document: str, parsed: _Document) -> None:
    """Viewed offline, a report must look the same: nothing to load, nothing to run."""
    assert parsed.tags["script"] == 0
    assert parsed.tags["link"] == parsed.tags["img"] == parsed.tags["iframe"] == 0
    for tag, name, value in parsed.attrs:
        if name in ("src", "href", "xlink:href", "srcset", "action", "poster", "data"):
            assert value is not None and value.startswith("#"), f"<{tag} {name}={value!r}>"
    assert "@import" not in document
    assert not re.search(r"url\(\s*['\"]?(?!#)", document), "a CSS url() that is not a fragment"
    # The only absolute URLs left are XML namespace names, which are never fetched.
    without_namespaces = re.sub(r'xmlns(?::\w+)?="[^"]*"', "", document)
    assert "http://" not in without_namespaces
    assert "https://" not in without_namespaces


def test_hostile_text_is_escaped_everywhere(document: str) -> None:
    assert "<script" not in document.lower()
    assert html.escape(HOSTILE) in document
    # In the chart's SVG too (caption, title and label), not only in the tables.
    hostile_chart = next(s for s in _svgs(document) if html.escape(HOSTILE) in s)
    assert "<script" not in hostile_chart


def test_the_header_names_the_run(document: str, parsed: _Document) -> None:
    text = " ".join(parsed.text)
    for shown in ("main", "run-2025-03-03-0001", "regeneration", "2025-03-03", "06:00:04"):
        assert shown in text
    assert "4.0 s" in text  # how long the run took


def test_the_tiles_show_the_run_counts(parsed: _Document) -> None:
    text = " ".join(" ".join(parsed.text).split())
    for label, count in (
        ("Planned orders", "1,234"),
        ("Pegging rows", "5,678"),
        ("Action messages", "63"),
        ("Delay messages", "3"),
        ("Plan messages", "65"),
    ):
        assert f"{label} {count}" in text
    assert "+321 / −12" in text


def test_the_sections_come_in_the_documented_order(document: str) -> None:
    order = [
        document.index(marker)
        for marker in (
            'class="masthead"',
            'class="tiles"',
            'id="delays"',
            'id="actions"',
            'id="plan-messages"',
            'id="pegging"',
            'id="charts"',
        )
    ]
    assert order == sorted(order)


def test_every_delay_is_listed_with_its_cause_and_path(report: PlanReport, document: str) -> None:
    delays = document[document.index('id="delays"') : document.index('id="actions"')]
    positions = []
    for path in report.delays:
        ref = html.escape(path.demand.demand_ref)
        assert f'data-ref="{ref}"' in delays
        positions.append(delays.index(f'data-ref="{ref}"'))
        assert html.escape(path.cause) in delays
        for step in path.steps:
            assert html.escape(step.demand_ref) in delays
            if step.supply_ref is not None:
                assert html.escape(step.supply_ref) in delays
    assert positions == sorted(positions), "delays keep the connector's order (worst first)"
    never_row = delays[positions[0] : positions[1]]
    assert ">never<" in never_row and "shortfall" in never_row
    assert "23 d" in delays


def _groups(parsed: _Document, attr: str) -> dict[str, int]:
    return {
        str(attrs[attr]): int(str(attrs["data-count"]))
        for tag, attrs in parsed.elements
        if tag == "section" and attrs.get(attr) is not None and "data-count" in attrs
    }


def test_action_messages_are_grouped_by_type_with_exact_counts(
    report: PlanReport, document: str, parsed: _Document
) -> None:
    by_id = _groups(parsed, "id")
    assert {k.removeprefix("actions-"): v for k, v in by_id.items()} == ACTION_COUNTS
    section = document[document.index('id="actions"') : document.index('id="plan-messages"')]
    # The groups come in the order a planner works through them.
    starts = [
        section.index(f'id="actions-{a}"') for a in ("advance", "postpone", "decrease", "cancel")
    ]
    assert starts == sorted(starts)
    # Every shown row is its group's; the long group is cut with the rest counted.
    advance = section[starts[0] : starts[1]]
    assert advance.count("<tr data-ref=") == MAX_GROUP_ROWS
    assert f"and {ACTION_COUNTS['advance'] - MAX_GROUP_ROWS} more" in advance
    shown = [m for m in report.action_messages if m.action != "advance"] + [
        m for m in report.action_messages if m.action == "advance"
    ][:MAX_GROUP_ROWS]
    for message in shown:
        assert f'data-ref="{html.escape(message.supply_ref)}"' in section
    assert "(−5 d)" in advance and "(+9 d)" in section and "(−60)" in section


def test_plan_messages_are_grouped_by_code_with_exact_counts(
    document: str, parsed: _Document
) -> None:
    expected = {**PLAN_MESSAGE_COUNTS, "odd_text": 1}
    assert _groups(parsed, "data-code") == expected
    section = document[document.index('id="plan-messages"') : document.index('id="pegging"')]
    # Errors first, then the most frequent codes.
    codes = re.findall(r'data-code="([^"]+)"', section)
    assert codes == ["no_vendor", "lead_time_missing", "negative_on_hand", "odd_text"]
    assert f"and {61 - MAX_GROUP_ROWS} more" in section
    assert html.escape(f"text {HOSTILE} & more") in section


def test_the_pegging_tree_nests_and_marks_late_orders(report: PlanReport, document: str) -> None:
    section = document[document.index('id="pegging"') : document.index('id="charts"')]
    parsed = parse(section.split(">", 1)[1].rsplit("</section>", 1)[0])
    assert parsed.errors == []
    refs: list[str] = []

    def walk(node: PegNode) -> None:
        refs.append(node.ref)
        for child in node.children:
            walk(child)

    assert report.worst is not None
    walk(report.worst)
    for ref in refs:
        assert f'data-ref="{html.escape(ref)}"' in section
    # Nested lists as deep as the tree: the root's <ul> and one per level below.
    depth, deepest = 0, 0
    for match in re.finditer(r"<(/?)ul\b", section):
        depth += -1 if match.group(1) else 1
        deepest = max(deepest, depth)
    assert deepest == 6
    late = re.findall(r'class="node late-node" data-ref="([^"]+)"', section)
    assert late == ["PL-1", "PL-2", "PL-3"]
    assert "late 23 d" in section  # PL-3 is due on day 20 for a need on day -3


def test_a_plan_without_delays_says_so() -> None:
    full = make_report()
    calm = PlanReport(full.run, (), (), (), None, ())
    document = render_report(calm)
    assert parse(document).errors == []
    assert "No demand is late." in document
    assert "no tree to show" in document
    assert "<svg" not in document


def test_one_inline_svg_per_chart_naming_its_sku(report: PlanReport, document: str) -> None:
    svgs = _svgs(document)
    assert len(svgs) == document.count("<svg") == len(report.charts)
    for svg, series in zip(svgs, report.charts, strict=True):
        assert html.escape(series.item_id) in svg
        assert "<?xml" not in svg and "<!DOCTYPE" not in svg
    # Stock levels are drawn only where the SKU has them.
    blue, frame, hostile = svgs
    assert "safety stock" in blue and ">min<" not in blue and ">max<" not in blue
    assert "safety stock" in frame and ">min<" in frame and ">max<" in frame
    assert "safety stock" not in hostile


def test_ids_are_unique_in_the_page_and_every_reference_resolves(document: str) -> None:
    """Charts in one page must not share ids, or one chart clips to another's box."""
    ids = re.findall(r'\bid="([^"]+)"', document)
    assert len(ids) == len(set(ids)), [i for i, n in Counter(ids).items() if n > 1][:5]
    references = re.findall(r'(?:url\(#|href="#)([^")]+)', document)
    assert references, "the charts clip to their axes and reuse tick markers"
    assert set(references) <= set(ids)


def test_twenty_charts_render_each_in_its_own_figure() -> None:
    document = render_report(make_report(n_charts=20))
    assert document.count("<svg") == 20


def test_a_sku_without_lines_or_with_one_date_still_gets_its_chart() -> None:
    base = make_report()
    charts = (
        InventorySeries("EMPTY", "WH1", (), (), 5.0, None, None),
        InventorySeries("ONE-DAY", "WH1", (D0,), (-3.0,), None, 2.0, 9.0),
    )
    document = render_report(PlanReport(base.run, (), (), (), None, charts))
    empty, one_day = _svgs(document)
    assert "EMPTY" in empty and "no dated lines" in empty
    assert "ONE-DAY" in one_day and "lowest -3" in document
