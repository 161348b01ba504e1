"""Branches, classic branch protection and repository rulesets.

Protection routes are registered before the plain branch route: branch names may contain "/"."""

from __future__ import annotations

import fnmatch

from .handlers import ROUTER, Ctx, json_response, paginate
from .router import Response, error
from .state import Protection, Repo

# ---------------------------------------------------------------- branches, protection, rulesets


def _protection(ctx: Ctx, branch: str) -> Protection | Response:
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
    return json_response(ctx.render.required_status_checks(ctx.repo, branch, p))


@ROUTER.route("GET", "/repos/{owner}/{repo}/branches/{branch:path}/protection", perm=("administration", "read"))
def get_branch_protection(ctx: Ctx, branch: str) -> Response:
    p = _protection(ctx, branch)
    return p if isinstance(p, Response) else json_response(ctx.render.protection(ctx.repo, branch, p))


@ROUTER.route("GET", "/repos/{owner}/{repo}/branches/{branch:path}", perm=("metadata", "read"))
def get_branch(ctx: Ctx, branch: str) -> Response:
    if not ctx.repo.has_branch(branch):
        return error(404, "Branch not found")
    return json_response(ctx.render.branch(ctx.repo, branch))


@ROUTER.route("GET", "/repos/{owner}/{repo}/rulesets", perm=("metadata", "read"))
def list_rulesets(ctx: Ctx) -> Response:
    page, headers = paginate(ctx, sorted(ctx.repo.rulesets.values(), key=lambda r: r.id))
    return json_response([ctx.render.ruleset(ctx.repo, rs, full=False) for rs in page], headers=headers)


@ROUTER.route("GET", "/repos/{owner}/{repo}/rulesets/{ruleset_id:int}", perm=("metadata", "read"))
def get_ruleset(ctx: Ctx, ruleset_id: str) -> Response:
    rs = ctx.repo.rulesets.get(int(ruleset_id))
    return json_response(ctx.render.ruleset(ctx.repo, rs)) if rs else error(404, "Not Found")


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
    return json_response(page, headers=headers)
