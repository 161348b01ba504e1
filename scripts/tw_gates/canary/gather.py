"""Gathering the window's checks: from Prometheus (the whole window, every
run) or from a metrics file (this run's one check; earlier ones come from the
state)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from tw_gates.canary.decision import fmt_interval, fmt_span
from tw_gates.canary.settings import CanarySettings, Timing
from tw_gates.canary.sources import (
    MAX_INPUT_BYTES,
    Observation,
    PrometheusSource,
    bucket_of,
    load_queries,
    observation_from_metrics,
)
from tw_gates.canary.state import MAX_STATE_CHECKS
from tw_gates.core.errors import UsageError
from tw_gates.core.fsio import load_model
from tw_gates.core.progress import Progress, silent
from tw_gates.schemas.canary import CanaryMetrics


@dataclass
class Gathered:
    """The checks one run starts from, before the state is merged in."""

    window_end: int
    observations: dict[int, Observation] = field(default_factory=dict)
    started_at: int | None = None
    this_check: Observation | None = None  # file source: the check this run adds
    queries_sent: int | None = None
    warnings: list[str] = field(default_factory=list)


def gather_prometheus(settings: CanarySettings, timing: Timing, now: datetime, progress: Progress = silent) -> Gathered:
    """The whole window from Prometheus; ExternalServiceError when unreachable."""
    if settings.prometheus_url is None:
        raise UsageError("no Prometheus URL: give --prometheus URL")
    queries = load_queries(settings.queries).render(timing.interval_s)
    window_end = bucket_of(now.timestamp(), timing.interval_s)  # the last complete interval ends here
    source = PrometheusSource(
        settings.prometheus_url,
        token=settings.prometheus_token.get_secret_value() if settings.prometheus_token else None,
        timeout_s=settings.prometheus_timeout_s,
        retries=settings.prometheus_retries,
    )
    progress(
        f"canary {settings.name}: {len(queries)} range queries to {source.base_url} over "
        f"{fmt_span(timing.window_s)} (step {fmt_span(timing.interval_s)})"
    )
    try:
        observations = source.fetch(
            queries, window_start=window_end - timing.window_s, window_end=window_end, interval_s=timing.interval_s
        )
    finally:
        source.close()
    started_at: int | None = min(observations) if observations else None
    if settings.start is not None:
        started_at = bucket_of(settings.start.timestamp(), timing.interval_s)
    return Gathered(
        window_end, observations, started_at, queries_sent=source.queries_sent, warnings=list(source.warnings)
    )


def gather_metrics_file(settings: CanarySettings, timing: Timing, now: datetime) -> Gathered:
    """This run's check from the metrics file, in the bucket it was observed in."""
    if settings.metrics is None:
        raise UsageError("no metrics file: give --metrics FILE")
    if timing.intervals > MAX_STATE_CHECKS:
        raise UsageError(
            f"the metrics file source keeps one check per interval, at most {MAX_STATE_CHECKS} "
            f"in a window; {timing.intervals} asked: use a longer --interval"
        )
    metrics = load_model(settings.metrics, CanaryMetrics, "metrics file", max_bytes=MAX_INPUT_BYTES)
    observed = metrics.observed_at or now
    if (observed - now).total_seconds() > 300:
        raise UsageError(f"metrics file {settings.metrics}: observed_at {observed.isoformat()} is in the future")
    bucket = bucket_of(observed.timestamp(), timing.interval_s)
    window_end = bucket_of(now.timestamp(), timing.interval_s) + timing.interval_s  # the current interval counts
    if bucket < window_end - timing.window_s:
        raise UsageError(
            f"metrics file {settings.metrics}: observed_at {observed.isoformat()} is older than "
            f"the {fmt_span(timing.window_s)} window"
        )
    gathered = Gathered(window_end, this_check=observation_from_metrics(metrics, bucket))
    if bucket < window_end - timing.interval_s:
        gathered.warnings.append(
            f"metrics file is stale (observed {fmt_interval(bucket, timing.interval_s)}): "
            "recorded for that interval; the current one stays missing"
        )
    return gathered
