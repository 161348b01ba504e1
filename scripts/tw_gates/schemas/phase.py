"""Phase unlock artifact (the phase unlock artifact schema plus a
signature): ``.phase-N.complete.json``, the proof that phase N finished and
the key that lets phase N+1 start."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from tw_gates.core.signing import TypedSignature
from tw_gates.schemas.evidence import EvidenceRef

SCHEMA_VERSION = "1.0"
FIRST_PHASE, LAST_PHASE = 0, 4
GATE_IDS = ("G1", "G2", "G3", "G4", "G5")
# Fields a phase artifact must have before anything else is looked at.
REQUIRED_KEYS = (
    "phase",
    "baseline_pass_count",
    "ci_gates_passed",
    "git_commit",
    "schema_version",
    "min_schema_version",
)

GateId = Literal["G1", "G2", "G3", "G4", "G5"]


class PhaseArtifact(BaseModel):
    model_config = ConfigDict(extra="forbid", title="tw-gates phase unlock artifact 1.0")

    schema_version: Literal["1.0"]
    min_schema_version: Literal["1.0"]
    phase: int = Field(ge=FIRST_PHASE, le=LAST_PHASE)
    phase_name: str = Field(min_length=1, max_length=200)
    baseline_pass_count: str = Field(pattern=r"^[0-9]{1,6}/[0-9]{1,6}$", description='passed/expected, e.g. "14/14"')
    ci_gates_passed: list[GateId] = Field(max_length=len(GATE_IDS))
    safety_nets_count_before: int = Field(ge=0, le=1000)
    safety_nets_count_after: int = Field(ge=0, le=1000)
    performance_delta_median: str = Field(max_length=200, description='e.g. "+2.3%" or "N/A (...)"')
    performance_delta_p95: str = Field(max_length=200)
    git_commit: str = Field(pattern=r"^[0-9a-f]{40}$", description="full commit hash the phase completed at")
    completion_date: AwareDatetime = Field(description="UTC")
    evidence_blocks: list[EvidenceRef] = Field(default_factory=list, max_length=100_000)
    signature: TypedSignature | None = None

    @field_validator("ci_gates_passed")
    @classmethod
    def _unique(cls, gates: list[str]) -> list[str]:
        if len(set(gates)) != len(gates):
            raise ValueError("a gate is listed twice")
        return gates

    @field_validator("completion_date")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.utcoffset() != timezone.utc.utcoffset(None):
            raise ValueError("completion_date must be in UTC (Z or +00:00)")
        return value

    @property
    def baseline(self) -> tuple[int, int]:
        passed, expected = self.baseline_pass_count.split("/")
        return int(passed), int(expected)


def artifact_filename(phase: int) -> str:
    """The local file: ``.phase-N.complete.json``."""
    return f".phase-{phase}.complete.json"


def artifact_name(phase: int) -> str:
    """The Actions artifact (and git tag): ``phase-N-complete``."""
    return f"phase-{phase}-complete"
