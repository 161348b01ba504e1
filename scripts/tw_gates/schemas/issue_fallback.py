"""The S2 fallback artifact: every finding ``tw-gates file-issues`` could not file.

Written (redacted, atomically) into ``--fallback-dir`` when the token may not
write issues, the API quota is exhausted, GitHub fails mid-run, or an issue body
would pass GitHub's size limit. The workflow uploads it as an artifact; nothing
the audit found is ever only in a log."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tw_gates.schemas.audit import Severity

FallbackReason = Literal[
    "no_token",  # no GITHUB_TOKEN at all
    "permission_denied",  # the token may not write issues in the central repository
    "permission_unknown",  # the write probe got no clear answer (5xx, timeout)
    "rate_limit",  # quota exhausted, or waiting for it would pass the deadline
    "github_unavailable",  # 5xx after retries, timeouts, connection errors mid-run
    "rejected",  # GitHub refused an issue (422)
    "body_limit",  # more findings than fit in one issue body (65,536 characters)
]


class FallbackFinding(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="stable finding id, as shown in the issues (f-<16 hex>)")
    repo: str
    path: str
    line: int = Field(ge=1)
    pattern: str
    severity: Severity


class IssueFallback(BaseModel):
    model_config = ConfigDict(extra="forbid", title="tw-gates issue fallback 1.0")

    schema_version: Literal["1.0"] = "1.0"
    kind: Literal["tw-gates-issue-fallback"] = "tw-gates-issue-fallback"
    generated_at: str = Field(description="UTC timestamp")
    audit_id: str
    central_repo: str
    reason: FallbackReason = Field(description="why the first finding here could not be filed")
    detail: str = Field(description="the error, one line, redacted")
    issues_written: int = Field(ge=0, description="issue writes that succeeded before the fallback")
    findings: list[FallbackFinding] = Field(description="every finding not filed, redacted")
