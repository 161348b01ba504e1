"""S2 + R1: file the audit's unregistered findings as issues in the central
repository - capped, never duplicated, never lost.

One run:

1. read the audit report; findings are deduplicated and given stable ids;
2. ``GET /rate_limit`` (free): quota exhausted -> fallback; below the threshold ->
   digest only;
3. the write probe (``IssueTracker.check_write_access``: ensure the label exists);
   no permission, or no clear answer -> fallback;
4. one paginated listing of the open tw-gates issues (the tracker);
5. plan: repositories with findings <= cap -> one issue per repository, else one
   digest; "false positive" ticks found in the listed bodies are honoured; an
   unchanged fingerprint means no write;
6. write in a fixed order (creates/updates, then closes); a failure sends every
   finding not yet filed to the fallback artifact; after creating, list again
   and close duplicates a concurrent run may have filed.

The fallback artifact (``schemas/issue_fallback.py``) is written atomically and
redacted; the run then notifies Slack (if configured), prints ``::error::`` and
exits 2.
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, Field, ValidationError, field_validator

from tw_gates.core import metrics
from tw_gates.core.errors import ExitCode, ExternalServiceError, UsageError
from tw_gates.core.fsio import atomic_write_json, read_input
from tw_gates.core.notify import notify
from tw_gates.core.progress import Progress, silent
from tw_gates.core.redact import REDACTOR
from tw_gates.core.settings import GitHubSettings, NotifySettings, describe_validation_error, env
from tw_gates.core.signing import canonical_bytes, sha256_hex
from tw_gates.core.units import parse_duration
from tw_gates.issues.tracker import (
    DEFAULT_LABEL,
    MAX_BODY_CHARS,
    IssueTracker,
    TrackedIssue,
    TrackerError,
    classify,
    clean_text,
    fingerprint,
    inline_code,
)
from tw_gates.schemas.audit import AuditReport
from tw_gates.schemas.consumer import REPO_PATTERN, utc_now_iso
from tw_gates.schemas.issue_fallback import FallbackFinding, FallbackReason, IssueFallback
from tw_gates.schemas.severity import SEVERITIES, SEVERITY_RANK

DIGEST_KEY = "unregistered-hits"
MANAGED_KINDS = ("repo", "digest")
MAX_AUDIT_BYTES = 256 * 1024 * 1024
# Room left in a body for the header, the table and the false-positive list.
BODY_BUDGET = MAX_BODY_CHARS - 1_500
# Items listed in one change comment before "... and N more".
COMMENT_ITEMS = 30
# Stop starting new writes this close to the deadline: leave time for the fallback.
DEADLINE_MARGIN_S = 5.0

# The counters every run declares at 0 (besides the failures by reason).
COUNTED = ("audit_digest_created_total", "audit_fp_marked_total", "audit_findings_filed_total")
_REPO = re.compile(REPO_PATTERN)
_CHECKBOX = re.compile(r"^\s*[-*] \[(?P<mark>[ xX])\] .*`(?P<id>f-[0-9a-f]{16})`\s*$")
SECTION_FINDINGS = "<!-- tw-gates:findings -->"
SECTION_FALSE_POSITIVES = "<!-- tw-gates:false-positives -->"
SECTION_END = "<!-- tw-gates:end -->"


# ============================================================================ settings


class FileIssuesSettings(GitHubSettings, NotifySettings):
    audit: Path | None = Field(None, validation_alias=env("TW_AUDIT_REPORT", "audit"))
    central_repo: str | None = Field(None, validation_alias=env("TW_CENTRAL_REPO", "central_repo"))
    dry_run: bool = Field(False, validation_alias=env("TW_DRY_RUN", "dry_run"))
    max_issues: int = Field(10, ge=0, le=1000, validation_alias=env("MAX_ISSUES_PER_RUN", "max_issues"))
    audit_id: str | None = Field(None, min_length=1, max_length=200, validation_alias=env("TW_AUDIT_ID", "audit_id"))
    fallback_dir: Path = Field(Path("tw-gates-fallback"), validation_alias=env("TW_FALLBACK_DIR", "fallback_dir"))
    label: str = Field(DEFAULT_LABEL, pattern=r"^[^,\s][^,]{0,49}$", validation_alias=env("TW_ISSUE_LABEL", "label"))
    quota_threshold: int = Field(500, ge=0, validation_alias=env("TW_QUOTA_THRESHOLD", "quota_threshold"))
    # A duration from now ("15m"), an ISO-8601 time or epoch seconds.
    deadline: str = Field("15m", validation_alias=env("TW_DEADLINE", "deadline"))

    @field_validator("central_repo")
    @classmethod
    def _repo(cls, value: str | None) -> str | None:
        if value is not None and not _REPO.match(value):
            raise ValueError("must be owner/name")
        return value

    def deadline_epoch(self, now: float | None = None) -> float:
        return parse_deadline(self.deadline, time.time() if now is None else now)


def parse_deadline(text: str, now: float) -> float:
    """``15m``/``900`` (from now), ``2026-01-01T12:00:00Z`` or epoch seconds."""
    raw = text.strip()
    if re.fullmatch(r"\d{9,}(\.\d+)?", raw):
        return float(raw)
    if re.match(r"^\d{4}-\d{2}-\d{2}", raw):
        try:
            moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            raise UsageError(f"--deadline: not a time: {text!r}") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.timestamp()
    return now + parse_duration(raw).total_seconds()


# ============================================================================ findings


@dataclass(frozen=True)
class Finding:
    repo: str
    path: str
    line: int
    pattern: str
    severity: str

    @cached_property
    def id(self) -> str:
        """Stable across runs and severity changes: the same code at the same place."""
        return "f-" + sha256_hex(canonical_bytes([self.repo.lower(), self.path, self.line, self.pattern]))[:16]

    @property
    def sort_key(self) -> tuple:
        return (SEVERITY_RANK[self.severity], self.repo.lower(), self.path, self.line, self.pattern)

    def record(self, false_positive: bool) -> dict[str, Any]:
        return {
            "id": self.id,
            "repo": self.repo,
            "path": self.path,
            "line": self.line,
            "pattern": self.pattern,
            "severity": self.severity,
            "false_positive": false_positive,
        }

    def redacted(self) -> FallbackFinding:
        return FallbackFinding(
            id=self.id,
            repo=redact_path(self.repo),
            path=redact_path(self.path),
            line=self.line,
            pattern=REDACTOR.redact(self.pattern, heuristics=True),
            severity=self.severity,
        )


def redact_path(path: str) -> str:
    """Secrets out of a path. The heuristics run per segment: a token used as a
    folder name goes, a long but ordinary path stays readable."""
    return "/".join(REDACTOR.redact(segment, heuristics=True) for segment in REDACTOR.redact(path).split("/"))


def display_name(repo: str) -> str:
    """A repository name safe for a log line, a title or a table: one line,
    redacted, no invisible characters (a newline could start a workflow command)."""
    return clean_text(redact_path(repo), 140, heuristics=False)


def repo_key(repo: str) -> str:
    """The marker key of a repository: its lower-cased name (GitHub names are
    case-insensitive); a malformed name gets a hash so it cannot break the marker."""
    return repo.lower() if _REPO.match(repo) else "x-" + sha256_hex(repo.encode())[:16]


def findings_from(report: AuditReport) -> list[Finding]:
    """Unregistered hits as findings, one per id (the worst severity wins)."""
    by_id: dict[str, Finding] = {}
    for hit in report.unregistered_hits:
        finding = Finding(hit.repo, hit.path, hit.line, hit.pattern, hit.severity)
        old = by_id.get(finding.id)
        if old is None or SEVERITY_RANK[finding.severity] < SEVERITY_RANK[old.severity]:
            by_id[finding.id] = finding
    return sorted(by_id.values(), key=lambda f: f.sort_key)


def load_audit(path: Path) -> AuditReport:
    data = read_input(path, "audit report", max_bytes=MAX_AUDIT_BYTES)
    try:
        # JSON-mode validation straight from the bytes (pydantic's fast path).
        return AuditReport.model_validate_json(data)
    except ValidationError as exc:
        raise UsageError(describe_validation_error(exc, f"audit report {path}")) from None


# ============================================================================ bodies


@dataclass
class BodyMarks:
    """What a person can change in a body we wrote: the checkboxes."""

    listed: set[str] = field(default_factory=set)  # ids in the findings section
    ticked: set[str] = field(default_factory=set)  # ... ticked there: newly marked false positive
    kept_false: set[str] = field(default_factory=set)  # ids still ticked in the false-positive section
    unticked_false: set[str] = field(default_factory=set)  # ids unticked there: report them again

    @property
    def known(self) -> set[str]:
        return self.listed | self.kept_false | self.unticked_false


def read_marks(body: str) -> BodyMarks:
    marks, section = BodyMarks(), None
    for line in body.splitlines():
        stripped = line.strip()
        if stripped in (SECTION_FINDINGS, SECTION_FALSE_POSITIVES, SECTION_END):
            section = stripped
            continue
        match = _CHECKBOX.match(line)
        if not match or section not in (SECTION_FINDINGS, SECTION_FALSE_POSITIVES):
            continue
        ticked, finding_id = match.group("mark") != " ", match.group("id")
        if section == SECTION_FINDINGS:
            marks.listed.add(finding_id)
            if ticked:
                marks.ticked.add(finding_id)
        elif ticked:
            marks.kept_false.add(finding_id)
        else:
            marks.unticked_false.add(finding_id)
    return marks


def _code_path(text: str) -> str:
    return inline_code(redact_path(text), 300, heuristics=False)


def _finding_text(finding: Finding, *, with_repo: bool) -> str:
    """One finding on one line; every consumer-supplied part is a code span."""
    parts = [f"**{finding.severity}**"]
    if with_repo:
        parts.append(_code_path(finding.repo))
    parts += [f"{_code_path(finding.path)}:{finding.line}", inline_code(finding.pattern, 120), f"`{finding.id}`"]
    return " · ".join(parts)


def _finding_line(finding: Finding, *, checked: bool, with_repo: bool) -> str:
    return f"- [{'x' if checked else ' '}] false positive · " + _finding_text(finding, with_repo=with_repo)


def _severity_counts(findings: list[Finding]) -> Counter:
    return Counter(f.severity for f in findings)


def _count_phrase(findings: list[Finding]) -> str:
    counts = _severity_counts(findings)
    return ", ".join(f"{counts[s]} {s}" for s in SEVERITIES if counts[s]) or "none"


def _plural(n: int, word: str) -> str:
    if n == 1:
        return f"{n} {word}"
    return f"{n} {word[:-1]}ies" if word.endswith("y") else f"{n} {word}s"


@dataclass
class RenderedBody:
    text: str
    shown: list[Finding]  # active findings with a checkbox in the body
    overflow: list[Finding]  # active findings that did not fit


def _fill(lines: list[str], candidates: list[tuple[Finding, str]], budget: int) -> tuple[list[Finding], list[Finding]]:
    """Append candidate lines while they fit in ``budget`` characters."""
    shown: list[Finding] = []
    used = sum(len(x) + 1 for x in lines)
    for index, (finding, text) in enumerate(candidates):
        if used + len(text) + 1 > budget:
            return shown, [f for f, _ in candidates[index:]]
        lines.append(text)
        used += len(text) + 1
        shown.append(finding)
    return shown, []


def _false_positive_section(false_positives: list[Finding], *, with_repo: bool) -> list[str]:
    if not false_positives:
        return [SECTION_FALSE_POSITIVES, SECTION_END]
    lines = [
        SECTION_FALSE_POSITIVES,
        "",
        f"#### Marked false positive ({len(false_positives)})",
        "",
        "Not reported while ticked; untick one to report it again.",
        "",
    ]
    lines += [_finding_line(f, checked=True, with_repo=with_repo) for f in false_positives]
    return lines + ["", SECTION_END]


_FOOTER = (
    "<sub>Filed by tw-gates file-issues. Only the checkboxes are read back; "
    "the rest of this text is replaced when the findings change.</sub>"
)


def render_repo_body(repo: str, active: list[Finding], false_positives: list[Finding], audit_id: str) -> RenderedBody:
    head = [f"### Unregistered Markdown renderer use in {_code_path(repo)}", ""]
    if active:
        head.append(
            f"**{_plural(len(active), 'finding')}** ({_count_phrase(active)}) outside the repository's "
            "registered code paths."
        )
    else:
        head.append("No open findings: every finding the audit still reports is marked false positive.")
    head += [
        "",
        f"Audit {inline_code(audit_id, 200)}. Tick **false positive** on a finding that is not a problem: "
        "the next run moves it to the list below and stops reporting it.",
        "",
        SECTION_FINDINGS,
        "",
    ]
    tail = [""] + _false_positive_section(false_positives, with_repo=False) + ["", _FOOTER]
    lines = list(head)
    shown, overflow = _fill(
        lines,
        [(f, _finding_line(f, checked=False, with_repo=False)) for f in active],
        BODY_BUDGET - sum(len(x) + 1 for x in tail),
    )
    if overflow:
        lines += [
            "",
            f"_{_plural(len(overflow), 'more finding')} did not fit in this issue: they are in the "
            "run's fallback artifact (tw-gates-issue-fallback)._",
        ]
    return RenderedBody("\n".join(lines + tail), shown, overflow)


def _repo_table(groups: dict[str, list[Finding]], budget: int) -> list[str]:
    """Repositories by worst severity, then by number of findings."""

    def order(item: tuple[str, list[Finding]]) -> tuple:
        repo, findings = item
        counts = _severity_counts(findings)
        return tuple(-counts[s] for s in SEVERITIES) + (-len(findings), repo.lower())

    rows = ["| repository | worst | critical | high | medium | low | findings |", "|---|---|---|---|---|---|---|"]
    used = sum(len(r) + 1 for r in rows)
    ranked = sorted(((r, f) for r, f in groups.items() if f), key=order)
    for index, (repo, findings) in enumerate(ranked):
        counts = _severity_counts(findings)
        worst = min(findings, key=lambda f: SEVERITY_RANK[f.severity]).severity
        row = (
            f"| {inline_code(redact_path(repo), 140, in_table=True, heuristics=False)} | {worst} | "
            + " | ".join(str(counts[s]) for s in SEVERITIES)
            + f" | {len(findings)} |"
        )
        if used + len(row) + 1 > budget:
            rows.append(f"| _{_plural(len(ranked) - index, 'more repository')}_ | | | | | | |")
            break
        rows.append(row)
        used += len(row) + 1
    return rows


def render_digest_body(active: list[Finding], false_positives: list[Finding], audit_id: str, why: str) -> RenderedBody:
    groups: dict[str, list[Finding]] = {}
    names: dict[str, str] = {}
    for finding in active:
        names.setdefault(repo_key(finding.repo), finding.repo)
        groups.setdefault(names[repo_key(finding.repo)], []).append(finding)
    head = [
        f"### tw-gates digest: {_plural(len(active), 'finding')} in {_plural(len(groups), 'repository')}",
        "",
        why,
        "",
        f"Audit {inline_code(audit_id, 200)}. Repositories by severity and count:",
        "",
    ]
    head += _repo_table(groups, BODY_BUDGET // 3)
    head += [
        "",
        "Tick **false positive** on a finding that is not a problem: the next run moves it to the "
        "list at the end and stops reporting it.",
        "",
        SECTION_FINDINGS,
    ]
    tail = [""] + _false_positive_section(false_positives, with_repo=True) + ["", _FOOTER]
    candidates: list[tuple[Finding, str]] = []
    ordered_repos = sorted(
        groups, key=lambda r: (min(SEVERITY_RANK[f.severity] for f in groups[r]), -len(groups[r]), r.lower())
    )
    lines = list(head)
    budget = BODY_BUDGET - sum(len(x) + 1 for x in tail)
    shown: list[Finding] = []
    overflow: list[Finding] = []
    for repo in ordered_repos:
        if overflow:
            overflow += groups[repo]
            continue
        heading = ["", f"#### {_code_path(repo)} ({len(groups[repo])})", ""]
        if sum(len(x) + 1 for x in lines + heading) > budget:
            overflow += groups[repo]
            continue
        lines += heading
        candidates = [(f, _finding_line(f, checked=False, with_repo=False)) for f in groups[repo]]
        got, rest = _fill(lines, candidates, budget)
        shown += got
        overflow += rest
    if overflow:
        lines += [
            "",
            f"_{_plural(len(overflow), 'more finding')} did not fit in this issue: they are in the "
            "run's fallback artifact (tw-gates-issue-fallback)._",
        ]
    return RenderedBody("\n".join(lines + tail), shown, overflow)


def repo_title(repo: str, active: int, false_positives: int) -> str:
    if active:
        return f"tw-gates: {_plural(active, 'unregistered renderer finding')} in {repo}"
    return f"tw-gates: {repo}: all {_plural(false_positives, 'finding')} marked false positive"


def digest_title(active: int, repos: int) -> str:
    return f"tw-gates digest: {_plural(active, 'unregistered renderer finding')} in {_plural(repos, 'repository')}"


def change_comment(
    audit_id: str, marks: BodyMarks, active: list[Finding], false_positives: list[Finding], *, with_repo: bool
) -> str:
    """The one comment an update adds: what changed since the body was last written."""
    active_ids = {f.id for f in active}
    false_ids = {f.id for f in false_positives}
    previous_false = marks.kept_false | marks.unticked_false
    new = [f for f in active if f.id not in marks.known]
    again = [f for f in active if f.id in previous_false]
    marked = [f for f in false_positives if f.id in marks.listed]
    resolved = sorted(marks.known - active_ids - false_ids)
    parts = [f"{len(new)} new", f"{len(resolved)} resolved"]
    if marked:
        parts.append(f"{len(marked)} marked false positive")
    if again:
        parts.append(f"{len(again)} reported again")
    lines = [f"Findings changed (audit {inline_code(audit_id, 200)}): {', '.join(parts)}."]
    for title, items in (("New", new), ("Reported again", again)):
        if items:
            lines += ["", f"{title}:"]
            lines += ["- " + _finding_text(f, with_repo=with_repo) for f in items[:COMMENT_ITEMS]]
            lines += [f"- … and {len(items) - COMMENT_ITEMS} more"] if len(items) > COMMENT_ITEMS else []
    if resolved:
        shown = ", ".join(f"`{i}`" for i in resolved[:COMMENT_ITEMS])
        more = f" and {len(resolved) - COMMENT_ITEMS} more" if len(resolved) > COMMENT_ITEMS else ""
        lines += ["", f"Resolved: {shown}{more}."]
    return "\n".join(lines)


# ============================================================================ plan


@dataclass
class IssuePlan:
    kind: str
    key: str
    name: str  # what the person reads: the repository, or "digest"
    title: str
    body: str
    fingerprint: str
    active: list[Finding]
    false_positives: list[Finding]
    overflow: list[Finding]
    existing: TrackedIssue | None
    comment: str | None
    newly_marked: set[str]
    newly_filed: set[str]

    @property
    def action(self) -> Literal["create", "update", "unchanged"]:
        if self.existing is None:
            return "create"
        return "unchanged" if self.existing.marker.fingerprint == self.fingerprint else "update"

    @property
    def writes(self) -> int:
        return {"create": 1, "update": 2 if self.comment else 1, "unchanged": 0}[self.action]


@dataclass
class ClosePlan:
    issue: TrackedIssue
    why: Literal["resolved", "superseded", "duplicate"]
    comment: str
    name: str

    writes = 2


@dataclass
class Plan:
    mode: Literal["per-repo", "digest", "none"]
    why: str
    repos: int
    findings: list[Finding]
    false_positive_ids: set[str]
    upserts: list[IssuePlan]
    closes: list[ClosePlan]

    @property
    def writes(self) -> int:
        return sum(u.writes for u in self.upserts) + sum(c.writes for c in self.closes)

    @property
    def creates(self) -> int:
        return sum(1 for u in self.upserts if u.action == "create")

    @property
    def overflow(self) -> list[Finding]:
        return [f for u in self.upserts for f in u.overflow]


def plan_issues(
    findings: list[Finding],
    tracked: list[TrackedIssue],
    *,
    cap: int,
    audit_id: str,
    digest_only: str | None = None,
    close_allowed: bool = True,
) -> Plan:
    """What the tracker should look like after this run, as writes.

    ``tracked``: every open issue with a marker, duplicates included (their
    checkboxes count too). ``digest_only``: why this run files one digest whatever
    the count (low quota)."""
    managed = [t for t in tracked if t.marker.kind in MANAGED_KINDS]
    marks = {t.number: read_marks(t.body) for t in managed}
    reported = {f.id for f in findings}
    previous_false = set().union(*(m.kept_false for m in marks.values())) if marks else set()
    unticked = set().union(*(m.unticked_false for m in marks.values())) if marks else set()
    ticked = set().union(*(m.ticked for m in marks.values())) if marks else set()
    seen_before = set().union(*(m.known for m in marks.values())) if marks else set()
    false_ids = ((previous_false - unticked) | ticked) & reported
    newly_marked_all = (ticked - previous_false) & reported

    # GitHub names are case-insensitive: "Acme/A" and "acme/a" are one repository.
    by_repo: dict[str, list[Finding]] = {}
    for finding in findings:
        by_repo.setdefault(repo_key(finding.repo), []).append(finding)
    repos = len(by_repo)

    keepers: dict[tuple[str, str], TrackedIssue] = {}
    duplicates: list[tuple[TrackedIssue, TrackedIssue]] = []
    for issue in sorted(managed, key=lambda t: t.number):
        keeper = keepers.setdefault(issue.key, issue)
        if keeper is not issue:
            duplicates.append((keeper, issue))

    if not findings:
        mode, why = "none", "the audit reports no unregistered findings"
    elif digest_only:
        mode, why = "digest", digest_only
    elif repos > cap:
        mode, why = (
            "digest",
            (
                f"{_plural(repos, 'repository')} have findings, more than MAX_ISSUES_PER_RUN ({cap}), "
                "so they are listed in this one digest."
            ),
        )
    else:
        mode, why = "per-repo", f"{repos} ≤ MAX_ISSUES_PER_RUN ({cap}): one issue per repository"

    def split(items: list[Finding]) -> tuple[list[Finding], list[Finding]]:
        return [f for f in items if f.id not in false_ids], [f for f in items if f.id in false_ids]

    upserts: list[IssuePlan] = []
    if mode == "digest":
        active, false_positives = split(findings)
        rendered = render_digest_body(active, false_positives, audit_id, why)
        existing = keepers.get(("digest", DIGEST_KEY))
        upserts.append(
            _issue_plan(
                "digest",
                DIGEST_KEY,
                "digest",
                digest_title(len(active), repos),
                rendered,
                active,
                false_positives,
                existing,
                marks,
                audit_id,
                newly_marked_all,
                seen_before,
                with_repo=True,
            )
        )
    elif mode == "per-repo":
        for key in sorted(by_repo):
            repo = by_repo[key][0].repo
            active, false_positives = split(by_repo[key])
            rendered = render_repo_body(repo, active, false_positives, audit_id)
            existing = keepers.get(("repo", key))
            upserts.append(
                _issue_plan(
                    "repo",
                    key,
                    display_name(repo),
                    repo_title(display_name(repo), len(active), len(false_positives)),
                    rendered,
                    active,
                    false_positives,
                    existing,
                    marks,
                    audit_id,
                    newly_marked_all,
                    seen_before,
                    with_repo=False,
                )
            )

    homes = {(u.kind, u.key) for u in upserts}
    closes: list[ClosePlan] = []
    if close_allowed:
        for keeper, duplicate in duplicates:
            closes.append(
                ClosePlan(
                    duplicate,
                    "duplicate",
                    f"Duplicate of #{keeper.number}: two tw-gates runs filed the same issue; the older one is kept.",
                    display_name(keeper.marker.key),
                )
            )
        for issue in sorted(keepers.values(), key=lambda t: t.number):
            if issue.key in homes:
                continue
            if mode == "none" or (issue.marker.kind == "repo" and mode == "per-repo"):
                closes.append(
                    ClosePlan(
                        issue,
                        "resolved",
                        "The audit no longer reports any of these findings "
                        f"(audit {inline_code(audit_id, 200)}): resolved, closing.",
                        display_name(issue.marker.key),
                    )
                )
            elif mode == "digest":
                closes.append(
                    ClosePlan(
                        issue,
                        "superseded",
                        "These findings are now tracked in the tw-gates "
                        "digest issue (more repositories have findings than MAX_ISSUES_PER_RUN); "
                        "closing this one.",
                        display_name(issue.marker.key),
                    )
                )
            else:
                closes.append(
                    ClosePlan(
                        issue,
                        "superseded",
                        "Few enough repositories have findings again: "
                        "each has its own tw-gates issue now; closing the digest.",
                        display_name(issue.marker.key),
                    )
                )
    return Plan(mode, why, repos, findings, false_ids, upserts, closes)


def _issue_plan(
    kind: str,
    key: str,
    name: str,
    title: str,
    rendered: RenderedBody,
    active: list[Finding],
    false_positives: list[Finding],
    existing: TrackedIssue | None,
    marks: dict[int, BodyMarks],
    audit_id: str,
    newly_marked_all: set[str],
    seen_before: set[str],
    *,
    with_repo: bool,
) -> IssuePlan:
    records = [f.record(False) for f in active] + [f.record(True) for f in false_positives]
    print_ = fingerprint(records)
    comment = None
    if existing is not None and existing.marker.fingerprint != print_:
        comment = change_comment(audit_id, marks[existing.number], active, false_positives, with_repo=with_repo)
    ids = {f.id for f in active} | {f.id for f in false_positives}
    return IssuePlan(
        kind,
        key,
        name,
        title,
        rendered.text,
        print_,
        active,
        false_positives,
        rendered.overflow,
        existing,
        comment,
        newly_marked_all & ids,
        {f.id for f in active} - seen_before,
    )


# ============================================================================ result


class IssueAction(BaseModel):
    action: Literal[
        "created", "updated", "unchanged", "closed", "would-create", "would-update", "would-close", "failed"
    ]
    kind: str
    name: str
    number: int | None = None
    url: str | None = None
    findings: int = 0
    detail: str = ""


class FileIssuesResult(BaseModel):
    central_repo: str
    audit_id: str
    mode: str
    why: str = ""
    findings: int
    repos: int
    dry_run: bool = False
    actions: list[IssueAction] = Field(default_factory=list)
    fallback_path: str | None = None
    fallback_reason: str | None = None
    fallback_findings: int = 0
    fallback_detail: str = ""
    quota_remaining: int | None = None
    api_calls: int = 0
    api_writes: int = 0
    message: str = ""

    @property
    def exit_code(self) -> ExitCode:
        # body_limit is not a failure: the issue exists, the rest is in the artifact.
        failed = self.fallback_reason is not None and self.fallback_reason != "body_limit"
        return ExitCode.REJECTED if failed else ExitCode.OK

    def count(self, action: str) -> int:
        return sum(1 for a in self.actions if a.action == action)


# ============================================================================ the gate


class _Run:
    """One run's state: what was written, what is still to be saved."""

    def __init__(
        self,
        settings: FileIssuesSettings,
        findings: list[Finding],
        audit_id: str,
        echo: Progress,
        warn: Progress,
    ) -> None:
        self.settings = settings
        self.findings = findings
        self.audit_id = audit_id
        self.echo = echo
        self.warn = warn
        self.sink = metrics.current()
        self.result = FileIssuesResult(
            central_repo=settings.central_repo or "",
            audit_id=audit_id,
            mode="none",
            findings=len(findings),
            repos=len({repo_key(f.repo) for f in findings}),
            dry_run=settings.dry_run,
        )
        self.unfiled: dict[str, Finding] = {}
        self.reason: FallbackReason | None = None
        self.detail = ""
        self.issue_writes = 0

    # -- metrics --------------------------------------------------------------------
    def declare_metrics(self) -> None:
        """Every series at 0 from the first run on, so ``increase()`` sees the first event."""
        for reason in get_args(FallbackReason):
            if reason != "body_limit":
                self.count_failure(reason, 0)
        for name in COUNTED:
            self.sink.counter(name)

    def count_failure(self, reason: str, issues: int = 1) -> None:
        self.sink.counter("audit_issue_create_failures_total").labels(reason=reason).inc(issues)

    def count(self, name: str, amount: int = 1) -> None:
        self.sink.counter(name).inc(amount)

    # -- fallback -------------------------------------------------------------------
    def save(self, findings: list[Finding], reason: FallbackReason, detail: str) -> None:
        for finding in findings:
            self.unfiled.setdefault(finding.id, finding)
        if self.reason is None or self.reason == "body_limit":
            self.reason, self.detail = reason, detail

    def write_fallback(self) -> Path | None:
        if not self.unfiled:
            return None
        assert self.reason is not None
        doc = IssueFallback(
            generated_at=utc_now_iso(),
            audit_id=self.audit_id,
            central_repo=self.settings.central_repo or "",
            reason=self.reason,
            detail=REDACTOR.redact(" ".join(self.detail.split())),
            issues_written=self.issue_writes,
            findings=[f.redacted() for f in sorted(self.unfiled.values(), key=lambda f: f.sort_key)],
        )
        safe_id = re.sub(r"[^A-Za-z0-9._-]+", "_", self.audit_id)[:80] or "audit"
        path = self.settings.fallback_dir / f"issue-fallback-{safe_id}.json"
        atomic_write_json(path, doc.model_dump(mode="json"))
        self.result.fallback_path = str(path)
        self.result.fallback_reason = self.reason
        self.result.fallback_findings = len(doc.findings)
        self.result.fallback_detail = doc.detail
        return path


def gate(settings: FileIssuesSettings, *, echo: Progress = silent, warn: Progress = silent) -> FileIssuesResult:
    """File the audit's findings (see the module docstring)."""
    if settings.audit is None:
        raise UsageError("--audit REPORT.json is required")
    central = settings.central_repo or settings.github_repository
    if not central:
        raise UsageError("--central-repo OWNER/REPO is required (or GITHUB_REPOSITORY)")
    if not _REPO.match(central):
        raise UsageError(f"--central-repo must be owner/name, got {central!r}")
    settings = settings.model_copy(update={"central_repo": central})
    deadline = settings.deadline_epoch()
    report = load_audit(settings.audit)
    # The id reaches log lines and Slack: one line, no control characters (a newline could
    # start a workflow command).
    audit_id = clean_text(settings.audit_id or report.audit_id, 200, heuristics=False) or "audit"
    findings = findings_from(report)
    run = _Run(settings, findings, audit_id, echo, warn)
    repos = run.result.repos
    if not settings.dry_run:
        run.declare_metrics()
        run.sink.counter("audit_unregistered_repos_total").inc(repos)
    echo(
        f"file-issues: {_plural(len(findings), 'finding')} in {_plural(repos, 'repository')} "
        f"(audit {audit_id}) for {central}; cap {settings.max_issues}"
    )
    close_allowed = report.exit_code != ExitCode.ERROR
    if not close_allowed:
        warn("the audit report says the audit failed (exit_code 1): no issue is closed this run")

    token = settings.github_token.get_secret_value() if settings.github_token else ""
    if not token:
        if settings.dry_run:
            plan = plan_issues(findings, [], cap=settings.max_issues, audit_id=audit_id, close_allowed=close_allowed)
            _report_plan(run, plan, dry=True)
            return run.result
        run.save(findings, "no_token", "no GitHub token: set GITHUB_TOKEN")
        run.count_failure("no_token", _issues_needed(findings, settings.max_issues))
        return _finish(run)

    from tw_gates.core.github_client import client_from_settings

    client = client_from_settings(settings, deadline=deadline)
    try:
        _run_with_client(run, client, deadline, close_allowed)
    finally:
        run.result.api_calls = client.calls.total
        run.result.api_writes = client.calls.writes
        run.result.quota_remaining = client.calls.quota_remaining
        client.publish_metrics()
        client.close()
    return _finish(run)


def _issues_needed(findings: list[Finding], cap: int) -> int:
    repos = len({repo_key(f.repo) for f in findings})
    return 0 if not repos else (repos if repos <= cap else 1)


def _run_with_client(run: _Run, client, deadline: float, close_allowed: bool) -> None:
    settings, findings = run.settings, run.findings
    central = settings.central_repo or ""
    # 1. Quota, from the one endpoint that does not spend it.
    digest_only: str | None = None
    remaining: int | None = None
    try:
        remaining, reset = client.rate_limit_remaining()
    except Exception as exc:
        error = classify(exc, "reading the API quota (GET /rate_limit)")
        if error.status == 404:
            run.echo("file-issues: this GitHub has no rate limit (GET /rate_limit: 404)")
        else:
            return _fail_all(run, error, _reason_of(error))
    if remaining is not None:
        run.echo(f"file-issues: API quota: {remaining} requests left")
        if remaining <= 0:
            when = datetime.fromtimestamp(reset, timezone.utc).strftime("%H:%M:%S UTC") if reset else "later"
            error = TrackerError("rate_limit", f"the GitHub API quota is exhausted (0 left, resets at {when})")
            return _fail_all(run, error, "rate_limit")
        if remaining < settings.quota_threshold:
            digest_only = (
                f"The GitHub API quota was low ({remaining} requests left, threshold "
                f"{settings.quota_threshold}), so this run files one digest."
            )

    tracker = IssueTracker(client, central, label=settings.label)
    # 2. One listing, then the plan.
    try:
        tracker.load()
    except TrackerError as error:
        return _fail_all(run, error, _reason_of(error))
    tracked = tracker.issues() + [dup for _, dup in tracker.duplicates()]
    run.echo(
        f"file-issues: {_plural(len(tracked), 'open tw-gates issue')} in {central} "
        f"({_plural(tracker.listing_pages, 'listing page')})"
    )
    plan = plan_issues(
        findings,
        tracked,
        cap=settings.max_issues,
        audit_id=run.audit_id,
        digest_only=digest_only,
        close_allowed=close_allowed,
    )
    if settings.dry_run:
        _report_plan(run, plan, dry=True)
        return None
    if plan.writes == 0:
        # An identical rerun: nothing to write, so no need to ask whether we may
        # (_execute only tallies the unchanged issues and saves any overflow).
        _report_plan(run, plan, dry=False)
        _execute(run, tracker, plan, deadline)
        return None

    # 3. May this token write issues there? Asked before the first write (not in a
    # dry run: the probe may create the label).
    access = tracker.check_write_access()
    if access.allowed is not True:
        reason: FallbackReason = "permission_denied" if access.allowed is False else "permission_unknown"
        assert access.error is not None
        return _fail_all(run, access.error, reason)
    run.echo(f"file-issues: issue write access to {central} confirmed ({access.detail})")

    # 4. Will the quota carry the plan? Digest first, then cleanup deferred, else fallback.
    plan = _fit_to_quota(run, client, plan, tracked, close_allowed)
    if plan is None:
        return None
    _report_plan(run, plan, dry=False)
    _execute(run, tracker, plan, deadline)
    if plan.creates and run.reason in (None, "body_limit"):
        _converge(run, tracker, plan, deadline)


def _reason_of(error: TrackerError) -> FallbackReason:
    return {
        "permission": "permission_denied",
        "rate_limit": "rate_limit",
        "unavailable": "github_unavailable",
        "rejected": "rejected",
    }[error.category]  # type: ignore[return-value]


def _fail_all(run: _Run, error: TrackerError, reason: FallbackReason) -> None:
    if run.settings.dry_run:
        # A dry run writes nothing, not even the fallback: it just cannot show the plan.
        raise ExternalServiceError(f"dry run: {error.message}")
    run.save(run.findings, reason, error.message)
    run.count_failure(reason, _issues_needed(run.findings, run.settings.max_issues))


def _fit_to_quota(run: _Run, client, plan: Plan, tracked: list[TrackedIssue], close_allowed: bool) -> Plan | None:
    quota = client.calls.quota_remaining
    if quota is None:
        return plan

    def cost(p: Plan) -> int:
        relist = math.ceil(max(len(tracked) + p.creates, 1) / 100) if p.creates else 0
        return p.writes + relist

    if cost(plan) <= quota:
        return plan
    if plan.mode == "per-repo":
        digest = plan_issues(
            run.findings,
            tracked,
            cap=run.settings.max_issues,
            audit_id=run.audit_id,
            digest_only=f"The GitHub API quota ({quota} requests left) would not carry one issue "
            "per repository, so this run files one digest.",
            close_allowed=close_allowed,
        )
        run.echo(f"file-issues: {cost(plan)} calls needed, {quota} left: switching to one digest")
        plan = digest
    if cost(plan) > quota and plan.closes:
        run.echo(
            f"file-issues: quota low ({quota} left): closing {_plural(len(plan.closes), 'issue')} deferred "
            "to a later run"
        )
        plan.closes = []
    if cost(plan) > quota:
        error = TrackerError(
            "rate_limit",
            f"the GitHub API quota ({quota} requests left) cannot carry even one digest ({cost(plan)} calls)",
        )
        _fail_all(run, error, "rate_limit")
        return None
    return plan


def _execute(run: _Run, tracker: IssueTracker, plan: Plan, deadline: float) -> None:
    """Creates and updates in plan order, then closes; stops at the first failure
    that says GitHub will not take more, saving every finding not yet filed."""
    pending = list(plan.upserts)
    upserts_ok = True
    while pending:
        item = pending.pop(0)
        if item.overflow:
            run.save(
                item.overflow,
                "body_limit",
                f"{_plural(len(item.overflow), 'finding')} did not fit in the {item.name} issue",
            )
        if item.action == "unchanged":
            _record(run, "unchanged", item, item.existing)
            continue
        if time.time() > deadline - DEADLINE_MARGIN_S:
            _stop(run, item, pending, TrackerError("rate_limit", "the job's deadline is near; no new writes"))
            return
        try:
            outcome = tracker.upsert(
                item.kind,
                item.key,
                title=item.title,
                body=item.body,
                fingerprint=item.fingerprint,
                change_comment=item.comment,
            )
        except TrackerError as error:
            if error.category == "rejected":
                upserts_ok = False
                _failed(run, item, error)
                continue
            _stop(run, item, pending, error)
            return
        run.issue_writes += 1
        _record(run, outcome.action, item, outcome.issue)
        if outcome.action == "created" and item.kind == "digest":
            run.count("audit_digest_created_total")
        _count_filed(run, item)
    if not upserts_ok:
        run.echo("file-issues: an issue was refused: no issue is closed this run")
        return
    for close in plan.closes:
        if time.time() > deadline - DEADLINE_MARGIN_S:
            run.echo("file-issues: deadline near: remaining closes left to the next run")
            return
        try:
            tracker.close(close.issue, close.comment, reason="not_planned" if close.why == "duplicate" else "completed")
        except TrackerError as error:
            # Nothing is lost: the findings live in the issues already written.
            run.warn(f"could not close #{close.issue.number}: {error.message}; the next run retries")
            if error.category != "rejected":
                return
            continue
        run.issue_writes += 1
        run.result.actions.append(
            IssueAction(
                action="closed",
                kind=close.issue.marker.kind,
                name=close.name,
                number=close.issue.number,
                url=close.issue.html_url,
                detail=close.why,
            )
        )
        run.echo(f"file-issues: closed #{close.issue.number} {close.name} ({close.why})")


def _count_filed(run: _Run, item: IssuePlan) -> None:
    run.count("audit_fp_marked_total", len(item.newly_marked))
    run.count("audit_findings_filed_total", len(item.newly_filed))


def _record(run: _Run, action: str, item: IssuePlan, issue: TrackedIssue | None) -> None:
    run.result.actions.append(
        IssueAction(
            action=action,
            kind=item.kind,
            name=item.name,  # type: ignore[arg-type]
            number=issue.number if issue else None,
            url=issue.html_url if issue else None,
            findings=len(item.active),
        )
    )
    number = f"#{issue.number} " if issue else ""
    detail = f" ({_plural(len(item.active), 'finding')}"
    detail += f", {len(item.false_positives)} marked false positive)" if item.false_positives else ")"
    run.echo(f"file-issues: {action} {number}{item.name}{detail}")


def _failed(run: _Run, item: IssuePlan, error: TrackerError) -> None:
    run.save(item.active + item.false_positives, _reason_of(error), error.message)
    run.count_failure(_reason_of(error))
    run.result.actions.append(
        IssueAction(action="failed", kind=item.kind, name=item.name, findings=len(item.active), detail=error.message)
    )
    run.warn(f"{item.name}: {error.message}")


def _stop(run: _Run, item: IssuePlan, pending: list[IssuePlan], error: TrackerError) -> None:
    _failed(run, item, error)
    rest = [p for p in pending if p.action != "unchanged"]
    for later in rest:
        run.save(later.active + later.false_positives, _reason_of(error), error.message)
    run.count_failure(_reason_of(error), len(rest))
    run.echo(f"file-issues: stopped: {error.message}; {_plural(len(rest) + 1, 'issue')} not written")


def _converge(run: _Run, tracker: IssueTracker, plan: Plan, deadline: float) -> None:
    """Another run may have created the same issues meanwhile (the workflow's
    concurrency group should prevent it; this makes it harmless): list again,
    keep the oldest issue of each key, close the newer ones, and bring the
    keeper up to date."""
    try:
        tracker.load()
        duplicates = tracker.duplicates(MANAGED_KINDS)
        if not duplicates:
            return
        for keeper, duplicate in duplicates:
            tracker.close(
                duplicate,
                f"Duplicate of #{keeper.number}: two tw-gates runs filed the same issue at "
                "once; the older one is kept.",
                reason="not_planned",
            )
            run.issue_writes += 1
            run.echo(f"file-issues: closed duplicate #{duplicate.number} (kept #{keeper.number})")
        for item in plan.upserts:
            keeper = tracker.find(item.kind, item.key)
            if keeper is not None and keeper.marker.fingerprint != item.fingerprint and time.time() < deadline:
                tracker.upsert(item.kind, item.key, title=item.title, body=item.body, fingerprint=item.fingerprint)
                run.issue_writes += 1
                run.echo(f"file-issues: brought #{keeper.number} {item.name} up to date")
    except TrackerError as error:
        # Every finding is in an issue already; only the tidying is left to the next run.
        run.warn(f"duplicate check after creating issues failed: {error.message}; the next run retries")


def _report_plan(run: _Run, plan: Plan, *, dry: bool) -> None:
    run.result.mode, run.result.why = plan.mode, plan.why
    run.echo(f"file-issues: mode {plan.mode}: {plan.why}")
    if plan.false_positive_ids:
        run.echo(
            f"file-issues: {_plural(len(plan.false_positive_ids), 'finding')} marked false positive (not reported)"
        )
    if not dry:
        return
    for item in plan.upserts:
        action = {"create": "would-create", "update": "would-update", "unchanged": "unchanged"}[item.action]
        run.result.actions.append(
            IssueAction(
                action=action,
                kind=item.kind,
                name=item.name,  # type: ignore[arg-type]
                number=item.existing.number if item.existing else None,
                findings=len(item.active),
            )
        )
        run.echo(f"file-issues: [dry run] {action} {item.name} ({_plural(len(item.active), 'finding')})")
    for close in plan.closes:
        run.result.actions.append(
            IssueAction(
                action="would-close",
                kind=close.issue.marker.kind,
                name=close.name,
                number=close.issue.number,
                detail=close.why,
            )
        )
        run.echo(f"file-issues: [dry run] would-close #{close.issue.number} {close.name} ({close.why})")


def _finish(run: _Run) -> FileIssuesResult:
    result = run.result
    path = run.write_fallback()
    if path is not None and result.exit_code != ExitCode.OK:
        result.message = (
            f"S2 fallback: {_plural(result.fallback_findings, 'finding')} not filed in "
            f"{result.central_repo} ({result.fallback_reason}: {result.fallback_detail}); "
            f"saved to {path}"
        )
        notify(
            run.settings,
            f"tw-gates file-issues could not file {_plural(result.fallback_findings, 'finding')} "
            f"of audit {run.audit_id} in {result.central_repo} ({result.fallback_reason}). They are "
            f"saved in the fallback artifact {path.name}; see the workflow run.",
        )
    elif path is not None:
        result.message = (
            f"{_plural(result.fallback_findings, 'finding')} did not fit in the issue bodies; listed in {path}"
        )
    else:
        result.message = (
            f"{result.count('created')} created, {result.count('updated')} updated, "
            f"{result.count('unchanged')} unchanged, {result.count('closed')} closed"
        )
    return result
