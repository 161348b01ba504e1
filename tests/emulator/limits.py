"""Rate limits as GitHub applies them.

Primary limits (``X-RateLimit-*``): one bucket per resource and *actor*, as on GitHub:
a user's tokens (classic and fine-grained) share the user's 5,000 an hour; an App
installation has its own 5,000; a workflow's ``GITHUB_TOKEN`` has 1,000 an hour per
repository; search is 30 a minute. ``GitHubEmulator.set_rate_limit`` replaces the
defaults (for every actor, or for one token).

Secondary limits (GitHub's "Rate limits for the REST API"): per actor, at most 80
content-generating requests (POST, PATCH, PUT, DELETE) a minute and 500 an hour, and
at most 900 points a minute on one endpoint (a GET costs 1 point, a write 5). A
request over a limit is refused with ``403`` (or ``429``, ``GitHubEmulator.
rate_limit_status``), GitHub's secondary-limit message and a ``Retry-After`` header,
and is not carried out.
"""

from __future__ import annotations

import math
from collections import deque

from .state import RateBucket, State, Token

CONTENT_METHODS = ("POST", "PATCH", "PUT", "DELETE")
DEFAULT_LIMITS = {"core": (5000, 3600), "search": (30, 60), "graphql": (5000, 3600)}
ACTIONS_CORE_LIMIT = 1000


def actor_key(token: Token | None) -> str:
    """Who a quota belongs to."""
    if token is None:
        return "anonymous"
    if token.kind == "actions":
        return f"actions:{(token.repository or next(iter(token.repo_permissions), '?')).lower()}"
    if token.kind == "app":
        return f"installation:{token.login.lower()}"
    return f"user:{token.login.lower()}"


def bucket(state: State, resource: str, token: Token | None) -> RateBucket:
    """The actor's bucket for ``resource``, created on first use from the override
    ``set_rate_limit`` installed, else from GitHub's defaults."""
    key = (resource, actor_key(token))
    found = state.buckets.get(key)
    if found is None:
        template = state.rate.get(resource)
        if template is not None:
            found = RateBucket(template.limit, template.window, template.remaining, template.reset_at)
        else:
            limit, window = DEFAULT_LIMITS.get(resource, DEFAULT_LIMITS["core"])
            if resource == "core" and token is not None and token.kind == "actions":
                limit = ACTIONS_CORE_LIMIT
            found = RateBucket(limit, window)
        state.buckets[key] = found
    return found


def secondary_wait(state: State, token: Token | None, method: str, endpoint: str, now: float) -> int | None:
    """Seconds to wait (``Retry-After``) if this request is over a secondary limit,
    else None (and the request is counted)."""
    limits = state.secondary_limits
    # (time, points, content-generating, endpoint) of the actor's requests in the last hour
    window = state.windows.setdefault(actor_key(token), deque())
    while window and window[0][0] <= now - 3600:
        window.popleft()
    content = method in CONTENT_METHODS
    points = 5 if content else 1
    minute = [e for e in window if e[0] > now - 60]
    if content:
        created_minute = [e for e in minute if e[2]]
        if len(created_minute) >= limits.content_per_minute:
            return _after(created_minute[0][0] + 60 - now)
        created_hour = [e for e in window if e[2]]
        if len(created_hour) >= limits.content_per_hour:
            return _after(created_hour[0][0] + 3600 - now)
    same = [e for e in minute if e[3] == endpoint]
    if sum(e[1] for e in same) + points > limits.points_per_minute:
        return _after(same[0][0] + 60 - now)
    window.append((now, points, content, endpoint))
    return None


def _after(seconds: float) -> int:
    return max(1, math.ceil(seconds))
