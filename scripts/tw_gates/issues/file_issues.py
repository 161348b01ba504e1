"""S2 + R1: file the audit's unregistered findings as issues in the central
repository - capped, never duplicated, never lost.

One run:

1. read the audit report; findings are deduplicated and given stable ids;
2. ``GET /rate_limit`` (free): quota exhausted -> fallback; below the threshold ->
   digest only;
3. one paginated listing of the open tw-gates issues (the tracker);
4. plan: repositories with findings <= cap -> one issue per repository, else one
   digest; "false positive" ticks found in the listed bodies are honoured; an
   unchanged fingerprint means no write; the plan must fit the quota and, its writes
   paced to GitHub's secondary limits, the time left (else one digest, then closes
   deferred, else fallback);
5. when there is something to write, the write probe
   (``IssueTracker.check_write_access``: ensure the label exists) and, when issues
   are to be created, whether GitHub will keep their label; no permission, or no
   clear answer -> fallback;
6. write in a fixed order (creates/updates, then closes), each taken as done only on
   its documented success; a created issue's label is checked; a failure sends every
   finding not yet filed to the fallback artifact; after creating, list again and
   close duplicates a concurrent run may have filed.

The fallback artifact (``schemas/issue_fallback.py``) is written atomically and
redacted; the run then notifies Slack (if configured), prints ``::error::`` and
exits 2.

The concerns live beside this module: ``findings`` (the report's hits as findings),
``bodies`` (what an issue says), ``plan`` (what should exist), ``writes`` (carrying
the plan out), ``result`` (the run's state and outcome), ``tracker`` (the issues on
GitHub).
"""

from __future__ import annotations

import contextlib
import math
import time
from datetime import datetime, timezone

from tw_gates.core.errors import ExitCode, ExternalServiceError, UsageError
from tw_gates.core.github_client import GitHubClient, client_from_settings
from tw_gates.core.markdown import clean_text
from tw_gates.core.notify import notify
from tw_gates.core.progress import Progress, silent
from tw_gates.issues.bodies import plural
from tw_gates.issues.findings import REPO_NAME, Finding, findings_from, load_audit, repo_key
from tw_gates.issues.plan import Plan, plan_issues
from tw_gates.issues.result import FileIssuesResult, FilingRun, reason_of
from tw_gates.issues.settings import FileIssuesSettings
from tw_gates.issues.tracker import IssueTracker, TrackedIssue, TrackerError, classify
from tw_gates.issues.writes import DEADLINE_MARGIN_S, converge, execute, report_plan
from tw_gates.schemas.issue_fallback import FallbackReason

__all__ = ["FileIssuesResult", "FileIssuesSettings", "file_issues", "findings_from", "load_audit", "plan_issues"]


def file_issues(settings: FileIssuesSettings, *, echo: Progress = silent, warn: Progress = silent) -> FileIssuesResult:
    """File the audit's findings (see the module docstring)."""
    audit_path = settings.audit
    if audit_path is None:
        raise UsageError("--audit REPORT.json is required")
    central = settings.central_repo or settings.github_repository
    if not central:
        raise UsageError("--central-repo OWNER/REPO is required (or GITHUB_REPOSITORY)")
    if not REPO_NAME.match(central):
        raise UsageError(f"--central-repo must be owner/name, got {central!r}")
    settings = settings.model_copy(update={"central_repo": central})
    deadline = settings.deadline_epoch()
    report = load_audit(audit_path)
    # The id reaches log lines and Slack: one line, no control characters (a newline could
    # start a workflow command).
    audit_id = clean_text(settings.audit_id or report.audit_id, 200, heuristics=False) or "audit"
    findings = findings_from(report)
    run = FilingRun(settings, findings, audit_id, echo, warn)
    repos = run.result.repos
    if not settings.dry_run:
        run.declare_metrics()
        run.sink.counter("audit_unregistered_repos_total").inc(repos)
    echo(
        f"file-issues: {plural(len(findings), 'finding')} in {plural(repos, 'repository')} "
        f"(audit {audit_id}) for {central}; cap {settings.max_issues}"
    )
    close_allowed = report.exit_code != ExitCode.ERROR
    if not close_allowed:
        warn("the audit report says the audit failed (exit_code 1): no issue is closed this run")

    token = settings.github_token.get_secret_value() if settings.github_token else ""
    if not token:
        if settings.dry_run:
            plan = plan_issues(findings, [], cap=settings.max_issues, audit_id=audit_id, close_allowed=close_allowed)
            report_plan(run, plan, dry=True)
            return run.result
        run.save(findings, "no_token", "no GitHub token: set GITHUB_TOKEN")
        run.count_failure("no_token", _issues_needed(findings, settings.max_issues))
        return _finish(run)

    try:
        client = client_from_settings(settings, deadline=deadline)
    except UsageError as exc:
        if settings.dry_run:
            raise
        # A misconfigured API (GITHUB_API_URL without https://): nothing can be filed, nothing is lost.
        run.save(findings, "github_unavailable", str(exc))
        run.count_failure("github_unavailable", _issues_needed(findings, settings.max_issues))
        return _finish(run)
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


class _Stop(Exception):
    """The run cannot go on: the fallback has been written to (``_fail_all``)."""


def _quota(run: FilingRun, client: GitHubClient) -> str | None:
    """The quota, from the one endpoint that does not spend it. Returns why this run
    files one digest (low quota), or None; raises ``_Stop`` when it is exhausted."""
    try:
        remaining, reset = client.rate_limit_remaining()
    except Exception as exc:
        error = classify(exc, "reading the API quota (GET /rate_limit)")
        if error.status != 404:
            _fail_all(run, error, reason_of(error))
            raise _Stop from None
        run.echo("file-issues: this GitHub has no rate limit (GET /rate_limit: 404)")
        return None
    run.echo(f"file-issues: API quota: {remaining} requests left")
    if remaining <= 0:
        when = datetime.fromtimestamp(reset, timezone.utc).strftime("%H:%M:%S UTC") if reset else "later"
        error = TrackerError("rate_limit", f"the GitHub API quota is exhausted (0 left, resets at {when})")
        _fail_all(run, error, "rate_limit")
        raise _Stop
    if remaining < run.settings.quota_threshold:
        return (
            f"The GitHub API quota was low ({remaining} requests left, threshold "
            f"{run.settings.quota_threshold}), so this run files one digest."
        )
    return None


def _listing(run: FilingRun, tracker: IssueTracker) -> list[TrackedIssue]:
    """One listing of the open tw-gates issues, duplicates included."""
    try:
        tracker.load()
    except TrackerError as error:
        _fail_all(run, error, reason_of(error))
        raise _Stop from None
    tracked = tracker.issues() + [dup for _, dup in tracker.duplicates()]
    run.echo(
        f"file-issues: {plural(len(tracked), 'open tw-gates issue')} in {tracker.repo_name} "
        f"({plural(tracker.listing_pages, 'listing page')})"
    )
    return tracked


def _run_with_client(run: FilingRun, client: GitHubClient, deadline: float, close_allowed: bool) -> None:
    with contextlib.suppress(_Stop):
        _file(run, client, deadline, close_allowed)


def _file(run: FilingRun, client: GitHubClient, deadline: float, close_allowed: bool) -> None:
    settings = run.settings
    # 1. The quota; 2. one listing, then the plan.
    digest_only = _quota(run, client)
    tracker = IssueTracker(client, settings.central_repo or "", label=settings.label)
    tracked = _listing(run, tracker)
    plan = plan_issues(
        run.findings,
        tracked,
        cap=settings.max_issues,
        audit_id=run.audit_id,
        digest_only=digest_only,
        close_allowed=close_allowed,
    )
    if settings.dry_run:
        report_plan(run, plan, dry=True)
        return
    # 3. Will the quota and the time left carry the plan? Digest first, then cleanup
    # deferred, else fallback.
    fitted = _fit(run, client, plan, tracked, close_allowed, deadline)
    if fitted is None:
        return
    if fitted.writes == 0:
        # An identical rerun: nothing to write, so no need to ask whether we may
        # (execute only tallies the unchanged issues and saves any overflow).
        report_plan(run, fitted, dry=False)
        execute(run, tracker, fitted, deadline)
        return

    # 4. May this token write issues there, and will GitHub keep the label on a new one?
    # Asked before the first write (not in a dry run: the probe may create the label).
    access = tracker.check_write_access()
    if access.allowed is not True:
        reason: FallbackReason = "permission_denied" if access.allowed is False else "permission_unknown"
        _fail_all(run, access.error or TrackerError("unavailable", access.detail), reason)
        return
    run.echo(f"file-issues: issue write access to {tracker.repo_name} confirmed ({access.detail})")
    unlabelled = tracker.label_access() if fitted.creates else None
    if unlabelled is not None:
        _fail_all(run, unlabelled, "permission_denied")
        return
    report_plan(run, fitted, dry=False)
    execute(run, tracker, fitted, deadline)
    if fitted.creates and run.reason in (None, "body_limit"):
        converge(run, tracker, fitted, deadline)


def _fail_all(run: FilingRun, error: TrackerError, reason: FallbackReason) -> None:
    if run.settings.dry_run:
        # A dry run writes nothing, not even the fallback: it just cannot show the plan.
        raise ExternalServiceError(f"dry run: {error.message}")
    run.save(run.findings, reason, error.message)
    run.count_failure(reason, _issues_needed(run.findings, run.settings.max_issues))


def _shortfall(run: FilingRun, client: GitHubClient, plan: Plan, tracked: list[TrackedIssue], deadline: float) -> str:
    """Why this plan cannot be carried out, or "" when it can: the quota must carry
    its calls, and its writes, paced to GitHub's secondary limits, must end before
    the deadline."""
    relist = math.ceil(max(len(tracked) + plan.creates, 1) / 100) if plan.creates else 0
    calls, quota = plan.writes + relist, client.calls.quota_remaining
    if quota is not None and calls > quota:
        return f"the GitHub API quota ({quota} requests left) would not carry {calls} calls"
    seconds = client.pacer.seconds_for(plan.writes)
    left = deadline - time.time() - DEADLINE_MARGIN_S
    if seconds > left:
        return (
            f"{plural(plan.writes, 'write')} paced to GitHub's secondary limits take {seconds:.0f}s, "
            f"more than the {max(left, 0):.0f}s left before the deadline"
        )
    return ""


def _fit(
    run: FilingRun, client: GitHubClient, plan: Plan, tracked: list[TrackedIssue], close_allowed: bool, deadline: float
) -> Plan | None:
    """A plan the quota and the time left carry: one digest instead of one issue per
    repository, then closes deferred to a later run, else the fallback."""
    why = _shortfall(run, client, plan, tracked, deadline)
    if why and plan.mode == "per-repo":
        run.echo(f"file-issues: {why}: switching to one digest")
        plan = plan_issues(
            run.findings,
            tracked,
            cap=run.settings.max_issues,
            audit_id=run.audit_id,
            digest_only=f"One issue per repository did not fit this run ({why}), so it files one digest.",
            close_allowed=close_allowed,
        )
        why = _shortfall(run, client, plan, tracked, deadline)
    if why and plan.closes:
        run.echo(f"file-issues: {why}: closing {plural(len(plan.closes), 'issue')} deferred to a later run")
        plan.closes = []
        why = _shortfall(run, client, plan, tracked, deadline)
    if why:
        _fail_all(run, TrackerError("rate_limit", f"{why}, even for one digest"), "rate_limit")
        return None
    return plan


def _finish(run: FilingRun) -> FileIssuesResult:
    result = run.result
    path = run.write_fallback()
    if path is not None and result.exit_code != ExitCode.OK:
        result.message = (
            f"S2 fallback: {plural(result.fallback_findings, 'finding')} not filed in "
            f"{result.central_repo} ({result.fallback_reason}: {result.fallback_detail}); "
            f"saved to {path}"
        )
        notify(
            run.settings,
            f"tw-gates file-issues could not file {plural(result.fallback_findings, 'finding')} "
            f"of audit {run.audit_id} in {result.central_repo} ({result.fallback_reason}). They are "
            f"saved in the fallback artifact {path.name}; see the workflow run.",
        )
    elif path is not None:
        result.message = (
            f"{plural(result.fallback_findings, 'finding')} did not fit in the issue bodies; listed in {path}"
        )
    else:
        result.message = (
            f"{result.count('created')} created, {result.count('updated')} updated, "
            f"{result.count('unchanged')} unchanged, {result.count('closed')} closed"
        )
    return result
