"""G3's settings and defaults (flags and TW_* variables)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pydantic import Field, field_validator

from tw_gates.core.keyrings import BaselineKeys
from tw_gates.core.settings import GitHubSettings, env

DEFAULT_REPORT = "tw-gates-audit.json"
DEFAULT_REGISTRY = "consumer_registry.yml"
DEFAULT_EXCEPTIONS = "audit_exceptions.yml"
DEFAULT_BASELINE = "perf/baseline.json"
MAX_ARTIFACT_LINE_BYTES = 64 * 1024 * 1024
MAX_ANNOTATIONS = 50
SUMMARY_HITS = 100
Progress = Callable[[str], None]


class AuditSettings(GitHubSettings, BaselineKeys):
    report: Path = Field(Path(DEFAULT_REPORT), validation_alias=env("TW_AUDIT_REPORT", "report"))
    registry: Path = Field(Path(DEFAULT_REGISTRY), validation_alias=env("TW_REGISTRY", "registry"))
    # None: audit_exceptions.yml when it exists, else no exceptions.
    exceptions: Path | None = Field(None, validation_alias=env("TW_AUDIT_EXCEPTIONS", "exceptions"))
    baseline: Path = Field(Path(DEFAULT_BASELINE), validation_alias=env("TW_BASELINE", "baseline"))
    current: Path | None = Field(None, validation_alias=env("TW_PERF_CURRENT", "current"))
    artifacts: Path | None = Field(None, validation_alias=env("TW_ACCEPTED_ARTIFACTS", "artifacts"))
    patterns: Path | None = Field(None, validation_alias=env("TW_PATTERN_CATALOG", "patterns"))
    audit_id: str | None = Field(None, validation_alias=env("TW_AUDIT_ID", "audit_id"))
    # Where a consumer's hit must lie to count as unregistered (and be filed):
    # production code by default; hits in tests, docs, examples, vendored or
    # generated files, and hits with a harmless argument, are counted only.
    hit_contexts: list[str] = Field(["production"], validation_alias=env("TW_AUDIT_HIT_CONTEXTS", "hit_contexts"))

    @field_validator("hit_contexts", mode="before")
    @classmethod
    def _contexts(cls, value: object) -> object:
        return [part.strip() for part in value.split(",") if part.strip()] if isinstance(value, str) else value
