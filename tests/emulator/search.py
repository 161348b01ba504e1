"""GET /search/issues: qualifiers, words and phrases, with the search index's lag."""

from __future__ import annotations

import re

from . import access
from .handlers import ROUTER, Ctx, json_response, paginate
from .router import Response, error, validation_failed

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
    items = [ctx.render.search_item(r, i) for r, i in page]
    return json_response(
        {"total_count": len(hits), "incomplete_results": False, "items": items, "search_type": "lexical"},
        headers=headers,
    )
