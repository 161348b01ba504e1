"""The GitHub client every gate uses: PyGithub, configured once.

* ``GITHUB_TOKEN`` and ``GITHUB_API_URL`` (GitHub Enterprise Server, or the
  test emulator) come from settings; an API URL without ``https://`` is a usage
  error, said in one line.
* Every request says who it is (``User-Agent: tw-gates/<version>``), which API
  version it speaks (``X-GitHub-Api-Version: 2022-11-28``) and asks for
  ``application/vnd.github+json``, as GitHub recommends.
* Retries are PyGithub's own ``GithubRetry`` (5xx, and 403 rate limits), plus 429
  handled as GitHub documents both rate limits: wait for ``Retry-After``, else
  until ``X-RateLimit-Reset`` when no request is left, else at least a minute.
  A job deadline caps every wait: a wait that would pass it raises
  ``DeadlineExceeded`` at once, so the caller can fall back in time.
* Writes (POST, PATCH, PUT, DELETE: GitHub's "content-generating requests") are
  paced to GitHub's secondary limits: at least ``write_interval`` (1 s) apart, at
  most 80 a minute and 500 an hour, whatever the caller asks for; a pause that
  would pass the deadline raises ``DeadlineExceeded`` instead.
* ``write()`` takes a write as done only on its documented success status.
* Every HTTP request is counted by endpoint (retries too), and the last
  X-RateLimit-Remaining seen is kept, for ``tw_gates_github_api_calls_total``
  and ``github_api_quota_remaining``.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter as Tally
from typing import Any
from urllib.parse import urlsplit

import requests
from github import Auth, Github, GithubException
from github.Requester import HTTPRequestsConnectionClass, HTTPSRequestsConnectionClass, Requester

from tw_gates import __version__
from tw_gates.core import metrics
from tw_gates.core.errors import ExternalServiceError, UsageError
from tw_gates.core.github_pacing import (
    SECONDARY_WAIT_S,
    WRITE_INTERVAL_S,
    DeadlineExceeded,
    TwRetry,
    WritePacer,
    rate_limit_wait,
)
from tw_gates.core.redact import REDACTOR

__all__ = [
    "DeadlineExceeded",
    "GitHubClient",
    "UnexpectedAnswer",
    "WritePacer",
    "client_from_settings",
    "describe_github_error",
    "endpoint_of",
    "rate_limit_wait",
]


class UnexpectedAnswer(ExternalServiceError):
    """A write was answered with something other than its documented success."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


API_VERSION = "2022-11-28"
MEDIA_TYPE = "application/vnd.github+json"
USER_AGENT = f"tw-gates/{__version__} (+PyGithub)"
WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})


def check_api_url(url: str) -> str:
    """``GITHUB_API_URL`` as a base URL, or a one-line usage error."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(
            f"GITHUB_API_URL must be a URL with its scheme, such as https://api.github.com or "
            f"https://ghe.example.com/api/v3 (got {url!r})"
        )
    return url.strip().rstrip("/")


_ID_SEGMENT = re.compile(r"^\d+$")
_REPO_PATH = re.compile(r"^/repos/[^/]+/[^/]+")
_NAMED_AFTER = {"labels", "branches", "collaborators", "users"}


def endpoint_of(method: str, url: str) -> str:
    """``GET /repos/{owner}/{repo}/issues/{n}``: a label with bounded cardinality."""
    path = urlsplit(url).path or "/"
    path = re.sub(r"^/api/v3(?=/)", "", path)  # GitHub Enterprise Server prefix
    path = _REPO_PATH.sub("/repos/{owner}/{repo}", path)
    parts = ["{n}" if _ID_SEGMENT.match(p) else p for p in path.split("/")]
    for i in range(1, len(parts)):
        # Names that vary per call (a label, a branch, a user) become {name}.
        if parts[i - 1] in _NAMED_AFTER and parts[i] not in ("", "{n}"):
            parts[i] = "{name}"
    return f"{method.upper()} {'/'.join(parts)}"


class ApiCallCounter:
    """HTTP requests by endpoint; retried attempts are requests too."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_endpoint: Tally[str] = Tally()
        self.retries: Tally[str] = Tally()
        self.quota_remaining: int | None = None
        self.quota_reset: int | None = None

    def record(self, method: str, url: str, headers: Any) -> None:
        with self._lock:
            self.by_endpoint[endpoint_of(method, url)] += 1
            remaining = headers.get("X-RateLimit-Remaining") if headers is not None else None
            if remaining is not None and str(remaining).isdigit():
                self.quota_remaining = int(remaining)
                reset = headers.get("X-RateLimit-Reset")
                self.quota_reset = int(reset) if reset and str(reset).isdigit() else self.quota_reset

    def record_retry(self, method: str, url: str) -> None:
        with self._lock:
            self.retries[endpoint_of(method or "GET", url or "/")] += 1

    @property
    def total(self) -> int:
        return sum(self.by_endpoint.values())

    @property
    def writes(self) -> int:
        return sum(n for key, n in self.by_endpoint.items() if not key.startswith(("GET ", "HEAD ")))

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.by_endpoint)


def _counting(base: type) -> type:
    """A PyGithub connection class that speaks as GitHub recommends (API version,
    media type, user agent), paces writes, and counts each final response; the
    counter and the pacer travel on the Retry object PyGithub hands to it."""

    class Counting(base):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            counter = getattr(self.retry, "counter", None)
            if counter is not None:
                self.session.headers.update(
                    {"Accept": MEDIA_TYPE, "X-GitHub-Api-Version": API_VERSION, "User-Agent": USER_AGENT}
                )

                def hook(response: requests.Response, *a: Any, **k: Any) -> None:
                    counter.record(response.request.method or "GET", response.request.url or "/", response.headers)

                self.session.hooks["response"].append(hook)

        def getresponse(self) -> Any:
            pacer = getattr(self.retry, "pacer", None)
            if pacer is not None and self.verb.upper() in WRITE_METHODS:
                pacer.wait()
            return super().getresponse()

    Counting.__name__ = f"Counting{base.__name__}"
    return Counting


_injected = False
_inject_lock = threading.Lock()


def _inject_counting_connections() -> None:
    global _injected
    with _inject_lock:
        if not _injected:
            Requester.injectConnectionClasses(
                _counting(HTTPRequestsConnectionClass), _counting(HTTPSRequestsConnectionClass)
            )
            _injected = True


class GitHubClient:
    """A configured PyGithub ``Github`` plus its call counter."""

    def __init__(
        self,
        token: str,
        api_url: str = "https://api.github.com",
        *,
        timeout: float = 30.0,
        retries: int = 5,
        backoff_s: float = 1.0,
        deadline: float | None = None,
        per_page: int = 100,
        write_interval: float = WRITE_INTERVAL_S,
    ) -> None:
        if not token:
            raise UsageError("no GitHub token: set GITHUB_TOKEN")
        REDACTOR.register(token)
        self.api_url = check_api_url(api_url)
        _inject_counting_connections()
        self.calls = ApiCallCounter()
        self.deadline = deadline
        self.backoff_s = backoff_s
        self.retries = retries
        self._token = token
        self.pacer = WritePacer(write_interval, deadline=deadline)
        self.retry = TwRetry(
            counter=self.calls,
            deadline=deadline,
            pacer=self.pacer,
            total=retries,
            backoff_factor=backoff_s,
            secondary_rate_wait=SECONDARY_WAIT_S,
            raise_on_status=False,
        )
        # PyGithub's own pacing is off: the pacer above does it, deadline-aware.
        self.gh = Github(
            auth=Auth.Token(token),
            base_url=self.api_url,
            timeout=int(max(1, timeout)),
            retry=self.retry,
            per_page=per_page,
            user_agent=USER_AGENT,
            api_version=API_VERSION,
            seconds_between_requests=None,
            seconds_between_writes=None,
        )
        self._session: requests.Session | None = None
        self._lazy_gh: Github | None = None

    # -- small helpers over PyGithub -------------------------------------------------
    def repo(self, full_name: str):
        """A lazy Repository: no request until an attribute needs one."""
        if self._lazy_gh is None:
            # Same requester settings (auth, retry and its counter), lazy objects.
            self._lazy_gh = self.gh.withLazy(True)
        return self._lazy_gh.get_repo(full_name)

    def rate_limit_remaining(self) -> tuple[int, int]:
        """(remaining, reset epoch) of the core quota, from GET /rate_limit,
        which GitHub does not count against the quota."""
        data = self.request_json("GET", "/rate_limit")
        core = (data.get("resources") or {}).get("core") or data.get("rate") or {}
        remaining = int(core.get("remaining", 0))
        self.calls.quota_remaining = remaining
        return remaining, int(core.get("reset", 0))

    def request_json(
        self, method: str, path: str, *, params: dict | None = None, body: Any = None, headers: dict | None = None
    ) -> Any:
        """A REST call PyGithub has no method for, through PyGithub's requester
        (same auth, retries and counting)."""
        url = path if path.startswith("http") else f"{self.api_url}{path}"
        _, data = self.gh.requester.requestJsonAndCheck(method, url, parameters=params, input=body, headers=headers)
        return data

    def write(self, method: str, path: str, body: Any, *, expect: int) -> Any:
        """A write, taken as done only on its documented success status ``expect``.

        Errors (4xx, and 5xx once urllib3's retries are spent) raise PyGithub's
        ``GithubException`` as usual. Any other answer (a 200 where GitHub documents
        201, a redirect, a 202 "accepted") is not success: the write is tried again,
        with backoff, while the deadline allows, then ``UnexpectedAnswer`` is raised.
        Returns the decoded JSON body (None for 204)."""
        url = path if path.startswith("http") else f"{self.api_url}{path}"
        status = 0
        for attempt in range(self.retries + 1):
            status, headers, output = self.gh.requester.requestJson(method, url, input=body)
            data = _decode(output)
            if status >= 400:
                raise self.gh.requester.createException(status, headers, data if isinstance(data, dict) else {})
            if status == expect:
                return data
            pause = self.backoff_s * (2**attempt)
            if attempt == self.retries or (self.deadline is not None and time.time() + pause > self.deadline):
                break
            self.calls.record_retry(method, url)
            time.sleep(pause)
        raise UnexpectedAnswer(
            f"{endpoint_of(method, url)}: GitHub answered {status}, not the documented {expect}: not taken as done",
            status,
        )

    def download(self, url: str, *, max_bytes: int = 512 * 1024 * 1024) -> bytes:
        """GET a binary (artifact zip). GitHub answers with a redirect to blob
        storage; the token goes to the API host only, never to the redirect."""
        session = self._session or requests.Session()
        self._session = session
        api_host = urlsplit(self.api_url).netloc
        target = url
        for _ in range(5):
            api = urlsplit(target).netloc == api_host
            auth = {"Authorization": f"Bearer {self._token}", "X-GitHub-Api-Version": API_VERSION} if api else {}
            response = session.get(
                target,
                headers={**auth, "Accept": MEDIA_TYPE, "User-Agent": USER_AGENT},
                allow_redirects=False,
                stream=True,
                timeout=60,
            )
            self.calls.record("GET", target, response.headers)
            if response.status_code in (301, 302, 303, 307, 308) and response.headers.get("Location"):
                target = requests.compat.urljoin(target, response.headers["Location"])
                continue
            if response.status_code != 200:
                raise ExternalServiceError(f"download of {endpoint_of('GET', url)} failed: HTTP {response.status_code}")
            chunks, size = [], 0
            for chunk in response.iter_content(65536):
                size += len(chunk)
                if size > max_bytes:
                    raise ExternalServiceError(f"download larger than {max_bytes} bytes: {url}")
                chunks.append(chunk)
            return b"".join(chunks)
        raise ExternalServiceError(f"too many redirects downloading {url}")

    def publish_metrics(self) -> None:
        """Record the call counts and last quota into the process metrics."""
        sink = metrics.current()
        calls = sink.counter("tw_gates_github_api_calls_total")
        for endpoint, count in self.calls.snapshot().items():
            calls.labels(endpoint=endpoint).inc(count)
        if self.calls.quota_remaining is not None:
            sink.gauge("github_api_quota_remaining").set(self.calls.quota_remaining)

    def close(self) -> None:
        self.gh.close()
        if self._lazy_gh is not None:
            self._lazy_gh.close()
        if self._session is not None:
            self._session.close()


def client_from_settings(settings: Any, *, deadline: float | None = None) -> GitHubClient:
    """Build the client from ``GitHubSettings`` (or a subclass; one with a
    ``github_write_interval_s`` sets the pacing of writes)."""
    token = settings.github_token.get_secret_value() if settings.github_token else ""
    return GitHubClient(
        token,
        settings.github_api_url,
        timeout=settings.github_timeout_s,
        retries=settings.github_retries,
        backoff_s=settings.github_backoff_s,
        deadline=deadline,
        write_interval=getattr(settings, "github_write_interval_s", WRITE_INTERVAL_S),
    )


def _decode(output: str) -> Any:
    try:
        return json.loads(output) if output else None
    except ValueError:
        return {"data": output}


def describe_github_error(exc: Exception) -> str:
    """One line for a PyGithub exception (status and GitHub's message)."""
    if isinstance(exc, GithubException):
        data = exc.data if isinstance(exc.data, dict) else {}
        message = data.get("message") or str(exc.data or "")
        return f"GitHub answered {exc.status}: {message}".strip()
    if isinstance(exc, requests.RequestException):
        return f"GitHub unreachable: {type(exc).__name__}: {exc}"
    return f"{type(exc).__name__}: {exc}"
