"""The GitHub client every gate uses: PyGithub, configured once.

* ``GITHUB_TOKEN`` and ``GITHUB_API_URL`` (GitHub Enterprise Server, or the
  test emulator) come from settings.
* Retries are PyGithub's own ``GithubRetry``: 5xx, primary rate limits (wait
  for X-RateLimit-Reset) and secondary ones (Retry-After), plus 429. A job
  deadline caps every wait: a retry that would sleep past it raises
  ``DeadlineExceeded`` instead, so the caller can fall back in time.
* Every HTTP request is counted by endpoint (retries too), and the last
  X-RateLimit-Remaining seen is kept, for ``tw_gates_github_api_calls_total``
  and ``github_api_quota_remaining``.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter as Tally
from typing import Any
from urllib.parse import urlsplit

import requests
from github import Auth, Github, GithubException, GithubRetry
from github.Requester import HTTPRequestsConnectionClass, HTTPSRequestsConnectionClass, Requester

from tw_gates.core import metrics
from tw_gates.core.errors import ExternalServiceError, TwGatesError, UsageError
from tw_gates.core.redact import REDACTOR


class DeadlineExceeded(TwGatesError):
    """Waiting for GitHub (rate limit or backoff) would pass the job's deadline."""


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


class TwRetry(GithubRetry):
    """GithubRetry that counts retries and never sleeps past a deadline."""

    def __init__(self, *, counter: ApiCallCounter | None = None, deadline: float | None = None, **kwargs: Any) -> None:
        self.counter = counter
        self.deadline = deadline
        kwargs.setdefault("status_forcelist", [*range(500, 600), 429])
        super().__init__(**kwargs)

    def new(self, **kw: Any) -> TwRetry:
        retry = super().new(**kw)
        retry.counter = self.counter
        retry.deadline = self.deadline
        return retry

    def _time_left(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.time()

    def increment(self, method=None, url=None, response=None, error=None, _pool=None, _stacktrace=None):
        left = self._time_left()
        if left is not None:
            # Cap PyGithub's own rate-limit wait at what the deadline allows.
            cap = max(left, 0.0)
            self.max_rate_limit_wait = cap if self.max_rate_limit_wait is None else min(self.max_rate_limit_wait, cap)
        try:
            retry = super().increment(method, url, response, error, _pool, _stacktrace)
        except GithubException as exc:
            if type(exc).__name__ == "RateLimitExceededExceedsMaxWait" and left is not None:
                raise DeadlineExceeded(
                    f"GitHub asks to wait {getattr(exc, 'wait', 0):.0f}s; that passes the deadline "
                    f"({max(left, 0):.0f}s left)"
                ) from exc
            raise
        if self.counter is not None:
            self.counter.record_retry(method or "GET", url or "/")
        return retry

    def sleep(self, response=None) -> None:
        left = self._time_left()
        if left is not None:
            wait = 0.0
            if response is not None and self.respect_retry_after_header:
                wait = self.get_retry_after(response) or 0.0
            wait = max(wait, self.get_backoff_time())
            if wait > left:
                raise DeadlineExceeded(
                    f"GitHub asks to wait {wait:.0f}s before retrying; "
                    f"that passes the deadline ({max(left, 0):.0f}s left)"
                )
        super().sleep(response)


def _counting(base: type) -> type:
    """A PyGithub connection class whose session counts each final response;
    the counter travels on the Retry object PyGithub hands to it."""

    class Counting(base):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            counter = getattr(self.retry, "counter", None)
            if counter is not None:

                def hook(response: requests.Response, *a: Any, **k: Any) -> None:
                    counter.record(response.request.method or "GET", response.request.url or "/", response.headers)

                self.session.hooks["response"].append(hook)

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
    ) -> None:
        if not token:
            raise UsageError("no GitHub token: set GITHUB_TOKEN")
        REDACTOR.register(token)
        _inject_counting_connections()
        self.api_url = api_url.rstrip("/")
        self.calls = ApiCallCounter()
        self.deadline = deadline
        self._token = token
        self.retry = TwRetry(
            counter=self.calls,
            deadline=deadline,
            total=retries,
            backoff_factor=backoff_s,
            secondary_rate_wait=60,
            raise_on_status=False,
        )
        self.gh = Github(
            auth=Auth.Token(token),
            base_url=self.api_url,
            timeout=int(max(1, timeout)),
            retry=self.retry,
            per_page=per_page,
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

    def download(self, url: str, *, max_bytes: int = 512 * 1024 * 1024) -> bytes:
        """GET a binary (artifact zip). GitHub answers with a redirect to blob
        storage; the token goes to the API host only, never to the redirect."""
        session = self._session or requests.Session()
        self._session = session
        api_host = urlsplit(self.api_url).netloc
        target = url
        for _ in range(5):
            auth = {"Authorization": f"Bearer {self._token}"} if urlsplit(target).netloc == api_host else {}
            response = session.get(
                target,
                headers={**auth, "Accept": "application/vnd.github+json"},
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
    """Build the client from ``GitHubSettings`` (or a subclass)."""
    token = settings.github_token.get_secret_value() if settings.github_token else ""
    return GitHubClient(
        token,
        settings.github_api_url,
        timeout=settings.github_timeout_s,
        retries=settings.github_retries,
        backoff_s=settings.github_backoff_s,
        deadline=deadline,
    )


def describe_github_error(exc: Exception) -> str:
    """One line for a PyGithub exception (status and GitHub's message)."""
    if isinstance(exc, GithubException):
        data = exc.data if isinstance(exc.data, dict) else {}
        message = data.get("message") or str(exc.data or "")
        return f"GitHub answered {exc.status}: {message}".strip()
    if isinstance(exc, requests.RequestException):
        return f"GitHub unreachable: {type(exc).__name__}: {exc}"
    return f"{type(exc).__name__}: {exc}"
