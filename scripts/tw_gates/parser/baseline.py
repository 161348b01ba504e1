"""Parse-performance baseline: capture, sign, verify, compare.

``capture`` measures a Markdown parser over a corpus the way the seed's
capture_baseline_metrics did: every document is parsed ``warmup`` times
unmeasured, then ``runs`` times measured; the result is the p50/p95/p99 (and
mean, max) of the per-document parse latency and the peak RSS of the parser
process. The audit (G3) compares a current capture with the signed baseline.

Targets:

* ``builtin:NAME`` - a parser configuration of ``tw_gates.parser.targets``
  (``safe``, ``commonmark``), run in a worker subprocess that times each parse
  call in-process (``time.perf_counter_ns``); the worker's peak RSS is the
  parser's.
* any other string - a command line (shlex) that reads one document on stdin.
  Each parse is one process run through ``core.proc`` (timeout, process group).
  Its latency is the target's own ``tw-gates-parse-ms: <ms>`` stderr line when
  it prints one (the builtin targets do), else the process's wall time.
  Its peak RSS is the largest ru_maxrss of its runs; Linux counts in it the
  memory the process had before exec (a copy of tw-gates at fork time), so a
  command target's RSS has that floor: growth below it goes unseen.

Corpus: a folder (every ``*.md``, ``*.markdown``, ``*.txt`` below it) or the
built-in synthetic corpus ``builtin:v1`` (deterministic Markdown of 0.5 to 64
KiB using every common construct), the default. Its digest goes into the
capture so a baseline is never compared with a capture of other documents."""

from __future__ import annotations

import json
import math
import os
import platform
import random
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, cast

from pydantic import BaseModel, Field, ValidationError

from tw_gates.core.errors import ExitCode, TwGatesError, UsageError
from tw_gates.core.fsio import atomic_write_json
from tw_gates.core.keyrings import BaselineKeys
from tw_gates.core.redact import REDACTOR
from tw_gates.core.settings import EnvSettings, env
from tw_gates.core.signing import SIGNATURE_FIELD, SignatureError
from tw_gates.parser.targets import BUILTIN_PREFIX
from tw_gates.schemas.baseline import HostInfo, LatencyStats, PerfCapture

BUILTIN_CORPUS = "builtin:v1"
CORPUS_SUFFIXES = (".md", ".markdown", ".txt")
MAX_CORPUS_BYTES = 256 * 1024 * 1024
MAX_CAPTURE_BYTES = 1024 * 1024
PROGRESS_EVERY_S = 5.0


class BaselineError(TwGatesError):
    """Baseline missing, unsigned, unreadable, or its capture failed: exit 6."""

    exit_code = ExitCode.P0_BASELINE


# --------------------------------------------------------------------------- corpus


@dataclass(frozen=True)
class Corpus:
    name: str
    documents: list[tuple[str, bytes]]

    @property
    def sha256(self) -> str:
        from tw_gates.core.signing import sha256_hex

        lines = [f"{path}\0{sha256_hex(data)}" for path, data in self.documents]
        return sha256_hex("\n".join(lines))

    @property
    def total_bytes(self) -> int:
        return sum(len(data) for _, data in self.documents)


def load_corpus(spec: str | None) -> Corpus:
    if not spec or spec == BUILTIN_CORPUS:
        return Corpus(BUILTIN_CORPUS, builtin_corpus())
    if spec.startswith(BUILTIN_PREFIX):
        raise UsageError(f"unknown builtin corpus {spec!r} (known: {BUILTIN_CORPUS})")
    root = Path(spec)
    if not root.is_dir():
        raise UsageError(f"corpus folder not found: {spec}")
    documents, total = [], 0
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in CORPUS_SUFFIXES):
        data = path.read_bytes()
        total += len(data)
        if total > MAX_CORPUS_BYTES:
            raise UsageError(f"corpus {spec} is larger than {MAX_CORPUS_BYTES // (1024 * 1024)} MiB")
        documents.append((path.relative_to(root).as_posix(), data))
    if not documents:
        raise UsageError(f"corpus {spec} holds no {', '.join(CORPUS_SUFFIXES)} file")
    return Corpus(spec, documents)


_WORDS = (
    "token",
    "warehouse",
    "parser",
    "markdown",
    "render",
    "block",
    "inline",
    "link",
    "table",
    "gate",
    "phase",
    "canary",
    "signed",
    "artifact",
    "consumer",
    "audit",
    "latency",
    "baseline",
    "nested",
    "code",
)


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(6, 16))]
    i = rng.randrange(len(words))
    words[i] = rng.choice(
        [
            f"*{words[i]}*",
            f"**{words[i]}**",
            f"`{words[i]}`",
            f"[{words[i]}](https://example.com/{words[i]})",
            f"~~{words[i]}~~",
            f"<{words[i]}@example.com>",
        ]
    )
    return " ".join(words).capitalize() + "."


def _block(rng: random.Random, n: int) -> str:
    kind = n % 7
    if kind == 0:
        return f"{'#' * rng.randint(1, 4)} {_sentence(rng)[:-1]}\n"
    if kind == 1:
        return " ".join(_sentence(rng) for _ in range(rng.randint(2, 5))) + "\n"
    if kind == 2:
        return "".join(f"{'  ' * (i % 3)}- {_sentence(rng)}\n" for i in range(rng.randint(3, 8)))
    if kind == 3:
        return "".join(f"> {_sentence(rng)}\n" for _ in range(rng.randint(1, 4)))
    if kind == 4:
        body = "".join(f"    value_{i} = parse({rng.randint(0, 999)})\n" for i in range(rng.randint(2, 6)))
        return f"```python\n{body}```\n"
    if kind == 5:
        rows = "".join(
            f"| {rng.choice(_WORDS)} | {rng.randint(0, 9999)} | {rng.choice(_WORDS)} |\n"
            for _ in range(rng.randint(2, 6))
        )
        return "| name | value | note |\n| --- | ---: | :--- |\n" + rows
    return "".join(f"{i + 1}. {_sentence(rng)}\n" for i in range(rng.randint(2, 5)))


def builtin_corpus() -> list[tuple[str, bytes]]:
    """24 deterministic documents, 512 B to 64 KiB, every common construct."""
    rng = random.Random(20251018)
    sizes = [512 * 2 ** (i % 8) for i in range(24)]  # 0.5 KiB .. 64 KiB, three of each
    documents = []
    for index, size in enumerate(sizes):
        parts, length, n = [], 0, index
        while length < size:
            block = _block(rng, n)
            parts.append(block)
            length += len(block) + 1
            n += 1
        documents.append((f"builtin-{index:02d}.md", "\n".join(parts).encode("utf-8")))
    return documents


# --------------------------------------------------------------------------- targets


@dataclass
class Measurement:
    latencies_ms: list[float]
    peak_rss_kib: int
    source: str  # in-process | reported | wall


Progress = Callable[[str], None]


def _builtin_names() -> tuple[str, ...]:
    from tw_gates.parser.targets import NAMES

    return NAMES


def _worker_argv() -> list[str]:
    return [sys.executable, "-m", "tw_gates.parser.baseline"]


def measure_builtin(
    name: str, corpus_spec: str | None, *, warmup: int, runs: int, timeout: float, documents: int, progress: Progress
) -> Measurement:
    from tw_gates.core import proc

    if name not in _builtin_names():
        raise UsageError(
            f"unknown builtin target {BUILTIN_PREFIX}{name} (known: "
            f"{', '.join(BUILTIN_PREFIX + n for n in _builtin_names())})"
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
    argv: list[str], corpus: Corpus, *, warmup: int, runs: int, timeout: float, progress: Progress
) -> Measurement:
    from tw_gates.core import proc
    from tw_gates.parser.targets import PARSE_MS_PREFIX

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


# --------------------------------------------------------------------------- statistics


def percentile(values: list[float], pct: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latency_stats(values: list[float]) -> LatencyStats:
    return LatencyStats(
        samples=len(values),
        p50_ms=round(percentile(values, 50), 4),
        p95_ms=round(percentile(values, 95), 4),
        p99_ms=round(percentile(values, 99), 4),
        mean_ms=round(sum(values) / len(values), 4),
        max_ms=round(max(values), 4),
    )


# --------------------------------------------------------------------------- capture


class CaptureSettings(EnvSettings):
    target: str = Field(f"{BUILTIN_PREFIX}safe", validation_alias=env("TW_PERF_TARGET", "target"))
    corpus: str | None = Field(None, validation_alias=env("TW_PERF_CORPUS", "corpus"))
    runs: int = Field(5, ge=1, le=1000, validation_alias=env("TW_PERF_RUNS", "runs"))
    warmup: int = Field(2, ge=0, le=100, validation_alias=env("TW_PERF_WARMUP", "warmup"))
    # builtin: the whole worker; command: each process run.
    timeout_s: float = Field(600.0, gt=0, validation_alias=env("TW_PERF_TIMEOUT", "timeout_s"))


def capture(settings: CaptureSettings, *, progress: Progress = lambda _line: None) -> PerfCapture:
    from tw_gates import __version__

    corpus = load_corpus(settings.corpus)
    target = settings.target.strip()
    if target.startswith(BUILTIN_PREFIX):
        measurement = measure_builtin(
            target[len(BUILTIN_PREFIX) :],
            settings.corpus,
            warmup=settings.warmup,
            runs=settings.runs,
            timeout=settings.timeout_s,
            documents=len(corpus.documents),
            progress=progress,
        )
    else:
        from tw_gates.parser.targets import command_argv

        measurement = measure_command(
            command_argv(target),
            corpus,
            warmup=settings.warmup,
            runs=settings.runs,
            timeout=settings.timeout_s,
            progress=progress,
        )
    expected = len(corpus.documents) * settings.runs
    if len(measurement.latencies_ms) != expected:
        raise BaselineError(f"capture failed: {len(measurement.latencies_ms)} measurements, expected {expected}")
    return PerfCapture(
        captured_at=datetime.now(timezone.utc).replace(microsecond=0),
        tool_version=__version__,
        target=target,
        latency_source=measurement.source,
        corpus=corpus.name,
        corpus_sha256=corpus.sha256,
        corpus_documents=len(corpus.documents),
        corpus_bytes=corpus.total_bytes,
        warmup=settings.warmup,
        runs=settings.runs,
        latency=latency_stats(measurement.latencies_ms),
        peak_rss_mib=round(measurement.peak_rss_kib / 1024, 2),
        host=HostInfo(platform=platform.platform(terse=True), python=platform.python_version(), cpus=os.cpu_count()),
    )


def capture_document(model: PerfCapture) -> dict:
    return model.model_dump(mode="json", exclude_none=True)


# --------------------------------------------------------------------------- sign and verify


def read_capture(path: str | Path, *, what: str = "baseline") -> dict:
    """The raw JSON of a capture file (signature included)."""
    from tw_gates.core.fsio import load_document

    try:
        document = load_document(path, what, max_bytes=MAX_CAPTURE_BYTES, fmt="json")
    except UsageError as exc:
        raise BaselineError(str(exc)) from None  # a baseline that cannot be read is P0 (exit 6), not a usage slip
    if not isinstance(document, dict):
        raise BaselineError(f"{what} {path} is not a JSON object")
    return document


def parse_capture(document: dict, path: str | Path, *, what: str = "baseline") -> PerfCapture:
    from tw_gates.core.settings import describe_validation_error

    try:
        return PerfCapture.model_validate(document)
    except ValidationError as exc:
        raise BaselineError(describe_validation_error(exc, f"{what} {path}")) from None


def sign_capture(path: str | Path, settings: BaselineKeys) -> str:
    """Sign the capture at ``path`` in place as a performance baseline
    (TW_BASELINE_KEY); returns the key id."""
    document = read_capture(path)
    parse_capture(document, path)
    ring = settings.baseline_ring()
    # Redact first, then sign: the file must stay byte-for-byte what was signed.
    signed = ring.sign(cast("dict[str, Any]", REDACTOR.redact_obj(document)))
    atomic_write_json(path, signed, redact=False)
    return ring.signing_kid


def verify_capture(path: str | Path, settings: BaselineKeys, *, what: str = "baseline") -> tuple[PerfCapture, str]:
    """The capture and the key id that verified it as a performance baseline
    (TW_BASELINE_KEYS, never a consumer's key); BaselineError (exit 6) otherwise."""
    document = read_capture(path, what=what)
    # The contract first (the signature member is the key ring's to judge), then the signature.
    model = parse_capture({k: v for k, v in document.items() if k != SIGNATURE_FIELD}, path, what=what)
    try:
        kid = settings.baseline_ring().verify(document)
    except SignatureError as exc:
        raise BaselineError(f"{what} {path} signature rejected ({exc.reason}): {exc}") from None
    return model, kid


# --------------------------------------------------------------------------- compare


class Thresholds(EnvSettings):
    """How much worse than the baseline the current capture may be."""

    p50_ratio: float = Field(1.10, ge=1.0, validation_alias=env("TW_PERF_P50_RATIO", "p50_ratio"))
    p95_ratio: float = Field(1.25, ge=1.0, validation_alias=env("TW_PERF_P95_RATIO", "p95_ratio"))
    p99_ratio: float = Field(1.50, ge=1.0, validation_alias=env("TW_PERF_P99_RATIO", "p99_ratio"))
    rss_increase_mib: float = Field(30.0, ge=0, validation_alias=env("TW_PERF_RSS_MIB", "rss_increase_mib"))
    # A latency within this many ms of the baseline never breaches: timer and
    # scheduler noise on sub-millisecond parses is larger than any ratio.
    min_delta_ms: float = Field(0.5, ge=0, validation_alias=env("TW_PERF_MIN_DELTA_MS", "min_delta_ms"))


class MetricCheck(BaseModel):
    metric: str
    baseline: float
    current: float
    limit: float
    rule: str
    ok: bool

    @property
    def text(self) -> str:
        return (
            f"{self.metric} {self.current:g} vs baseline {self.baseline:g} (limit {self.limit:g}, {self.rule}): "
            f"{'ok' if self.ok else 'BREACH'}"
        )


class Comparability(TwGatesError):
    """Baseline and current capture measured different things: exit 1."""


def compare(baseline: PerfCapture, current: PerfCapture, thresholds: Thresholds) -> list[MetricCheck]:
    if baseline.corpus_sha256 != current.corpus_sha256:
        raise Comparability(
            f"the current capture used another corpus ({current.corpus}, "
            f"{current.corpus_sha256[:12]}) than the baseline ({baseline.corpus}, "
            f"{baseline.corpus_sha256[:12]}): capture both on the same documents"
        )
    if baseline.target != current.target:
        raise Comparability(f"the current capture measured {current.target!r}, the baseline {baseline.target!r}")
    if baseline.latency_source != current.latency_source:
        raise Comparability(
            f"latency measured differently: baseline {baseline.latency_source}, current {current.latency_source}"
        )
    checks = []
    for metric, ratio in (
        ("p50_ms", thresholds.p50_ratio),
        ("p95_ms", thresholds.p95_ratio),
        ("p99_ms", thresholds.p99_ratio),
    ):
        base, now = getattr(baseline.latency, metric), getattr(current.latency, metric)
        limit = round(max(base * ratio, base + thresholds.min_delta_ms), 4)
        checks.append(
            MetricCheck(
                metric=f"latency_{metric}",
                baseline=base,
                current=now,
                limit=limit,
                rule=f"x{ratio:g}, at least +{thresholds.min_delta_ms:g} ms",
                ok=now <= limit,
            )
        )
    limit = round(baseline.peak_rss_mib + thresholds.rss_increase_mib, 2)
    checks.append(
        MetricCheck(
            metric="peak_rss_mib",
            baseline=baseline.peak_rss_mib,
            current=current.peak_rss_mib,
            limit=limit,
            rule=f"+{thresholds.rss_increase_mib:g} MiB",
            ok=current.peak_rss_mib <= limit,
        )
    )
    return checks


# --------------------------------------------------------------------------- worker


def worker_main() -> int:
    """``python -m tw_gates.parser.baseline``: the builtin-target worker.

    Reads {"target", "corpus", "warmup", "runs"} on stdin, prints
    {"latencies_ms": [...], "peak_rss_kib": N} (latencies in document order,
    runs inner) on stdout."""
    request = json.loads(sys.stdin.read())
    from tw_gates.parser.targets import build

    parser = build(request["target"])
    texts = [data.decode("utf-8", "replace") for _, data in load_corpus(request["corpus"]).documents]
    for _ in range(int(request["warmup"])):
        for text in texts:
            parser.render(text)
    latencies = []
    clock = time.perf_counter_ns
    for text in texts:
        for _ in range(int(request["runs"])):
            started = clock()
            parser.render(text)
            latencies.append((clock() - started) / 1e6)
    json.dump({"latencies_ms": latencies, "peak_rss_kib": _own_peak_rss_kib()}, sys.stdout)
    return 0


def _own_peak_rss_kib() -> int:
    """This process's peak RSS since exec.

    VmHWM, not getrusage: on Linux ru_maxrss keeps the high-water mark of the
    memory the process had before exec, i.e. a copy of the forking parent
    (tw-gates itself), which would hide the parser's own growth."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


if __name__ == "__main__":
    raise SystemExit(worker_main())
