"""The gate chain: the gates the umbrella action and ``tw-gates gates`` run
in one process, in order, each configured from the environment.

A gate is registered once here with its names; running a selection stops at
the first gate that does not pass (as ``needs:`` does between jobs)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Callable

from pydantic import BaseModel

from tw_gates.core.errors import ExitCode, TwGatesError, UsageError


class GateOutcome(BaseModel):
    gate: str
    exit_code: int
    message: str
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.exit_code == ExitCode.OK


class ChainResult(BaseModel):
    outcomes: list[GateOutcome]
    skipped: list[str]

    @property
    def exit_code(self) -> int:
        failed = [o.exit_code for o in self.outcomes if not o.passed]
        return failed[0] if failed else ExitCode.OK


@dataclass(frozen=True)
class GateSpec:
    name: str
    title: str
    run: Callable[[], GateOutcome]
    aliases: tuple[str, ...] = ()
    # Optional gates run only when selected by name, never under "all".
    optional: bool = False
    names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", (self.name.lower(), *(a.lower() for a in self.aliases)))


def _platform() -> GateOutcome:
    from tw_gates.core.settings import load_settings
    from tw_gates.platform_guard import PlatformSettings, check_platform

    result = check_platform(load_settings(PlatformSettings))
    return GateOutcome(gate="platform", exit_code=result.exit_code, message=result.message)


def _ingest() -> GateOutcome:
    from tw_gates.core import runner
    from tw_gates.core.settings import load_settings
    from tw_gates.ingest import IngestSettings, ingest, show

    # TW_INGEST_ARTIFACTS (required, one path/folder/glob per line), POLICY_REQUIRE_HMAC,
    # TW_HMAC_KEYS, TW_INGEST_OUT, TW_INGEST_QUARANTINE, TW_INGEST_MAX_AGE, TW_INGEST_MAX_BYTES.
    def report(verdict) -> None:
        if not verdict.accepted:
            runner.echo(f"  REJECTED {show(verdict.path, 300)}: {verdict.reason}: {verdict.message}")

    result = ingest(load_settings(IngestSettings), on_verdict=report, progress=runner.echo)
    return GateOutcome(gate="ingest", exit_code=result.exit_code, message=result.describe())


def _verify_nets() -> GateOutcome:
    from tw_gates.core import runner
    from tw_gates.core.settings import load_settings
    from tw_gates.verify_nets import VerifyNetsSettings, verify_nets

    result = verify_nets(load_settings(VerifyNetsSettings))
    for net in result.nets:
        runner.echo(f"  {net.text}")
    message = f"{result.score} safety nets verified" + (f"; missing {', '.join(result.missing)}" if result.missing else "")
    return GateOutcome(gate="verify-nets", exit_code=result.exit_code, message=message)


def _behavioral() -> GateOutcome:
    from tw_gates.behavioral import BehavioralSettings, check_behavioral
    from tw_gates.core import runner
    from tw_gates.core.settings import load_settings

    result = check_behavioral(load_settings(BehavioralSettings))
    for case in result.problems:
        runner.echo(f"  {case.outcome.upper()} {case.suite}::{case.name}")
    return GateOutcome(gate="behavioral", exit_code=result.exit_code, message=result.summary)


def _audit() -> GateOutcome:
    from tw_gates.audit import AuditSettings, publish, run_audit
    from tw_gates.core import runner
    from tw_gates.core.settings import load_settings

    settings = load_settings(AuditSettings)
    outcome = run_audit(settings)
    for check in outcome.checks:
        runner.echo(f"  {check.status.upper():<4} {check.name}: {check.detail}")
    publish(outcome, exceptions_file=str(settings.exceptions) if settings.exceptions else "audit_exceptions.yml")
    return GateOutcome(gate="audit", exit_code=outcome.exit_code, message=f"{outcome.summary} (report {outcome.report_path})")


def _file_issues() -> GateOutcome:
    from tw_gates.core.settings import load_settings
    from tw_gates.file_issues import FileIssuesSettings, gate

    # TW_AUDIT_REPORT (required), TW_CENTRAL_REPO (default GITHUB_REPOSITORY), GITHUB_TOKEN,
    # MAX_ISSUES_PER_RUN, TW_FALLBACK_DIR, TW_QUOTA_THRESHOLD, TW_DEADLINE, SLACK_WEBHOOK_URL.
    result = gate(load_settings(FileIssuesSettings))
    return GateOutcome(gate="file-issues", exit_code=result.exit_code, message=result.message)


def _hmac_policy() -> GateOutcome:
    from tw_gates.core import runner
    from tw_gates.core.settings import load_settings
    from tw_gates.hmac_policy import HmacPolicySettings, check_hmac_policy

    result = check_hmac_policy(load_settings(HmacPolicySettings))
    for site in result.sites:
        runner.echo(f"  {site.text}")
    return GateOutcome(gate="hmac-policy", exit_code=result.exit_code, message=result.summary)


def _telemetry_check() -> GateOutcome:
    from tw_gates.core import runner
    from tw_gates.core.settings import load_settings
    from tw_gates.telemetry_check import TelemetrySettings, check_telemetry

    result = check_telemetry(load_settings(TelemetrySettings))
    for finding in result.findings:
        runner.echo(f"  {finding.text}")
    return GateOutcome(gate="telemetry-check", exit_code=result.exit_code, message=result.summary)


def _adversarial() -> GateOutcome:
    from tw_gates.adversarial import AdversarialSettings, gate, publish, verdict
    from tw_gates.core import runner
    from tw_gates.core.settings import load_settings

    # TW_ADVERSARIAL_TARGET (required), TW_ADVERSARIAL_ONLY, _CORPORA, _JOBS, _REPORT, _DOWNSTREAM ...
    settings = load_settings(AdversarialSettings)
    report = gate(settings, progress=runner.echo)
    publish(report, settings)
    return GateOutcome(gate="adversarial", exit_code=report.exit_code, message=verdict(report))


def _canary() -> GateOutcome:
    from tw_gates.canary import CanarySettings, run_canary
    from tw_gates.core import runner
    from tw_gates.core.settings import load_settings

    # TW_CANARY_BASELINE plus TW_PROMETHEUS_URL or TW_CANARY_METRICS (required), TW_CENTRAL_REPO ...
    run = run_canary(load_settings(CanarySettings))
    for problem in run.problems:
        runner.warn(problem)
    return GateOutcome(gate="canary", exit_code=run.exit_code, message=run.report.reason)


GATES: list[GateSpec] = [
    GateSpec("platform", "R2 Linux-only", _platform, aliases=("r2",)),
    GateSpec("ingest", "S1 ingest gate (consumer artifacts)", _ingest, aliases=("s1",), optional=True),
    # G1..G5 read their settings from the environment: TW_REPO_DIR (G1, G4, G5),
    # TW_JUNIT / TW_EXPECT_TESTS (G2), TW_AUDIT_REPORT, TW_REGISTRY, TW_BASELINE,
    # TW_PERF_CURRENT, TW_ACCEPTED_ARTIFACTS, TW_AUDIT_EXCEPTIONS... (G3).
    GateSpec("verify-nets", "G1 safety nets verified", _verify_nets, aliases=("g1",)),
    GateSpec("behavioral", "G2 behavioral tests", _behavioral, aliases=("g2",)),
    GateSpec("audit", "G3 green-light audit", _audit, aliases=("g3",)),
    GateSpec("file-issues", "S2/R1 file audit findings as issues", _file_issues, aliases=("s2", "r1"), optional=True),
    GateSpec("hmac-policy", "G4 HMAC policy", _hmac_policy, aliases=("g4",)),
    GateSpec("telemetry-check", "G5 telemetry infrastructure", _telemetry_check, aliases=("g5",)),
    GateSpec("adversarial", "Adversarial Markdown corpora", _adversarial, optional=True),
    GateSpec("canary", "48-hour canary (PROMOTE/HOLD pass, ROLLBACK fails)", _canary, optional=True),
]


def select(selection: str | list[str] | None) -> list[GateSpec]:
    """'all' (or empty) = every non-optional gate; else the named gates in chain order."""
    words = selection if isinstance(selection, list) else re.split(r"[\s,]+", (selection or "").strip())
    words = [w.lower() for w in words if w]
    if not words or words == ["all"]:
        return [g for g in GATES if not g.optional]
    unknown = [w for w in words if w != "all" and not any(w in g.names for g in GATES)]
    if unknown:
        known = ", ".join(g.name for g in GATES)
        raise UsageError(f"unknown gate(s): {', '.join(unknown)} (known: {known}, or all)")
    return [g for g in GATES if "all" in words and not g.optional or any(w in g.names for w in words)]


def run_chain(gates: list[GateSpec], *, on_outcome: Callable[[GateOutcome], None] | None = None) -> ChainResult:
    outcomes: list[GateOutcome] = []
    for index, gate in enumerate(gates):
        started = time.monotonic()
        try:
            outcome = gate.run()
        except TwGatesError as exc:
            outcome = GateOutcome(gate=gate.name, exit_code=int(exc.exit_code), message=str(exc))
        outcome.seconds = time.monotonic() - started
        outcomes.append(outcome)
        if on_outcome:
            on_outcome(outcome)
        if not outcome.passed:
            return ChainResult(outcomes=outcomes, skipped=[g.name for g in gates[index + 1:]])
    return ChainResult(outcomes=outcomes, skipped=[])
