"""Measuring a parser for a performance capture.

* ``builtin:NAME`` - a parser configuration of ``tw_gates.parser.targets``
  (``safe``, ``commonmark``), run in a worker subprocess
  (``python -m tw_gates.parser.perf_worker``) that times each parse call
  in-process (``time.perf_counter_ns``); the worker's peak RSS is the parser's.
* any other string - a command line (shlex) that reads one document on stdin.
  Each parse is one process run through ``core.proc`` (timeout, process group).
  Its latency is the target's own ``tw-gates-parse-ms: <ms>`` stderr line when
  it prints one (the builtin targets do), else the process's wall time.
  Its peak RSS is the largest ru_maxrss of its runs; Linux counts in it the
  memory the process had before exec (a copy of tw-gates at fork time), so a
  command target's RSS has that floor: growth below it goes unseen."""

from __future__ import annotations

import json
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from tw_gates.core import proc
from tw_gates.core.errors import UsageError
from tw_gates.parser.perf_corpus import PerfCorpus
from tw_gates.parser.perf_errors import BaselineError
from tw_gates.parser.target_spec import BUILTIN_PREFIX, NAMES, PARSE_MS_PREFIX

PROGRESS_EVERY_S = 5.0

Progress = Callable[[str], None]


@dataclass
class Measurement:
    latencies_ms: list[float]
    peak_rss_kib: int
    source: str  # in-process | reported | wall


def _worker_argv() -> list[str]:
    return [sys.executable, "-m", "tw_gates.parser.perf_worker"]


def measure_builtin(
    name: str, corpus_spec: str | None, *, warmup: int, runs: int, timeout: float, documents: int, progress: Progress
) -> Measurement:
    if name not in NAMES:
        raise UsageError(
            f"unknown builtin target {BUILTIN_PREFIX}{name} (known: {', '.join(BUILTIN_PREFIX + n for n in NAMES)})"
        )
    progress(
        f"measuring {BUILTIN_PREFIX}{name} in a worker process: {documents} document(s), "
        f"{warmup} warm-up + {runs} measured parse(s) each"
    )
    request = json.dumps({"target": name, "corpus": corpus_spec, "warmup": warmup, "runs": runs})
    result = proc.run(_worker_argv(), input=request, timeout=timeout)
    if not result.ok:
        raise BaselineError(f"capture failed: the {BUILTIN_PREFIX}{name} worker {result.describe()}")
    try:
        answer = json.loads(result.text())
        latencies = [float(v) for v in answer["latencies_ms"]]
        peak = int(answer["peak_rss_kib"])
    except (ValueError, KeyError, TypeError) as exc:
        raise BaselineError(f"capture failed: the worker's answer is not valid: {exc}") from None
    return Measurement(latencies, peak, "in-process")


def measure_command(
    argv: list[str], corpus: PerfCorpus, *, warmup: int, runs: int, timeout: float, progress: Progress
) -> Measurement:
    reported: list[float | None] = []
    wall: list[float] = []
    peak = 0
    total = len(corpus.documents) * (warmup + runs)
    done, last = 0, time.monotonic()
    progress(
        f"measuring `{shlex.join(argv)}`: {len(corpus.documents)} document(s), "
        f"{warmup} warm-up + {runs} measured run(s) each ({total} processes)"
    )
    for path, data in corpus.documents:
        for attempt in range(warmup + runs):
            result = proc.run(argv, input=data, timeout=timeout, max_output_bytes=16 * 1024 * 1024)
            done += 1
            if not result.ok:
                raise BaselineError(f"capture failed on {path}: {result.describe()}")
            peak = max(peak, result.max_rss_kib)
            if attempt >= warmup:
                reported.append(_reported_ms(result.stderr, PARSE_MS_PREFIX))
                wall.append(result.duration_s * 1000)
            if time.monotonic() - last >= PROGRESS_EVERY_S:
                progress(f"  {done}/{total} runs")
                last = time.monotonic()
    if all(value is not None for value in reported):
        return Measurement([float(v) for v in reported if v is not None], peak, "reported")
    # Some run did not report its parse time: wall time for all, never a mix.
    return Measurement(wall, peak, "wall")


def _reported_ms(stderr: bytes, prefix: str) -> float | None:
    for line in reversed(stderr.decode("utf-8", "replace").splitlines()):
        if line.startswith(prefix):
            try:
                return float(line[len(prefix) :].strip())
            except ValueError:
                return None
    return None
