"""``complete_phase(N)``: measure what the artifact records (G2's JUnit for
the baseline, G1 for the safety nets, the evidence blocks of the phase,
re-hashed), refuse unless G1-G5 all passed and the baseline is whole, then
write the signed artifact atomically and render the completion report
(``report``) from those same data."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, cast

from junitparser import JUnitXml
from pydantic import ValidationError

from tw_gates.chain.behavioral import BehavioralSettings, behavioral
from tw_gates.chain.verify_nets import VerifyNetsSettings, verify_nets
from tw_gates.core.errors import GateRejected, UsageError
from tw_gates.core.fsio import atomic_write_json, load_model
from tw_gates.core.progress import Progress, silent
from tw_gates.core.redact import REDACTOR
from tw_gates.core.settings import describe_validation_error
from tw_gates.core.units import format_duration
from tw_gates.phases import evidence
from tw_gates.phases.common import PhaseSettings, Source, check_phase_number, git, head_commit
from tw_gates.phases.evidence_verify import blocks_for_phase
from tw_gates.phases.report import MAX_TEXT_INPUT_BYTES, REPORT_TEMPLATE, Baseline, CompletionValues, render_report
from tw_gates.phases.unlock import verify_unlock
from tw_gates.schemas.evidence import EvidenceBlock
from tw_gates.schemas.phase import GATE_IDS, SCHEMA_VERSION, PhaseArtifact, artifact_filename, artifact_name

DEFAULT_PHASE_NAMES = {0: "Prerequisites & Setup"}


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


def baseline_from_junit(junit: str, expected: int) -> Baseline:
    """G2's reading of the behavioral JUnit XML (``expected`` 0: every test it holds)."""
    result = behavioral(BehavioralSettings(junit=junit, expect=expected))
    seconds = 0.0
    try:
        for path in result.files:
            seconds += float(JUnitXml.fromfile(path).time or 0)
    except Exception:  # the duration is report decoration; G2 already read the files
        seconds = 0.0
    return Baseline(
        passed=result.passed,
        expected=result.expected,
        duration=format_duration(seconds) if seconds else "not recorded in the JUnit XML",
        problems=[f"{c.suite}::{c.name} {c.outcome}" for c in result.problems]
        + ([result.summary] if result.passed > result.expected else []),
    )


def safety_nets_verified(repo_dir: Path) -> int:
    """G1's count of verified safety nets in the checkout."""
    return verify_nets(VerifyNetsSettings(repo_dir=repo_dir)).verified_count


@dataclass
class CompletionResult:
    artifact: PhaseArtifact
    path: Path
    report: str
    previous: PhaseArtifact | None
    tag: str | None = None
    warnings: list[str] = field(default_factory=list)


def measured_baseline(
    junit: str | None, expected_tests: int, baseline_pass_count: str | None, values: CompletionValues
) -> Baseline:
    """The behavioral baseline: G2 over the JUnit XML, else the score given by flag or values file."""
    if junit:
        return baseline_from_junit(junit, expected_tests)
    given = baseline_pass_count or values.baseline_pass_count
    if not given:
        raise UsageError(
            "baseline_pass_count unknown: pass --junit (G2's behavioral JUnit XML), --baseline "
            "(G2's score) or set it in --from-file"
        )
    match = re.fullmatch(r"\s*([0-9]{1,6})\s*/\s*([0-9]{1,6})\s*", given)
    if not match:
        raise UsageError(f"baseline {given!r} is not PASSED/EXPECTED (e.g. 14/14)")
    origin = "the --baseline flag (G2's score)" if baseline_pass_count else "the values file"
    return Baseline(
        passed=int(match.group(1)),
        expected=int(match.group(2)),
        duration=f"not measured here (score from {origin})",
    )


def completion_refusals(gates: list[str], baseline: Baseline, blocks: list[EvidenceBlock], repo_dir: Path) -> list[str]:
    """Why the phase may not complete: gates not passed, a baseline not whole, evidence that changed."""
    refusals = []
    not_passed = [g for g in GATE_IDS if g not in gates]
    if not_passed:
        refusals.append(f"CI gates not passed: {', '.join(not_passed)}")
    if not baseline.whole:
        detail = f" ({'; '.join(baseline.problems[:5])})" if baseline.problems else ""
        refusals.append(f"behavioral baseline is {baseline.text}, not whole{detail}")
    cache = evidence.SourceCache(repo_dir)
    stale = [c for c in (evidence.check_block(b, cache) for b in blocks) if c.status != "ok"]
    if stale:
        refusals.append(
            "evidence does not verify: " + "; ".join(f"{c.evidence_id} {c.status}: {c.detail}" for c in stale[:5])
        )
    return refusals


def complete_phase(
    phase: int,
    settings: PhaseSettings,
    *,
    name: str | None = None,
    junit: str | None = None,
    expected_tests: int = 0,
    baseline_pass_count: str | None = None,
    values_file: Path | None = None,
    gates_passed: str | None = None,
    tag: bool = False,
    source: Source | None = None,
    report_template: Path = REPORT_TEMPLATE,
    progress: Progress = silent,
) -> CompletionResult:
    check_phase_number(phase)
    keys = settings.phase_ring()
    if not keys.can_sign:
        raise UsageError("no signing key: set TW_PHASE_KEY (and TW_PHASE_KEY_ID)")
    values = load_completion_values(values_file)
    unlock = verify_unlock(phase, settings, source=source, progress=progress)
    previous = unlock.previous

    baseline = measured_baseline(junit, expected_tests, baseline_pass_count, values)
    gates = parse_gates(gates_passed) if gates_passed is not None else parse_gates(values.ci_gates_passed)
    if gates is None:
        raise UsageError("which CI gates passed is unknown: pass --gates-passed G1,G2,G3,G4,G5 or set ci_gates_passed")
    blocks = blocks_for_phase(settings.evidence_file, phase)
    refusals = completion_refusals(gates, baseline, blocks, settings.repo_dir)
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
    signed = keys.sign(cast("dict[str, Any]", REDACTOR.redact_obj(document)))
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
    existing = git(repo_dir, "rev-parse", "-q", "--verify", f"refs/tags/{tag}^{{commit}}")
    if existing.ok:
        at = existing.text().strip()
        if at == commit:
            return tag
        raise UsageError(
            f"tag {tag} already exists at {at[:12]}, not {commit[:12]}; delete it (git tag -d {tag}) "
            "to tag the new completion"
        )
    result = git(repo_dir, "tag", tag, commit)
    if not result.ok:
        raise UsageError(f"cannot create tag {tag}: {result.stderr_tail()}")
    return tag
