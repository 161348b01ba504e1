"""The adversarial gate: run the corpora against a Markdown parser.

Every case runs in its own process, in its own process group, with an
address-space limit (RLIMIT_AS), a CPU cut-off past its time budget
(RLIMIT_CPU), a capped output and a wall-clock hang guard, so a target that
hangs, loops or allocates without bound is stopped and reported, never a
hang of the gate. Cases run in parallel, one per job (default: one per core).

A target is a command that reads Markdown on stdin and writes its rendering
on stdout (each case a process of it, ``core.proc``), or ``builtin:commonmark``
/ ``builtin:safe`` (markdown-it-py, ``parser.targets``): each case a child
forked from a server that built the parser once (``parser.forkserver``).
Either way the target sees only an allowlisted environment.

Exit code: 2 when any *parser* check fails: an output expectation of a
``parser`` case or a crash (a violation), or a case over its time or memory
budget (reported as such, never as a violation).
Output expectations of ``downstream`` cases (template delimiters, bidi and
look-alike text that every correct Markdown parser passes through) are
reported in their own section; they fail the gate only with
``downstream=fail``, for a target that is the whole rendering pipeline.

The concerns live beside this module: ``corpora`` (loading and planning),
``cases`` (running and judging one case), ``report`` (presenting a report)."""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from tw_gates.core import metrics
from tw_gates.core.errors import ExitCode, UsageError
from tw_gates.core.fsio import atomic_write_json
from tw_gates.core.settings import EnvSettings, env
from tw_gates.parser.cases import (
    Runner,
    builtin_env,
    builtin_name,
    case_limits,
    command_runner,
    run_case,
    target_env,
)
from tw_gates.parser.corpora import BUNDLED_CORPORA, Corpus, PlannedCase, input_size, load_corpora, plan, select_corpora
from tw_gates.parser.forkserver import ServerPool
from tw_gates.parser.report import (
    SUMMARY_HEADERS,
    category_line,
    counts,
    downstream_cases,
    failing_cases,
    list_lines,
    over_budget_cases,
    summarize,
    summary_markdown,
    summary_rows,
    text_table,
    verdict,
    violating_cases,
    violation_lines,
)
from tw_gates.parser.target_spec import command_argv
from tw_gates.schemas.consumer import utc_now_iso
from tw_gates.schemas.corpus import AdversarialReport, CaseResult

__all__ = [
    "SUMMARY_HEADERS",
    "AdversarialSettings",
    "adversarial",
    "downstream_cases",
    "failing_cases",
    "list_lines",
    "load_corpora",
    "over_budget_cases",
    "select_corpora",
    "summary_markdown",
    "summary_rows",
    "text_table",
    "verdict",
    "violating_cases",
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
    # Comma or space separated names of variables the target needs from the job's environment.
    pass_env: str | None = Field(None, validation_alias=env("TW_ADVERSARIAL_PASS_ENV", "pass_env"))

    @field_validator("target")
    @classmethod
    def _strip(cls, value: str | None) -> str | None:
        return (value.strip() or None) if value is not None else None

    def categories(self) -> list[str]:
        return [word for word in re.split(r"[\s,]+", (self.only or "").strip()) if word]

    def declared_env(self) -> list[str]:
        return [word for word in re.split(r"[\s,]+", (self.pass_env or "").strip()) if word]


def adversarial(settings: AdversarialSettings, *, progress: Callable[[str], None] | None = None) -> AdversarialReport:
    """Run the selected corpora against the target; the report says whether the gate passed."""
    if not settings.target:
        raise UsageError("no target: pass --target CMD|builtin:commonmark|builtin:safe (or set TW_ADVERSARIAL_TARGET)")
    argv = None if builtin_name(settings.target) else command_argv(settings.target)
    loaded = load_corpora(settings.corpora)
    corpora = select_corpora(loaded.files, settings.categories())
    cases = plan(corpora, loaded.manifest)
    say = progress or (lambda line: None)
    say(
        f"adversarial: {len(cases)} cases in {len(corpora)} categor{'y' if len(corpora) == 1 else 'ies'} "
        f"against {settings.target} "
        f"({settings.jobs} jobs, {settings.memory_limit_mb} MiB address space per case)"
    )
    env_ = target_env(settings.declared_env(), loaded.manifest.target_env)
    started = time.monotonic()
    with _runner(settings.target, argv, env_, min(settings.jobs, len(cases))) as runner:
        ordered = _run_cases(cases, corpora, runner, settings, say)
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


@contextlib.contextmanager
def _runner(target: str, argv: list[str] | None, env_: dict[str, str], servers: int) -> Iterator[Runner]:
    if argv is not None:
        yield command_runner(argv, env_)
        return
    name = builtin_name(target) or ""
    with ServerPool(
        max(servers, 1), "tw_gates.parser.targets:renderer", name, env=builtin_env(env_), label=target
    ) as pool:
        yield pool


def _run_cases(
    cases: list[PlannedCase],
    corpora: list[Corpus],
    runner: Runner,
    settings: AdversarialSettings,
    say: Callable[[str], None],
) -> list[CaseResult]:
    """Every case's result, in corpus order; a progress line as each category completes."""
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
            pool.submit(
                run_case, cases[i], runner, case_limits(cases[i].expect, settings.timeout_s, settings.memory_limit_mb)
            ): i
            for i in order
        }
        for future in as_completed(futures):
            result = future.result()
            results[futures[future]] = result
            done[result.category].append(result)
            remaining[result.category] -= 1
            if remaining[result.category] == 0:
                say(category_line(result.category, done[result.category]))
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
        violating.labels(category=summary.category, counts_as="budget").set(summary.over_budget)
