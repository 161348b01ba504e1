"""Presenting an adversarial report: per-category summaries, the verdict,
violation lines, the job summary's Markdown and the corpus listing."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from tw_gates.core.markdown import inline_code, markdown_table
from tw_gates.parser.corpora import Corpus
from tw_gates.schemas.corpus import AdversarialReport, CaseResult, CategorySummary, Violation

SUMMARY_HEADERS = [
    "category",
    "cases",
    "violations",
    "over budget",
    "downstream",
    "time",
    "CPU",
    "slowest case",
    "slowest",
]
BUDGET_KINDS = ("time_budget", "memory_budget")


def counts(result: CaseResult, policy: str) -> tuple[bool, bool]:
    """(fails the gate, has downstream violations)."""
    parser = any(v.counts_as == "parser" for v in result.violations)
    downstream = any(v.counts_as == "downstream" for v in result.violations)
    return parser or (downstream and policy == "fail"), downstream


def section_of(violation: Violation) -> str:
    """parser (an output check of a parser case, a crash), budget (time, memory) or downstream."""
    if violation.kind in BUDGET_KINDS:
        return "budget"
    return violation.counts_as


def budget_words(kinds: Collection[str]) -> str:
    """'time', 'memory' or 'time or memory': which budgets were overrun."""
    words = [word for word, kind in (("time", "time_budget"), ("memory", "memory_budget")) if kind in kinds]
    return " or ".join(words) or "time"


def _label(violation: Violation) -> str:
    if violation.kind in BUDGET_KINDS:
        return f"over its {budget_words({violation.kind})} budget"
    return violation.expectation


def summarize(results: list[CaseResult]) -> list[CategorySummary]:
    by_category: dict[str, list[CaseResult]] = {}
    for result in results:
        by_category.setdefault(result.category, []).append(result)
    summaries = []
    for category, cases in by_category.items():
        slowest = max(cases, key=lambda r: r.ms)
        summaries.append(
            CategorySummary(
                category=category,
                cases=len(cases),
                parser_violations=sum(1 for r in cases if r.status == "violation"),
                over_budget=sum(1 for r in cases if any(section_of(v) == "budget" for v in r.violations)),
                downstream_violations=sum(1 for r in cases if any(v.counts_as == "downstream" for v in r.violations)),
                seconds=round(sum(r.ms for r in cases) / 1000, 3),
                cpu_seconds=round(sum(r.cpu_ms or 0 for r in cases) / 1000, 3),
                slowest_case=slowest.id,
                slowest_ms=slowest.ms,
            )
        )
    return summaries


def category_line(category: str, results: list[CaseResult]) -> str:
    violating = sum(1 for r in results if r.status == "violation")
    over = sum(1 for r in results if any(section_of(v) == "budget" for v in r.violations))
    slowest = max(results, key=lambda r: r.ms)
    return (
        f"  {category:<20} {len(results):>4} cases  {violating:>3} violating  {over:>3} over budget  "
        f"slowest {slowest.id} {slowest.ms:.0f} ms ({slowest.cpu_ms or 0:.0f} ms CPU)"
    )


def failing_cases(report: AdversarialReport) -> list[CaseResult]:
    """Every case that fails the gate: violations, budget overruns, downstream checks under policy fail."""
    return [r for r in report.cases if counts(r, report.downstream_policy)[0]]


def violating_cases(report: AdversarialReport) -> list[CaseResult]:
    """Cases with a parser violation: an output check of a parser case, or a crash."""
    return [r for r in report.cases if r.status == "violation"]


def over_budget_cases(report: AdversarialReport) -> list[CaseResult]:
    """Cases over their time or memory budget (whatever else they did)."""
    return [r for r in report.cases if any(section_of(v) == "budget" for v in r.violations)]


def downstream_cases(report: AdversarialReport) -> list[CaseResult]:
    return [r for r in report.cases if counts(r, report.downstream_policy)[1]]


def summary_rows(report: AdversarialReport) -> list[list[object]]:
    return [
        [
            s.category,
            s.cases,
            s.parser_violations,
            s.over_budget,
            s.downstream_violations,
            f"{s.seconds:.2f}s",
            f"{s.cpu_seconds:.2f}s",
            s.slowest_case,
            f"{s.slowest_ms:.0f} ms",
        ]
        for s in report.categories
    ]


def text_table(headers: list[str], rows: list[list[object]]) -> str:
    table: list[list[object]] = [list(headers), *rows]
    cells = [[str(c) for c in row] for row in table]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in cells
    )


def _names(results: list[CaseResult]) -> str:
    return ", ".join(r.id for r in results[:10]) + (f" (+{len(results) - 10} more)" if len(results) > 10 else "")


def budget_heading(report: AdversarialReport) -> str:
    kinds = {v.kind for r in report.cases for v in r.violations}
    return f"Over their {budget_words(kinds)} budget"


def verdict(report: AdversarialReport) -> str:
    violating = violating_cases(report)
    over = over_budget_cases(report)
    downstream = downstream_cases(report)
    head = f"{len(report.cases)} cases against {report.target} in {report.seconds:.1f}s"
    tail = ""
    if downstream:
        effect = "failing" if report.downstream_policy == "fail" else "reported"
        tail = f"; {len(downstream)} downstream-renderer check(s) {effect}"
        if report.downstream_policy == "fail":
            tail += f": {_names(downstream)}"
    parts = [
        f"{len(violating)} case(s) violated their expectations: {_names(violating)}"
        if violating
        else "no parser violations"
    ]
    if over:
        parts.append(f"{len(over)} case(s) {budget_heading(report).lower()}: {_names(over)}")
    return f"{head}: {'; '.join(parts)}{tail}"


def violation_lines(results: list[CaseResult], section: str) -> list[str]:
    """One line per violation of a section: parser, budget or downstream."""
    return [
        f"{result.id} [{result.category}] {_label(violation)}: {violation.detail}"
        for result in results
        for violation in result.violations
        if section_of(violation) == section
    ]


def _violation_rows(report: AdversarialReport, section: str) -> list[list[object]]:
    return [
        [r.id, r.category, _label(v), v.detail] for r in report.cases for v in r.violations if section_of(v) == section
    ]


def summary_markdown(report: AdversarialReport) -> str:
    parts = [
        f"### tw-gates adversarial: {inline_code(report.target)}\n",
        f"{verdict(report)}\n",
        markdown_table(SUMMARY_HEADERS, summary_rows(report)),
    ]
    headers = ["case", "category", "expectation", "detail"]
    parser_rows = _violation_rows(report, "parser")
    if parser_rows:
        parts += ["\n#### Parser violations\n\n", markdown_table(headers, parser_rows)]
    budget_rows = _violation_rows(report, "budget")
    if budget_rows:
        parts += [
            f"\n#### {budget_heading(report)}\n\n",
            "Time budgets are judged on the case process's CPU time; they fail the gate (a parser that "
            "goes quadratic is a denial of service) but are not security violations.\n\n",
            markdown_table(headers, budget_rows),
        ]
    downstream_rows = _violation_rows(report, "downstream")
    if downstream_rows:
        effect = "they fail the gate" if report.downstream_policy == "fail" else "reported, not failing the gate"
        parts += [
            "\n#### Downstream-renderer checks\n\n",
            "Every correct Markdown parser passes these through; the renderer that consumes its output "
            f"must neutralise them ({effect}).\n\n",
            markdown_table(headers, downstream_rows),
        ]
    return "".join(parts)


def list_lines(corpora: list[Corpus], directory: Path) -> list[str]:
    rows: list[list[object]] = []
    for corpus in corpora:
        downstream = sum(1 for case in corpus.model.cases if case.checks == "downstream")
        description = corpus.model.description
        rows.append(
            [
                corpus.category,
                corpus.file,
                len(corpus.model.cases),
                downstream,
                description if len(description) <= 70 else description[:67] + "...",
            ]
        )
    lines = [f"corpora in {directory}:"]
    lines += text_table(["category", "file", "cases", "downstream", "description"], rows).splitlines()
    lines.append(f"{sum(len(c.model.cases) for c in corpora)} cases in {len(corpora)} categories")
    return lines
