"""Adversarial gate benchmark: the full bundled corpora against a target
(default ``builtin:safe``) with ``--jobs`` cases in parallel, through the same
``gate()`` the CLI runs. Prints the wall time of each run, the time per
category (sum of its cases' wall times, and of the parse times the builtin
target reports) and the slowest cases.

    python tests/bench/adversarial_bench.py [--target builtin:safe] [--jobs 2] [--runs 3] [--only CATEGORY ...]

Target (issue 6): the full corpora against builtin:safe in under 20 s on
2 cores. Exit 1 if the median run is slower, or if any case violates a
parser expectation (a benchmark of a failing gate measures nothing)."""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from tw_gates.parser.adversarial import AdversarialSettings, adversarial, failing_cases  # noqa: E402 - after the path setup

TARGET_SECONDS = 20.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", default="builtin:safe")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", nargs="*", default=[])
    args = parser.parse_args()

    settings = AdversarialSettings(target=args.target, jobs=args.jobs, only=",".join(args.only) or None)
    print(
        f"machine: {platform.machine()}, {len(os.sched_getaffinity(0))} cores available, "
        f"load average {os.getloadavg()[0]:.2f}; python {platform.python_version()}; jobs {args.jobs}"
    )

    walls, reports = [], []
    for run in range(1, args.runs + 1):
        # CPU the case processes used (reaped children): what the run costs
        # whatever else the machine is doing, unlike the wall time.
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        report = adversarial(settings)
        walls.append(time.monotonic() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        reports.append(report)
        failing = failing_cases(report)
        print(
            f"run {run}: {len(report.cases)} cases in {walls[-1]:.2f} s wall "
            f"(load {os.getloadavg()[0]:.2f}), {sum(c.ms for c in report.cases) / 1000:.1f} s of case wall time, "
            f"{cpu:.1f} s of case CPU (/{args.jobs} = {cpu / args.jobs:.1f} s), {len(failing)} failing"
        )
        if failing:
            print("  failing: " + ", ".join(c.id for c in failing))
            return 1

    last = reports[-1]
    print("\nper category (last run): cases, sum of case wall times, sum of parse times, slowest case")
    for summary in last.categories:
        parse = sum(c.parse_ms or 0 for c in last.cases if c.category == summary.category) / 1000
        print(
            f"  {summary.category:<20} {summary.cases:>4}  {summary.seconds:7.2f} s  {parse:7.2f} s  "
            f"{summary.slowest_case} ({summary.slowest_ms:.0f} ms)"
        )
    startup = [c.ms - c.parse_ms for c in last.cases if c.parse_ms is not None]
    if startup:
        print(f"per-case process overhead (wall - parse): median {statistics.median(startup):.0f} ms")
    print("\nslowest cases (last run):")
    for case in sorted(last.cases, key=lambda c: -c.ms)[:8]:
        print(f"  {case.ms:7.0f} ms  {case.rss_mb:5.0f} MiB  {case.input_bytes:>9,} B  {case.id}")

    median = statistics.median(walls)
    verdict = "OK" if median < TARGET_SECONDS else "TOO SLOW"
    print(
        f"\nwall time: median {median:.2f} s, min {min(walls):.2f} s, max {max(walls):.2f} s "
        f"(target < {TARGET_SECONDS:.0f} s): {verdict}"
    )
    return 0 if median < TARGET_SECONDS else 1


if __name__ == "__main__":
    raise SystemExit(main())
