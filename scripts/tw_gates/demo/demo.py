"""``tw-gates demo``: the whole story on the bundled example consumer, offline.

Thirteen steps, each calling a gate's own function (nothing here re-implements
a gate): the consumer's signed self-audit, the ingest gate rejecting a
tampered copy, G1-G5 on this checkout, a signed performance baseline, the
audit before and after the security team's triage, the issue plan (written as
Markdown, never sent), phase 0 completion and the phase 1 unlock, the canary
(HOLD, then ROLLBACK) and the adversarial corpora.

Some rejections are the point of the story (the tampered artifact, the
unregistered hits, the canary ROLLBACK, the CommonMark parser's violations):
a step whose gate says what the story expects is ``PASS`` or ``EXPECTED
<what>``; anything else is ``FAIL`` and the demo exits 2.

No GitHub, no network: every setting is built from the demo's own values
(``explicit``), never from the environment, so a GITHUB_TOKEN, a
TW_REGISTRY or a TW_PUSHGATEWAY_URL in the user's shell never reaches a gate.
The signing key is TW_HMAC_KEY when set, else a random key for this run
(key id ``demo``), registered for redaction and never printed or written."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import re
import secrets
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import Field
from pydantic_settings import BaseSettings

from tw_gates.core.errors import ExitCode, TwGatesError, UsageError
from tw_gates.core.markdown import inline_code, markdown_table
from tw_gates.core.progress import Progress, silent
from tw_gates.core.settings import SigningSettings, env, load_settings
from tw_gates.schemas.severity import SEVERITIES

CONSUMER_DIR = Path("examples") / "consumer"
CANARY_DIR = Path("examples") / "canary"
CONSUMER_REPO = "example-org/example-consumer"
CONSUMER_BRANCH = "main"
CODE_PATHS = ["app/rendering/**"]  # where the example's renderer code is registered
DEMO_KID = "demo"
APPROVER = "security-team (demo)"
EXCEPTION_DAYS = 30
EXPECTED_BEHAVIORAL = 14
PYTEST_TIMEOUT_S = 300
# Few parses per document: enough for stable percentiles on the built-in corpus, quick.
CAPTURE_RUNS, CAPTURE_WARMUP = 3, 1

S = TypeVar("S", bound=BaseSettings)


# --------------------------------------------------------------------------- settings


@functools.cache
def _without_environment(cls: type[S]) -> type[S]:
    def sources(_cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings):
        return (init_settings,)

    namespace = {"settings_customise_sources": classmethod(sources), "__module__": cls.__module__}
    return type(cls.__name__, (cls,), namespace)


def explicit(cls: type[S], **values: Any) -> S:
    """Settings of ``cls`` from ``values`` and the defaults only: the
    environment is not read."""
    from pydantic import ValidationError

    from tw_gates.core.settings import describe_validation_error

    try:
        return _without_environment(cls)(**values)
    except ValidationError as exc:
        raise UsageError(describe_validation_error(exc, cls.__name__)) from None


class DemoSettings(SigningSettings):
    """What the demo takes from the environment: the signing key and the issue cap."""

    max_issues: int = Field(10, ge=0, le=1000, validation_alias=env("MAX_ISSUES_PER_RUN", "max_issues"))


# --------------------------------------------------------------------------- steps


Status = Literal["PASS", "EXPECTED", "FAIL", "SKIP"]


@dataclass
class Outcome:
    status: Status
    detail: str  # the step's result line
    short: str = ""  # for the summary table; the detail when empty
    expected: str = ""  # EXPECTED <what>

    @property
    def label(self) -> str:
        if self.status == "EXPECTED":
            return f"EXPECTED {self.expected}"
        return "NOT RUN" if self.status == "SKIP" else self.status

    @property
    def as_told(self) -> bool:
        """The step went as the story says (a skip is not a failure)."""
        return self.status != "FAIL"

    @property
    def done(self) -> bool:
        """The step ran and its outputs are there for the steps after it."""
        return self.status in ("PASS", "EXPECTED")


@dataclass(frozen=True)
class Step:
    number: int
    name: str  # for --only
    gate: str  # the gate or net it shows
    doing: str  # the progress line
    run: Callable[[Demo], Outcome]
    needs: tuple[str, ...] = ()  # steps whose outputs it reads
    writes: tuple[str, ...] = ()  # what it writes under --out (replaced on each run)


@dataclass
class StepResult:
    step: Step
    outcome: Outcome
    seconds: float


@dataclass
class Demo:
    """The run's inputs and what the steps hand to each other."""

    repo_dir: Path
    out: Path
    signing: dict[str, Any]  # hmac_key, hmac_key_id for every signing/verifying gate
    skip_tests: bool
    max_issues: int
    echo: Callable[[str], None]
    head: str | None = None  # the checkout's git HEAD
    self_audit: Any = None  # SelfAuditResult
    accepted: Path | None = None
    junit: Path | None = None
    audit_report: Any = None  # AuditReport before triage
    hidden: Any = None  # the hit the tampered copy hid
    gates_passed: set[str] = field(default_factory=set)

    @property
    def consumer(self) -> Path:
        return self.repo_dir / CONSUMER_DIR

    def path(self, *parts: str) -> Path:
        return self.out.joinpath(*parts)


def show(path: Path) -> str:
    """A path as the user would type it: relative to the current folder when below it."""
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _count_by_severity(hits: list[Any]) -> str:
    counts = {s: sum(1 for h in hits if h.severity == s) for s in SEVERITIES}
    return ", ".join(f"{n} {s}" for s, n in counts.items() if n)


# --- 1. R2 ------------------------------------------------------------------------------


def step_platform(demo: Demo) -> Outcome:
    from tw_gates.chain.platform import PlatformSettings, platform

    result = platform(explicit(PlatformSettings, runner_os=os.environ.get("RUNNER_OS")))
    return Outcome("PASS" if result.linux else "FAIL", result.message.removeprefix("R2 platform: "))


# --- 2. S1: the consumer's self-audit -----------------------------------------------------


def _content_digest(folder: Path) -> str:
    """A stand-in commit id when the checkout has no git HEAD: the SHA-1 of
    the example's file names and bytes (the same example, the same id)."""
    digest = hashlib.sha1(usedforsecurity=False)
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode("utf-8") + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def step_self_audit(demo: Demo) -> Outcome:
    from tw_gates.self_audit.self_audit import SelfAuditSettings, self_audit

    commit, origin = (
        (demo.head, "the checkout's HEAD")
        if demo.head
        else (_content_digest(demo.consumer), "no git HEAD: a digest of the example's files")
    )
    settings = explicit(
        SelfAuditSettings,
        repo_dir=demo.consumer,
        out=demo.path("consumer", "tw-self-audit.json"),
        sarif=demo.path("consumer", "tw-self-audit.sarif"),
        repo=CONSUMER_REPO,
        commit=commit,
        branch=CONSUMER_BRANCH,
        **demo.signing,
    )
    result = self_audit(settings, progress=demo.echo)
    demo.self_audit = result
    return Outcome(
        "PASS",
        (
            f"{len(result.hits)} hits ({_count_by_severity(result.hits)}) in {result.files_scanned} files of "
            f"{CONSUMER_REPO}@{commit[:12]} ({origin}), signed with key {result.signed_kid} -> "
            f"{show(result.artifact)}, SARIF {result.sarif.name if result.sarif else 'none'}"
        ),
        short=f"{len(result.hits)} hits, artifact signed ({result.signed_kid})",
    )


# --- 3. S1: the ingest gate ---------------------------------------------------------------


def _hit_to_hide(hits: list[Any]) -> Any:
    """The most severe hit outside the registered code paths: what someone
    hiding a finding would remove."""
    from tw_gates.chain.unregistered_hits import path_matches

    outside = [h for h in hits if path_matches(h.path, CODE_PATHS) is None] or list(hits)
    return min(outside, key=lambda h: (SEVERITIES.index(h.severity), h.path, h.line)) if outside else None


def step_ingest(demo: Demo) -> Outcome:
    from tw_gates.core.fsio import atomic_write_bytes
    from tw_gates.ingest.ingest import IngestSettings, Verdict, ingest

    genuine = demo.self_audit.artifact
    hidden = _hit_to_hide(demo.self_audit.hits)
    if hidden is None:
        return Outcome("FAIL", "the example consumer has no hits, so there is nothing to hide in a tampered copy")
    document = json.loads(genuine.read_bytes())
    document["hits"] = [
        h
        for h in document["hits"]
        if (h["path"], h["line"], h["pattern"]) != (hidden.path, hidden.line, hidden.pattern)
    ]
    tampered = demo.path("consumer", "tw-self-audit.tampered.json")  # the signature is kept as it was
    atomic_write_bytes(tampered, (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    demo.hidden = hidden

    verdicts: list[Verdict] = []
    settings = explicit(
        IngestSettings,
        artifacts=[str(genuine), str(tampered)],
        require_hmac=True,
        quarantine=demo.path("quarantine"),
        out=demo.path("accepted.jsonl"),
        workers=1,
        **demo.signing,
    )
    result = ingest(settings, on_verdict=verdicts.append, progress=demo.echo)
    by_path = {v.path: v for v in verdicts}
    genuine_verdict, tampered_verdict = by_path.get(str(genuine)), by_path.get(str(tampered))
    as_expected = (
        result.accepted == 1
        and result.rejected == 1
        and genuine_verdict is not None
        and genuine_verdict.accepted
        and tampered_verdict is not None
        and tampered_verdict.reason == "bad_signature"
        and tampered_verdict.quarantined is not None
    )
    if not as_expected:
        said = "; ".join(f"{Path(v.path).name}: {v.reason or 'accepted'}: {v.message}" for v in verdicts)
        return Outcome(
            "FAIL",
            f"expected the genuine artifact accepted and the tampered copy rejected "
            f"(bad_signature); got {result.accepted} accepted, {result.rejected} rejected: {said}",
        )
    demo.accepted = settings.out
    return Outcome(
        "EXPECTED",
        (
            f"tampered copy (hides {hidden.path}:{hidden.line} {hidden.pattern}, {hidden.severity}; signature kept) "
            f"REJECTED bad_signature, quarantined as {show(Path(tampered_verdict.quarantined))}; "
            f"genuine artifact accepted -> {show(settings.out)}"
        ),
        short="1 accepted, 1 rejected (bad_signature), quarantined",
        expected="REJECTION",
    )


# --- 4. G1 --------------------------------------------------------------------------------


def step_verify_nets(demo: Demo) -> Outcome:
    from tw_gates.chain.verify_nets import VerifyNetsSettings, verify_nets

    result = verify_nets(explicit(VerifyNetsSettings, repo_dir=demo.repo_dir))
    if result.exit_code:
        missing = "; ".join(n.text for n in result.nets if not n.verified)
        return Outcome("FAIL", f"{result.score} safety nets verified: {missing}", short=f"{result.score} verified")
    demo.gates_passed.add("G1")
    return Outcome(
        "PASS",
        f"{result.score} safety nets verified ({', '.join(n.net for n in result.nets)}) "
        "in this checkout's workflows and rules",
        short=f"{result.score} verified",
    )


# --- 5. G2 --------------------------------------------------------------------------------


def step_behavioral(demo: Demo) -> Outcome:
    from tw_gates.chain.behavioral import BehavioralSettings, behavioral
    from tw_gates.core import proc

    if demo.skip_tests:
        return Outcome(
            "SKIP", "--skip-tests: the behavioral tests were not run, so G2 is not run", short="not run (--skip-tests)"
        )
    if importlib.util.find_spec("pytest") is None:
        return Outcome(
            "SKIP",
            f"pytest is not installed in {sys.executable}: G2 not run (`make demo` installs it with the dev extra)",
            short="not run (no pytest)",
        )
    if not (demo.repo_dir / "tests" / "behavioral").is_dir():
        return Outcome(
            "SKIP", f"no tests/behavioral in {show(demo.repo_dir)}: G2 not run", short="not run (no tests/behavioral)"
        )
    junit = demo.path("behavioral.xml")
    junit.parent.mkdir(parents=True, exist_ok=True)
    # The demo never hands the user's GitHub token to anything it runs.
    child_env = {k: v for k, v in os.environ.items() if k not in ("GITHUB_TOKEN", "GH_TOKEN")}
    ran = proc.run(
        [sys.executable, "-m", "pytest", "tests/behavioral", "-q", "-p", "no:cacheprovider", "--junitxml", str(junit)],
        timeout=PYTEST_TIMEOUT_S,
        cwd=demo.repo_dir,
        env=child_env,
    )
    if ran.timed_out or not junit.is_file():
        return Outcome("FAIL", f"the behavioral tests did not report: {ran.describe()}")
    result = behavioral(explicit(BehavioralSettings, junit=str(junit), expect=EXPECTED_BEHAVIORAL))
    if result.exit_code:
        problems = "; ".join(f"{c.outcome} {c.suite}::{c.name}" for c in result.problems[:3])
        return Outcome(
            "FAIL", f"{result.summary}{': ' + problems if problems else ''} ({show(junit)})", short=result.summary
        )
    demo.junit = junit
    demo.gates_passed.add("G2")
    return Outcome(
        "PASS",
        f"{result.summary} (pytest tests/behavioral, {ran.duration_s:.1f}s) -> {show(junit)}",
        short=result.summary,
    )


# --- 6. baseline --------------------------------------------------------------------------


def step_baseline(demo: Demo) -> Outcome:
    from tw_gates.core.fsio import atomic_write_json
    from tw_gates.parser import baseline

    settings = explicit(
        baseline.CaptureSettings, target="builtin:safe", runs=CAPTURE_RUNS, warmup=CAPTURE_WARMUP, timeout_s=120
    )
    base_path, current_path = demo.path("perf", "baseline.json"), demo.path("perf", "current.json")
    base = baseline.capture(settings)
    atomic_write_json(base_path, baseline.capture_document(base))
    kid = baseline.sign_capture(base_path, explicit(SigningSettings, **demo.signing))
    current = baseline.capture(settings)
    atomic_write_json(current_path, baseline.capture_document(current))
    lat, now = base.latency, current.latency
    return Outcome(
        "PASS",
        (
            f"builtin:safe on {base.corpus} ({lat.samples} samples): p50 {lat.p50_ms:g} ms, p95 {lat.p95_ms:g} ms, "
            f"peak RSS {base.peak_rss_mib:g} MiB, signed with key {kid} -> {show(base_path)}; current capture "
            f"p50 {now.p50_ms:g} ms, p95 {now.p95_ms:g} ms -> {show(current_path)}"
        ),
        short=f"baseline signed ({kid}), current captured",
    )


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
# is doing; the gate's defaults (p50 x1.10, p95 x1.25, p99 x1.5, +0.5 ms) are
# for captures made under the same conditions, so the demo allows for noise.
DEMO_PERF_THRESHOLDS = {
    "p50_ratio": 1.5,
    "p95_ratio": 1.5,
    "p99_ratio": 2.0,
    "rss_increase_mib": 30.0,
    "min_delta_ms": 2.0,
}


def _audit(demo: Demo, report_name: str):
    from tw_gates.chain.audit import AuditSettings, audit
    from tw_gates.parser.baseline import Thresholds

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
    from tw_gates.core.fsio import atomic_write_text

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
            f"{len(hits)} unregistered hits ({_count_by_severity(hits)}) outside {', '.join(CODE_PATHS)}"
            f"{f', the hidden {hidden.path}:{hidden.line} among them' if still_reported else ''}; {p0_text}; "
            f"baseline signature verified, performance {perf.status if perf else 'not checked'} (demo thresholds: "
            f"p50/p95 x1.5, two captures seconds apart) -> "
            f"{show(outcome.report_path)}"
        ),
        short=f"exit 2: {len(hits)} unregistered hits ({_count_by_severity(hits)})",
        expected="exit 2",
    )


# --- 8. R1/S2: the issue plan -------------------------------------------------------------


def step_issues(demo: Demo) -> Outcome:
    from tw_gates.core.fsio import atomic_write_text
    from tw_gates.issues.file_issues import findings_from, load_audit, plan_issues

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
    import yaml

    from tw_gates.core.fsio import atomic_write_text

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


# --- 10. G4, G5 -----------------------------------------------------------------------------


def step_policy(demo: Demo) -> Outcome:
    from tw_gates.chain.hmac_policy import HmacPolicySettings, hmac_policy
    from tw_gates.chain.telemetry_check import TelemetryCheckSettings, telemetry_check

    hmac = hmac_policy(explicit(HmacPolicySettings, repo_dir=demo.repo_dir))
    telemetry = telemetry_check(explicit(TelemetryCheckSettings, repo_dir=demo.repo_dir))
    if hmac.passed:
        demo.gates_passed.add("G4")
    if telemetry.passed:
        demo.gates_passed.add("G5")
    promtool = next((f for f in telemetry.findings if f.check == "promtool"), None)
    promtool_text = (
        f"promtool {'check rules passed' if promtool.status == 'ok' else promtool.status}"
        if promtool is not None
        else "no rules file for promtool"
    )
    if promtool is not None and promtool.status == "skip":
        promtool_text = "promtool not on PATH: `promtool check rules` not run"
    status: Status = "PASS" if hmac.passed and telemetry.passed else "FAIL"
    short = f"G4 {'pass' if hmac.passed else 'FAIL'} ({hmac.score}), G5 {'pass' if telemetry.passed else 'FAIL'}"
    return Outcome(status, f"G4 {hmac.summary}; G5 {telemetry.summary} ({promtool_text})", short=short)


# --- 11. phase 0 ----------------------------------------------------------------------------


def step_phase(demo: Demo) -> Outcome:
    from tw_gates.core.fsio import atomic_write_text
    from tw_gates.phases.phase import PhaseSettings, complete_phase, verify_unlock

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
            f"{','.join(art.ci_gates_passed)}, safety nets {art.safety_nets_count_after}/5, commit {art.git_commit[:12]} "
            f"(report {report.name}); Phase 1 unlocked"
        ),
        short=f"phase 0 complete ({art.baseline_pass_count}), Phase 1 unlocked",
    )


# --- 12. canary -----------------------------------------------------------------------------


def _canary(demo: Demo, metrics_name: str):
    from tw_gates.canary.canary import CanarySettings, run_canary

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
    from tw_gates.core.fsio import atomic_write_json
    from tw_gates.parser import adversarial

    settings = explicit(
        adversarial.AdversarialSettings, target=target, only="smoke", corpora=demo.repo_dir / "adversarial_corpora"
    )
    report = adversarial.gate(settings)
    name = target.removeprefix("builtin:")
    atomic_write_json(demo.path("adversarial", f"{name}-smoke.json"), report.model_dump(mode="json"))
    return report, [case.id for case in adversarial.failing_cases(report)]


def step_adversarial(demo: Demo) -> Outcome:
    safe, safe_failing = _adversarial(demo, "builtin:safe")
    commonmark, violations = _adversarial(demo, "builtin:commonmark")
    if safe_failing or not violations:
        return Outcome(
            "FAIL",
            f"expected builtin:safe clean and builtin:commonmark violating; got "
            f"{len(safe_failing)} and {len(violations)} violating case(s)",
        )
    return Outcome(
        "EXPECTED",
        (
            f"builtin:safe: {len(safe.cases)} smoke cases, no parser violations; builtin:commonmark (raw HTML on): "
            f"{len(violations)} violations: {', '.join(violations)} -> {show(demo.path('adversarial'))}"
        ),
        short=f"safe clean; commonmark {len(violations)} violations",
        expected="violations",
    )


STEPS: tuple[Step, ...] = (
    Step(1, "platform", "R2", "platform guard: is this Linux?", step_platform),
    Step(
        2,
        "self-audit",
        "S1",
        f"consumer self-audit of {CONSUMER_DIR.as_posix()}, signed, with SARIF",
        step_self_audit,
        writes=("consumer",),
    ),
    Step(
        3,
        "ingest",
        "S1",
        "ingest gate (POLICY_REQUIRE_HMAC=true): the artifact and a tampered copy",
        step_ingest,
        needs=("self-audit",),
        writes=("quarantine", "accepted.jsonl"),
    ),
    Step(4, "verify-nets", "G1", "verify the five safety nets in this checkout (dogfooding)", step_verify_nets),
    Step(
        5,
        "behavioral",
        "G2",
        "behavioral tests (pytest tests/behavioral), then G2 on their JUnit XML",
        step_behavioral,
        writes=("behavioral.xml",),
    ),
    Step(
        6,
        "baseline",
        "G3",
        "performance baseline of builtin:safe (signed), then a current capture",
        step_baseline,
        writes=("perf",),
    ),
    Step(
        7,
        "audit",
        "G3",
        "green-light audit of the accepted artifacts",
        step_audit,
        needs=("ingest", "baseline"),
        writes=("registry.yml", "audit_exceptions.yml", "audit"),
    ),
    Step(
        8,
        "issues",
        "R1/S2",
        "issue plan for the audit's findings (offline)",
        step_issues,
        needs=("audit",),
        writes=("issues",),
    ),
    Step(
        9,
        "triage",
        "G3",
        "security team approves the findings as exceptions; audit again",
        step_triage,
        needs=("audit",),
    ),
    Step(10, "policy", "G4/G5", "HMAC policy and telemetry infrastructure of this checkout", step_policy),
    Step(
        11,
        "phase",
        "phase",
        "phase 0 completion (signed), then the phase 1 unlock",
        step_phase,
        needs=("verify-nets", "behavioral", "triage", "policy"),
        writes=(".phase-0.complete.json", "phase-0-report.md"),
    ),
    Step(
        12,
        "canary",
        "canary",
        "canary on examples/canary: passing metrics, then failing ones",
        step_canary,
        writes=("canary",),
    ),
    Step(
        13,
        "adversarial",
        "adversarial",
        "smoke corpus against builtin:safe, then builtin:commonmark",
        step_adversarial,
        writes=("adversarial",),
    ),
)
ALWAYS_WRITTEN = ("metrics", "summary.md")


# --------------------------------------------------------------------------- the run


def select_steps(only: str | None) -> list[Step]:
    """Every step, or those named in ``only`` (numbers or names, comma or space separated)."""
    if not only or not only.strip():
        return list(STEPS)
    by_word = {str(s.number): s for s in STEPS} | {s.name: s for s in STEPS}
    chosen: set[int] = set()
    for word in re.split(r"[\s,]+", only.strip().lower()):
        if word and word not in by_word:
            names = ", ".join(s.name for s in STEPS)
            raise UsageError(f"--only: no step {word!r} (steps: 1-{len(STEPS)} or {names})")
        if word:
            chosen.add(by_word[word].number)
    return [s for s in STEPS if s.number in chosen]


def check_folders(repo_dir: Path, out: Path) -> None:
    """A tw-gates checkout to run on, and an output folder of its own."""
    if not (repo_dir / CONSUMER_DIR).is_dir():
        raise UsageError(
            f"no {CONSUMER_DIR.as_posix()} under {repo_dir}: run the demo from the root of a tw-gates "
            "checkout, or pass --repo-dir"
        )
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; give a folder")
    if out == repo_dir or out in repo_dir.parents:
        raise UsageError(f"--out {out} would write over the checkout; give a folder of its own (default demo-out)")


def clear_outputs(out: Path, names: list[str]) -> None:
    """Remove what this run is about to write again; leave everything else."""
    for name in names:
        target = out / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()


def signing_key(settings: DemoSettings) -> tuple[dict[str, Any], str]:
    """(the signing settings every gate gets, how to describe the key)."""
    from tw_gates.core.redact import REDACTOR

    if settings.hmac_key is not None:
        return (
            {"hmac_key": settings.hmac_key.get_secret_value(), "hmac_key_id": settings.hmac_key_id},
            f"TW_HMAC_KEY, key id {settings.hmac_key_id!r}",
        )
    # Registered for redaction, not ::add-mask::ed: masking would print it into the raw log,
    # and nothing but this process (whose output is redacted) ever holds it.
    key = secrets.token_hex(32)
    REDACTOR.register(key)
    return (
        {"hmac_key": key, "hmac_key_id": DEMO_KID},
        f"random for this run, key id {DEMO_KID!r} (never printed or written)",
    )


def _unmet(step: Step, results: dict[str, StepResult], selected: set[str]) -> str | None:
    """Why ``step`` cannot run: a step it reads from did not produce its outputs."""
    for name in step.needs:
        before = next(s for s in STEPS if s.name == name)
        if name not in selected:
            return f"needs step {before.number} ({name}), not selected"
        done = results[name].outcome
        if done.status == "SKIP":
            return f"needs step {before.number} ({name}), which was not run: {done.short or done.detail}"
        if not done.done:
            return f"needs step {before.number} ({name}), which failed"
    return None


def run_step(step: Step, demo: Demo) -> Outcome:
    """The step's outcome; a gate's error is the step's failure, not the demo's end."""
    try:
        return step.run(demo)
    except TwGatesError as exc:
        return Outcome("FAIL", str(exc))
    except Exception as exc:  # a bug in a gate: reported on its step, the story goes on
        if os.environ.get("TW_GATES_DEBUG") == "1":
            import traceback

            traceback.print_exc()
        return Outcome("FAIL", f"internal error: {type(exc).__name__}: {exc}")


@dataclass
class DemoResult:
    results: list[StepResult]
    out: Path
    seconds: float
    summary_markdown: str = ""

    @property
    def failed(self) -> list[StepResult]:
        return [r for r in self.results if not r.outcome.as_told]

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.REJECTED if self.failed else ExitCode.OK

    def rows(self) -> list[list[object]]:
        return [
            [r.step.number, r.step.gate, r.outcome.label, r.outcome.short or r.outcome.detail, f"{r.seconds:.1f}s"]
            for r in self.results
        ]


SUMMARY_HEADERS = ["step", "gate/net", "result", "detail", "time"]


def run_demo(
    repo_dir: Path,
    out: Path,
    *,
    skip_tests: bool = False,
    only: str | None = None,
    echo: Progress = silent,
) -> DemoResult:
    from tw_gates.core import metrics
    from tw_gates.core.settings import load_settings
    from tw_gates.phases.phase import head_commit

    repo_dir, out = repo_dir.resolve(), out.resolve()
    check_folders(repo_dir, out)
    steps = select_steps(only)
    settings = load_settings(DemoSettings)
    signing, key_text = signing_key(settings)
    clear_outputs(out, [name for step in steps for name in step.writes] + list(ALWAYS_WRITTEN))
    out.mkdir(parents=True, exist_ok=True)
    sink = metrics.MetricsSink(out / "metrics")
    metrics.configure(sink)
    try:
        head = head_commit(repo_dir)
    except UsageError:
        head = None
    demo = Demo(
        repo_dir=repo_dir,
        out=out,
        signing=signing,
        skip_tests=skip_tests,
        max_issues=settings.max_issues,
        echo=lambda line: echo(f"        {line}"),
        head=head,
    )

    echo(f"tw-gates demo: the story on {show(demo.consumer)}, offline (no GitHub, no network)")
    echo(f"  outputs in {show(out)}/; signing key: {key_text}")
    echo("")
    started = time.monotonic()
    results: dict[str, StepResult] = {}
    selected = {s.name for s in steps}
    for step in steps:
        echo(f"[{step.number:>2}/{len(STEPS)}] {step.gate:<11} {step.doing} ...")
        began = time.monotonic()
        unmet = _unmet(step, results, selected)
        outcome = Outcome("SKIP", unmet) if unmet else run_step(step, demo)
        result = results[step.name] = StepResult(step, outcome, time.monotonic() - began)
        echo(f"        {outcome.label}: {outcome.detail} ({result.seconds:.1f}s)")

    done = DemoResult(list(results.values()), out, time.monotonic() - started)
    sink.flush()
    _report(done, echo)
    return done


def _report(done: DemoResult, echo: Callable[[str], None]) -> None:
    from tw_gates.core.fsio import atomic_write_text
    from tw_gates.parser.adversarial import text_table

    told = sum(1 for r in done.results if r.outcome.as_told)
    verdict = f"{told}/{len(done.results)} steps went as the story expects in {done.seconds:.1f}s" + (
        f"; not as expected: {', '.join(f'step {r.step.number} ({r.step.name})' for r in done.failed)}"
        if done.failed
        else ""
    )
    outputs = show(done.out)
    written = [name for r in done.results if r.outcome.done for name in r.step.writes] + ["summary.md"]
    echo("")
    echo(text_table(SUMMARY_HEADERS, done.rows()))
    echo("")
    echo(verdict)
    echo(f"outputs in {outputs}/: " + ", ".join(f"{name}/" if (done.out / name).is_dir() else name for name in written))
    echo(f"metrics: {outputs}/metrics/tw_gates.prom (Prometheus textfile of this run)")
    markdown = (
        f"### tw-gates demo\n\n{verdict}\n\n"
        + markdown_table(SUMMARY_HEADERS, done.rows())
        + f"\nOutputs in {inline_code(f'{outputs}/')}; metrics in {inline_code(f'{outputs}/metrics/tw_gates.prom')}.\n"
    )
    atomic_write_text(done.out / "summary.md", markdown)
    done.summary_markdown = markdown
