"""What a scan finds: one hit per pattern and line, and the scan's totals."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from tw_gates.schemas.severity import Severity


class FoundHit(BaseModel):
    """A hit as the scan sees it; the artifact keeps path, line and pattern."""

    model_config = ConfigDict(frozen=True)

    path: str
    line: int
    pattern: str
    severity: Severity
    # sha256 of the pattern id, path and the trimmed line text: survives the
    # line moving up or down, changes when the code on it changes.
    fingerprint: str


class ScanResult(BaseModel):
    files_scanned: int = 0
    skipped: dict[str, int] = Field(default_factory=dict)
    hits: list[FoundHit] = Field(default_factory=list)
