"""Who may do what: token kinds, classic scopes, collaborator roles, fine-grained permissions.

Model (a simplification of GitHub's, documented in README.md):
- ``user`` (classic PAT): permissions follow the login's collaborator role (the repo owner is
  admin); a public repo is readable by everyone; without the ``repo`` scope private repos are
  invisible and (without ``public_repo`` either) everything is read-only. An explicit
  ``repo_permissions`` entry overrides the role.
- ``fine_grained`` / ``app`` / ``actions``: exactly the ``repo_permissions`` granted for that
  repo (``metadata: read`` implied); other public repos are readable, other private repos invisible.
Denials: invisible repo → 404 "Not Found"; otherwise 403 with GitHub's message for the actor type,
except branch protection (administration), which GitHub hides behind a 404 from non-admins.

Taking part (opening an issue, commenting): "any user with pull access to a repository can
create an issue" - a classic token needs read access (and a scope that allows writing);
integrations and fine-grained tokens need ``issues: write``. Labels, assignees and a
milestone on a new issue stick only for users with push access ("silently dropped
otherwise"); integrations with ``issues: write`` may set them.
"""

from __future__ import annotations

from .router import Response, error
from .state import LEVELS, ROLES, Repo, Token

_READ_ALL = {
    "metadata": "read",
    "contents": "read",
    "issues": "read",
    "actions": "read",
    "pull_requests": "read",
    "checks": "read",
    "statuses": "read",
}
_WRITE_ALL = {**{k: "write" for k in _READ_ALL}, "metadata": "read"}
ROLE_PERMISSIONS = {
    "admin": {**_WRITE_ALL, "administration": "write"},
    "maintain": dict(_WRITE_ALL),
    "write": dict(_WRITE_ALL),
    "triage": {**_READ_ALL, "issues": "write", "pull_requests": "write"},
    "read": dict(_READ_ALL),
}
INTEGRATION_DENIED = {
    "app": "Resource not accessible by integration",
    "actions": "Resource not accessible by integration",
    "fine_grained": "Resource not accessible by personal access token",
}


def effective_permissions(token: Token, repo: Repo) -> dict[str, str]:
    explicit = token.repo_permissions.get(repo.full_name)
    if token.kind != "user":
        if explicit:
            return {"metadata": "read", **explicit}
        return {} if repo.private else dict(_READ_ALL)
    if explicit is not None:
        perms = dict(explicit)
        if perms:
            perms.setdefault("metadata", "read")
    else:
        role = repo.role_of(token.login)
        perms = dict(ROLE_PERMISSIONS[role]) if role else ({} if repo.private else dict(_READ_ALL))
    scopes = set(token.scopes)
    if "repo" in scopes:
        return perms
    if repo.private:
        return {}
    if "public_repo" in scopes:
        return perms
    return {k: "read" for k, v in perms.items() if v != "none"}


def has(token: Token, repo: Repo, perm: str, level: str) -> bool:
    granted = effective_permissions(token, repo).get(perm, "none")
    return LEVELS[granted] >= LEVELS[level]


def can_see(token: Token, repo: Repo) -> bool:
    return has(token, repo, "metadata", "read")


def denial(token: Token, repo: Repo, perm: str, level: str) -> Response | None:
    """None if allowed, else the error GitHub would answer."""
    if has(token, repo, perm, level):
        return None
    if not can_see(token, repo):
        return error(404, "Not Found")
    if perm == "administration":
        return error(404, "Not Found")
    if token.kind in INTEGRATION_DENIED:
        return error(403, INTEGRATION_DENIED[token.kind])
    return error(403, "Must have push access to repository")


def _may_write(token: Token, repo: Repo) -> bool:
    """A classic token's scopes allow writing to this repository."""
    scopes = set(token.scopes)
    return "repo" in scopes or ("public_repo" in scopes and not repo.private)


def participation_denial(token: Token, repo: Repo, author: str | None = None) -> Response | None:
    """Opening an issue or commenting (``author``: editing one's own issue also counts)."""
    if token.kind != "user":
        return denial(token, repo, "issues", "write")
    if not can_see(token, repo):
        return error(404, "Not Found")
    if has(token, repo, "issues", "write") or (_may_write(token, repo) and author in (None, token.login)):
        return None
    return error(403, "Must have push access to repository")


def pushes(token: Token, repo: Repo) -> bool:
    """Push access: what GitHub asks of a user who sets labels on a new issue or manages labels."""
    if token.kind != "user":
        return has(token, repo, "issues", "write")
    return has(token, repo, "contents", "write")


def repo_permissions_object(token: Token, repo: Repo) -> dict[str, bool] | None:
    """The ``permissions`` object of GET /repos/{o}/{r}; GitHub sends it to user tokens only."""
    if token.kind not in ("user", "fine_grained"):
        return None
    role = repo.role_of(token.login)
    rank = -1 if role is None else ROLES.index(role)
    return {
        "admin": rank >= 4,
        "maintain": rank >= 3,
        "push": rank >= 2,
        "triage": rank >= 1,
        "pull": rank >= 0 or not repo.private,
    }
