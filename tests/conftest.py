"""Shared test fixtures.

Every test runs with its own metrics folder and without the developer's
GitHub/HMAC environment leaking in. Tools the tests drive (act, promtool,
prometheus, zizmor, actionlint) are found with ``require_tool``: missing on a
developer machine the test is skipped; in CI (TW_REQUIRE_TOOLS=1) it fails."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from tests.emulator.fixtures import *  # noqa: F403  (github_emulator & co.)

REPO_ROOT = Path(__file__).resolve().parent.parent

_SCRUBBED_ENV = (
    "GITHUB_TOKEN",
    "GITHUB_API_URL",
    "GITHUB_ACTIONS",
    "GITHUB_OUTPUT",
    "GITHUB_STEP_SUMMARY",
    "GITHUB_ENV",
    "GITHUB_PATH",
    "GITHUB_REPOSITORY",
    "GITHUB_SHA",
    "GITHUB_REF_NAME",
    "RUNNER_OS",
    "TW_HMAC_KEY",
    "TW_HMAC_KEY_ID",
    "TW_HMAC_KEYS",
    "TW_PHASE_KEY",
    "TW_PHASE_KEY_ID",
    "TW_PHASE_KEYS",
    "TW_BASELINE_KEY",
    "TW_BASELINE_KEY_ID",
    "TW_BASELINE_KEYS",
    "TW_CANARY_KEY",
    "TW_CANARY_KEY_ID",
    "TW_CANARY_KEYS",
    "TW_EVIDENCE_KEY",
    "TW_EVIDENCE_KEY_ID",
    "TW_EVIDENCE_KEYS",
    "POLICY_REQUIRE_HMAC",
    "MAX_ISSUES_PER_RUN",
    "SLACK_WEBHOOK_URL",
    "TW_PUSHGATEWAY_URL",
    "TW_PLATFORM",
)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    for name in _SCRUBBED_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TW_METRICS_DIR", str(tmp_path / ".metrics"))
    from tw_gates.core import metrics

    old = metrics.configure(None)
    # The redactor is one per process (every writer goes through it): a secret
    # one in-process CLI run registered ("t" as a key) must not redact the
    # next test's output on the same worker.
    from tw_gates.core.redact import REDACTOR

    learned = (set(REDACTOR._values), REDACTOR._long, REDACTOR._short)
    yield
    metrics.configure(old)
    REDACTOR._values, REDACTOR._long, REDACTOR._short = learned


def require_tool(name: str) -> str:
    """Path of an external tool; skip (or fail in CI) when it is missing."""
    venv_bin = Path(sys.executable).parent
    path = shutil.which(name) or shutil.which(name, path=str(venv_bin))
    if path:
        return path
    message = f"{name} is not installed (CI installs it; see .ci/run)"
    if os.environ.get("TW_REQUIRE_TOOLS") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """Run ``tw-gates`` in-process: returns (exit_code, stdout, stderr)."""
    from tw_gates.cli import main

    def invoke(*argv: str, env: dict[str, str] | None = None, cwd: Path | None = None):
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
        if cwd is not None:
            monkeypatch.chdir(cwd)
        capsys.readouterr()
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:  # argparse --help / usage errors
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return invoke
