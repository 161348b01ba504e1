"""The 48-hour canary: checks against the baseline, and a decision.

Every interval (1 h by default) of the window (48 h) is one check of the
binding gates (``data/canary_thresholds.yml``): mismatch rate 0.00%, error rate
<= 0.1%, p50 <= baseline +3%, p95 <= baseline +8%, at least 1000 samples.

* ROLLBACK: failed checks in the window reach ``failure_threshold`` (Flagger's
  ``threshold``; 1 = any binding breach). Exit 2.
* PROMOTE: the window is complete (the canary has run for the whole window)
  and clean checks cover at least ``min_coverage_pct`` of its intervals.
* HOLD: anything else (window not complete, missing or inconclusive checks).

A check with fewer samples than ``min_samples`` is inconclusive: never clean
(a gate marked ``judge_below_min_samples`` still fails it). The window always
ends at the latest interval, so after the canary's first 48 h the decision is
about the last 48 h (a breach later on still says ROLLBACK).

This module holds the settings, the decision engine (``evaluate``, a pure
function of the checks) and ``run_canary``, which gathers the checks from a
source (canary_sources), decides, and publishes: the dashboard issue
(canary_dashboard) and, on ROLLBACK, the dispatch, Slack and an issue."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from pydantic import AwareDatetime, BaseModel, Field, SecretStr, field_validator

from tw_gates import DATA_DIR
from tw_gates.canary.sources import MAX_INPUT_BYTES, MAX_STATE_CHECKS, Observation, bucket_of
from tw_gates.core import metrics
from tw_gates.core.errors import ExitCode, TwGatesError, UsageError
from tw_gates.core.fsio import load_model
from tw_gates.core.progress import Progress, silent
from tw_gates.core.settings import GitHubSettings, NotifySettings, SigningSettings, env
from tw_gates.core.signing import KeyRing
from tw_gates.core.units import format_duration, parse_duration
from tw_gates.schemas.canary import (
    NAME_PATTERN,
    SAMPLE_METRIC,
    Breach,
    CanaryBaseline,
    CanaryReport,
    CanaryThresholds,
    CheckRecord,
    GateStatus,
    GateThreshold,
    WindowSummary,
)
from tw_gates.schemas.consumer import REPO_PATTERN

DEFAULT_THRESHOLDS = DATA_DIR / "canary_thresholds.yml"
DEFAULT_DISPATCH_EVENT = "tw-canary-rollback"
# Float noise (0.1 + 0.2) must not breach a bound; a real breach is far larger.
_TOLERANCE = 1e-9

EXIT_BY_DECISION = {"PROMOTE": ExitCode.OK, "HOLD": ExitCode.OK, "ROLLBACK": ExitCode.REJECTED}


class CanarySettings(GitHubSettings, SigningSettings, NotifySettings):
    baseline: Path | None = Field(None, validation_alias=env("TW_CANARY_BASELINE", "baseline"))
    metrics: Path | None = Field(None, validation_alias=env("TW_CANARY_METRICS", "metrics"))
    prometheus_url: str | None = Field(None, validation_alias=env("TW_PROMETHEUS_URL", "prometheus_url"))
    prometheus_token: SecretStr | None = Field(None, validation_alias=env("TW_PROMETHEUS_TOKEN", "prometheus_token"))
    prometheus_timeout_s: float = Field(
        30.0, gt=0, validation_alias=env("TW_PROMETHEUS_TIMEOUT", "prometheus_timeout_s")
    )
    prometheus_retries: int = Field(2, ge=0, le=10, validation_alias=env("TW_PROMETHEUS_RETRIES", "prometheus_retries"))
    queries: Path | None = Field(None, validation_alias=env("TW_CANARY_QUERIES", "queries"))
    thresholds: Path | None = Field(None, validation_alias=env("TW_CANARY_THRESHOLDS", "thresholds"))
    window: str = Field("48h", validation_alias=env("TW_CANARY_WINDOW", "window"))
    interval: str = Field("1h", validation_alias=env("TW_CANARY_INTERVAL", "interval"))
    start: AwareDatetime | None = Field(None, validation_alias=env("TW_CANARY_START", "start"))
    at: AwareDatetime | None = Field(None, validation_alias=env("TW_CANARY_AT", "at"))
    name: str = Field("default", pattern=NAME_PATTERN, validation_alias=env("TW_CANARY_NAME", "name"))
    revision: str | None = Field(None, max_length=200, validation_alias=env("TW_CANARY_REVISION", "revision"))
    central_repo: str | None = Field(None, validation_alias=env("TW_CENTRAL_REPO", "central_repo"))
    dispatch_event: str = Field(
        DEFAULT_DISPATCH_EVENT, validation_alias=env("TW_CANARY_DISPATCH_EVENT", "dispatch_event")
    )
    state_file: Path | None = Field(None, validation_alias=env("TW_CANARY_STATE_FILE", "state_file"))
    report: Path | None = Field(None, validation_alias=env("TW_CANARY_REPORT", "report"))
    # The cap every tw-gates issue filer honours (file-issues too); 0: no rollback issue.
    max_issues: int = Field(10, ge=0, le=1000, validation_alias=env("MAX_ISSUES_PER_RUN", "max_issues"))
    dry_run: bool = Field(False, validation_alias=env("TW_CANARY_DRY_RUN", "dry_run"))

    @field_validator("central_repo")
    @classmethod
    def _repo(cls, value: str | None) -> str | None:
        if value is not None and not re.match(REPO_PATTERN, value):
            raise ValueError("must be OWNER/REPO")
        return value

    @field_validator("dispatch_event")
    @classmethod
    def _event(cls, value: str) -> str:
        # GitHub limits event_type to 100 characters.
        if not (0 < len(value) <= 100):
            raise ValueError("must be 1 to 100 characters (or 'none' to send no dispatch)")
        return value

    @property
    def dispatch_enabled(self) -> bool:
        return self.dispatch_event.lower() not in ("none", "off", "false")


def load_thresholds(path: Path | None) -> CanaryThresholds:
    return load_model(path or DEFAULT_THRESHOLDS, CanaryThresholds, "thresholds file", max_bytes=MAX_INPUT_BYTES)


def load_baseline(path: Path) -> CanaryBaseline:
    return load_model(path, CanaryBaseline, "baseline file", max_bytes=MAX_INPUT_BYTES)


class Timing(BaseModel):
    window_s: int
    interval_s: int

    @property
    def intervals(self) -> int:
        return self.window_s // self.interval_s


def parse_timing(window: str, interval: str) -> Timing:
    window_s = parse_duration(window).total_seconds()
    interval_s = parse_duration(interval).total_seconds()
    if interval_s < 60 or interval_s != int(interval_s):
        raise UsageError(f"--interval must be a whole number of seconds, at least 1m (got {interval!r})")
    if window_s < interval_s or window_s % interval_s:
        raise UsageError(f"--window ({window}) must be a whole multiple of --interval ({interval})")
    return Timing(window_s=int(window_s), interval_s=int(interval_s))


# -- the decision engine ---------------------------------------------------------------------


def gate_limit(gate: GateThreshold, baseline: CanaryBaseline) -> tuple[float, str]:
    """The gate's bound for this baseline, and the rule in words."""
    unit = unit_of(gate.metric)
    if gate.max is not None:
        return gate.max, f"<= {fmt_value(gate.max, gate.metric)}"
    reference = getattr(baseline, gate.metric)
    if reference is None:
        raise UsageError(f"gate {gate.name} is relative to the baseline, but the baseline has no {gate.metric}")
    limit = reference * (1 + gate.max_increase_pct / 100)
    return limit, (
        f"<= baseline {fmt_number(reference)}{unit} +{fmt_number(gate.max_increase_pct)}% "
        f"= {fmt_value(limit, gate.metric)}"
    )


def unit_of(metric: str) -> str:
    return " ms" if metric.endswith("_ms") else "%" if metric.endswith("_pct") else ""


def fmt_span(seconds: int) -> str:
    """48h, 90m, 2h30m: windows and intervals as people write them."""
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    if secs:
        return format_duration(seconds)
    return (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes or not hours else "")


def fmt_number(value: float) -> str:
    if value == int(value) and abs(value) < 1e12:
        return str(int(value))
    if abs(value) >= 100:
        return f"{value:.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.4f}".rstrip("0").rstrip(".")


def fmt_value(value: float | None, metric: str) -> str:
    if value is None:
        return "n/a"
    if metric.endswith("_pct") and (value == 0 or abs(value) >= 0.01):
        return f"{value:.2f}%"  # the seed's notation: 0.00%, 0.10%
    return f"{fmt_number(value)}{unit_of(metric)}"


def iso(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, tz=timezone.utc)


def fmt_interval(start: int, interval_s: int) -> str:
    """'2026-11-24 06:00-07:00 UTC' (the date of the end too when it differs)."""
    begin, end = iso(start), iso(start + interval_s)
    tail = (
        end.strftime("%H:%M")
        if end.date() == begin.date() or end.time() == datetime.min.time()
        else end.strftime("%Y-%m-%d %H:%M")
    )
    return f"{begin:%Y-%m-%d %H:%M}-{tail} UTC"


def _breaches(value: float | None, limit: float) -> bool:
    return value is not None and value > limit + _TOLERANCE * max(1.0, abs(limit))


def evaluate(
    observations: Mapping[int, Observation],
    *,
    baseline: CanaryBaseline,
    thresholds: CanaryThresholds,
    timing: Timing,
    window_end: int,
    started_at: int | None,
    evaluated_at: datetime,
    name: str,
    source: str,
    revision: str | None = None,
    queries_sent: int | None = None,
    warnings: list[str] | None = None,
) -> CanaryReport:
    """Decide from the checks of the window [window_end - window, window_end).

    ``observations`` maps a bucket (interval start) to its values; buckets
    outside the window are ignored. ``started_at`` is the canary's first
    bucket (None: no check yet)."""
    interval_s = timing.interval_s
    window_start = window_end - timing.window_s
    limits = {g.name: gate_limit(g, baseline) for g in thresholds.gates}
    gate_fails = {g.name: 0 for g in thresholds.gates}
    gate_seen = {g.name: 0 for g in thresholds.gates}
    worst: dict[str, tuple[float, int]] = {}
    last: dict[str, float] = {}
    checks: list[CheckRecord] = []
    breaches: list[Breach] = []
    tally = {"clean": 0, "failed": 0, "inconclusive": 0, "missing": 0, "before_start": 0}

    for bucket in range(window_start, window_end, interval_s):
        observation = observations.get(bucket)
        if observation is None:
            not_yet = started_at is None or bucket < started_at
            checks.append(
                CheckRecord(
                    interval_start=iso(bucket),
                    status="missing",
                    note="before the canary started" if not_yet else "no data",
                )
            )
            tally["before_start" if not_yet else "missing"] += 1
            continue
        values = observation.values
        samples = values.get(SAMPLE_METRIC)
        notes = []
        enough = samples is not None and samples >= thresholds.min_samples
        if samples is None:
            notes.append("no sample count")
        elif not enough:
            notes.append(f"{fmt_number(samples)} samples < {thresholds.min_samples}")
        breached, unjudged_over = [], []
        for gate in thresholds.gates:
            value = values.get(gate.metric)
            if value is None:
                notes.append(f"no value for {gate.metric}")
                continue
            last[gate.name] = value
            if gate.name not in worst or value > worst[gate.name][0]:
                worst[gate.name] = (value, bucket)
            limit, _ = limits[gate.name]
            judged = enough or gate.judge_below_min_samples
            if judged:
                gate_seen[gate.name] += 1
            if not _breaches(value, limit):
                continue
            if judged:
                breached.append(gate.name)
                gate_fails[gate.name] += 1
                breaches.append(
                    Breach(
                        gate=gate.name,
                        metric=gate.metric,
                        interval_start=iso(bucket),
                        interval_end=iso(bucket + interval_s),
                        value=value,
                        limit=limit,
                    )
                )
            else:
                unjudged_over.append(gate.name)
        if unjudged_over:
            notes.append(f"over the limit but not judged: {', '.join(unjudged_over)}")
        status = "failed" if breached else "clean" if not notes else "inconclusive"
        tally[status] += 1
        checks.append(
            CheckRecord(
                interval_start=iso(bucket), status=status, breached=breached, note="; ".join(notes), values=dict(values)
            )
        )

    intervals = timing.intervals
    complete = started_at is not None and window_end - started_at >= timing.window_s
    time_left = timing.window_s if started_at is None else max(0, started_at + timing.window_s - window_end)
    coverage = 100.0 * tally["clean"] / intervals
    failed = tally["failed"]

    gates = []
    for gate in thresholds.gates:
        limit, rule = limits[gate.name]
        worst_value, worst_bucket = worst.get(gate.name, (None, None))
        status = "fail" if gate_fails[gate.name] else "pass" if gate_seen[gate.name] else "no_data"
        gates.append(
            GateStatus(
                name=gate.name,
                metric=gate.metric,
                rule=rule,
                limit=limit,
                status=status,
                last_value=last.get(gate.name),
                worst_value=worst_value,
                worst_at=iso(worst_bucket) if worst_bucket is not None else None,
                failed_checks=gate_fails[gate.name],
            )
        )

    if failed >= thresholds.failure_threshold:
        decision = "ROLLBACK"
        reason = rollback_reason(breaches, failed, thresholds, interval_s)
    elif complete and coverage + 1e-9 >= thresholds.min_coverage_pct:
        decision = "PROMOTE"
        reason = (
            f"PROMOTE: {fmt_span(timing.window_s)} window clean, {tally['clean']}/{intervals} intervals "
            f"({coverage:.1f}% >= {fmt_number(thresholds.min_coverage_pct)}%)"
        )
    else:
        decision = "HOLD"
        reason = hold_reason(tally, intervals, coverage, complete, time_left, started_at, thresholds, failed)

    window = WindowSummary(
        start=iso(window_start),
        end=iso(window_end),
        duration_s=timing.window_s,
        interval_s=interval_s,
        started_at=iso(started_at) if started_at is not None else None,
        complete=complete,
        time_left_s=time_left,
        intervals_total=intervals,
        clean=tally["clean"],
        failed=failed,
        inconclusive=tally["inconclusive"],
        missing=tally["missing"],
        before_start=tally["before_start"],
        coverage_pct=round(coverage, 3),
    )
    return CanaryReport(
        name=name,
        revision=revision,
        source=source,
        evaluated_at=evaluated_at,
        decision=decision,
        exit_code=int(EXIT_BY_DECISION[decision]),
        reason=reason,
        window=window,
        failed_checks=failed,
        failure_threshold=thresholds.failure_threshold,
        baseline=baseline,
        thresholds=thresholds,
        gates=gates,
        breaches=breaches,
        checks=checks,
        queries_sent=queries_sent,
        warnings=list(warnings or []),
    )


def rollback_reason(breaches: list[Breach], failed: int, thresholds: CanaryThresholds, interval_s: int) -> str:
    """Each breached gate with its first interval, value and limit."""
    by_gate: dict[str, list[Breach]] = {}
    for breach in breaches:
        by_gate.setdefault(breach.gate, []).append(breach)
    firsts = {items[0].interval_start for items in by_gate.values()}
    shared = len(firsts) == 1
    parts = []
    for gate, items in by_gate.items():
        first = items[0]
        when = "" if shared else f" at {fmt_interval(int(first.interval_start.timestamp()), interval_s)}"
        more = f" (+{len(items) - 1} more interval{'s' if len(items) > 2 else ''})" if len(items) > 1 else ""
        parts.append(
            f"{gate}{when} {fmt_value(first.value, first.metric)} > {fmt_value(first.limit, first.metric)}{more}"
        )
    checks = f"{failed} failed check{'s' if failed != 1 else ''} (threshold {thresholds.failure_threshold})"
    if shared:
        checks += f", at {fmt_interval(int(next(iter(firsts)).timestamp()), interval_s)}"
    return f"ROLLBACK: {checks}: " + "; ".join(parts)


def hold_reason(
    tally: dict[str, int],
    intervals: int,
    coverage: float,
    complete: bool,
    time_left: int,
    started_at: int | None,
    thresholds: CanaryThresholds,
    failed: int,
) -> str:
    if started_at is None:
        return "HOLD: no check in the window yet"
    parts = []
    if not complete:
        parts.append(f"window not complete ({fmt_span(time_left)} left)")
    parts.append(
        f"{tally['clean']}/{intervals} intervals clean ({coverage:.1f}%, "
        f"{fmt_number(thresholds.min_coverage_pct)}% needed)"
    )
    if tally["inconclusive"]:
        parts.append(f"{tally['inconclusive']} inconclusive")
    if tally["missing"]:
        parts.append(f"{tally['missing']} missing")
    if failed:
        parts.append(f"{failed} failed below the rollback threshold of {thresholds.failure_threshold}")
    return "HOLD: " + ", ".join(parts)


def rollback_key(report: CanaryReport) -> str:
    """Names one rollback: the revision and the first breached interval. The
    hourly reruns of a failed canary see the same key and do not announce it
    again; a new revision, or a breach after the first one left the window, does."""
    first = min(report.breaches, key=lambda b: (b.interval_start, b.gate))
    text = json.dumps([report.name, report.revision, first.interval_start.isoformat()])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# -- one run: gather, decide, publish --------------------------------------------------------


class CanaryRun(BaseModel):
    """A run's report plus what it did about it."""

    report: CanaryReport
    actions: list[str] = Field(default_factory=list, description="what was published, one line each")
    problems: list[str] = Field(default_factory=list, description="publishing that failed")

    @property
    def exit_code(self) -> int:
        """The decision's code; a problem (the state not saved: this check is
        lost) makes a PROMOTE or HOLD an error, never hides a ROLLBACK."""
        if self.problems and self.report.decision != "ROLLBACK":
            return int(ExitCode.ERROR)
        return self.report.exit_code


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


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
    from tw_gates.canary.sources import PrometheusSource, load_queries

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
    if settings.start is not None:
        started_at = bucket_of(settings.start.timestamp(), timing.interval_s)
    else:
        started_at = min(observations) if observations else None
    return Gathered(
        window_end, observations, started_at, queries_sent=source.queries_sent, warnings=list(source.warnings)
    )


def gather_metrics_file(settings: CanarySettings, timing: Timing, now: datetime) -> Gathered:
    """This run's check from the metrics file, in the bucket it was observed in."""
    from tw_gates.canary.sources import observation_from_metrics
    from tw_gates.schemas.canary import CanaryMetrics

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


def run_canary(settings: CanarySettings, *, progress: Progress = silent, warn: Progress = silent) -> CanaryRun:
    """Gather the window's checks, decide, and (unless --dry-run) publish:
    the dashboard issue, and on ROLLBACK the dispatch, Slack and the rollback
    issue. Raises ExternalServiceError (exit 1) when Prometheus is
    unreachable: then nothing is recorded or published."""
    from tw_gates.canary.sources import FileStateStore

    if settings.baseline is None:
        raise UsageError("--baseline FILE is required (the metrics the canary is compared with)")
    if (settings.metrics is None) == (settings.prometheus_url is None):
        raise UsageError("give exactly one source: --metrics FILE or --prometheus URL")
    if settings.state_file is not None and settings.central_repo is not None:
        raise UsageError("--state-file and --central-repo both store the canary state; give one")
    thresholds = load_thresholds(settings.thresholds)
    baseline = load_baseline(settings.baseline)
    timing = parse_timing(settings.window, settings.interval)
    now = settings.at or _utc_now()
    ring = settings.key_ring()

    # The source first: when Prometheus is unreachable, nothing else is touched.
    if settings.prometheus_url is not None:
        gathered = gather_prometheus(settings, timing, now, progress)
    else:
        gathered = gather_metrics_file(settings, timing, now)

    client = issues = None
    store: StateStore | None = None
    if settings.central_repo is not None:
        from tw_gates.canary.dashboard import CanaryIssues
        from tw_gates.core.github_client import client_from_settings

        client = client_from_settings(settings)
        store = issues = CanaryIssues(client, settings.central_repo, settings.name, max_issues=settings.max_issues)
    elif settings.state_file is not None:
        store = FileStateStore(settings.state_file)
    try:
        run = decide_and_publish(
            settings,
            gathered,
            store,
            client,
            issues,
            ring=ring,
            thresholds=thresholds,
            baseline=baseline,
            timing=timing,
            now=now,
            warn=warn,
        )
    finally:
        if client is not None:
            client.publish_metrics()
            client.close()
    _record_metrics(run.report)
    return run


def _record_metrics(report: CanaryReport) -> None:
    sink, window = metrics.current(), report.window
    decision = sink.gauge("tw_gates_canary_decision")
    for name in ("PROMOTE", "HOLD", "ROLLBACK"):
        decision.labels(canary=report.name, decision=name).set(1 if name == report.decision else 0)
    sink.gauge("tw_gates_canary_coverage_ratio").labels(canary=report.name).set(window.coverage_pct / 100)
    sink.gauge("tw_gates_canary_failed_checks").labels(canary=report.name).set(report.failed_checks)
    sink.gauge("tw_gates_canary_time_left_seconds").labels(canary=report.name).set(window.time_left_s)
    if report.queries_sent is not None:
        sink.counter("tw_gates_canary_prometheus_queries_total").labels(canary=report.name).inc(report.queries_sent)


class StateStore(Protocol):
    def load(self) -> tuple[Any, list[str]]: ...

    def save(self, report: CanaryReport, document: dict[str, Any], previous_decision: str | None) -> str: ...


def decide_and_publish(
    settings: CanarySettings,
    gathered: Gathered,
    store: StateStore | None,
    client: Any,
    issues: Any,
    *,
    ring: KeyRing,
    thresholds: CanaryThresholds,
    baseline: CanaryBaseline,
    timing: Timing,
    now: datetime,
    warn: Progress = silent,
) -> CanaryRun:
    from tw_gates.canary.sources import parse_state, record_check, state_document

    warnings = list(gathered.warnings)
    stored, load_warnings = store.load() if store is not None else (None, [])
    state, state_warnings = parse_state(
        stored, name=settings.name, revision=settings.revision, interval_s=timing.interval_s, ring=ring
    )
    warnings += load_warnings + state_warnings
    observations, started_at = gathered.observations, gathered.started_at
    if gathered.this_check is not None:
        state = record_check(state, gathered.this_check, window_s=timing.window_s, window_end=gathered.window_end)
        observations = state.observations()
        started_at = (
            bucket_of(settings.start.timestamp(), timing.interval_s) if settings.start is not None else state.started_at
        )
    else:
        # Prometheus holds the checks; the state keeps only the decision and the rollback announced.
        state = state.model_copy(update={"checks": [], "started_at": None})
    for warning in warnings:
        warn(warning)

    report = evaluate(
        observations,
        baseline=baseline,
        thresholds=thresholds,
        timing=timing,
        window_end=gathered.window_end,
        started_at=started_at,
        evaluated_at=now,
        name=settings.name,
        source="file" if gathered.this_check is not None else "prometheus",
        revision=settings.revision,
        queries_sent=gathered.queries_sent,
        warnings=warnings,
    )
    run = CanaryRun(report=report)
    if settings.report is not None:
        _write_report(settings.report, report)
    if settings.dry_run:
        run.actions.append("dry run: no dashboard update, dispatch, notification, issue or state written")
        return run

    previous_decision = state.decision
    state = state.model_copy(update={"decision": report.decision})
    if report.decision == "ROLLBACK":
        sent = announce_rollback(settings, client, issues, report, rollback_key(report), state.rollback_sent, run)
        state = state.model_copy(update={"rollback_sent": sent})
    elif report.decision == "PROMOTE" and issues is not None:
        try:
            closed = issues.close_rollback(report)
        except TwGatesError as exc:
            run.problems.append(f"rollback issue not closed: {exc}")
        else:
            run.actions += [closed] if closed else []
    if store is not None:
        try:
            run.actions.append(store.save(report, state_document(state, ring), previous_decision))
        except (TwGatesError, OSError) as exc:
            run.problems.append(f"canary state not saved: {exc}")
    return run


def _write_report(target: Path, report: CanaryReport) -> None:
    from tw_gates.core.fsio import atomic_write_json

    if str(target) != "-":  # "-": the command prints it on stdout, after everything else
        atomic_write_json(target, report.model_dump(mode="json"))


def dispatch_payload(report: CanaryReport) -> dict:
    """The repository_dispatch client_payload (GitHub allows 10 top-level keys)."""
    breaches = [
        {"gate": b.gate, "interval_start": b.interval_start.isoformat(), "value": b.value, "limit": b.limit}
        for b in report.breaches[:10]
    ]
    return {
        "canary": report.name,
        "revision": report.revision,
        "decision": report.decision,
        "reason": report.reason[:1000],
        "breaches": breaches,
        "evaluated_at": report.evaluated_at.isoformat(),
    }


def announce_rollback(
    settings: CanarySettings,
    client: Any,
    issues: Any,
    report: CanaryReport,
    key: str,
    sent: dict[str, str],
    run: CanaryRun,
) -> dict[str, str]:
    """The rollback signals: repository_dispatch, Slack, the rollback issue.

    ``sent`` maps a signal to the rollback (``rollback_key``) it last went out
    for; the hourly reruns of a failed canary skip the signals already sent
    and retry only those that failed. Returns the updated map."""
    import requests
    from github import GithubException

    from tw_gates.core.github_client import describe_github_error
    from tw_gates.core.notify import notify

    sent = dict(sent)
    done = [signal for signal, for_key in sent.items() if for_key == key]
    if done:
        run.actions.append(f"rollback already announced ({', '.join(sorted(done))}): not sent again")
    if client is not None and settings.dispatch_enabled and sent.get("dispatch") != key:
        try:
            client.repo(settings.central_repo).create_repository_dispatch(
                settings.dispatch_event, dispatch_payload(report)
            )
        except (GithubException, requests.RequestException, TwGatesError) as exc:
            run.problems.append(f"repository_dispatch to {settings.central_repo} failed: {describe_github_error(exc)}")
        else:
            sent["dispatch"] = key
            run.actions.append(f"repository_dispatch {settings.dispatch_event!r} sent to {settings.central_repo}")
    elif client is None and settings.dispatch_enabled:
        run.actions.append("no --central-repo: no repository_dispatch sent")
    if settings.slack_webhook_url is not None and sent.get("slack") != key:
        if notify(settings, f"tw-gates canary {report.name}: {report.reason}"):
            sent["slack"] = key
            run.actions.append("Slack notified")
        else:
            run.problems.append("Slack notification failed")
    if issues is not None and sent.get("issue") != key:
        signals = [a for a in run.actions if a.startswith(("repository_dispatch", "Slack"))]
        try:
            run.actions.append(issues.file_rollback(report, key, signals))
        except TwGatesError as exc:
            run.problems.append(f"rollback issue not filed: {exc}")
        else:
            sent["issue"] = key
    return sent
