"""Canary metrics for a real Prometheus: OpenMetrics text for
``promtool tsdb create-blocks-from openmetrics``, and a server on loopback
serving the blocks. Used by tests/unit/test_canary_prometheus.py and
tests/bench/canary_bench.py.

Each scenario is a set of series with the label ``scenario="<name>"`` (and
``track="canary"``), with the metric names of the bundled canary_queries.yml:
``tw_parse_total``, ``tw_parse_errors_total``, ``tw_baseline_mismatches_total``
and the histogram ``tw_parse_duration_seconds``. A scenario is a function of
the minute: how many parses, and which latency distribution.

The latency distributions are cumulative bucket fractions; histogram_quantile
over them gives p50 = 12.5 ms and p95 = 39.09 ms for NORMAL, so the baseline
below (p50 12.4, p95 38.5) passes with margin, and the TAIL distribution (a
heavy tail, same median) breaks p95 only."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

BUCKETS = ("0.005", "0.01", "0.02", "0.03", "0.04", "0.05", "0.075", "0.1", "0.25", "+Inf")
NORMAL = (0.05, 0.40, 0.80, 0.90, 0.955, 0.985, 0.997, 0.999, 1.0, 1.0)
TAIL = (0.05, 0.40, 0.80, 0.82, 0.84, 0.86, 0.90, 0.95, 1.0, 1.0)
ERROR_RATIO = 0.0002  # 0.02%, under the 0.1% gate

BASELINE = {
    "schema_version": "1.0",
    "latency_p50_ms": 12.4,
    "latency_p95_ms": 38.5,
    "error_rate_pct": 0.02,
    "baseline_mismatch_rate_pct": 0.0,
    "parse_count": 150000,
}

HOUR = 3600
MINUTE = 60


@dataclass(frozen=True)
class Minute:
    parses: float
    distribution: tuple[float, ...] = NORMAL
    errors: float | None = None  # default: ERROR_RATIO of the parses
    mismatches: float = 0.0


# A scenario maps a minute's offset from the window start (may be negative:
# the lead-in hour) to what happened in it; None = the service exported nothing.
Scenario = Callable[[int], Minute | None]


def clean(offset: int) -> Minute:
    return Minute(parses=50)  # 3000 parses an hour


def p95_spike_at_hour_30(offset: int) -> Minute:
    """A heavy latency tail for 20 minutes (hour 30, minutes 10-29)."""
    if 30 * HOUR + 10 * MINUTE <= offset < 30 * HOUR + 30 * MINUTE:
        return Minute(parses=50, distribution=TAIL)
    return Minute(parses=50)


def sparse(offset: int) -> Minute:
    """Every other hour has too few parses for a conclusive check (600 < 1000)."""
    hour = offset // HOUR
    return Minute(parses=10 if hour % 2 else 50)


SCENARIOS: dict[str, Scenario] = {"clean": clean, "spike": p95_spike_at_hour_30, "sparse": sparse}


def openmetrics(
    scenarios: dict[str, Scenario],
    *,
    window_end: int,
    window_s: int = 48 * HOUR,
    step_s: int = MINUTE,
    lead_in_s: int = HOUR,
) -> str:
    """Counters and a histogram sampled every ``step_s`` from
    ``window_end - window_s - lead_in_s`` to ``window_end`` (the lead-in lets
    the window's first interval see a full range of samples)."""
    start = window_end - window_s - lead_in_s
    times = range(start, window_end + 1, step_s)
    # Cumulative state per scenario: parses, errors, mismatches, buckets, sum.
    state = {
        name: {"parses": 0.0, "errors": 0.0, "mismatches": 0.0, "buckets": [0.0] * len(BUCKETS), "sum": 0.0}
        for name in scenarios
    }
    rows: dict[str, list[list[str]]] = {"counters": [], "histogram": []}
    for t in times:
        counter_lines, histogram_lines = [], []
        for name, scenario in scenarios.items():
            minute = scenario(t - (window_end - window_s) - step_s) if t > start else Minute(parses=0)
            s = state[name]
            if minute is None:
                continue
            s["parses"] += minute.parses
            s["errors"] += minute.parses * ERROR_RATIO if minute.errors is None else minute.errors
            s["mismatches"] += minute.mismatches
            previous = 0.0
            for i, fraction in enumerate(minute.distribution):
                s["buckets"][i] += minute.parses * fraction
            # _sum is not queried; each parse counts at its bucket's upper bound.
            for i, upper in enumerate(BUCKETS[:-1]):
                s["sum"] += minute.parses * (minute.distribution[i] - previous) * float(upper)
                previous = minute.distribution[i]
            labels = f'scenario="{name}",track="canary"'
            counter_lines += [
                f"tw_parse_total{{{labels}}} {s['parses']:.6g} {t}",
                f"tw_parse_errors_total{{{labels}}} {s['errors']:.6g} {t}",
                f"tw_baseline_mismatches_total{{{labels}}} {s['mismatches']:.6g} {t}",
            ]
            for upper, count in zip(BUCKETS, s["buckets"], strict=False):
                histogram_lines.append(f'tw_parse_duration_seconds_bucket{{{labels},le="{upper}"}} {count:.10g} {t}')
            histogram_lines += [
                f"tw_parse_duration_seconds_count{{{labels}}} {s['buckets'][-1]:.10g} {t}",
                f"tw_parse_duration_seconds_sum{{{labels}}} {s['sum']:.10g} {t}",
            ]
        rows["counters"].append(counter_lines)
        rows["histogram"].append(histogram_lines)
    # OpenMetrics wants each family's samples together, so the counters are
    # split by family: every line of a family, then the next family.
    out = []
    for family in ("tw_parse", "tw_parse_errors", "tw_baseline_mismatches"):
        out.append(f"# TYPE {family} counter")
        prefix = f"{family}_total{{"
        out += [line for lines in rows["counters"] for line in lines if line.startswith(prefix)]
    out.append("# TYPE tw_parse_duration_seconds histogram")
    out += [line for lines in rows["histogram"] for line in lines]
    out.append("# EOF")
    return "\n".join(out) + "\n"


def backfill(promtool: str, text: str, data_dir: Path) -> None:
    source = data_dir.parent / "canary.om"
    source.write_text(text)
    data_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", "-q", str(source), str(data_dir)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    source.unlink()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class PrometheusServer:
    url: str
    process: subprocess.Popen
    log: Path


def start_prometheus(prometheus: str, data_dir: Path, *, timeout_s: float = 60) -> PrometheusServer:
    """Prometheus on a free loopback port over ``data_dir``; returns once
    /-/ready says so. A port taken in between (or a crash) is retried."""
    config = data_dir.parent / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1h\n")
    last_error = ""
    for _attempt in range(3):
        port = free_port()
        log = data_dir.parent / f"prometheus-{port}.log"
        with open(log, "wb") as handle:
            process = subprocess.Popen(
                [
                    prometheus,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={data_dir}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--storage.tsdb.retention.time=3650d",
                    "--log.level=warn",
                ],
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:
                    if response.status == 200:
                        return PrometheusServer(url, process, log)
            except OSError:
                pass
            time.sleep(0.05)
        stop_prometheus(process)
        last_error = log.read_text(errors="replace")[-2000:]
    raise RuntimeError(f"prometheus did not become ready:\n{last_error}")


def stop_prometheus(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def aligned_window_end(now: float | None = None) -> int:
    """The last whole hour: the data ends there and the tests evaluate --at it."""
    return int((now if now is not None else time.time()) // HOUR * HOUR)


def write_baseline(path: Path) -> Path:
    path.write_text(json.dumps(BASELINE))
    return path


def scenario_queries(path: Path, scenario: str) -> Path:
    """The bundled queries with the selector pointed at one scenario."""
    import yaml

    from tw_gates.canary.sources import DEFAULT_QUERIES

    document = yaml.safe_load(DEFAULT_QUERIES.read_text())
    document["vars"]["selector"] = f'track="canary",scenario="{scenario}"'
    path.write_text(yaml.safe_dump(document))
    return path


def serve(
    prometheus: str, promtool: str, root: Path, *, window_end: int, scenarios: dict[str, Scenario] | None = None
) -> Iterator[PrometheusServer]:
    """Backfill the scenarios and serve them (a generator for pytest fixtures)."""
    data_dir = root / "tsdb"
    backfill(promtool, openmetrics(scenarios or SCENARIOS, window_end=window_end), data_dir)
    server = start_prometheus(prometheus, data_dir)
    try:
        yield server
    finally:
        stop_prometheus(server.process)
