"""The issues tw-gates files, found again and kept up to date without duplicates.

Shared by ``tw-gates file-issues`` (kinds ``repo`` and ``digest``) and the canary
(kind ``canary``). Every issue carries the tracker's label and, as the first line of
its body, a hidden marker::

    <!-- tw-gates:v1 kind=<kind> key=<key> fingerprint=<sha256> -->

``(kind, key)`` says what the issue is about; the fingerprint says what it said
last time. Existing issues are found with ONE paginated listing of the open issues
carrying the label (``GET /repos/{o}/{r}/issues?labels=...&state=open``), never with
the search API, whose index lags behind and would let a quick rerun file duplicates.

Writes follow from the fingerprint: unchanged -> nothing written; changed -> the body
is replaced in place, then one comment says what changed; gone -> one comment, then
closed. Two issues with the same ``(kind, key)`` (two runs raced, or a run was
killed between its create and its check) are resolved by keeping the oldest and
closing the newer ones, so every run converges.

Text that comes from outside (consumer artifacts, audit reports, metric labels)
goes through ``inline_code`` or ``escape_markdown`` before it reaches an issue: no
Markdown or HTML injection, no ``@mention`` pings, no autolinks nobody intended.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import requests
from github import GithubException

from tw_gates.core.errors import TwGatesError
from tw_gates.core.github_client import DeadlineExceeded, GitHubClient, UnexpectedAnswer, describe_github_error
from tw_gates.core.markdown import plain_title
from tw_gates.core.redact import REDACTOR
from tw_gates.issues.marker import MARKER_VERSION, Marker, fingerprint

__all__ = [
    "DEFAULT_LABEL",
    "MARKER_VERSION",
    "MAX_BODY_CHARS",
    "IssueTracker",
    "Marker",
    "TrackedIssue",
    "TrackerError",
    "UpsertOutcome",
    "WriteAccess",
    "classify",
    "fingerprint",
]

DEFAULT_LABEL = "tw-gates"
LABEL_COLOR = "b60205"
LABEL_DESCRIPTION = "Filed and kept up to date by tw-gates"
# GitHub rejects bodies and comments longer than 65,536 characters; stay clear of it.
MAX_BODY_CHARS = 65_000

_LABEL_NAME = re.compile(r"^[^,\s][^,]{0,49}$")


class TrackerError(TwGatesError):
    """A GitHub call of the tracker failed; ``category`` says how the caller should react.

    * ``permission``: 401/403/404 that is not a rate limit (the token may not do this);
    * ``rate_limit``: quota exhausted, or waiting for it would pass the deadline;
    * ``unavailable``: 5xx after retries, timeouts, connection errors;
    * ``rejected``: GitHub refused the content (422 and the like).
    """

    def __init__(
        self, category: str, message: str, *, status: int | None = None, accepted_permissions: str | None = None
    ) -> None:
        super().__init__(message)
        self.category = category
        self.status = status
        self.accepted_permissions = accepted_permissions


def classify(exc: BaseException, doing: str) -> TrackerError:
    """One ``TrackerError`` for anything a GitHub call can raise."""
    if isinstance(exc, TrackerError):
        return exc
    if isinstance(exc, DeadlineExceeded):
        return TrackerError("rate_limit", f"{doing}: {exc}")
    if isinstance(exc, UnexpectedAnswer):
        return TrackerError("unavailable", f"{doing}: {exc}", status=exc.status)
    if isinstance(exc, GithubException):
        headers = exc.headers or {}
        accepted = _header(headers, "X-Accepted-GitHub-Permissions")
        message = describe_github_error(exc)
        text = message.lower()
        if exc.status in (403, 429) and ("rate limit" in text or _header(headers, "X-RateLimit-Remaining") == "0"):
            return TrackerError("rate_limit", f"{doing}: {message}", status=exc.status)
        if exc.status in (401, 403, 404):
            need = f" (needs {accepted})" if accepted else ""
            return TrackerError(
                "permission", f"{doing}: {message}{need}", status=exc.status, accepted_permissions=accepted
            )
        if exc.status is not None and exc.status >= 500:
            return TrackerError("unavailable", f"{doing}: {message}", status=exc.status)
        return TrackerError("rejected", f"{doing}: {message}", status=exc.status)
    if isinstance(exc, requests.RequestException):
        return TrackerError("unavailable", f"{doing}: {describe_github_error(exc)}")
    raise exc


def _header(headers: Any, name: str) -> str | None:
    for key, value in dict(headers).items():
        if key.lower() == name.lower():
            return str(value)
    return None


# ---------------------------------------------------------------------------- issues


@dataclass
class TrackedIssue:
    number: int
    title: str
    body: str
    marker: Marker
    created_at: datetime | None
    html_url: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.marker.kind, self.marker.key)


@dataclass
class WriteAccess:
    """The outcome of the write probe (``IssueTracker.check_write_access``)."""

    allowed: bool | None  # None: could not tell
    label_created: bool = False
    detail: str = ""
    error: TrackerError | None = None


@dataclass
class UpsertOutcome:
    action: Literal["created", "updated", "unchanged"]
    issue: TrackedIssue
    commented: bool = False
    note: str = ""  # something the run should say (a label GitHub dropped and that was put back)


LABEL_DROPPED = (
    "GitHub dropped the label {label!r} from new issue #{number}: only users with push access can set labels "
    "on new issues (GitHub drops them silently otherwise)"
)
_WRITE_ERRORS = (GithubException, requests.RequestException, DeadlineExceeded, UnexpectedAnswer)


class IssueTracker:
    """The open tw-gates issues of one repository.

    ``load()`` lists them (one paginated listing); ``find``/``upsert``/``close``
    work on that snapshot and keep it current with their own writes."""

    def __init__(self, client: GitHubClient, repo: str, *, label: str = DEFAULT_LABEL) -> None:
        if not _LABEL_NAME.match(label):
            raise TrackerError("rejected", f"bad label {label!r}: 1-50 characters, no comma")
        self.client = client
        self.repo_name = repo
        self.label = label
        self._path = f"/repos/{repo}"
        self._by_key: dict[tuple[str, str], list[TrackedIssue]] = {}
        self.loaded = False
        self.listing_pages = 0

    # -- permission ---------------------------------------------------------------
    def check_write_access(self) -> WriteAccess:
        """Find out whether the token may write issues here, by ensuring the label exists.

        ``POST /repos/{o}/{r}/labels`` needs the same ``issues: write`` permission as
        creating an issue, for every kind of token. GitHub authorises a request before
        it validates it, so: 201 -> allowed (the label now exists); 422 (``already_exists``,
        or any other validation failure: validation comes after authorisation) -> allowed,
        and nothing was changed; 401/403/404 -> not allowed. Anything else
        (5xx after retries, a timeout) -> unknown. Classic tokens' ``X-OAuth-Scopes`` and
        ``GET /repos`` ``permissions`` describe the *user*, and an Actions or App token
        cannot introspect itself at all, so an authorised no-op is the only portable test.
        """
        label = {"name": self.label, "color": LABEL_COLOR, "description": LABEL_DESCRIPTION}
        try:
            self.client.write("POST", f"{self._path}/labels", label, expect=201)
            return WriteAccess(True, label_created=True, detail=f"created label {self.label!r}")
        except GithubException as exc:
            if exc.status == 422:
                what = "exists" if _already_exists(exc) else "was refused as invalid (422), after authorisation"
                return WriteAccess(True, detail=f"label {self.label!r} {what}; write access confirmed")
            error = classify(exc, f"checking issue write access on {self.repo_name}")
        except (requests.RequestException, DeadlineExceeded, UnexpectedAnswer) as exc:
            error = classify(exc, f"checking issue write access on {self.repo_name}")
        if error.category == "permission":
            return WriteAccess(False, detail=error.message, error=error)
        return WriteAccess(None, detail=error.message, error=error)

    def label_access(self) -> TrackerError | None:
        """Will GitHub keep the label on a new issue? "Only users with push access can
        set labels for new issues. Labels are silently dropped otherwise." A classic token
        (it gets ``X-OAuth-Scopes``) shows its user's role in ``GET /repos``: no push and no
        triage (which may add the
        label afterwards) means every issue filed would be unfindable, so the caller falls
        back before filing. Integrations (no ``permissions`` there) and unreadable answers
        pass: the label of each created issue is checked anyway."""
        try:
            headers, data = self.client.gh.requester.requestJsonAndCheck("GET", f"{self.client.api_url}{self._path}")
        except (GithubException, requests.RequestException, DeadlineExceeded):
            return None
        if _header(headers or {}, "X-OAuth-Scopes") is None:
            return None  # not a classic token: permissions would describe its user, not its grant
        perms = data.get("permissions") if isinstance(data, dict) else None
        if not isinstance(perms, dict) or any(perms.get(k) for k in ("push", "maintain", "admin", "triage")):
            return None
        return TrackerError(
            "permission",
            f"the token's user has neither push nor triage access to {self.repo_name}: GitHub would drop the "
            f"label {self.label!r} from every new issue (only users with push access can set labels for new "
            "issues), and the next run could not find them. Give the token push access (or triage), or use a "
            "GitHub App or the workflow's GITHUB_TOKEN with issues: write.",
        )

    # -- reading ------------------------------------------------------------------
    def load(self) -> list[TrackedIssue]:
        """List the open issues with the label (oldest first, 100 a page) and index
        the ones with a marker. Issues without a marker are people's: left alone.

        The pages are read as plain JSON through PyGithub's requester: touching an
        attribute a listing does not carry (``pull_request`` on a plain issue) would
        make PyGithub fetch every issue once more."""
        by_key: dict[tuple[str, str], list[TrackedIssue]] = {}
        url: str | None = f"{self.client.api_url}/repos/{self.repo_name}/issues"
        params: dict[str, Any] | None = {
            "state": "open",
            "labels": self.label,
            "sort": "created",
            "direction": "asc",
            "per_page": 100,
        }
        pages = 0
        try:
            while url:
                headers, data = self.client.gh.requester.requestJsonAndCheck("GET", url, parameters=params)
                pages += 1
                for item in data if isinstance(data, list) else []:
                    tracked = self._tracked(item)
                    if tracked is not None:
                        by_key.setdefault(tracked.key, []).append(tracked)
                url, params = _next_link(_header(headers or {}, "Link")), None
        except (GithubException, requests.RequestException, DeadlineExceeded) as exc:
            raise classify(exc, f"listing open {self.label!r} issues in {self.repo_name}") from exc
        self.listing_pages = pages
        for issues in by_key.values():
            issues.sort(key=lambda i: i.number)
        self._by_key = by_key
        self.loaded = True
        return self.issues()

    def _tracked(self, item: Any) -> TrackedIssue | None:
        if not isinstance(item, dict) or item.get("pull_request") or not isinstance(item.get("number"), int):
            return None
        marker = Marker.parse(item.get("body"))
        if marker is None:
            return None
        created_at = _parse_time(item.get("created_at"))
        return TrackedIssue(
            item["number"],
            item.get("title") or "",
            item.get("body") or "",
            marker,
            created_at,
            item.get("html_url") or "",
        )

    def issues(self, kind: str | None = None) -> list[TrackedIssue]:
        """The open tracked issues (the oldest of each key), by number."""
        found = [group[0] for group in self._by_key.values() if kind is None or group[0].marker.kind == kind]
        return sorted(found, key=lambda i: i.number)

    def find(self, kind: str, key: str) -> TrackedIssue | None:
        group = self._by_key.get((kind, key))
        return group[0] if group else None

    def duplicates(self, kinds: Iterable[str] | None = None) -> list[tuple[TrackedIssue, TrackedIssue]]:
        """(keeper, duplicate) pairs: for each key, the oldest issue stays."""
        wanted = set(kinds) if kinds is not None else None
        pairs = []
        for (kind, _), group in sorted(self._by_key.items()):
            if wanted is None or kind in wanted:
                pairs += [(group[0], dup) for dup in group[1:]]
        return pairs

    # -- writing ------------------------------------------------------------------
    def upsert(
        self, kind: str, key: str, *, title: str, body: str, fingerprint: str, change_comment: str | None = None
    ) -> UpsertOutcome:
        """Create the issue for ``(kind, key)``, or bring it up to date.

        Same fingerprint: nothing is written. Different: title and body are
        replaced in one PATCH, then ``change_comment`` (if any) is posted once. The
        body is the source of truth, so it is written first: a run killed between
        the two writes loses a comment, never a finding."""
        marker = Marker(kind, key, fingerprint)
        full_body = _compose(marker, body)
        title = plain_title(title)
        existing = self.find(kind, key)
        if existing is None:
            return self._create(kind, key, title, full_body, marker)
        if existing.marker.fingerprint == fingerprint:
            return UpsertOutcome("unchanged", existing)
        self._edit(existing, {"title": title, "body": full_body}, "updating")
        existing.title, existing.body, existing.marker = title, full_body, marker
        commented = False
        if change_comment:
            self.comment(existing, change_comment)
            commented = True
        return UpsertOutcome("updated", existing, commented)

    def _create(self, kind: str, key: str, title: str, body: str, marker: Marker) -> UpsertOutcome:
        """One POST with title, body, marker and label; then the label is checked: an
        issue without it is invisible to the next run's listing, which would file it again."""
        try:
            data = self.client.write(
                "POST", f"{self._path}/issues", {"title": title, "body": body, "labels": [self.label]}, expect=201
            )
        except _WRITE_ERRORS as exc:
            raise classify(exc, f"creating issue {kind}:{key} in {self.repo_name}") from exc
        tracked = TrackedIssue(
            int(data["number"]), title, body, marker, _parse_time(data.get("created_at")), data.get("html_url") or ""
        )
        note = ""
        if not self._labelled(data.get("labels")):
            note = self._restore_label(tracked)
        self._by_key.setdefault((kind, key), []).insert(0, tracked)
        return UpsertOutcome("created", tracked, note=note)

    def _labelled(self, labels: Any) -> bool:
        names = {(lb.get("name") if isinstance(lb, dict) else lb) for lb in labels or []}
        return self.label.lower() in {str(n).lower() for n in names}

    def _restore_label(self, issue: TrackedIssue) -> str:
        """GitHub dropped the label: add it to the issue (triage may label an existing
        issue). If that does not stick either, close the issue (its author may) so no
        unfindable copy stays open, and fail: the caller falls back."""
        dropped = LABEL_DROPPED.format(label=self.label, number=issue.number)
        try:
            labels = self.client.write(
                "POST", f"{self._path}/issues/{issue.number}/labels", {"labels": [self.label]}, expect=200
            )
            if self._labelled(labels):
                return f"{dropped}; it was added back. Give the token push access to save that request."
        except _WRITE_ERRORS:
            pass
        why = (
            f"{dropped}, and adding it afterwards was refused. Without the label the next run cannot find the "
            "issue and would file it again, so it was closed and its findings are not filed. Give the token push "
            "access (or triage), or use a GitHub App or the workflow's GITHUB_TOKEN with issues: write."
        )
        try:
            self.comment(issue, f"Closed by tw-gates: {why}")
            self._edit(issue, {"state": "closed", "state_reason": "not_planned"}, "closing")
        except TrackerError:
            why += f" Closing #{issue.number} failed too: close it by hand."
        raise TrackerError("permission", why)

    def _edit(self, issue: TrackedIssue, fields: dict[str, Any], doing: str) -> None:
        try:
            self.client.write("PATCH", f"{self._path}/issues/{issue.number}", fields, expect=200)
        except _WRITE_ERRORS as exc:
            raise classify(exc, f"{doing} issue #{issue.number} in {self.repo_name}") from exc

    def comment(self, issue: TrackedIssue, text: str) -> None:
        try:
            self.client.write(
                "POST",
                f"{self._path}/issues/{issue.number}/comments",
                {"body": _cap(REDACTOR.redact(text))},
                expect=201,
            )
        except _WRITE_ERRORS as exc:
            raise classify(exc, f"commenting on issue #{issue.number} in {self.repo_name}") from exc

    def close(self, issue: TrackedIssue, comment: str | None = None, *, reason: str = "completed") -> None:
        """Comment (why), then close. A run killed in between leaves the issue
        open; the next run comments and closes it again."""
        if comment:
            self.comment(issue, comment)
        self._edit(issue, {"state": "closed", "state_reason": reason}, "closing")
        group = self._by_key.get(issue.key, [])
        self._by_key[issue.key] = [i for i in group if i.number != issue.number]
        if not self._by_key[issue.key]:
            del self._by_key[issue.key]

    def close_duplicates(self, kinds: Iterable[str] | None = None) -> list[tuple[TrackedIssue, TrackedIssue]]:
        """Close every newer issue that shares a key with an older one."""
        closed = []
        for keeper, duplicate in self.duplicates(kinds):
            self.close(
                duplicate,
                f"Duplicate of #{keeper.number}: two tw-gates runs filed the same issue; the older one is kept.",
                reason="not_planned",
            )
            closed.append((keeper, duplicate))
        return closed


def _parse_time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None
    except (AttributeError, ValueError):
        return None


def _compose(marker: Marker, body: str) -> str:
    return _cap(marker.render() + "\n" + REDACTOR.redact(body))


def _cap(text: str) -> str:
    """A last resort (callers budget their text): cut at a line break, so no
    code span around untrusted text is left open."""
    if len(text) <= MAX_BODY_CHARS:
        return text
    note = "\n\n_(truncated to GitHub's size limit)_\n"
    cut = text.rfind("\n", 0, MAX_BODY_CHARS - len(note))
    return text[: max(cut, 0)] + note


def _next_link(link: str | None) -> str | None:
    """The ``rel="next"`` URL of an RFC 5988 Link header."""
    for part in (link or "").split(","):
        match = re.match(r'\s*<([^>]+)>\s*;.*\brel="?next"?', part)
        if match:
            return match.group(1)
    return None


def _already_exists(exc: GithubException) -> bool:
    data = exc.data if isinstance(exc.data, dict) else {}
    errors = data.get("errors") or []
    codes = {e.get("code") for e in errors if isinstance(e, dict)}
    return "already_exists" in codes or "already_exists" in json.dumps(data)
