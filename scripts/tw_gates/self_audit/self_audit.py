"""Consumer self-audit: find the code that renders parsed Markdown or metadata
through a template engine or straight into the DOM (the SSTI and XSS risk the
Token Warehouse hardening is about), and report it as a consumer artifact
(schema 1.0), HMAC-signed when the consumer has a key, for the central ingest
gate. Optionally also as SARIF 2.1.0, so the hits show up in code scanning.

The room: ``catalog`` (what is looked for), ``files`` (what is read),
``scanner`` (the scan), ``artifact`` and ``sarif`` (what is written); this
module holds the gate function ``self_audit()``."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from pydantic import BaseModel, Field, field_validator

from tw_gates.core import metrics
from tw_gates.core.errors import ExitCode, UsageError
from tw_gates.core.fsio import atomic_write_bytes, atomic_write_json
from tw_gates.core.settings import SigningSettings, env
from tw_gates.core.units import parse_size
from tw_gates.schemas.consumer import utc_now_iso
from tw_gates.schemas.severity import SEVERITIES
from tw_gates.self_audit.artifact import _identity_from_git, build_artifact
from tw_gates.self_audit.catalog import (
    DEFAULT_CATALOG,
    PatternCatalog,
    RendererPattern,
    load_pattern_catalog,
    required_literals,
)
from tw_gates.self_audit.files import DEFAULT_MAX_FILE_BYTES, list_source_files
from tw_gates.self_audit.hits import CONTEXTS, FoundHit, ScanResult
from tw_gates.self_audit.line_scan import scan_text
from tw_gates.self_audit.sarif import build_sarif
from tw_gates.self_audit.scanner import HarmlessArguments, scan

__all__ = [
    "DEFAULT_CATALOG",
    "FoundHit",
    "PatternCatalog",
    "RendererPattern",
    "ScanResult",
    "SelfAuditResult",
    "SelfAuditSettings",
    "build_artifact",
    "build_sarif",
    "list_source_files",
    "load_pattern_catalog",
    "required_literals",
    "scan",
    "scan_text",
    "self_audit",
]

MAX_HITS = 100_000  # the consumer artifact schema's limit


class SelfAuditSettings(SigningSettings):
    repo_dir: Path = Field(Path("."), validation_alias=env("TW_REPO_DIR", "repo_dir"))
    patterns_file: Path | None = Field(None, validation_alias=env("TW_PATTERNS_FILE", "patterns_file"))
    out: Path = Field(Path("tw-self-audit.json"), validation_alias=env("TW_SELF_AUDIT_OUT", "out"))
    sarif: Path | None = Field(None, validation_alias=env("TW_SELF_AUDIT_SARIF", "sarif"))
    # The artifact's identity: a flag, else the runner's environment, else git.
    repo: str | None = Field(None, validation_alias=env("GITHUB_REPOSITORY", "repo"))
    commit: str | None = Field(None, validation_alias=env("GITHUB_SHA", "commit"))
    # On a pull_request run GITHUB_REF_NAME is "<n>/merge"; GITHUB_HEAD_REF is the branch.
    branch: str | None = Field(None, validation_alias=env("GITHUB_HEAD_REF", "GITHUB_REF_NAME", "branch"))
    max_file_bytes: int = Field(
        DEFAULT_MAX_FILE_BYTES, gt=0, validation_alias=env("TW_SELF_AUDIT_MAX_FILE_BYTES", "max_file_bytes")
    )

    # A hit whose argument is a constant or sanitized: left out ("drop"), or
    # kept in the artifact marked with its argument ("info").
    harmless_arguments: HarmlessArguments = Field(
        "drop", validation_alias=env("TW_SELF_AUDIT_HARMLESS_ARGUMENTS", "harmless_arguments")
    )

    @field_validator("max_file_bytes", mode="before")
    @classmethod
    def _size(cls, value: object) -> object:
        return parse_size(value) if isinstance(value, str) else value


class SelfAuditResult(BaseModel):
    artifact: Path
    sarif: Path | None
    repo: str
    commit: str
    branch: str
    files_scanned: int
    files_parsed: int = 0
    harmless: int = 0
    skipped: dict[str, int]
    hits: list[FoundHit]
    signed_kid: str | None

    @property
    def hits_by_severity(self) -> dict[str, int]:
        """Hits by severity; a hit kept for its harmless argument counts as 'info'."""
        counts = Counter("info" if h.argument else h.severity for h in self.hits)
        return {s: counts[s] for s in (*SEVERITIES, "info") if counts[s]}

    @property
    def hits_by_context(self) -> dict[str, int]:
        counts = Counter(h.context for h in self.hits)
        return {c: counts[c] for c in CONTEXTS if counts[c]}

    @property
    def exit_code(self) -> ExitCode:
        # The consumer reports; the central audit decides what the hits mean.
        return ExitCode.OK


def _missing_identity(root: Path, missing: list[str], *, in_git: bool) -> str:
    """Why the artifact's identity is not known, and what to pass."""
    flags = ", ".join(f"--{k}" for k in missing)
    if not in_git:
        why = f"{root} is not the top of a git checkout"
    elif missing == ["repo"]:
        why = "the checkout has no 'origin' remote on a GitHub-like host to name the repository"
    else:
        why = f"git does not say ({'no commit yet' if 'commit' in missing else 'a detached HEAD, no branch'})"
    return (
        f"cannot tell the artifact's {', '.join(missing)}: {why}; pass {flags} "
        "(or set GITHUB_REPOSITORY, GITHUB_SHA, GITHUB_REF_NAME)"
    )


def self_audit(settings: SelfAuditSettings, *, progress=None, now_iso: str | None = None) -> SelfAuditResult:
    """Scan, write the (signed) artifact and the optional SARIF file."""
    root = settings.repo_dir
    if not root.is_dir():
        raise UsageError(f"--repo-dir {root} is not a folder")
    catalog = load_pattern_catalog(settings.patterns_file)
    identity = {"repo": settings.repo, "commit": settings.commit, "branch": settings.branch}
    from_git: dict[str, str | None] = {}
    if not all(identity.values()):
        from_git = _identity_from_git(root)
        identity = {k: v or from_git.get(k) for k, v in identity.items()}
    missing = [k for k, v in identity.items() if not v]
    if missing:
        raise UsageError(_missing_identity(root, missing, in_git=bool(from_git)))
    repo, commit, branch = (str(identity[k]) for k in ("repo", "commit", "branch"))

    result = scan(
        root,
        catalog,
        max_file_bytes=settings.max_file_bytes,
        harmless=settings.harmless_arguments,
        progress=progress,
    )
    if len(result.hits) > MAX_HITS:
        raise UsageError(
            f"{len(result.hits)} hits, more than an artifact may hold ({MAX_HITS}); "
            "check the pattern catalog for a pattern that matches too much"
        )
    document = build_artifact(repo, commit, branch, result.hits, now_iso or utc_now_iso())
    ring = settings.key_ring()
    signed_kid = None
    if ring.can_sign:
        document = ring.sign(document)
        signed_kid = ring.signing_kid
    # Written byte for byte: redacting a signed document would break its signature.
    atomic_write_bytes(settings.out, (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    if settings.sarif:
        atomic_write_json(settings.sarif, build_sarif(catalog, result.hits, repo=repo, commit=commit, branch=branch))
    outcome = SelfAuditResult(
        artifact=settings.out,
        sarif=settings.sarif,
        repo=repo,
        commit=commit,
        branch=branch,
        files_scanned=result.files_scanned,
        files_parsed=result.files_parsed,
        harmless=result.harmless,
        skipped=result.skipped,
        hits=result.hits,
        signed_kid=signed_kid,
    )
    gauge = metrics.current().gauge("tw_gates_self_audit_hits")
    for severity in SEVERITIES:
        gauge.labels(severity=severity).set(outcome.hits_by_severity.get(severity, 0))
    return outcome
