"""Adversarial gate benchmark, A/B in the same run:

  A  tw-gates: the gate (``adversarial()``) on the full corpora against a builtin
     target, each case a child forked from a server that built the parser once;
  B  the same cases in one process, the parser built once, nothing else (the floor);
  C  (--per-process) the way builtin targets ran before the fork server: the gate
     with each case a fresh interpreter (``python -m tw_gates.parser.targets``).

Runs are alternated (A, B[, C], A, B[, C] ...). For each: wall time, CPU time of
everything it ran (the gate's own and its children's), the ratios to B and the
per-case overhead ((CPU - B's CPU) / cases). Then the demo's part: the smoke
corpus against builtin:safe and builtin:commonmark, as ``tw-gates demo`` runs it.
The machine's load is printed with every number: on a shared machine wall times
are noisy, CPU times much less.

    python tests/bench/adversarial_bench.py [--target builtin:safe] [--jobs 2] [--runs 3] [--per-process]

Targets (issue 16.5, 11.5): the full corpora against builtin:safe in under 20 s on
2 cores; the demo's two smoke runs well under a few seconds. Exit 1 if the median
of A misses 20 s, or if a case of A fails (a benchmark of a failing gate measures
nothing)."""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from tw_gates.parser.adversarial import AdversarialSettings, adversarial, failing_cases  # noqa: E402
from tw_gates.parser.corpora import BUNDLED_CORPORA, load_corpora, plan  # noqa: E402
from tw_gates.parser.targets import build  # noqa: E402

TARGET_SECONDS = 20.0
DEMO_TARGET_SECONDS = 3.0


def _cpu(which: int) -> float:
    usage = resource.getrusage(which)
    return usage.ru_utime + usage.ru_stime


def measure(run: Callable[[], object]) -> tuple[float, float, object]:
    """(wall s, CPU s of this process and every child it reaped, result)."""
    self_before, children_before = _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    result = run()
    wall = time.monotonic() - started
    cpu = (_cpu(resource.RUSAGE_SELF) - self_before) + (_cpu(resource.RUSAGE_CHILDREN) - children_before)
    return wall, cpu, result


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.2f}/{five:.2f}"


def one_process(target: str) -> None:
    """B, in its own interpreter: build the parser once, render every case."""
    loaded = load_corpora(BUNDLED_CORPORA)
    inputs = [planned.case.input_bytes() for planned in plan(loaded.files, loaded.manifest)]
    parser = build(target.removeprefix("builtin:"))
    for data in inputs:
        parser.render(data.decode("utf-8", "replace"))


def run_b(target: str) -> None:
    subprocess.run([sys.executable, __file__, "--one-process", target], check=True)


def gate(settings: AdversarialSettings):
    report = adversarial(settings)
    failing = failing_cases(report)
    if failing:
        raise SystemExit(f"{len(failing)} case(s) fail the gate: {', '.join(c.id for c in failing)}")
    return report


def per_process_settings(target: str, jobs: int) -> AdversarialSettings:
    """The builtin target as a command: a fresh interpreter per case, as before the fork server."""
    name = target.removeprefix("builtin:")
    return AdversarialSettings(target=f"{sys.executable} -m tw_gates.parser.targets {name}", jobs=jobs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", default="builtin:safe")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--per-process", action="store_true", help="also run C, the per-case interpreter (slow)")
    parser.add_argument("--one-process", metavar="TARGET", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_process:
        one_process(args.one_process)
        return 0

    cases = len(plan(load_corpora(BUNDLED_CORPORA).files, load_corpora(BUNDLED_CORPORA).manifest))
    print(
        f"machine: {platform.machine()}, {len(os.sched_getaffinity(0))} cores available, {load()}; "
        f"python {platform.python_version()}; {cases} cases; target {args.target}; jobs {args.jobs}"
    )
    variants: dict[str, Callable[[], object]] = {
        "A tw-gates (fork server)": lambda: gate(AdversarialSettings(target=args.target, jobs=args.jobs)),
        "B one process, parser built once": lambda: run_b(args.target),
    }
    if args.per_process:
        variants["C tw-gates, an interpreter per case"] = lambda: gate(per_process_settings(args.target, args.jobs))
    numbers: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    last_report = None
    for run in range(1, args.runs + 1):
        for name, variant in variants.items():
            wall, cpu, result = measure(variant)
            numbers[name].append((wall, cpu))
            if name.startswith("A"):
                last_report = result
            print(f"run {run}  {name:<38} {wall:7.2f} s wall  {cpu:7.2f} s CPU  ({load()})")

    base_wall = statistics.median(w for w, _ in numbers["B one process, parser built once"])
    base_cpu = statistics.median(c for _, c in numbers["B one process, parser built once"])
    print(f"\nmedians of {args.runs} run(s) ({load()} at the end):")
    for name, pairs in numbers.items():
        wall = statistics.median(w for w, _ in pairs)
        cpu = statistics.median(c for _, c in pairs)
        overhead = (cpu - base_cpu) / cases * 1000
        print(
            f"  {name:<38} {wall:7.2f} s wall ({wall / base_wall:4.2f}x B)  {cpu:7.2f} s CPU ({cpu / base_cpu:4.2f}x B)"
            + ("" if name.startswith("B") else f"  overhead {overhead:5.1f} ms CPU per case")
        )

    if last_report is not None:
        print("\nslowest cases (last run of A): wall, CPU, parse, RSS, input")
        for case in sorted(last_report.cases, key=lambda c: -(c.cpu_ms or 0))[:6]:
            print(
                f"  {case.ms:7.0f} ms  {case.cpu_ms or 0:7.0f} ms CPU  {case.parse_ms or 0:7.0f} ms  "
                f"{case.rss_mb:5.0f} MiB  {case.input_bytes:>9,} B  {case.id}"
            )

    demo = []
    for target in ("builtin:safe", "builtin:commonmark"):
        wall, cpu, _ = measure(lambda t=target: adversarial(AdversarialSettings(target=t, only="smoke")))
        demo.append(wall)
        print(f"\ndemo part: smoke against {target}: {wall:.2f} s wall, {cpu:.2f} s CPU ({load()})")
    print(f"demo part, both: {sum(demo):.2f} s (target < {DEMO_TARGET_SECONDS:.0f} s)")

    median = statistics.median(w for w, _ in numbers["A tw-gates (fork server)"])
    verdict = "OK" if median < TARGET_SECONDS else "TOO SLOW"
    print(f"\nA: median {median:.2f} s wall (target < {TARGET_SECONDS:.0f} s on 2 cores): {verdict}")
    return 0 if median < TARGET_SECONDS else 1


if __name__ == "__main__":
    raise SystemExit(main())
