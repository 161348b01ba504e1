"""One adversarial case: the target's command line and environment, the
case's process with its limits, and the judgement of what it produced."""

from __future__ import annotations

import json
import os
import re
import sys

from tw_gates.core import proc
from tw_gates.core.errors import UsageError
from tw_gates.core.redact import secret_env_values
from tw_gates.parser import target_spec
from tw_gates.parser.corpora import PlannedCase
from tw_gates.schemas.corpus import CaseResult, ResolvedExpectations, Violation

# Output beyond this is not kept (the child is still drained, so it never blocks).
MAX_OUTPUT_BYTES = 64 * 1024 * 1024
# A case with max_ms is stopped once it has clearly overrun it: at twice its
# budget, and never sooner than two seconds past it.
MIN_GRACE_S = 2.0


def target_argv(target: str) -> list[str]:
    """The command a case runs; builtin targets are this interpreter running
    ``tw_gates.parser.targets``, so they get the same limits."""
    if target.startswith(target_spec.BUILTIN_PREFIX):
        name = target[len(target_spec.BUILTIN_PREFIX) :]
        if name not in target_spec.NAMES:
            known = ", ".join(target_spec.BUILTIN_PREFIX + n for n in target_spec.NAMES)
            raise UsageError(f"unknown builtin target {target!r} (known: {known})")
        return [sys.executable, "-m", "tw_gates.parser.targets", name]
    return target_spec.command_argv(target)


def target_env() -> dict[str, str]:
    """The gate's environment minus its secrets: the parser under test has
    no business with the job's tokens and keys."""
    secrets = set(secret_env_values())
    return {name: value for name, value in os.environ.items() if value not in secrets}


def time_limit_s(expect: ResolvedExpectations, ceiling_s: float) -> float:
    if expect.max_ms is None:
        return ceiling_s
    budget = expect.max_ms / 1000
    return min(ceiling_s, max(2 * budget, budget + MIN_GRACE_S))


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


def _resource_problems(
    result: proc.ProcResult, expect: ResolvedExpectations, limit: float
) -> list[tuple[str, str, bool]]:
    """(expectation, detail, always a parser fault) for time, memory and crashes."""
    problems: list[tuple[str, str, bool]] = []
    ms = result.duration_s * 1000
    rss_mb = result.max_rss_kib / 1024
    if result.timed_out:
        detail = f"killed after {limit:.1f}s without finishing"
        problems.append(("time_limit", detail + (f" (max_ms {expect.max_ms})" if expect.max_ms else ""), True))
    elif result.signal or (expect.must_not_crash and result.returncode != 0):
        problems.append(("must_not_crash", result.describe(), True))
    if expect.max_ms is not None and not result.timed_out and ms > expect.max_ms:
        problems.append(("max_ms", f"took {ms:.0f} ms, above max_ms {expect.max_ms}", True))
    if expect.max_rss_mb is not None and rss_mb > expect.max_rss_mb:
        problems.append(("max_rss_mb", f"peak RSS {rss_mb:.0f} MiB, above max_rss_mb {expect.max_rss_mb}", True))
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


def run_case(
    planned: PlannedCase, argv: list[str], timeout_s: float, memory_limit_mb: int, env_: dict[str, str]
) -> CaseResult:
    expect = planned.expect
    data = planned.case.input_bytes()
    limit = time_limit_s(expect, timeout_s)
    result = proc.run(
        argv,
        timeout=limit,
        input=data,
        env=env_,
        max_output_bytes=MAX_OUTPUT_BYTES,
        limits=proc.Limits(address_space_bytes=memory_limit_mb * 1024 * 1024),
    )
    problems = _resource_problems(result, expect, limit)
    problems += [(expectation, detail, False) for expectation, detail in check_output(result.stdout, planned)]
    violations = [
        Violation(expectation=kind, detail=detail, counts_as="parser" if resource else planned.case.checks)
        for kind, detail, resource in problems
    ]
    parse_ms = _PARSE_MS.findall(result.stderr.decode("utf-8", "replace")[-4096:])
    return CaseResult(
        id=planned.case.id,
        category=planned.category,
        checks=planned.case.checks,
        passed=not violations,
        ms=round(result.duration_s * 1000, 1),
        parse_ms=float(parse_ms[-1]) if parse_ms else None,
        rss_mb=round(result.max_rss_kib / 1024, 1),
        input_bytes=len(data),
        outcome=_outcome(result),
        violations=violations,
    )
