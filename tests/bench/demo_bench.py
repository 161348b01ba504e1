"""Benchmark of ``tw-gates demo`` (reported, not a timed test): the whole story,
behavioral tests included, as ``make demo`` runs it.

Runs the demo N times (default 5) into a scratch folder, one CLI process each,
and prints every run's wall time, the median, the slowest steps of the median
run, and the machine's load before and after (timings on a shared machine are
noisy: compare medians taken at similar load). The target is a median of at
most 15 s on 2 cores.

    python tests/bench/demo_bench.py [--runs 5] [--skip-tests]"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STEP_TIME = re.compile(r"^(\d+)\s+(\S+)\s+.*?\s(\d+\.\d)s$")


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def tw_gates() -> list[str]:
    venv = Path(sys.executable).with_name("tw-gates")
    return [str(venv)] if venv.exists() else [sys.executable, "-m", "tw_gates"]


def run_once(out: Path, skip_tests: bool) -> tuple[float, int, dict[str, float]]:
    argv = [*tw_gates(), "demo", "--out", str(out), *(["--skip-tests"] if skip_tests else [])]
    env = {k: v for k, v in os.environ.items() if k not in ("GITHUB_TOKEN", "GITHUB_ACTIONS")}
    env["PYTHONPATH"] = str(ROOT / "scripts")
    started = time.monotonic()
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - started
    steps = {}
    for line in done.stdout.splitlines():
        match = STEP_TIME.match(line)
        if match:
            steps[f"{match.group(1)} {match.group(2)}"] = float(match.group(3))
    if done.returncode:
        print(done.stdout[-2000:], done.stderr[-2000:], sep="\n", file=sys.stderr)
    return seconds, done.returncode, steps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--skip-tests", action="store_true", help="pass --skip-tests to the demo")
    args = parser.parse_args()
    print(f"tw-gates demo x{args.runs}{' --skip-tests' if args.skip_tests else ''}; before: {load()}")
    results = []
    with tempfile.TemporaryDirectory(prefix="tw-demo-bench-") as folder:
        for index in range(args.runs):
            seconds, code, steps = run_once(Path(folder) / "out", args.skip_tests)
            results.append((seconds, code, steps))
            print(f"run {index + 1}: {seconds:.1f} s, exit {code} ({load()})")
    times = sorted(r[0] for r in results)
    median = statistics.median(times)
    print(f"median {median:.1f} s (min {times[0]:.1f}, max {times[-1]:.1f}); after: {load()}")
    median_run = min(results, key=lambda r: abs(r[0] - median))
    slowest = sorted(median_run[2].items(), key=lambda kv: -kv[1])[:5]
    print("slowest steps of the median run: " + ", ".join(f"{name} {s:.1f}s" for name, s in slowest))
    return 0 if all(code == 0 for _, code, _ in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
