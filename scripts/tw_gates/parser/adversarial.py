"""The adversarial gate: run the corpora against a Markdown parser.

Every case runs in its own process (``core.proc.run``) with a wall-clock
limit and an address-space limit (RLIMIT_AS), so a target that hangs, loops
or allocates without bound is killed and reported, never a hang of the gate.
Cases run in parallel, one per job (default: one per core); each is its own
process, so a thread pool over ``proc.run`` is all the parallelism needed.

A target is a command that reads Markdown on stdin and writes its rendering
on stdout, or ``builtin:commonmark`` / ``builtin:safe`` (markdown-it-py, see
``adversarial_targets``), which run the same way.

Exit code: 2 when any *parser* check fails (an output expectation of a
``parser`` case, or a crash, timeout, memory or time overrun of any case).
Output expectations of ``downstream`` cases (template delimiters, bidi and
look-alike text that every correct Markdown parser passes through) are
reported in their own section; they fail the gate only with
``downstream=fail``, for a target that is the whole rendering pipeline."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from tw_gates import DATA_DIR
from tw_gates.core import proc
from tw_gates.core.errors import ExitCode, UsageError
from tw_gates.core.fsio import atomic_write_json, load_model
from tw_gates.core.redact import secret_env_values
from tw_gates.core.settings import EnvSettings, env
from tw_gates.parser import targets as adversarial_targets
from tw_gates.schemas.consumer import utc_now_iso
from tw_gates.schemas.corpus import (
    AdversarialReport,
    Case,
    CaseResult,
    CategorySummary,
    CorpusFile,
    CorpusManifest,
    ResolvedExpectations,
    Violation,
)

BUNDLED_CORPORA = DATA_DIR / "corpora"
MANIFEST = "manifest.json"
SCHEMA_FILE = "schema.json"
BUILTIN_PREFIX = adversarial_targets.BUILTIN_PREFIX
MAX_CORPUS_FILE_BYTES = 8 * 1024 * 1024
# Output beyond this is not kept (the child is still drained, so it never blocks).
MAX_OUTPUT_BYTES = 64 * 1024 * 1024
# A case with max_ms is stopped once it has clearly overrun it: at twice its
# budget, and never sooner than two seconds past it.
MIN_GRACE_S = 2.0


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class AdversarialSettings(EnvSettings):
    target: str | None = Field(None, validation_alias=env("TW_ADVERSARIAL_TARGET", "target"))
    corpora: Path = Field(BUNDLED_CORPORA, validation_alias=env("TW_ADVERSARIAL_CORPORA", "corpora"))
    # Comma or space separated category names; empty means every category.
    only: str | None = Field(None, validation_alias=env("TW_ADVERSARIAL_ONLY", "only"))
    jobs: int = Field(default_factory=_cores, ge=1, le=256, validation_alias=env("TW_ADVERSARIAL_JOBS", "jobs"))
    report: Path | None = Field(None, validation_alias=env("TW_ADVERSARIAL_REPORT", "report"))
    timeout_s: float = Field(60.0, gt=0, le=3600, validation_alias=env("TW_ADVERSARIAL_TIMEOUT", "timeout_s"))
    memory_limit_mb: int = Field(
        1024, ge=64, le=1024 * 1024, validation_alias=env("TW_ADVERSARIAL_MEMORY_LIMIT_MB", "memory_limit_mb")
    )
    downstream: Literal["report", "fail"] = Field(
        "report", validation_alias=env("TW_ADVERSARIAL_DOWNSTREAM", "downstream")
    )

    @field_validator("target")
    @classmethod
    def _strip(cls, value: str | None) -> str | None:
        return (value.strip() or None) if value is not None else None

    def categories(self) -> list[str]:
        return [word for word in re.split(r"[\s,]+", (self.only or "").strip()) if word]


# --- corpora ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Corpus:
    file: str
    model: CorpusFile

    @property
    def category(self) -> str:
        return self.model.category


@dataclass(frozen=True)
class Corpora:
    directory: Path
    manifest: CorpusManifest
    files: list[Corpus]


@dataclass(frozen=True)
class PlannedCase:
    category: str
    case: Case
    expect: ResolvedExpectations
    # (how a violation names it, compiled regex): the manifest's named
    # patterns by name, the case's own regexes by their source.
    regexes: list[tuple[str, re.Pattern[str]]]


def load_corpora(directory: Path) -> Corpora:
    """Every corpus file the manifest lists, validated, in manifest order.

    A JSON file in the folder that the manifest does not list is an error:
    a corpus nobody runs is a check silently lost."""
    if not directory.is_dir():
        raise UsageError(f"corpora folder {directory} does not exist")
    manifest_path = directory / MANIFEST
    manifest = load_model(manifest_path, CorpusManifest, "corpus manifest", max_bytes=MAX_CORPUS_FILE_BYTES, fmt="json")
    present = {p.name for p in directory.glob("*.json")} - {MANIFEST, SCHEMA_FILE}
    unlisted = sorted(present - set(manifest.files))
    if unlisted:
        raise UsageError(f"{directory}: {', '.join(unlisted)} not listed in {MANIFEST} (list it or remove it)")
    corpora: list[Corpus] = []
    categories: dict[str, str] = {}
    case_files: dict[str, str] = {}
    for name in manifest.files:
        path = directory / name
        model = load_model(path, CorpusFile, "corpus file", max_bytes=MAX_CORPUS_FILE_BYTES, fmt="json")
        if model.category in categories:
            raise UsageError(
                f"{path}: category {model.category!r} is also the category of {categories[model.category]}"
            )
        categories[model.category] = name
        for where, expect in [("defaults", model.defaults), *((case.id, case.expect) for case in model.cases)]:
            unknown = [n for n in expect.must_not_match_patterns if n not in manifest.patterns]
            if unknown:
                raise UsageError(
                    f"{path}: {where}: unknown pattern(s) {', '.join(unknown)} (the patterns are defined in {MANIFEST})"
                )
        for case in model.cases:
            if case.id in case_files:
                raise UsageError(f"{path}: case id {case.id!r} is also used in {case_files[case.id]}")
            case_files[case.id] = name
        corpora.append(Corpus(file=name, model=model))
    return Corpora(directory=directory, manifest=manifest, files=corpora)


def select_corpora(corpora: list[Corpus], only: list[str]) -> list[Corpus]:
    if not only:
        return corpora
    known = [c.category for c in corpora]
    unknown = [name for name in only if name not in known]
    if unknown:
        raise UsageError(
            f"unknown categor{'y' if len(unknown) == 1 else 'ies'}: {', '.join(unknown)} (known: {', '.join(known)})"
        )
    return [c for c in corpora if c.category in only]


def plan(corpora: list[Corpus], manifest: CorpusManifest) -> list[PlannedCase]:
    compiled: dict[str, re.Pattern[str]] = {}

    def regex(source: str) -> re.Pattern[str]:
        if source not in compiled:
            compiled[source] = re.compile(source)
        return compiled[source]

    planned = []
    for corpus in corpora:
        for case in corpus.model.cases:
            expect = case.expect.merged_over(corpus.model.defaults)
            regexes = [(name, regex(manifest.patterns[name].pattern)) for name in expect.must_not_match_patterns]
            regexes += [(f"/{source}/", regex(source)) for source in expect.must_not_match]
            planned.append(PlannedCase(category=corpus.category, case=case, expect=expect, regexes=regexes))
    return planned


# --- targets ---------------------------------------------------------------------------


def target_argv(target: str) -> list[str]:
    """The command a case runs; builtin targets are this interpreter running
    ``tw_gates.parser.targets``, so they get the same limits."""
    if target.startswith(BUILTIN_PREFIX):
        name = target[len(BUILTIN_PREFIX) :]
        if name not in adversarial_targets.NAMES:
            known = ", ".join(BUILTIN_PREFIX + n for n in adversarial_targets.NAMES)
            raise UsageError(f"unknown builtin target {target!r} (known: {known})")
        return [sys.executable, "-m", "tw_gates.parser.targets", name]
    return adversarial_targets.command_argv(target)


def _target_env() -> dict[str, str]:
    """The gate's environment minus its secrets: the parser under test has
    no business with the job's tokens and keys."""
    secrets = set(secret_env_values())
    return {name: value for name, value in os.environ.items() if value not in secrets}


# --- one case --------------------------------------------------------------------------


def time_limit_s(expect: ResolvedExpectations, ceiling_s: float) -> float:
    if expect.max_ms is None:
        return ceiling_s
    budget = expect.max_ms / 1000
    return min(ceiling_s, max(2 * budget, budget + MIN_GRACE_S))


def _show(text: str, limit: int = 120) -> str:
    """Text safe to print in a log or a table: ASCII only, control and
    bidi characters escaped (a report must not itself carry the attack)."""
    shown = json.dumps(text[:limit], ensure_ascii=True)[1:-1]
    return shown + ("..." if len(text) > limit else "")


def _around(text: str, start: int, end: int) -> str:
    return _show(text[max(0, start - 30) : min(len(text), end + 30)], 160)


_PARSE_MS = re.compile(rf"^{re.escape(adversarial_targets.PARSE_MS_PREFIX)}\s*([0-9]+(?:\.[0-9]+)?)\s*$", re.M)


def check_output(stdout: bytes, planned: PlannedCase) -> list[tuple[str, str]]:
    """(expectation, detail) for every output expectation that does not hold."""
    expect = planned.expect
    found: list[tuple[str, str]] = []
    if expect.must_be_utf8:
        try:
            stdout.decode("utf-8")
        except UnicodeDecodeError as exc:
            found.append(("must_be_utf8", f"output is not UTF-8: {exc.reason} at byte {exc.start}"))
    text = stdout.decode("utf-8", "replace")
    for needle in expect.must_not_contain:
        at = text.find(needle)
        if at >= 0:
            found.append(
                ("must_not_contain", f'contains "{_show(needle)}": ...{_around(text, at, at + len(needle))}...')
            )
    for label, regex in planned.regexes:
        match = regex.search(text)
        if match:
            found.append(
                ("must_not_match", f"matches {_show(label, 60)}: ...{_around(text, match.start(), match.end())}...")
            )
    return found


def run_case(planned: PlannedCase, argv: list[str], settings: AdversarialSettings, env_: dict[str, str]) -> CaseResult:
    expect = planned.expect
    data = planned.case.input_bytes()
    limit = time_limit_s(expect, settings.timeout_s)
    result = proc.run(
        argv,
        timeout=limit,
        input=data,
        env=env_,
        max_output_bytes=MAX_OUTPUT_BYTES,
        limits=proc.Limits(address_space_bytes=settings.memory_limit_mb * 1024 * 1024),
    )
    ms = result.duration_s * 1000
    rss_mb = result.max_rss_kib / 1024
    problems: list[tuple[str, str, bool]] = []  # (expectation, detail, always a parser fault)

    if result.timed_out:
        problems.append(
            (
                "time_limit",
                f"killed after {limit:.1f}s without finishing (max_ms {expect.max_ms})"
                if expect.max_ms
                else f"killed after {limit:.1f}s without finishing",
                True,
            )
        )
    elif result.signal or (expect.must_not_crash and result.returncode != 0):
        problems.append(("must_not_crash", result.describe(), True))
    if expect.max_ms is not None and not result.timed_out and ms > expect.max_ms:
        problems.append(("max_ms", f"took {ms:.0f} ms, above max_ms {expect.max_ms}", True))
    if expect.max_rss_mb is not None and rss_mb > expect.max_rss_mb:
        problems.append(("max_rss_mb", f"peak RSS {rss_mb:.0f} MiB, above max_rss_mb {expect.max_rss_mb}", True))
    for expectation, detail in check_output(result.stdout, planned):
        problems.append((expectation, detail, False))

    violations = [
        Violation(expectation=kind, detail=detail, counts_as="parser" if resource else planned.case.checks)
        for kind, detail, resource in problems
    ]
    parse_ms = _PARSE_MS.findall(result.stderr.decode("utf-8", "replace")[-4096:])
    outcome = (
        "timed out"
        if result.timed_out
        else (f"killed by signal {result.signal}" if result.signal else f"exited {result.returncode}")
    )
    if result.stdout_truncated:
        outcome += f"; output cut at {MAX_OUTPUT_BYTES // (1024 * 1024)} MiB"
    return CaseResult(
        id=planned.case.id,
        category=planned.category,
        checks=planned.case.checks,
        passed=not violations,
        ms=round(ms, 1),
        parse_ms=float(parse_ms[-1]) if parse_ms else None,
        rss_mb=round(rss_mb, 1),
        input_bytes=len(data),
        outcome=outcome,
        violations=violations,
    )


# --- the gate --------------------------------------------------------------------------


def _counts(result: CaseResult, policy: str) -> tuple[bool, bool]:
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


def gate(settings: AdversarialSettings, *, progress: Callable[[str], None] | None = None) -> AdversarialReport:
    if not settings.target:
        raise UsageError("no target: pass --target CMD|builtin:commonmark|builtin:safe (or set TW_ADVERSARIAL_TARGET)")
    argv = target_argv(settings.target)
    loaded = load_corpora(settings.corpora)
    corpora = select_corpora(loaded.files, settings.categories())
    cases = plan(corpora, loaded.manifest)
    say = progress or (lambda line: None)
    say(
        f"adversarial: {len(cases)} cases in {len(corpora)} categor{'y' if len(corpora) == 1 else 'ies'} "
        f"against {settings.target} "
        f"({settings.jobs} jobs, {settings.memory_limit_mb} MiB address space per case)"
    )

    env_ = _target_env()
    remaining = {c.category: len(c.model.cases) for c in corpora}
    done: dict[str, list[CaseResult]] = {c.category: [] for c in corpora}
    results: dict[int, CaseResult] = {}
    # Longest first, so the heavy cases do not end up alone at the tail of the run.
    order = sorted(
        range(len(cases)), key=lambda i: (cases[i].expect.max_ms or 0, _input_size(cases[i].case)), reverse=True
    )
    started = time.monotonic()
    pool = ThreadPoolExecutor(max_workers=settings.jobs, thread_name_prefix="adversarial")
    try:
        futures = {pool.submit(run_case, cases[i], argv, settings, env_): i for i in order}
        for future in as_completed(futures):
            result = future.result()
            results[futures[future]] = result
            done[result.category].append(result)
            remaining[result.category] -= 1
            if remaining[result.category] == 0:
                say(_category_line(result.category, done[result.category], settings.downstream))
    finally:
        # On an error, cases not started yet are dropped; running ones end at their time limit.
        pool.shutdown(wait=True, cancel_futures=True)
    seconds = time.monotonic() - started
    ordered = [results[i] for i in range(len(cases))]
    failing = any(_counts(r, settings.downstream)[0] for r in ordered)
    report = AdversarialReport(
        target=settings.target,
        generated_at=utc_now_iso(),
        corpora=str(settings.corpora),
        categories_run=[c.category for c in corpora],
        jobs=settings.jobs,
        memory_limit_mb=settings.memory_limit_mb,
        downstream_policy=settings.downstream,
        seconds=round(seconds, 3),
        exit_code=int(ExitCode.REJECTED if failing else ExitCode.OK),
        categories=summarize(ordered),
        cases=ordered,
    )
    _record_metrics(report)
    if settings.report is not None:
        try:
            atomic_write_json(settings.report, report.model_dump(mode="json"))
        except OSError as exc:
            raise UsageError(f"cannot write the report to {settings.report}: {exc.strerror or exc}") from None
    return report


def _input_size(case: Case) -> int:
    if case.generate is not None:
        return case.generate.size()
    return len(case.markdown_b64 or case.markdown or "")


def _category_line(category: str, results: list[CaseResult], policy: str) -> str:
    failing = sum(1 for r in results if _counts(r, policy)[0])
    slowest = max(results, key=lambda r: r.ms)
    return f"  {category:<20} {len(results):>4} cases  {failing:>3} failing  slowest {slowest.id} {slowest.ms:.0f} ms"


def _record_metrics(report: AdversarialReport) -> None:
    from tw_gates.core import metrics

    sink = metrics.current()
    cases = sink.gauge("tw_gates_adversarial_cases")
    violating = sink.gauge("tw_gates_adversarial_violating_cases")
    for summary in report.categories:
        cases.labels(category=summary.category).set(summary.cases)
        violating.labels(category=summary.category, counts_as="parser").set(summary.parser_violations)
        violating.labels(category=summary.category, counts_as="downstream").set(summary.downstream_violations)


# --- presenting a report ---------------------------------------------------------------


def failing_cases(report: AdversarialReport) -> list[CaseResult]:
    return [r for r in report.cases if _counts(r, report.downstream_policy)[0]]


def downstream_cases(report: AdversarialReport) -> list[CaseResult]:
    return [r for r in report.cases if _counts(r, report.downstream_policy)[1]]


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


SUMMARY_HEADERS = ["category", "cases", "violations", "downstream", "time", "slowest case", "slowest"]


def text_table(headers: list[str], rows: list[list[object]]) -> str:
    cells = [[str(c) for c in row] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in cells)


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


def summary_markdown(report: AdversarialReport) -> str:
    from tw_gates.core.markdown import inline_code, markdown_table

    parts = [
        f"### tw-gates adversarial: {inline_code(report.target)}\n",
        f"{verdict(report)}\n",
        markdown_table(SUMMARY_HEADERS, summary_rows(report)),
    ]
    headers = ["case", "category", "expectation", "detail"]

    def rows(counts_as: str) -> list[list[object]]:
        return [
            [r.id, r.category, v.expectation, v.detail]
            for r in report.cases
            for v in r.violations
            if v.counts_as == counts_as
        ]

    if rows("parser"):
        parts += ["\n#### Parser violations\n\n", markdown_table(headers, rows("parser"))]
    if rows("downstream"):
        effect = "they fail the gate" if report.downstream_policy == "fail" else "reported, not failing the gate"
        parts += [
            "\n#### Downstream-renderer checks\n\n",
            "Every correct Markdown parser passes these through; the renderer that consumes its output "
            f"must neutralise them ({effect}).\n\n",
            markdown_table(headers, rows("downstream")),
        ]
    return "".join(parts)


def list_lines(corpora: list[Corpus], directory: Path) -> list[str]:
    rows = []
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
