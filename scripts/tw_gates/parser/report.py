"""Presenting an adversarial report: per-category summaries, the verdict,
violation lines, the job summary's Markdown and the corpus listing."""

from __future__ import annotations

from pathlib import Path

from tw_gates.core.markdown import markdown_table
from tw_gates.parser.corpora import Corpus
from tw_gates.schemas.corpus import AdversarialReport, CaseResult, CategorySummary

SUMMARY_HEADERS = ["category", "cases", "violations", "downstream", "time", "slowest case", "slowest"]


def counts(result: CaseResult, policy: str) -> tuple[bool, bool]:
    """(fails the gate, has downstream violations)."""
    parser = any(v.counts_as == "parser" for v in result.violations)
    downstream = any(v.counts_as == "downstream" for v in result.violations)
    return parser or (downstream and policy == "fail"), downstream


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
                parser_violations=sum(1 for r in cases if any(v.counts_as == "parser" for v in r.violations)),
                downstream_violations=sum(1 for r in cases if any(v.counts_as == "downstream" for v in r.violations)),
                seconds=round(sum(r.ms for r in cases) / 1000, 3),
                slowest_case=slowest.id,
                slowest_ms=slowest.ms,
            )
        )
    return summaries


def category_line(category: str, results: list[CaseResult], policy: str) -> str:
    failing = sum(1 for r in results if counts(r, policy)[0])
    slowest = max(results, key=lambda r: r.ms)
    return f"  {category:<20} {len(results):>4} cases  {failing:>3} failing  slowest {slowest.id} {slowest.ms:.0f} ms"


def failing_cases(report: AdversarialReport) -> list[CaseResult]:
    return [r for r in report.cases if counts(r, report.downstream_policy)[0]]


def downstream_cases(report: AdversarialReport) -> list[CaseResult]:
    return [r for r in report.cases if counts(r, report.downstream_policy)[1]]


def summary_rows(report: AdversarialReport) -> list[list[object]]:
    return [
        [
            s.category,
            s.cases,
            s.parser_violations,
            s.downstream_violations,
            f"{s.seconds:.2f}s",
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


def verdict(report: AdversarialReport) -> str:
    failing = failing_cases(report)
    downstream = downstream_cases(report)
    head = f"{len(report.cases)} cases against {report.target} in {report.seconds:.1f}s"
    tail = (
        (
            f"; {len(downstream)} downstream-renderer check(s) "
            f"{'failing' if report.downstream_policy == 'fail' else 'reported'}"
        )
        if downstream
        else ""
    )
    if not failing:
        return f"{head}: no parser violations{tail}"
    names = ", ".join(r.id for r in failing[:10]) + (f" (+{len(failing) - 10} more)" if len(failing) > 10 else "")
    return f"{head}: {len(failing)} case(s) violated their expectations: {names}{tail}"


def violation_lines(results: list[CaseResult], counts_as: str) -> list[str]:
    lines = []
    for result in results:
        for violation in result.violations:
            if violation.counts_as == counts_as:
                lines.append(f"{result.id} [{result.category}] {violation.expectation}: {violation.detail}")
    return lines


def _violation_rows(report: AdversarialReport, counts_as: str) -> list[list[object]]:
    return [
        [r.id, r.category, v.expectation, v.detail]
        for r in report.cases
        for v in r.violations
        if v.counts_as == counts_as
    ]


def summary_markdown(report: AdversarialReport) -> str:
    parts = [
        f"### tw-gates adversarial: {report.target}\n",
        f"{verdict(report)}\n",
        markdown_table(SUMMARY_HEADERS, summary_rows(report)),
    ]
    headers = ["case", "category", "expectation", "detail"]
    parser_rows = _violation_rows(report, "parser")
    if parser_rows:
        parts += ["\n#### Parser violations\n\n", markdown_table(headers, parser_rows)]
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
