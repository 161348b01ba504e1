"""The canary dashboard: the body of one issue, rewritten by every run.

It shows the decision, the time left in the window, the status of each
binding gate, the breaches, and the last window of p50/p95 latency and error
rate as Mermaid ``xychart-beta`` charts (GitHub renders them). At the end, a
hidden block holds the canary's state (state.CanaryState) as JSON: the file
source's checks, the rollback already announced and its record. The rollback
issue holds the rollback record again, signed on its own: an edit of the
dashboard cannot undo a rollback."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests
from github import GithubException

from tw_gates.canary.decision import fmt_interval, fmt_number, fmt_span, fmt_value
from tw_gates.canary.state import CanaryState, state_document
from tw_gates.core import json_text
from tw_gates.core.errors import TwGatesError
from tw_gates.core.markdown import inline_code
from tw_gates.core.signing import KeyRing
from tw_gates.issues.tracker import IssueTracker, UpsertOutcome, classify, fingerprint
from tw_gates.schemas.canary import CanaryReport, CheckRecord

STATE_OPEN = "<!-- tw-gates:canary-state "
ROLLBACK_OPEN = "<!-- tw-gates:canary-rollback "
STATE_CLOSE = " -->"
_STATE_BLOCK = re.compile(re.escape(STATE_OPEN) + r"(.*?)" + re.escape(STATE_CLOSE), re.DOTALL)
_ROLLBACK_BLOCK = re.compile(re.escape(ROLLBACK_OPEN) + r"(.*?)" + re.escape(STATE_CLOSE), re.DOTALL)
# GitHub refuses issue bodies over 65,536 characters; stay well below.
MAX_BODY_CHARS = 60_000
MAX_CHART_POINTS = 48
MAX_LISTED_INTERVALS = 50
DECISION_ICON = {"PROMOTE": "🟢", "HOLD": "🟡", "ROLLBACK": "🔴"}
STATUS_ICON = {"pass": "✅ pass", "fail": "❌ fail", "no_data": "⚪ no data"}


def title_for(name: str) -> str:
    return f"tw-gates canary: {name}"


def render_state_block(document: dict[str, Any], opening: str = STATE_OPEN) -> str:
    # "--" cannot occur in our JSON outside strings; inside one it would end
    # the HTML comment, and \\u002d is the same character to a JSON parser.
    text = json.dumps(document, separators=(",", ":"), sort_keys=True, ensure_ascii=True).replace("--", "-\\u002d")
    return f"{opening}{text}{STATE_CLOSE}"


def extract_rollback_record(body: str | None) -> Any:
    """The rollback record block of a rollback issue body (None: none, or not JSON)."""
    blocks = _ROLLBACK_BLOCK.findall(body or "")
    if len(blocks) != 1:
        return None
    try:
        return json_text.loads(blocks[0])
    except ValueError:
        return None


def extract_state(body: str | None) -> tuple[Any, list[str]]:
    """The state document in an issue body: (document or None, warnings).
    Never raises: a person may have edited the issue."""
    if not body:
        return None, []
    blocks = _STATE_BLOCK.findall(body)
    if not blocks:
        return None, ["the dashboard issue has no canary state block: starting the canary over"]
    if len(blocks) > 1:
        return None, [f"the dashboard issue has {len(blocks)} canary state blocks: starting the canary over"]
    try:
        return json_text.loads(blocks[0]), []
    except json.JSONDecodeError as exc:
        return None, [f"canary state block is damaged ({exc.msg}): starting the canary over"]
    except ValueError as exc:
        return None, [f"canary state block is damaged ({exc}): starting the canary over"]


def _code(text: str) -> str:
    return inline_code(text, in_table=True)


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else "n/a"


def render_dashboard(report: CanaryReport, state_document: dict[str, Any] | None) -> str:
    """The issue body for this run (Markdown), ending with the state block."""
    window = report.window
    icon = DECISION_ICON[report.decision]
    lines = [
        f"## {icon} Canary {_code(report.name)}: **{report.decision}**",
        "",
        f"> {_cell(report.reason)}",
        "",
        "| | |",
        "|---|---|",
        f"| decision | **{report.decision}** (exit {report.exit_code}) |",
        f"| time left in the window | {'none: window complete' if window.complete else fmt_span(window.time_left_s)} |",
        f"| window | {_when(window.start)} → {_when(window.end)} ({fmt_span(window.duration_s)}, "
        f"{fmt_span(window.interval_s)} intervals) |",
        f"| canary started | {_when(window.started_at)} |",
        f"| intervals | {window.clean} clean, {window.failed} failed, {window.inconclusive} inconclusive, "
        f"{window.missing} missing, {window.before_start} before the start (of {window.intervals_total}) |",
        f"| coverage | {window.coverage_pct:.1f}% clean ({fmt_number(report.thresholds.min_coverage_pct)}% needed "
        "to promote) |",
        f"| failed checks | {report.failed_checks} (rollback at {report.failure_threshold}) |",
        f"| source | {report.source}{f', {report.queries_sent} range queries' if report.queries_sent else ''} |",
        f"| revision | {_code(report.revision) if report.revision else 'n/a'} |",
        f"| evaluated | {_when(report.evaluated_at)} |",
        "",
        "### Binding gates",
        "",
        "| gate | rule | last | worst (interval) | failed checks | status |",
        "|---|---|---|---|---|---|",
    ]
    for gate in report.gates:
        worst = fmt_value(gate.worst_value, gate.metric)
        if gate.worst_at is not None:
            worst += f" ({gate.worst_at:%m-%d %H:%M})"
        lines.append(
            f"| {gate.name} | {_cell(gate.rule)} | {fmt_value(gate.last_value, gate.metric)} | {worst} | "
            f"{gate.failed_checks} | {STATUS_ICON[gate.status]} |"
        )
    lines.append(f"\nAt least {report.thresholds.min_samples} samples (parse_count) per check; fewer: inconclusive.")
    if report.breaches:
        lines += ["", "### Breaches", "", "| interval | gate | value | limit |", "|---|---|---|---|"]
        for breach in report.breaches[:MAX_LISTED_INTERVALS]:
            start = int(breach.interval_start.timestamp())
            lines.append(
                f"| {fmt_interval(start, window.interval_s)} | {breach.gate} | "
                f"{fmt_value(breach.value, breach.metric)} | {fmt_value(breach.limit, breach.metric)} |"
            )
        if len(report.breaches) > MAX_LISTED_INTERVALS:
            lines.append(f"\n…and {len(report.breaches) - MAX_LISTED_INTERVALS} more breaches (see the JSON report).")
    lines += ["", f"### Last {fmt_span(window.duration_s)}", ""]
    lines += render_charts(report)
    details = render_interval_details(report)
    if report.warnings:
        lines += ["", "### Warnings", ""] + [f"- {_cell(w)}" for w in report.warnings[:20]]
    footer = [
        "",
        "<sub>Updated by `tw-gates canary` on every run; the hidden block below is its state. "
        "Do not edit it (a damaged or unverifiable block starts the canary over).</sub>",
    ]
    state = [render_state_block(state_document)] if state_document is not None else []
    body = "\n".join(lines + details + footer + [""] + state) + "\n"
    if len(body) > MAX_BODY_CHARS:
        body = "\n".join(lines + footer + [""] + state) + "\n"
    return body


def render_interval_details(report: CanaryReport) -> list[str]:
    """Intervals that were not clean since the canary started, collapsed."""
    shown = [c for c in report.checks if c.status != "clean" and c.note != "before the canary started"]
    if not shown:
        return []
    interval_s = report.window.interval_s
    lines = [
        "",
        f"<details><summary>{len(shown)} interval(s) not clean</summary>",
        "",
        "| interval | status | detail |",
        "|---|---|---|",
    ]
    for check in shown[-MAX_LISTED_INTERVALS:]:
        detail = ", ".join(check.breached) if check.breached else check.note
        lines.append(
            f"| {fmt_interval(int(check.interval_start.timestamp()), interval_s)} | {check.status} | {_cell(detail)} |"
        )
    lines += ["", "</details>"]
    return lines


def _series(checks: list[CheckRecord], metric: str) -> list[tuple[datetime, float]]:
    points = [(c.interval_start, c.values.get(metric)) for c in checks]
    return [(moment, value) for moment, value in points if value is not None]


def _downsample(points: list[tuple[datetime, float]]) -> list[tuple[datetime, float]]:
    """At most MAX_CHART_POINTS points; each keeps the worst (highest) value of its group."""
    if len(points) <= MAX_CHART_POINTS:
        return points
    size = -(-len(points) // MAX_CHART_POINTS)
    return [
        (group[0][0], max(v for _, v in group)) for group in (points[i : i + size] for i in range(0, len(points), size))
    ]


def _label(moment: datetime, interval_s: int) -> str:
    # Categories must be unique (a repeated label would merge two points), so
    # each carries its day of month.
    return f"{moment:%d/%H:%M}" if interval_s % 3600 else f"{moment:%d/%Hh}"


def _chart_number(value: float) -> str:
    return f"{value:.4f}".rstrip("0").rstrip(".") or "0"


def xychart(
    title: str, y_title: str, points: list[tuple[datetime, float]], limit: float | None, interval_s: int
) -> list[str]:
    """A Mermaid xychart-beta: the metric as a bar per interval, the limit as a line."""
    labels = ", ".join(f'"{_label(t, interval_s)}"' for t, _ in points)
    values = [v for _, v in points]
    top = max(values + ([limit] if limit is not None else []))
    lines = [
        "```mermaid",
        "xychart-beta",
        f'    title "{title}"',
        f"    x-axis [{labels}]",
        f'    y-axis "{y_title}" 0 --> {_chart_number(top * 1.15 or 1)}',
        f"    bar [{', '.join(_chart_number(v) for v in values)}]",
    ]
    if limit is not None:
        lines.append(f"    line [{', '.join(_chart_number(limit) for _ in values)}]")
    lines.append("```")
    return lines


def render_charts(report: CanaryReport) -> list[str]:
    limits = {g.metric: g.limit for g in report.gates}
    interval_s = report.window.interval_s
    charts = [
        ("latency_p50_ms", "p50 latency (ms), limit as a line", "ms"),
        ("latency_p95_ms", "p95 latency (ms), limit as a line", "ms"),
        ("error_rate_pct", "error rate (%), limit as a line", "%"),
    ]
    lines: list[str] = []
    for metric, title, unit in charts:
        points = _downsample(_series(report.checks, metric))
        if not points:
            lines += [f"_{title.split(',')[0]}: no data in the window yet._", ""]
            continue
        lines += [*xychart(title, unit, points, limits.get(metric), interval_s), ""]
    return lines


@dataclass
class RollbackIssue:
    """The rollback issue of a canary as this run finds it."""

    number: int
    open: bool
    body: str


class CanaryIssues:
    """The canary's issues in the central repository, through the shared issue
    tracker (label tw-gates, marker kind=canary): the dashboard (key <name>),
    which also stores the canary state, and the rollback issue (key
    rollback:<name>), filed when a rollback is announced, holding the signed
    rollback record, and closed when the canary of a new revision promotes."""

    KIND = "canary"

    def __init__(self, client: Any, repo: str, name: str, *, max_issues: int) -> None:
        self.tracker = IssueTracker(client, repo)
        self.client = client
        self.repo = repo
        self.name = name
        self.max_issues = max_issues
        self.rollback_key = f"rollback:{name}"

    @property
    def issue_ref(self) -> str | None:
        """OWNER/REPO#N of the dashboard issue (None: not created yet)."""
        dashboard = self.tracker.find(self.KIND, self.name) if self.tracker.loaded else None
        return f"{self.repo}#{dashboard.number}" if dashboard is not None else None

    def load(self) -> tuple[Any, list[str]]:
        """The state document in the dashboard issue (None: no issue yet)."""
        self.tracker.load()
        issue = self.tracker.find(self.KIND, self.name)
        return extract_state(issue.body) if issue is not None else (None, [])

    def save(
        self, report: CanaryReport, state: CanaryState, ring: KeyRing | None, previous_decision: str | None
    ) -> str:
        """Write the dashboard with the state block, which names the issue it lives in: a new
        dashboard is created, then written once more with its own number in the block."""
        created = self.issue_ref is None
        outcome = self._upsert(report, state.model_copy(update={"issue": self.issue_ref}), ring, previous_decision)
        if created:
            ref = f"{self.repo}#{outcome.issue.number}"
            outcome = self._upsert(report, state.model_copy(update={"issue": ref}), ring, None)
            return f"dashboard issue #{outcome.issue.number} created ({outcome.issue.html_url})"
        return f"dashboard issue #{outcome.issue.number} {outcome.action} ({outcome.issue.html_url})"

    def _upsert(
        self, report: CanaryReport, state: CanaryState, ring: KeyRing | None, previous_decision: str | None
    ) -> UpsertOutcome:
        document = state_document(state, ring)
        body = render_dashboard(report, document)
        # What the dashboard says, without the time it was said (nor the sequence and save time that
        # change on every run): a rerun that learns nothing new writes nothing.
        unchanging = {k: v for k, v in document.items() if k not in ("seq", "saved_at", "signature")}
        content = {"report": report.model_dump(mode="json", exclude={"evaluated_at"}), "state": unchanging}
        comment = None
        if previous_decision is not None and previous_decision != report.decision:
            comment = f"Decision changed: {previous_decision} → **{report.decision}**.\n\n> {_cell(report.reason)}"
        return self.tracker.upsert(
            self.KIND,
            self.name,
            title=title_for(self.name),
            body=body,
            fingerprint=fingerprint(content),
            change_comment=comment,
        )

    def rollback_issue(self, number_hint: int | None) -> RollbackIssue | None:
        """The rollback issue: the open one the tracker lists, else the one the state names
        (its marker or label may have been edited away), open or closed."""
        tracked = self.tracker.find(self.KIND, self.rollback_key)
        if tracked is not None:
            return RollbackIssue(tracked.number, True, tracked.body)
        if number_hint is None:
            return None
        try:
            issue = self.client.repo(self.repo).get_issue(number_hint)
            return RollbackIssue(number_hint, issue.state == "open", issue.body or "")
        except (GithubException, requests.RequestException, TwGatesError) as exc:
            if isinstance(exc, GithubException) and exc.status in (404, 410):
                return RollbackIssue(number_hint, False, "")  # deleted: a person acted
            raise classify(exc, f"reading rollback issue #{number_hint} of {self.repo}") from exc

    def file_rollback(
        self, report: CanaryReport, rollback_key: str, signals: Signals, record: dict[str, Any] | None
    ) -> tuple[str, int | None]:
        """The rollback issue with the signed rollback record (idempotent: the same rollback
        writes nothing); its number (None: none filed)."""
        existing = self.tracker.find(self.KIND, self.rollback_key)
        if existing is None and self.max_issues < 1:
            return "no rollback issue filed: MAX_ISSUES_PER_RUN is 0 (the dashboard issue shows the rollback)", None
        body = render_rollback_issue(report, signals, self.tracker.find(self.KIND, self.name))
        if record is not None:
            body += "\n" + render_state_block(record, ROLLBACK_OPEN) + "\n"
        comment = f"A new rollback of this canary.\n\n> {_cell(report.reason)}" if existing is not None else None
        outcome = self.tracker.upsert(
            self.KIND,
            self.rollback_key,
            title=rollback_title(report),
            body=body,
            fingerprint=fingerprint([rollback_key]),
            change_comment=comment,
        )
        message = f"rollback issue #{outcome.issue.number} {outcome.action} ({outcome.issue.html_url})"
        return message, outcome.issue.number

    def close_rollback(self, report: CanaryReport) -> str | None:
        """On PROMOTE (of a new revision: a rollback of this one stands), the open rollback issue is done."""
        issue = self.tracker.find(self.KIND, self.rollback_key)
        if issue is None:
            return None
        revision = f" (revision {inline_code(report.revision)})" if report.revision else ""
        self.tracker.close(issue, f"The canary now says **PROMOTE**{revision}: closing.\n\n> {_cell(report.reason)}")
        return f"rollback issue #{issue.number} closed: the canary promotes"


@dataclass
class Signals:
    """The rollback signals of this run: what went out, and what did not (retried next run)."""

    sent: list[str] = field(default_factory=list)
    not_sent: list[str] = field(default_factory=list)


def rollback_title(report: CanaryReport) -> str:
    revision = f" ({report.revision})" if report.revision else ""
    return f"tw-gates canary ROLLBACK: {report.name}{revision}"


def render_rollback_issue(report: CanaryReport, signals: Signals, dashboard: Any) -> str:
    interval_s = report.window.interval_s
    lines = [
        f"## 🔴 Canary {_code(report.name)} says ROLLBACK",
        "",
        f"> {_cell(report.reason)}",
        "",
        f"- revision: {inline_code(report.revision) if report.revision else 'n/a'}",
        f"- evaluated: {_when(report.evaluated_at)}",
        f"- dashboard: {f'#{dashboard.number}' if dashboard is not None else title_for(report.name)}",
        "",
        "| interval | gate | value | limit |",
        "|---|---|---|---|",
    ]
    for breach in report.breaches[:MAX_LISTED_INTERVALS]:
        start = int(breach.interval_start.timestamp())
        lines.append(
            f"| {fmt_interval(start, interval_s)} | {breach.gate} | {fmt_value(breach.value, breach.metric)} | "
            f"{fmt_value(breach.limit, breach.metric)} |"
        )
    lines += ["", "Signals sent: " + ("; ".join(signals.sent) if signals.sent else "none") + "."]
    if signals.not_sent:
        lines += ["", "Signals not sent (retried on the next run): " + "; ".join(_cell(s) for s in signals.not_sent)]
    lines += [
        "",
        "**This rollback stands until a person acts**: while this issue is open, the canary of this "
        "revision never promotes (editing the dashboard cannot change that). Close this issue once the "
        "rollback has been dealt with, or canary a new revision. The runbook is in tw-gates' `docs/canary.md`.",
    ]
    return "\n".join(lines) + "\n"
