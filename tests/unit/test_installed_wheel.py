"""An installed tw-gates (a wheel, not this checkout) runs with the data it
ships: the corpora, the renderer patterns, the templates and the action
definitions are inside the package, not beside the source tree."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """site folder holding tw-gates installed from a wheel built from this checkout."""
    root = tmp_path_factory.mktemp("wheel")
    # Built from a copy: setuptools leaves build/ and *.egg-info in the tree it builds.
    source = root / "source"
    shutil.copytree(
        REPO_ROOT,
        source,
        symlinks=True,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "build", "*.egg-info", "*cache*", "demo-out", ".metrics", ".bench"
        ),
    )
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", root, source],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = root.glob("tw_gates-*.whl")
    site = root / "site"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", site, wheel],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return site


def run_installed(site: Path, cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    # PYTHONPATH puts the installed copy before the editable checkout; the
    # dependencies still come from this environment.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TW_", "GITHUB_"))}
    env["PYTHONPATH"] = str(site)
    return subprocess.run(
        [sys.executable, "-m", "tw_gates", *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_the_wheel_carries_its_data_as_files(installed: Path):
    data = installed / "tw_gates" / "data"
    assert (data / "renderer_patterns.yml").is_file()
    corpora = sorted(p.name for p in (data / "corpora").glob("*.json"))
    assert corpora == sorted(p.name for p in (REPO_ROOT / "adversarial_corpora").glob("*.json"))
    assert not any(p.is_symlink() for p in data.rglob("*"))  # copies, not links into a checkout
    assert (data / "actions" / "ingest" / "action.yml").is_file()


def test_an_installed_wheel_runs_the_adversarial_corpora_against_builtin_safe(installed: Path, tmp_path: Path):
    where = run_installed(installed, tmp_path, "--version")
    assert where.returncode == 0, where.stderr
    probe = subprocess.run(
        [sys.executable, "-c", "import tw_gates; print(tw_gates.__file__)"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(installed)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert Path(probe.stdout.strip()).is_relative_to(installed), probe.stdout
    report = tmp_path / "report.json"
    done = run_installed(
        installed, tmp_path, "adversarial", "--target", "builtin:safe", "--only", "html-xss", "--report", str(report)
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    cases = json.loads(report.read_text())["cases"]
    assert len(cases) > 30 and all(case["passed"] for case in cases)
