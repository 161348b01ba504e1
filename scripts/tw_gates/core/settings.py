"""Typed settings from the environment and command-line flags (pydantic v2).

Every gate declares its settings as a subclass of ``EnvSettings``; fields take
their value from, in order: a command-line flag (passed to ``load_settings``),
the environment variable named by the field's alias, the default. Secrets are
``SecretStr`` fields: loading registers them for redaction and, on a runner,
masks them with ``::add-mask::``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

from tw_gates.core import runner
from tw_gates.core.errors import UsageError
from tw_gates.core.redact import REDACTOR
from tw_gates.core.signing import KeyRing, parse_keys_json

S = TypeVar("S", bound="EnvSettings")


def env(name: str, *more: str) -> Any:
    """Alias a field to environment variable(s) while still allowing the
    field name itself (used for flag overrides)."""
    return AliasChoices(name, *more)


class EnvSettings(BaseSettings):
    model_config = SettingsConfigDict(
        extra="ignore",
        populate_by_name=True,
        env_ignore_empty=True,  # an empty action input means "not set"
        case_sensitive=True,
    )


class GitHubSettings(EnvSettings):
    github_token: SecretStr | None = Field(None, validation_alias=env("GITHUB_TOKEN", "github_token"))
    github_api_url: str = Field("https://api.github.com", validation_alias=env("GITHUB_API_URL", "github_api_url"))
    github_repository: str | None = Field(None, validation_alias=env("GITHUB_REPOSITORY", "github_repository"))
    github_timeout_s: float = Field(30.0, gt=0, validation_alias=env("TW_GITHUB_TIMEOUT", "github_timeout_s"))
    github_retries: int = Field(5, ge=0, le=20, validation_alias=env("TW_GITHUB_RETRIES", "github_retries"))
    # Base for urllib3's exponential backoff between retries of 5xx answers.
    github_backoff_s: float = Field(1.0, ge=0, validation_alias=env("TW_GITHUB_BACKOFF", "github_backoff_s"))

    @field_validator("github_api_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")


class SigningSettings(EnvSettings):
    hmac_key: SecretStr | None = Field(None, validation_alias=env("TW_HMAC_KEY", "hmac_key"))
    hmac_key_id: str = Field("default", validation_alias=env("TW_HMAC_KEY_ID", "hmac_key_id"))
    # Raw JSON text; parsed by key_ring() so a bad value gives our message, not pydantic's.
    hmac_keys: SecretStr | None = Field(None, validation_alias=env("TW_HMAC_KEYS", "hmac_keys"))

    def key_ring(self) -> KeyRing:
        keys = parse_keys_json(self.hmac_keys.get_secret_value() if self.hmac_keys else None)
        REDACTOR.register(*keys.values())
        return KeyRing(
            keys,
            signing_key=self.hmac_key.get_secret_value() if self.hmac_key else None,
            signing_kid=self.hmac_key_id,
        )


class NotifySettings(EnvSettings):
    slack_webhook_url: SecretStr | None = Field(None, validation_alias=env("SLACK_WEBHOOK_URL", "slack_webhook_url"))


class MetricsSettings(EnvSettings):
    # Unset: `.metrics/` on a runner (node_exporter's textfile collector, the job's
    # artifacts), nothing on a person's machine (no stray folder in their checkout).
    metrics_dir: Path | None = Field(None, validation_alias=env("TW_METRICS_DIR", "metrics_dir"))
    pushgateway_url: str | None = Field(None, validation_alias=env("TW_PUSHGATEWAY_URL", "pushgateway_url"))


def _secret_values(model: EnvSettings) -> list[str]:
    values = []
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, SecretStr):
            values.append(value.get_secret_value())
    return values


def load_settings(cls: type[S], overrides: Mapping[str, Any] | None = None) -> S:
    """Build settings from flags (``overrides``; None values are ignored) and
    the environment, turning validation errors into one clear message."""
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    try:
        settings = cls(**given)
    except ValidationError as exc:
        raise UsageError(describe_settings_error(exc, cls)) from None
    except SettingsError as exc:
        raise UsageError(f"invalid environment: {exc}") from None
    register_secrets(*_secret_values(settings))
    return settings


def register_secrets(*values: str) -> None:
    """Secrets the run learned: redacted from everything written, and
    ``::add-mask::``ed on a runner."""
    for secret in REDACTOR.register(*values):
        runner.mask(secret)


def setting_name(cls: type[BaseSettings], name: str) -> str:
    """What the user set, as they set it: a flag (``--max-issues``), else the
    environment variable (``MAX_ISSUES_PER_RUN``, which an action input sets)."""
    return "--" + name.replace("_", "-") if name in cls.model_fields else name


def describe_settings_error(exc: ValidationError, cls: type[BaseSettings]) -> str:
    """Settings that did not validate, as one line naming the flag or variable,
    never the settings class: ``invalid --max-issues: Input should be ...``."""
    parts = []
    for error in exc.errors(include_url=False, include_input=False):
        location = error.get("loc", ())
        name = setting_name(cls, str(location[0])) if location else "settings"
        inner = ".".join(str(p) for p in location[1:])
        parts.append(f"{name}{'.' + inner if inner else ''}: {error.get('msg', 'invalid')}")
    more = f" (+{len(parts) - 5} more)" if len(parts) > 5 else ""
    return f"invalid {'; '.join(parts[:5])}{more}"


def describe_validation_error(exc: ValidationError, what: str = "input") -> str:
    """A pydantic ValidationError as one line: field: problem; field: problem."""
    parts = []
    for error in exc.errors(include_url=False, include_input=False):
        location = ".".join(str(p) for p in error.get("loc", ())) or what
        parts.append(f"{location}: {error.get('msg', 'invalid')}")
    shown = "; ".join(parts[:5])
    more = f" (+{len(parts) - 5} more)" if len(parts) > 5 else ""
    return f"invalid {what}: {shown}{more}"
