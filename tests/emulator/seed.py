"""The emulator's Python API for tests: seeding state, quotas, faults, and reading back
what happened (``GitHubEmulator`` inherits it)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from typing import Any

from . import limits
from .faults import Fault, FaultPlan
from .render import Renderer
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
    SecondaryLimits,
    State,
    Token,
    WorkflowRun,
    fake_sha,
    normalise_check,
)
from .traffic import RequestRecord


class SeedMixin:
    state: State
    faults: FaultPlan
    host: str
    port: int
    html_base: str
    _log: list[RequestRecord]

    # ------------------------------------------------------------ seeding

    def add_token(
        self,
        token: str,
        login: str | None = None,
        kind: str = "user",
        scopes: Iterable[str] | None = None,
        repo_permissions: dict[str, dict[str, str]] | None = None,
        repository: str | None = None,
    ) -> None:
        """``repository``: for ``kind="actions"``, the workflow's repository, whose 1,000
        requests an hour the token spends (default: the first repository granted)."""
        if kind not in TOKEN_KINDS:
            raise ValueError(f"kind must be one of {TOKEN_KINDS}")
        with self.state.lock:
            self.state.tokens[token] = Token(
                token=token,
                login=login or DEFAULT_LOGINS.get(kind, "octocat"),
                kind=kind,
                scopes=list(scopes) if scopes is not None else (["repo"] if kind == "user" else []),
                repo_permissions={k: dict(v) for k, v in (repo_permissions or {}).items()},
                repository=repository,
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
        """``head_repository`` "owner/name": a run whose head commit came from that fork."""
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
        self,
        remaining: int | None = None,
        limit: int = 5000,
        reset_in: float = 3600,
        resource: str = "core",
        token: str | None = None,
    ) -> None:
        """Set a quota bucket: the token's actor's (its user, installation or, for a
        GITHUB_TOKEN, repository), or with ``token=None`` every actor's."""
        with self.state.lock:
            new = RateBucket(
                limit=limit,
                window=max(int(reset_in), 1),
                remaining=limit if remaining is None else remaining,
                reset_at=time.time() + reset_in,
            )
            if token is None:
                self.state.rate[resource] = new
                self.state.buckets = {k: v for k, v in self.state.buckets.items() if k[0] != resource}
            else:
                self.state.buckets[(resource, limits.actor_key(self.state.tokens[token]))] = new

    def rate_remaining(self, token: str, resource: str = "core") -> int:
        """What ``X-RateLimit-Remaining`` would say to this token now."""
        with self.state.lock:
            found = limits.bucket(self.state, resource, self.state.tokens[token])
            found.refresh(time.time())
            return found.remaining

    def set_secondary_limits(
        self, *, content_per_minute: int = 80, content_per_hour: int = 500, points_per_minute: int = 900
    ) -> None:
        """GitHub's documented secondary limits are the default; lower them to test a client's pacing."""
        with self.state.lock:
            self.state.secondary_limits = SecondaryLimits(content_per_minute, content_per_hour, points_per_minute)
            self.state.windows.clear()

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
    def from_state(cls, data: dict[str, Any], **kwargs: Any) -> Any:
        return cls(state=State.from_dict(data), **kwargs)

    def dump_state(self) -> dict[str, Any]:
        with self.state.lock:
            return self.state.to_dict()

    def load_state(self, data: dict[str, Any]) -> None:
        new = State.from_dict(data)
        with self.state.lock:
            for name in ("tokens", "repos", "rate", "buckets", "search_lag_seconds", "next_id", "user_ids"):
                setattr(self.state, name, getattr(new, name))

    def _repo(self, full_name: str) -> Repo:
        repo = self.state.repo(full_name)
        if repo is None:
            raise KeyError(f"no such repo {full_name!r}; call add_repo first")
        return repo
