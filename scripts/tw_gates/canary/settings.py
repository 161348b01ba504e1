"""The canary's settings (flags and TW_CANARY_* variables), its thresholds
and baseline files, and its timing (window and interval)."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import AwareDatetime, BaseModel, Field, SecretStr, field_validator

from tw_gates import DATA_DIR
from tw_gates.canary.sources import MAX_INPUT_BYTES
from tw_gates.core.errors import UsageError
from tw_gates.core.fsio import load_model
from tw_gates.core.keyrings import CanaryKeys
from tw_gates.core.settings import GitHubSettings, NotifySettings, env
from tw_gates.core.units import parse_duration
from tw_gates.schemas.canary import NAME_PATTERN, CanaryBaseline, CanaryThresholds
from tw_gates.schemas.consumer import REPO_PATTERN

DEFAULT_THRESHOLDS = DATA_DIR / "canary_thresholds.yml"
DEFAULT_DISPATCH_EVENT = "tw-canary-rollback"


class CanarySettings(GitHubSettings, CanaryKeys, NotifySettings):
    baseline: Path | None = Field(None, validation_alias=env("TW_CANARY_BASELINE", "baseline"))
    metrics: Path | None = Field(None, validation_alias=env("TW_CANARY_METRICS", "metrics"))
    prometheus_url: str | None = Field(None, validation_alias=env("TW_PROMETHEUS_URL", "prometheus_url"))
    prometheus_token: SecretStr | None = Field(None, validation_alias=env("TW_PROMETHEUS_TOKEN", "prometheus_token"))
    prometheus_timeout_s: float = Field(
        30.0, gt=0, validation_alias=env("TW_PROMETHEUS_TIMEOUT", "prometheus_timeout_s")
    )
    prometheus_retries: int = Field(2, ge=0, le=10, validation_alias=env("TW_PROMETHEUS_RETRIES", "prometheus_retries"))
    queries: Path | None = Field(None, validation_alias=env("TW_CANARY_QUERIES", "queries"))
    thresholds: Path | None = Field(None, validation_alias=env("TW_CANARY_THRESHOLDS", "thresholds"))
    window: str = Field("48h", validation_alias=env("TW_CANARY_WINDOW", "window"))
    interval: str = Field("1h", validation_alias=env("TW_CANARY_INTERVAL", "interval"))
    start: AwareDatetime | None = Field(None, validation_alias=env("TW_CANARY_START", "start"))
    at: AwareDatetime | None = Field(None, validation_alias=env("TW_CANARY_AT", "at"))
    name: str = Field("default", pattern=NAME_PATTERN, validation_alias=env("TW_CANARY_NAME", "name"))
    revision: str | None = Field(None, max_length=200, validation_alias=env("TW_CANARY_REVISION", "revision"))
    central_repo: str | None = Field(None, validation_alias=env("TW_CENTRAL_REPO", "central_repo"))
    dispatch_event: str = Field(
        DEFAULT_DISPATCH_EVENT, validation_alias=env("TW_CANARY_DISPATCH_EVENT", "dispatch_event")
    )
    # How long a rollback dispatch GitHub did not accept is retried before it is reported as not sent.
    dispatch_timeout_s: float = Field(
        60.0, gt=0, le=900, validation_alias=env("TW_CANARY_DISPATCH_TIMEOUT", "dispatch_timeout_s")
    )
    state_file: Path | None = Field(None, validation_alias=env("TW_CANARY_STATE_FILE", "state_file"))
    # Refuse to run without TW_CANARY_KEY (canary.yml sets it unless the caller opts out).
    require_key: bool = Field(False, validation_alias=env("TW_CANARY_REQUIRE_KEY", "require_key"))
    report: Path | None = Field(None, validation_alias=env("TW_CANARY_REPORT", "report"))
    # The cap every tw-gates issue filer honours (file-issues too); 0: no rollback issue.
    max_issues: int = Field(10, ge=0, le=1000, validation_alias=env("MAX_ISSUES_PER_RUN", "max_issues"))
    dry_run: bool = Field(False, validation_alias=env("TW_CANARY_DRY_RUN", "dry_run"))

    @field_validator("central_repo")
    @classmethod
    def _repo(cls, value: str | None) -> str | None:
        if value is not None and not re.match(REPO_PATTERN, value):
            raise ValueError("must be OWNER/REPO")
        return value

    @field_validator("dispatch_event")
    @classmethod
    def _event(cls, value: str) -> str:
        # GitHub limits event_type to 100 characters.
        if not (0 < len(value) <= 100):
            raise ValueError("must be 1 to 100 characters (or 'none' to send no dispatch)")
        return value

    @property
    def dispatch_enabled(self) -> bool:
        return self.dispatch_event.lower() not in ("none", "off", "false")


def load_thresholds(path: Path | None) -> CanaryThresholds:
    return load_model(path or DEFAULT_THRESHOLDS, CanaryThresholds, "thresholds file", max_bytes=MAX_INPUT_BYTES)


def load_baseline(path: Path) -> CanaryBaseline:
    return load_model(path, CanaryBaseline, "baseline file", max_bytes=MAX_INPUT_BYTES)


class Timing(BaseModel):
    window_s: int
    interval_s: int

    @property
    def intervals(self) -> int:
        return self.window_s // self.interval_s


def parse_timing(window: str, interval: str) -> Timing:
    window_s = parse_duration(window).total_seconds()
    interval_s = parse_duration(interval).total_seconds()
    if interval_s < 60 or interval_s != int(interval_s):
        raise UsageError(f"--interval must be a whole number of seconds, at least 1m (got {interval!r})")
    if window_s < interval_s or window_s % interval_s:
        raise UsageError(f"--window ({window}) must be a whole multiple of --interval ({interval})")
    return Timing(window_s=int(window_s), interval_s=int(interval_s))
