"""Phase unlock artifacts: where one comes from (the local folder, or the
Actions artifacts of the repository through the REST API) and whether its
bytes make a valid, signed artifact of the phase asked for."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from github import GithubException
from pydantic import ValidationError

from tw_gates.core import json_text
from tw_gates.core.errors import ExternalServiceError, UsageError
from tw_gates.core.fsio import InputNotFound, InputTooLarge, read_input
from tw_gates.core.github_client import client_from_settings, describe_github_error
from tw_gates.core.progress import Progress, silent
from tw_gates.core.settings import describe_validation_error
from tw_gates.core.signing import KeyRing, SignatureError, sha256_hex
from tw_gates.phases.common import InvalidArtifact, PhaseSettings, Source, check_ancestor
from tw_gates.phases.provenance import Expected, RunFacts
from tw_gates.schemas.phase import (
    GATE_IDS,
    REQUIRED_KEYS,
    SCHEMA_VERSION,
    PhaseArtifact,
    artifact_filename,
    artifact_name,
)

MAX_ARTIFACT_BYTES = 1024 * 1024  # the JSON itself; a phase artifact is a few KiB
MAX_ZIP_BYTES = 16 * 1024 * 1024


# ------------------------------------------------------------------ checking an artifact


def check_artifact(data: bytes, *, phase: int, keys: KeyRing, repo_dir: Path) -> tuple[PhaseArtifact, str]:
    """Validate an artifact's bytes for ``phase``; return it and the key id
    that signed it, or raise InvalidArtifact saying why not."""
    document = _json_object(data)
    for key in ("schema_version", "min_schema_version"):
        if key in document and document[key] != SCHEMA_VERSION:
            raise InvalidArtifact(f"{key} is {document[key]!r}; this tw-gates reads schema {SCHEMA_VERSION}")
    missing = [key for key in REQUIRED_KEYS if key not in document]
    if missing:
        raise InvalidArtifact(f"missing required keys: {', '.join(missing)}")
    try:
        kid = keys.verify(document)
    except SignatureError as exc:
        raise InvalidArtifact(f"signature check failed: {exc} ({exc.reason})") from None
    if document.get("phase") != phase:
        raise InvalidArtifact(f"the artifact is for phase {document.get('phase')!r}, not phase {phase}")
    try:
        artifact = PhaseArtifact.model_validate(document)
    except ValidationError as exc:
        raise InvalidArtifact(describe_validation_error(exc, "phase artifact")) from None
    failed = not_passed(artifact)
    if failed:
        raise InvalidArtifact(f"the artifact records a phase that did not pass: {'; '.join(failed)}")
    check_ancestor(artifact.git_commit, repo_dir)
    return artifact, kid


def _json_object(data: bytes) -> dict[str, Any]:
    if len(data) > MAX_ARTIFACT_BYTES:
        raise InvalidArtifact(f"artifact is {len(data)} bytes, more than {MAX_ARTIFACT_BYTES}")
    try:
        document = json_text.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidArtifact(f"artifact is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise InvalidArtifact("artifact is not a JSON object")
    return document


def not_passed(artifact: PhaseArtifact) -> list[str]:
    """What the artifact itself says failed: a gate missing, a baseline short of its total."""
    problems = []
    missing = [gate for gate in GATE_IDS if gate not in artifact.ci_gates_passed]
    if missing:
        problems.append(f"CI gates not passed: {', '.join(missing)}")
    passed, expected = artifact.baseline
    if expected == 0 or passed != expected:
        problems.append(f"baseline_pass_count {artifact.baseline_pass_count} is short of its total")
    return problems


# ------------------------------------------------------------------ finding an artifact


@dataclass
class Located:
    data: bytes
    origin: str  # where it came from, for messages and the summary


def read_local(path: Path) -> Located | None:
    """The artifact file's bytes; None when there is none (look elsewhere)."""
    try:
        return Located(read_input(path, "phase artifact", max_bytes=MAX_ARTIFACT_BYTES), str(path))
    except InputNotFound:
        return None
    except InputTooLarge as exc:
        raise InvalidArtifact(str(exc)) from None


def extract_artifact_json(zip_bytes: bytes, filename: str) -> bytes:
    """The one member named ``filename`` (at any depth) of an artifact zip,
    read in memory with a size cap: nothing is ever written to disk, so
    member paths (``../``) cannot escape anywhere."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(zip_bytes))
    except zipfile.BadZipFile:
        raise InvalidArtifact("the artifact download is not a zip file") from None
    with archive:
        members = [
            m for m in archive.infolist() if not m.is_dir() and m.filename.replace("\\", "/").split("/")[-1] == filename
        ]
        if len(members) != 1:
            names = ", ".join(m.filename for m in archive.infolist()[:10]) or "nothing"
            raise InvalidArtifact(f"the artifact zip holds {len(members)} files named {filename} (it holds: {names})")
        member = members[0]
        if member.file_size > MAX_ARTIFACT_BYTES:
            raise InvalidArtifact(f"{filename} in the zip is {member.file_size} bytes, more than {MAX_ARTIFACT_BYTES}")
        try:
            with archive.open(member) as handle:
                data = handle.read(MAX_ARTIFACT_BYTES + 1)
        except (zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError) as exc:
            raise InvalidArtifact(f"cannot read {filename} from the artifact zip: {exc}") from None
    if len(data) > MAX_ARTIFACT_BYTES:
        raise InvalidArtifact(f"{filename} in the zip is larger than {MAX_ARTIFACT_BYTES} bytes")
    return data


class GitHubArtifacts:
    """Phase artifacts of one repository through the REST API."""

    def __init__(self, settings: PhaseSettings, progress: Progress = silent) -> None:
        self.progress = progress
        if not settings.github_repository:
            raise UsageError("no repository to look phase artifacts up in: set GITHUB_REPOSITORY (owner/name)")
        self.repo_name = settings.github_repository
        self.settings = settings
        self.client = client_from_settings(settings)
        self._runs: dict[int, RunFacts] = {}
        self._expected: Expected | None = None

    def expected(self, repo: Any) -> Expected:
        """The run an unlock must come from; the branch is the default branch unless configured."""
        if self._expected is None:
            branch = self.settings.branch or str(repo.default_branch)
            self._expected = Expected(self.repo_name, self.settings.workflow, branch)
        return self._expected

    def _run(self, repo: Any, run_id: int) -> RunFacts:
        if run_id not in self._runs:
            self._runs[run_id] = RunFacts.of(repo.get_workflow_run(run_id))
        return self._runs[run_id]

    def _choose(self, repo: Any, name: str, expected: Expected) -> tuple[Any, RunFacts]:
        """The newest unexpired artifact ``name`` of a run that may unlock; InvalidArtifact
        naming every candidate and what about its run did not match, when there is none."""
        candidates = [a for a in repo.get_artifacts(name=name) if a.name == name and not a.expired]
        candidates.sort(key=lambda a: (a.created_at, a.id), reverse=True)
        passed_over = []
        for artifact in candidates:
            if artifact.workflow_run is None:
                passed_over.append(f"artifact {artifact.id}: no workflow run")
                continue
            run = self._run(repo, artifact.workflow_run.id)
            problems = expected.mismatches(run)
            if not problems:
                return artifact, run
            passed_over.append(f"artifact {artifact.id} (run {run.run_id}): {'; '.join(problems)}")
        detail = f": {' | '.join(passed_over[:5])}" if passed_over else ""
        more = f" (+{len(passed_over) - 5} more)" if len(passed_over) > 5 else ""
        raise InvalidArtifact(f"no Actions artifact {name} from a successful run {expected.describe()}{detail}{more}")

    def fetch(self, phase: int) -> Located:
        """The newest unexpired ``phase-<N>-complete`` of a run of the phase workflow that
        may unlock (``provenance``), downloaded and unzipped."""
        name = artifact_name(phase)
        self.progress(f"looking up the Actions artifact {name} in {self.repo_name} ...")
        repo = self.client.repo(self.repo_name)
        try:
            expected = self.expected(repo)
            chosen, run = self._choose(repo, name, expected)
        except GithubException as exc:
            raise ExternalServiceError(
                f"cannot list artifacts {name} of {self.repo_name}: {describe_github_error(exc)}"
            ) from None
        zip_bytes = self.client.download(chosen.archive_download_url, max_bytes=MAX_ZIP_BYTES)
        digest = getattr(chosen, "digest", None)
        if digest and digest.startswith("sha256:") and sha256_hex(zip_bytes) != digest.split(":", 1)[1]:
            raise InvalidArtifact(f"artifact {name} (id {chosen.id}) does not match the digest GitHub lists for it")
        origin = (
            f"Actions artifact {name} (id {chosen.id}) of run {run.run_id} ({run.describe()}) in {self.repo_name}, "
            f"uploaded {chosen.created_at:%Y-%m-%d %H:%M}Z"
        )
        return Located(extract_artifact_json(zip_bytes, artifact_filename(phase)), origin)

    def close(self) -> None:
        self.client.publish_metrics()
        self.client.close()


class ArtifactFinder:
    """Where phase artifacts come from: the local folder, GitHub, or (auto)
    the local file when there is one and GitHub otherwise."""

    def __init__(self, settings: PhaseSettings, source: Source | None = None, progress: Progress = silent) -> None:
        self.settings = settings
        self.progress = progress
        self.source: Source = source or settings.source
        self._github: GitHubArtifacts | None = None

    def _github_configured(self) -> bool:
        return bool(self.settings.github_token and self.settings.github_repository)

    def github(self) -> GitHubArtifacts:
        if self._github is None:
            if not self.settings.github_token:
                raise UsageError("no GitHub token to look phase artifacts up: set GITHUB_TOKEN")
            self._github = GitHubArtifacts(self.settings, self.progress)
        return self._github

    def locate(self, phase: int) -> Located:
        """The artifact's bytes, or InvalidArtifact saying where it was looked for."""
        local = self.settings.phase_dir / artifact_filename(phase)
        if self.source in ("auto", "local"):
            found = read_local(local)
            if found is not None:
                return found
            if self.source == "local" or not self._github_configured():
                hint = (
                    "" if self.source == "local" else " and no GITHUB_TOKEN/GITHUB_REPOSITORY to look it up on GitHub"
                )
                raise InvalidArtifact(f"no {artifact_filename(phase)} in {self.settings.phase_dir}{hint}")
        return self.github().fetch(phase)

    def close(self) -> None:
        if self._github is not None:
            self._github.close()
