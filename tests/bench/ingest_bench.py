"""Benchmark of the S1 ingest gate (reported, not a timed test).

Generates a corpus of signed consumer artifacts in a temp folder (default
10,000 artifacts of 100 hits each), then measures:

* one ``tw-gates ingest`` call over the whole corpus with POLICY_REQUIRE_HMAC
  (the real CLI, as a workflow runs it): artifacts/s, and the peak memory of
  the whole process tree (the CLI and its workers), sampled from /proc as
  the sum of RSS (shared pages counted once per process: an upper bound) and
  of PSS (shared pages split between processes: the honest total);
* one ``tw-gates ingest`` process per artifact, timed on a sample and
  extrapolated to the corpus, for the ratio.

Run:  python tests/bench/ingest_bench.py [--artifacts 10000] [--hits 100] [--sample 200]
Targets (issue S1): >= 3,000 artifacts/s on 2 cores, peak <= 300 MiB."""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from tw_gates.core.signing import KeyRing

KEYS = {"bench-2026": "bench-secret-0123456789abcdef-0123"}
PATTERNS = ("jinja2-from-string", "dom-inner-html", "template-safe-filter", "vue-v-html", "django-mark-safe")


def make_corpus(folder: Path, count: int, hits: int) -> int:
    """``count`` signed artifacts of ``hits`` hits; returns the total bytes."""
    ring = KeyRing(KEYS, signing_key=KEYS["bench-2026"], signing_kid="bench-2026")
    now = datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    total = 0
    for index in range(count):
        document = {
            "schema_version": "1.0",
            "repo": f"bench-org/consumer-{index:05d}",
            "commit": f"{index:040x}",
            "branch": "main",
            "generated_at": now,
            "tool_version": "0.1.0",
            "hits": [
                {"path": f"src/module_{h % 17}/view_{h}.py", "line": 10 + h, "pattern": PATTERNS[h % len(PATTERNS)]}
                for h in range(hits)
            ],
        }
        data = json.dumps(ring.sign(document), indent=2).encode("utf-8")
        (folder / f"consumer-{index:05d}.json").write_bytes(data)
        total += len(data)
    return total


def _tree(root: int) -> list[int]:
    """``root`` and its descendants (/proc/<pid>/task/<tid>/children)."""
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as handle:
                    stack.extend(int(child) for child in handle.read().split())
        except (OSError, ValueError):
            continue
    return found


def _memory_kib(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of one process in KiB; (0, 0) when it is gone."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            values = {
                line.split(":")[0]: int(line.split()[1]) for line in handle if line.split(":")[0] in ("Rss", "Pss")
            }
        return values.get("Rss", 0), values.get("Pss", 0)
    except (OSError, ValueError):
        return 0, 0


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_measured(argv: list[str], env: dict[str, str], *, sample_memory: bool = False) -> dict:
    """Run argv; with ``sample_memory``, sample the process tree's memory
    every 20 ms (that costs CPU, so timed runs go without it). The CPU time
    of the tree (the CLI and its reaped workers) does not depend on what else
    the machine runs; the wall time does."""
    cpu_before = _children_cpu()
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak = {"rss_kib": 0, "pss_kib": 0, "processes": 0}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            pids = _tree(proc.pid)
            sizes = [_memory_kib(pid) for pid in pids]
            peak["rss_kib"] = max(peak["rss_kib"], sum(s[0] for s in sizes))
            peak["pss_kib"] = max(peak["pss_kib"], sum(s[1] for s in sizes))
            peak["processes"] = max(peak["processes"], len(pids))
            done.wait(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    if sample_memory:
        sampler.start()
    out, err = proc.communicate()
    done.set()
    if sample_memory:
        sampler.join()
    return {
        "seconds": time.perf_counter() - started,
        "cpu_seconds": _children_cpu() - cpu_before,
        "exit_code": proc.returncode,
        "stdout": out.decode(errors="replace"),
        "stderr": err.decode(errors="replace"),
        **peak,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", type=int, default=10_000)
    parser.add_argument("--hits", type=int, default=100)
    parser.add_argument("--sample", type=int, default=200, help="artifacts run one process each, for the ratio")
    parser.add_argument("--workers", type=int, help="passed to tw-gates ingest (default: every CPU)")
    parser.add_argument("--repeat", type=int, default=3, help="batch runs; the best and the median are reported")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder")
    args = parser.parse_args(argv)

    tw_gates = shutil.which("tw-gates", path=str(Path(sys.executable).parent)) or shutil.which("tw-gates")
    if not tw_gates:
        print("tw-gates is not installed in this environment", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="tw-ingest-bench-"))
    try:
        corpus = work / "corpus"
        corpus.mkdir()
        t0 = time.perf_counter()
        size = make_corpus(corpus, args.artifacts, args.hits)
        print(
            f"corpus: {args.artifacts} artifacts x {args.hits} hits, {size / 2**20:.1f} MiB, "
            f"generated in {time.perf_counter() - t0:.1f}s",
            flush=True,
        )
        env = {
            **os.environ,
            "TW_HMAC_KEYS": json.dumps(KEYS),
            "POLICY_REQUIRE_HMAC": "true",
            "TW_METRICS_DIR": str(work / "metrics"),
        }
        env.pop("TW_HMAC_KEY", None)
        command = [
            tw_gates,
            "ingest",
            "--artifact",
            str(corpus),
            "--out",
            str(work / "accepted.jsonl"),
            "--quarantine",
            str(work / "quarantine"),
        ]
        if args.workers:
            command += ["--workers", str(args.workers)]
        os.sync()  # the corpus's dirty pages are written back now, not during the measurement
        load_before = os.getloadavg()[0]
        runs = []
        for _ in range(max(1, args.repeat)):
            batch = run_measured(command, env)
            if batch["exit_code"] != 0:
                print(batch["stdout"][-2000:], batch["stderr"][-2000:], file=sys.stderr)
                return 1
            with open(work / "accepted.jsonl", "rb") as accepted:
                lines = sum(1 for _ in accepted)
            assert lines == args.artifacts, f"{lines} accepted lines for {args.artifacts} artifacts"
            runs.append(batch)
        runs.sort(key=lambda r: r["seconds"])
        batch, median = runs[0], runs[len(runs) // 2]
        memory = run_measured(command, env, sample_memory=True)
        rate = args.artifacts / batch["seconds"]

        sample = sorted(corpus.iterdir())[: args.sample]
        t0 = time.perf_counter()
        for path in sample:
            single = subprocess.run(
                [tw_gates, "ingest", "--artifact", str(path), "--quarantine", str(work / "quarantine")],
                env=env,
                capture_output=True,
            )
            if single.returncode != 0:
                print(single.stderr.decode(errors="replace"), file=sys.stderr)
                return 1
        per_process = (time.perf_counter() - t0) / len(sample)
        extrapolated = per_process * args.artifacts

        cpus = len(os.sched_getaffinity(0))
        report = {
            "machine": {"cpus": cpus, "python": sys.version.split()[0], "load_average_before": round(load_before, 2)},
            "artifacts": args.artifacts,
            "hits_per_artifact": args.hits,
            "corpus_mib": round(size / 2**20, 1),
            "batch_runs": len(runs),
            "batch_seconds_best": round(batch["seconds"], 2),
            "artifacts_per_second_best": round(rate),
            "batch_seconds_median": round(median["seconds"], 2),
            "artifacts_per_second_median": round(args.artifacts / median["seconds"]),
            # What the same work gives when it has the machine's CPUs to itself.
            "batch_cpu_seconds": round(batch["cpu_seconds"], 2),
            "artifacts_per_second_cpu_bound": round(args.artifacts / (batch["cpu_seconds"] / cpus)),
            "peak_rss_tree_mib": round(memory["rss_kib"] / 1024, 1),
            "peak_pss_tree_mib": round(memory["pss_kib"] / 1024, 1),
            "processes": memory["processes"],
            "load_average_after": round(os.getloadavg()[0], 2),
            "one_process_per_artifact_seconds_each": round(per_process, 3),
            "one_process_per_artifact_extrapolated_seconds": round(extrapolated, 1),
            "speedup_vs_one_process_per_artifact": round(extrapolated / median["seconds"], 1),
        }
        print(json.dumps(report, indent=2))
        return 0
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
