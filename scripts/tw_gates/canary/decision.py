"""The decision engine: every interval of the window is one check of the
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
about the last 48 h (a breach later on still says ROLLBACK). ``evaluate`` is a
pure function of the checks."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone

from tw_gates.canary.settings import Timing
from tw_gates.canary.sources import Observation
from tw_gates.core.errors import ExitCode, UsageError
from tw_gates.core.units import format_duration
from tw_gates.schemas.canary import (
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

# Float noise (0.1 + 0.2) must not breach a bound; a real breach is far larger.
_TOLERANCE = 1e-9

EXIT_BY_DECISION = {"PROMOTE": ExitCode.OK, "HOLD": ExitCode.OK, "ROLLBACK": ExitCode.REJECTED}


def gate_limit(gate: GateThreshold, baseline: CanaryBaseline) -> tuple[float, str]:
    """The gate's bound for this baseline, and the rule in words."""
    unit = unit_of(gate.metric)
    if gate.max is not None:
        return gate.max, f"<= {fmt_value(gate.max, gate.metric)}"
    reference: float | None = getattr(baseline, gate.metric)
    max_increase_pct = gate.max_increase_pct
    if reference is None or max_increase_pct is None:
        raise UsageError(f"gate {gate.name} is relative to the baseline, but the baseline has no {gate.metric}")
    limit = reference * (1 + max_increase_pct / 100)
    return limit, (
        f"<= baseline {fmt_number(reference)}{unit} +{fmt_number(max_increase_pct)}% = {fmt_value(limit, gate.metric)}"
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
        return f"{value:.2f}%"  # the gates' notation: 0.00%, 0.10%
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


@dataclass
class _Window:
    """What the checks of one window add up to, interval by interval."""

    thresholds: CanaryThresholds
    limits: dict[str, tuple[float, str]]
    interval_s: int
    gate_fails: dict[str, int] = field(default_factory=dict)
    gate_seen: dict[str, int] = field(default_factory=dict)
    worst: dict[str, tuple[float, int]] = field(default_factory=dict)
    last: dict[str, float] = field(default_factory=dict)
    checks: list[CheckRecord] = field(default_factory=list)
    breaches: list[Breach] = field(default_factory=list)
    tally: dict[str, int] = field(
        default_factory=lambda: {"clean": 0, "failed": 0, "inconclusive": 0, "missing": 0, "before_start": 0}
    )

    def __post_init__(self) -> None:
        self.gate_fails = {g.name: 0 for g in self.thresholds.gates}
        self.gate_seen = {g.name: 0 for g in self.thresholds.gates}

    def add_missing(self, bucket: int, started_at: int | None) -> None:
        not_yet = started_at is None or bucket < started_at
        self.checks.append(
            CheckRecord(
                interval_start=iso(bucket),
                status="missing",
                note="before the canary started" if not_yet else "no data",
            )
        )
        self.tally["before_start" if not_yet else "missing"] += 1

    def add(self, bucket: int, observation: Observation) -> None:
        values = observation.values
        samples = values.get(SAMPLE_METRIC)
        notes = []
        enough = samples is not None and samples >= self.thresholds.min_samples
        if samples is None:
            notes.append("no sample count")
        elif not enough:
            notes.append(f"{fmt_number(samples)} samples < {self.thresholds.min_samples}")
        breached, unjudged_over = [], []
        for gate in self.thresholds.gates:
            value = values.get(gate.metric)
            if value is None:
                notes.append(f"no value for {gate.metric}")
                continue
            outcome = self.judge(gate, value, bucket, enough or gate.judge_below_min_samples)
            if outcome == "breached":
                breached.append(gate.name)
            elif outcome == "over, not judged":
                unjudged_over.append(gate.name)
        if unjudged_over:
            notes.append(f"over the limit but not judged: {', '.join(unjudged_over)}")
        status = "failed" if breached else "clean" if not notes else "inconclusive"
        self.tally[status] += 1
        self.checks.append(
            CheckRecord(
                interval_start=iso(bucket), status=status, breached=breached, note="; ".join(notes), values=dict(values)
            )
        )

    def judge(self, gate: GateThreshold, value: float, bucket: int, judged: bool) -> str:
        """One gate in one interval: "within", "breached" or "over, not judged"."""
        self.last[gate.name] = value
        if gate.name not in self.worst or value > self.worst[gate.name][0]:
            self.worst[gate.name] = (value, bucket)
        limit, _ = self.limits[gate.name]
        if judged:
            self.gate_seen[gate.name] += 1
        if not _breaches(value, limit):
            return "within"
        if not judged:
            return "over, not judged"
        self.gate_fails[gate.name] += 1
        self.breaches.append(
            Breach(
                gate=gate.name,
                metric=gate.metric,
                interval_start=iso(bucket),
                interval_end=iso(bucket + self.interval_s),
                value=value,
                limit=limit,
            )
        )
        return "breached"

    def gate_statuses(self) -> list[GateStatus]:
        gates = []
        for gate in self.thresholds.gates:
            limit, rule = self.limits[gate.name]
            worst_value, worst_bucket = self.worst.get(gate.name, (None, None))
            fails, seen = self.gate_fails[gate.name], self.gate_seen[gate.name]
            gates.append(
                GateStatus(
                    name=gate.name,
                    metric=gate.metric,
                    rule=rule,
                    limit=limit,
                    status="fail" if fails else "pass" if seen else "no_data",
                    last_value=self.last.get(gate.name),
                    worst_value=worst_value,
                    worst_at=iso(worst_bucket) if worst_bucket is not None else None,
                    failed_checks=fails,
                )
            )
        return gates


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
    acc = _Window(thresholds, {g.name: gate_limit(g, baseline) for g in thresholds.gates}, interval_s)
    for bucket in range(window_start, window_end, interval_s):
        observation = observations.get(bucket)
        if observation is None:
            acc.add_missing(bucket, started_at)
        else:
            acc.add(bucket, observation)

    tally, intervals = acc.tally, timing.intervals
    complete = started_at is not None and window_end - started_at >= timing.window_s
    time_left = timing.window_s if started_at is None else max(0, started_at + timing.window_s - window_end)
    coverage = 100.0 * tally["clean"] / intervals
    failed = tally["failed"]
    if failed >= thresholds.failure_threshold:
        decision = "ROLLBACK"
        reason = rollback_reason(acc.breaches, failed, thresholds, interval_s)
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
        gates=acc.gate_statuses(),
        breaches=acc.breaches,
        checks=acc.checks,
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
