"""The consumer artifact (schema 1.0) and the identity it carries: flags, the
runner's environment, else the git checkout."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import ValidationError

from tw_gates import __version__
from tw_gates.core.errors import UsageError
from tw_gates.core.proc import run
from tw_gates.core.settings import describe_validation_error
from tw_gates.schemas.consumer import SCHEMA_VERSION, ConsumerArtifact
from tw_gates.self_audit.hits import FoundHit


def _git(root: Path, *args: str) -> str | None:
    try:
        result = run(["git", "-C", str(root), *args], timeout=30)
    except UsageError:
        return None
    text = result.stdout.decode("utf-8", "replace").strip()
    return text if result.ok and text else None


_REMOTE_REPO = re.compile(r"[:/]([A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+?)(?:\.git)?/?$")


def _identity_from_git(root: Path) -> dict[str, str | None]:
    """repo, commit and branch of the checkout at ``root``: only when
    ``root`` is the top of its own work tree (a folder inside another
    repository is not that repository)."""
    top = _git(root, "rev-parse", "--show-toplevel")
    if top is None or Path(top).resolve() != root.resolve():
        return {}
    remote = _git(root, "config", "--get", "remote.origin.url")
    match = _REMOTE_REPO.search(remote or "")
    return {
        "repo": match.group(1) if match else None,
        "commit": _git(root, "rev-parse", "HEAD"),
        "branch": _git(root, "symbolic-ref", "--short", "-q", "HEAD"),
    }


def _hit(hit: FoundHit) -> dict[str, object]:
    """A hit as the artifact holds it: the schema 1.0 fields, then the
    optional ones (an ingest gate that predates them reads the same hit)."""
    document: dict[str, object] = {"path": hit.path, "line": hit.line, "pattern": hit.pattern}
    document["context"] = hit.context
    document["scanner"] = hit.scanner
    if hit.argument is not None:
        document["argument"] = hit.argument
    return document


def build_artifact(repo: str, commit: str, branch: str, hits: list[FoundHit], generated_at: str) -> dict:
    """The unsigned consumer artifact, validated against the schema."""
    document = {
        "schema_version": SCHEMA_VERSION,
        "repo": repo,
        "commit": commit,
        "branch": branch,
        "generated_at": generated_at,
        "tool_version": __version__,
        "hits": [_hit(h) for h in hits],
    }
    try:
        ConsumerArtifact.model_validate(document)
    except ValidationError as exc:
        raise UsageError(
            describe_validation_error(exc, "consumer artifact")
            + " (set --repo/--commit/--branch or GITHUB_REPOSITORY/GITHUB_SHA/GITHUB_REF_NAME)"
        ) from None
    return document
