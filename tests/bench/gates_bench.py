"""Benchmark of the gate chain (reported, not a timed test).

* G1 verify-nets, G4 hmac-policy, G5 telemetry-check on this repository: the
  real CLI, one process per run (what a workflow step costs, start-up included);
* G3 audit over a generated set of accepted consumer artifacts (default 5,000
  consumers x 100 hits, 50 exceptions), one CLI process, twice: 1 hit in 100
  outside the registered code paths (realistic), then 1 in 2 (a flood):
  artifacts/s, hits/s, and the peak RSS of the process. The artifacts are
  streamed and judged as they are read, so memory follows the findings kept
  (and the report written), not the size of the input;
* baseline capture of builtin:safe on the built-in corpus (24 documents,
  2 warm-up + 5 measured parses each): wall time, and the capture's numbers.

    python tests/bench/gates_bench.py [--consumers 5000] [--hits 100] [--runs 3]

The last line is ``BENCH-JSON {...}`` with the same numbers as a table (the
convention of tests/bench/run_all.py)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from tw_gates.core.signing import PERFORMANCE_BASELINE, KeyRing  # noqa: E402 - after the path setup

KEY = "bench-baseline-key-0123456789abcdef"
SHA = "0123456789abcdef0123456789abcdef01234567"
PATTERNS = ["jinja2-template", "dom-inner-html", "jinja2-from-string", "vue-v-html", "markdown-it-html-enabled"]


def cli(*argv: str, env: dict[str, str] | None = None) -> tuple[float, int, int, str]:
    """(seconds, exit code, peak RSS KiB of the child, stderr) of one tw-gates process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "tw_gates", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "scripts"), **(env or {})},
    )
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return seconds, done.returncode, max(peak, before), done.stderr


ROWS: list[list[str]] = []  # the BENCH-JSON table: what, exit, time, detail


def static_gates(runs: int) -> None:
    for command in ("verify-nets", "hmac-policy", "telemetry-check"):
        times, code = [], None
        for _ in range(runs):
            seconds, code, _, _ = cli(command, env={"TW_METRICS_DIR": tempfile.mkdtemp()})
            times.append(seconds)
        print(
            f"{command:<16} exit {code}  median {statistics.median(times) * 1000:7.0f} ms  "
            f"(min {min(times) * 1000:.0f} ms, {runs} runs, one process each)"
        )
        detail = f"whole run, one process; median of {runs} (min {min(times):.3f} s)"
        ROWS.append([command, str(code), f"{statistics.median(times):.3f} s", detail])


def audit(consumers: int, hits: int, folder: Path, outside_every: int) -> None:
    """One hit in `outside_every` lies outside the registered code paths."""
    ring = KeyRing(signing_key="consumer-key-0123456789abcdefghij", signing_kid="c1")
    registry = ['schema_version: "1.0"', "consumers:"]
    exceptions = ['schema_version: "1.0"', "exceptions:"]
    accepted = folder / "accepted.jsonl"
    with accepted.open("w") as out:
        for n in range(consumers):
            repo = f"acme/consumer-{n:05d}"
            registry += [f"  - repo: {repo}", '    code_paths: ["app/rendering/**", "*.j2"]']
            if n % 100 == 0:
                exceptions += [
                    f"  - repo: {repo}",
                    "    path: legacy/**",
                    "    reason: bench",
                    "    approver: sec",
                    "    expires: 2999-12-31",
                ]
            found = [
                {
                    "path": (
                        f"app/rendering/v{i}.py"
                        if i % outside_every
                        else f"{'legacy' if i % (2 * outside_every) == 0 else 'src'}/m{i}.py"
                    ),
                    "line": i + 1,
                    "pattern": PATTERNS[i % len(PATTERNS)],
                }
                for i in range(hits)
            ]
            doc = {
                "schema_version": "1.0",
                "repo": repo,
                "commit": SHA,
                "branch": "main",
                "generated_at": "2026-03-01T00:00:00Z",
                "tool_version": "0.1.0",
                "hits": found,
            }
            out.write(json.dumps(ring.sign(doc), separators=(",", ":")) + "\n")
    (folder / "registry.yml").write_text("\n".join(registry) + "\n")
    (folder / "exceptions.yml").write_text("\n".join(exceptions) + "\n")
    baseline = {
        "captured_at": "2026-01-01T00:00:00Z",
        "tool_version": "0.1.0",
        "target": "builtin:safe",
        "latency_source": "in-process",
        "corpus": "builtin:v1",
        "corpus_sha256": "a" * 64,
        "corpus_documents": 24,
        "corpus_bytes": 1,
        "warmup": 2,
        "runs": 5,
        "latency": {"samples": 120, "p50_ms": 2, "p95_ms": 10, "p99_ms": 20, "mean_ms": 3, "max_ms": 30},
        "peak_rss_mib": 40,
        "host": {"platform": "linux", "python": "3.11"},
    }
    (folder / "baseline.json").write_text(
        json.dumps(KeyRing(signing_key=KEY, signing_kid="b", doc_type=PERFORMANCE_BASELINE).sign(baseline))
    )
    size = accepted.stat().st_size
    seconds, code, peak, err = cli(
        "audit",
        "--report",
        str(folder / "report.json"),
        "--registry",
        str(folder / "registry.yml"),
        "--exceptions",
        str(folder / "exceptions.yml"),
        "--baseline",
        str(folder / "baseline.json"),
        "--artifacts",
        str(accepted),
        env={"TW_BASELINE_KEYS": json.dumps({"b": KEY}), "TW_METRICS_DIR": str(folder)},
    )
    report = json.loads((folder / "report.json").read_text())
    total = consumers * hits
    print(
        f"audit 1/{outside_every:<3} out  exit {code}  {seconds:.2f} s for {consumers} artifacts / {total} hits "
        f"({size / 2**20:.0f} MiB JSONL): {consumers / seconds:,.0f} artifacts/s, {total / seconds:,.0f} hits/s; "
        f"peak RSS {peak / 1024:.0f} MiB; {len(report['unregistered_hits'])} unregistered hits in the report"
    )
    ROWS.append(
        [
            f"audit, 1 hit in {outside_every} outside",
            str(code),
            f"{seconds:.2f} s",
            f"{consumers / seconds:,.0f} artifacts/s, {total / seconds:,.0f} hits/s, peak RSS {peak / 1024:.0f} MiB",
        ]
    )
    if code != 2:
        print(err.strip().splitlines()[-1] if err.strip() else "(no stderr)")


def capture(folder: Path) -> None:
    out = folder / "capture.json"
    seconds, code, _, err = cli("baseline", "capture", "--target", "builtin:safe", "--out", str(out))
    if code:
        print(f"baseline capture failed: {err.strip()}")
        ROWS.append(["baseline capture builtin:safe", str(code), f"{seconds:.2f} s", "failed"])
        return
    doc = json.loads(out.read_text())
    lat = doc["latency"]
    print(
        f"baseline capture exit {code}  {seconds:.2f} s: builtin:safe on builtin:v1, {lat['samples']} samples, "
        f"p50 {lat['p50_ms']:.2f} ms, p95 {lat['p95_ms']:.2f} ms, p99 {lat['p99_ms']:.2f} ms, "
        f"peak RSS {doc['peak_rss_mib']} MiB (worker)"
    )
    detail = f"{lat['samples']} samples, p50 {lat['p50_ms']:.2f} ms, p95 {lat['p95_ms']:.2f} ms"
    ROWS.append(["baseline capture builtin:safe", str(code), f"{seconds:.2f} s", detail])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--consumers", type=int, default=5000)
    parser.add_argument("--hits", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {platform.platform(terse=True)}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    static_gates(args.runs)
    for outside_every in (100, 2):  # realistic, then a flood of findings
        with tempfile.TemporaryDirectory(prefix="tw-gates-bench-") as tmp:
            audit(args.consumers, args.hits, Path(tmp), outside_every)
    with tempfile.TemporaryDirectory(prefix="tw-gates-bench-") as tmp:
        capture(Path(tmp))
    notes = [f"{args.consumers} consumers x {args.hits} hits for the audit; the real CLI, one process per run."]
    table = {"headers": ["what", "exit", "time", "detail"], "rows": ROWS}
    print("BENCH-JSON " + json.dumps({"bench": "gates", "table": table, "notes": notes}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
