"""One canary run: gather the window's checks from a source (``gather``),
merge the stored state (``state``), decide (``decision``), keep a standing
rollback (``finality``), and publish: the dashboard issue (``dashboard``) and,
on ROLLBACK, the signals and the rollback record (``rollback``)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, Field

from tw_gates.canary.dashboard import CanaryIssues
from tw_gates.canary.decision import evaluate, rollback_key
from tw_gates.canary.finality import Standing, drop_replayed, hold, standing_rollback
from tw_gates.canary.gather import Gathered, gather_metrics_file, gather_prometheus
from tw_gates.canary.rollback import announce_rollback
from tw_gates.canary.settings import CanarySettings, Timing, load_baseline, load_thresholds, parse_timing
from tw_gates.canary.sources import Observation, bucket_of
from tw_gates.canary.state import (
    CanaryState,
    Context,
    FileStateStore,
    RollbackRecord,
    parse_state,
    record_check,
    rollback_document,
)
from tw_gates.core import metrics
from tw_gates.core.errors import ExitCode, TwGatesError, UsageError
from tw_gates.core.fsio import atomic_write_json
from tw_gates.core.github_client import client_from_settings
from tw_gates.core.progress import Progress, silent
from tw_gates.core.signing import KeyRing
from tw_gates.schemas.canary import CanaryBaseline, CanaryReport, CanaryThresholds

__all__ = ["CanaryRun", "CanarySettings", "run_canary"]


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


def run_canary(settings: CanarySettings, *, progress: Progress = silent, warn: Progress = silent) -> CanaryRun:
    """Gather the window's checks, decide, and (unless --dry-run) publish:
    the dashboard issue, and on ROLLBACK the dispatch, Slack and the rollback
    issue. Raises ExternalServiceError (exit 1) when Prometheus is
    unreachable: then nothing is recorded or published."""
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
    ring = settings.canary_ring()
    if not ring.can_sign and settings.require_key:
        raise UsageError(
            "--require-key: no TW_CANARY_KEY to sign the canary state (set it, or run without "
            "--require-key / TW_CANARY_REQUIRE_KEY to keep the state unsigned)"
        )

    # The source first: when Prometheus is unreachable, nothing else is touched.
    if settings.prometheus_url is not None:
        gathered = gather_prometheus(settings, timing, now, progress)
    else:
        gathered = gather_metrics_file(settings, timing, now)
    if not ring.can_sign and settings.central_repo is not None and not settings.dry_run:
        warn(unsigned_warning(settings.central_repo))

    client = issues = None
    store: StateStore | None = None
    if settings.central_repo is not None:
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


def unsigned_warning(repo: str) -> str:
    """Exactly what an issue editor can forge when the state is not signed."""
    return (
        f"no TW_CANARY_KEY: the canary state in the dashboard issue of {repo} is unsigned; anyone who can edit "
        "issues there can forge it: paste clean checks to PROMOTE a canary that never ran its window, delete "
        "failed checks, restore a state from before a ROLLBACK, or change the revision an open rollback issue "
        "names (an open rollback issue still blocks PROMOTE for the revision it names). Set TW_CANARY_KEY"
    )


class StateStore(Protocol):
    @property
    def issue_ref(self) -> str | None: ...

    def load(self) -> tuple[Any, list[str]]: ...

    def save(
        self, report: CanaryReport, state: CanaryState, ring: KeyRing | None, previous_decision: str | None
    ) -> str: ...


def decide_and_publish(
    settings: CanarySettings,
    gathered: Gathered,
    store: StateStore | None,
    client: Any,
    issues: CanaryIssues | None,
    *,
    ring: KeyRing,
    thresholds: CanaryThresholds,
    baseline: CanaryBaseline,
    timing: Timing,
    now: datetime,
    warn: Progress = silent,
) -> CanaryRun:
    warnings = list(gathered.warnings)
    stored, load_warnings = store.load() if store is not None else (None, [])
    context = Context(
        name=settings.name,
        revision=settings.revision,
        interval_s=timing.interval_s,
        issue=store.issue_ref if store is not None else None,
        now=int(now.timestamp()),
    )
    state, state_warnings = parse_state(stored, context, ring)
    standing, notes = standing_rollback(state, issues, ring, settings.revision)
    state, replay_warnings = drop_replayed(state, standing)
    warnings += load_warnings + state_warnings + notes + replay_warnings
    state, observations, started_at = merge_state(settings, gathered, state, timing)
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
    run = CanaryRun(report=hold(report, standing))
    if settings.report is not None:
        _write_report(settings.report, run.report)
    if settings.dry_run:
        run.actions.append("dry run: no dashboard update, dispatch, notification, issue or state written")
        return run
    publish(settings, run, state, store, client, issues, ring, standing)
    return run


def merge_state(
    settings: CanarySettings, gathered: Gathered, state: CanaryState, timing: Timing
) -> tuple[CanaryState, dict[int, Observation], int | None]:
    """The state with this run's check in it, and the checks and start to decide from."""
    if gathered.this_check is None:
        # Prometheus holds the checks; the state keeps only the decision and the rollback announced.
        return state.model_copy(update={"checks": [], "started_at": None}), gathered.observations, gathered.started_at
    state = record_check(state, gathered.this_check, window_s=timing.window_s, window_end=gathered.window_end)
    started_at = bucket_of(settings.start.timestamp(), timing.interval_s) if settings.start is not None else None
    return state, state.observations(), started_at if started_at is not None else state.started_at


def publish(
    settings: CanarySettings,
    run: CanaryRun,
    state: CanaryState,
    store: StateStore | None,
    client: Any,
    issues: CanaryIssues | None,
    ring: KeyRing,
    standing: Standing | None,
) -> None:
    """The signals of the decision, then the state (the dashboard issue or the state file)."""
    report = run.report
    previous_decision = state.decision
    seq = max(state.seq, standing.record.seq if standing is not None else 0) + 1
    saved_at = int(report.evaluated_at.timestamp())
    previous = state.rollback
    state = state.model_copy(update={"decision": report.decision, "seq": seq, "saved_at": saved_at, "rollback": None})
    if report.decision == "ROLLBACK":
        state = _announce(settings, run, state, client, issues, ring, standing or _same_rollback(previous, report))
    elif report.decision == "PROMOTE" and issues is not None:
        try:
            closed = issues.close_rollback(report)
        except TwGatesError as exc:
            run.problems.append(f"rollback issue not closed: {exc}")
        else:
            run.actions += [closed] if closed else []
    if store is not None:
        try:
            run.actions.append(store.save(report, state, ring, previous_decision))
        except (TwGatesError, OSError) as exc:
            run.problems.append(f"canary state not saved: {exc}")


def _same_rollback(previous: RollbackRecord | None, report: CanaryReport) -> Standing | None:
    """The rollback this run's breach is already recorded as (its issue, even a closed one: the
    rollback issue of a rollback a person closed is not filed again while the breach is in the window)."""
    if previous is None or not report.breaches or previous.key != rollback_key(report):
        return None
    return Standing(previous, "the canary state", previous.issue)


def _announce(
    settings: CanarySettings,
    run: CanaryRun,
    state: CanaryState,
    client: Any,
    issues: CanaryIssues | None,
    ring: KeyRing,
    standing: Standing | None,
) -> CanaryState:
    """Send the rollback signals and keep the rollback record (a standing one, or a new one)."""
    report = run.report
    record = standing.record if standing is not None else None
    if report.breaches and (record is None or record.key != rollback_key(report)):
        record = RollbackRecord(
            canary=report.name,
            revision=report.revision,
            key=rollback_key(report),
            at=state.saved_at or 0,
            seq=state.seq,
            reason=report.reason[:1000],
        )
    if record is None:  # unreachable: a ROLLBACK either breached or stands
        return state
    sent = dict(state.rollback_sent)
    if standing is not None and standing.issue is not None:
        sent["issue"] = standing.record.key  # the rollback issue exists: not filed again
    announced = announce_rollback(
        settings, client, issues, report, record.key, sent, run, rollback_document(record, ring)
    )
    if announced.issue is not None:
        record = record.model_copy(update={"issue": announced.issue})
    return state.model_copy(update={"rollback_sent": announced.sent, "rollback": record})


def _write_report(target: Path, report: CanaryReport) -> None:
    if str(target) != "-":  # "-": the command prints it on stdout, after everything else
        atomic_write_json(target, report.model_dump(mode="json"))
