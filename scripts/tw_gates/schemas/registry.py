"""The consumer registry (``consumer_registry.yml``): which repositories
consume the Token Warehouse, where each may legitimately render parsed
Markdown (``code_paths``), and which status checks must protect its default
branch. Read by the ingest collector and by the audit."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tw_gates.core.fsio import load_model
from tw_gates.schemas import first_duplicate
from tw_gates.schemas.consumer import REPO_PATTERN
from tw_gates.schemas.severity import Severity

DEFAULT_ARTIFACT_NAME = "tw-self-audit"
MAX_REGISTRY_BYTES = 16 * 1024 * 1024  # tens of thousands of consumers


class Consumer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    repo: str = Field(pattern=REPO_PATTERN, description="owner/name")
    default_branch: str | None = Field(None, description="taken from the API when absent")
    code_paths: list[str] = Field(default_factory=list, description="globs where renderer use is registered")
    required_checks: list[str] = Field(
        default_factory=list, description="status checks the default branch must require"
    )
    artifact: str = Field(DEFAULT_ARTIFACT_NAME, description="name of the self-audit Actions artifact")
    severity: Severity | None = Field(None, description="overrides the severity of this consumer's findings")


class ConsumerRegistry(BaseModel):
    model_config = ConfigDict(extra="forbid", title="tw-gates consumer registry 1.0")

    schema_version: Literal["1.0"] = "1.0"
    consumers: list[Consumer] = Field(default_factory=list)

    @field_validator("consumers")
    @classmethod
    def _unique(cls, consumers: list[Consumer]) -> list[Consumer]:
        twice = first_duplicate(c.repo.lower() for c in consumers)
        if twice is not None:
            raise ValueError(f"{next(c.repo for c in consumers if c.repo.lower() == twice)} is listed twice")
        return consumers

    def get(self, repo: str) -> Consumer | None:
        repo = repo.lower()
        return next((c for c in self.consumers if c.repo.lower() == repo), None)


def load_registry(path: str | Path) -> ConsumerRegistry:
    """Parse and validate a registry file; one clear UsageError otherwise."""
    return load_model(path, ConsumerRegistry, "registry", max_bytes=MAX_REGISTRY_BYTES, allow_empty=True)
