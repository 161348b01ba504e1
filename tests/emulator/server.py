"""GitHubEmulator: the HTTP server, the request pipeline, and the Python API used by tests.

Pipeline for every API request (see ``_respond``):
  injected fault → route lookup (404) → authentication (401) → primary rate limit (403)
  → repository lookup + permission check (404/403) → JSON body (400) → handler
  → ETag / If-None-Match (304) → rate-limit accounting and standard headers.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from . import access, actions, branches, control, limits, search, traffic  # noqa: F401 (routes register)
from .faults import OFF_CONTRACT_KINDS, SECONDARY_MESSAGE, Fault, FaultPlan
from .handlers import ROUTER, Ctx
from .render import Renderer
from .router import DOCS, Response, error
from .seed import SeedMixin
from .state import RateBucket, State, Token, fake_sha
from .traffic import Exchange, RequestRecord

# X-GitHub-Api-Version values GitHub accepts (none sent: the oldest).
API_VERSIONS = ("2022-11-28", "2026-03-10")


class GitHubEmulator(SeedMixin):
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
        self._unchecked = 0
        # GitHub answers a rate limit with 403 or 429; tests choose which.
        self.rate_limit_status = 403

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

    # ------------------------------------------------------------ request pipeline

    def handle(self, method: str, target: str, headers: Any, raw_body: bytes) -> Response:
        received = time.time()
        split = urlsplit(target)
        path, query = split.path, dict(parse_qsl(split.query, keep_blank_values=True))
        if path.startswith("/_emulator/"):
            return control.handle(self, method, path, raw_body)
        raw_token = _bearer(headers.get("Authorization"))
        with self.state.lock:
            delays, fault = self.faults.select(method, path)
        for delay in delays:
            self._stopping.wait(float(delay.params["seconds"]))
            if delay.kind == "timeout_hang" and not delay.params["process"]:
                self._record(method, path, query, 0, raw_token, delay.kind, received)
                return Response(drop_connection=True)
        with self.state.lock:
            resp = self._respond(method, path, query, headers, raw_body, raw_token, fault)
            self._record(method, path, query, resp.status, raw_token, fault.kind if fault else None, received)
        if not path.startswith("/_blobs/"):  # blob storage is not the API
            traffic.publish(
                Exchange(
                    method,
                    path,
                    parse_qsl(split.query, keep_blank_values=True),
                    {k.lower(): v for k, v in headers.items()},
                    raw_body,
                    resp.status,
                    resp.body,
                    dict(resp.headers),
                    checked=self._unchecked == 0 and not (fault and fault.kind in OFF_CONTRACT_KINDS),
                )
            )
        return resp

    @contextlib.contextmanager
    def unchecked(self) -> Iterator[None]:
        """Requests sent meanwhile are deliberately off GitHub's contract (a test of the
        emulator's own error paths): observers see them marked ``checked=False``."""
        with self.state.lock:
            self._unchecked += 1
        try:
            yield
        finally:
            with self.state.lock:
                self._unchecked -= 1

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
        bucket = limits.bucket(self.state, bucket_name, token)
        bucket.refresh(now)
        counted = bool(token and route and route.resource)
        version = headers.get("X-GitHub-Api-Version")

        refused = self._refusal(fault, route, token, raw_token, version, counted and bucket.remaining <= 0)
        if refused is not None:
            resp, counted = refused, False
        else:
            wait = limits.secondary_wait(self.state, token, method, route.template, now) if counted else None
            if wait is not None:
                resp, counted = self._secondary_limit(wait), False
            else:
                resp = self._call(
                    route, {k: unquote(v) for k, v in params.items()}, token, path, query, raw_body, headers, now
                )
                if method == "GET" and resp.status == 200:
                    counted = self._etag(resp, headers, raw_token) and counted
        if counted:
            bucket.remaining = max(bucket.remaining - 1, 0)
        if route and route.resource is None and route.auth is False:
            return resp  # blob storage: none of the API headers
        self._api_headers(resp, token, route, bucket_name, bucket, version if version in API_VERSIONS else None)
        return resp

    def _refusal(
        self,
        fault: Fault | None,
        route: Any,
        token: Token | None,
        raw_token: str | None,
        version: str | None,
        exhausted: bool,
    ) -> Response | None:
        """The answer when the request never reaches its handler."""
        if fault:
            return fault.response(self._actor(token), limits.bucket(self.state, "core", token).limit)
        if route is None:
            return error(404, "Not Found")
        if version is not None and version not in API_VERSIONS:
            return error(400, f"The API version {version} is not supported.")
        if route.auth and raw_token is None:
            return error(401, "Requires authentication")
        if route.auth and token is None:
            return error(401, "Bad credentials")
        if exhausted:
            return self._primary_limit(token)
        return None

    def _etag(self, resp: Response, headers: Any, raw_token: str | None) -> bool:
        """Set the ETag; a matching If-None-Match turns the answer into a free 304.
        Returns whether the request still counts. GitHub's ETags depend on who asks:
        one taken with another token never matches."""
        digest = hashlib.sha256(_encode(resp.body) + b"\0" + (raw_token or "").encode()).hexdigest()
        etag = f'W/"{digest}"'
        resp.headers["ETag"] = etag
        if _etag_matches(headers.get("If-None-Match"), etag):
            resp.status, resp.body, resp.headers = 304, None, {"ETag": etag}
            return False
        return True

    def _primary_limit(self, token: Token | None) -> Response:
        return error(
            self.rate_limit_status,
            f"API rate limit exceeded for {self._actor(token)}.",
            documentation_url=f"{DOCS}/overview/rate-limits-for-the-rest-api",
        )

    def _secondary_limit(self, wait: int) -> Response:
        resp = error(
            self.rate_limit_status,
            SECONDARY_MESSAGE,
            documentation_url=f"{DOCS}/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
        )
        resp.headers["Retry-After"] = str(wait)
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

    def _api_headers(
        self, resp: Response, token: Token | None, route: Any, name: str, bucket: RateBucket, version: str | None
    ) -> None:
        h = {
            "Content-Type": "application/json; charset=utf-8",
            "X-GitHub-Media-Type": "github.v3; format=json",
            "X-GitHub-Api-Version-Selected": version or API_VERSIONS[0],
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
        self,
        method: str,
        path: str,
        query: dict[str, str],
        status: int,
        raw_token: str | None,
        fault: str | None,
        received: float,
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
                    received=received,
                )
            )


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
