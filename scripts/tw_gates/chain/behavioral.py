"""G2: the behavioral tests passed, all of them.

Reads JUnit XML (junitparser) from one or more files, folders or globs and
reports ``passed/expected``. The gate fails on any failure, error or skip and
on a shortfall (fewer passing tests than expected: a test file that did not
run, or was not collected, is as bad as one that failed). Without an
expected count every test the reports hold must pass, and there must be at
least one: the number is the repository's own, never a default of ours. A test reported
twice (the same report given twice, a rerun plugin) counts once, with its
worst outcome, so duplicates cannot make up for missing tests."""

from __future__ import annotations

import glob
import re
from pathlib import Path
from typing import Literal

from junitparser import JUnitXml, TestSuite
from pydantic import BaseModel, Field

from tw_gates.core import metrics
from tw_gates.core.errors import ExitCode, UsageError
from tw_gates.core.fsio import read_text_input, regular_files_under
from tw_gates.core.settings import EnvSettings, env

# 0: every test in the reports (at least one). A repository that knows its count
# (tw-gates' own behavioral suite: 14) says so, and a missing test file then fails G2.
EVERY_REPORTED = 0
MAX_JUNIT_BYTES = 64 * 1024 * 1024
Outcome = Literal["passed", "failed", "error", "skipped"]
_SEVERITY: dict[str, int] = {"passed": 0, "skipped": 1, "failed": 2, "error": 3}


class BehavioralSettings(EnvSettings):
    # Files, folders (every *.xml below) or globs; separated by newlines, commas or spaces.
    junit: str | None = Field(None, validation_alias=env("TW_JUNIT", "junit"))
    expect: int = Field(EVERY_REPORTED, ge=0, le=1_000_000, validation_alias=env("TW_EXPECT_TESTS", "expect"))


class CaseResult(BaseModel):
    suite: str
    name: str
    outcome: Outcome
    message: str = ""


class BehavioralResult(BaseModel):
    expected: int
    files: list[str]
    cases: list[CaseResult] = Field(default_factory=list)
    duplicates: int = 0

    def count(self, outcome: Outcome) -> int:
        return sum(1 for c in self.cases if c.outcome == outcome)

    @property
    def passed(self) -> int:
        return self.count("passed")

    @property
    def score(self) -> str:
        return f"{self.passed}/{self.expected}"

    @property
    def problems(self) -> list[CaseResult]:
        return [c for c in self.cases if c.outcome != "passed"]

    @property
    def ok(self) -> bool:
        return not self.problems and self.passed >= self.expected

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK if self.ok else ExitCode.REJECTED

    @property
    def summary(self) -> str:
        parts = [f"{self.score} passed"]
        problems: tuple[Outcome, ...] = ("failed", "error", "skipped")
        for outcome in problems:
            if self.count(outcome):
                parts.append(f"{self.count(outcome)} {outcome}")
        if not self.cases:
            parts.append("no test in the reports")
        elif self.passed < self.expected and not self.problems:
            parts.append(f"{self.expected - self.passed} missing")
        if self.passed > self.expected:
            parts.append(f"{self.passed - self.expected} more than expected: raise --expect")
        return ", ".join(parts)

    def by_suite(self) -> dict[str, dict[str, int]]:
        table: dict[str, dict[str, int]] = {}
        for case in self.cases:
            row = table.setdefault(case.suite, {"passed": 0, "failed": 0, "error": 0, "skipped": 0})
            row[case.outcome] += 1
        return table


def expand_junit_paths(spec: str | list[str] | None) -> list[Path]:
    """Files, folders (*.xml below them) and globs, in a stable order."""
    words = spec if isinstance(spec, list) else re.split(r"[\s,]+", (spec or "").strip())
    words = [w for w in words if w]
    if not words:
        raise UsageError("no JUnit XML given: pass --junit FILE (or set TW_JUNIT)")
    found: list[Path] = []
    for word in words:
        path = Path(word)
        if path.is_dir():
            matches, _skipped = regular_files_under(path, (".xml",))  # no link followed
            if not matches:
                raise UsageError(f"no *.xml file in folder {word}")
        elif glob.has_magic(word):
            matches = sorted(Path(p) for p in glob.glob(word, recursive=True) if Path(p).is_file())
            if not matches:
                raise UsageError(f"no JUnit XML matches {word}")
        elif path.is_file():
            matches = [path]
        elif path.exists():  # a FIFO, a device: refused by name, never opened
            raise UsageError(
                f"JUnit XML {word} is a FIFO, not a regular file"
                if path.is_fifo()
                else f"JUnit XML {word} is not a regular file"
            )
        else:
            raise UsageError(f"JUnit XML not found: {word}")
        found += [m for m in matches if m not in found]
    return found


def _outcome(case) -> tuple[Outcome, str]:
    results = list(case.result)
    if not results:
        return "passed", ""
    worst: tuple[Outcome, str] = ("passed", "")
    for result in results:
        tag = type(result).__name__.lower()
        outcome: Outcome = "error" if tag == "error" else "skipped" if tag == "skipped" else "failed"
        if _SEVERITY[outcome] > _SEVERITY[worst[0]]:
            worst = (
                outcome,
                (result.message or result.text or "").strip().splitlines()[0][:200]
                if (result.message or result.text)
                else "",
            )
    return worst


def read_junit(paths: list[Path], expected: int = EVERY_REPORTED) -> BehavioralResult:
    """The reports' test cases; ``expected`` 0: as many as they hold (at least one)."""
    cases: dict[tuple[str, str], CaseResult] = {}
    duplicates = 0
    for path in paths:
        text = read_text_input(path, "JUnit XML", max_bytes=MAX_JUNIT_BYTES, follow_symlinks=False)
        try:
            xml = JUnitXml.fromstring(text)
        except Exception as exc:  # junitparser/etree raise ParseError and friends
            raise UsageError(f"{path} is not JUnit XML: {type(exc).__name__}: {exc}") from None
        suites = [xml] if isinstance(xml, TestSuite) else list(xml)
        for suite in suites:
            for case in suite:
                outcome, message = _outcome(case)
                classname = case.classname or suite.name or path.stem
                key = (classname, case.name or "")
                previous = cases.get(key)
                if previous is not None:
                    duplicates += 1
                    if _SEVERITY[previous.outcome] >= _SEVERITY[outcome]:
                        continue
                cases[key] = CaseResult(suite=classname, name=case.name or "", outcome=outcome, message=message)
    if expected == EVERY_REPORTED:
        expected = max(len(cases), 1)
    return BehavioralResult(
        expected=expected, files=[str(p) for p in paths], cases=list(cases.values()), duplicates=duplicates
    )


def behavioral(settings: BehavioralSettings) -> BehavioralResult:
    result = read_junit(expand_junit_paths(settings.junit), settings.expect)
    sink = metrics.current()
    sink.gauge("tw_gates_behavioral_tests_passed").set(result.passed)
    sink.gauge("tw_gates_behavioral_tests_expected").set(result.expected)
    return result
