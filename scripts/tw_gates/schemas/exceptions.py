"""Audit exceptions (``audit_exceptions.yml``): renderer use outside a
consumer's registered ``code_paths`` that the security team accepted, for a
while. Each exception names who approved it and when it expires; an expired
exception no longer hides anything (the audit reports it as expired)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tw_gates.core.errors import UsageError
from tw_gates.core.settings import describe_validation_error
from tw_gates.core.yaml_lines import LineDict, YamlError, load_yaml
from tw_gates.schemas.consumer import REPO_PATTERN, check_relative_path


class AuditException(BaseModel):
    model_config = ConfigDict(extra="forbid")

    repo: str = Field(pattern=REPO_PATTERN, description="owner/name of the consumer")
    path: str = Field(
        min_length=1,
        max_length=4096,
        description=(
            "glob relative to the consumer's root: ** spans folders, * and ? stay within one; "
            "without '/', it matches the file name anywhere; a folder covers what is below it"
        ),
    )
    pattern: str | None = Field(None, description="renderer pattern id; absent: any pattern")
    reason: str = Field(min_length=1, max_length=2000)
    approver: str = Field(min_length=1, max_length=200, description="who accepted the risk")
    expires: date = Field(description="last day (UTC) the exception counts")

    @field_validator("path")
    @classmethod
    def _relative(cls, value: str) -> str:

        return check_relative_path(value)

    def live_on(self, today: date) -> bool:
        return today <= self.expires


class AuditExceptions(BaseModel):
    model_config = ConfigDict(extra="forbid", title="tw-gates audit exceptions 1.0")

    schema_version: Literal["1.0"] = "1.0"
    exceptions: list[AuditException] = Field(default_factory=list)


def load_exceptions(path: str | Path) -> tuple[AuditExceptions, list[int]]:
    """The exceptions file and the line each entry starts on (for annotations)."""

    if not Path(path).is_file():
        raise UsageError(f"exceptions file not found: {path}")
    try:
        data = load_yaml(Path(path))
    except YamlError as exc:
        raise UsageError(f"cannot read exceptions file: {exc}") from None
    try:
        model = AuditExceptions.model_validate(data or {})
    except ValidationError as exc:
        raise UsageError(describe_validation_error(exc, f"exceptions file {path}")) from None
    entries = data.get("exceptions") if isinstance(data, dict) else None
    lines = [e.line if isinstance(e, LineDict) else 0 for e in (entries or [])]
    return model, lines
