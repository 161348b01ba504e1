"""Steps 4-6 and 10, the central repository's own gates: G1 on this
checkout, G2 on the behavioral tests it runs, the signed performance
baseline G3 compares with, and G4/G5."""

from __future__ import annotations

import importlib.util
import os
import sys
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path

from tw_gates.chain.behavioral import BehavioralSettings, behavioral
from tw_gates.chain.hmac_policy import HmacPolicySettings, hmac_policy
from tw_gates.chain.telemetry_check import TelemetryCheckSettings, telemetry_check
from tw_gates.chain.verify_nets import VerifyNetsSettings, verify_nets
from tw_gates.core import proc
from tw_gates.core.fsio import atomic_write_bytes, atomic_write_json
from tw_gates.core.keyrings import BaselineKeys
from tw_gates.demo.model import (
    CAPTURE_RUNS,
    CAPTURE_WARMUP,
    DEMO_CORPUS_MAX_BYTES,
    EXPECTED_BEHAVIORAL,
    PYTEST_TIMEOUT_S,
    TEST_WORKERS,
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


def tests_not_run(demo: Demo) -> Outcome | None:
    """Why the behavioral tests cannot run here (G2 and phase 0 are then not run)."""
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
    return None


def _workers() -> list[str]:
    if importlib.util.find_spec("xdist") is None or (os.cpu_count() or 1) < TEST_WORKERS:
        return []
    return ["-n", str(TEST_WORKERS)]


def run_behavioral_tests(demo: Demo) -> proc.ProcResult:
    """pytest tests/behavioral, writing its JUnit XML for G2 (blocks until it ends)."""
    junit = demo.path("behavioral.xml")
    junit.parent.mkdir(parents=True, exist_ok=True)
    # The demo never hands the user's GitHub token to anything it runs.
    child_env = {k: v for k, v in os.environ.items() if k not in ("GITHUB_TOKEN", "GH_TOKEN")}
    argv = [sys.executable, "-m", "pytest", "tests/behavioral", "-q", "-p", "no:cacheprovider", *_workers()]
    return proc.run([*argv, "--junitxml", str(junit)], timeout=PYTEST_TIMEOUT_S, cwd=demo.repo_dir, env=child_env)


def start_behavioral_tests(demo: Demo, pool: Executor) -> None:
    """Start the behavioral tests with the demo: they mostly wait, and steps 1-4 run meanwhile."""
    if tests_not_run(demo) is None:
        demo.tests_running = pool.submit(run_behavioral_tests, demo)


def step_behavioral(demo: Demo) -> Outcome:
    skipped = tests_not_run(demo)
    if skipped is not None:
        return skipped
    ran = demo.tests_running.result() if demo.tests_running is not None else run_behavioral_tests(demo)
    junit = demo.path("behavioral.xml")
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
    workers = f", {TEST_WORKERS} workers" if _workers() else ""
    return Outcome(
        "PASS",
        f"{result.summary} (pytest tests/behavioral{workers}, {ran.duration_s:.1f}s, started with the demo) "
        f"-> {show(junit)}",
        short=result.summary,
    )


# --- 6. baseline --------------------------------------------------------------------------


def write_demo_corpus(folder: Path) -> int:
    """The built-in corpus's documents of at most DEMO_CORPUS_MAX_BYTES, as files; their number."""
    folder.mkdir(parents=True, exist_ok=True)
    chosen = [(name, data) for name, data in baseline.builtin_corpus() if len(data) <= DEMO_CORPUS_MAX_BYTES + 512]
    for name, data in chosen:
        atomic_write_bytes(folder / name, data)
    return len(chosen)


def step_baseline(demo: Demo) -> Outcome:
    corpus = demo.path("perf", "corpus")
    documents = write_demo_corpus(corpus)
    settings = explicit(
        baseline.CaptureSettings,
        target="builtin:safe",
        corpus=str(corpus),
        runs=CAPTURE_RUNS,
        warmup=CAPTURE_WARMUP,
        timeout_s=120,
    )
    base_path, current_path = demo.path("perf", "baseline.json"), demo.path("perf", "current.json")
    # Side by side, one worker process each: whatever else the machine is doing weighs
    # on both alike (two captures a few seconds apart on a busy machine differ more).
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="tw-demo-capture") as pool:
        base, current = pool.map(baseline.capture, [settings, settings])
    atomic_write_json(base_path, baseline.capture_document(base))
    kid = baseline.sign_capture(base_path, explicit(BaselineKeys, **demo.signing))
    atomic_write_json(current_path, baseline.capture_document(current))
    lat, now = base.latency, current.latency
    return Outcome(
        "PASS",
        (
            f"builtin:safe on a demo-sized corpus ({documents} documents of the built-in corpus up to "
            f"{DEMO_CORPUS_MAX_BYTES // 1024} KiB, {show(corpus)}; {lat.samples} samples): "
            f"p50 {lat.p50_ms:g} ms, p95 {lat.p95_ms:g} ms, peak RSS {base.peak_rss_mib:g} MiB, "
            f"signed with key {kid} -> {show(base_path)}; current capture (taken side by side) p50 {now.p50_ms:g} ms, "
            f"p95 {now.p95_ms:g} ms -> {show(current_path)}"
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
