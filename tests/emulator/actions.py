"""Actions: workflow runs, artifacts, and the artifact download's redirect to blob storage."""

from __future__ import annotations

from typing import Any

from .handlers import ROUTER, Ctx, json_response, paginate
from .router import Response, error

# ---------------------------------------------------------------- actions


def _artifact_list(ctx: Ctx, arts: list[Any]) -> Response:
    if ctx.query.get("name"):
        arts = [a for a in arts if a.name == ctx.query["name"]]
    arts = sorted(arts, key=lambda a: (a.created_at, a.id), reverse=True)
    page, headers = paginate(ctx, arts)
    return json_response(
        {"total_count": len(arts), "artifacts": [ctx.render.artifact(ctx.repo, a) for a in page]}, headers=headers
    )


@ROUTER.route("GET", "/repos/{owner}/{repo}/actions/artifacts", perm=("actions", "read"))
def list_artifacts(ctx: Ctx) -> Response:
    return _artifact_list(ctx, list(ctx.repo.artifacts.values()))


@ROUTER.route("GET", "/repos/{owner}/{repo}/actions/artifacts/{artifact_id:int}", perm=("actions", "read"))
def get_artifact(ctx: Ctx, artifact_id: str) -> Response:
    art = ctx.repo.artifacts.get(int(artifact_id))
    return json_response(ctx.render.artifact(ctx.repo, art)) if art else error(404, "Not Found")


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
    return json_response(
        {"total_count": len(runs), "workflow_runs": [ctx.render.run(ctx.repo, r) for r in page]}, headers=headers
    )


@ROUTER.route("GET", "/repos/{owner}/{repo}/actions/runs/{run_id:int}", perm=("actions", "read"))
def get_run(ctx: Ctx, run_id: str) -> Response:
    run = ctx.repo.runs.get(int(run_id))
    return json_response(ctx.render.run(ctx.repo, run)) if run else error(404, "Not Found")


@ROUTER.route("GET", "/repos/{owner}/{repo}/actions/runs/{run_id:int}/artifacts", perm=("actions", "read"))
def list_run_artifacts(ctx: Ctx, run_id: str) -> Response:
    if int(run_id) not in ctx.repo.runs:
        return error(404, "Not Found")
    return _artifact_list(ctx, [a for a in ctx.repo.artifacts.values() if a.run_id == int(run_id)])
