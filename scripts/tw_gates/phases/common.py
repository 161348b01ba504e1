"""What every part of the phase unlock shares: the settings, the verdicts,
and the git questions (which commit is HEAD, does it descend from another).

The phase rooms: ``artifacts`` (finding and checking an unlock artifact),
``unlock`` (may phase N start? and the status of every phase), ``complete``
(measure a phase and sign its artifact) and ``report`` (the completion
report)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from tw_gates.core import proc
from tw_gates.core.errors import GateRejected, UsageError
from tw_gates.core.keyrings import PhaseKeys
from tw_gates.core.settings import GitHubSettings, env
from tw_gates.core.signing import KeyRing
from tw_gates.schemas.phase import FIRST_PHASE, LAST_PHASE

Source = Literal["auto", "local", "github"]
GIT_TIMEOUT_S = 60


class PhaseSettings(GitHubSettings, PhaseKeys):
    phase_dir: Path = Field(Path("."), validation_alias=env("TW_PHASE_DIR", "phase_dir"))
    repo_dir: Path = Field(Path("."), validation_alias=env("TW_REPO_DIR", "repo_dir"))
    evidence_file: Path = Field(
        Path("evidence_blocks.jsonl"), validation_alias=env("TW_EVIDENCE_FILE", "evidence_file")
    )
    source: Source = Field("auto", validation_alias=env("TW_PHASE_SOURCE", "source"))
    # The run an Actions artifact must come from (phases.provenance).
    workflow: str = Field(
        ".github/workflows/phase.yml", min_length=1, validation_alias=env("TW_PHASE_WORKFLOW", "workflow")
    )
    branch: str | None = Field(None, min_length=1, validation_alias=env("TW_PHASE_BRANCH", "branch"))


class PhaseNotComplete(GateRejected):
    """Phase N may not start: the plan's exact wording, then the reason."""

    def __init__(self, phase: int, reason: str) -> None:
        self.phase = phase
        self.reason = reason
        super().__init__(f"Phase {phase - 1} not complete. Cannot start Phase {phase}. Reason: {reason}")


class InvalidArtifact(Exception):
    """Why an artifact does not count (internal: callers word the verdict)."""


def check_phase_number(phase: int) -> int:
    if not FIRST_PHASE <= phase <= LAST_PHASE:
        raise UsageError(f"phase must be {FIRST_PHASE}-{LAST_PHASE}, not {phase}")
    return phase


def verification_ring(settings: PhaseSettings) -> KeyRing:
    keys = settings.phase_ring()
    if not keys.kids:
        raise UsageError("no key to verify phase artifacts: set TW_PHASE_KEYS (or TW_PHASE_KEY)")
    return keys


# ------------------------------------------------------------------ git


def git(repo_dir: Path, *args: str) -> proc.ProcResult:
    return proc.run(["git", "-C", str(repo_dir), *args], timeout=GIT_TIMEOUT_S)


def head_commit(repo_dir: Path) -> str:
    result = git(repo_dir, "rev-parse", "--verify", "HEAD^{commit}")
    if not result.ok:
        raise UsageError(f"{repo_dir} is not a git checkout with a commit: {result.stderr_tail()}")
    return result.text().strip()


def check_ancestor(commit: str, repo_dir: Path) -> None:
    """``git merge-base --is-ancestor commit HEAD``, with the three outcomes told apart."""
    head = head_commit(repo_dir)
    result = git(repo_dir, "merge-base", "--is-ancestor", commit, head)
    if result.returncode == 0:
        return
    if result.returncode == 1:
        raise InvalidArtifact(f"git_commit {commit} is not an ancestor of HEAD ({head})")
    raise InvalidArtifact(
        f"git_commit {commit} is not in this clone (a shallow checkout? use fetch-depth: 0): {result.stderr_tail()}"
    )
