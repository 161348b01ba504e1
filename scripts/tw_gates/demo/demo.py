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

import os
import re
import secrets
import shutil
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tw_gates.core import metrics
from tw_gates.core.errors import ExitCode, TwGatesError, UsageError
from tw_gates.core.fsio import atomic_write_text
from tw_gates.core.markdown import inline_code, markdown_table
from tw_gates.core.progress import Progress, silent
from tw_gates.core.redact import REDACTOR
from tw_gates.core.settings import load_settings
from tw_gates.core.signing import KeyRing
from tw_gates.demo.audit_steps import step_audit, step_issues, step_triage
from tw_gates.demo.central_steps import step_adversarial, step_canary, step_phase
from tw_gates.demo.chain_steps import (
    start_behavioral_tests,
    step_baseline,
    step_behavioral,
    step_policy,
    step_verify_nets,
)
from tw_gates.demo.consumer_steps import step_ingest, step_platform, step_self_audit
from tw_gates.demo.model import (
    CONSUMER_DIR,
    DEMO_KID,
    Demo,
    DemoSettings,
    Outcome,
    Step,
    StepResult,
    show,
)
from tw_gates.parser.adversarial import text_table
from tw_gates.phases.common import head_commit

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
    # The central documents (baseline, phase unlock, canary state, evidence head) each have
    # their own key, random for this run: a consumer's key never signs them. Registered for
    # redaction, not ::add-mask::ed: masking would print them into the raw log, and
    # nothing but this process (whose output is redacted) ever holds them.
    central: dict[str, Any] = {}
    for ring in ("phase", "baseline", "canary", "evidence"):
        central[f"{ring}_key"] = secrets.token_hex(32)
        central[f"{ring}_key_id"] = DEMO_KID
        REDACTOR.register(central[f"{ring}_key"])
    if settings.hmac_key is not None:
        KeyRing(signing_key=settings.hmac_key.get_secret_value())  # a key too short: one clear line, before any step
        return (
            {"hmac_key": settings.hmac_key.get_secret_value(), "hmac_key_id": settings.hmac_key_id, **central},
            f"TW_HMAC_KEY, key id {settings.hmac_key_id!r}",
        )
    key = secrets.token_hex(32)
    REDACTOR.register(key)
    return (
        {"hmac_key": key, "hmac_key_id": DEMO_KID, **central},
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
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tw-demo-tests") as pool:
        if any(step.name == "behavioral" for step in steps):
            start_behavioral_tests(demo, pool)
        results = _run_steps(steps, demo, echo)
    done = DemoResult(list(results.values()), out, time.monotonic() - started)
    sink.flush()
    _report(done, echo)
    return done


def _run_steps(steps: list[Step], demo: Demo, echo: Progress) -> dict[str, StepResult]:
    results: dict[str, StepResult] = {}
    selected = {s.name for s in steps}
    for step in steps:
        echo(f"[{step.number:>2}/{len(STEPS)}] {step.gate:<11} {step.doing} ...")
        began = time.monotonic()
        unmet = _unmet(step, results, selected)
        outcome = Outcome("SKIP", unmet) if unmet else run_step(step, demo)
        result = results[step.name] = StepResult(step, outcome, time.monotonic() - began)
        echo(f"        {outcome.label}: {outcome.detail} ({result.seconds:.1f}s)")
    return results


def _report(done: DemoResult, echo: Callable[[str], None]) -> None:
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
