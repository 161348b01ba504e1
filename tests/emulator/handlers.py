"""Endpoint handlers. Each is registered on ``ROUTER`` with its method, path template, the
fine-grained permission it needs on the repository in the path, and its rate-limit resource.

Handlers run with the state lock held, get a ``Ctx`` plus the path parameters (except owner/repo,
which are resolved into ``ctx.repo``), and return a ``Response``.
"""

from __future__ import annotations

import fnmatch
import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from . import access
from .render import Renderer
from .router import Response, Router, error, validation_failed
from .state import Comment, Issue, Label, Repo, State, Token

ROUTER = Router()


@dataclass
class Ctx:
    state: State
    render: Renderer
    token: Token | None
    repo: Repo  # only meaningful for /repos/{owner}/{repo}/... routes
    path: str
    query: dict[str, str]
    body: Any
    now: float
    blob_base: str = ""  # where artifact downloads redirect to (another host name, like GitHub's blob storage)


# ---------------------------------------------------------------- helpers


def paginate(ctx: Ctx, items: list[Any], default: int = 30) -> tuple[list[Any], dict[str, str]]:
    """Slice ``items`` by per_page/page and build GitHub's RFC 5988 Link header."""
    per_page = min(max(_int(ctx.query.get("per_page"), default), 1), 100)
    page = max(_int(ctx.query.get("page"), 1), 1)
    last = max(math.ceil(len(items) / per_page), 1)

    def link(p: int, rel: str) -> str:
        return f'<{ctx.render.base}{ctx.path}?{urlencode({**ctx.query, "page": p})}>; rel="{rel}"'

    links = []
    if page > 1:
        links.append(link(page - 1, "prev"))
    if page < last:
        links += [link(page + 1, "next"), link(last, "last")]
    if page > 1:
        links.append(link(1, "first"))
    return items[(page - 1) * per_page : page * per_page], ({"Link": ", ".join(links)} if links else {})


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def _parse_time(value: str) -> float | None:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _body(ctx: Ctx) -> dict[str, Any] | Response:
    if ctx.body is None:
        return {}
    if not isinstance(ctx.body, dict):
        return error(400, "Problems parsing JSON")
    return ctx.body


def _label_names(raw: Any) -> list[str] | None:
    if isinstance(raw, dict):
        raw = raw.get("labels")
    if not isinstance(raw, list):
        return None
    names = [x.get("name") if isinstance(x, dict) else x for x in raw]
    return names if all(isinstance(n, str) for n in names) else None


def _ensure_labels(ctx: Ctx, names: list[str]) -> list[str]:
    """GitHub creates unknown labels on the fly when a pusher applies them; returns canonical names."""
    out = []
    for name in names:
        label = ctx.repo.label(name)
        if label is None:
            label = Label(id=ctx.state.new_id(), name=name)
            ctx.repo.labels[name.lower()] = label
        if label.name not in out:
            out.append(label.name)
    return out


def _issue(ctx: Ctx, number: str) -> Issue | Response:
    issue = ctx.repo.issues.get(int(number))
    return issue if issue else error(404, "Not Found")


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(status, data, headers or {})


# ---------------------------------------------------------------- users, rate limit


@ROUTER.route("GET", "/user")
def get_user(ctx: Ctx) -> Response:
    if ctx.token.kind in ("app", "actions"):
        return error(403, "Resource not accessible by integration")
    return _json({**ctx.render.user(ctx.token.login), "name": ctx.token.login, "email": None})


@ROUTER.route("GET", "/users/{login}")
def get_named_user(ctx: Ctx, login: str) -> Response:
    return _json({**ctx.render.user(login), "name": login})


@ROUTER.route("GET", "/rate_limit", resource=None)
def rate_limit(ctx: Ctx) -> Response:
    resources = {name: ctx.render.rate(name, b) for name, b in ctx.state.rate.items()}
    return _json({"resources": resources, "rate": resources["core"]})


# ---------------------------------------------------------------- repositories


@ROUTER.route("GET", "/repos/{owner}/{repo}", perm=("metadata", "read"))
def get_repo(ctx: Ctx) -> Response:
    return _json(ctx.render.repo(ctx.repo, ctx.token))


@ROUTER.route("GET", "/repos/{owner}/{repo}/collaborators/{username}/permission", perm=("metadata", "read"))
def collaborator_permission(ctx: Ctx, username: str) -> Response:
    role = ctx.repo.role_of(username) or ("none" if ctx.repo.private else "read")
    legacy = {"maintain": "write", "triage": "read"}.get(role, role)
    return _json({"permission": legacy, "role_name": role, "user": ctx.render.user(username)})


@ROUTER.route("POST", "/repos/{owner}/{repo}/dispatches", perm=("contents", "write"))
def repository_dispatch(ctx: Ctx) -> Response:
    body = _body(ctx)
    if isinstance(body, Response):
        return body
    if not isinstance(body.get("event_type"), str) or not body["event_type"]:
        return validation_failed("RepositoryDispatch", "event_type")
    payload = body.get("client_payload", {})
    if not isinstance(payload, dict):
        return validation_failed("RepositoryDispatch", "client_payload", "invalid")
    if len(payload) > 10:
        return error(422, "client_payload can have at most 10 top-level properties")
    ctx.repo.dispatches.append(
        {
            "event_type": body["event_type"],
            "client_payload": payload,
            "token_kind": ctx.token.kind,
            "login": ctx.token.login,
            "at": ctx.now,
        }
    )
    return Response(204)


# ---------------------------------------------------------------- issues


@ROUTER.route("GET", "/repos/{owner}/{repo}/issues", perm=("issues", "read"))
def list_issues(ctx: Ctx) -> Response:
    q = ctx.query
    state = q.get("state", "open")
    if state not in ("open", "closed", "all"):
        return validation_failed("Issue", "state", "invalid")
    items = [i for i in ctx.repo.issues.values() if state == "all" or i.state == state]
    if q.get("labels"):
        wanted = {n.strip().lower() for n in q["labels"].split(",") if n.strip()}
        items = [i for i in items if wanted <= {n.lower() for n in i.labels}]
    if q.get("creator"):
        items = [i for i in items if i.user == q["creator"]]
    if q.get("assignee") not in (None, "*"):
        items = [i for i in items if (not i.assignees if q["assignee"] == "none" else q["assignee"] in i.assignees)]
    if q.get("since"):
        since = _parse_time(q["since"])
        if since is None:
            return validation_failed("Issue", "since", "invalid")
        items = [i for i in items if i.updated_at >= since]
    sort_keys = {
        "created": lambda i: (i.created_at, i.number),
        "updated": lambda i: (i.updated_at, i.number),
        "comments": lambda i: (len(i.comments), i.number),
    }
    items.sort(
        key=sort_keys.get(q.get("sort", "created"), sort_keys["created"]), reverse=q.get("direction", "desc") != "asc"
    )
    page, headers = paginate(ctx, items)
    return _json([ctx.render.issue(ctx.repo, i) for i in page], headers=headers)


@ROUTER.route("POST", "/repos/{owner}/{repo}/issues", perm=("issues", "write"))
def create_issue(ctx: Ctx) -> Response:
    body = _body(ctx)
    if isinstance(body, Response):
        return body
    title = body.get("title")
    if not isinstance(title, (str, int)) or str(title) == "":
        return validation_failed("Issue", "title")
    labels = _label_names(body.get("labels", []))
    if labels is None:
        return validation_failed("Issue", "labels", "invalid")
    number = max(ctx.repo.issues, default=0) + 1
    issue = Issue(
        id=ctx.state.new_id(),
        number=number,
        title=str(title),
        body=body.get("body"),
        user=ctx.token.login,
        created_at=ctx.now,
        updated_at=ctx.now,
        labels=_ensure_labels(ctx, labels),
        assignees=list(body.get("assignees") or []),
    )
    ctx.repo.issues[number] = issue
    return _json(ctx.render.issue(ctx.repo, issue), 201)


@ROUTER.route("GET", "/repos/{owner}/{repo}/issues/{number:int}", perm=("issues", "read"))
def get_issue(ctx: Ctx, number: str) -> Response:
    issue = _issue(ctx, number)
    return issue if isinstance(issue, Response) else _json(ctx.render.issue(ctx.repo, issue))


@ROUTER.route("PATCH", "/repos/{owner}/{repo}/issues/{number:int}", perm=("issues", "write"))
def update_issue(ctx: Ctx, number: str) -> Response:
    issue, body = _issue(ctx, number), _body(ctx)
    for early in (issue, body):
        if isinstance(early, Response):
            return early
    if "title" in body and (not isinstance(body["title"], str) or not body["title"]):
        return validation_failed("Issue", "title", "invalid")
    if body.get("state", "open") not in ("open", "closed"):
        return validation_failed("Issue", "state", "invalid")
    if body.get("state_reason") not in (None, "completed", "not_planned", "reopened"):
        return validation_failed("Issue", "state_reason", "invalid")
    if "labels" in body:
        labels = _label_names(body["labels"])
        if labels is None:
            return validation_failed("Issue", "labels", "invalid")
        issue.labels = _ensure_labels(ctx, labels)
    for key in ("title", "body"):
        if key in body:
            setattr(issue, key, body[key])
    if "assignees" in body:
        issue.assignees = list(body["assignees"] or [])
    new_state = body.get("state", issue.state)
    if new_state != issue.state:
        issue.state = new_state
        issue.closed_at = ctx.now if new_state == "closed" else None
        issue.state_reason = body.get("state_reason") or ("completed" if new_state == "closed" else "reopened")
    elif "state_reason" in body:
        issue.state_reason = body["state_reason"]
    issue.updated_at = ctx.now
    return _json(ctx.render.issue(ctx.repo, issue))


@ROUTER.route("GET", "/repos/{owner}/{repo}/issues/{number:int}/comments", perm=("issues", "read"))
def list_comments(ctx: Ctx, number: str) -> Response:
    issue = _issue(ctx, number)
    if isinstance(issue, Response):
        return issue
    comments = issue.comments
    if ctx.query.get("since"):
        since = _parse_time(ctx.query["since"]) or 0.0
        comments = [c for c in comments if c.updated_at >= since]
    page, headers = paginate(ctx, comments)
    return _json([ctx.render.comment(ctx.repo, issue, c) for c in page], headers=headers)


@ROUTER.route("POST", "/repos/{owner}/{repo}/issues/{number:int}/comments", perm=("issues", "write"))
def create_comment(ctx: Ctx, number: str) -> Response:
    issue, body = _issue(ctx, number), _body(ctx)
    for early in (issue, body):
        if isinstance(early, Response):
            return early
    if not isinstance(body.get("body"), str) or not body["body"]:
        return validation_failed("IssueComment", "body")
    comment = Comment(
        id=ctx.state.new_id(), body=body["body"], user=ctx.token.login, created_at=ctx.now, updated_at=ctx.now
    )
    issue.comments.append(comment)
    issue.updated_at = ctx.now
    return _json(ctx.render.comment(ctx.repo, issue, comment), 201)


def _find_comment(ctx: Ctx, comment_id: str) -> tuple[Issue, Comment] | Response:
    for issue in ctx.repo.issues.values():
        for comment in issue.comments:
            if comment.id == int(comment_id):
                return issue, comment
    return error(404, "Not Found")


@ROUTER.route("GET", "/repos/{owner}/{repo}/issues/comments/{comment_id:int}", perm=("issues", "read"))
def get_comment(ctx: Ctx, comment_id: str) -> Response:
    found = _find_comment(ctx, comment_id)
    return found if isinstance(found, Response) else _json(ctx.render.comment(ctx.repo, *found))


@ROUTER.route("PATCH", "/repos/{owner}/{repo}/issues/comments/{comment_id:int}", perm=("issues", "write"))
def update_comment(ctx: Ctx, comment_id: str) -> Response:
    found, body = _find_comment(ctx, comment_id), _body(ctx)
    for early in (found, body):
        if isinstance(early, Response):
            return early
    if not isinstance(body.get("body"), str) or not body["body"]:
        return validation_failed("IssueComment", "body")
    issue, comment = found
    comment.body, comment.updated_at = body["body"], ctx.now
    return _json(ctx.render.comment(ctx.repo, issue, comment))


# ---------------------------------------------------------------- labels


@ROUTER.route("GET", "/repos/{owner}/{repo}/labels", perm=("issues", "read"))
def list_labels(ctx: Ctx) -> Response:
    page, headers = paginate(ctx, sorted(ctx.repo.labels.values(), key=lambda lb: lb.name.lower()))
    return _json([ctx.render.label(ctx.repo, lb) for lb in page], headers=headers)


@ROUTER.route("POST", "/repos/{owner}/{repo}/labels", perm=("issues", "write"))
def create_label(ctx: Ctx) -> Response:
    body = _body(ctx)
    if isinstance(body, Response):
        return body
    name = body.get("name")
    if not isinstance(name, str) or not name:
        return validation_failed("Label", "name")
    if ctx.repo.label(name):
        return validation_failed("Label", "name", "already_exists")
    color = str(body.get("color") or "ededed").lstrip("#")
    if not re.fullmatch(r"[0-9a-fA-F]{6}", color):
        return validation_failed("Label", "color", "invalid")
    label = Label(id=ctx.state.new_id(), name=name, color=color, description=body.get("description"))
    ctx.repo.labels[name.lower()] = label
    return _json(ctx.render.label(ctx.repo, label), 201)


@ROUTER.route("GET", "/repos/{owner}/{repo}/labels/{name}", perm=("issues", "read"))
def get_label(ctx: Ctx, name: str) -> Response:
    label = ctx.repo.label(name)
    return _json(ctx.render.label(ctx.repo, label)) if label else error(404, "Not Found")


@ROUTER.route("GET", "/repos/{owner}/{repo}/issues/{number:int}/labels", perm=("issues", "read"))
def list_issue_labels(ctx: Ctx, number: str) -> Response:
    issue = _issue(ctx, number)
    if isinstance(issue, Response):
        return issue
    return _json([ctx.render.label(ctx.repo, ctx.repo.label(n)) for n in issue.labels])


@ROUTER.route("POST", "/repos/{owner}/{repo}/issues/{number:int}/labels", perm=("issues", "write"))
def add_issue_labels(ctx: Ctx, number: str) -> Response:
    issue = _issue(ctx, number)
    if isinstance(issue, Response):
        return issue
    names = _label_names(ctx.body)
    if names is None:
        return validation_failed("Label", "labels", "invalid")
    issue.labels = _ensure_labels(ctx, issue.labels + names)
    issue.updated_at = ctx.now
    return list_issue_labels(ctx, number)


@ROUTER.route("DELETE", "/repos/{owner}/{repo}/issues/{number:int}/labels/{name}", perm=("issues", "write"))
def remove_issue_label(ctx: Ctx, number: str, name: str) -> Response:
    issue = _issue(ctx, number)
    if isinstance(issue, Response):
        return issue
    kept = [n for n in issue.labels if n.lower() != name.lower()]
    if len(kept) == len(issue.labels):
        return error(404, "Label does not exist")
    issue.labels, issue.updated_at = kept, ctx.now
    return list_issue_labels(ctx, number)


# ---------------------------------------------------------------- search

_SEARCH_TOKEN = re.compile(r'(\S+:"[^"]*"|"[^"]*"|\S+)')


@ROUTER.route("GET", "/search/issues", resource="search")
def search_issues(ctx: Ctx) -> Response:
    q = ctx.query.get("q", "").strip()
    if not q:
        return validation_failed("Search", "q")
    quals: dict[str, list[str]] = {}
    words: list[str] = []
    for tok in _SEARCH_TOKEN.findall(q):
        key, sep, value = tok.partition(":")
        if sep and not tok.startswith('"') and key.lower() in ("repo", "label", "is", "state", "in", "author", "type"):
            quals.setdefault(key.lower(), []).append(value.strip('"').lower())
        else:
            words.append(tok.strip('"').lower())
    repos = []
    for name in quals.get("repo", []):
        repo = ctx.state.repo(name)
        if repo is None or not access.has(ctx.token, repo, "issues", "read"):
            return error(
                422,
                "Validation Failed",
                errors=[
                    {
                        "message": "The listed users and repositories cannot be searched either because the resources "
                        "do not exist or you do not have permission to view them.",
                        "resource": "Search",
                        "field": "q",
                        "code": "invalid",
                    }
                ],
            )
        repos.append(repo)
    if not quals.get("repo"):
        repos = [r for r in ctx.state.repos.values() if access.has(ctx.token, r, "issues", "read")]
    states = {v for v in quals.get("is", []) + quals.get("state", []) if v in ("open", "closed")}
    kinds = {v for v in quals.get("is", []) + quals.get("type", []) if v in ("issue", "pr", "pull-request")}
    fields = set(quals.get("in", [])) or {"title", "body"}
    cutoff = ctx.now - ctx.state.search_lag_seconds
    hits = []
    for repo in repos:
        for issue in repo.issues.values():
            text = " ".join(
                filter(
                    None,
                    [
                        issue.title if "title" in fields else "",
                        (issue.body or "") if "body" in fields else "",
                        " ".join(c.body for c in issue.comments) if "comments" in fields else "",
                    ],
                )
            )
            if (
                issue.created_at <= cutoff
                and (not kinds or "issue" in kinds)
                and (not states or issue.state in states)
                and set(quals.get("label", [])) <= {n.lower() for n in issue.labels}
                and all(a == issue.user.lower() for a in quals.get("author", []))
                and all(w in text.lower() for w in words)
            ):
                hits.append((repo, issue))
    sort = ctx.query.get("sort", "created")
    key = {"updated": lambda h: h[1].updated_at, "comments": lambda h: len(h[1].comments)}.get(
        sort, lambda h: h[1].created_at
    )
    hits.sort(key=key, reverse=ctx.query.get("order", "desc") != "asc")
    page, headers = paginate(ctx, hits[:1000])
    items = [{**ctx.render.issue(r, i), "score": 1.0} for r, i in page]
    return _json({"total_count": len(hits), "incomplete_results": False, "items": items}, headers=headers)


# ---------------------------------------------------------------- branches, protection, rulesets
# (protection routes are registered before the plain branch route: branch names may contain "/")


def _protection(ctx: Ctx, branch: str):
    p = ctx.repo.protections.get(branch)
    return p if p else error(404, "Branch not protected")


@ROUTER.route(
    "GET",
    "/repos/{owner}/{repo}/branches/{branch:path}/protection/required_status_checks",
    perm=("administration", "read"),
)
def get_required_status_checks(ctx: Ctx, branch: str) -> Response:
    p = _protection(ctx, branch)
    if isinstance(p, Response):
        return p
    if not p.contexts:
        return error(404, "Required status checks not enabled")
    return _json(ctx.render.required_status_checks(ctx.repo, branch, p))


@ROUTER.route("GET", "/repos/{owner}/{repo}/branches/{branch:path}/protection", perm=("administration", "read"))
def get_branch_protection(ctx: Ctx, branch: str) -> Response:
    p = _protection(ctx, branch)
    return p if isinstance(p, Response) else _json(ctx.render.protection(ctx.repo, branch, p))


@ROUTER.route("GET", "/repos/{owner}/{repo}/branches/{branch:path}", perm=("metadata", "read"))
def get_branch(ctx: Ctx, branch: str) -> Response:
    if not ctx.repo.has_branch(branch):
        return error(404, "Branch not found")
    return _json(ctx.render.branch(ctx.repo, branch))


@ROUTER.route("GET", "/repos/{owner}/{repo}/rulesets", perm=("metadata", "read"))
def list_rulesets(ctx: Ctx) -> Response:
    page, headers = paginate(ctx, sorted(ctx.repo.rulesets.values(), key=lambda r: r.id))
    return _json([ctx.render.ruleset(ctx.repo, rs, full=False) for rs in page], headers=headers)


@ROUTER.route("GET", "/repos/{owner}/{repo}/rulesets/{ruleset_id:int}", perm=("metadata", "read"))
def get_ruleset(ctx: Ctx, ruleset_id: str) -> Response:
    rs = ctx.repo.rulesets.get(int(ruleset_id))
    return _json(ctx.render.ruleset(ctx.repo, rs)) if rs else error(404, "Not Found")


def ruleset_applies(repo: Repo, patterns: list[str], branch: str) -> bool:
    for pattern in patterns:
        if pattern == "~ALL" or (pattern == "~DEFAULT_BRANCH" and branch == repo.default_branch):
            return True
        full = pattern if pattern.startswith("refs/") else f"refs/heads/{pattern}"
        if not pattern.startswith("~") and fnmatch.fnmatchcase(f"refs/heads/{branch}", full):
            return True
    return False


@ROUTER.route("GET", "/repos/{owner}/{repo}/rules/branches/{branch:path}", perm=("metadata", "read"))
def rules_for_branch(ctx: Ctx, branch: str) -> Response:
    rules = [
        {**rule, "ruleset_source_type": "Repository", "ruleset_source": ctx.repo.full_name, "ruleset_id": rs.id}
        for rs in sorted(ctx.repo.rulesets.values(), key=lambda r: r.id)
        if rs.enforcement == "active" and ruleset_applies(ctx.repo, rs.branch_patterns, branch)
        for rule in ctx.render.ruleset_rules(rs)
    ]
    page, headers = paginate(ctx, rules)
    return _json(page, headers=headers)


# ---------------------------------------------------------------- actions


def _artifact_list(ctx: Ctx, arts: list[Any]) -> Response:
    if ctx.query.get("name"):
        arts = [a for a in arts if a.name == ctx.query["name"]]
    arts = sorted(arts, key=lambda a: (a.created_at, a.id), reverse=True)
    page, headers = paginate(ctx, arts)
    return _json(
        {"total_count": len(arts), "artifacts": [ctx.render.artifact(ctx.repo, a) for a in page]}, headers=headers
    )


@ROUTER.route("GET", "/repos/{owner}/{repo}/actions/artifacts", perm=("actions", "read"))
def list_artifacts(ctx: Ctx) -> Response:
    return _artifact_list(ctx, list(ctx.repo.artifacts.values()))


@ROUTER.route("GET", "/repos/{owner}/{repo}/actions/artifacts/{artifact_id:int}", perm=("actions", "read"))
def get_artifact(ctx: Ctx, artifact_id: str) -> Response:
    art = ctx.repo.artifacts.get(int(artifact_id))
    return _json(ctx.render.artifact(ctx.repo, art)) if art else error(404, "Not Found")


@ROUTER.route(
    "GET", "/repos/{owner}/{repo}/actions/artifacts/{artifact_id:int}/{archive_format}", perm=("actions", "read")
)
def download_artifact(ctx: Ctx, artifact_id: str, archive_format: str) -> Response:
    art = ctx.repo.artifacts.get(int(artifact_id))
    if art is None or archive_format != "zip":
        return error(404, "Not Found")
    if art.expired:
        return error(410, "Artifact has expired")
    return Response(302, None, {"Location": f"{ctx.blob_base}/_blobs/{art.blob_key}"})


@ROUTER.route("GET", "/_blobs/{key}", auth=False, resource=None)
def blob(ctx: Ctx, key: str) -> Response:
    art = ctx.state.blob(key)
    if art is None:
        return Response(404, b"BlobNotFound", {"Content-Type": "application/xml"})
    return Response(200, art.zip_bytes(), {"Content-Type": "application/zip"})


@ROUTER.route("GET", "/repos/{owner}/{repo}/actions/runs", perm=("actions", "read"))
def list_runs(ctx: Ctx) -> Response:
    runs = sorted(ctx.repo.runs.values(), key=lambda r: (r.created_at, r.id), reverse=True)
    for field, attr in (("branch", "head_branch"), ("head_sha", "head_sha"), ("event", "event")):
        if ctx.query.get(field):
            runs = [r for r in runs if getattr(r, attr) == ctx.query[field]]
    if ctx.query.get("status"):
        runs = [r for r in runs if ctx.query["status"] in (r.status, r.conclusion)]
    page, headers = paginate(ctx, runs)
    return _json(
        {"total_count": len(runs), "workflow_runs": [ctx.render.run(ctx.repo, r) for r in page]}, headers=headers
    )


@ROUTER.route("GET", "/repos/{owner}/{repo}/actions/runs/{run_id:int}", perm=("actions", "read"))
def get_run(ctx: Ctx, run_id: str) -> Response:
    run = ctx.repo.runs.get(int(run_id))
    return _json(ctx.render.run(ctx.repo, run)) if run else error(404, "Not Found")


@ROUTER.route("GET", "/repos/{owner}/{repo}/actions/runs/{run_id:int}/artifacts", perm=("actions", "read"))
def list_run_artifacts(ctx: Ctx, run_id: str) -> Response:
    if int(run_id) not in ctx.repo.runs:
        return error(404, "Not Found")
    return _artifact_list(ctx, [a for a in ctx.repo.artifacts.values() if a.run_id == int(run_id)])
