"""The repository's own checks, run as tests so CI (.ci/run) enforces them: ruff
(format and lint, with the complexity limit), mypy on the package, and zizmor and
actionlint on our workflows and actions (users copy these files)."""

from __future__ import annotations

import re
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


def test_every_relative_link_in_the_docs_names_a_file_that_exists():
    # The README's table sends a newcomer to each gate's code in one hop: a
    # module that moves must take its links with it.
    pages = [REPO_ROOT / "README.md", REPO_ROOT / "CHANGELOG.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.DOTALL)  # examples, not links
        for target in re.findall(r"\]\(([^)\s#]+)(?:#[^)\s]*)?\)", text):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(REPO_ROOT)} -> {target}")
    assert not broken, broken
