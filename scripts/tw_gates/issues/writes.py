"""Carrying a plan out: creates and updates in plan order, then closes; the
duplicate check after creating; what a dry run prints. A write GitHub will not
take stops the run and sends every finding not yet filed to the fallback."""

from __future__ import annotations

import time

from tw_gates.issues.bodies import plural
from tw_gates.issues.plan import MANAGED_KINDS, IssuePlan, Plan
from tw_gates.issues.result import FilingRun, IssueAction, reason_of
from tw_gates.issues.tracker import IssueTracker, TrackedIssue, TrackerError

# Stop starting new writes this close to the deadline: leave time for the fallback.
DEADLINE_MARGIN_S = 5.0


def execute(run: FilingRun, tracker: IssueTracker, plan: Plan, deadline: float) -> None:
    """Creates and updates in plan order, then closes; stops at the first failure
    that says GitHub will not take more, saving every finding not yet filed."""
    outcome = _upserts(run, tracker, plan, deadline)
    if outcome == "refused":
        run.echo("file-issues: an issue was refused: no issue is closed this run")
    elif outcome == "done":
        _closes(run, tracker, plan, deadline)


def _upserts(run: FilingRun, tracker: IssueTracker, plan: Plan, deadline: float) -> str:
    """ "done", "refused" (GitHub refused an issue's content; the others went on) or "stopped"."""
    pending = list(plan.upserts)
    outcome = "done"
    while pending:
        item = pending.pop(0)
        if item.overflow:
            run.save(
                item.overflow,
                "body_limit",
                f"{plural(len(item.overflow), 'finding')} did not fit in the {item.name} issue",
            )
        if item.action == "unchanged":
            _record(run, "unchanged", item, item.existing)
            continue
        if time.time() > deadline - DEADLINE_MARGIN_S:
            _stop(run, item, pending, TrackerError("rate_limit", "the job's deadline is near; no new writes"))
            return "stopped"
        try:
            upserted = tracker.upsert(
                item.kind,
                item.key,
                title=item.title,
                body=item.body,
                fingerprint=item.fingerprint,
                change_comment=item.comment,
            )
        except TrackerError as error:
            if error.category != "rejected":
                _stop(run, item, pending, error)
                return "stopped"
            outcome = "refused"
            _failed(run, item, error)
            continue
        run.issue_writes += 1
        if upserted.note:
            run.warn(upserted.note)
        _record(run, upserted.action, item, upserted.issue)
        if upserted.action == "created" and item.kind == "digest":
            run.count("audit_digest_created_total")
        _count_filed(run, item)
    return outcome


def _closes(run: FilingRun, tracker: IssueTracker, plan: Plan, deadline: float) -> None:
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


def _count_filed(run: FilingRun, item: IssuePlan) -> None:
    run.count("audit_fp_marked_total", len(item.newly_marked))
    run.count("audit_findings_filed_total", len(item.newly_filed))


def _record(run: FilingRun, action: str, item: IssuePlan, issue: TrackedIssue | None) -> None:
    run.result.actions.append(
        IssueAction(
            action=action,
            kind=item.kind,
            name=item.name,
            number=issue.number if issue else None,
            url=issue.html_url if issue else None,
            findings=len(item.active),
        )
    )
    number = f"#{issue.number} " if issue else ""
    detail = f" ({plural(len(item.active), 'finding')}"
    detail += f", {len(item.false_positives)} marked false positive)" if item.false_positives else ")"
    run.echo(f"file-issues: {action} {number}{item.name}{detail}")


def _failed(run: FilingRun, item: IssuePlan, error: TrackerError) -> None:
    run.save(item.active + item.false_positives, reason_of(error), error.message)
    run.count_failure(reason_of(error))
    run.result.actions.append(
        IssueAction(action="failed", kind=item.kind, name=item.name, findings=len(item.active), detail=error.message)
    )
    run.warn(f"{item.name}: {error.message}")


def _stop(run: FilingRun, item: IssuePlan, pending: list[IssuePlan], error: TrackerError) -> None:
    _failed(run, item, error)
    rest = [p for p in pending if p.action != "unchanged"]
    for later in rest:
        run.save(later.active + later.false_positives, reason_of(error), error.message)
    run.count_failure(reason_of(error), len(rest))
    run.echo(f"file-issues: stopped: {error.message}; {plural(len(rest) + 1, 'issue')} not written")


def converge(run: FilingRun, tracker: IssueTracker, plan: Plan, deadline: float) -> None:
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
            current = tracker.find(item.kind, item.key)
            if current is not None and current.marker.fingerprint != item.fingerprint and time.time() < deadline:
                tracker.upsert(item.kind, item.key, title=item.title, body=item.body, fingerprint=item.fingerprint)
                run.issue_writes += 1
                run.echo(f"file-issues: brought #{current.number} {item.name} up to date")
    except TrackerError as error:
        # Every finding is in an issue already; only the tidying is left to the next run.
        run.warn(f"duplicate check after creating issues failed: {error.message}; the next run retries")


def report_plan(run: FilingRun, plan: Plan, *, dry: bool) -> None:
    run.result.mode, run.result.why = plan.mode, plan.why
    run.echo(f"file-issues: mode {plan.mode}: {plan.why}")
    if plan.false_positive_ids:
        run.echo(f"file-issues: {plural(len(plan.false_positive_ids), 'finding')} marked false positive (not reported)")
    if not dry:
        return
    for item in plan.upserts:
        action = {"create": "would-create", "update": "would-update", "unchanged": "unchanged"}[item.action]
        run.result.actions.append(
            IssueAction(
                action=action,
                kind=item.kind,
                name=item.name,
                number=item.existing.number if item.existing else None,
                findings=len(item.active),
            )
        )
        run.echo(f"file-issues: [dry run] {action} {item.name} ({plural(len(item.active), 'finding')})")
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
