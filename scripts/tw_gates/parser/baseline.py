"""Parse-performance baseline: capture, sign, verify, compare.

``capture`` measures a Markdown parser over a corpus: every document is
parsed ``warmup`` times unmeasured, then ``runs`` times measured; the result
is the p50/p95/p99 (and mean, max) of the per-document parse latency and the
peak RSS of the parser process. The audit (G3) compares a current capture
with the signed baseline.

The concerns live beside this module: ``perf_corpus`` (the documents:
a folder, or the built-in synthetic corpus ``builtin:v1``), ``perf_measure``
(builtin targets in a worker process, ``perf_worker``; command targets one
process per parse), ``perf_stats`` (percentiles) and ``perf_errors``."""

from __future__ import annotations

import os
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, cast

from pydantic import BaseModel, Field, ValidationError

from tw_gates import __version__
from tw_gates.core.errors import UsageError
from tw_gates.core.fsio import atomic_write_json, load_document
from tw_gates.core.keyrings import BaselineKeys
from tw_gates.core.redact import REDACTOR
from tw_gates.core.settings import EnvSettings, describe_validation_error, env
from tw_gates.core.signing import SIGNATURE_FIELD, SignatureError
from tw_gates.parser.perf_corpus import BUILTIN_CORPUS, PerfCorpus, builtin_corpus, load_corpus
from tw_gates.parser.perf_errors import BaselineError, Comparability
from tw_gates.parser.perf_measure import Progress, measure_builtin, measure_command
from tw_gates.parser.perf_stats import latency_stats, percentile
from tw_gates.parser.target_spec import BUILTIN_PREFIX, command_argv
from tw_gates.schemas.baseline import HostInfo, PerfCapture

__all__ = [
    "BUILTIN_CORPUS",
    "BaselineError",
    "CaptureSettings",
    "Comparability",
    "MetricCheck",
    "PerfCorpus",
    "Thresholds",
    "builtin_corpus",
    "capture",
    "capture_document",
    "compare",
    "load_corpus",
    "parse_capture",
    "percentile",
    "read_capture",
    "sign_capture",
    "verify_capture",
]

MAX_CAPTURE_BYTES = 1024 * 1024


# --------------------------------------------------------------------------- capture


class CaptureSettings(EnvSettings):
    target: str = Field(f"{BUILTIN_PREFIX}safe", validation_alias=env("TW_PERF_TARGET", "target"))
    corpus: str | None = Field(None, validation_alias=env("TW_PERF_CORPUS", "corpus"))
    runs: int = Field(5, ge=1, le=1000, validation_alias=env("TW_PERF_RUNS", "runs"))
    warmup: int = Field(2, ge=0, le=100, validation_alias=env("TW_PERF_WARMUP", "warmup"))
    # builtin: the whole worker; command: each process run.
    timeout_s: float = Field(600.0, gt=0, validation_alias=env("TW_PERF_TIMEOUT", "timeout_s"))


def capture(settings: CaptureSettings, *, progress: Progress = lambda _line: None) -> PerfCapture:
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

    try:
        document = load_document(path, what, max_bytes=MAX_CAPTURE_BYTES, fmt="json")
    except UsageError as exc:
        raise BaselineError(str(exc)) from None  # a baseline that cannot be read is P0 (exit 6), not a usage slip
    if not isinstance(document, dict):
        raise BaselineError(f"{what} {path} is not a JSON object")
    return document


def parse_capture(document: dict, path: str | Path, *, what: str = "baseline") -> PerfCapture:

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
