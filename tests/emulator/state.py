"""In-memory state of the GitHub emulator: plain dataclasses plus (de)serialisation.

Timestamps are stored as epoch seconds (float) and rendered as GitHub ISO-8601 strings by
``render.py``. Everything here is mutated only while ``State.lock`` is held.
"""

from __future__ import annotations

import base64
import hashlib
import io
import threading
import time
import zipfile
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

TOKEN_KINDS = ("user", "fine_grained", "app", "actions")
ROLES = ("read", "triage", "write", "maintain", "admin")
LEVELS = {"none": 0, "read": 1, "write": 2, "admin": 3}
DEFAULT_LOGINS = {"actions": "github-actions[bot]", "app": "tw-gates[bot]"}


def fake_sha(seed: object) -> str:
    return hashlib.sha1(str(seed).encode(), usedforsecurity=False).hexdigest()


@dataclass
class Token:
    token: str
    login: str
    kind: str = "user"
    scopes: list[str] = field(default_factory=lambda: ["repo"])
    repo_permissions: dict[str, dict[str, str]] = field(default_factory=dict)
    repository: str | None = None  # kind "actions": the workflow's repository (its quota is per repository)


@dataclass
class Label:
    id: int
    name: str
    color: str = "ededed"
    description: str | None = None


@dataclass
class Comment:
    id: int
    body: str
    user: str
    created_at: float
    updated_at: float


@dataclass
class Issue:
    id: int
    number: int
    title: str
    body: str | None
    user: str
    created_at: float
    updated_at: float
    state: str = "open"
    state_reason: str | None = None
    closed_at: float | None = None
    labels: list[str] = field(default_factory=list)
    assignees: list[str] = field(default_factory=list)
    comments: list[Comment] = field(default_factory=list)


@dataclass
class Protection:
    contexts: list[str] = field(default_factory=list)
    strict: bool = True
    enforce_admins: bool = False


@dataclass
class Ruleset:
    id: int
    name: str
    branch_patterns: list[str]
    required_checks: list[dict[str, Any]]
    enforcement: str = "active"
    strict: bool = False
    extra_rules: list[dict[str, Any]] = field(default_factory=list)
    created_at: float = field(default_factory=time.time)


@dataclass
class WorkflowRun:
    id: int
    name: str
    head_sha: str
    head_branch: str
    conclusion: str | None = "success"
    status: str = "completed"
    event: str = "push"
    run_number: int = 1
    run_attempt: int = 1
    path: str = ".github/workflows/ci.yml"
    created_at: float = field(default_factory=time.time)
    # The repository the run's head commit came from: None is the run's own
    # repository; "owner/name" of a fork for a pull_request from that fork.
    head_repository: str | None = None


@dataclass
class Artifact:
    id: int
    name: str
    run_id: int
    files: dict[str, bytes]
    expired: bool = False
    created_at: float = field(default_factory=time.time)
    blob_key: str = ""

    def zip_bytes(self) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for path, data in sorted(self.files.items()):
                info = zipfile.ZipInfo(path, date_time=(2024, 1, 1, 0, 0, 0))
                zf.writestr(info, data)
        return buf.getvalue()


@dataclass
class Repo:
    id: int
    full_name: str
    default_branch: str = "main"
    private: bool = False
    collaborators: dict[str, str] = field(default_factory=dict)
    branches: list[str] = field(default_factory=list)
    labels: dict[str, Label] = field(default_factory=dict)  # key: lower-cased name
    issues: dict[int, Issue] = field(default_factory=dict)
    protections: dict[str, Protection] = field(default_factory=dict)
    rulesets: dict[int, Ruleset] = field(default_factory=dict)
    runs: dict[int, WorkflowRun] = field(default_factory=dict)
    artifacts: dict[int, Artifact] = field(default_factory=dict)
    dispatches: list[dict[str, Any]] = field(default_factory=list)
    created_at: float = field(default_factory=time.time)

    @property
    def owner(self) -> str:
        return self.full_name.split("/", 1)[0]

    @property
    def name(self) -> str:
        return self.full_name.split("/", 1)[1]

    def role_of(self, login: str) -> str | None:
        if login.lower() == self.owner.lower():
            return "admin"
        return self.collaborators.get(login)

    def label(self, name: str) -> Label | None:
        return self.labels.get(name.lower())

    def has_branch(self, name: str) -> bool:
        return name == self.default_branch or name in self.branches


@dataclass
class RateBucket:
    limit: int
    window: int
    remaining: int = -1
    reset_at: float = 0.0

    def __post_init__(self) -> None:
        if self.remaining < 0:
            self.remaining = self.limit
        if not self.reset_at:
            self.reset_at = time.time() + self.window

    def refresh(self, now: float) -> None:
        if now >= self.reset_at:
            self.remaining = self.limit
            self.reset_at = now + self.window

    @property
    def used(self) -> int:
        return max(self.limit - self.remaining, 0)


@dataclass
class SecondaryLimits:
    """GitHub's documented secondary limits (see limits.py)."""

    content_per_minute: int = 80
    content_per_hour: int = 500
    points_per_minute: int = 900  # per endpoint


@dataclass
class State:
    tokens: dict[str, Token] = field(default_factory=dict)
    repos: dict[str, Repo] = field(default_factory=dict)  # key: lower-cased full name
    # Quota overrides by resource (set_rate_limit for every actor); buckets per (resource, actor).
    rate: dict[str, RateBucket] = field(default_factory=dict)
    buckets: dict[tuple[str, str], RateBucket] = field(default_factory=dict)
    windows: dict[str, deque[tuple[float, int, bool, str]]] = field(default_factory=dict)
    secondary_limits: SecondaryLimits = field(default_factory=SecondaryLimits)
    search_lag_seconds: float = 0.0
    next_id: int = 1000
    user_ids: dict[str, int] = field(default_factory=dict)
    epoch: float = field(default_factory=time.time)  # when accounts "were created"
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def user_id(self, login: str) -> int:
        if login not in self.user_ids:
            self.user_ids[login] = len(self.user_ids) + 1
        return self.user_ids[login]

    def repo(self, full_name: str) -> Repo | None:
        return self.repos.get(full_name.lower())

    def blob(self, key: str) -> Artifact | None:
        for repo in self.repos.values():
            for art in repo.artifacts.values():
                if art.blob_key == key:
                    return art
        return None

    # ---- serialisation (standalone mode, --state files, /_emulator/state) ----

    def to_dict(self) -> dict[str, Any]:
        repos = []
        for repo in self.repos.values():
            d = asdict(repo)
            d["labels"] = list(d["labels"].values())
            d["issues"] = list(d["issues"].values())
            d["rulesets"] = list(d["rulesets"].values())
            d["runs"] = list(d["runs"].values())
            d["artifacts"] = [
                {**a, "files": {p: base64.b64encode(b).decode() for p, b in a["files"].items()}}
                for a in d["artifacts"].values()
            ]
            repos.append(d)
        return {
            "tokens": [asdict(t) for t in self.tokens.values()],
            "repos": repos,
            "rate_limit": {k: asdict(b) for k, b in self.rate.items()},
            "search_lag_seconds": self.search_lag_seconds,
            "next_id": self.next_id,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> State:
        state = cls(search_lag_seconds=float(data.get("search_lag_seconds", 0.0)))
        state.next_id = int(data.get("next_id", state.next_id))
        for t in data.get("tokens", []):
            t = dict(t)
            t.setdefault("login", DEFAULT_LOGINS.get(t.get("kind", "user"), "octocat"))
            state.tokens[t["token"]] = Token(**t)
        for name, b in data.get("rate_limit", {}).items():
            state.rate[name] = RateBucket(**b)
        for r in data.get("repos", []):
            state.repos[r["full_name"].lower()] = _repo_from_dict(state, r)
        return state


def _repo_from_dict(state: State, r: dict[str, Any]) -> Repo:
    repo = Repo(
        id=r.get("id") or state.new_id(),
        full_name=r["full_name"],
        default_branch=r.get("default_branch", "main"),
        private=bool(r.get("private", False)),
        collaborators=dict(r.get("collaborators", {})),
        branches=list(r.get("branches", [])),
        dispatches=list(r.get("dispatches", [])),
        created_at=r.get("created_at", time.time()),
    )
    for lb in r.get("labels", []):
        lb = lb if isinstance(lb, dict) else {"name": lb}
        label = Label(
            id=lb.get("id") or state.new_id(),
            name=lb["name"],
            color=lb.get("color", "ededed"),
            description=lb.get("description"),
        )
        repo.labels[label.name.lower()] = label
    now = time.time()
    for i in r.get("issues", []):
        i = dict(i)
        comments = [Comment(**c) for c in i.pop("comments", [])]
        i["id"] = i.get("id") or state.new_id()
        i.setdefault("user", "octocat")
        i.setdefault("body", None)
        i.setdefault("created_at", now)
        i.setdefault("updated_at", i["created_at"])
        for name in i.get("labels", []):
            if repo.label(name) is None:
                repo.labels[name.lower()] = Label(id=state.new_id(), name=name)
        repo.issues[i["number"]] = Issue(**i, comments=comments)
    for branch, p in r.get("protections", {}).items():
        repo.protections[branch] = Protection(**p)
    for rs in r.get("rulesets", []):
        rs = dict(rs)
        rs["id"] = rs.get("id") or state.new_id()
        rs["required_checks"] = [normalise_check(c) for c in rs.get("required_checks", [])]
        repo.rulesets[rs["id"]] = Ruleset(**rs)
    for run in r.get("runs", []):
        repo.runs[run["id"]] = WorkflowRun(**run)
    for a in r.get("artifacts", []):
        a = dict(a)
        a["files"] = {p: base64.b64decode(b) for p, b in a.get("files", {}).items()}
        a["id"] = a.get("id") or state.new_id()
        a.setdefault("blob_key", fake_sha(("blob", a["id"], time.time())))
        if "run_id" not in a or a["run_id"] not in repo.runs:
            run_id = a.get("run_id") or state.new_id()
            repo.runs[run_id] = WorkflowRun(
                id=run_id, name="CI", head_sha=fake_sha(run_id), head_branch=repo.default_branch
            )
            a["run_id"] = run_id
        repo.artifacts[a["id"]] = Artifact(**a)
    return repo


def normalise_check(check: str | dict[str, Any]) -> dict[str, Any]:
    if isinstance(check, str):
        return {"context": check, "integration_id": None}
    return {"context": check["context"], "integration_id": check.get("integration_id")}
