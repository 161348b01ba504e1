"""What a hostile corpus, a busy machine or a curious target can do to the
adversarial gate: corpus regexes run in linear time (RE2), time budgets are
judged on the case's CPU time and reported as time budgets, and the target
gets an allowlisted environment."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tw_gates.parser.cases import cpu_limit_s, wall_limit_s
from tw_gates.schemas.corpus import AdversarialReport, Expectations

PY = shlex.quote(sys.executable)
# Catastrophic backtracking in a backtracking engine: 2^32 ways to split 32 a's.
REDOS = "^<p>(a+)+$"


def write_corpora(
    folder: Path, cases: list[dict], *, patterns: dict | None = None, manifest: dict | None = None
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.json").write_text(
        json.dumps({"files": ["probe.json"], "patterns": patterns or {}, **(manifest or {})})
    )
    corpus = {"category": "probe", "description": "test cases", "cases": cases}
    (folder / "probe.json").write_text(json.dumps(corpus))
    return folder


def python_target(code: str) -> str:
    return f"{PY} -c {shlex.quote(code)}"


def report_of(path: Path) -> AdversarialReport:
    return AdversarialReport.model_validate_json(path.read_text())


def tw_gates(*argv: object, timeout: float = 90) -> subprocess.CompletedProcess:
    """The CLI in its own process, so a hang is a failed test, not a stuck suite."""
    return subprocess.run(
        [sys.executable, "-m", "tw_gates", *map(str, argv)], capture_output=True, text=True, timeout=timeout
    )


# --- 14.5: corpus regexes under a time bound ------------------------------------------------------


def test_a_backtracking_regex_from_a_corpus_finishes_in_linear_time(tmp_path):
    cases = [
        {"id": "redos-case", "description": "d", "markdown": "a" * 32 + "\n", "expect": {"must_not_match": [REDOS]}},
        {
            "id": "redos-named",
            "description": "d",
            "markdown": "a" * 32 + "\n",
            "expect": {"must_not_match_patterns": ["redos"]},
        },
    ]
    corpora = write_corpora(tmp_path / "c", cases, patterns={"redos": {"pattern": REDOS, "description": "d"}})
    report_path = tmp_path / "report.json"
    started = time.monotonic()
    done = tw_gates("adversarial", "--corpora", corpora, "--target", "builtin:safe", "--report", report_path)
    assert time.monotonic() - started < 60
    assert done.returncode == 0, done.stdout + done.stderr
    assert all(case.passed for case in report_of(report_path).cases)


@pytest.mark.parametrize(
    "pattern, why",
    [("(?=<script)", "invalid perl operator"), (r"(a)\1", "invalid escape sequence"), (r"\u202e", "\\u")],
)
def test_a_regex_re2_cannot_run_is_refused_when_the_corpus_loads(cli, tmp_path, pattern, why):
    cases = [{"id": "x", "description": "d", "markdown": "a", "expect": {"must_not_match": [pattern]}}]
    corpora = write_corpora(tmp_path / "c", cases)
    code, _, err = cli("adversarial", "--corpora", corpora, "--target", "builtin:safe")
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1, err
    assert "probe.json" in lines[0] and "RE2" in lines[0] and why in lines[0]


def test_a_named_pattern_re2_cannot_run_is_refused_with_its_name(cli, tmp_path):
    cases = [{"id": "x", "description": "d", "markdown": "a"}]
    corpora = write_corpora(tmp_path / "c", cases, patterns={"look": {"pattern": "a(?!b)", "description": "d"}})
    code, _, err = cli("adversarial", "--corpora", corpora, "--target", "builtin:safe")
    assert code == 1 and "manifest.json" in err and "look" in err and "RE2" in err


# --- 11.5: time budgets on CPU time, reported as time budgets -------------------------------------


SLEEPER = "import sys, time\nsys.stdin.read()\ntime.sleep(0.6)\nprint('<p>x</p>')"
BURNER = "import sys, time\nsys.stdin.read()\nend = time.process_time() + 0.6\nwhile time.process_time() < end: pass"


def test_a_budget_is_judged_on_cpu_time_not_wall_time(cli, tmp_path):
    # Waiting (a busy machine, a slow disk) is not the parser's work: 0.6 s asleep fits 200 ms of CPU.
    cases = [{"id": "sleepy", "description": "d", "markdown": "x", "expect": {"max_ms": 200}}]
    corpora = write_corpora(tmp_path / "c", cases)
    report_path = tmp_path / "report.json"
    code, out, _ = cli("adversarial", "--corpora", corpora, "--report", report_path, "--target", python_target(SLEEPER))
    case = report_of(report_path).cases[0]
    assert code == 0, out
    assert case.passed and case.ms >= 600 and case.cpu_ms is not None and case.cpu_ms < 200


def test_a_budget_overrun_is_reported_as_a_time_budget_never_as_a_violation(cli, tmp_path):
    cases = [
        {"id": "burner", "description": "d", "markdown": "x", "expect": {"max_ms": 100}},
    ]
    corpora = write_corpora(tmp_path / "c", cases)
    report_path = tmp_path / "report.json"
    summary = tmp_path / "summary.md"
    summary.touch()
    code, out, err = cli(
        "adversarial",
        "--corpora",
        corpora,
        "--report",
        report_path,
        "--target",
        python_target(BURNER),
        env={"GITHUB_STEP_SUMMARY": str(summary)},
    )
    report = report_of(report_path)
    case = report.cases[0]
    assert code == 2  # a parser that overruns its budget still fails the gate ...
    assert case.status == "over_budget" and case.cpu_ms >= 500
    assert [(v.expectation, v.kind) for v in case.violations] == [("max_ms", "time_budget")]
    assert "ms CPU" in case.violations[0].detail
    # ... but it is never called a violation.
    assert "over its time budget" in out and "parser violations" not in out
    assert "violated" not in err and "1 case(s) over their time budget: burner" in err
    assert report.categories[0].parser_violations == 0 and report.categories[0].over_budget == 1
    text = summary.read_text()
    assert "#### Over their time budget" in text and "#### Parser violations" not in text


def test_a_target_that_hangs_is_stopped_by_the_wall_clock_guard(cli, tmp_path):
    cases = [{"id": "hang", "description": "d", "markdown": "x", "expect": {"max_ms": 300}}]
    corpora = write_corpora(tmp_path / "c", cases)
    report_path = tmp_path / "report.json"
    started = time.monotonic()
    code, _, err = cli(
        "adversarial",
        "--corpora",
        corpora,
        "--timeout",
        "2",
        "--report",
        report_path,
        "--target",
        python_target("import time\nwhile True: time.sleep(1)"),
    )
    assert time.monotonic() - started < 20
    case = report_of(report_path).cases[0]
    assert code == 2 and case.status == "over_budget" and "over their time budget: hang" in err
    assert [(v.expectation, v.kind) for v in case.violations] == [("time_limit", "time_budget")]


def test_the_wall_clock_guard_is_generous_and_the_cpu_limit_cuts_a_runaway():
    two_seconds = Expectations(max_ms=2000).merged_over(Expectations())
    assert wall_limit_s(two_seconds, 60) >= 20  # a 5x slower machine still finishes a 2 s case
    assert wall_limit_s(two_seconds, 5) == 5  # --timeout caps it
    assert cpu_limit_s(two_seconds) == 4
    unbudgeted = Expectations().merged_over(Expectations())
    assert wall_limit_s(unbudgeted, 60) == 60 and cpu_limit_s(unbudgeted) is None


# --- 14.6: the target's environment is an allowlist -----------------------------------------------


LEAKY = {
    "DATABASE_URL": "postgres://app:hunter2-db-password@db.internal/app",
    "MY_CREDENTIALS": "user:s3cr3t",
    "NPM_AUTH": "npm_abcdefghijklmnopqrstuvwxyz0123456789",
    "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
    "GITHUB_TOKEN": "ghp_" + "A1b2C3d4" * 4 + "ZZZZ",
    "PYTHONSTARTUP": "evil.py",
}


def env_dump_target(out: Path) -> str:
    return python_target(
        f"import json, os, sys\nsys.stdin.read()\nopen({str(out)!r}, 'w').write(json.dumps(dict(os.environ)))"
    )


def test_the_target_gets_only_allowlisted_and_declared_variables(cli, tmp_path):
    dump = tmp_path / "env.json"
    cases = [{"id": "env", "description": "d", "markdown": "x"}]
    corpora = write_corpora(tmp_path / "c", cases, manifest={"target_env": {"LC_ALL": "C.UTF-8", "TZ": "UTC"}})
    env = {**LEAKY, "RENDERER_MODE": "strict", "LANG": "C.UTF-8", "TMPDIR": str(tmp_path)}
    code, out, _ = cli(
        "adversarial", "--corpora", corpora, "--pass-env", "RENDERER_MODE", "--target", env_dump_target(dump), env=env
    )
    assert code == 0, out
    seen = json.loads(dump.read_text())
    assert not set(LEAKY) & set(seen)
    assert seen["RENDERER_MODE"] == "strict" and seen["LC_ALL"] == "C.UTF-8" and seen["TZ"] == "UTC"
    assert seen["PATH"] == os.environ["PATH"] and seen["LANG"] == "C.UTF-8" and seen["TMPDIR"] == str(tmp_path)
    allowed = {"PATH", "HOME", "LANG", "TMPDIR", "RENDERER_MODE", "TZ"}
    assert {name for name in seen if not name.startswith("LC_")} <= allowed


def test_declaring_a_secret_for_the_target_is_refused(cli, tmp_path):
    corpora = write_corpora(tmp_path / "c", [{"id": "x", "description": "d", "markdown": "x"}])
    code, _, err = cli(
        "adversarial",
        "--corpora",
        corpora,
        "--pass-env",
        "GITHUB_TOKEN",
        "--target",
        "cat",
        env={"GITHUB_TOKEN": LEAKY["GITHUB_TOKEN"]},
    )
    assert code == 1 and "--pass-env GITHUB_TOKEN: it holds a secret" in err and LEAKY["GITHUB_TOKEN"] not in err


@pytest.mark.parametrize("name", ["PATH", "LD_PRELOAD", "PYTHONPATH", "NODE_OPTIONS", "lc_all", "X"])
def test_a_corpus_may_set_only_locale_and_time_zone_variables(cli, tmp_path, name):
    corpora = write_corpora(
        tmp_path / "c", [{"id": "x", "description": "d", "markdown": "x"}], manifest={"target_env": {name: "v"}}
    )
    code, _, err = cli("adversarial", "--corpora", corpora, "--target", "cat")
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and "target_env" in lines[0] and "only LANG, LANGUAGE, LC_*, TZ" in lines[0]
