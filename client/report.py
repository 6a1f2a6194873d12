"""The plan report (SPEC §8, ``masterplan report``): one self-contained HTML file.

A planner mails the file to a colleague or opens it from a share months later,
often on a machine without network access, so the document carries everything
it needs: the style sheet is inline, the charts are inline SVG drawn with
matplotlib, and there is no script, font, image or link to fetch. Every text
that comes from the data (item ids, refs, message texts) is escaped, since SCM
data is typed by people and may contain anything.

The module only renders: :class:`~masterplan.contract.views.PlanReport` is
read from the SCM database by the connector, so that the same report can be
rendered as HTML here and tested without a database.
"""

from __future__ import annotations

import datetime as dt
import html
import io
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Final, TypeVar

import matplotlib
import matplotlib.dates as mdates
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from masterplan.contract.views import (
    ActionMessageRow,
    DelayPath,
    DelayStep,
    InventorySeries,
    PegNode,
    PlanMessageRow,
    PlanReport,
    RunInfo,
)

__all__ = ["ACTION_ORDER", "MAX_GROUP_ROWS", "MAX_TREE_NODES", "render_report"]

MAX_GROUP_ROWS: Final = 50
"""Rows shown per table (delays, each action type, each plan message code).

A plan can hold tens of thousands of messages; a report that lists them all is
unreadable and slow to open, so each table shows its first rows and says how
many more there are (the counts stay exact)."""

MAX_TREE_NODES: Final = 400
"""Nodes of the pegging tree shown before the rest is summarised, for the same
reason: the tree of a finished good can fan out into thousands of parts."""

ACTION_ORDER: Final = ("advance", "postpone", "decrease", "cancel")
"""The §4 action types, in the order a planner works through them."""

# The palette of the style sheet, repeated in the charts so that they match.
_INK: Final = "#1f2937"
_MUTED: Final = "#6b7280"
_GRID: Final = "#e5e7eb"
_BLUE: Final = "#2563eb"
_RED: Final = "#c62828"
_AMBER: Final = "#d97706"
_VIOLET: Final = "#7c3aed"
_GREEN: Final = "#059669"

_CSS: Final = """
:root {
  --ink: #1f2937; --muted: #6b7280; --line: #e5e7eb; --bg: #f3f5f8;
  --card: #ffffff; --accent: #2563eb; --late: #c62828; --late-bg: #fdecec;
  --warn: #b45309; --warn-bg: #fef3e2; --ok: #15803d; --ok-bg: #e8f5ec;
}
* { box-sizing: border-box; }
html { background: var(--bg); }
body {
  margin: 0; color: var(--ink); font-size: 14px; line-height: 1.45;
  font-family: -apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, "Helvetica Neue",
    "Liberation Sans", "DejaVu Sans", Arial, sans-serif;
}
.page { max-width: 1200px; margin: 0 auto; padding: 28px 28px 40px; }
header.masthead {
  background: var(--card); border-bottom: 1px solid var(--line);
  border-top: 4px solid var(--accent);
}
header.masthead .page { padding-top: 20px; padding-bottom: 18px; }
.eyebrow {
  color: var(--muted); font-size: 12px; letter-spacing: .08em; text-transform: uppercase;
  margin: 0 0 2px;
}
h1 { font-size: 26px; margin: 0 0 12px; font-weight: 650; letter-spacing: -.01em; }
h2 {
  font-size: 17px; margin: 0 0 14px; font-weight: 650; display: flex; align-items: center;
  gap: 10px;
}
h3 { font-size: 14px; margin: 18px 0 8px; font-weight: 650; display: flex; align-items: center;
  gap: 8px; }
.meta { display: flex; flex-wrap: wrap; gap: 6px 28px; margin: 0; }
.meta div { display: flex; flex-direction: column; }
.meta dt { color: var(--muted); font-size: 11px; text-transform: uppercase;
  letter-spacing: .06em; }
.meta dd { margin: 0; font-weight: 600; }
code, .mono { font-family: "DejaVu Sans Mono", "Liberation Mono", Menlo, Consolas, monospace;
  font-size: 12.5px; }
.tiles { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 12px;
  margin-bottom: 22px; }
.tile { background: var(--card); border: 1px solid var(--line); border-radius: 10px;
  padding: 12px 14px; box-shadow: 0 1px 2px rgba(16, 24, 40, .04); }
.tile .label { color: var(--muted); font-size: 12px; }
.tile .value { font-size: 24px; font-weight: 650; font-variant-numeric: tabular-nums;
  margin-top: 2px; }
.tile .sub { color: var(--muted); font-size: 12px; font-variant-numeric: tabular-nums; }
.tile.late { border-left: 4px solid var(--late); }
.tile.late .value { color: var(--late); }
.tile.warn { border-left: 4px solid var(--warn); }
.tile.warn .value { color: var(--warn); }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 12px;
  padding: 20px 22px; margin-bottom: 22px; box-shadow: 0 1px 3px rgba(16, 24, 40, .05); }
.count { background: #eef2f7; color: #374151; border-radius: 999px; padding: 1px 9px;
  font-size: 12px; font-weight: 600; font-variant-numeric: tabular-nums; }
.badge { display: inline-block; border-radius: 4px; padding: 0 6px; font-size: 11.5px;
  font-weight: 600; line-height: 18px; white-space: nowrap; }
.badge.late, .badge.error { background: var(--late-bg); color: var(--late); }
.badge.warning { background: var(--warn-bg); color: var(--warn); }
.badge.ok { background: var(--ok-bg); color: var(--ok); }
.badge.kind { background: #eef2f7; color: #374151; font-weight: 500; }
.badge.demand { background: #e8effd; color: #1d4ed8; }
.badge.supply { background: #eef7f1; color: #166534; }
table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums;
  font-size: 13px; }
th { text-align: left; font-size: 11.5px; color: var(--muted); font-weight: 600;
  text-transform: uppercase; letter-spacing: .04em; padding: 6px 10px;
  border-bottom: 1px solid var(--line); }
td { padding: 5px 10px; border-bottom: 1px solid #f0f2f5; vertical-align: top; }
tbody tr:last-child td { border-bottom: none; }
td.num, th.num { text-align: right; }
.neg { color: var(--late); font-weight: 600; }
.muted { color: var(--muted); }
.more { color: var(--muted); font-style: italic; margin: 8px 10px 0; font-size: 13px; }
.empty { color: var(--ok); margin: 0; }
.summary-strip { display: flex; flex-wrap: wrap; gap: 8px; margin-bottom: 4px; }
.summary-strip span { border: 1px solid var(--line); border-radius: 8px; padding: 4px 10px;
  font-size: 13px; }
.summary-strip b { font-variant-numeric: tabular-nums; }
table.delays > tbody > tr.demand > td { border-bottom: none; padding-bottom: 2px; }
table.delays > tbody > tr.why > td { padding-top: 0; padding-bottom: 12px;
  border-bottom: 1px solid var(--line); }
.cause { margin: 2px 0 6px; }
.cause::before { content: "Cause: "; color: var(--muted); }
ol.path { list-style: none; margin: 0; padding: 0; font-size: 12.5px; color: #374151; }
ol.path li { padding: 2px 0 2px calc(var(--level, 0) * 18px); }
ol.path li::before { content: "\\21B3\\00a0"; color: #9ca3af; }
ol.path li:first-child::before { content: ""; }
ul.tree, ul.tree ul { list-style: none; margin: 0; padding-left: 20px; }
ul.tree { padding-left: 0; font-size: 13px; }
ul.tree ul { border-left: 1px dashed #cbd5e1; margin-left: 7px; padding-left: 14px; }
ul.tree li { margin: 3px 0; }
ul.tree summary { cursor: pointer; }
ul.tree .node { display: inline-flex; flex-wrap: wrap; gap: 4px 10px; align-items: baseline; }
ul.tree .leaf { padding-left: 16px; }
ul.tree .late-node { background: var(--late-bg); border-radius: 6px; padding: 1px 6px; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr));
  gap: 16px; }
figure.chart { margin: 0; border: 1px solid var(--line); border-radius: 10px;
  padding: 12px 12px 6px; }
figure.chart figcaption { font-weight: 600; margin-bottom: 4px; display: flex; gap: 8px;
  align-items: baseline; flex-wrap: wrap; }
figure.chart svg { width: 100%; height: auto; display: block; }
footer { color: var(--muted); font-size: 12px; text-align: center; padding: 8px 0 0; }
@media print {
  html, body { background: #fff; }
  .card, .tile, figure.chart { box-shadow: none; break-inside: avoid; }
}
"""


def render_report(report: PlanReport) -> str:
    """Render a plan report as one self-contained HTML5 document.

    The document needs nothing from the network to be viewed (inline CSS,
    inline SVG charts, no scripts) so that it can be mailed, archived and
    opened offline. Long tables are cut at :data:`MAX_GROUP_ROWS` rows and the
    pegging tree at :data:`MAX_TREE_NODES` nodes; every count shown is exact.

    Args:
        report: The plan as the connector read it from the SCM database.

    Returns:
        The HTML text, starting with ``<!DOCTYPE html>``.
    """
    run = report.run
    title = f"Plan report: {run.plan_id}, run {run.run_id}"
    body = "\n".join(
        [
            _masthead(run),
            '<main class="page">',
            _tiles(report),
            _delays_section(report.delays),
            _actions_section(report.action_messages),
            _plan_messages_section(report.plan_messages),
            _tree_section(report.worst),
            _charts_section(report.charts),
            f"<footer>masterplan plan report &middot; plan {_e(run.plan_id)} &middot; "
            f"run {_e(run.run_id)}</footer>",
            "</main>",
        ]
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="generator" content="masterplan">\n'
        f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )


# --- text helpers -------------------------------------------------------------------------


def _e(value: object) -> str:
    """Escape any value for HTML text and quoted attributes."""
    return html.escape(str(value), quote=True)


def _date(value: dt.date | None, missing: str = "—") -> str:
    return missing if value is None else value.isoformat()


def _timestamp(value: dt.datetime | None) -> str:
    """A run's time to the second, with its zone where it has one."""
    if value is None:
        return "—"
    text = value.strftime("%Y-%m-%d %H:%M:%S")
    zone = value.tzname()
    return f"{text} {zone}" if zone else text


def _qty(value: float) -> str:
    """A quantity as a planner reads it: thousands grouped, no needless decimals."""
    if abs(value - round(value)) < 1e-9:
        return f"{round(value):,}"
    return f"{value:,.3f}".rstrip("0").rstrip(".")


def _signed(value: float, unit: str = "") -> str:
    text = _qty(abs(value))
    sign = "+" if value > 0 else "−" if value < 0 else "±"
    return f"{sign}{text}{unit}"


def _num_cell(value: float) -> str:
    cls = "num neg" if value < 0 else "num"
    return f'<td class="{cls}">{_e(_qty(value))}</td>'


def _sku(item_id: str | None, warehouse_id: str | None) -> str:
    item = _e(item_id) if item_id is not None else '<span class="muted">—</span>'
    if warehouse_id is None:
        return item
    return f'{item} <span class="muted">@ {_e(warehouse_id)}</span>'


def _ref(kind: str | None, ref: str | None) -> str:
    if ref is None:
        return '<span class="muted">—</span>'
    kind_badge = f'<span class="badge kind">{_e(kind)}</span> ' if kind else ""
    return f'{kind_badge}<span class="mono">{_e(ref)}</span>'


def _more(shown: int, total: int) -> str:
    if total <= shown:
        return ""
    return f'<p class="more">and {total - shown:,} more not shown</p>'


def _count(n: int) -> str:
    return f'<span class="count">{n:,}</span>'


# --- sections -----------------------------------------------------------------------------


def _masthead(run: RunInfo) -> str:
    """The run's identity, so that a printed report says which plan it shows."""
    items = [
        ("Plan", _e(run.plan_id)),
        ("Run", f'<span class="mono">{_e(run.run_id)}</span>'),
        ("Mode", _e(run.mode.replace("_", " "))),
        ("Plan date", _e(_date(run.plan_date))),
        ("Finished", _e(_timestamp(run.finished_at))),
    ]
    if run.started_at is not None and run.finished_at is not None:
        seconds = (run.finished_at - run.started_at).total_seconds()
        items.append(("Took", _e(f"{seconds:,.1f} s")))
    if run.base_run_id is not None:
        items.append(("Changed run", f'<span class="mono">{_e(run.base_run_id)}</span>'))
    meta = "".join(f"<div><dt>{label}</dt><dd>{value}</dd></div>" for label, value in items)
    return (
        '<header class="masthead"><div class="page">'
        '<p class="eyebrow">masterplan &middot; plan report</p>'
        f"<h1>Plan {_e(run.plan_id)}</h1>"
        f'<dl class="meta">{meta}</dl>'
        "</div></header>"
    )


def _tiles(report: PlanReport) -> str:
    """The run's counts at a glance; late and problem counts stand out in colour."""
    run = report.run
    tiles = [
        ("Planned orders", run.planned_order_count, "", "in the plan"),
        ("Pegging rows", run.pegging_count, "", "demand to supply links"),
        ("Action messages", run.action_message_count, "", "on existing supply"),
        (
            "Delay messages",
            run.delay_message_count,
            "late" if run.delay_message_count else "",
            "late demands" if run.delay_message_count else "no demand is late",
        ),
        (
            "Plan messages",
            run.plan_message_count,
            "warn" if run.plan_message_count else "",
            "warnings and errors",
        ),
    ]
    out = ['<section class="tiles" aria-label="Summary">']
    for label, value, cls, sub in tiles:
        sub_html = f'<div class="sub">{_e(sub)}</div>' if sub else ""
        out.append(
            f'<div class="tile {cls}" data-tile="{_e(label)}">'
            f'<div class="label">{_e(label)}</div>'
            f'<div class="value">{value:,}</div>{sub_html}</div>'
        )
    out.append(
        '<div class="tile" data-tile="Rows changed"><div class="label">Rows added / removed</div>'
        f'<div class="value">+{run.rows_added:,} <span class="muted">/</span> '
        f"−{run.rows_removed:,}</div>"
        '<div class="sub">by this run&#x27;s write</div></div>'
    )
    out.append("</section>")
    return "\n".join(out)


def _delays_section(delays: Sequence[DelayPath]) -> str:
    """The most delayed demands, each with the path of late supplies to its cause."""
    head = f'<section class="card" id="delays"><h2>Most delayed demands {_count(len(delays))}</h2>'
    if not delays:
        return f'{head}<p class="empty">No demand is late.</p></section>'
    rows = []
    for path in delays[:MAX_GROUP_ROWS]:
        d = path.demand
        if d.futures_date is None:
            available = '<span class="badge late">never</span>'
            delay = '<span class="badge late">never covered</span>'
        else:
            available = _e(_date(d.futures_date))
            days = (
                d.delay_days
                if d.delay_days is not None
                else (d.futures_date - d.requirement_date).days
            )
            delay = f'<span class="badge late">{days:,} d</span>'
        rows.append(
            f'<tr class="demand" data-ref="{_e(d.demand_ref)}">'
            f"<td>{_ref(d.demand_kind, d.demand_ref)}</td><td>{_e(d.item_id)}</td>"
            f"<td>{_e(d.warehouse_id)}</td><td>{_e(_date(d.requirement_date))}</td>"
            f'<td>{available}</td><td class="num">{delay}</td></tr>'
        )
        steps = "".join(_delay_step(step) for step in path.steps)
        rows.append(
            '<tr class="why"><td colspan="6">'
            f'<p class="cause">{_e(path.cause)}</p>'
            f'<ol class="path">{steps}</ol></td></tr>'
        )
    return (
        f'{head}<table class="delays"><thead><tr><th>Demand</th><th>Item</th><th>Warehouse</th>'
        '<th>Required</th><th>Available</th><th class="num">Delay</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
        f"{_more(min(len(delays), MAX_GROUP_ROWS), len(delays))}</section>"
    )


def _delay_step(step: DelayStep) -> str:
    """One requirement of a delay path and the supply that made it late."""
    needs = (
        f"{_ref(step.demand_kind, step.demand_ref)} {_sku(step.item_id, step.warehouse_id)} "
        f'<span class="muted">needed</span> {_e(_date(step.requirement_date))}'
    )
    if step.supply_ref is None:
        takes = ' &rarr; <span class="badge late">shortfall: no supply</span>'
    else:
        late = ""
        if step.available_date is not None and step.available_date > step.requirement_date:
            days = (step.available_date - step.requirement_date).days
            late = f' <span class="badge late">{days:,} d late</span>'
        takes = (
            f" &rarr; {_ref(step.supply_kind, step.supply_ref)} "
            f'<span class="muted">available</span> {_e(_date(step.available_date, "never"))}{late}'
        )
    return f'<li style="--level: {step.level:d}">{needs}{takes}</li>'


_T = TypeVar("_T")


def _grouped(rows: Iterable[_T], key: Callable[[_T], str]) -> dict[str, list[_T]]:
    """Rows by key, keys and rows in the order first seen."""
    groups: dict[str, list[_T]] = {}
    for row in rows:
        groups.setdefault(key(row), []).append(row)
    return groups


def _actions_section(messages: Sequence[ActionMessageRow]) -> str:
    """Action messages by type, since a planner works through them one type at a time."""
    groups = _grouped(messages, lambda m: m.action)
    order = [*ACTION_ORDER, *sorted(a for a in groups if a not in ACTION_ORDER)]
    strip = "".join(
        f'<span data-action="{_e(a)}">{_e(a)} <b>{len(groups.get(a, [])):,}</b></span>'
        for a in order
    )
    out = [
        f'<section class="card" id="actions"><h2>Action messages {_count(len(messages))}</h2>',
        f'<div class="summary-strip">{strip}</div>',
    ]
    if not messages:
        out.append('<p class="empty">No action messages: existing supply fits the plan.</p>')
    for action in order:
        rows = groups.get(action, [])
        if not rows:
            continue
        body = "".join(_action_row(m) for m in rows[:MAX_GROUP_ROWS])
        out.append(
            f'<section class="group" id="actions-{_e(action)}" data-count="{len(rows)}">'
            f"<h3>{_e(action.capitalize())} {_count(len(rows))}</h3>"
            "<table><thead><tr><th>Supply</th><th>Item</th><th>Warehouse</th>"
            '<th>Receipt date</th><th class="num">Receipt qty</th><th>Suggestion</th>'
            f"</tr></thead><tbody>{body}</tbody></table>"
            f"{_more(min(len(rows), MAX_GROUP_ROWS), len(rows))}</section>"
        )
    out.append("</section>")
    return "\n".join(out)


def _action_row(m: ActionMessageRow) -> str:
    """One message, with what to change said as a difference to act on."""
    parts = []
    if m.suggested_date is not None and m.suggested_date != m.receipt_date:
        days = (m.suggested_date - m.receipt_date).days
        parts.append(f"to {_e(_date(m.suggested_date))} ({_e(_signed(days, ' d'))})")
    if m.suggested_qty is not None and m.suggested_qty != m.receipt_qty:
        parts.append(
            f"qty {_e(_qty(m.suggested_qty))} ({_e(_signed(m.suggested_qty - m.receipt_qty))})"
        )
    if m.action == "cancel":
        parts = ['<span class="badge late">cancel</span>']
    suggestion = "; ".join(parts) if parts else '<span class="muted">—</span>'
    return (
        f'<tr data-ref="{_e(m.supply_ref)}"><td>{_ref(m.supply_kind, m.supply_ref)}</td>'
        f"<td>{_e(m.item_id)}</td><td>{_e(m.warehouse_id)}</td>"
        f"<td>{_e(_date(m.receipt_date))}</td>{_num_cell(m.receipt_qty)}"
        f"<td>{suggestion}</td></tr>"
    )


def _plan_messages_section(messages: Sequence[PlanMessageRow]) -> str:
    """Plan messages by code: one data problem tends to repeat over many SKUs."""
    groups = _grouped(messages, lambda m: m.code)
    severity = {code: _worst_severity(rows) for code, rows in groups.items()}
    # Errors first, then the codes that repeat most.
    order = sorted(groups, key=lambda c: (severity[c] != "error", -len(groups[c]), c))
    out = [
        f'<section class="card" id="plan-messages"><h2>Plan messages {_count(len(messages))}</h2>'
    ]
    if not messages:
        out.append('<p class="empty">No plan messages.</p>')
    for code in order:
        rows = groups[code]
        body = "".join(
            f'<tr><td><span class="badge {_severity_class(m.severity)}">{_e(m.severity)}</span></td>'
            f"<td>{_sku(m.item_id, m.warehouse_id)}</td><td>{_e(m.text)}</td></tr>"
            for m in rows[:MAX_GROUP_ROWS]
        )
        out.append(
            f'<section class="group" data-code="{_e(code)}" data-count="{len(rows)}">'
            f'<h3><span class="badge {_severity_class(severity[code])}">{_e(severity[code])}</span>'
            f" <code>{_e(code)}</code> {_count(len(rows))}</h3>"
            '<table><thead><tr><th style="width: 90px">Severity</th>'
            '<th style="width: 260px">SKU</th><th>Message</th></tr></thead>'
            f"<tbody>{body}</tbody></table>"
            f"{_more(min(len(rows), MAX_GROUP_ROWS), len(rows))}</section>"
        )
    out.append("</section>")
    return "\n".join(out)


def _worst_severity(rows: Sequence[PlanMessageRow]) -> str:
    return "error" if any(m.severity == "error" for m in rows) else rows[0].severity


def _severity_class(severity: str) -> str:
    return "error" if severity == "error" else "warning"


def _tree_section(worst: PegNode | None) -> str:
    """The pegging tree of the worst delay, down to where it is late."""
    head = '<section class="card" id="pegging"><h2>Pegging tree of the worst delay</h2>'
    if worst is None:
        return (
            f'{head}<p class="empty">No demand is late, so there is no tree to show.</p></section>'
        )
    budget = [MAX_TREE_NODES]
    tree = _tree_node(worst, budget)
    more = _more(MAX_TREE_NODES - budget[0], _tree_size(worst))
    return f'{head}<ul class="tree">{tree}</ul>{more}</section>'


def _tree_size(node: PegNode) -> int:
    size, stack = 0, [node]
    while stack:
        current = stack.pop()
        size += 1
        stack.extend(current.children)
    return size


def _tree_node(node: PegNode, budget: list[int]) -> str:
    """One node and, while the budget lasts, its children (late nodes marked)."""
    budget[0] -= 1
    late = node.due_date is not None and node.due_date > node.date
    parts = [
        f'<span class="badge {node.role}">{_e(node.role)}</span>',
        _ref(node.kind, node.ref),
        f"<span>{_sku(node.item_id, node.warehouse_id)}</span>",
        f"<span>{_e(_date(node.date))}</span>",
        f'<span class="mono">qty {_e(_qty(node.qty))}</span>',
    ]
    if node.due_date is not None:
        parts.append(f'<span><span class="muted">due</span> {_e(_date(node.due_date))}</span>')
    if late and node.due_date is not None:
        days = (node.due_date - node.date).days
        parts.append(f'<span class="badge late">late {days:,} d</span>')
    cls = "node late-node" if late else "node"
    line = f'<span class="{cls}" data-ref="{_e(node.ref)}">{" ".join(parts)}</span>'
    if not node.children:
        return f'<li class="leaf">{line}</li>'
    children = []
    for child in node.children:
        if budget[0] <= 0:
            break
        children.append(_tree_node(child, budget))
    hidden = len(node.children) - len(children)
    if hidden:
        children.append(f'<li class="more">{hidden:,} more branches not shown</li>')
    return f"<li><details open><summary>{line}</summary><ul>{''.join(children)}</ul></details></li>"


def _charts_section(charts: Sequence[InventorySeries]) -> str:
    """Projected inventory of the most critical SKUs, as inline SVG."""
    head = f'<section class="card" id="charts"><h2>Projected inventory {_count(len(charts))}</h2>'
    if not charts:
        return f'{head}<p class="empty">No charts.</p></section>'
    figures = []
    for index, series in enumerate(charts):
        lowest = min(series.projected, default=0.0)
        flag = f'<span class="badge late">lowest {_e(_qty(lowest))}</span>' if lowest < 0 else ""
        figures.append(
            f'<figure class="chart" data-sku="{_e(series.item_id)}@{_e(series.warehouse_id)}">'
            f"<figcaption>{_sku(series.item_id, series.warehouse_id)} {flag}</figcaption>"
            f"{_chart_svg(series, index)}</figure>"
        )
    return f'{head}<div class="charts">{"".join(figures)}</div></section>'


# --- charts -------------------------------------------------------------------------------

_SVG_START = re.compile(r"<svg\b[^>]*>")
_SVG_SIZE = re.compile(r'\s(?:width|height)="[^"]*"')


def _chart_svg(series: InventorySeries, index: int = 0) -> str:
    """One SKU's projected quantity as an inline ``<svg>`` element.

    Drawn on a bare :class:`~matplotlib.figure.Figure` with the SVG canvas, so
    that no pyplot state or GUI backend is involved and each figure is freed
    as soon as it is drawn.

    Args:
        series: The SKU's projected quantity and its stock levels.
        index: The chart's place in the document; it salts the SVG's internal
            ids so that charts embedded in one page do not share ids.

    Returns:
        The ``<svg>`` element, without XML prolog or doctype, sized to the
        width of its container.
    """
    with matplotlib.rc_context(
        {
            # Text stays text in the SVG: searchable, selectable and small.
            "svg.fonttype": "none",
            # Deterministic internal ids, distinct per chart (see _scope_ids).
            "svg.hashsalt": f"masterplan-chart-{index}",
            "font.family": "sans-serif",
            "font.sans-serif": ["DejaVu Sans", "Liberation Sans", "Arial", "sans-serif"],
            "font.size": 10,
            "text.color": _INK,
            "axes.edgecolor": "#9ca3af",
            "axes.labelcolor": _MUTED,
            "axes.linewidth": 0.8,
            "xtick.color": _MUTED,
            "ytick.color": _MUTED,
            "xtick.labelsize": 9.5,
            "ytick.labelsize": 9.5,
            "legend.fontsize": 9.5,
        }
    ):
        fig = Figure(figsize=(7.0, 2.7), layout="constrained")
        ax = fig.add_subplot()
        _draw_series(ax, series)
        buffer = io.StringIO()
        FigureCanvasSVG(fig).print_svg(
            buffer,
            metadata={"Creator": None, "Date": None, "Format": None, "Type": None},
        )
    text = buffer.getvalue()
    svg = text[text.index("<svg") :]
    label = f"Projected inventory of {series.item_id} at {series.warehouse_id}"

    def _root(match: re.Match[str]) -> str:
        tag = _SVG_SIZE.sub("", match.group(0))
        return f'{tag[:-1]} role="img" aria-label="{_e(label)}"><title>{_e(label)}</title>'

    return _scope_ids(_SVG_START.sub(_root, svg, count=1), f"chart{index}-")


_SVG_ID = re.compile(r'\bid="([^"]+)"')
_SVG_ID_USE = re.compile(r'(\bid="|url\(#|href="#)([^")]+)')


def _scope_ids(svg: str, prefix: str) -> str:
    """Prefix every id of an SVG and the references to them.

    matplotlib numbers its elements per figure (``patch_1``, ``line2d_1``), so
    two charts inlined in one page would share ids, which HTML forbids and
    which lets one chart's ``url(#...)`` resolve to another chart's clip path.
    """
    ids = set(_SVG_ID.findall(svg))

    def scoped(match: re.Match[str]) -> str:
        lead, name = match.group(1), match.group(2)
        return f"{lead}{prefix}{name}" if name in ids else match.group(0)

    return _SVG_ID_USE.sub(scoped, svg)


def _draw_series(ax: Axes, series: InventorySeries) -> None:
    """Draw a step chart of projected quantity with its stock levels."""
    dates = list(series.dates)
    values = [float(v) for v in series.projected]
    ax.grid(axis="y", color=_GRID, linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.axhline(0.0, color=_MUTED, linewidth=0.9)
    if not dates:
        ax.text(
            0.5,
            0.5,
            "no dated lines",
            transform=ax.transAxes,
            ha="center",
            va="center",
            color=_MUTED,
        )
        ax.set_yticks([])
        ax.set_xticks([])
        return
    # The last level holds on after the last date: draw it a little further,
    # or a step chart ends in a point nobody sees.
    span = (dates[-1] - dates[0]).days
    tail = dates[-1] + dt.timedelta(days=max(1, round(span * 0.04)))
    head = dates[0] - dt.timedelta(days=max(1, round(span * 0.01)))
    # matplotlib's date numbers: the date locator and formatter read them.
    xs = np.asarray(mdates.date2num([*dates, tail]), dtype=np.float64)
    ys = np.asarray([*values, values[-1]], dtype=np.float64)
    ax.plot(xs, ys, drawstyle="steps-post", color=_BLUE, linewidth=1.6, label="projected")
    # Shade below zero in red and above it in pale blue; clipping each side
    # to zero, rather than masking points, keeps every step's area whole.
    ax.fill_between(xs, np.minimum(ys, 0.0), 0.0, step="post", color=_RED, alpha=0.2, lw=0)
    ax.fill_between(xs, np.maximum(ys, 0.0), 0.0, step="post", color=_BLUE, alpha=0.07, lw=0)
    levels = (
        (series.max_qty, "max", _GREEN, (0, (6, 3))),
        (series.min_qty, "min", _VIOLET, (0, (1, 2))),
        (series.safety_stock, "safety stock", _AMBER, (0, (4, 2))),
    )
    for level, label, colour, style in levels:
        if level is not None:
            ax.axhline(level, color=colour, linewidth=1.2, linestyle=style, label=label)
    lowest = int(np.argmin(ys))
    if ys[lowest] < 0:
        ax.plot(xs[lowest], ys[lowest], marker="o", markersize=4, color=_RED, linestyle="none")
    locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
    ax.xaxis.set_major_locator(locator)
    # Tick labels say day and month; the corner says the year once.
    formatter = mdates.ConciseDateFormatter(
        locator, offset_formats=["", "%Y", "%Y", "%Y", "%Y", "%Y"]
    )
    ax.xaxis.set_major_formatter(formatter)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: _qty(float(v))))
    ax.set_xlim(float(mdates.date2num(head)), float(xs[-1]))
    ax.set_ylabel("quantity")
    ax.legend(
        loc="lower left",
        bbox_to_anchor=(0.0, 1.0),
        ncols=4,
        frameon=False,
        borderaxespad=0.2,
        handlelength=2.2,
    )
