"""GitHubEmulator: the HTTP server, the request pipeline, and the Python API used by tests.

Pipeline for every API request (see ``_respond``):
  injected fault → route lookup (404) → authentication (401) → primary rate limit (403)
  → repository lookup + permission check (404/403) → JSON body (400) → handler
  → ETag / If-None-Match (304) → rate-limit accounting and standard headers.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import sys
import threading
import time
import traceback
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from . import access
from .faults import Fault, FaultPlan
from .handlers import ROUTER, Ctx
from .render import Renderer
from .router import DOCS, Response, Router, error
from .state import (
    DEFAULT_LOGINS,
    ROLES,
    TOKEN_KINDS,
    Artifact,
    Issue,
    Label,
    Protection,
    RateBucket,
    Repo,
    Ruleset,
    State,
    Token,
    WorkflowRun,
    fake_sha,
    normalise_check,
)

CONTROL = Router()  # /_emulator/* : no auth, not logged, not rate limited


@dataclass
class RequestRecord:
    method: str
    path: str
    query: dict[str, str]
    status: int
    token_kind: str | None
    login: str | None
    timestamp: float
    fault: str | None = None
    sent_token: bool = False  # an Authorization header was present (known token or not)


class GitHubEmulator:
    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        html_base: str = "https://github.com",
        blob_host: str | None = None,
        state: State | None = None,
    ) -> None:
        """``blob_host``: host name artifact downloads redirect to. Default: the other spelling of
        loopback ("localhost" for 127.0.0.1 and vice versa), so the redirect crosses hosts as on
        GitHub and clients must drop the token; pass the API host to keep it on one host."""
        self.host, self.port, self.html_base, self.blob_host = host, port, html_base, blob_host
        self.state = state or State()
        self.faults = FaultPlan()
        self._log: list[RequestRecord] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # ------------------------------------------------------------ lifecycle

    def start(self) -> GitHubEmulator:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = ThreadingHTTPServer((self.host, self.port), _Handler)
        self._server.daemon_threads = True
        self._server.emulator = self  # type: ignore[attr-defined]
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="github-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes up latency / timeout_hang sleeps
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = self._thread = None

    def __enter__(self) -> GitHubEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("emulator not started")
        return f"http://{self.host}:{self.port}"

    # ------------------------------------------------------------ seeding

    def add_token(
        self,
        token: str,
        login: str | None = None,
        kind: str = "user",
        scopes: Iterable[str] | None = None,
        repo_permissions: dict[str, dict[str, str]] | None = None,
    ) -> None:
        if kind not in TOKEN_KINDS:
            raise ValueError(f"kind must be one of {TOKEN_KINDS}")
        with self.state.lock:
            self.state.tokens[token] = Token(
                token=token,
                login=login or DEFAULT_LOGINS.get(kind, "octocat"),
                kind=kind,
                scopes=list(scopes) if scopes is not None else (["repo"] if kind == "user" else []),
                repo_permissions={k: dict(v) for k, v in (repo_permissions or {}).items()},
            )

    def add_repo(
        self,
        full_name: str,
        default_branch: str = "main",
        private: bool = False,
        collaborators: dict[str, str] | None = None,
        branches: Iterable[str] = (),
    ) -> None:
        bad = set((collaborators or {}).values()) - set(ROLES)
        if bad or "/" not in full_name:
            raise ValueError(f"bad repo {full_name!r} or roles {bad}")
        with self.state.lock:
            self.state.repos[full_name.lower()] = Repo(
                id=self.state.new_id(),
                full_name=full_name,
                default_branch=default_branch,
                private=private,
                collaborators=dict(collaborators or {}),
                branches=list(branches),
            )

    def add_branch(self, repo: str, branch: str) -> None:
        with self.state.lock:
            r = self._repo(repo)
            if not r.has_branch(branch):
                r.branches.append(branch)

    def add_label(self, repo: str, name: str, color: str = "ededed", description: str | None = None) -> None:
        with self.state.lock:
            self._repo(repo).labels[name.lower()] = Label(self.state.new_id(), name, color, description)

    def add_issue(
        self,
        repo: str,
        title: str,
        body: str | None = None,
        labels: Iterable[str] = (),
        state: str = "open",
        user: str = "octocat",
        created_at: float | None = None,
    ) -> int:
        """Seed an issue directly (no HTTP, no rate limit). Returns its number."""
        with self.state.lock:
            r = self._repo(repo)
            for name in labels:
                if r.label(name) is None:
                    r.labels[name.lower()] = Label(self.state.new_id(), name)
            ts = time.time() if created_at is None else created_at
            number = max(r.issues, default=0) + 1
            r.issues[number] = Issue(
                id=self.state.new_id(),
                number=number,
                title=title,
                body=body,
                user=user,
                created_at=ts,
                updated_at=ts,
                state=state,
                closed_at=ts if state == "closed" else None,
                state_reason="completed" if state == "closed" else None,
                labels=[r.label(n).name for n in labels],
            )
            return number

    def set_branch_protection(
        self, repo: str, branch: str, contexts: Iterable[str] = (), strict: bool = True, enforce_admins: bool = False
    ) -> None:
        with self.state.lock:
            r = self._repo(repo)
            if not r.has_branch(branch):
                r.branches.append(branch)
            r.protections[branch] = Protection(list(contexts), strict, enforce_admins)

    def remove_branch_protection(self, repo: str, branch: str) -> None:
        with self.state.lock:
            self._repo(repo).protections.pop(branch, None)

    def add_ruleset(
        self,
        repo: str,
        name: str,
        branch_patterns: Iterable[str] = ("~DEFAULT_BRANCH",),
        required_checks: Iterable[str | dict[str, Any]] = (),
        enforcement: str = "active",
        strict: bool = False,
        rules: Iterable[dict[str, Any]] = (),
    ) -> int:
        """``required_checks``: context names or {"context", "integration_id"}; ``rules``: extra raw rules."""
        if enforcement not in ("active", "evaluate", "disabled"):
            raise ValueError("enforcement must be active, evaluate or disabled")
        with self.state.lock:
            rs = Ruleset(
                id=self.state.new_id(),
                name=name,
                branch_patterns=list(branch_patterns),
                required_checks=[normalise_check(c) for c in required_checks],
                enforcement=enforcement,
                strict=strict,
                extra_rules=list(rules),
            )
            self._repo(repo).rulesets[rs.id] = rs
            return rs.id

    def add_workflow_run(
        self,
        repo: str,
        run_id: int | None = None,
        conclusion: str | None = "success",
        head_sha: str | None = None,
        head_branch: str | None = None,
        name: str = "CI",
        status: str = "completed",
        event: str = "push",
        path: str = ".github/workflows/ci.yml",
        head_repository: str | None = None,
    ) -> int:
        with self.state.lock:
            r = self._repo(repo)
            run_id = run_id or self.state.new_id()
            r.runs[run_id] = WorkflowRun(
                id=run_id,
                name=name,
                head_sha=head_sha or fake_sha(run_id),
                head_branch=head_branch or r.default_branch,
                conclusion=conclusion,
                status=status,
                event=event,
                path=path,
                run_number=len(r.runs) + 1,
                head_repository=head_repository,
            )
            return run_id

    def add_artifact(
        self,
        repo: str,
        name: str,
        files: dict[str, bytes | str] | None = None,
        run_id: int | None = None,
        expired: bool = False,
        created_at: float | None = None,
    ) -> int:
        """Files are zipped on download. An unknown/None ``run_id`` creates that workflow run."""
        with self.state.lock:
            r = self._repo(repo)
            if run_id is None or run_id not in r.runs:
                run_id = self.add_workflow_run(repo, run_id=run_id)
            art_id = self.state.new_id()
            r.artifacts[art_id] = Artifact(
                id=art_id,
                name=name,
                run_id=run_id,
                expired=expired,
                files={p: d.encode() if isinstance(d, str) else d for p, d in (files or {}).items()},
                created_at=time.time() if created_at is None else created_at,
                blob_key=fake_sha(("blob", art_id, time.time())),
            )
            return art_id

    def set_rate_limit(
        self, remaining: int | None = None, limit: int = 5000, reset_in: float = 3600, resource: str = "core"
    ) -> None:
        with self.state.lock:
            self.state.rate[resource] = RateBucket(
                limit=limit,
                window=max(int(reset_in), 1),
                remaining=limit if remaining is None else remaining,
                reset_at=time.time() + reset_in,
            )

    @property
    def search_lag_seconds(self) -> float:
        return self.state.search_lag_seconds

    @search_lag_seconds.setter
    def search_lag_seconds(self, value: float) -> None:
        with self.state.lock:
            self.state.search_lag_seconds = float(value)

    # ------------------------------------------------------------ faults

    def inject(
        self,
        kind: str,
        *,
        method: str | None = None,
        path: str | None = None,
        times: int | None = 1,
        after: int = 0,
        **params: Any,
    ) -> Fault:
        """``path`` is a regex searched in the request path; ``times=None`` fires forever."""
        with self.state.lock:
            return self.faults.add(Fault(kind, method, path, times, after, params))

    def clear_faults(self) -> None:
        with self.state.lock:
            self.faults.clear()

    # ------------------------------------------------------------ observability

    @property
    def requests(self) -> list[RequestRecord]:
        with self.state.lock:
            return list(self._log)

    def count(self, method: str | None = None, path_regex: str | None = None, status: int | None = None) -> int:
        return sum(
            1
            for r in self.requests
            if (method is None or r.method == method.upper())
            and (path_regex is None or re.search(path_regex, r.path))
            and (status is None or r.status == status)
        )

    def clear_requests(self) -> None:
        with self.state.lock:
            self._log.clear()

    def _renderer(self) -> Renderer:
        base = f"http://{self.host}:{self.port}"
        return Renderer(self.state, base, self.html_base)

    def issues(self, repo: str) -> list[dict[str, Any]]:
        with self.state.lock:
            r = self._repo(repo)
            return [self._renderer().issue(r, i) for _, i in sorted(r.issues.items())]

    def comments(self, repo: str, number: int) -> list[dict[str, Any]]:
        with self.state.lock:
            r = self._repo(repo)
            issue = r.issues[number]
            return [self._renderer().comment(r, issue, c) for c in issue.comments]

    def labels(self, repo: str) -> list[str]:
        with self.state.lock:
            return sorted(lb.name for lb in self._repo(repo).labels.values())

    def dispatches(self, repo: str) -> list[dict[str, Any]]:
        with self.state.lock:
            return [dict(d) for d in self._repo(repo).dispatches]

    # ------------------------------------------------------------ state files

    @classmethod
    def from_state(cls, data: dict[str, Any], **kwargs: Any) -> GitHubEmulator:
        return cls(state=State.from_dict(data), **kwargs)

    def dump_state(self) -> dict[str, Any]:
        with self.state.lock:
            return self.state.to_dict()

    def load_state(self, data: dict[str, Any]) -> None:
        new = State.from_dict(data)
        with self.state.lock:
            for name in ("tokens", "repos", "rate", "search_lag_seconds", "next_id", "user_ids"):
                setattr(self.state, name, getattr(new, name))

    def _repo(self, full_name: str) -> Repo:
        repo = self.state.repo(full_name)
        if repo is None:
            raise KeyError(f"no such repo {full_name!r}; call add_repo first")
        return repo

    # ------------------------------------------------------------ request pipeline

    def handle(self, method: str, target: str, headers: Any, raw_body: bytes) -> Response:
        split = urlsplit(target)
        path, query = split.path, dict(parse_qsl(split.query, keep_blank_values=True))
        if path.startswith("/_emulator/"):
            return self._control(method, path, raw_body)
        raw_token = _bearer(headers.get("Authorization"))
        with self.state.lock:
            delays, fault = self.faults.select(method, path)
        for delay in delays:
            self._stopping.wait(float(delay.params["seconds"]))
            if delay.kind == "timeout_hang" and not delay.params["process"]:
                self._record(method, path, query, 0, raw_token, delay.kind)
                return Response(drop_connection=True)
        with self.state.lock:
            resp = self._respond(method, path, query, headers, raw_body, raw_token, fault)
            self._record(method, path, query, resp.status, raw_token, fault.kind if fault else None)
        return resp

    def _respond(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        headers: Any,
        raw_body: bytes,
        raw_token: str | None,
        fault: Fault | None,
    ) -> Response:
        now = time.time()
        token = self.state.tokens.get(raw_token) if raw_token else None
        match = ROUTER.match("GET" if method == "HEAD" else method, path)
        route, params = match if match else (None, {})
        bucket_name = route.resource if route and route.resource else "core"
        bucket = self.state.rate[bucket_name]
        bucket.refresh(now)
        counted = bool(token and route and route.resource)

        if fault:
            resp, counted = fault.response(self._actor(token), bucket.limit), False
        elif route is None:
            resp = error(404, "Not Found")
        elif route.auth and raw_token is None:
            resp, counted = error(401, "Requires authentication"), False
        elif route.auth and token is None:
            resp, counted = error(401, "Bad credentials"), False
        elif counted and bucket.remaining <= 0:
            resp, counted = (
                error(
                    403,
                    f"API rate limit exceeded for {self._actor(token)}.",
                    documentation_url=f"{DOCS}/overview/rate-limits-for-the-rest-api",
                ),
                False,
            )
        else:
            resp = self._call(
                route, {k: unquote(v) for k, v in params.items()}, token, path, query, raw_body, headers, now
            )
            if method == "GET" and resp.status == 200:
                etag = 'W/"' + hashlib.sha256(_encode(resp.body)).hexdigest() + '"'
                resp.headers["ETag"] = etag
                if _etag_matches(headers.get("If-None-Match"), etag):
                    resp, counted = Response(304, None, {"ETag": etag}), False
        if counted:
            bucket.remaining = max(bucket.remaining - 1, 0)
        if route and route.resource is None and route.auth is False:
            return resp  # blob storage: none of the API headers
        self._api_headers(resp, token, route, bucket_name, bucket)
        return resp

    def _call(
        self,
        route: Any,
        params: dict[str, str],
        token: Token | None,
        path: str,
        query: dict[str, str],
        raw_body: bytes,
        headers: Any,
        now: float,
    ) -> Response:
        host = headers.get("Host") or f"{self.host}:{self.port}"
        repo = None
        if "owner" in params:
            repo = self.state.repo(f"{params.pop('owner')}/{params.pop('repo')}")
            if repo is None:
                return error(404, "Not Found")
            if route.perm:
                denied = access.denial(token, repo, *route.perm)
                if denied:
                    return denied
        try:
            body = json.loads(raw_body) if raw_body.strip() else None
        except ValueError:
            return error(400, "Problems parsing JSON")
        ctx = Ctx(
            self.state,
            Renderer(self.state, f"http://{host}", self.html_base),
            token,
            repo,
            path,
            query,
            body,
            now,
            blob_base=f"http://{self._blob_netloc(host)}",
        )
        try:
            return route.handler(ctx, **params)
        except Exception as exc:  # an emulator bug: make it loud, not a silent hang
            traceback.print_exc(file=sys.stderr)
            return error(500, f"emulator error: {exc!r}")

    def _blob_netloc(self, api_netloc: str) -> str:
        hostname, _, port = api_netloc.rpartition(":")
        if self.blob_host:
            return f"{self.blob_host}:{port}"
        swapped = {"127.0.0.1": "localhost", "localhost": "127.0.0.1"}.get(hostname, hostname)
        return f"{swapped}:{port}"

    def _api_headers(self, resp: Response, token: Token | None, route: Any, name: str, bucket: RateBucket) -> None:
        h = {
            "Content-Type": "application/json; charset=utf-8",
            "X-GitHub-Media-Type": "github.v3; format=json",
            "X-GitHub-Api-Version-Selected": "2022-11-28",
            "X-GitHub-Request-Id": fake_sha(("req", len(self._log), time.time()))[:16].upper(),
            "X-RateLimit-Limit": str(bucket.limit),
            "X-RateLimit-Remaining": str(bucket.remaining),
            "X-RateLimit-Reset": str(int(bucket.reset_at)),
            "X-RateLimit-Used": str(bucket.used),
            "X-RateLimit-Resource": name,
            "Vary": "Accept, Authorization, Cookie, X-GitHub-OTP",
            "Cache-Control": "private, max-age=60, s-maxage=60",
        }
        if token is not None and token.kind == "user":
            h["X-OAuth-Scopes"] = ", ".join(token.scopes)
        if route is not None and route.perm:
            h["X-Accepted-GitHub-Permissions"] = "=".join(route.perm)
        resp.headers = {**h, **resp.headers}

    def _actor(self, token: Token | None) -> str:
        if token is None:
            return "127.0.0.1"
        uid = self.state.user_id(token.login)
        return f"installation ID {uid}" if token.kind in ("app", "actions") else f"user ID {uid}"

    def _record(
        self, method: str, path: str, query: dict[str, str], status: int, raw_token: str | None, fault: str | None
    ) -> None:
        with self.state.lock:
            token = self.state.tokens.get(raw_token) if raw_token else None
            self._log.append(
                RequestRecord(
                    method,
                    path,
                    query,
                    status,
                    token.kind if token else None,
                    token.login if token else None,
                    time.time(),
                    fault,
                    sent_token=raw_token is not None,
                )
            )

    # ------------------------------------------------------------ control plane (standalone mode)

    def _control(self, method: str, path: str, raw_body: bytes) -> Response:
        match = CONTROL.match(method, path)
        if match is None:
            return error(404, "Not Found")
        try:
            body = json.loads(raw_body) if raw_body.strip() else None
        except ValueError:
            return error(400, "Problems parsing JSON")
        try:
            return match[0].handler(self, body)
        except (ValueError, TypeError, KeyError) as exc:
            return error(422, f"bad control request: {exc}")


@CONTROL.route("GET", "/_emulator/state", auth=False)
def _get_state(emu: GitHubEmulator, body: Any) -> Response:
    return Response(200, emu.dump_state())


@CONTROL.route("POST", "/_emulator/state", auth=False)
def _put_state(emu: GitHubEmulator, body: Any) -> Response:
    emu.load_state(body or {})
    return Response(200, emu.dump_state())


@CONTROL.route("GET", "/_emulator/requests", auth=False)
def _get_requests(emu: GitHubEmulator, body: Any) -> Response:
    return Response(200, [asdict(r) for r in emu.requests])


@CONTROL.route("DELETE", "/_emulator/requests", auth=False)
def _clear_requests(emu: GitHubEmulator, body: Any) -> Response:
    emu.clear_requests()
    return Response(204)


@CONTROL.route("GET", "/_emulator/faults", auth=False)
def _get_faults(emu: GitHubEmulator, body: Any) -> Response:
    with emu.state.lock:
        return Response(200, [f.to_dict() for f in emu.faults.faults])


@CONTROL.route("POST", "/_emulator/faults", auth=False)
def _add_fault(emu: GitHubEmulator, body: Any) -> Response:
    body = dict(body or {})
    fault = emu.inject(
        body.pop("kind"),
        method=body.pop("method", None),
        path=body.pop("path", None),
        times=body.pop("times", 1),
        after=body.pop("after", 0),
        **body.pop("params", {}),
        **body,
    )
    return Response(201, fault.to_dict())


@CONTROL.route("DELETE", "/_emulator/faults", auth=False)
def _clear_faults(emu: GitHubEmulator, body: Any) -> Response:
    emu.clear_faults()
    return Response(204)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # no 40 ms delayed-ACK stalls between header and body writes
    wbufsize = 1 << 16  # headers + body leave in one flush
    server_version = "GitHub.com"
    sys_version = ""

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw_body = self.rfile.read(length) if length else b""
        resp = self.server.emulator.handle(self.command, self.path, self.headers, raw_body)  # type: ignore[attr-defined]
        if resp.drop_connection:
            self.close_connection = True
            return
        payload = b"" if resp.status in (204, 304) else _encode(resp.body)
        self.send_response(resp.status)
        for key, value in resp.headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload and self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _encode(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    return json.dumps(body, separators=(",", ":")).encode()


def _bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() in ("token", "bearer") and value.strip():
        return value.strip()
    if scheme.lower() == "basic":  # git-style x-access-token:TOKEN
        try:
            return base64.b64decode(value).decode().partition(":")[2] or None
        except ValueError:
            return None
    return header.strip()


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    strip = lambda t: t.strip().removeprefix("W/")  # noqa: E731
    return header.strip() == "*" or any(strip(t) == strip(etag) for t in header.split(","))
