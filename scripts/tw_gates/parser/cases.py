"""One adversarial case: the target's runner and environment, the case's
limits, and the judgement of what its process did and produced.

A case's ``max_ms`` is its *time budget*, judged on the CPU time (user +
system) of its process: time spent waiting on a busy machine is not the
parser's. Past the budget a CPU limit (RLIMIT_CPU) cuts a runaway; a
generous wall-clock limit stays as the guard against a process that hangs
without using CPU. An overrun is reported as a time budget, apart from the
security checks."""

from __future__ import annotations

import json
import math
import os
import re
import signal
from collections.abc import Callable, Iterable
from pathlib import Path

import tw_gates
from tw_gates.core import proc
from tw_gates.core.errors import UsageError
from tw_gates.core.redact import REDACTOR, secret_env_values
from tw_gates.parser import target_spec
from tw_gates.parser.corpora import PlannedCase
from tw_gates.parser.forkserver import CaseLimits
from tw_gates.schemas.corpus import CaseResult, CaseStatus, ResolvedExpectations, Violation, ViolationKind

# Output beyond this is not kept (the child is still drained, so it never blocks).
MAX_OUTPUT_BYTES = 64 * 1024 * 1024
# The hang guard of a case with max_ms: ten times its budget, at least ten
# seconds past it (a CPU-bound case on a machine five times oversubscribed
# still finishes), never past --timeout.
WALL_GUARD_FACTOR = 10
WALL_GUARD_MIN_S = 10.0
# The CPU cut-off: twice the budget, at least one second past it.
CPU_CUTOFF_FACTOR = 2
CPU_CUTOFF_MIN_S = 1.0
# What every target gets from the gate's environment; anything else only when declared.
BASE_ENV = ("PATH", "HOME", "LANG", "TMPDIR")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

Runner = Callable[[bytes, CaseLimits], proc.ProcResult]
Problem = tuple[str, ViolationKind, str]  # (expectation, kind, detail)


def builtin_name(target: str) -> str | None:
    """The builtin configuration a target names (validated), None for a command."""
    if not target.startswith(target_spec.BUILTIN_PREFIX):
        return None
    name = target[len(target_spec.BUILTIN_PREFIX) :]
    if name not in target_spec.NAMES:
        known = ", ".join(target_spec.BUILTIN_PREFIX + n for n in target_spec.NAMES)
        raise UsageError(f"unknown builtin target {target!r} (known: {known})")
    return name


def target_env(declared: Iterable[str] = (), corpus_env: dict[str, str] | None = None) -> dict[str, str]:
    """The target's environment: PATH, HOME, LANG, LC_*, TMPDIR from the
    gate's, the variables the operator declared (--pass-env), and the locale
    the corpus sets. Nothing else: the parser under test has no business with
    the job's tokens, keys or connection strings, whatever their names."""
    secrets = set(secret_env_values())
    names = list(dict.fromkeys(declared))
    for name in names:
        if not _ENV_NAME.fullmatch(name):
            raise UsageError(f"--pass-env {name!r}: not an environment variable name")
        value = os.environ.get(name, "")
        if value and (value in secrets or list(secret_env_values({name: value})) or REDACTOR.redact(value) != value):
            raise UsageError(f"--pass-env {name}: it holds a secret; the parser under test never gets one")
    env = {
        name: value
        for name, value in os.environ.items()
        if (name in BASE_ENV or name.startswith("LC_") or name in names) and value not in secrets
    }
    env.update(corpus_env or {})
    return env


def builtin_env(env: dict[str, str]) -> dict[str, str]:
    """A builtin target's environment: the target's, plus where tw_gates is."""
    return {**env, "PYTHONPATH": str(Path(tw_gates.__file__).resolve().parents[1])}


def command_runner(argv: list[str], env: dict[str, str]) -> Runner:
    """Each case a process of the command (``core.proc``: own process group, capped output)."""

    def run(data: bytes, limits: CaseLimits) -> proc.ProcResult:
        return proc.run(
            argv,
            timeout=limits.wall_s,
            input=data,
            env=env,
            max_output_bytes=limits.max_output_bytes,
            limits=proc.Limits(address_space_bytes=limits.address_space_bytes, cpu_seconds=limits.cpu_s),
        )

    return run


def wall_limit_s(expect: ResolvedExpectations, ceiling_s: float) -> float:
    if expect.max_ms is None:
        return ceiling_s
    budget = expect.max_ms / 1000
    return min(ceiling_s, max(WALL_GUARD_FACTOR * budget, budget + WALL_GUARD_MIN_S))


def cpu_limit_s(expect: ResolvedExpectations) -> int | None:
    if expect.max_ms is None:
        return None
    budget = expect.max_ms / 1000
    return math.ceil(max(CPU_CUTOFF_FACTOR * budget, budget + CPU_CUTOFF_MIN_S))


def show(text: str, limit: int = 120) -> str:
    """Text safe to print in a log or a table: ASCII only, control and
    bidi characters escaped (a report must not itself carry the attack)."""
    shown = json.dumps(text[:limit], ensure_ascii=True)[1:-1]
    return shown + ("..." if len(text) > limit else "")


def _around(text: str, start: int, end: int) -> str:
    return show(text[max(0, start - 30) : min(len(text), end + 30)], 160)


_PARSE_MS = re.compile(rf"^{re.escape(target_spec.PARSE_MS_PREFIX)}\s*([0-9]+(?:\.[0-9]+)?)\s*$", re.M)


def check_output(stdout: bytes, planned: PlannedCase) -> list[tuple[str, str]]:
    """(expectation, detail) for every output expectation that does not hold."""
    expect = planned.expect
    found: list[tuple[str, str]] = []
    if expect.must_be_utf8:
        try:
            stdout.decode("utf-8")
        except UnicodeDecodeError as exc:
            found.append(("must_be_utf8", f"output is not UTF-8: {exc.reason} at byte {exc.start}"))
    text = stdout.decode("utf-8", "replace")
    for needle in expect.must_not_contain:
        at = text.find(needle)
        if at >= 0:
            found.append(
                ("must_not_contain", f'contains "{show(needle)}": ...{_around(text, at, at + len(needle))}...')
            )
    for label, regex in planned.regexes:
        match = regex.search(text)
        if match:
            found.append(
                ("must_not_match", f"matches {show(label, 60)}: ...{_around(text, match.start(), match.end())}...")
            )
    return found


def _stopped(result: proc.ProcResult, limits: CaseLimits) -> bool:
    """The case was stopped by the hang guard or its CPU cut-off (not a crash of its own)."""
    cut = result.signal == signal.SIGXCPU or (
        result.signal == signal.SIGKILL and limits.cpu_s is not None and result.cpu_s >= limits.cpu_s
    )
    return result.timed_out or cut


def _time_problems(result: proc.ProcResult, expect: ResolvedExpectations, limits: CaseLimits) -> list[Problem]:
    cpu_ms = result.cpu_s * 1000
    budget = f", over its time budget of {expect.max_ms} ms" if expect.max_ms else ""
    if result.timed_out:
        detail = f"stopped by the hang guard after {limits.wall_s:.1f}s wall without finishing ({cpu_ms:.0f} ms CPU)"
        return [("time_limit", "time_budget", detail + budget)]
    if _stopped(result, limits):
        return [("max_ms", "time_budget", f"stopped at its CPU limit after {cpu_ms:.0f} ms CPU{budget}")]
    if expect.max_ms is not None and cpu_ms > expect.max_ms:
        detail = f"used {cpu_ms:.0f} ms CPU{budget} ({result.duration_s * 1000:.0f} ms wall)"
        return [("max_ms", "time_budget", detail)]
    return []


def _process_problems(result: proc.ProcResult, expect: ResolvedExpectations, limits: CaseLimits) -> list[Problem]:
    """Time, memory and crashes: always the parser's fault, whoever the case is about."""
    problems = _time_problems(result, expect, limits)
    if not _stopped(result, limits) and (result.signal or (expect.must_not_crash and result.returncode != 0)):
        problems.append(("must_not_crash", "crash", result.describe()))
    rss_mb = result.max_rss_kib / 1024
    if expect.max_rss_mb is not None and rss_mb > expect.max_rss_mb:
        detail = f"peak RSS {rss_mb:.0f} MiB, over its memory budget of {expect.max_rss_mb} MiB"
        problems.append(("max_rss_mb", "memory_budget", detail))
    return problems


def _outcome(result: proc.ProcResult) -> str:
    if result.timed_out:
        outcome = "timed out"
    elif result.signal:
        outcome = f"killed by signal {result.signal}"
    else:
        outcome = f"exited {result.returncode}"
    if result.stdout_truncated:
        outcome += f"; output cut at {MAX_OUTPUT_BYTES // (1024 * 1024)} MiB"
    return outcome


def status_of(violations: list[Violation]) -> CaseStatus:
    if any(v.counts_as == "parser" and v.kind in ("output", "crash") for v in violations):
        return "violation"
    if any(v.kind in ("time_budget", "memory_budget") for v in violations):
        return "over_budget"
    return "downstream" if violations else "passed"


def case_limits(expect: ResolvedExpectations, timeout_s: float, memory_limit_mb: int) -> CaseLimits:
    return CaseLimits(
        wall_s=wall_limit_s(expect, timeout_s),
        cpu_s=cpu_limit_s(expect),
        address_space_bytes=memory_limit_mb * 1024 * 1024,
        max_output_bytes=MAX_OUTPUT_BYTES,
    )


def run_case(planned: PlannedCase, runner: Runner, limits: CaseLimits) -> CaseResult:
    data = planned.case.input_bytes()
    result = runner(data, limits)
    violations = [
        Violation(expectation=expectation, kind=kind, detail=detail, counts_as="parser")
        for expectation, kind, detail in _process_problems(result, planned.expect, limits)
    ]
    violations += [
        Violation(expectation=expectation, kind="output", detail=detail, counts_as=planned.case.checks)
        for expectation, detail in check_output(result.stdout, planned)
    ]
    parse_ms = _PARSE_MS.findall(result.stderr.decode("utf-8", "replace")[-4096:])
    return CaseResult(
        id=planned.case.id,
        category=planned.category,
        checks=planned.case.checks,
        passed=not violations,
        status=status_of(violations),
        ms=round(result.duration_s * 1000, 1),
        cpu_ms=round(result.cpu_s * 1000, 1),
        parse_ms=float(parse_ms[-1]) if parse_ms else None,
        rss_mb=round(result.max_rss_kib / 1024, 1),
        input_bytes=len(data),
        outcome=_outcome(result),
        violations=violations,
    )
