"""What a scan finds: one hit per pattern and line, and the scan's totals."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tw_gates.core.signing import sha256_hex
from tw_gates.schemas.severity import Severity

# Where a hit lies: production code, or code nobody ships (the audit files
# issues for production hits only, by default, and counts the rest).
Context = Literal["production", "test", "docs", "example", "vendored", "generated"]
CONTEXTS: tuple[Context, ...] = ("production", "test", "docs", "example", "vendored", "generated")
# How a hit was found: on the syntax tree, by a template language's lexer, or
# by the catalog's regex (a file that did not parse, or a custom pattern).
Scanner = Literal["syntax", "template", "line"]
# Why a hit is harmless as written: its decisive argument is a constant
# literal, or passes through a known sanitizer. Such hits are dropped unless
# the self-audit is asked to report them (at `info`).
Argument = Literal["constant", "sanitized"]


@dataclass(frozen=True, slots=True)
class Finding:
    """What a scanner reports for one file: the line (1-based), the pattern
    id and, for a harmless argument, why it is harmless."""

    line: int
    pattern: str
    argument: Argument | None = None
    scanner: Scanner | None = None  # None: the scanner of the file


class FoundHit(BaseModel):
    """A hit as the scan sees it; the artifact keeps path, line and pattern
    (schema 1.0) and the optional context, scanner and argument."""

    model_config = ConfigDict(frozen=True)

    path: str
    line: int
    pattern: str
    severity: Severity
    # sha256 of the pattern id, path and the trimmed line text: survives the
    # line moving up or down, changes when the code on it changes.
    fingerprint: str
    context: Context = "production"
    scanner: Scanner = "line"
    argument: Argument | None = None


def fingerprint(pattern: str, path: str, line_text: str) -> str:
    """The hit's fingerprint: pattern, path and the line's words."""
    return sha256_hex(f"{pattern}\0{path}\0{' '.join(line_text.split())}")


class ScanResult(BaseModel):
    files_scanned: int = 0
    # files whose text was read in full by a scanner (the rest were ruled out
    # by the literal prefilter)
    files_parsed: int = 0
    bytes_read: int = 0
    skipped: dict[str, int] = Field(default_factory=dict)
    hits: list[FoundHit] = Field(default_factory=list)
    # hits left out of the artifact because their argument is harmless
    harmless: int = 0
