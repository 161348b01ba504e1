"""The plan: which issues should exist after this run, with which fingerprint,
and which are to be closed; as writes, so the run can price it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tw_gates.core.markdown import inline_code
from tw_gates.issues.bodies import (
    BodyMarks,
    RenderedBody,
    change_comment,
    digest_title,
    plural,
    read_marks,
    render_digest_body,
    render_repo_body,
    repo_title,
)
from tw_gates.issues.findings import Finding, display_name, repo_key
from tw_gates.issues.tracker import TrackedIssue, fingerprint

DIGEST_KEY = "unregistered-hits"
MANAGED_KINDS = ("repo", "digest")
Mode = Literal["per-repo", "digest", "none"]


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
    mode: Mode
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


@dataclass
class _Context:
    """What every issue of the plan is built from: the checkboxes read back from the
    listed bodies, and the audit."""

    marks: dict[int, BodyMarks]
    audit_id: str
    false_ids: set[str]  # findings marked false positive (and still reported)
    newly_marked: set[str]  # ... of which ticked since the last run
    seen_before: set[str]  # ids any listed body mentions

    @classmethod
    def read(cls, managed: list[TrackedIssue], findings: list[Finding], audit_id: str) -> _Context:
        marks = {t.number: read_marks(t.body) for t in managed}
        reported = {f.id for f in findings}

        def union(attr: str) -> set[str]:
            return set().union(*(getattr(m, attr) for m in marks.values())) if marks else set()

        previous_false, unticked, ticked = union("kept_false"), union("unticked_false"), union("ticked")
        return cls(
            marks,
            audit_id,
            ((previous_false - unticked) | ticked) & reported,
            (ticked - previous_false) & reported,
            union("known"),
        )

    def split(self, items: list[Finding]) -> tuple[list[Finding], list[Finding]]:
        """(active, marked false positive)."""
        return [f for f in items if f.id not in self.false_ids], [f for f in items if f.id in self.false_ids]


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
    ctx = _Context.read(managed, findings, audit_id)

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

    mode, why = _mode(bool(findings), repos, cap, digest_only)
    if mode == "digest":
        upserts = [_digest_plan(findings, repos, why, keepers, ctx)]
    elif mode == "per-repo":
        upserts = [_repo_plan(by_repo[key], key, keepers, ctx) for key in sorted(by_repo)]
    else:
        upserts = []
    homes = {(u.kind, u.key) for u in upserts}
    closes = _closes(mode, duplicates, [k for k in keepers.values() if k.key not in homes], audit_id)
    return Plan(mode, why, repos, findings, ctx.false_ids, upserts, closes if close_allowed else [])


def _mode(any_findings: bool, repos: int, cap: int, digest_only: str | None) -> tuple[Mode, str]:
    if not any_findings:
        return "none", "the audit reports no unregistered findings"
    if digest_only:
        return "digest", digest_only
    if repos > cap:
        return (
            "digest",
            f"{plural(repos, 'repository')} have findings, more than MAX_ISSUES_PER_RUN ({cap}), "
            "so they are listed in this one digest.",
        )
    return "per-repo", f"{repos} ≤ MAX_ISSUES_PER_RUN ({cap}): one issue per repository"


def _digest_plan(
    findings: list[Finding], repos: int, why: str, keepers: dict[tuple[str, str], TrackedIssue], ctx: _Context
) -> IssuePlan:
    active, false_positives = ctx.split(findings)
    return _issue_plan(
        "digest",
        DIGEST_KEY,
        "digest",
        digest_title(len(active), repos),
        render_digest_body(active, false_positives, ctx.audit_id, why),
        active,
        false_positives,
        keepers.get(("digest", DIGEST_KEY)),
        ctx,
        with_repo=True,
    )


def _repo_plan(
    findings: list[Finding], key: str, keepers: dict[tuple[str, str], TrackedIssue], ctx: _Context
) -> IssuePlan:
    repo = findings[0].repo
    active, false_positives = ctx.split(findings)
    return _issue_plan(
        "repo",
        key,
        display_name(repo),
        repo_title(display_name(repo), len(active), len(false_positives)),
        render_repo_body(repo, active, false_positives, ctx.audit_id),
        active,
        false_positives,
        keepers.get(("repo", key)),
        ctx,
        with_repo=False,
    )


def _closes(
    mode: Mode,
    duplicates: list[tuple[TrackedIssue, TrackedIssue]],
    homeless: list[TrackedIssue],
    audit_id: str,
) -> list[ClosePlan]:
    """Duplicates, then the kept issues no upsert of this plan lives in."""
    closes = [
        ClosePlan(
            duplicate,
            "duplicate",
            f"Duplicate of #{keeper.number}: two tw-gates runs filed the same issue; the older one is kept.",
            display_name(keeper.marker.key),
        )
        for keeper, duplicate in duplicates
    ]
    for issue in sorted(homeless, key=lambda t: t.number):
        if mode == "none" or (issue.marker.kind == "repo" and mode == "per-repo"):
            why: Literal["resolved", "superseded"] = "resolved"
            text = (
                "The audit no longer reports any of these findings "
                f"(audit {inline_code(audit_id, 200)}): resolved, closing."
            )
        elif mode == "digest":
            why, text = (
                "superseded",
                "These findings are now tracked in the tw-gates "
                "digest issue (more repositories have findings than MAX_ISSUES_PER_RUN); "
                "closing this one.",
            )
        else:
            why, text = (
                "superseded",
                "Few enough repositories have findings again: each has its own tw-gates issue now; closing the digest.",
            )
        closes.append(ClosePlan(issue, why, text, display_name(issue.marker.key)))
    return closes


def _issue_plan(
    kind: str,
    key: str,
    name: str,
    title: str,
    rendered: RenderedBody,
    active: list[Finding],
    false_positives: list[Finding],
    existing: TrackedIssue | None,
    ctx: _Context,
    *,
    with_repo: bool,
) -> IssuePlan:
    records = [f.record(False) for f in active] + [f.record(True) for f in false_positives]
    print_ = fingerprint(records)
    comment = None
    if existing is not None and existing.marker.fingerprint != print_:
        comment = change_comment(ctx.audit_id, ctx.marks[existing.number], active, false_positives, with_repo=with_repo)
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
        ctx.newly_marked & ids,
        {f.id for f in active} - ctx.seen_before,
    )
