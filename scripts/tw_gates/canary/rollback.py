"""The rollback signals: a repository_dispatch to the central repository,
Slack, and the rollback issue; each sent once per rollback."""

from __future__ import annotations

from typing import Any, Protocol

import requests
from github import GithubException

from tw_gates.canary.settings import CanarySettings
from tw_gates.core.errors import TwGatesError
from tw_gates.core.github_client import describe_github_error
from tw_gates.core.notify import notify
from tw_gates.schemas.canary import CanaryReport


def dispatch_payload(report: CanaryReport) -> dict:
    """The repository_dispatch client_payload (GitHub allows 10 top-level keys)."""
    breaches = [
        {"gate": b.gate, "interval_start": b.interval_start.isoformat(), "value": b.value, "limit": b.limit}
        for b in report.breaches[:10]
    ]
    return {
        "canary": report.name,
        "revision": report.revision,
        "decision": report.decision,
        "reason": report.reason[:1000],
        "breaches": breaches,
        "evaluated_at": report.evaluated_at.isoformat(),
    }


class RunLog(Protocol):
    """Where a run writes what it published and what failed (``canary.CanaryRun``)."""

    actions: list[str]
    problems: list[str]


def announce_rollback(
    settings: CanarySettings,
    client: Any,
    issues: Any,
    report: CanaryReport,
    key: str,
    sent: dict[str, str],
    run: RunLog,
) -> dict[str, str]:
    """The rollback signals: repository_dispatch, Slack, the rollback issue.

    ``sent`` maps a signal to the rollback (``rollback_key``) it last went out
    for; the hourly reruns of a failed canary skip the signals already sent
    and retry only those that failed. Returns the updated map."""
    sent = dict(sent)
    done = [signal for signal, for_key in sent.items() if for_key == key]
    if done:
        run.actions.append(f"rollback already announced ({', '.join(sorted(done))}): not sent again")
    if client is not None and settings.dispatch_enabled and sent.get("dispatch") != key:
        if _dispatch(settings, client, report, run):
            sent["dispatch"] = key
    elif client is None and settings.dispatch_enabled:
        run.actions.append("no --central-repo: no repository_dispatch sent")
    if settings.slack_webhook_url is not None and sent.get("slack") != key:
        if notify(settings, f"tw-gates canary {report.name}: {report.reason}"):
            sent["slack"] = key
            run.actions.append("Slack notified")
        else:
            run.problems.append("Slack notification failed")
    if issues is not None and sent.get("issue") != key and _file_issue(issues, report, key, run):
        sent["issue"] = key
    return sent


def _dispatch(settings: CanarySettings, client: Any, report: CanaryReport, run: RunLog) -> bool:
    try:
        client.repo(settings.central_repo).create_repository_dispatch(settings.dispatch_event, dispatch_payload(report))
    except (GithubException, requests.RequestException, TwGatesError) as exc:
        run.problems.append(f"repository_dispatch to {settings.central_repo} failed: {describe_github_error(exc)}")
        return False
    run.actions.append(f"repository_dispatch {settings.dispatch_event!r} sent to {settings.central_repo}")
    return True


def _file_issue(issues: Any, report: CanaryReport, key: str, run: RunLog) -> bool:
    signals = [a for a in run.actions if a.startswith(("repository_dispatch", "Slack"))]
    try:
        run.actions.append(issues.file_rollback(report, key, signals))
    except TwGatesError as exc:
        run.problems.append(f"rollback issue not filed: {exc}")
        return False
    return True
