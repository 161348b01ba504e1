"""Endpoint handlers. Each is registered on ``ROUTER`` with its method, path template, the
fine-grained permission it needs on the repository in the path, and its rate-limit resource.

Handlers run with the state lock held, get a ``Ctx`` plus the path parameters (except owner/repo,
which are resolved into ``ctx.repo``), and return a ``Response``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from . import access, limits
from .render import Renderer
from .router import Response, Router, error, validation_failed
from .state import ROLES, Comment, Issue, Label, Repo, State, Token

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


def parse_time(value: str) -> float | None:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def body_of(ctx: Ctx) -> dict[str, Any] | Response:
    if ctx.body is None:
        return {}
    if not isinstance(ctx.body, dict):
        return error(400, "Problems parsing JSON")
    return ctx.body


def label_names(raw: Any) -> list[str] | None:
    if isinstance(raw, dict):
        raw = raw.get("labels")
    if not isinstance(raw, list):
        return None
    names = [x.get("name") if isinstance(x, dict) else x for x in raw]
    return names if all(isinstance(n, str) for n in names) else None


def ensure_labels(ctx: Ctx, names: list[str]) -> list[str]:
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


def needs(resp: Response, permissions: str) -> Response:
    resp.headers.setdefault("X-Accepted-GitHub-Permissions", permissions)
    return resp


def issue_of(ctx: Ctx, number: str) -> Issue | Response:
    issue = ctx.repo.issues.get(int(number))
    return issue if issue else error(404, "Not Found")


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(status, data, headers or {})


# ---------------------------------------------------------------- users, rate limit


@ROUTER.route("GET", "/user")
def get_user(ctx: Ctx) -> Response:
    if ctx.token.kind in ("app", "actions"):
        return error(403, "Resource not accessible by integration")
    return json_response(ctx.render.full_user(ctx.token.login, private=True))


@ROUTER.route("GET", "/users/{login}")
def get_named_user(ctx: Ctx, login: str) -> Response:
    return json_response(ctx.render.full_user(login))


@ROUTER.route("GET", "/rate_limit", resource=None)
def rate_limit(ctx: Ctx) -> Response:
    resources = {}
    for name in ("core", "search", "graphql"):
        found = limits.bucket(ctx.state, name, ctx.token)
        found.refresh(ctx.now)
        resources[name] = ctx.render.rate(name, found)
    return json_response({"resources": resources, "rate": resources["core"]})


# ---------------------------------------------------------------- repositories


@ROUTER.route("GET", "/repos/{owner}/{repo}", perm=("metadata", "read"))
def get_repo(ctx: Ctx) -> Response:
    return json_response(ctx.render.repo(ctx.repo, ctx.token))


@ROUTER.route("GET", "/repos/{owner}/{repo}/collaborators/{username}/permission", perm=("metadata", "read"))
def collaborator_permission(ctx: Ctx, username: str) -> Response:
    role = ctx.repo.role_of(username) or ("none" if ctx.repo.private else "read")
    legacy = {"maintain": "write", "triage": "read"}.get(role, role)
    rank = ROLES.index(role) if role in ROLES else -1
    user = {
        **ctx.render.user(username),
        "permissions": {
            "pull": rank >= 0,
            "triage": rank >= 1,
            "push": rank >= 2,
            "maintain": rank >= 3,
            "admin": rank >= 4,
        },
        "role_name": role,
    }
    return json_response({"permission": legacy, "role_name": role, "user": user})


@ROUTER.route("POST", "/repos/{owner}/{repo}/dispatches", perm=("contents", "write"))
def repository_dispatch(ctx: Ctx) -> Response:
    body = body_of(ctx)
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
        since = parse_time(q["since"])
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
    return json_response([ctx.render.issue(ctx.repo, i) for i in page], headers=headers)


@ROUTER.route("POST", "/repos/{owner}/{repo}/issues", perm=("metadata", "read"))
def create_issue(ctx: Ctx) -> Response:
    denied = access.participation_denial(ctx.token, ctx.repo)
    if denied:
        return needs(denied, "issues=write")
    body = body_of(ctx)
    if isinstance(body, Response):
        return body
    title = body.get("title")
    if not isinstance(title, (str, int)) or str(title) == "":
        return validation_failed("Issue", "title")
    labels = label_names(body.get("labels", []))
    if labels is None:
        return validation_failed("Issue", "labels", "invalid")
    assignees = list(body.get("assignees") or [])
    if not access.pushes(ctx.token, ctx.repo):
        labels, assignees = [], []  # "silently dropped otherwise"
    number = max(ctx.repo.issues, default=0) + 1
    issue = Issue(
        id=ctx.state.new_id(),
        number=number,
        title=str(title),
        body=body.get("body"),
        user=ctx.token.login,
        created_at=ctx.now,
        updated_at=ctx.now,
        labels=ensure_labels(ctx, labels),
        assignees=assignees,
    )
    ctx.repo.issues[number] = issue
    return json_response(ctx.render.issue(ctx.repo, issue), 201)


@ROUTER.route("GET", "/repos/{owner}/{repo}/issues/{number:int}", perm=("issues", "read"))
def get_issue(ctx: Ctx, number: str) -> Response:
    issue = issue_of(ctx, number)
    return issue if isinstance(issue, Response) else json_response(ctx.render.issue(ctx.repo, issue))


def _issue_edit_error(body: dict[str, Any]) -> Response | None:
    if "title" in body and (not isinstance(body["title"], str) or not body["title"]):
        return validation_failed("Issue", "title", "invalid")
    if body.get("state", "open") not in ("open", "closed"):
        return validation_failed("Issue", "state", "invalid")
    if body.get("state_reason") not in (None, "completed", "not_planned", "reopened"):
        return validation_failed("Issue", "state_reason", "invalid")
    if "labels" in body and label_names(body["labels"]) is None:
        return validation_failed("Issue", "labels", "invalid")
    return None


@ROUTER.route("PATCH", "/repos/{owner}/{repo}/issues/{number:int}", perm=("metadata", "read"))
def update_issue(ctx: Ctx, number: str) -> Response:
    """Triage or push access edits any issue; its author edits (and closes) their own.
    Labels and assignees stick only with push access (silently dropped otherwise)."""
    issue, body = issue_of(ctx, number), body_of(ctx)
    for early in (issue, body):
        if isinstance(early, Response):
            return early
    denied = access.participation_denial(ctx.token, ctx.repo, author=issue.user)
    if denied:
        return needs(denied, "issues=write")
    invalid = _issue_edit_error(body)
    if invalid:
        return invalid
    if "labels" in body and access.pushes(ctx.token, ctx.repo):
        issue.labels = ensure_labels(ctx, label_names(body["labels"]) or [])
    for key in ("title", "body"):
        if key in body:
            setattr(issue, key, body[key])
    if "assignees" in body and access.pushes(ctx.token, ctx.repo):
        issue.assignees = list(body["assignees"] or [])
    _apply_state(issue, body, ctx.now)
    issue.updated_at = ctx.now
    return json_response(ctx.render.issue(ctx.repo, issue))


def _apply_state(issue: Issue, body: dict[str, Any], now: float) -> None:
    new_state = body.get("state", issue.state)
    if new_state != issue.state:
        issue.state = new_state
        issue.closed_at = now if new_state == "closed" else None
        issue.state_reason = body.get("state_reason") or ("completed" if new_state == "closed" else "reopened")
    elif "state_reason" in body:
        issue.state_reason = body["state_reason"]


@ROUTER.route("GET", "/repos/{owner}/{repo}/issues/{number:int}/comments", perm=("issues", "read"))
def list_comments(ctx: Ctx, number: str) -> Response:
    issue = issue_of(ctx, number)
    if isinstance(issue, Response):
        return issue
    comments = issue.comments
    if ctx.query.get("since"):
        since = parse_time(ctx.query["since"]) or 0.0
        comments = [c for c in comments if c.updated_at >= since]
    page, headers = paginate(ctx, comments)
    return json_response([ctx.render.comment(ctx.repo, issue, c) for c in page], headers=headers)


@ROUTER.route("POST", "/repos/{owner}/{repo}/issues/{number:int}/comments", perm=("metadata", "read"))
def create_comment(ctx: Ctx, number: str) -> Response:
    denied = access.participation_denial(ctx.token, ctx.repo)
    if denied:
        return needs(denied, "issues=write")
    issue, body = issue_of(ctx, number), body_of(ctx)
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
    return json_response(ctx.render.comment(ctx.repo, issue, comment), 201)


def _find_comment(ctx: Ctx, comment_id: str) -> tuple[Issue, Comment] | Response:
    for issue in ctx.repo.issues.values():
        for comment in issue.comments:
            if comment.id == int(comment_id):
                return issue, comment
    return error(404, "Not Found")


@ROUTER.route("GET", "/repos/{owner}/{repo}/issues/comments/{comment_id:int}", perm=("issues", "read"))
def get_comment(ctx: Ctx, comment_id: str) -> Response:
    found = _find_comment(ctx, comment_id)
    return found if isinstance(found, Response) else json_response(ctx.render.comment(ctx.repo, *found))


@ROUTER.route("PATCH", "/repos/{owner}/{repo}/issues/comments/{comment_id:int}", perm=("issues", "write"))
def update_comment(ctx: Ctx, comment_id: str) -> Response:
    found, body = _find_comment(ctx, comment_id), body_of(ctx)
    for early in (found, body):
        if isinstance(early, Response):
            return early
    if not isinstance(body.get("body"), str) or not body["body"]:
        return validation_failed("IssueComment", "body")
    issue, comment = found
    comment.body, comment.updated_at = body["body"], ctx.now
    return json_response(ctx.render.comment(ctx.repo, issue, comment))


# ---------------------------------------------------------------- labels


@ROUTER.route("GET", "/repos/{owner}/{repo}/labels", perm=("issues", "read"))
def list_labels(ctx: Ctx) -> Response:
    page, headers = paginate(ctx, sorted(ctx.repo.labels.values(), key=lambda lb: lb.name.lower()))
    return json_response([ctx.render.label(ctx.repo, lb) for lb in page], headers=headers)


@ROUTER.route("POST", "/repos/{owner}/{repo}/labels", perm=("issues", "write"))
def create_label(ctx: Ctx) -> Response:
    body = body_of(ctx)
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
    return json_response(ctx.render.label(ctx.repo, label), 201)


@ROUTER.route("GET", "/repos/{owner}/{repo}/labels/{name}", perm=("issues", "read"))
def get_label(ctx: Ctx, name: str) -> Response:
    label = ctx.repo.label(name)
    return json_response(ctx.render.label(ctx.repo, label)) if label else error(404, "Not Found")


@ROUTER.route("GET", "/repos/{owner}/{repo}/issues/{number:int}/labels", perm=("issues", "read"))
def list_issue_labels(ctx: Ctx, number: str) -> Response:
    issue = issue_of(ctx, number)
    if isinstance(issue, Response):
        return issue
    return json_response([ctx.render.label(ctx.repo, ctx.repo.label(n)) for n in issue.labels])


@ROUTER.route("POST", "/repos/{owner}/{repo}/issues/{number:int}/labels", perm=("issues", "write"))
def add_issue_labels(ctx: Ctx, number: str) -> Response:
    issue = issue_of(ctx, number)
    if isinstance(issue, Response):
        return issue
    names = label_names(ctx.body)
    if names is None:
        return validation_failed("Label", "labels", "invalid")
    issue.labels = ensure_labels(ctx, issue.labels + names)
    issue.updated_at = ctx.now
    return list_issue_labels(ctx, number)


@ROUTER.route("DELETE", "/repos/{owner}/{repo}/issues/{number:int}/labels/{name}", perm=("issues", "write"))
def remove_issue_label(ctx: Ctx, number: str, name: str) -> Response:
    issue = issue_of(ctx, number)
    if isinstance(issue, Response):
        return issue
    kept = [n for n in issue.labels if n.lower() != name.lower()]
    if len(kept) == len(issue.labels):
        return error(404, "Label does not exist")
    issue.labels, issue.updated_at = kept, ctx.now
    return list_issue_labels(ctx, number)
