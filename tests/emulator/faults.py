"""Fault injection: scripted failures that look like GitHub's own.

``Fault`` matches requests by method and path regex; the first ``after`` matching requests pass,
then the next ``times`` matching requests (``times=None``: all of them) get the fault.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from .router import DOCS, Response, error

SECONDARY_MESSAGE = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
SERVER_ERROR_MESSAGES = {500: "Server Error", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}

# kind → default parameters (anything else passed to inject() is rejected)
FAULT_KINDS: dict[str, dict[str, Any]] = {
    "server_error": {"status": 500, "retry_after": None},
    "primary_rate_limit": {"status": 403, "reset_in": 60},
    "secondary_rate_limit": {"status": 403, "retry_after": 60},
    "permission_denied": {"permissions": "", "message": "Resource not accessible by integration"},
    "not_found": {"message": "Not Found"},
    # Not GitHub: an answer outside the operation's documented ones (a proxy, a bug), to
    # test that a client does not take it for success. Off the contract check.
    "unexpected_status": {"status": 200, "body": None},
    "latency": {"seconds": 1.0},
    "timeout_hang": {"seconds": 30.0, "process": False},
}
DELAY_KINDS = ("latency", "timeout_hang")
OFF_CONTRACT_KINDS = ("unexpected_status",)


@dataclass
class Fault:
    kind: str
    method: str | None = None
    path: str | None = None
    times: int | None = 1
    after: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    seen: int = 0
    fired: int = 0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {sorted(FAULT_KINDS)}")
        unknown = set(self.params) - set(FAULT_KINDS[self.kind])
        if unknown:
            raise ValueError(f"fault {self.kind!r} does not take {sorted(unknown)}")
        self.params = {**FAULT_KINDS[self.kind], **self.params}
        self.method = self.method.upper() if self.method else None
        self._regex = re.compile(self.path) if self.path else None

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.fired >= self.times

    def take(self, method: str, path: str) -> bool:
        """Count a matching request; True if the fault fires for it."""
        if (self.method and self.method != method) or (self._regex and not self._regex.search(path)):
            return False
        self.seen += 1
        if self.seen <= self.after or self.exhausted:
            return False
        self.fired += 1
        return True

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "method": self.method,
            "path": self.path,
            "times": self.times,
            "after": self.after,
            "params": self.params,
            "seen": self.seen,
            "fired": self.fired,
        }

    def response(self, actor: str, rate_limit: int) -> Response:
        """The answer for a terminal (non-delay) fault."""
        p = self.params
        if self.kind == "server_error":
            status = int(p["status"])
            resp = Response(status, {"message": SERVER_ERROR_MESSAGES.get(status, "Server Error")})
            if p["retry_after"] is not None:
                resp.headers["Retry-After"] = str(p["retry_after"])
            return resp
        if self.kind == "primary_rate_limit":
            resp = error(
                int(p["status"]),
                f"API rate limit exceeded for {actor}.",
                documentation_url=f"{DOCS}/overview/rate-limits-for-the-rest-api",
            )
            resp.headers.update(
                {
                    "X-RateLimit-Limit": str(rate_limit),
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Used": str(rate_limit),
                    "X-RateLimit-Reset": str(int(time.time() + float(p["reset_in"]))),
                }
            )
            return resp
        if self.kind == "secondary_rate_limit":
            resp = error(
                int(p["status"]),
                SECONDARY_MESSAGE,
                documentation_url=f"{DOCS}/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
            )
            if p["retry_after"] is not None:
                resp.headers["Retry-After"] = str(p["retry_after"])
            return resp
        if self.kind == "permission_denied":
            resp = error(403, p["message"])
            if p["permissions"]:
                resp.headers["X-Accepted-GitHub-Permissions"] = p["permissions"]
            return resp
        if self.kind == "not_found":
            return error(404, p["message"])
        if self.kind == "unexpected_status":
            return Response(int(p["status"]), p["body"])
        raise AssertionError(f"{self.kind} is not a terminal fault")


class FaultPlan:
    """The ordered list of injected faults (callers hold the state lock)."""

    def __init__(self) -> None:
        self.faults: list[Fault] = []

    def add(self, fault: Fault) -> Fault:
        self.faults.append(fault)
        return fault

    def clear(self) -> None:
        self.faults.clear()

    def select(self, method: str, path: str) -> tuple[list[Fault], Fault | None]:
        """Delay faults that fire for this request, and the first terminal fault that fires."""
        delays: list[Fault] = []
        terminal: Fault | None = None
        for fault in self.faults:
            if fault.kind in DELAY_KINDS:
                if fault.take(method, path):
                    delays.append(fault)
            elif terminal is None and fault.take(method, path):
                terminal = fault
        return delays, terminal
