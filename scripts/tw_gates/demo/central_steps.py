"""Steps 11-13: phase 0 completion and the phase 1 unlock, the canary
(HOLD, then ROLLBACK) and the adversarial corpora."""

from __future__ import annotations

from tw_gates.canary.canary import run_canary
from tw_gates.canary.settings import CanarySettings
from tw_gates.core.fsio import atomic_write_json, atomic_write_text
from tw_gates.demo.model import (
    CANARY_DIR,
    EXPECTED_BEHAVIORAL,
    Demo,
    Outcome,
    explicit,
    show,
)
from tw_gates.parser import adversarial
from tw_gates.phases.common import PhaseSettings
from tw_gates.phases.complete import complete_phase
from tw_gates.phases.unlock import verify_unlock

# --- 11. phase 0 ----------------------------------------------------------------------------


def step_phase(demo: Demo) -> Outcome:
    if demo.head is None:
        return Outcome(
            "SKIP",
            f"{show(demo.repo_dir)} has no git HEAD: a phase artifact records the commit it "
            "completes, so phase 0 is not completed",
        )
    settings = explicit(
        PhaseSettings,
        phase_dir=demo.out,
        repo_dir=demo.repo_dir,
        source="local",
        evidence_file=demo.path("evidence_blocks.jsonl"),
        **demo.signing,
    )
    result = complete_phase(
        0,
        settings,
        junit=str(demo.junit),
        expected_tests=EXPECTED_BEHAVIORAL,
        gates_passed=",".join(sorted(demo.gates_passed)),
        source="local",
        report_template=demo.repo_dir / "templates" / "phase_completion_report.md",
    )
    report = demo.path("phase-0-report.md")
    atomic_write_text(report, result.report)
    unlock = verify_unlock(1, settings, source="local")
    art = result.artifact
    return Outcome(
        "PASS",
        (
            f"{show(result.path)} signed with key {unlock.kid}: baseline {art.baseline_pass_count}, gates "
            f"{','.join(art.ci_gates_passed)}, safety nets {art.safety_nets_count_after}/5, "
            f"commit {art.git_commit[:12]} (report {report.name}); Phase 1 unlocked"
        ),
        short=f"phase 0 complete ({art.baseline_pass_count}), Phase 1 unlocked",
    )


# --- 12. canary -----------------------------------------------------------------------------


def _canary(demo: Demo, metrics_name: str):
    settings = explicit(
        CanarySettings,
        baseline=demo.repo_dir / CANARY_DIR / "baseline.json",
        metrics=demo.repo_dir / CANARY_DIR / metrics_name,
        name="demo",
        state_file=demo.path("canary", "state.json"),
        dry_run=True,
        report=demo.path("canary", metrics_name.replace("metrics_", "report_")),
        **demo.signing,
    )
    return run_canary(settings).report


def step_canary(demo: Demo) -> Outcome:
    passing = _canary(demo, "metrics_pass.json")
    failing = _canary(demo, "metrics_fail.json")
    breached = sorted({b.gate for b in failing.breaches})
    if passing.decision != "HOLD" or failing.decision != "ROLLBACK":
        return Outcome(
            "FAIL",
            f"expected HOLD then ROLLBACK; got {passing.decision} ({passing.reason}) then "
            f"{failing.decision} ({failing.reason})",
        )
    return Outcome(
        "EXPECTED",
        (
            f"metrics_pass.json: HOLD ({passing.reason.removeprefix('HOLD: ')}); metrics_fail.json: ROLLBACK, breached "
            f"{', '.join(breached)} (dry run: no dispatch, Slack, issue or state) -> {show(demo.path('canary'))}"
        ),
        short=f"HOLD, then ROLLBACK ({', '.join(breached)})",
        expected="ROLLBACK",
    )


# --- 13. adversarial ------------------------------------------------------------------------


def _adversarial(demo: Demo, target: str):
    settings = explicit(
        adversarial.AdversarialSettings, target=target, only="smoke", corpora=demo.repo_dir / "adversarial_corpora"
    )
    report = adversarial.adversarial(settings)
    name = target.removeprefix("builtin:")
    atomic_write_json(demo.path("adversarial", f"{name}-smoke.json"), report.model_dump(mode="json"))
    return report, [case.id for case in adversarial.violating_cases(report)]


def step_adversarial(demo: Demo) -> Outcome:
    safe, safe_violations = _adversarial(demo, "builtin:safe")
    _commonmark, violations = _adversarial(demo, "builtin:commonmark")
    if safe_violations or not violations:
        return Outcome(
            "FAIL",
            f"expected builtin:safe clean and builtin:commonmark violating; got "
            f"{len(safe_violations)} and {len(violations)} violating case(s)",
        )
    # A budget overrun on a busy machine is a time budget, never an XSS hole: said apart.
    slow = [case.id for case in adversarial.over_budget_cases(safe)]
    budget = f"; over their time budget (not violations): {', '.join(slow)}" if slow else ""
    return Outcome(
        "EXPECTED",
        (
            f"builtin:safe: {len(safe.cases)} smoke cases, no parser violations{budget}; builtin:commonmark "
            f"(raw HTML on): {len(violations)} violations: {', '.join(violations)} -> {show(demo.path('adversarial'))}"
        ),
        short=f"safe clean; commonmark {len(violations)} violations",
        expected="violations",
    )
