"""Waiting for GitHub as it asks: rate-limited answers (403 or 429) and the pace of
writes, both capped by the job's deadline. Used by ``core.github_client``.

* ``rate_limit_wait``: GitHub's "Rate limits for the REST API": after a rate-limited
  answer, wait ``Retry-After`` seconds if given; else, when ``X-RateLimit-Remaining``
  is 0, until ``X-RateLimit-Reset``; else at least a minute.
* ``WritePacer``: content-generating requests (POST, PATCH, PUT, DELETE) at least
  1 s apart, at most 80 a minute and 500 an hour (GitHub's secondary limits).
* ``TwRetry``: PyGithub's ``GithubRetry`` (5xx, 403 rate limits) plus 429 handled
  like a 403 rate limit; a wait that would pass the deadline raises
  ``DeadlineExceeded`` at once (without a deadline: one longer than ``max_wait``).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from github import GithubException, GithubRetry
from urllib3 import Retry

from tw_gates.core.errors import TwGatesError


class DeadlineExceeded(TwGatesError):
    """Waiting for GitHub (rate limit or backoff) would pass the job's deadline."""


# GitHub's secondary limits on content-generating requests, and its advice.
WRITE_INTERVAL_S = 1.0
WRITES_PER_MINUTE = 80
WRITES_PER_HOUR = 500
# GitHub: without Retry-After or an exhausted quota, wait at least a minute.
SECONDARY_WAIT_S = 60.0
# Without a deadline, no single wait longer than this.
MAX_WAIT_S = 900.0


def rate_limit_wait(status: int, headers: Any, now: float | None = None) -> float | None:
    """Seconds GitHub asks a client to wait after a rate-limited answer (403 or 429),
    or None when the answer is not a rate limit GitHub said anything about."""
    if status not in (403, 429):
        return None
    now = time.time() if now is None else now
    retry_after = _header(headers, "Retry-After")
    if retry_after is not None and retry_after.strip().isdigit():
        return float(retry_after.strip())
    reset = _header(headers, "X-RateLimit-Reset")
    if _header(headers, "X-RateLimit-Remaining") == "0" and reset and reset.strip().isdigit():
        return max(float(reset) - now, 0.0) + 1.0
    return SECONDARY_WAIT_S if status == 429 else None


def _header(headers: Any, name: str) -> str | None:
    if headers is None:
        return None
    for key, value in dict(headers).items():
        if key.lower() == name.lower():
            return str(value)
    return None


class WritePacer:
    """Spaces content-generating requests as GitHub asks: ``interval`` apart, and
    never more than 80 in a minute or 500 in an hour (a smaller interval cannot
    push past those). A pause that would pass ``deadline`` raises instead."""

    def __init__(
        self,
        interval: float = WRITE_INTERVAL_S,
        *,
        deadline: float | None = None,
        per_minute: int = WRITES_PER_MINUTE,
        per_hour: int = WRITES_PER_HOUR,
    ) -> None:
        self.interval = max(interval, 0.0)
        self.deadline = deadline
        self.per_minute = per_minute
        self.per_hour = per_hour
        self._sent: list[float] = []
        self._lock = threading.Lock()
        self.waited = 0.0

    def _slot(self, now: float, sent: list[float]) -> float:
        recent = [t for t in sent if t > now - 3600]
        slot = now
        if recent:
            slot = max(slot, recent[-1] + self.interval)
        minute = [t for t in recent if t > now - 60]
        if len(minute) >= self.per_minute:
            slot = max(slot, minute[-self.per_minute] + 60)
        if len(recent) >= self.per_hour:
            slot = max(slot, recent[-self.per_hour] + 3600)
        return slot

    def seconds_for(self, writes: int, now: float | None = None) -> float:
        """How long ``writes`` more writes take from now, paced (for planning)."""
        now = time.time() if now is None else now
        with self._lock:
            sent = list(self._sent)
        clock = now
        for _ in range(writes):
            clock = self._slot(clock, sent)
            sent.append(clock)
        return clock - now

    def wait(self) -> None:
        with self._lock:
            now = time.time()
            slot = self._slot(now, self._sent)
            if self.deadline is not None and slot > self.deadline:
                raise DeadlineExceeded(
                    f"pacing writes to GitHub's secondary limits (1 every {self.interval:g}s, "
                    f"{self.per_minute} a minute, {self.per_hour} an hour) would pass the deadline"
                )
            if slot > now:
                time.sleep(slot - now)
                self.waited += slot - now
            self._sent.append(max(slot, time.time()))
            self._sent = self._sent[-self.per_hour :]


class TwRetry(GithubRetry):
    """GithubRetry that counts retries, waits for 429s as GitHub documents, never
    sleeps past a deadline (or, without one, longer than ``max_wait``), and carries
    the write pacer to the connections."""

    def __init__(
        self,
        *,
        counter: Any = None,
        deadline: float | None = None,
        pacer: WritePacer | None = None,
        max_wait: float = MAX_WAIT_S,
        **kwargs: Any,
    ) -> None:
        self.counter = counter
        self.deadline = deadline
        self.pacer = pacer
        self.max_wait = max_wait
        kwargs.setdefault("status_forcelist", [*range(500, 600), 429])
        # PATCH too (urllib3 leaves it out as not idempotent): setting an issue's fields twice
        # changes nothing more than once.
        kwargs.setdefault("allowed_methods", Retry.DEFAULT_ALLOWED_METHODS | {"GET", "POST", "PATCH"})
        super().__init__(**kwargs)

    def new(self, **kw: Any) -> TwRetry:
        retry = super().new(**kw)
        retry.counter, retry.deadline, retry.pacer, retry.max_wait = (
            self.counter,
            self.deadline,
            self.pacer,
            self.max_wait,
        )
        return retry

    def _time_left(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.time()

    def _too_long(self, wait: float) -> DeadlineExceeded | None:
        left = self._time_left()
        if left is not None and wait > left:
            return DeadlineExceeded(
                f"GitHub asks to wait {wait:.0f}s; that passes the deadline ({max(left, 0):.0f}s left)"
            )
        if left is None and wait > self.max_wait:
            return DeadlineExceeded(f"GitHub asks to wait {wait:.0f}s, longer than {self.max_wait:.0f}s")
        return None

    def increment(self, method=None, url=None, response=None, error=None, _pool=None, _stacktrace=None):
        if response is not None and response.status == 429:
            return self._rate_limited(method, url, response, error, _pool, _stacktrace)
        left = self._time_left()
        # Cap PyGithub's own rate-limit wait (403) at what the deadline allows.
        cap = max(left, 0.0) if left is not None else self.max_wait
        self.max_rate_limit_wait = cap if self.max_rate_limit_wait is None else min(self.max_rate_limit_wait, cap)
        try:
            retry = super().increment(method, url, response, error, _pool, _stacktrace)
        except GithubException as exc:
            if type(exc).__name__ == "RateLimitExceededExceedsMaxWait":
                raise self._too_long(float(getattr(exc, "wait", 0) or 0)) or DeadlineExceeded(
                    f"GitHub asks to wait {getattr(exc, 'wait', 0):.0f}s"
                ) from exc
            raise
        self._count(method, url)
        return retry

    def _rate_limited(self, method, url, response, error, _pool, _stacktrace):
        """429: GitHub's rate limits answer 403 or 429 alike, so wait as for a 403:
        Retry-After, else the reset when the quota is spent, else at least a minute."""
        wait = rate_limit_wait(429, response.headers) or SECONDARY_WAIT_S
        too_long = self._too_long(wait)
        if too_long is not None:
            raise too_long
        retry = Retry.increment(self, method, url, response, error, _pool, _stacktrace)
        retry.get_backoff_time = lambda: wait  # type: ignore[method-assign]
        self._count(method, url)
        return retry

    def _count(self, method: str | None, url: str | None) -> None:
        if self.counter is not None:
            self.counter.record_retry(method or "GET", url or "/")

    def sleep(self, response=None) -> None:
        wait = 0.0
        if response is not None and self.respect_retry_after_header:
            wait = self.get_retry_after(response) or 0.0
        too_long = self._too_long(max(wait, self.get_backoff_time()))
        if too_long is not None:
            raise too_long
        super().sleep(response)
