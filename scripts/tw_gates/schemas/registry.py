"""The consumer registry (``consumer_registry.yml``): which repositories
consume the Token Warehouse, where each may legitimately render parsed
Markdown (``code_paths``), and which status checks must protect its default
branch. Read by the ingest collector and by the audit."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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
    keys: list[Annotated[str, Field(min_length=1, max_length=128)]] = Field(
        default_factory=list,
        description="key ids this consumer signs with (its own key: the default); ingest refuses any other "
        "(kid_not_allowed). Empty: not bound (any verification key not bound to another consumer)",
    )


class ConsumerRegistry(BaseModel):
    model_config = ConfigDict(extra="forbid", title="tw-gates consumer registry 1.0")

    schema_version: Literal["1.0"] = "1.0"
    shared_keys: list[Annotated[str, Field(min_length=1, max_length=128)]] = Field(
        default_factory=list,
        description="key ids that may be listed under several consumers (a shared key: any holder can sign "
        "for every consumer that lists it; ingest warns about it). Per-consumer keys are the default",
    )
    consumers: list[Consumer] = Field(default_factory=list)

    @field_validator("consumers")
    @classmethod
    def _unique(cls, consumers: list[Consumer]) -> list[Consumer]:
        twice = first_duplicate(c.repo.lower() for c in consumers)
        if twice is not None:
            raise ValueError(f"{next(c.repo for c in consumers if c.repo.lower() == twice)} is listed twice")
        return consumers

    @model_validator(mode="after")
    def _keys_are_per_consumer(self) -> ConsumerRegistry:
        owners: dict[str, list[str]] = {}
        for consumer in self.consumers:
            for kid in dict.fromkeys(consumer.keys):
                owners.setdefault(kid, []).append(consumer.repo)
        shared = set(self.shared_keys)
        for kid, repos in owners.items():
            if len(repos) > 1 and kid not in shared:
                raise ValueError(
                    f"key id {kid!r} is listed for {len(repos)} consumers ({', '.join(repos[:3])}): give each "
                    "consumer its own key, or list it under shared_keys to share it on purpose"
                )
        return self

    def key_owners(self) -> dict[str, frozenset[str]]:
        """kid -> the repositories (lower case) bound to it."""
        owners: dict[str, set[str]] = {}
        for consumer in self.consumers:
            for kid in consumer.keys:
                owners.setdefault(kid, set()).add(consumer.repo.lower())
        return {kid: frozenset(repos) for kid, repos in owners.items()}

    def get(self, repo: str) -> Consumer | None:
        repo = repo.lower()
        return next((c for c in self.consumers if c.repo.lower() == repo), None)


def load_registry(path: str | Path) -> ConsumerRegistry:
    """Parse and validate a registry file; one clear UsageError otherwise."""
    return load_model(path, ConsumerRegistry, "registry", max_bytes=MAX_REGISTRY_BYTES, allow_empty=True)
