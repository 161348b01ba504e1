"""Typed settings from the environment and command-line flags (pydantic v2).

Every gate declares its settings as a subclass of ``EnvSettings``; fields take
their value from, in order: a command-line flag (passed to ``load_settings``),
the environment variable named by the field's alias, the default. Secrets are
``SecretStr`` fields: loading registers them for redaction and, on a runner,
masks them with ``::add-mask::``.

``EnvSettings`` reads the environment itself rather than through
pydantic-settings: that package imports asyncio and its many sources at start-up
(about 0.3 s on a 2-core runner, more than a whole gate may take before it does
its work), and tw-gates needs one source only. The rules are pydantic-settings'
for the options used here: variable names are case-sensitive, an empty value
means "not set", the first alias set wins, a list/dict/model field is read as
JSON unless marked ``NoDecode``, unknown keys are ignored."""

from __future__ import annotations

import os
import types
from collections.abc import Mapping
from contextvars import ContextVar
from functools import cache
from typing import Any, NamedTuple, TypeVar, Union, get_args, get_origin

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from tw_gates.core import json_text, runner
from tw_gates.core.errors import UsageError
from tw_gates.core.redact import REDACTOR
from tw_gates.core.signing import KeyRing, parse_keys_json

S = TypeVar("S", bound="EnvSettings")


def env(name: str, *more: str) -> Any:
    """Alias a field to environment variable(s) while still allowing the
    field name itself (used for flag overrides)."""
    return AliasChoices(name, *more)


class NoDecode:
    """Field metadata, ``Annotated[list[str], NoDecode]``: the environment
    value reaches the field's validators as the raw string, not parsed as JSON
    (pydantic-settings' marker of the same name is honoured too)."""


class _EnvField(NamedTuple):
    name: str
    keys: tuple[str, ...]  # the names a value may be given under (flags: the field name)
    variables: tuple[str, ...]  # the environment variables read, first set wins
    json: bool  # a list/dict/model field: the environment value is JSON


class EnvSettings(BaseModel):
    """Settings whose fields the environment fills where no value is given."""

    model_config = ConfigDict(
        extra="ignore",
        populate_by_name=True,
        validate_default=True,
        arbitrary_types_allowed=True,
        # Built on first use, not at import: a run uses one settings class of
        # the dozen its imports define (each build is milliseconds).
        defer_build=True,
    )

    def __init__(self, **values: Any) -> None:
        if _READ_ENVIRONMENT.get():
            values = _with_environment(type(self), values)
        super().__init__(**values)

    @classmethod
    def without_environment(cls: type[S], **values: Any) -> S:
        """Settings from ``values`` and the defaults only: the environment is not
        read (the demo runs every gate with its own values, whatever is set)."""
        token = _READ_ENVIRONMENT.set(False)
        try:
            return cls(**values)
        finally:
            _READ_ENVIRONMENT.reset(token)


# Off only inside EnvSettings.without_environment (pydantic calls __init__ for
# model_validate too, so a flag is the one way through).
_READ_ENVIRONMENT: ContextVar[bool] = ContextVar("tw_gates_read_environment", default=True)


def _with_environment(cls: type[EnvSettings], values: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(values)
    for field in _env_fields(cls):
        if any(key in merged for key in field.keys):
            continue  # a flag (or a caller) gave it: the environment does not override
        for variable in field.variables:
            text = os.environ.get(variable)
            if text:  # empty means "not set" (an action input left blank)
                merged[variable] = _decode(variable, text) if field.json else text
                break
    return merged


def _decode(variable: str, text: str) -> Any:
    try:
        return json_text.loads(text)
    except ValueError as exc:
        raise UsageError(f"invalid environment: {variable} is not valid JSON ({exc})") from None


@cache
def _env_fields(cls: type[EnvSettings]) -> tuple[_EnvField, ...]:
    found = []
    for name, info in cls.model_fields.items():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            variables = tuple(choice for choice in alias.choices if isinstance(choice, str))
        elif isinstance(alias, str):
            variables = (alias,)
        else:
            variables = (info.alias or name,)
        keys = tuple(dict.fromkeys((name, *variables)))
        no_decode = any(getattr(meta, "__name__", None) == "NoDecode" for meta in info.metadata)
        found.append(_EnvField(name, keys, variables, not no_decode and _is_complex(info.annotation)))
    return tuple(found)


def _is_complex(annotation: Any) -> bool:
    """A type whose environment value is JSON (pydantic-settings' rule)."""
    origin = get_origin(annotation)
    if origin is Union or isinstance(annotation, types.UnionType):
        return any(_is_complex(arg) for arg in get_args(annotation) if arg is not type(None))
    kind = origin or annotation
    if not isinstance(kind, type) or issubclass(kind, (str, bytes, SecretStr)):
        return False
    return issubclass(kind, (BaseModel, Mapping, list, tuple, set, frozenset, dict)) or hasattr(
        kind, "__dataclass_fields__"
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


def _secret_values(model: object) -> list[str]:
    values = []
    # getattr: a plain (non-pydantic) settings class has no fields to scan.
    for name in getattr(type(model), "model_fields", {}):
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
    register_secrets(*_secret_values(settings))
    return settings


def register_secrets(*values: str) -> None:
    """Secrets the run learned: redacted from everything written, and
    ``::add-mask::``ed on a runner."""
    for secret in REDACTOR.register(*values):
        runner.mask(secret)


def setting_name(cls: type[BaseModel], name: str) -> str:
    """What the user set, as they set it: a flag (``--max-issues``), else the
    environment variable (``MAX_ISSUES_PER_RUN``, which an action input sets)."""
    return "--" + name.replace("_", "-") if name in cls.model_fields else name


def describe_settings_error(exc: ValidationError, cls: type[BaseModel]) -> str:
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
