"""Evidence block (the evidence block's fields): one line of ``evidence_blocks.jsonl``,
a pointer to lines of a file in the repository plus the sha256 of those
lines as they were when the block was recorded."""

from __future__ import annotations

import re
from datetime import datetime, timezone

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from tw_gates.schemas.consumer import check_relative_path

SNIPPET_LIMIT = 1000
EVIDENCE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$"
LINE_RANGE_PATTERN = r"^[1-9][0-9]{0,8}-[1-9][0-9]{0,8}$"


def parse_line_range(text: str) -> tuple[int, int]:
    """``"12-40"`` (or ``"12"``, meaning ``"12-12"``) as (first, last), 1-based inclusive."""
    match = re.fullmatch(r"\s*([0-9]+)\s*(?:-\s*([0-9]+)\s*)?", text or "")
    if not match:
        raise ValueError(f"line range {text!r} is not A-B (e.g. 12-40)")
    first = int(match.group(1))
    last = int(match.group(2) or first)
    if first < 1 or last < first:
        raise ValueError(f"line range {text!r} must satisfy 1 <= A <= B")
    return first, last


class EvidenceRef(BaseModel):
    """What a phase artifact keeps of an evidence block."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    evidence_id: str = Field(pattern=EVIDENCE_ID_PATTERN)
    file: str = Field(min_length=1, max_length=4096)
    lines: str = Field(pattern=LINE_RANGE_PATTERN, description="A-B, 1-based, inclusive")

    @field_validator("file")
    @classmethod
    def _inside_repo(cls, value: str) -> str:
        return check_relative_path(value)

    @field_validator("lines")
    @classmethod
    def _ordered(cls, value: str) -> str:
        parse_line_range(value)
        return value


class EvidenceBlock(EvidenceRef):
    model_config = ConfigDict(extra="forbid", frozen=True, title="tw-gates evidence block")

    phase: int = Field(ge=0, le=4)
    description: str = Field(min_length=1, max_length=4000)
    code_snippet: str = Field(max_length=SNIPPET_LIMIT, description="redacted, then cut to 1000 characters")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="of the full snippet, before redaction")
    timestamp: AwareDatetime = Field(description="UTC")

    @field_validator("timestamp")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.utcoffset() != timezone.utc.utcoffset(None):
            raise ValueError("timestamp must be in UTC (Z or +00:00)")
        return value

    def ref(self) -> EvidenceRef:
        return EvidenceRef(evidence_id=self.evidence_id, file=self.file, lines=self.lines)


class EvidenceRecord(EvidenceBlock):
    """One line of ``evidence_blocks.jsonl``: a block and its place in the hash chain
    (None in lines written before the log was a chain)."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="tw-gates evidence record")

    seq: int | None = Field(None, ge=1, description="position in the log, from 1")
    prev: str | None = Field(None, pattern=r"^[0-9a-f]{64}$", description="sha256 of the previous record's line")
    prev_id: str | None = Field(None, description="evidence_id of the previous record")
    kid: str | None = Field(None, max_length=128, description="key id of the record's MAC")
    mac: str | None = Field(None, pattern=r"^[0-9a-f]{64}$", description="HMAC-SHA256 of the line without kid and mac")

    def block(self) -> EvidenceBlock:
        return EvidenceBlock.model_validate(self.model_dump(exclude={"seq", "prev", "prev_id", "kid", "mac"}))
