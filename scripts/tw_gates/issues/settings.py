"""The settings of ``tw-gates file-issues`` and its deadline."""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone
from pathlib import Path

from pydantic import Field, field_validator

from tw_gates.core.errors import UsageError
from tw_gates.core.settings import GitHubSettings, NotifySettings, env
from tw_gates.core.units import parse_duration
from tw_gates.issues.findings import REPO_NAME
from tw_gates.issues.tracker import DEFAULT_LABEL


class FileIssuesSettings(GitHubSettings, NotifySettings):
    audit: Path | None = Field(None, validation_alias=env("TW_AUDIT_REPORT", "audit"))
    central_repo: str | None = Field(None, validation_alias=env("TW_CENTRAL_REPO", "central_repo"))
    dry_run: bool = Field(False, validation_alias=env("TW_DRY_RUN", "dry_run"))
    max_issues: int = Field(10, ge=0, le=1000, validation_alias=env("MAX_ISSUES_PER_RUN", "max_issues"))
    audit_id: str | None = Field(None, min_length=1, max_length=200, validation_alias=env("TW_AUDIT_ID", "audit_id"))
    fallback_dir: Path = Field(Path("tw-gates-fallback"), validation_alias=env("TW_FALLBACK_DIR", "fallback_dir"))
    label: str = Field(DEFAULT_LABEL, pattern=r"^[^,\s][^,]{0,49}$", validation_alias=env("TW_ISSUE_LABEL", "label"))
    quota_threshold: int = Field(500, ge=0, validation_alias=env("TW_QUOTA_THRESHOLD", "quota_threshold"))
    # A duration from now ("15m"), an ISO-8601 time or epoch seconds.
    deadline: str = Field("15m", validation_alias=env("TW_DEADLINE", "deadline"))
    # Seconds between writes: GitHub asks for at least 1 between content-generating requests.
    # Whatever it is set to, writes stay under GitHub's 80 a minute and 500 an hour.
    github_write_interval_s: float = Field(
        1.0, ge=0, le=60, validation_alias=env("TW_GITHUB_WRITE_INTERVAL", "github_write_interval_s")
    )

    @field_validator("central_repo")
    @classmethod
    def _repo(cls, value: str | None) -> str | None:
        if value is not None and not REPO_NAME.match(value):
            raise ValueError("must be owner/name")
        return value

    def deadline_epoch(self, now: float | None = None) -> float:
        return parse_deadline(self.deadline, time.time() if now is None else now)


def parse_deadline(text: str, now: float) -> float:
    """``15m``/``900`` (from now), ``2026-01-01T12:00:00Z`` or epoch seconds."""
    raw = text.strip()
    if re.fullmatch(r"\d{9,}(\.\d+)?", raw):
        return float(raw)
    if re.match(r"^\d{4}-\d{2}-\d{2}", raw):
        try:
            moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            raise UsageError(f"--deadline: not a time: {text!r}") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.timestamp()
    return now + parse_duration(raw).total_seconds()
