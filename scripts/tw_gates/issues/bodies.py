"""Issue bodies: the findings as checkbox lines (every consumer-supplied part in a
code span), the digest's table, titles, the change comment, and reading back the
checkboxes a person ticked."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from tw_gates.core.markdown import inline_code
from tw_gates.issues.findings import Finding, redact_path, repo_key
from tw_gates.issues.tracker import MAX_BODY_CHARS
from tw_gates.schemas.severity import SEVERITIES, SEVERITY_RANK

# Room left in a body for the header, the table and the false-positive list.
BODY_BUDGET = MAX_BODY_CHARS - 1_500
# Items listed in one change comment before "... and N more".
COMMENT_ITEMS = 30
_CHECKBOX = re.compile(r"^\s*[-*] \[(?P<mark>[ xX])\] .*`(?P<id>f-[0-9a-f]{16})`\s*$")
SECTION_FINDINGS = "<!-- tw-gates:findings -->"
SECTION_FALSE_POSITIVES = "<!-- tw-gates:false-positives -->"
SECTION_END = "<!-- tw-gates:end -->"


@dataclass
class BodyMarks:
    """What a person can change in a body we wrote: the checkboxes."""

    listed: set[str] = field(default_factory=set)  # ids in the findings section
    ticked: set[str] = field(default_factory=set)  # ... ticked there: newly marked false positive
    kept_false: set[str] = field(default_factory=set)  # ids still ticked in the false-positive section
    unticked_false: set[str] = field(default_factory=set)  # ids unticked there: report them again

    @property
    def known(self) -> set[str]:
        return self.listed | self.kept_false | self.unticked_false


def read_marks(body: str) -> BodyMarks:
    marks, section = BodyMarks(), None
    for line in body.splitlines():
        stripped = line.strip()
        if stripped in (SECTION_FINDINGS, SECTION_FALSE_POSITIVES, SECTION_END):
            section = stripped
            continue
        match = _CHECKBOX.match(line)
        if not match or section not in (SECTION_FINDINGS, SECTION_FALSE_POSITIVES):
            continue
        ticked, finding_id = match.group("mark") != " ", match.group("id")
        if section == SECTION_FINDINGS:
            marks.listed.add(finding_id)
            if ticked:
                marks.ticked.add(finding_id)
        elif ticked:
            marks.kept_false.add(finding_id)
        else:
            marks.unticked_false.add(finding_id)
    return marks


def _code_path(text: str) -> str:
    return inline_code(redact_path(text), 300, heuristics=False)


def _finding_text(finding: Finding, *, with_repo: bool) -> str:
    """One finding on one line; every consumer-supplied part is a code span."""
    parts = [f"**{finding.severity}**"]
    if with_repo:
        parts.append(_code_path(finding.repo))
    parts += [f"{_code_path(finding.path)}:{finding.line}", inline_code(finding.pattern, 120), f"`{finding.id}`"]
    return " · ".join(parts)


def _finding_line(finding: Finding, *, checked: bool, with_repo: bool) -> str:
    return f"- [{'x' if checked else ' '}] false positive · " + _finding_text(finding, with_repo=with_repo)


def _severity_counts(findings: list[Finding]) -> Counter:
    return Counter(f.severity for f in findings)


def _count_phrase(findings: list[Finding]) -> str:
    counts = _severity_counts(findings)
    return ", ".join(f"{counts[s]} {s}" for s in SEVERITIES if counts[s]) or "none"


def plural(n: int, word: str) -> str:
    if n == 1:
        return f"{n} {word}"
    return f"{n} {word[:-1]}ies" if word.endswith("y") else f"{n} {word}s"


@dataclass
class RenderedBody:
    text: str
    shown: list[Finding]  # active findings with a checkbox in the body
    overflow: list[Finding]  # active findings that did not fit


def _fill(lines: list[str], candidates: list[tuple[Finding, str]], budget: int) -> tuple[list[Finding], list[Finding]]:
    """Append candidate lines while they fit in ``budget`` characters."""
    shown: list[Finding] = []
    used = sum(len(x) + 1 for x in lines)
    for index, (finding, text) in enumerate(candidates):
        if used + len(text) + 1 > budget:
            return shown, [f for f, _ in candidates[index:]]
        lines.append(text)
        used += len(text) + 1
        shown.append(finding)
    return shown, []


def _false_positive_section(false_positives: list[Finding], *, with_repo: bool) -> list[str]:
    if not false_positives:
        return [SECTION_FALSE_POSITIVES, SECTION_END]
    lines = [
        SECTION_FALSE_POSITIVES,
        "",
        f"#### Marked false positive ({len(false_positives)})",
        "",
        "Not reported while ticked; untick one to report it again.",
        "",
    ]
    lines += [_finding_line(f, checked=True, with_repo=with_repo) for f in false_positives]
    return [*lines, "", SECTION_END]


_FOOTER = (
    "<sub>Filed by tw-gates file-issues. Only the checkboxes are read back; "
    "the rest of this text is replaced when the findings change.</sub>"
)


def render_repo_body(repo: str, active: list[Finding], false_positives: list[Finding], audit_id: str) -> RenderedBody:
    head = [f"### Unregistered Markdown renderer use in {_code_path(repo)}", ""]
    if active:
        head.append(
            f"**{plural(len(active), 'finding')}** ({_count_phrase(active)}) outside the repository's "
            "registered code paths."
        )
    else:
        head.append("No open findings: every finding the audit still reports is marked false positive.")
    head += [
        "",
        f"Audit {inline_code(audit_id, 200)}. Tick **false positive** on a finding that is not a problem: "
        "the next run moves it to the list below and stops reporting it.",
        "",
        SECTION_FINDINGS,
        "",
    ]
    tail = ["", *_false_positive_section(false_positives, with_repo=False), "", _FOOTER]
    lines = list(head)
    shown, overflow = _fill(
        lines,
        [(f, _finding_line(f, checked=False, with_repo=False)) for f in active],
        BODY_BUDGET - sum(len(x) + 1 for x in tail),
    )
    if overflow:
        lines += [
            "",
            f"_{plural(len(overflow), 'more finding')} did not fit in this issue: they are in the "
            "run's fallback artifact (tw-gates-issue-fallback)._",
        ]
    return RenderedBody("\n".join(lines + tail), shown, overflow)


def _repo_table(groups: dict[str, list[Finding]], budget: int) -> list[str]:
    """Repositories by worst severity, then by number of findings."""

    def order(item: tuple[str, list[Finding]]) -> tuple:
        repo, findings = item
        counts = _severity_counts(findings)
        return (*tuple(-counts[s] for s in SEVERITIES), -len(findings), repo.lower())

    rows = ["| repository | worst | critical | high | medium | low | findings |", "|---|---|---|---|---|---|---|"]
    used = sum(len(r) + 1 for r in rows)
    ranked = sorted(((r, f) for r, f in groups.items() if f), key=order)
    for index, (repo, findings) in enumerate(ranked):
        counts = _severity_counts(findings)
        worst = min(findings, key=lambda f: SEVERITY_RANK[f.severity]).severity
        row = (
            f"| {inline_code(redact_path(repo), 140, in_table=True, heuristics=False)} | {worst} | "
            + " | ".join(str(counts[s]) for s in SEVERITIES)
            + f" | {len(findings)} |"
        )
        if used + len(row) + 1 > budget:
            rows.append(f"| _{plural(len(ranked) - index, 'more repository')}_ | | | | | | |")
            break
        rows.append(row)
        used += len(row) + 1
    return rows


def render_digest_body(active: list[Finding], false_positives: list[Finding], audit_id: str, why: str) -> RenderedBody:
    groups: dict[str, list[Finding]] = {}
    names: dict[str, str] = {}
    for finding in active:
        names.setdefault(repo_key(finding.repo), finding.repo)
        groups.setdefault(names[repo_key(finding.repo)], []).append(finding)
    head = [
        f"### tw-gates digest: {plural(len(active), 'finding')} in {plural(len(groups), 'repository')}",
        "",
        why,
        "",
        f"Audit {inline_code(audit_id, 200)}. Repositories by severity and count:",
        "",
    ]
    head += _repo_table(groups, BODY_BUDGET // 3)
    head += [
        "",
        "Tick **false positive** on a finding that is not a problem: the next run moves it to the "
        "list at the end and stops reporting it.",
        "",
        SECTION_FINDINGS,
    ]
    tail = ["", *_false_positive_section(false_positives, with_repo=True), "", _FOOTER]
    candidates: list[tuple[Finding, str]] = []
    ordered_repos = sorted(
        groups, key=lambda r: (min(SEVERITY_RANK[f.severity] for f in groups[r]), -len(groups[r]), r.lower())
    )
    lines = list(head)
    budget = BODY_BUDGET - sum(len(x) + 1 for x in tail)
    shown: list[Finding] = []
    overflow: list[Finding] = []
    for repo in ordered_repos:
        if overflow:
            overflow += groups[repo]
            continue
        heading = ["", f"#### {_code_path(repo)} ({len(groups[repo])})", ""]
        if sum(len(x) + 1 for x in lines + heading) > budget:
            overflow += groups[repo]
            continue
        lines += heading
        candidates = [(f, _finding_line(f, checked=False, with_repo=False)) for f in groups[repo]]
        got, rest = _fill(lines, candidates, budget)
        shown += got
        overflow += rest
    if overflow:
        lines += [
            "",
            f"_{plural(len(overflow), 'more finding')} did not fit in this issue: they are in the "
            "run's fallback artifact (tw-gates-issue-fallback)._",
        ]
    return RenderedBody("\n".join(lines + tail), shown, overflow)


def repo_title(repo: str, active: int, false_positives: int) -> str:
    if active:
        return f"tw-gates: {plural(active, 'unregistered renderer finding')} in {repo}"
    return f"tw-gates: {repo}: all {plural(false_positives, 'finding')} marked false positive"


def digest_title(active: int, repos: int) -> str:
    return f"tw-gates digest: {plural(active, 'unregistered renderer finding')} in {plural(repos, 'repository')}"


def change_comment(
    audit_id: str, marks: BodyMarks, active: list[Finding], false_positives: list[Finding], *, with_repo: bool
) -> str:
    """The one comment an update adds: what changed since the body was last written."""
    active_ids = {f.id for f in active}
    false_ids = {f.id for f in false_positives}
    previous_false = marks.kept_false | marks.unticked_false
    new = [f for f in active if f.id not in marks.known]
    again = [f for f in active if f.id in previous_false]
    marked = [f for f in false_positives if f.id in marks.listed]
    resolved = sorted(marks.known - active_ids - false_ids)
    parts = [f"{len(new)} new", f"{len(resolved)} resolved"]
    if marked:
        parts.append(f"{len(marked)} marked false positive")
    if again:
        parts.append(f"{len(again)} reported again")
    lines = [f"Findings changed (audit {inline_code(audit_id, 200)}): {', '.join(parts)}."]
    for title, items in (("New", new), ("Reported again", again)):
        if items:
            lines += ["", f"{title}:"]
            lines += ["- " + _finding_text(f, with_repo=with_repo) for f in items[:COMMENT_ITEMS]]
            lines += [f"- … and {len(items) - COMMENT_ITEMS} more"] if len(items) > COMMENT_ITEMS else []
    if resolved:
        shown = ", ".join(f"`{i}`" for i in resolved[:COMMENT_ITEMS])
        more = f" and {len(resolved) - COMMENT_ITEMS} more" if len(resolved) > COMMENT_ITEMS else ""
        lines += ["", f"Resolved: {shown}{more}."]
    return "\n".join(lines)
