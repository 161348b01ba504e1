"""Benchmark: start-up of the tw-gates CLI, A/B against ``python -c pass``.

What every workflow step pays before a gate does anything, measured in fresh
processes, the cases alternated round by round so that both sides of each
ratio see the same machine load:

* ``python -c pass`` (the same interpreter): the floor;
* ``tw-gates --help``, ``--version`` and ``platform``: whole runs (``platform``
  includes recording its run in the metrics textfile); target <= 0.1 s;
* every gate's *time to work*: the process runs the real CLI (argument
  parsing, settings from flags and environment, the gate's imports) and stops
  the moment the gate function is entered (the function is swapped for one
  that exits at once); target <= 0.3 s. The heavy packages loaded by then are
  listed: a gate that does not talk to GitHub should not have ``github``.

Wall time on a shared machine grows with the load; CPU time (user + system of
the child) much less, so both are reported, with the load average before and
after. Bytecode caching is left on for the children (PYTHONDONTWRITEBYTECODE
is removed), as on a runner, where the first gate of a job writes the caches.

``--against REF`` adds the same cases for a git revision of this repository
(its ``scripts/`` extracted to a temp folder, put first on PYTHONPATH), run
in the same rounds: before and after, side by side.

    python tests/bench/startup_bench.py [--runs 15] [--quick] [--against REF] [--only platform,audit]

The last line printed is ``BENCH-JSON {...}`` (the harness convention, see
tests/bench/run_all.py)."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FAST_TARGET_S = 0.1
GATE_TARGET_S = 0.3
STOP_CODE = 97  # the exit code of a process stopped at the gate's door
HEAVY = (
    "github",
    "requests",
    "pydantic_settings",
    "pydantic",
    "prometheus_client",
    "portalocker",
    "yaml",
    "actions_toolkit.core",
)

# Runs the CLI as the console script does; with TW_BENCH_STOP_AT=module:function
# that function is replaced by one that reports the heavy packages loaded and
# exits at once (os._exit: no metrics flush, no atexit work).
DRIVER = f"""
import os, sys
stop_at = os.environ.pop("TW_BENCH_STOP_AT", "")
if stop_at:
    import importlib
    module_name, _, function = stop_at.partition(":")
    module = importlib.import_module(module_name)
    def _stop(*args, **kwargs):
        loaded = [name for name in {HEAVY!r} if name in sys.modules]
        os.write(2, ("BENCH-LOADED " + ",".join(loaded) + "\\n").encode())
        os._exit({STOP_CODE})
    setattr(module, function, _stop)
from tw_gates.cli import main
sys.exit(main())
"""

_ENTRY = "BENCH-LOADED "


@dataclass
class Case:
    label: str
    argv: list[str]  # [] for the python -c pass baseline
    stop_at: str | None = None  # module:function of the gate (time to work)
    target_s: float | None = None
    kind: str = "fast"  # "floor", "fast" or "gate"


@dataclass
class Result:
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    codes: set[int] = field(default_factory=set)
    loaded: str = ""
    error: str = ""


def gate_cases(files: Path) -> list[Case]:
    """Each gate with flags that pass its settings, so it reaches its work."""
    junit = files / "junit.xml"
    junit.write_text('<testsuite tests="1"><testcase classname="t" name="t"/></testsuite>\n')
    report = files / "report.json"
    report.write_text("{}\n")

    def gate(label: str, argv: list[str], stop_at: str) -> Case:
        return Case(label, argv, stop_at, GATE_TARGET_S, "gate")

    return [
        gate("platform", ["platform"], "tw_gates.chain.platform:platform"),
        gate("verify-nets", ["verify-nets"], "tw_gates.chain.verify_nets:verify_nets"),
        gate("behavioral", ["behavioral", "--junit", str(junit)], "tw_gates.chain.behavioral:behavioral"),
        gate("audit", ["audit", "--report", str(files / "audit.json")], "tw_gates.chain.audit:audit"),
        gate("hmac-policy", ["hmac-policy"], "tw_gates.chain.hmac_policy:hmac_policy"),
        gate("telemetry-check", ["telemetry-check"], "tw_gates.chain.telemetry_check:telemetry_check"),
        gate("ingest", ["ingest", "--artifact", str(files)], "tw_gates.ingest.ingest:ingest"),
        gate(
            "self-audit", ["self-audit", "--out", str(files / "sa.json")], "tw_gates.self_audit.self_audit:self_audit"
        ),
        gate("collect", ["collect", "--out", str(files / "collected")], "tw_gates.ingest.collect:collect"),
        gate(
            "file-issues",
            ["file-issues", "--audit", str(report), "--dry-run", "--central-repo", "acme/central"],
            "tw_gates.issues.file_issues:file_issues",
        ),
        gate("canary", ["canary"], "tw_gates.canary.canary:run_canary"),
        gate("adversarial", ["adversarial", "--target", "builtin:safe"], "tw_gates.parser.adversarial:adversarial"),
        gate("gates", ["gates"], "tw_gates.chain.run:run_chain"),
    ]


def all_cases(files: Path) -> list[Case]:
    return [
        Case("python -c pass", [], kind="floor"),
        Case("tw-gates --help", ["--help"], target_s=FAST_TARGET_S),
        Case("tw-gates --version", ["--version"], target_s=FAST_TARGET_S),
        Case("tw-gates platform", ["platform"], target_s=FAST_TARGET_S),
        *gate_cases(files),
    ]


def child_env(metrics_dir: Path, pythonpath: Path | None) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GITHUB_", "RUNNER_", "TW_", "ACTIONS_"))
        and k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH", "POLICY_REQUIRE_HMAC", "SLACK_WEBHOOK_URL")
    }
    env["TW_METRICS_DIR"] = str(metrics_dir)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return env


def run_once(case: Case, env: dict[str, str]) -> tuple[float, float, int, str]:
    """(wall s, CPU s, exit code, stderr) of one fresh process."""
    if case.kind == "floor":
        command = [sys.executable, "-c", "pass"]
    else:
        command = [sys.executable, "-c", DRIVER, *case.argv]
        if case.stop_at:
            env = {**env, "TW_BENCH_STOP_AT": case.stop_at}
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert child.stderr is not None
    err = child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_utime + usage.ru_stime, child.returncode, err.decode("utf-8", "replace")


def extract(ref: str, into: Path) -> Path:
    """The ``scripts/`` folder of git revision ``ref``, for PYTHONPATH."""
    into.mkdir(parents=True, exist_ok=True)
    archive = into / "scripts.tar"
    with archive.open("wb") as out:
        subprocess.run(["git", "-C", str(ROOT), "archive", ref, "scripts"], stdout=out, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into / "scripts"


def measure(cases: list[Case], variants: dict[str, dict[str, str]], runs: int, warmup: int) -> dict:
    results = {(variant, case.label): Result() for variant in variants for case in cases}
    for number in range(warmup + runs):
        for case in cases:  # alternated: every case once per round
            for variant, env in variants.items():
                if case.kind == "floor" and variant != "now":
                    continue
                wall, cpu, code, err = run_once(case, env)
                result = results[(variant, case.label)]
                if number < warmup:
                    continue  # the warm-up writes the bytecode caches
                result.walls.append(wall)
                result.cpus.append(cpu)
                result.codes.add(code)
                for line in err.splitlines():
                    if line.startswith(_ENTRY):
                        result.loaded = line[len(_ENTRY) :]
                expected = STOP_CODE if case.stop_at else 0
                if code != expected and not result.error:
                    lines = err.strip().splitlines()
                    result.error = f"exit {code}: {lines[-1] if lines else '(no stderr)'}"
    return results


def summarise(cases: list[Case], variants: list[str], results: dict) -> list[dict]:
    floor = results[("now", "python -c pass")]
    floor_wall, floor_cpu = statistics.median(floor.walls), statistics.median(floor.cpus)
    rows = []
    for case in cases:
        for variant in variants:
            if case.kind == "floor" and variant != "now":
                continue
            result = results[(variant, case.label)]
            wall, cpu = statistics.median(result.walls), statistics.median(result.cpus)
            rows.append(
                {
                    "case": case.label,
                    "variant": variant,
                    "kind": case.kind,
                    "median_s": round(wall, 4),
                    "min_s": round(min(result.walls), 4),
                    "cpu_s": round(cpu, 4),
                    "ratio_wall": round(wall / floor_wall, 2),
                    "ratio_cpu": round(cpu / floor_cpu, 2),
                    "target_s": case.target_s,
                    "met": None if case.target_s is None else wall <= case.target_s,
                    "loaded": result.loaded,
                    "error": result.error,
                }
            )
    return rows


def table(rows: list[dict], show_variant: bool) -> tuple[list[str], list[list[str]]]:
    head = ["case", *(["code"] if show_variant else []), "median", "min", "CPU", "x pass (wall)", "x pass (CPU)"]
    head += ["target", "heavy packages loaded at the gate's door"]
    body = []
    for row in rows:
        target = "" if row["target_s"] is None else f"<= {row['target_s']:g} s " + ("met" if row["met"] else "MISSED")
        note = row["error"] or (row["loaded"] if row["kind"] == "gate" else "")
        cells = [row["case"], *([row["variant"]] if show_variant else [])]
        cells += [f"{row['median_s']:.3f} s", f"{row['min_s']:.3f} s", f"{row['cpu_s']:.3f} s"]
        cells += [f"{row['ratio_wall']:.1f}", f"{row['ratio_cpu']:.1f}", target, note or "-"]
        body.append(cells)
    return head, body


def markdown(head: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(cells) + " |" for cells in body])


def ratios(rows: list[dict]) -> list[dict]:
    """The summary lines: the fast commands, and the slowest gate's time to work."""
    now = [r for r in rows if r["variant"] == "now"]
    floor = next(r for r in now if r["kind"] == "floor")
    picked = [r for r in now if r["kind"] == "fast"]
    gates = [r for r in now if r["kind"] == "gate" and not r["error"]]
    if gates:
        picked.append(max(gates, key=lambda r: r["median_s"]))
    return [
        {
            "what": r["case"] if r["kind"] == "fast" else f"slowest gate's time to work ({r['case']})",
            "ours": r["median_s"],
            "unit": "s",
            "compared_with": "python -c pass",
            "baseline": floor["median_s"],
            "ratio": r["ratio_wall"],
            "target": f"<= {r['target_s']:g} s",
            "met": r["met"],
        }
        for r in picked
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="measured rounds (default 15)")
    parser.add_argument("--warmup", type=int, default=2, help="rounds run first and not counted (default 2)")
    parser.add_argument("--quick", action="store_true", help="a smoke check: 2 rounds, the fast commands only")
    parser.add_argument("--against", metavar="REF", help="also run the cases for git revision REF (before/after)")
    parser.add_argument("--only", help="comma-separated case names to keep (e.g. platform,audit)")
    args = parser.parse_args(argv)
    runs, warmup = (2, 1) if args.quick else (args.runs, args.warmup)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="tw-startup-bench-") as tmp:
        base = Path(tmp)
        (base / "files").mkdir()
        cases = all_cases(base / "files")
        if args.quick:
            cases = [c for c in cases if c.kind != "gate"]
        if args.only:
            keep = {name.strip() for name in args.only.split(",")}
            cases = [c for c in cases if c.kind == "floor" or c.label in keep or c.label.split()[-1] in keep]
        variants = {"now": child_env(base / "metrics-now", None)}
        if args.against:
            variants[args.against] = child_env(base / "metrics-ref", extract(args.against, base / "ref"))
        results = measure(cases, variants, runs, warmup)
        rows = summarise(cases, list(variants), results)
    load = {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)}
    print(
        f"start-up, {runs} rounds (+{warmup} warm-up), cases alternated; {os.cpu_count()} CPUs, "
        f"1-min load {load['before']} before, {load['after']} after"
    )
    head, body = table(rows, show_variant=len(variants) > 1)
    print(markdown(head, body))
    notes = [
        f"{runs} rounds after {warmup} warm-up, every case once per round; medians; CPU = user + system of the child.",
        "A gate's time to work ends when its gate function is entered (settings loaded, its modules imported).",
    ]
    if max(load.values()) > (os.cpu_count() or 1):
        notes.append(
            f"The load ({max(load.values()):g}) exceeded the {os.cpu_count()} CPUs: wall times are inflated and not "
            "comparable with the targets; the ratios to python -c pass and the CPU column hold up better."
        )
    result = {"bench": "startup", "ratios": ratios(rows), "table": {"headers": head, "rows": body}, "notes": notes}
    print("BENCH-JSON " + json.dumps({**result, "runs": runs, "load_1m": load, "rows": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
