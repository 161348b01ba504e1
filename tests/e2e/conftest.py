"""Fixtures for end-to-end tests: workflows and composite actions under nektos/act.

    def test_x(act):
        run = act.run(WORKFLOW_YAML, env={...})
        assert run.job("gate").result == "success"

See docs/e2e.md."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, require_tool
from tests.e2e.act_rig import ActRig, build_wheelhouse, job_path, job_python, snapshot_working_tree


@pytest.fixture(scope="session")
def act_binary() -> str:
    return require_tool("act")


@pytest.fixture(scope="session")
def e2e_snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The working tree as the tests found it, copied once per session (per xdist worker)."""
    return snapshot_working_tree(tmp_path_factory.mktemp("e2e-snapshot") / "repo")


@pytest.fixture(scope="session")
def e2e_wheelhouse() -> Path:
    """The locked runtime wheels for the job's python3, so each cold install needs no index.

    Downloaded once into ~/.cache/tw-gates-e2e (shared by xdist workers and later
    sessions); TW_E2E_WHEELHOUSE names a ready folder instead."""
    given = os.environ.get("TW_E2E_WHEELHOUSE")
    if given:
        return Path(given)
    return build_wheelhouse(REPO_ROOT / "requirements" / "runtime.txt", job_python(job_path()))


@pytest.fixture
def act(act_binary: str, e2e_snapshot: Path, e2e_wheelhouse: Path, tmp_path: Path) -> Iterator[ActRig]:
    """An ActRig for this test: a private copy of the repository, one act cache per run."""
    yield ActRig(act=act_binary, base_dir=tmp_path / "e2e", snapshot=e2e_snapshot, wheelhouse=e2e_wheelhouse)
