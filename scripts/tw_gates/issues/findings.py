"""The audit's unregistered hits as findings: stable ids, redaction, repository keys."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tw_gates.core.errors import UsageError
from tw_gates.core.fsio import read_input
from tw_gates.core.markdown import clean_text
from tw_gates.core.redact import REDACTOR
from tw_gates.core.settings import describe_validation_error
from tw_gates.core.signing import canonical_bytes, sha256_hex
from tw_gates.schemas.audit import AuditReport
from tw_gates.schemas.consumer import REPO_PATTERN
from tw_gates.schemas.issue_fallback import FallbackFinding
from tw_gates.schemas.severity import SEVERITY_RANK

MAX_AUDIT_BYTES = 256 * 1024 * 1024
REPO_NAME = re.compile(REPO_PATTERN)


@dataclass(frozen=True)
class Finding:
    repo: str
    path: str
    line: int
    pattern: str
    severity: str

    @cached_property
    def id(self) -> str:
        """Stable across runs and severity changes: the same code at the same place."""
        return "f-" + sha256_hex(canonical_bytes([self.repo.lower(), self.path, self.line, self.pattern]))[:16]

    @property
    def sort_key(self) -> tuple:
        return (SEVERITY_RANK[self.severity], self.repo.lower(), self.path, self.line, self.pattern)

    def record(self, false_positive: bool) -> dict[str, Any]:
        return {
            "id": self.id,
            "repo": self.repo,
            "path": self.path,
            "line": self.line,
            "pattern": self.pattern,
            "severity": self.severity,
            "false_positive": false_positive,
        }

    def redacted(self) -> FallbackFinding:
        return FallbackFinding(
            id=self.id,
            repo=redact_path(self.repo),
            path=redact_path(self.path),
            line=self.line,
            pattern=REDACTOR.redact(self.pattern, heuristics=True),
            severity=self.severity,
        )


def redact_path(path: str) -> str:
    """Secrets out of a path. The heuristics run per segment: a token used as a
    folder name goes, a long but ordinary path stays readable."""
    return "/".join(REDACTOR.redact(segment, heuristics=True) for segment in REDACTOR.redact(path).split("/"))


def display_name(repo: str) -> str:
    """A repository name safe for a log line, a title or a table: one line,
    redacted, no invisible characters (a newline could start a workflow command)."""
    return clean_text(redact_path(repo), 140, heuristics=False)


def repo_key(repo: str) -> str:
    """The marker key of a repository: its lower-cased name (GitHub names are
    case-insensitive); a malformed name gets a hash so it cannot break the marker."""
    return repo.lower() if REPO_NAME.match(repo) else "x-" + sha256_hex(repo.encode())[:16]


def findings_from(report: AuditReport) -> list[Finding]:
    """Unregistered hits as findings, one per id (the worst severity wins)."""
    by_id: dict[str, Finding] = {}
    for hit in report.unregistered_hits:
        finding = Finding(hit.repo, hit.path, hit.line, hit.pattern, hit.severity)
        old = by_id.get(finding.id)
        if old is None or SEVERITY_RANK[finding.severity] < SEVERITY_RANK[old.severity]:
            by_id[finding.id] = finding
    return sorted(by_id.values(), key=lambda f: f.sort_key)


def load_audit(path: Path) -> AuditReport:
    data = read_input(path, "audit report", max_bytes=MAX_AUDIT_BYTES)
    try:
        # JSON-mode validation straight from the bytes (pydantic's fast path).
        return AuditReport.model_validate_json(data)
    except ValidationError as exc:
        raise UsageError(describe_validation_error(exc, f"audit report {path}")) from None
