"""The phase completion report (the plan's Appendix B sections), filled from
the signed artifact, the measured baseline, the values file and the
repository's history, through the render module."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from tw_gates import DATA_DIR
from tw_gates.core.errors import UsageError
from tw_gates.core.fsio import read_text_input
from tw_gates.core.markdown import escape_markdown, inline_code
from tw_gates.core.units import format_duration, parse_duration
from tw_gates.phases import render
from tw_gates.phases.common import git
from tw_gates.schemas.evidence import EvidenceBlock
from tw_gates.schemas.phase import GATE_IDS, LAST_PHASE, PhaseArtifact

MAX_TEXT_INPUT_BYTES = 1024 * 1024  # the values file and the report template
REPORT_TEMPLATE = DATA_DIR / "templates" / "phase_completion_report.md"


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


def _md_line(text: str) -> str:
    return " ".join(str(text).split())


def _changes(previous: PhaseArtifact | None, commit: str, repo_dir: Path) -> tuple[str, str, str]:
    """Code changes, methods added, methods removed since the previous phase's commit."""
    if previous is None:
        first = "Phase 0 is the first phase: there is no earlier phase commit to compare with."
        return first, "n/a (first phase)", "n/a (first phase)"
    base = previous.git_commit
    count = git(repo_dir, "rev-list", "--count", f"{base}..{commit}")
    numstat = git(repo_dir, "diff", "--numstat", base, commit)
    if not (count.ok and numstat.ok):
        why = (count if not count.ok else numstat).stderr_tail()
        return f"Could not diff against {base[:12]}: {why}", "unknown", "unknown"
    rows = [line.split("\t", 2) for line in numstat.text().splitlines() if line.count("\t") >= 2]
    added = sum(int(a) for a, _, _ in rows if a.isdigit())
    removed = sum(int(r) for _, r, _ in rows if r.isdigit())
    n_commits = int(count.text().strip() or 0)
    lines = [
        f"{n_commits} commit{'' if n_commits == 1 else 's'} since Phase {previous.phase} "
        f"(`{base[:12]}`..`{commit[:12]}`): {len(rows)} files changed, +{added} -{removed} lines."
    ]
    if rows:
        lines.append("")
        lines += [f"- {inline_code(p, heuristics=False)} (+{a} -{r})" for a, r, p in rows[:50]]
        if len(rows) > 50:
            lines.append(f"- ... and {len(rows) - 50} more files")
    diff = git(repo_dir, "diff", "-U0", base, commit, "--", "*.py")
    plus: set[str] = set()
    minus: set[str] = set()
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
    blocks: list[EvidenceBlock],
    repo_dir: Path,
    template: Path = REPORT_TEMPLATE,
) -> str:
    """The phase completion report, filled from the artifact and
    the repository, through the render module."""
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
            f"### {escape_markdown(i.title)}\n\n**Description**: {i.description or 'n/a'}\n\n"
            f"**Resolution**: {i.resolution or 'n/a'}"
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
