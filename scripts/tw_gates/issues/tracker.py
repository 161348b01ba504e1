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
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import requests
from github import GithubException

from tw_gates.core.errors import TwGatesError
from tw_gates.core.github_client import DeadlineExceeded, GitHubClient, describe_github_error
from tw_gates.core.markdown import clean_text as clean_text
from tw_gates.core.markdown import escape_markdown as escape_markdown
from tw_gates.core.markdown import inline_code as inline_code
from tw_gates.core.markdown import plain_title
from tw_gates.core.redact import REDACTOR
from tw_gates.core.signing import canonical_bytes, sha256_hex

DEFAULT_LABEL = "tw-gates"
LABEL_COLOR = "b60205"
LABEL_DESCRIPTION = "Filed and kept up to date by tw-gates"
MARKER_VERSION = "v1"
# GitHub rejects bodies and comments longer than 65,536 characters; stay clear of it.
MAX_BODY_CHARS = 65_000
MAX_TITLE_CHARS = 250

_KIND = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
_KEY = re.compile(r"^[A-Za-z0-9._/:@+=-]{1,200}$")
_FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")
_MARKER = re.compile(
    r"^<!-- tw-gates:(?P<version>v\d+) kind=(?P<kind>[a-z][a-z0-9-]{0,31}) key=(?P<key>\S{1,200}) "
    r"fingerprint=(?P<fingerprint>[0-9a-f]{64}) -->$"
)
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


# ---------------------------------------------------------------------------- marker


@dataclass(frozen=True)
class Marker:
    kind: str
    key: str
    fingerprint: str

    def __post_init__(self) -> None:
        if not _KIND.match(self.kind):
            raise ValueError(f"bad issue kind {self.kind!r}")
        if not _KEY.match(self.key):
            raise ValueError(f"bad issue key {self.key!r} (letters, digits and ._/:@+=- only)")
        if not _FINGERPRINT.match(self.fingerprint):
            raise ValueError("fingerprint must be 64 lowercase hex digits")

    def render(self) -> str:
        return f"<!-- tw-gates:{MARKER_VERSION} kind={self.kind} key={self.key} fingerprint={self.fingerprint} -->"

    @classmethod
    def parse(cls, body: str | None) -> Marker | None:
        """The marker on the first line of ``body``; anywhere else it is not ours
        (untrusted text quoted further down cannot forge one)."""
        first = (body or "").lstrip("\ufeff").split("\n", 1)[0].strip()
        match = _MARKER.match(first)
        if not match or match.group("version") != MARKER_VERSION:
            return None
        try:
            return cls(match.group("kind"), match.group("key"), match.group("fingerprint"))
        except ValueError:
            return None


def fingerprint(items: Any) -> str:
    """sha256 of the RFC 8785 canonical JSON of ``items``; a list is sorted first
    (by its own canonical form) so the order findings arrive in does not matter."""
    if isinstance(items, (list, tuple, set, frozenset)):
        items = sorted(items, key=lambda item: canonical_bytes(item))
    return sha256_hex(canonical_bytes(items))


# ---------------------------------------------------------------------------- escaping
#
# One escaping function for every Markdown the product writes: core.markdown
# (re-exported here for the callers of the issue bodies).

# ---------------------------------------------------------------------------- issues


@dataclass
class TrackedIssue:
    number: int
    title: str
    body: str
    marker: Marker
    created_at: datetime | None
    html_url: str
    handle: Any = field(repr=False, default=None)  # the PyGithub Issue, for writes

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
        self._repo = client.repo(repo)
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
        try:
            self._repo.create_label(self.label, LABEL_COLOR, LABEL_DESCRIPTION)
            return WriteAccess(True, label_created=True, detail=f"created label {self.label!r}")
        except GithubException as exc:
            if exc.status == 422:
                what = "exists" if _already_exists(exc) else "was refused as invalid (422), after authorisation"
                return WriteAccess(True, detail=f"label {self.label!r} {what}; write access confirmed")
            error = classify(exc, f"checking issue write access on {self.repo_name}")
        except (requests.RequestException, DeadlineExceeded) as exc:
            error = classify(exc, f"checking issue write access on {self.repo_name}")
        if error.category == "permission":
            return WriteAccess(False, detail=error.message, error=error)
        return WriteAccess(None, detail=error.message, error=error)

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
        created = item.get("created_at")
        try:
            created_at = datetime.fromisoformat(created.replace("Z", "+00:00")) if created else None
        except (AttributeError, ValueError):
            created_at = None
        # A lazy PyGithub Issue (no request) for the writes.
        handle = self._repo.get_issue(item["number"])
        return TrackedIssue(
            item["number"],
            item.get("title") or "",
            item.get("body") or "",
            marker,
            created_at,
            item.get("html_url") or "",
            handle,
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
            try:
                issue = self._repo.create_issue(title=title, body=full_body, labels=[self.label])
            except (GithubException, requests.RequestException, DeadlineExceeded) as exc:
                raise classify(exc, f"creating issue {kind}:{key} in {self.repo_name}") from exc
            tracked = TrackedIssue(
                issue.number, title, full_body, marker, issue.created_at, issue.html_url or "", issue
            )
            self._by_key.setdefault((kind, key), []).insert(0, tracked)
            return UpsertOutcome("created", tracked)
        if existing.marker.fingerprint == fingerprint:
            return UpsertOutcome("unchanged", existing)
        try:
            existing.handle.edit(title=title, body=full_body)
        except (GithubException, requests.RequestException, DeadlineExceeded) as exc:
            raise classify(exc, f"updating issue #{existing.number} in {self.repo_name}") from exc
        existing.title, existing.body, existing.marker = title, full_body, marker
        commented = False
        if change_comment:
            self.comment(existing, change_comment)
            commented = True
        return UpsertOutcome("updated", existing, commented)

    def comment(self, issue: TrackedIssue, text: str) -> None:
        try:
            issue.handle.create_comment(_cap(REDACTOR.redact(text)))
        except (GithubException, requests.RequestException, DeadlineExceeded) as exc:
            raise classify(exc, f"commenting on issue #{issue.number} in {self.repo_name}") from exc

    def close(self, issue: TrackedIssue, comment: str | None = None, *, reason: str = "completed") -> None:
        """Comment (why), then close. A run killed in between leaves the issue
        open; the next run comments and closes it again."""
        if comment:
            self.comment(issue, comment)
        try:
            issue.handle.edit(state="closed", state_reason=reason)
        except (GithubException, requests.RequestException, DeadlineExceeded) as exc:
            raise classify(exc, f"closing issue #{issue.number} in {self.repo_name}") from exc
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
