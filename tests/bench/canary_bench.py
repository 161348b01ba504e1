"""Canary evaluation benchmark: a real Prometheus on loopback holding 48 hours
of 1-minute samples for every canary metric (backfilled with ``promtool tsdb
create-blocks-from openmetrics``), and one ``tw-gates canary`` evaluation of the
whole window against it, timed, with the HTTP queries it sent counted twice:
by the client and by Prometheus itself (``prometheus_http_requests_total``).

    python tests/bench/canary_bench.py [--runs 5] [--dir DIR] [--keep]

Two evaluations are measured: the default step (1 h: 48 checks) and a 1-minute
step (2,880 checks per metric, Prometheus' finest for this data). Target
(issue 5): one evaluation in under 1 s. Exit 1 if an evaluation is slower, or
does not decide PROMOTE on the clean data."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.canary_promdata import (  # noqa: E402 - after the path setup
    SCENARIOS,
    aligned_window_end,
    backfill,
    openmetrics,
    scenario_queries,
    start_prometheus,
    stop_prometheus,
    write_baseline,
)

TARGET_S = 1.0


def _served_queries(url: str) -> float:
    """query_range requests Prometheus has answered so far (its own counter)."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        for line in response.read().decode().splitlines():
            if line.startswith("prometheus_http_requests_total{") and 'handler="/api/v1/query_range"' in line:
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def thresholds_for(folder: Path, interval: str) -> Path | None:
    """A 1-minute check holds 50 parses: with the bundled 1000-sample minimum
    every check would be inconclusive (HOLD). Scale the minimum to the step so
    the whole decision path runs (all gates judged, PROMOTE)."""
    if interval == "1h":
        return None
    import yaml

    from tw_gates.canary.settings import DEFAULT_THRESHOLDS

    document = yaml.safe_load(DEFAULT_THRESHOLDS.read_text())
    document["min_samples"] = 50
    path = folder / f"thresholds-{interval}.yml"
    path.write_text(yaml.safe_dump(document))
    return path


def evaluate_once(url: str, folder: Path, window_end: int, interval: str) -> tuple[float, int, float, str]:
    from tw_gates.canary.canary import run_canary
    from tw_gates.canary.settings import CanarySettings
    from tw_gates.core.settings import load_settings

    settings = load_settings(
        CanarySettings,
        {
            "baseline": folder / "baseline.json",
            "prometheus_url": url,
            "queries": folder / "queries.yml",
            "thresholds": thresholds_for(folder, interval),
            "interval": interval,
            "at": datetime.fromtimestamp(window_end, timezone.utc),
            "dry_run": True,
        },
    )
    before = _served_queries(url)
    began = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # the run's progress line
        run = run_canary(settings)
    elapsed = time.perf_counter() - began
    served = _served_queries(url) - before
    return elapsed, run.report.queries_sent or 0, served, run.report.decision


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="evaluations per step (default 5)")
    parser.add_argument("--dir", type=Path, help="work folder (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if not prometheus or not promtool:
        print("canary_bench: prometheus and promtool are needed (Debian package prometheus)", file=sys.stderr)
        return 1
    folder = args.dir or Path(tempfile.mkdtemp(prefix="canary-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    window_end = aligned_window_end()
    write_baseline(folder / "baseline.json")
    scenario_queries(folder / "queries.yml", "clean")

    began = time.perf_counter()
    text = openmetrics({"clean": SCENARIOS["clean"]}, window_end=window_end)
    generated = time.perf_counter() - began
    samples = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
    began = time.perf_counter()
    backfill(promtool, text, folder / "tsdb")
    backfilled = time.perf_counter() - began
    server = start_prometheus(prometheus, folder / "tsdb")
    failures = []
    try:
        print(
            f"canary bench on {platform.node()} ({platform.processor() or platform.machine()}, "
            f"{os.cpu_count()} cores), Python {platform.python_version()}"
        )
        print(
            f"data: 49 h of 1-minute samples, 15 series, {samples} samples "
            f"(generated {generated:.2f}s, promtool backfill {backfilled:.2f}s)"
        )
        results = {}
        for interval in ("1h", "1m"):
            times, sent, served = [], set(), set()
            for _ in range(args.runs):
                elapsed, queries, seen, decision = evaluate_once(server.url, folder, window_end, interval)
                times.append(elapsed)
                sent.add(queries)
                served.add(seen)
                if decision != "PROMOTE":
                    failures.append(f"step {interval}: decided {decision}, expected PROMOTE")
            checks = 48 if interval == "1h" else 2880
            results[interval] = {
                "checks_per_metric": checks,
                "first_s": round(times[0], 4),
                "median_s": round(statistics.median(times), 4),
                "max_s": round(max(times), 4),
                "queries_sent": sorted(sent),
                "queries_served": sorted(served),
            }
            print(
                f"step {interval:>2}: {checks:>4} checks/metric  first {times[0] * 1000:7.1f} ms  "
                f"median {statistics.median(times) * 1000:7.1f} ms  max {max(times) * 1000:7.1f} ms  "
                f"queries sent {sorted(sent)}, served by Prometheus {sorted(int(s) for s in served)}"
            )
            if max(times) >= TARGET_S:
                failures.append(f"step {interval}: {max(times):.3f}s >= {TARGET_S}s")
        # The same evaluation as a person runs it: a fresh `tw-gates` process (interpreter start and imports included).
        began = time.perf_counter()
        cli = subprocess.run(
            [
                str(Path(sys.executable).parent / "tw-gates"),
                "canary",
                "--baseline",
                str(folder / "baseline.json"),
                "--prometheus",
                server.url,
                "--queries",
                str(folder / "queries.yml"),
                "--at",
                datetime.fromtimestamp(window_end, timezone.utc).isoformat(),
                "--dry-run",
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "TW_METRICS_DIR": str(folder / "metrics")},
        )
        results["cli_process_s"] = round(time.perf_counter() - began, 4)
        print(
            f"tw-gates canary as a new process (step 1h): {results['cli_process_s'] * 1000:.0f} ms, "
            f"exit {cli.returncode}"
        )
        print(json.dumps({"target_s": TARGET_S, "results": results}))
    finally:
        stop_prometheus(server.process)
        if not args.keep and args.dir is None:
            shutil.rmtree(folder, ignore_errors=True)
    for failure in failures:
        print(f"FAIL {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
