"""Steps 7-9: the green-light audit (G3) of the accepted artifacts, the
issues it would file (R1/S2, offline) and the audit again after the
security team's triage."""

from __future__ import annotations

import json
import os
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import yaml

from tw_gates.chain.audit import AuditSettings, audit
from tw_gates.core.errors import ExitCode
from tw_gates.core.fsio import atomic_write_text
from tw_gates.core.settings import load_settings
from tw_gates.demo.model import (
    APPROVER,
    CODE_PATHS,
    CONSUMER_BRANCH,
    CONSUMER_REPO,
    EXCEPTION_DAYS,
    Demo,
    Outcome,
    count_by_severity,
    explicit,
    show,
)
from tw_gates.issues.file_issues import findings_from, load_audit, plan_issues
from tw_gates.parser.baseline import Thresholds

# --- 7. G3 before triage --------------------------------------------------------------------

REGISTRY_YAML = f"""\
# The demo's consumer registry: the bundled example consumer. It lists no
# required_checks: the example is not on GitHub, so there is no branch
# protection to ask about and the audit's P0 check is skipped.
schema_version: "1.0"
consumers:
  - repo: {CONSUMER_REPO}
    default_branch: {CONSUMER_BRANCH}
    code_paths: {json.dumps(CODE_PATHS)}
"""

NO_EXCEPTIONS_YAML = """\
# The security team has approved no exception yet (step 9 of the demo writes them).
schema_version: "1.0"
exceptions: []
"""


# The demo's two captures are taken seconds apart on whatever else the machine
# is doing (step 6 takes them side by side); the gate's defaults (p50 x1.10,
# p95 x1.25, p99 x1.5, +0.5 ms) are for captures made under quiet, equal
# conditions. Millisecond parses on a shared 2-core machine under load differed
# by up to x1.8 between two such captures (load 7), so the demo allows x3 (p99
# x4) and 5 ms: a parser several times slower still shows, the neighbours' load
# does not.
DEMO_PERF_THRESHOLDS = {
    "p50_ratio": 3.0,
    "p95_ratio": 3.0,
    "p99_ratio": 4.0,
    "rss_increase_mib": 30.0,
    "min_delta_ms": 5.0,
}


def _audit(demo: Demo, report_name: str):
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    settings = explicit(
        AuditSettings,
        report=demo.path("audit", report_name),
        registry=demo.path("registry.yml"),
        exceptions=demo.path("audit_exceptions.yml"),
        baseline=demo.path("perf", "baseline.json"),
        current=demo.path("perf", "current.json"),
        artifacts=demo.accepted,
        audit_id=f"demo-{stamp}-{Path(report_name).stem}",
        **demo.signing,
    )
    if any(name.startswith("TW_PERF_") for name in os.environ):
        thresholds = load_settings(Thresholds)  # the user's own thresholds win
    else:
        thresholds = explicit(Thresholds, **DEMO_PERF_THRESHOLDS)
    return audit(settings, thresholds=thresholds)


def _failed_checks(outcome) -> dict[str, str]:
    return {c.name: c.detail for c in outcome.checks if c.status == "fail"}


def step_audit(demo: Demo) -> Outcome:
    atomic_write_text(demo.path("registry.yml"), REGISTRY_YAML)
    atomic_write_text(demo.path("audit_exceptions.yml"), NO_EXCEPTIONS_YAML)
    outcome = _audit(demo, "before-triage.json")
    failed = _failed_checks(outcome)
    hits = outcome.report.unregistered_hits
    if outcome.exit_code != ExitCode.REJECTED or set(failed) != {"unregistered_hits"}:
        problems = "; ".join(f"{name}: {detail}" for name, detail in failed.items()) or "no check failed"
        return Outcome(
            "FAIL",
            f"expected exit 2 for the unregistered hits alone; got exit {int(outcome.exit_code)}: {problems}",
            short=f"exit {int(outcome.exit_code)}",
        )
    demo.audit_report = outcome.report
    checks = {c.name: c for c in outcome.checks}
    hidden = demo.hidden
    still_reported = hidden is not None and any(
        (h.path, h.line, h.pattern) == (hidden.path, hidden.line, hidden.pattern) for h in hits
    )
    p0 = checks.get("p0_required_checks")
    p0_text = (
        "P0 branch protection skipped: the bundled example is not on GitHub (no required_checks in the demo registry)"
        if p0 is not None and p0.status == "skip"
        else f"P0 branch protection {p0.status}"
        if p0 is not None
        else "P0 branch protection not checked"
    )
    perf = checks.get("performance")
    return Outcome(
        "EXPECTED",
        (
            f"{len(hits)} unregistered hits ({count_by_severity(hits)}) outside {', '.join(CODE_PATHS)}"
            f"{f', the hidden {hidden.path}:{hidden.line} among them' if still_reported else ''}; {p0_text}; "
            f"baseline signature verified, performance {perf.status if perf else 'not checked'} (demo thresholds: "
            f"p50/p95 x3, for two captures on a shared machine) -> "
            f"{show(outcome.report_path)}"
        ),
        short=f"exit 2: {len(hits)} unregistered hits ({count_by_severity(hits)})",
        expected="exit 2",
    )


# --- 8. R1/S2: the issue plan -------------------------------------------------------------


def step_issues(demo: Demo) -> Outcome:
    report = load_audit(demo.path("audit", "before-triage.json"))
    findings = findings_from(report)
    plan = plan_issues(findings, [], cap=demo.max_issues, audit_id=report.audit_id)
    folder = demo.path("issues")
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for item in plan.upserts:
        name = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{item.kind}-{item.key}").strip("-") + ".md"
        atomic_write_text(
            folder / name,
            (
                "<!-- tw-gates demo: the issue `tw-gates file-issues` would file (label tw-gates). "
                "Dry run: nothing sent to GitHub. -->\n"
                f"# {item.title}\n\n{item.body}\n"
            ),
        )
        written.append(name)
    if not written:
        return Outcome("FAIL", f"the audit's {len(findings)} findings planned no issue ({plan.why})")
    return Outcome(
        "PASS",
        (
            f"{len(findings)} findings, {plan.mode} (cap MAX_ISSUES_PER_RUN={demo.max_issues}): "
            f"{len(written)} issue(s) would be filed -> {show(folder)}/{', '.join(written)} "
            "(dry run: nothing sent to GitHub)"
        ),
        short=f"{len(written)} issue(s) planned, {plan.mode}; dry run",
    )


# --- 9. triage, G3 again --------------------------------------------------------------------


def step_triage(demo: Demo) -> Outcome:

    expires = (datetime.now(timezone.utc) + timedelta(days=EXCEPTION_DAYS)).date()
    approved: dict[tuple[str, str, str], dict[str, Any]] = {}
    for hit in demo.audit_report.unregistered_hits:
        approved.setdefault(
            (hit.repo, hit.path, hit.pattern),
            {
                "repo": hit.repo,
                "path": hit.path,
                "pattern": hit.pattern,
                "reason": f"reviewed in the tw-gates demo ({hit.severity}): accepted while the code moves under "
                f"{CODE_PATHS[0]}",
                "approver": APPROVER,
                "expires": expires.isoformat(),
            },
        )
    atomic_write_text(
        demo.path("audit_exceptions.yml"),
        (
            "# Written by tw-gates demo: the security team's triage of the demo audit.\n"
            + yaml.safe_dump({"schema_version": "1.0", "exceptions": list(approved.values())}, sort_keys=False)
        ),
    )
    outcome = _audit(demo, "after-triage.json")
    if outcome.exit_code != ExitCode.OK:
        problems = "; ".join(f"{name}: {detail}" for name, detail in _failed_checks(outcome).items())
        return Outcome(
            "FAIL",
            f"expected exit 0 once the hits are approved; got exit {int(outcome.exit_code)}: {problems}",
            short=f"exit {int(outcome.exit_code)}",
        )
    demo.gates_passed.add("G3")
    return Outcome(
        "PASS",
        (
            f"exit 0: {len(approved)} exception(s) approved by {APPROVER}, expiring {expires} "
            f"({show(demo.path('audit_exceptions.yml'))}), cover every hit -> {show(outcome.report_path)}"
        ),
        short=f"exit 0: {len(approved)} live exceptions",
    )
