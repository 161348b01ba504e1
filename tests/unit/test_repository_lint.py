"""The repository's own checks, run as tests so CI (.ci/run) enforces them: ruff
(format and lint, with the complexity limit), mypy on the package, and zizmor and
actionlint on our workflows and actions (users copy these files)."""

from __future__ import annotations

import subprocess

from tests.conftest import REPO_ROOT, require_tool


def run(argv: list[str], timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout)


def test_ruff_format_and_lint_report_nothing():
    ruff = require_tool("ruff")
    formatted = run([ruff, "format", "--check", "scripts", "tests"])
    assert formatted.returncode == 0, formatted.stdout + formatted.stderr
    linted = run([ruff, "check", "scripts", "tests"])
    assert linted.returncode == 0, linted.stdout + linted.stderr


def test_mypy_reports_nothing_on_the_package():
    mypy = require_tool("mypy")
    typed = run([mypy])
    assert typed.returncode == 0, typed.stdout + typed.stderr


def test_zizmor_and_actionlint_report_nothing_on_our_workflows_and_actions():
    zizmor = require_tool("zizmor")
    audit = run([zizmor, "--offline", "--min-severity", "informational", "--format", "plain", "."])
    assert audit.returncode == 0, audit.stdout + audit.stderr
    actionlint = require_tool("actionlint")
    lint = run([actionlint])
    assert lint.returncode == 0, lint.stdout + lint.stderr
