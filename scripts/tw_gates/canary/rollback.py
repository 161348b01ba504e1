"""The rollback signals: a repository_dispatch to the central repository,
Slack, and the rollback issue (with the signed rollback record); each sent
once per rollback.

A signal counts as sent only on the answer its API documents as success
(``204 No Content`` for a dispatch). Anything else (PyGithub's
``create_repository_dispatch`` returns False instead of raising) is retried
within ``TW_CANARY_DISPATCH_TIMEOUT``, then reported as not sent, never
recorded as sent: the next run retries it."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any, Protocol

import requests
from github import GithubException

from tw_gates.canary.dashboard import CanaryIssues, Signals
from tw_gates.canary.settings import CanarySettings
from tw_gates.core import json_text
from tw_gates.core.errors import TwGatesError
from tw_gates.core.github_client import describe_github_error
from tw_gates.core.notify import notify
from tw_gates.schemas.canary import CanaryReport

MAX_DISPATCH_ATTEMPTS = 3


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


@dataclass
class Announced:
    """The signals after this run: each one's rollback key, and the rollback issue's number."""

    sent: dict[str, str]
    issue: int | None = None


def announce_rollback(
    settings: CanarySettings,
    client: Any,
    issues: CanaryIssues | None,
    report: CanaryReport,
    key: str,
    sent: dict[str, str],
    run: RunLog,
    record: dict[str, Any] | None = None,
) -> Announced:
    """The rollback signals: repository_dispatch, Slack, the rollback issue.

    ``sent`` maps a signal to the rollback (``rollback_key``) it last went out
    for; the hourly reruns of a failed canary skip the signals already sent
    and retry only those that failed."""
    announced = Announced(dict(sent))
    signals = Signals()
    done = [signal for signal, for_key in sent.items() if for_key == key]
    if done:
        run.actions.append(f"rollback already announced ({', '.join(sorted(done))}): not sent again")
    if client is not None and settings.dispatch_enabled and sent.get("dispatch") != key:
        if _dispatch(settings, client, report, run, signals):
            announced.sent["dispatch"] = key
    elif client is None and settings.dispatch_enabled:
        run.actions.append("no --central-repo: no repository_dispatch sent")
    if settings.slack_webhook_url is not None and sent.get("slack") != key and _slack(settings, report, run, signals):
        announced.sent["slack"] = key
    if issues is not None and sent.get("issue") != key:
        try:
            message, announced.issue = issues.file_rollback(report, key, signals, record)
        except TwGatesError as exc:
            run.problems.append(f"rollback issue not filed: {exc}")
        else:
            run.actions.append(message)
            if announced.issue is not None:
                announced.sent["issue"] = key
    return announced


def _slack(settings: CanarySettings, report: CanaryReport, run: RunLog, signals: Signals) -> bool:
    if notify(settings, f"tw-gates canary {report.name}: {report.reason}"):
        run.actions.append("Slack notified")
        signals.sent.append("Slack notified")
        return True
    run.problems.append("Slack notification failed")
    signals.not_sent.append("Slack notification failed")
    return False


def _dispatch(settings: CanarySettings, client: Any, report: CanaryReport, run: RunLog, signals: Signals) -> bool:
    """POST /repos/{o}/{r}/dispatches until GitHub answers 204, within the deadline."""
    url = f"{client.api_url}/repos/{settings.central_repo}/dispatches"
    body = {"event_type": settings.dispatch_event, "client_payload": dispatch_payload(report)}
    deadline = time.monotonic() + settings.dispatch_timeout_s
    pause = max(settings.github_backoff_s, 0.0)
    attempts, answer = 0, ""
    while attempts < MAX_DISPATCH_ATTEMPTS:
        attempts += 1
        status, answer = _post(client, url, body)
        if status == 204:
            note = f" (attempt {attempts})" if attempts > 1 else ""
            line = f"repository_dispatch {settings.dispatch_event!r} sent to {settings.central_repo}{note}"
            run.actions.append(line)
            signals.sent.append(line)
            return True
        if not _worth_retrying(status) or time.monotonic() + pause > deadline:
            break
        time.sleep(pause)
        pause = pause * 2 or 0.1
    tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
    problem = (
        f"repository_dispatch to {settings.central_repo} failed: {answer} ({tries}): the rollback signal "
        "was NOT sent; the next run retries it"
    )
    run.problems.append(problem)
    signals.not_sent.append(f"repository_dispatch to {settings.central_repo}: {answer}")
    return False


def _post(client: Any, url: str, body: dict[str, Any]) -> tuple[int | None, str]:
    """(HTTP status, the answer in words); status None when no answer came."""
    try:
        status, _, data = client.gh.requester.requestJson("POST", url, input=body)
    except requests.exceptions.RetryError as exc:
        found = re.search(r"too many (\d{3}) error responses", str(exc))
        if found:
            return int(found.group(1)), f"GitHub answered {found.group(1)} to every retry"
        return None, describe_github_error(exc)
    except (GithubException, requests.RequestException, TwGatesError) as exc:
        return getattr(exc, "status", None), describe_github_error(exc)
    if status == 204:
        return status, "GitHub answered 204"
    return status, f"GitHub answered {status}: {_message(data)}".rstrip(": ")


def _message(data: Any) -> str:
    try:
        parsed = json_text.loads(data) if isinstance(data, str) and data else data
    except ValueError:
        return str(data)[:200]
    if isinstance(parsed, dict):
        return str(parsed.get("message") or "")[:200]
    return ""


def _worth_retrying(status: int | None) -> bool:
    """No answer, a server error or a rate limit may pass; a refusal (401/403/404/422) will not."""
    return status is None or status >= 500 or status == 429
