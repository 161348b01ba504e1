"""Consumer artifact (schema 1.0): what a consumer's self-audit reports and
the ingest gate accepts."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from tw_gates.core.signing import Signature

SCHEMA_VERSION = "1.0"
SUPPORTED_SCHEMA_VERSIONS = ("1.0",)
REPO_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$"
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")
_PARENT_SEGMENT = re.compile(r"(?:^|[\\/])\.\.(?:[\\/]|$)")
_CONTROL_CHAR = re.compile(r"[\x00-\x1f]")
# Any of the problems below, in one search: the ingest gate runs this for
# every hit of every artifact, and nearly every path is fine.
_ANY_PROBLEM = re.compile(r"[\x00-\x1f]|^(?:[/\\~]|[A-Za-z]:[\\/])|(?:^|[\\/])\.\.(?:[\\/]|$)")


def check_relative_path(path: str) -> str:
    """A hit path must stay inside the repository it describes."""
    if _ANY_PROBLEM.search(path) is None:
        return path
    if "\x00" in path:
        raise ValueError("path contains a NUL byte")
    if path.startswith(("/", "\\", "~")) or _WINDOWS_DRIVE.match(path):
        raise ValueError("path is absolute")
    if _PARENT_SEGMENT.search(path):
        raise ValueError("path contains '..'")
    if _CONTROL_CHAR.search(path):
        raise ValueError("path contains a control character")
    return path


class Hit(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(min_length=1, max_length=4096)
    line: int = Field(ge=1, le=10_000_000, strict=True)  # true or 5.0 is not a line number
    pattern: str = Field(min_length=1, max_length=200)
    # Optional since the syntax-aware self-audit; an artifact without them is
    # read as before (every hit in production code, found by the line scanner).
    context: Literal["production", "test", "docs", "example", "vendored", "generated"] | None = Field(
        None, description="where the hit lies; the audit files issues for production hits only by default"
    )
    scanner: Literal["syntax", "template", "line"] | None = Field(
        None, description="how it was found: on the syntax tree, by a template lexer, or by a line regex"
    )
    argument: Literal["constant", "sanitized"] | None = Field(
        None, description="set when the decisive argument is harmless (reported at info level)"
    )

    @field_validator("path")
    @classmethod
    def _inside_repo(cls, value: str) -> str:
        return check_relative_path(value)


class ConsumerArtifact(BaseModel):
    """A consumer's self-audit result. The signature is HMAC-SHA256 over the
    RFC 8785 canonical form of the artifact without ``signature``."""

    model_config = ConfigDict(extra="forbid", title="tw-gates consumer artifact 1.0")

    schema_version: Literal["1.0"]
    repo: str = Field(pattern=REPO_PATTERN, description="owner/name")
    commit: str = Field(pattern=r"^[0-9a-f]{40}$", description="40 hex digits")
    branch: str = Field(min_length=1, max_length=255)
    generated_at: AwareDatetime = Field(description="UTC timestamp")
    tool_version: str = Field(min_length=1, max_length=64)
    hits: list[Hit] = Field(default_factory=list, max_length=100_000)
    signature: Signature | None = None

    @field_validator("generated_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.utcoffset() != timezone.utc.utcoffset(None):
            raise ValueError("generated_at must be in UTC (Z or +00:00)")
        return value


class Provenance(BaseModel):
    """Where a collected artifact came from, as the GitHub REST API told the
    collector (never as the artifact says): the repository whose Actions
    artifact it was, the run that uploaded it, and the bytes' digest. collect
    writes it beside each file it collects; ingest binds the artifact to it and
    adds it to the accepted record."""

    model_config = ConfigDict(extra="forbid", title="tw-gates provenance 1.0")

    repo: str = Field(pattern=REPO_PATTERN, description="owner/name the artifact was collected from")
    run_id: int = Field(ge=1, description="the workflow run that uploaded the artifact")
    run_attempt: int | None = Field(None, ge=1)
    workflow_path: str | None = Field(None, max_length=1024, description="e.g. .github/workflows/ci.yml")
    event: str | None = Field(None, max_length=100, description="the run's triggering event")
    head_branch: str | None = Field(None, max_length=255)
    head_sha: str | None = Field(None, pattern=r"^[0-9a-f]{40}$")
    artifact_id: int = Field(ge=1)
    artifact_name: str = Field(min_length=1, max_length=255)
    artifact_digest: str | None = Field(None, max_length=100, description="GitHub's digest of the artifact zip")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="sha256 of the collected JSON file")
    collected_at: str = Field(max_length=40, description="UTC time of the collection")


class ProvenanceSidecar(Provenance):
    """The provenance file collect writes beside ``<file>``: ``<file>.provenance``."""

    model_config = ConfigDict(extra="forbid", title="tw-gates provenance sidecar 1.0")

    file: str = Field(min_length=1, max_length=255, description="the collected file's name, in the same folder")


class AcceptedRecord(ConsumerArtifact):
    """One line of ingest's accepted JSON Lines: the artifact (its RFC 8785
    form: the values as received) plus, when it was collected, ``provenance``. The signature still
    covers the artifact without ``signature`` and ``provenance``. A consumer
    cannot send ``provenance`` itself: ingest validates the artifact without it."""

    model_config = ConfigDict(extra="forbid", title="tw-gates accepted artifact 1.0")

    provenance: Provenance | None = None

    @property
    def source_repo(self) -> str:
        """The repository this record speaks for: where it was collected from,
        else (an artifact ingested without provenance) its own claim."""
        return self.provenance.repo if self.provenance else self.repo


def utc_now_iso() -> str:
    """UTC now as the artifact writes it: second precision, 'Z'."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
