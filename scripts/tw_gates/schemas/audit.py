"""Audit report: what ``tw-gates audit`` writes and ``tw-gates file-issues`` reads."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from tw_gates.schemas.severity import Severity


class CheckResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["pass", "fail", "warn", "skip"]
    detail: str = ""


class UnregisteredHit(BaseModel):
    """A renderer pattern found outside the consumer's registered code paths
    and not covered by a live exception."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    repo: str
    path: str
    line: int = Field(ge=1)
    pattern: str
    severity: Severity = "medium"


class AuditReport(BaseModel):
    model_config = ConfigDict(extra="forbid", title="tw-gates audit report")

    audit_id: str = Field(min_length=1, max_length=200)
    generated_at: AwareDatetime
    exit_code: int
    checks: dict[str, CheckResult] = Field(default_factory=dict)
    unregistered_hits: list[UnregisteredHit] = Field(default_factory=list)
