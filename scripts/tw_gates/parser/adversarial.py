"""The adversarial gate: run the corpora against a Markdown parser.

Every case runs in its own process (``core.proc.run``) with a wall-clock
limit and an address-space limit (RLIMIT_AS), so a target that hangs, loops
or allocates without bound is killed and reported, never a hang of the gate.
Cases run in parallel, one per job (default: one per core); each is its own
process, so a thread pool over ``proc.run`` is all the parallelism needed.

A target is a command that reads Markdown on stdin and writes its rendering
on stdout, or ``builtin:commonmark`` / ``builtin:safe`` (markdown-it-py, see
``parser.targets``), which run the same way.

Exit code: 2 when any *parser* check fails (an output expectation of a
``parser`` case, or a crash, timeout, memory or time overrun of any case).
Output expectations of ``downstream`` cases (template delimiters, bidi and
look-alike text that every correct Markdown parser passes through) are
reported in their own section; they fail the gate only with
``downstream=fail``, for a target that is the whole rendering pipeline.

The concerns live beside this module: ``corpora`` (loading and planning),
``cases`` (running and judging one case), ``report`` (presenting a report)."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from tw_gates.core import metrics
from tw_gates.core.errors import ExitCode, UsageError
from tw_gates.core.fsio import atomic_write_json
from tw_gates.core.settings import EnvSettings, env
from tw_gates.parser.cases import run_case, target_argv, target_env
from tw_gates.parser.corpora import BUNDLED_CORPORA, Corpus, PlannedCase, input_size, load_corpora, plan, select_corpora
from tw_gates.parser.report import (
    SUMMARY_HEADERS,
    category_line,
    counts,
    downstream_cases,
    failing_cases,
    list_lines,
    summarize,
    summary_markdown,
    summary_rows,
    text_table,
    verdict,
    violation_lines,
)
from tw_gates.schemas.consumer import utc_now_iso
from tw_gates.schemas.corpus import AdversarialReport, CaseResult

__all__ = [
    "SUMMARY_HEADERS",
    "AdversarialSettings",
    "adversarial",
    "downstream_cases",
    "failing_cases",
    "gate",
    "list_lines",
    "load_corpora",
    "select_corpora",
    "summary_markdown",
    "summary_rows",
    "text_table",
    "verdict",
    "violation_lines",
]


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


def adversarial(settings: AdversarialSettings, *, progress: Callable[[str], None] | None = None) -> AdversarialReport:
    """Run the selected corpora against the target; the report says whether the gate passed."""
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
    started = time.monotonic()
    ordered = _run_cases(cases, corpora, argv, settings, say)
    seconds = time.monotonic() - started
    failing = any(counts(r, settings.downstream)[0] for r in ordered)
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


# The name the demo calls; the gate function is named for its command.
gate = adversarial


def _run_cases(
    cases: list[PlannedCase],
    corpora: list[Corpus],
    argv: list[str],
    settings: AdversarialSettings,
    say: Callable[[str], None],
) -> list[CaseResult]:
    """Every case's result, in corpus order; a progress line as each category completes."""
    env_ = target_env()
    remaining = {c.category: len(c.model.cases) for c in corpora}
    done: dict[str, list[CaseResult]] = {c.category: [] for c in corpora}
    results: dict[int, CaseResult] = {}
    # Longest first, so the heavy cases do not end up alone at the tail of the run.
    order = sorted(
        range(len(cases)), key=lambda i: (cases[i].expect.max_ms or 0, input_size(cases[i].case)), reverse=True
    )
    pool = ThreadPoolExecutor(max_workers=settings.jobs, thread_name_prefix="adversarial")
    try:
        futures = {
            pool.submit(run_case, cases[i], argv, settings.timeout_s, settings.memory_limit_mb, env_): i for i in order
        }
        for future in as_completed(futures):
            result = future.result()
            results[futures[future]] = result
            done[result.category].append(result)
            remaining[result.category] -= 1
            if remaining[result.category] == 0:
                say(category_line(result.category, done[result.category], settings.downstream))
    finally:
        # On an error, cases not started yet are dropped; running ones end at their time limit.
        pool.shutdown(wait=True, cancel_futures=True)
    return [results[i] for i in range(len(cases))]


def _record_metrics(report: AdversarialReport) -> None:
    sink = metrics.current()
    cases = sink.gauge("tw_gates_adversarial_cases")
    violating = sink.gauge("tw_gates_adversarial_violating_cases")
    for summary in report.categories:
        cases.labels(category=summary.category).set(summary.cases)
        violating.labels(category=summary.category, counts_as="parser").set(summary.parser_violations)
        violating.labels(category=summary.category, counts_as="downstream").set(summary.downstream_violations)
