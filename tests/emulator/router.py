"""A tiny method + path-template router, and the request/response value objects."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

DOCS = "https://docs.github.com/rest"


@dataclass
class Response:
    status: int = 200
    body: Any = None  # JSON-able object, raw bytes, or None (no body)
    headers: dict[str, str] = field(default_factory=dict)
    drop_connection: bool = False  # close the socket without answering (timeout_hang)


def error(status: int, message: str, /, **extra: Any) -> Response:
    """GitHub's error envelope: {"message": ..., "documentation_url": ...}."""
    return Response(status, {"message": message, "documentation_url": DOCS, **extra})


def validation_failed(resource: str, field_name: str, code: str = "missing_field") -> Response:
    return error(
        422, "Validation Failed", errors=[{"resource": resource, "code": code, "field": field_name}], status="422"
    )


@dataclass
class Route:
    method: str
    template: str
    regex: re.Pattern[str]
    handler: Callable[..., Response]
    perm: tuple[str, str] | None  # ("issues", "write") — checked against the {owner}/{repo} in the path
    resource: str | None  # rate-limit bucket, None = not counted
    auth: bool


_PARAM = re.compile(r"\{(\w+)(?::(\w+))?\}")
_KINDS = {None: r"[^/]+", "int": r"\d+", "path": r".+?"}


def compile_template(template: str) -> re.Pattern[str]:
    """'/repos/{owner}/{repo}/issues/{number:int}' → anchored regex with named groups."""
    out, pos = [], 0
    for m in _PARAM.finditer(template):
        out.append(re.escape(template[pos : m.start()]))
        out.append(f"(?P<{m.group(1)}>{_KINDS[m.group(2)]})")
        pos = m.end()
    out.append(re.escape(template[pos:]))
    return re.compile("^" + "".join(out) + "/?$")


class Router:
    def __init__(self) -> None:
        self.routes: list[Route] = []

    def route(
        self,
        method: str,
        template: str,
        *,
        perm: tuple[str, str] | None = None,
        resource: str | None = "core",
        auth: bool = True,
    ) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
        def register(fn: Callable[..., Response]) -> Callable[..., Response]:
            self.routes.append(Route(method, template, compile_template(template), fn, perm, resource, auth))
            return fn

        return register

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for route in self.routes:
            if route.method == method:
                m = route.regex.match(path)
                if m:
                    return route, m.groupdict()
        return None
