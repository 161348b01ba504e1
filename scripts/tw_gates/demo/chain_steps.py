"""Steps 4-6 and 10, the central repository's own gates: G1 on this
checkout, G2 on the behavioral tests it runs, the signed performance
baseline G3 compares with, and G4/G5."""

from __future__ import annotations

import importlib.util
import os
import sys

from tw_gates.chain.behavioral import BehavioralSettings, behavioral
from tw_gates.chain.hmac_policy import HmacPolicySettings, hmac_policy
from tw_gates.chain.telemetry_check import TelemetryCheckSettings, telemetry_check
from tw_gates.chain.verify_nets import VerifyNetsSettings, verify_nets
from tw_gates.core import proc
from tw_gates.core.fsio import atomic_write_json
from tw_gates.core.settings import SigningSettings
from tw_gates.demo.model import (
    CAPTURE_RUNS,
    CAPTURE_WARMUP,
    EXPECTED_BEHAVIORAL,
    PYTEST_TIMEOUT_S,
    Demo,
    Outcome,
    Status,
    explicit,
    show,
)
from tw_gates.parser import baseline

# --- 4. G1 --------------------------------------------------------------------------------


def step_verify_nets(demo: Demo) -> Outcome:
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


# --- 10. G4, G5 -----------------------------------------------------------------------------


def step_policy(demo: Demo) -> Outcome:
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
