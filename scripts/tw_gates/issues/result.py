"""What one run of file-issues did: its actions, its result, and its state while it
runs (metrics, and the findings still to be saved to the fallback artifact)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal, get_args

from pydantic import BaseModel, Field

from tw_gates.core import metrics
from tw_gates.core.errors import ExitCode
from tw_gates.core.fsio import atomic_write_json
from tw_gates.core.progress import Progress
from tw_gates.core.redact import REDACTOR
from tw_gates.issues.findings import Finding, repo_key
from tw_gates.issues.settings import FileIssuesSettings
from tw_gates.issues.tracker import TrackerError
from tw_gates.schemas.consumer import utc_now_iso
from tw_gates.schemas.issue_fallback import FallbackReason, IssueFallback

# The counters every run declares at 0 (besides the failures by reason).
COUNTED = ("audit_digest_created_total", "audit_fp_marked_total", "audit_findings_filed_total")


class IssueAction(BaseModel):
    action: Literal[
        "created", "updated", "unchanged", "closed", "would-create", "would-update", "would-close", "failed"
    ]
    kind: str
    name: str
    number: int | None = None
    url: str | None = None
    findings: int = 0
    detail: str = ""


class FileIssuesResult(BaseModel):
    central_repo: str
    audit_id: str
    mode: str
    why: str = ""
    findings: int
    repos: int
    dry_run: bool = False
    actions: list[IssueAction] = Field(default_factory=list)
    fallback_path: str | None = None
    fallback_reason: str | None = None
    fallback_findings: int = 0
    fallback_detail: str = ""
    quota_remaining: int | None = None
    api_calls: int = 0
    api_writes: int = 0
    message: str = ""

    @property
    def exit_code(self) -> ExitCode:
        # body_limit is not a failure: the issue exists, the rest is in the artifact.
        failed = self.fallback_reason is not None and self.fallback_reason != "body_limit"
        return ExitCode.REJECTED if failed else ExitCode.OK

    def count(self, action: str) -> int:
        return sum(1 for a in self.actions if a.action == action)


class FilingRun:
    """One run's state: what was written, what is still to be saved."""

    def __init__(
        self,
        settings: FileIssuesSettings,
        findings: list[Finding],
        audit_id: str,
        echo: Progress,
        warn: Progress,
    ) -> None:
        self.settings = settings
        self.findings = findings
        self.audit_id = audit_id
        self.echo = echo
        self.warn = warn
        self.sink = metrics.current()
        self.result = FileIssuesResult(
            central_repo=settings.central_repo or "",
            audit_id=audit_id,
            mode="none",
            findings=len(findings),
            repos=len({repo_key(f.repo) for f in findings}),
            dry_run=settings.dry_run,
        )
        self.unfiled: dict[str, Finding] = {}
        self.reason: FallbackReason | None = None
        self.detail = ""
        self.issue_writes = 0

    # -- metrics --------------------------------------------------------------------
    def declare_metrics(self) -> None:
        """Every series at 0 from the first run on, so ``increase()`` sees the first event."""
        for reason in get_args(FallbackReason):
            if reason != "body_limit":
                self.count_failure(reason, 0)
        for name in COUNTED:
            self.sink.counter(name)

    def count_failure(self, reason: str, issues: int = 1) -> None:
        self.sink.counter("audit_issue_create_failures_total").labels(reason=reason).inc(issues)

    def count(self, name: str, amount: int = 1) -> None:
        self.sink.counter(name).inc(amount)

    # -- fallback -------------------------------------------------------------------
    def save(self, findings: list[Finding], reason: FallbackReason, detail: str) -> None:
        for finding in findings:
            self.unfiled.setdefault(finding.id, finding)
        if self.reason is None or self.reason == "body_limit":
            self.reason, self.detail = reason, detail

    def write_fallback(self) -> Path | None:
        if not self.unfiled:
            return None
        doc = IssueFallback(
            generated_at=utc_now_iso(),
            audit_id=self.audit_id,
            central_repo=self.settings.central_repo or "",
            reason=self.reason or "github_unavailable",
            detail=REDACTOR.redact(" ".join(self.detail.split())),
            issues_written=self.issue_writes,
            findings=[f.redacted() for f in sorted(self.unfiled.values(), key=lambda f: f.sort_key)],
        )
        safe_id = re.sub(r"[^A-Za-z0-9._-]+", "_", self.audit_id)[:80] or "audit"
        path = self.settings.fallback_dir / f"issue-fallback-{safe_id}.json"
        atomic_write_json(path, doc.model_dump(mode="json"))
        self.result.fallback_path = str(path)
        self.result.fallback_reason = self.reason
        self.result.fallback_findings = len(doc.findings)
        self.result.fallback_detail = doc.detail
        return path


def reason_of(error: TrackerError) -> FallbackReason:
    return {
        "permission": "permission_denied",
        "rate_limit": "rate_limit",
        "unavailable": "github_unavailable",
        "rejected": "rejected",
    }[error.category]  # type: ignore[return-value]
