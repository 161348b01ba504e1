"""G3: the green-light audit.

P0 checks (fatal, with their own exit codes):

* required status checks: for each registered consumer with
  ``required_checks``, its default branch must require every one of them,
  through classic branch protection or repository rulesets (the union of both:
  GitHub enforces both). Missing: exit 5. A check that cannot be confirmed is
  treated as missing (fail closed): no GITHUB_TOKEN, a repository the token
  cannot see, a bad token. A GitHub outage that survives the retries leaves no
  decision: exit 1 (the other checks still run and the report is written).
* baseline: present, valid and carrying a signature that verifies
  (TW_BASELINE_KEYS / TW_BASELINE_KEY). Missing or bad: exit 6.

Then, non-fatal (exit 2):

* performance: a current capture (``--current``) against the baseline: p50
  within x1.10, p95 within x1.25, p99 within x1.5 (each at least +0.5 ms),
  peak RSS within +30 MiB; all configurable. Captures of different corpora or
  targets cannot be compared: exit 1.
* unregistered hits: every renderer hit in the accepted consumer artifacts
  (the JSON Lines written by ``tw-gates ingest --out``, one file or a folder
  of shards, streamed, newest artifact per repository) whose path is outside the consumer's registered
  ``code_paths`` and not covered by a live exception. Severity comes from the
  consumer's registry entry, else the self-audit pattern catalog, else medium.

The report JSON (schemas/audit.py) is written whatever the verdict (only bad
input, exit 1, stops the audit before it), along with a job summary and an annotation per offending file."""

from __future__ import annotations

import json
import os
import uuid
from datetime import datetime, timezone

from tw_gates.chain.audit_checks import AuditOutcome, Check, check_baseline, check_required_checks, overall_exit
from tw_gates.chain.audit_settings import AuditSettings, Progress
from tw_gates.chain.unregistered_hits import check_unregistered_hits
from tw_gates.core import metrics
from tw_gates.core.fsio import atomic_write_text
from tw_gates.schemas.audit import AuditReport, UnregisteredHit
from tw_gates.schemas.registry import load_registry
from tw_gates.schemas.severity import SEVERITIES

# --------------------------------------------------------------------------- the gate


def _audit_id(settings: AuditSettings, now: datetime) -> str:
    if settings.audit_id:
        return settings.audit_id

    run_id = os.environ.get("GITHUB_RUN_ID")
    if run_id:
        return f"gh-{run_id}-{os.environ.get('GITHUB_RUN_ATTEMPT', '1')}"
    return f"local-{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def audit(
    settings: AuditSettings, *, progress: Progress = lambda _line: None, today=None, thresholds=None
) -> AuditOutcome:

    now = datetime.now(timezone.utc).replace(microsecond=0)
    today = today or now.date()
    registry = load_registry(settings.registry)
    checks: list[Check] = []
    checks += check_required_checks(settings, registry, progress=progress)
    baseline_checks, _ = check_baseline(settings, thresholds)
    checks += baseline_checks
    hit_checks, hits, expired = check_unregistered_hits(settings, registry, today=today, progress=progress)
    checks += hit_checks
    code = overall_exit(checks)
    report = AuditReport(
        audit_id=_audit_id(settings, now),
        generated_at=now,
        exit_code=int(code),
        checks={c.name: c.result() for c in checks},
        unregistered_hits=hits,
    )
    # Redacted as one text (the default of atomic_write_text): per field, a
    # report of 100,000 hits spends most of its time in the redactor.
    atomic_write_text(settings.report, json.dumps(report.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n")
    _record_metrics(checks, hits)
    return AuditOutcome(report=report, checks=checks, report_path=settings.report, expired_exceptions=expired)


def _record_metrics(checks: list[Check], hits: list[UnregisteredHit]) -> None:

    sink = metrics.current()
    failed = sink.gauge("tw_gates_audit_check_failed")
    for check in checks:
        if not check.name.startswith("required_checks "):  # one series per consumer would be unbounded
            failed.labels(check=check.name).set(1 if check.status == "fail" else 0)
    gauge = sink.gauge("tw_gates_audit_unregistered_hits")
    for severity in SEVERITIES:
        gauge.labels(severity=severity).set(sum(1 for h in hits if h.severity == severity))
