"""May phase N start? (``verify_unlock``), and where every phase stands
(``phase_status``).

``verify_unlock(N)`` finds phase N-1's artifact (the local
``.phase-<N-1>.complete.json``, or across workflow runs the newest Actions
artifact ``phase-<N-1>-complete`` of a successful run, through the REST API)
and checks, in this order: schema versions, required keys, signature, phase
number, structure, and that ``git_commit`` is an ancestor of HEAD. Any
failure is "Phase N-1 not complete. Cannot start Phase N." plus why."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from tw_gates.core import metrics
from tw_gates.core.errors import ExitCode
from tw_gates.core.progress import Progress, silent
from tw_gates.phases.artifacts import ArtifactFinder, check_artifact, read_local
from tw_gates.phases.common import (
    InvalidArtifact,
    PhaseNotComplete,
    PhaseSettings,
    Source,
    check_phase_number,
    verification_ring,
)
from tw_gates.schemas.phase import FIRST_PHASE, LAST_PHASE, PhaseArtifact


class UnlockResult(BaseModel):
    phase: int
    previous: PhaseArtifact | None = None
    origin: str = ""
    kid: str | None = None

    @property
    def message(self) -> str:
        if self.previous is None:
            return f"Phase {self.phase} has no prerequisite: it may start."
        prev = self.previous
        return (
            f"Phase {prev.phase} complete ({prev.phase_name}, {prev.completion_date:%Y-%m-%d}, commit "
            f"{prev.git_commit[:12]}, signed by key {self.kid}): Phase {self.phase} may start."
        )


def _record_unlock(phase: int, unlocked: bool) -> None:
    metrics.current().counter("tw_gates_phase_unlock_checks_total").labels(
        phase=str(phase), result="unlocked" if unlocked else "refused"
    ).inc()


def verify_unlock(
    phase: int,
    settings: PhaseSettings,
    *,
    source: Source | None = None,
    artifact_path: Path | None = None,
    progress: Progress = silent,
) -> UnlockResult:
    """May phase ``phase`` start? Raises PhaseNotComplete (exit 2) if not."""
    check_phase_number(phase)
    if phase == FIRST_PHASE:
        _record_unlock(phase, True)
        return UnlockResult(phase=phase)
    keys = verification_ring(settings)
    finder = ArtifactFinder(settings, source, progress)
    try:
        if artifact_path is not None:
            located = read_local(artifact_path)
            if located is None:
                raise InvalidArtifact(f"{artifact_path} does not exist")
        else:
            located = finder.locate(phase - 1)
        artifact, kid = check_artifact(located.data, phase=phase - 1, keys=keys, repo_dir=settings.repo_dir)
    except InvalidArtifact as exc:
        _record_unlock(phase, False)
        raise PhaseNotComplete(phase, str(exc)) from None
    finally:
        finder.close()
    _record_unlock(phase, True)
    return UnlockResult(phase=phase, previous=artifact, origin=located.origin, kid=kid)


class PhaseState(BaseModel):
    phase: int
    state: Literal["complete", "missing", "invalid"]
    phase_name: str | None = None
    completion_date: str | None = None
    git_commit: str | None = None
    origin: str | None = None
    detail: str = ""


def phase_status(
    settings: PhaseSettings, *, source: Source | None = None, progress: Progress = silent
) -> list[PhaseState]:
    keys = verification_ring(settings)
    finder = ArtifactFinder(settings, source, progress)
    states = []
    try:
        for phase in range(FIRST_PHASE, LAST_PHASE + 1):
            try:
                located = finder.locate(phase)
            except InvalidArtifact as exc:
                states.append(PhaseState(phase=phase, state="missing", detail=str(exc)))
                continue
            try:
                artifact, _ = check_artifact(located.data, phase=phase, keys=keys, repo_dir=settings.repo_dir)
            except InvalidArtifact as exc:
                states.append(PhaseState(phase=phase, state="invalid", origin=located.origin, detail=str(exc)))
                continue
            states.append(
                PhaseState(
                    phase=phase,
                    state="complete",
                    phase_name=artifact.phase_name,
                    completion_date=artifact.completion_date.isoformat().replace("+00:00", "Z"),
                    git_commit=artifact.git_commit,
                    origin=located.origin,
                )
            )
    finally:
        finder.close()
    return states


def status_exit_code(states: list[PhaseState]) -> ExitCode:
    return ExitCode.REJECTED if any(s.state == "invalid" for s in states) else ExitCode.OK
