"""Phase unlock: phase N starts only when phase N-1's signed unlock artifact
exists, verifies, and points at a commit this checkout descends from.

* ``verify_unlock(N)`` finds phase N-1's artifact (the local
  ``.phase-<N-1>.complete.json``, or across workflow runs the newest Actions
  artifact ``phase-<N-1>-complete`` of a successful run, through the REST
  API) and checks, in this order: schema versions, required keys, signature,
  phase number, structure, and that ``git_commit`` is an ancestor of HEAD.
  Any failure is "Phase N-1 not complete. Cannot start Phase N." plus why.
* ``complete_phase(N)`` measures what the artifact records (G2's JUnit for
  the baseline, G1 for the safety nets, the evidence blocks of the phase,
  re-hashed), refuses unless G1-G5 all passed and the baseline is whole,
  then writes the signed artifact atomically and renders the completion
  report (the seed's Appendix B sections) from those same data.
* ``phase_status()`` shows every phase: complete (date, commit) or missing.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tw_gates import DATA_DIR
from tw_gates.core import proc
from tw_gates.core.errors import ExitCode, ExternalServiceError, GateRejected, UsageError
from tw_gates.core.fsio import (
    InputNotFound,
    InputTooLarge,
    atomic_write_json,
    load_model,
    read_input,
    read_text_input,
)
from tw_gates.core.markdown import escape_markdown, inline_code
from tw_gates.core.progress import Progress, silent
from tw_gates.core.redact import REDACTOR
from tw_gates.core.settings import GitHubSettings, SigningSettings, describe_validation_error, env
from tw_gates.core.signing import KeyRing, SignatureError, sha256_hex
from tw_gates.schemas.phase import (
    FIRST_PHASE,
    GATE_IDS,
    LAST_PHASE,
    REQUIRED_KEYS,
    SCHEMA_VERSION,
    PhaseArtifact,
    artifact_filename,
    artifact_name,
)

Source = Literal["auto", "local", "github"]
MAX_ARTIFACT_BYTES = 1024 * 1024  # the JSON itself; a phase artifact is a few KiB
MAX_ZIP_BYTES = 16 * 1024 * 1024
MAX_TEXT_INPUT_BYTES = 1024 * 1024  # the values file and the report template
GIT_TIMEOUT_S = 60
DEFAULT_PHASE_NAMES = {0: "Prerequisites & Setup"}
REPORT_TEMPLATE = DATA_DIR / "templates" / "phase_completion_report.md"


class PhaseSettings(GitHubSettings, SigningSettings):
    phase_dir: Path = Field(Path("."), validation_alias=env("TW_PHASE_DIR", "phase_dir"))
    repo_dir: Path = Field(Path("."), validation_alias=env("TW_REPO_DIR", "repo_dir"))
    evidence_file: Path = Field(
        Path("evidence_blocks.jsonl"), validation_alias=env("TW_EVIDENCE_FILE", "evidence_file")
    )
    source: Source = Field("auto", validation_alias=env("TW_PHASE_SOURCE", "source"))


class PhaseNotComplete(GateRejected):
    """Phase N may not start: the exact wording of the seed, then the reason."""

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


def _key_ring(settings: PhaseSettings) -> KeyRing:
    keys = settings.key_ring()
    if not keys.kids:
        raise UsageError("no key to verify phase artifacts: set TW_HMAC_KEYS (or TW_HMAC_KEY)")
    return keys


# ------------------------------------------------------------------ git


def _git(repo_dir: Path, *args: str) -> proc.ProcResult:
    return proc.run(["git", "-C", str(repo_dir), *args], timeout=GIT_TIMEOUT_S)


def head_commit(repo_dir: Path) -> str:
    result = _git(repo_dir, "rev-parse", "--verify", "HEAD^{commit}")
    if not result.ok:
        raise UsageError(f"{repo_dir} is not a git checkout with a commit: {result.stderr_tail()}")
    return result.text().strip()


def check_ancestor(commit: str, repo_dir: Path) -> None:
    """``git merge-base --is-ancestor commit HEAD``, with the three outcomes told apart."""
    head = head_commit(repo_dir)
    result = _git(repo_dir, "merge-base", "--is-ancestor", commit, head)
    if result.returncode == 0:
        return
    if result.returncode == 1:
        raise InvalidArtifact(f"git_commit {commit} is not an ancestor of HEAD ({head})")
    raise InvalidArtifact(
        f"git_commit {commit} is not in this clone (a shallow checkout? use fetch-depth: 0): {result.stderr_tail()}"
    )


# ------------------------------------------------------------------ checking an artifact


def check_artifact(data: bytes, *, phase: int, keys: KeyRing, repo_dir: Path) -> tuple[PhaseArtifact, str]:
    """Validate an artifact's bytes for ``phase``; return it and the key id
    that signed it, or raise InvalidArtifact saying why not."""
    if len(data) > MAX_ARTIFACT_BYTES:
        raise InvalidArtifact(f"artifact is {len(data)} bytes, more than {MAX_ARTIFACT_BYTES}")
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidArtifact(f"artifact is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise InvalidArtifact("artifact is not a JSON object")
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
    check_ancestor(artifact.git_commit, repo_dir)
    return artifact, kid


# ------------------------------------------------------------------ finding an artifact


@dataclass
class Located:
    data: bytes
    origin: str  # where it came from, for messages and the summary


def _read_local(path: Path) -> Located | None:
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
        from tw_gates.core.github_client import client_from_settings

        self.progress = progress

        if not settings.github_repository:
            raise UsageError("no repository to look phase artifacts up in: set GITHUB_REPOSITORY (owner/name)")
        self.repo_name = settings.github_repository
        self.client = client_from_settings(settings)
        self._conclusions: dict[int, str | None] = {}

    def _run_conclusion(self, repo: Any, run_id: int) -> str | None:
        if run_id not in self._conclusions:
            self._conclusions[run_id] = repo.get_workflow_run(run_id).conclusion
        return self._conclusions[run_id]

    def fetch(self, phase: int) -> Located | None:
        """The newest unexpired ``phase-<N>-complete`` of a successful run, downloaded and unzipped."""
        from github import GithubException

        from tw_gates.core.github_client import describe_github_error

        name = artifact_name(phase)
        self.progress(f"looking up the Actions artifact {name} in {self.repo_name} ...")
        repo = self.client.repo(self.repo_name)
        try:
            candidates = [a for a in repo.get_artifacts(name=name) if a.name == name and not a.expired]
            candidates.sort(key=lambda a: (a.created_at, a.id), reverse=True)
            chosen = None
            for artifact in candidates:
                run = artifact.workflow_run
                if run is not None and self._run_conclusion(repo, run.id) == "success":
                    chosen = artifact
                    break
        except GithubException as exc:
            raise ExternalServiceError(
                f"cannot list artifacts {name} of {self.repo_name}: {describe_github_error(exc)}"
            ) from None
        if chosen is None:
            return None
        zip_bytes = self.client.download(chosen.archive_download_url, max_bytes=MAX_ZIP_BYTES)
        digest = getattr(chosen, "digest", None)
        if digest and digest.startswith("sha256:") and sha256_hex(zip_bytes) != digest.split(":", 1)[1]:
            raise InvalidArtifact(f"artifact {name} (id {chosen.id}) does not match the digest GitHub lists for it")
        origin = (
            f"Actions artifact {name} (id {chosen.id}) of run {chosen.workflow_run.id} in {self.repo_name}, "
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
            found = _read_local(local)
            if found is not None:
                return found
            if self.source == "local" or not self._github_configured():
                hint = (
                    "" if self.source == "local" else " and no GITHUB_TOKEN/GITHUB_REPOSITORY to look it up on GitHub"
                )
                raise InvalidArtifact(f"no {artifact_filename(phase)} in {self.settings.phase_dir}{hint}")
        found = self.github().fetch(phase)
        if found is None:
            raise InvalidArtifact(
                f"no Actions artifact {artifact_name(phase)} from a successful run in {self.settings.github_repository}"
            )
        return found

    def close(self) -> None:
        if self._github is not None:
            self._github.close()


# ------------------------------------------------------------------ verify (unlock)


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
    from tw_gates.core import metrics

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
    keys = _key_ring(settings)
    finder = ArtifactFinder(settings, source, progress)
    try:
        if artifact_path is not None:
            located = _read_local(artifact_path)
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


# ------------------------------------------------------------------ complete


class IssueNote(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str
    description: str = ""
    resolution: str = ""


class CompletionValues(BaseModel):
    """What ``--from-file`` may give: what tw-gates cannot measure itself
    (performance, notes), and the baseline and gate list when no JUnit /
    ``--gates-passed`` is given. Safety nets are always measured by G1."""

    model_config = ConfigDict(extra="forbid")

    phase_name: str | None = None
    baseline_pass_count: str | None = Field(None, pattern=r"^[0-9]{1,6}/[0-9]{1,6}$")
    ci_gates_passed: list[str] | None = None
    performance_delta_median: str | None = None
    performance_delta_p95: str | None = None
    performance_threshold: str | None = None
    summary: str | None = None
    issues: list[IssueNote] | None = None
    estimated_time: str | None = None
    deviations: str | None = None
    next_steps: str | None = None


def load_completion_values(path: Path | None) -> CompletionValues:
    if path is None:
        return CompletionValues()
    return load_model(path, CompletionValues, "values file", max_bytes=MAX_TEXT_INPUT_BYTES, allow_empty=True)


def parse_gates(text: str | list[str] | None) -> list[str] | None:
    if text is None:
        return None
    words = text if isinstance(text, list) else text.replace(",", " ").split()
    gates = []
    for word in words:
        gate = word.strip().upper()
        if gate not in GATE_IDS:
            raise UsageError(f"unknown gate {word!r} (known: {', '.join(GATE_IDS)})")
        if gate not in gates:
            gates.append(gate)
    return sorted(gates, key=GATE_IDS.index)


@dataclass
class Baseline:
    passed: int
    expected: int
    duration: str = "not measured"
    problems: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return f"{self.passed}/{self.expected}"

    @property
    def whole(self) -> bool:
        return self.expected > 0 and self.passed == self.expected and not self.problems


def baseline_from_junit(junit: str, expected: int) -> Baseline:
    """G2's reading of the behavioral JUnit XML."""
    from tw_gates.chain.behavioral import BehavioralSettings, behavioral
    from tw_gates.core.units import format_duration

    result = behavioral(BehavioralSettings(junit=junit, expect=expected))
    seconds = 0.0
    try:
        from junitparser import JUnitXml

        for path in result.files:
            seconds += float(JUnitXml.fromfile(path).time or 0)
    except Exception:  # the duration is report decoration; G2 already read the files
        seconds = 0.0
    return Baseline(
        passed=result.passed,
        expected=expected,
        duration=format_duration(seconds) if seconds else "not recorded in the JUnit XML",
        problems=[f"{c.suite}::{c.name} {c.outcome}" for c in result.problems]
        + ([result.summary] if result.passed > expected else []),
    )


def safety_nets_verified(repo_dir: Path) -> int:
    """G1's count of verified safety nets in the checkout."""
    from tw_gates.chain.verify_nets import VerifyNetsSettings, verify_nets

    return verify_nets(VerifyNetsSettings(repo_dir=repo_dir)).verified_count


@dataclass
class CompletionResult:
    artifact: PhaseArtifact
    path: Path
    report: str
    previous: PhaseArtifact | None
    tag: str | None = None
    warnings: list[str] = field(default_factory=list)


def complete_phase(
    phase: int,
    settings: PhaseSettings,
    *,
    name: str | None = None,
    junit: str | None = None,
    expected_tests: int = 14,
    baseline_pass_count: str | None = None,
    values_file: Path | None = None,
    gates_passed: str | None = None,
    tag: bool = False,
    source: Source | None = None,
    report_template: Path = REPORT_TEMPLATE,
    progress: Progress = silent,
) -> CompletionResult:
    check_phase_number(phase)
    keys = settings.key_ring()
    if not keys.can_sign:
        raise UsageError("no signing key: set TW_HMAC_KEY (and TW_HMAC_KEY_ID)")
    values = load_completion_values(values_file)
    unlock = verify_unlock(phase, settings, source=source, progress=progress)
    previous = unlock.previous

    if junit:
        baseline = baseline_from_junit(junit, expected_tests)
    elif baseline_pass_count or values.baseline_pass_count:
        given = baseline_pass_count or values.baseline_pass_count or ""
        match = re.fullmatch(r"\s*([0-9]{1,6})\s*/\s*([0-9]{1,6})\s*", given)
        if not match:
            raise UsageError(f"baseline {given!r} is not PASSED/EXPECTED (e.g. 14/14)")
        source = "the --baseline flag (G2's score)" if baseline_pass_count else "the values file"
        baseline = Baseline(
            passed=int(match.group(1)),
            expected=int(match.group(2)),
            duration=f"not measured here (score from {source})",
        )
    else:
        raise UsageError(
            "baseline_pass_count unknown: pass --junit (G2's behavioral JUnit XML), --baseline "
            "(G2's score) or set it in --from-file"
        )
    gates = parse_gates(gates_passed) if gates_passed is not None else parse_gates(values.ci_gates_passed)
    if gates is None:
        raise UsageError("which CI gates passed is unknown: pass --gates-passed G1,G2,G3,G4,G5 or set ci_gates_passed")

    refusals = []
    not_passed = [g for g in GATE_IDS if g not in gates]
    if not_passed:
        refusals.append(f"CI gates not passed: {', '.join(not_passed)}")
    if not baseline.whole:
        detail = f" ({'; '.join(baseline.problems[:5])})" if baseline.problems else ""
        refusals.append(f"behavioral baseline is {baseline.text}, not whole{detail}")

    from tw_gates.phases import evidence

    blocks = evidence.blocks_for_phase(settings.evidence_file, phase)
    cache = evidence.SourceCache(settings.repo_dir)
    stale = [c for c in (evidence.check_block(b, cache) for b in blocks) if c.status != "ok"]
    if stale:
        refusals.append(
            "evidence does not verify: " + "; ".join(f"{c.evidence_id} {c.status}: {c.detail}" for c in stale[:5])
        )
    if refusals:
        raise GateRejected(f"Phase {phase} cannot complete: " + " | ".join(refusals))

    commit = head_commit(settings.repo_dir)
    nets_after = safety_nets_verified(settings.repo_dir)
    nets_before = previous.safety_nets_count_after if previous else nets_after
    not_measured = "N/A (not measured in this phase)"
    completed_at = datetime.now(timezone.utc).replace(microsecond=0)
    document = {
        "schema_version": SCHEMA_VERSION,
        "min_schema_version": SCHEMA_VERSION,
        "phase": phase,
        "phase_name": name or values.phase_name or DEFAULT_PHASE_NAMES.get(phase, f"Phase {phase}"),
        "baseline_pass_count": baseline.text,
        "ci_gates_passed": gates,
        "safety_nets_count_before": nets_before,
        "safety_nets_count_after": nets_after,
        "performance_delta_median": values.performance_delta_median or not_measured,
        "performance_delta_p95": values.performance_delta_p95 or not_measured,
        "git_commit": commit,
        "completion_date": completed_at.isoformat().replace("+00:00", "Z"),
        "evidence_blocks": [b.ref().model_dump() for b in blocks],
    }
    try:
        artifact = PhaseArtifact.model_validate(document)
    except ValidationError as exc:
        raise UsageError(describe_validation_error(exc, "phase artifact")) from None
    # Redact before signing: redacting after would break the signature.
    signed = keys.sign(REDACTOR.redact_obj(document))
    path = settings.phase_dir / artifact_filename(phase)
    atomic_write_json(path, signed, redact=False)
    artifact = PhaseArtifact.model_validate(signed)

    report = render_report(
        artifact,
        previous=previous,
        baseline=baseline,
        values=values,
        blocks=blocks,
        repo_dir=settings.repo_dir,
        template=report_template,
    )
    made_tag = create_tag(phase, commit, settings.repo_dir) if tag else None
    return CompletionResult(artifact=artifact, path=path, report=report, previous=previous, tag=made_tag)


def create_tag(phase: int, commit: str, repo_dir: Path) -> str:
    """A lightweight tag ``phase-N-complete`` on the commit (pushing it is
    the workflow's job); re-tagging the same commit is a no-op."""
    tag = artifact_name(phase)
    existing = _git(repo_dir, "rev-parse", "-q", "--verify", f"refs/tags/{tag}^{{commit}}")
    if existing.ok:
        at = existing.text().strip()
        if at == commit:
            return tag
        raise UsageError(
            f"tag {tag} already exists at {at[:12]}, not {commit[:12]}; delete it (git tag -d {tag}) "
            "to tag the new completion"
        )
    result = _git(repo_dir, "tag", tag, commit)
    if not result.ok:
        raise UsageError(f"cannot create tag {tag}: {result.stderr_tail()}")
    return tag


# ------------------------------------------------------------------ the report


def _md_line(text: str) -> str:
    return " ".join(str(text).split())


def _changes(previous: PhaseArtifact | None, commit: str, repo_dir: Path) -> tuple[str, str, str]:
    """Code changes, methods added, methods removed since the previous phase's commit."""
    if previous is None:
        first = "Phase 0 is the first phase: there is no earlier phase commit to compare with."
        return first, "n/a (first phase)", "n/a (first phase)"
    base = previous.git_commit
    count = _git(repo_dir, "rev-list", "--count", f"{base}..{commit}")
    numstat = _git(repo_dir, "diff", "--numstat", base, commit)
    if not (count.ok and numstat.ok):
        why = (count if not count.ok else numstat).stderr_tail()
        return f"Could not diff against {base[:12]}: {why}", "unknown", "unknown"
    rows = [line.split("\t", 2) for line in numstat.text().splitlines() if line.count("\t") >= 2]
    added = sum(int(a) for a, _, _ in rows if a.isdigit())
    removed = sum(int(r) for _, r, _ in rows if r.isdigit())
    n_commits = int(count.text().strip() or 0)
    lines = [
        f"{n_commits} commit{'' if n_commits == 1 else 's'} since Phase {previous.phase} (`{base[:12]}`..`{commit[:12]}`): "
        f"{len(rows)} files changed, +{added} -{removed} lines."
    ]
    if rows:
        lines.append("")
        lines += [f"- {inline_code(p, heuristics=False)} (+{a} -{r})" for a, r, p in rows[:50]]
        if len(rows) > 50:
            lines.append(f"- ... and {len(rows) - 50} more files")
    diff = _git(repo_dir, "diff", "-U0", base, commit, "--", "*.py")
    plus, minus = set(), set()
    definition = re.compile(r"^([+-])\s*(?:async\s+)?def\s+([A-Za-z_]\w*)")
    for line in diff.text().splitlines() if diff.ok else ():
        if line.startswith(("+++", "---")):
            continue
        match = definition.match(line)
        if match:
            (plus if match.group(1) == "+" else minus).add(match.group(2))

    def listed(names: set[str]) -> str:
        return "\n".join(f"- `{n}`" for n in sorted(names)) if names else "None."

    return "\n".join(lines), listed(plus - minus), listed(minus - plus)


def render_report(
    artifact: PhaseArtifact,
    *,
    previous: PhaseArtifact | None,
    baseline: Baseline,
    values: CompletionValues,
    blocks: list,
    repo_dir: Path,
    template: Path = REPORT_TEMPLATE,
) -> str:
    """The seed's Appendix B completion report, filled from the artifact and
    the repository, through the render module."""
    from tw_gates.core.units import format_duration, parse_duration
    from tw_gates.phases import render

    code_changes, methods_added, methods_removed = _changes(previous, artifact.git_commit, repo_dir)
    delta = artifact.safety_nets_count_after - artifact.safety_nets_count_before
    gate_titles = {
        "G1": "5 Safety Nets Verification",
        "G2": "Behavioral Tests",
        "G3": "Green-Light Audit",
        "G4": "HMAC Policy Check",
        "G5": "Telemetry Infrastructure",
    }
    gates = "\n".join(
        f"- **{g} ({gate_titles[g]})**: {'✅ Pass' if g in artifact.ci_gates_passed else '❌ Not passed'}"
        for g in GATE_IDS
    )
    evidence_list = (
        "\n".join(
            f"- {inline_code(b.evidence_id)}: {inline_code(b.file, heuristics=False)} lines {b.lines}, "
            f"sha256 `{b.sha256[:12]}`: {escape_markdown(b.description)}"
            for b in blocks
        )
        or "No evidence blocks recorded for this phase."
    )
    issues = (
        "\n\n".join(
            f"### {escape_markdown(i.title)}\n\n**Description**: {i.description or 'n/a'}\n\n**Resolution**: {i.resolution or 'n/a'}"
            for i in values.issues or []
        )
        or "None recorded."
    )
    if previous is not None:
        actual = artifact.completion_date - previous.completion_date
        actual_text = f"{format_duration(actual)} since Phase {previous.phase} completed"
    else:
        actual, actual_text = None, "n/a (first phase)"
    variance = "n/a"
    if values.estimated_time and actual is not None:
        try:
            estimated = parse_duration(values.estimated_time)
            difference = actual - estimated
            sign = "+" if difference.total_seconds() >= 0 else "-"
            variance = f"{sign}{format_duration(abs(difference))}"
        except UsageError:
            variance = "n/a (estimate is not a duration)"
    phase = artifact.phase
    next_steps = values.next_steps or (
        f"Phase {phase + 1} may start: `tw-gates phase verify {phase + 1}` (or run `phase.yml` with phase {phase + 1})."
        if phase < LAST_PHASE
        else "All phases are complete."
    )
    summary = values.summary or (
        f"Phase {phase} ({_md_line(artifact.phase_name)}) completed at commit `{artifact.git_commit[:12]}`: "
        f"CI gates {', '.join(artifact.ci_gates_passed)} passed, behavioral baseline "
        f"{artifact.baseline_pass_count}, safety nets {artifact.safety_nets_count_after}, "
        f"{len(blocks)} evidence block{'s' if len(blocks) != 1 else ''}."
    )
    report_values = {
        "PHASE": phase,
        "PHASE_NAME": _md_line(artifact.phase_name),
        "DATE": artifact.completion_date.strftime("%Y-%m-%d %H:%M:%SZ"),
        "STATUS": "✅ Complete",
        "GIT_COMMIT": artifact.git_commit,
        "SUMMARY_TEXT": summary,
        "CODE_CHANGES": code_changes,
        "METHODS_ADDED": methods_added,
        "METHODS_REMOVED": methods_removed,
        "PASS_COUNT": baseline.passed,
        "TOTAL_COUNT": baseline.expected,
        "DURATION": baseline.duration,
        "MEDIAN_DELTA": artifact.performance_delta_median,
        "P95_DELTA": artifact.performance_delta_p95,
        "PERF_THRESHOLD": values.performance_threshold or "G3 green-light audit exits 0",
        "CI_GATES": gates,
        "BEFORE_COUNT": artifact.safety_nets_count_before,
        "AFTER_COUNT": artifact.safety_nets_count_after,
        "DELTA": f"{delta:+d}",
        "EVIDENCE_LIST": evidence_list,
        "ISSUES": issues,
        "ESTIMATED_TIME": values.estimated_time or "not estimated",
        "ACTUAL_TIME": actual_text,
        "VARIANCE": variance,
        "DEVIATIONS": values.deviations or "None recorded.",
        "NEXT_STEPS": next_steps,
    }
    text = read_text_input(template, "report template", max_bytes=MAX_TEXT_INPUT_BYTES)
    return render.render_text(text, report_values, "text", source=str(template))


# ------------------------------------------------------------------ status


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
    keys = _key_ring(settings)
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
