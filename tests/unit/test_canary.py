"""The canary's decision engine and the metrics-file source (state over runs)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tw_gates.canary.decision import evaluate, rollback_key
from tw_gates.canary.settings import Timing, load_thresholds, parse_timing
from tw_gates.canary.sources import Observation
from tw_gates.canary.state import Context, fresh_state, parse_state, record_check, state_document
from tw_gates.core.errors import UsageError
from tw_gates.core.signing import CANARY_STATE, KeyRing
from tw_gates.schemas.canary import CanaryBaseline, CanaryThresholds

HOUR = 3600
T0 = 1_790_000_000 // HOUR * HOUR  # an hour boundary
BASELINE = CanaryBaseline(latency_p50_ms=10.0, latency_p95_ms=40.0, error_rate_pct=0.02, baseline_mismatch_rate_pct=0.0)
GOOD = {
    "latency_p50_ms": 10.1,
    "latency_p95_ms": 41.0,
    "error_rate_pct": 0.05,
    "baseline_mismatch_rate_pct": 0.0,
    "parse_count": 3000.0,
}
TIMING = Timing(window_s=48 * HOUR, interval_s=HOUR)


def hours(n: int, start: int = T0, **override: float) -> dict[int, Observation]:
    return {start + i * HOUR: Observation(start + i * HOUR, {**GOOD, **override}) for i in range(n)}


def decide(
    observations,
    *,
    hours_elapsed: int | None = None,
    thresholds: CanaryThresholds | None = None,
    started_at: int | None = T0,
):
    end = T0 + (hours_elapsed if hours_elapsed is not None else 48) * HOUR
    return evaluate(
        observations,
        baseline=BASELINE,
        thresholds=thresholds or load_thresholds(None),
        timing=TIMING,
        window_end=end,
        started_at=started_at,
        evaluated_at=datetime.fromtimestamp(end, timezone.utc),
        name="t",
        source="file",
    )


def test_whole_clean_window_promotes():
    report = decide(hours(48))
    assert report.decision == "PROMOTE" and report.exit_code == 0
    assert report.window.complete and report.window.clean == 48 and report.window.coverage_pct == 100
    assert [g.status for g in report.gates] == ["pass"] * 4


def test_clean_but_incomplete_window_holds_with_time_left():
    report = decide(hours(47), hours_elapsed=47)
    assert report.decision == "HOLD"
    assert report.window.time_left_s == HOUR and not report.window.complete
    assert "window not complete (1h left)" in report.reason


def test_coverage_rule_allows_two_missing_intervals_of_48_but_not_three():
    two_missing = {b: o for b, o in hours(48).items() if b not in (T0 + 5 * HOUR, T0 + 20 * HOUR)}
    assert decide(two_missing).decision == "PROMOTE"  # 46/48 = 95.8%
    three_missing = {b: o for b, o in two_missing.items() if b != T0 + 30 * HOUR}
    report = decide(three_missing)  # 45/48 = 93.75%
    assert report.decision == "HOLD" and "3 missing" in report.reason


def test_inconclusive_checks_never_count_as_clean():
    observations = hours(48)
    for i in (3, 4, 5):
        observations[T0 + i * HOUR].values["parse_count"] = 999
    report = decide(observations)
    assert report.decision == "HOLD"
    assert report.window.inconclusive == 3 and report.window.clean == 45
    assert "3 inconclusive" in report.reason
    assert report.checks[3].note == "999 samples < 1000"


def test_all_inconclusive_never_promotes_even_complete():
    report = decide(hours(48, parse_count=10))
    assert report.decision == "HOLD" and report.window.clean == 0


def test_each_binding_gate_breaches_at_its_bound_and_not_below():
    # p50: baseline 10 +3% = 10.3; p95: 40 +8% = 43.2; error <= 0.1; mismatch 0.
    at_bounds = hours(48, latency_p50_ms=10.3, latency_p95_ms=43.2, error_rate_pct=0.1)
    assert decide(at_bounds).decision == "PROMOTE"
    for metric, value, gate in [
        ("latency_p50_ms", 10.31, "latency_p50"),
        ("latency_p95_ms", 43.21, "latency_p95"),
        ("error_rate_pct", 0.11, "error_rate"),
        ("baseline_mismatch_rate_pct", 0.001, "mismatch_rate"),
    ]:
        observations = hours(48)
        observations[T0 + 30 * HOUR].values[metric] = value
        report = decide(observations)
        assert report.decision == "ROLLBACK" and report.exit_code == 2, metric
        assert [b.gate for b in report.breaches] == [gate]
        when = datetime.fromtimestamp(T0 + 30 * HOUR, timezone.utc)
        assert f"{when:%Y-%m-%d %H:%M}-" in report.reason and gate in report.reason


def test_rollback_names_every_breached_gate_with_its_interval_and_values():
    observations = hours(10)
    observations[T0 + 2 * HOUR].values.update(latency_p95_ms=50.0)
    observations[T0 + 7 * HOUR].values.update(error_rate_pct=0.4)
    report = decide(observations, hours_elapsed=10)
    assert report.decision == "ROLLBACK" and report.failed_checks == 2
    first = datetime.fromtimestamp(T0 + 2 * HOUR, timezone.utc)
    second = datetime.fromtimestamp(T0 + 7 * HOUR, timezone.utc)
    assert (
        f"latency_p95 at {first:%Y-%m-%d %H:%M}-{first + timedelta(hours=1):%H:%M} UTC 50 ms > 43.20 ms"
        in report.reason
    )
    assert f"error_rate at {second:%Y-%m-%d %H:%M}" in report.reason and "0.40% > 0.10%" in report.reason


def test_breach_even_before_the_window_completes_rolls_back_at_once():
    observations = hours(2)
    observations[T0 + HOUR].values["latency_p95_ms"] = 60.0
    assert decide(observations, hours_elapsed=2).decision == "ROLLBACK"


def test_failure_threshold_needs_that_many_failed_checks():
    thresholds = load_thresholds(None).model_copy(update={"failure_threshold": 3})
    observations = hours(48)
    for i in (10, 20):
        observations[T0 + i * HOUR].values["latency_p95_ms"] = 60.0
    report = decide(observations, thresholds=thresholds)
    # Two failed checks: no rollback, but they are not clean either (46/48 >= 95%).
    assert report.decision == "PROMOTE" and report.failed_checks == 2
    observations[T0 + 30 * HOUR].values["latency_p95_ms"] = 60.0
    report = decide(observations, thresholds=thresholds)
    assert report.decision == "ROLLBACK" and "3 failed checks (threshold 3)" in report.reason


def test_mismatch_is_judged_even_below_min_samples_but_latency_is_not():
    observations = hours(48)
    observations[T0].values.update(parse_count=50, latency_p95_ms=90.0)
    report = decide(observations)
    # One inconclusive check of 48: not clean, not failed (47/48 still promotes).
    assert report.decision == "PROMOTE" and report.checks[0].status == "inconclusive"
    assert "over the limit but not judged: latency_p95" in report.checks[0].note
    observations[T0].values["baseline_mismatch_rate_pct"] = 2.0
    assert decide(observations).decision == "ROLLBACK"


def test_missing_metric_value_makes_the_check_inconclusive():
    observations = hours(48)
    observations[T0 + 4 * HOUR].values["error_rate_pct"] = None
    report = decide(observations)
    assert report.checks[4].status == "inconclusive" and "no value for error_rate_pct" in report.checks[4].note


def test_no_data_at_all_holds():
    report = decide({}, started_at=None)
    assert report.decision == "HOLD" and report.reason == "HOLD: no check in the window yet"
    assert report.window.time_left_s == 48 * HOUR


def test_checks_outside_the_window_are_ignored():
    observations = hours(60, start=T0 - 12 * HOUR)
    observations[T0 - 5 * HOUR].values["latency_p95_ms"] = 99.0  # 53 h before the end: gone
    assert decide(observations, started_at=T0 - 12 * HOUR).decision == "PROMOTE"


def test_thresholds_file_overrides_and_validation(tmp_path: Path):
    custom = tmp_path / "t.yml"
    custom.write_text("min_samples: 10\ngates:\n  - {name: p95, metric: latency_p95_ms, max_increase_pct: 50}\n")
    thresholds = load_thresholds(custom)
    assert thresholds.min_samples == 10 and thresholds.failure_threshold == 1
    bad = tmp_path / "bad.yml"
    bad.write_text("gates:\n  - {name: p95, metric: latency_p95_ms, max: 1, max_increase_pct: 5}\n")
    with pytest.raises(UsageError, match="exactly one of max or max_increase_pct"):
        load_thresholds(bad)
    bad.write_text("gates:\n  - {name: x, metric: latency_p99_ms, max: 1}\n")
    with pytest.raises(UsageError, match=r"gates\.0\.metric"):
        load_thresholds(bad)


def test_relative_gate_needs_the_baseline_value():
    thresholds = CanaryThresholds.model_validate(
        {"gates": [{"name": "err", "metric": "error_rate_pct", "max_increase_pct": 10}]}
    )
    baseline = BASELINE.model_copy(update={"error_rate_pct": None})
    with pytest.raises(UsageError, match="baseline has no error_rate_pct"):
        evaluate(
            {},
            baseline=baseline,
            thresholds=thresholds,
            timing=TIMING,
            window_end=T0,
            started_at=None,
            evaluated_at=datetime.now(timezone.utc),
            name="t",
            source="file",
        )


def test_timing_validation():
    assert parse_timing("48h", "5m").intervals == 576
    assert parse_timing("2d", "1h").intervals == 48
    for window, interval, message in [
        ("48h", "50m", "whole multiple"),
        ("1h", "2h", "whole multiple"),
        ("48h", "30s", "at least 1m"),
    ]:
        with pytest.raises(UsageError, match=message):
            parse_timing(window, interval)


# -- the state of the metrics-file source ----------------------------------------------------


def test_record_check_replaces_within_a_bucket_and_bounds_to_the_window():
    state = fresh_state("t", None, HOUR)
    for i in range(60):
        state = record_check(
            state, Observation(T0 + i * HOUR, dict(GOOD)), window_s=48 * HOUR, window_end=T0 + (i + 1) * HOUR
        )
    assert len(state.checks) == 48 and state.started_at == T0
    again = record_check(
        state,
        Observation(T0 + 59 * HOUR, {**GOOD, "latency_p50_ms": 11.0}),
        window_s=48 * HOUR,
        window_end=T0 + 60 * HOUR,
    )
    assert len(again.checks) == 48 and again.checks[-1][1] == 11.0


def test_state_signed_with_hmac_detects_an_edit():
    ring = KeyRing(signing_key="k" * 32, signing_kid="k1", doc_type=CANARY_STATE)
    state = record_check(
        fresh_state("t", None, HOUR), Observation(T0, dict(GOOD)), window_s=48 * HOUR, window_end=T0 + HOUR
    )
    document = state_document(state, ring)
    assert document["signature"]["kid"] == "k1"
    context = Context(name="t", revision=None, interval_s=HOUR)
    loaded, warnings = parse_state(document, context, ring)
    assert warnings == [] and loaded.checks == state.checks
    forged = json.loads(json.dumps(document))
    forged["started_at"] = T0 - 47 * HOUR  # pretend the canary ran for two days
    loaded, warnings = parse_state(forged, context, ring)
    assert loaded.checks == [] and "failed HMAC verification (bad_signature" in warnings[0]
    unsigned = {k: v for k, v in document.items() if k != "signature"}
    loaded, warnings = parse_state(unsigned, context, ring)
    assert loaded.checks == [] and "missing_signature" in warnings[0]


@pytest.mark.parametrize(
    "document,why",
    [
        ([1, 2], "not a JSON object"),
        ({"state_version": "2", "name": "t", "interval_s": HOUR, "checks": [["x"]]}, "canary state block"),
        ({"state_version": "2", "name": "other", "interval_s": HOUR}, "belongs to canary 'other'"),
        ({"state_version": "2", "name": "t", "interval_s": 60, "revision": "new"}, "interval changed"),
        ({"state_version": "2", "name": "t", "interval_s": HOUR, "revision": "old"}, "new canary revision new"),
        ({"state_version": "1", "name": "t", "interval_s": HOUR}, "earlier tw-gates (state version 1)"),
        (
            {
                "state_version": "2",
                "name": "t",
                "revision": "new",
                "interval_s": HOUR,
                "checks": [[T0 + HOUR, 1, 1, 0, 0, 1], [T0, 1, 1, 0, 0, 1]],
            },
            "out of order or twice: reordered",
        ),
        (
            {
                "state_version": "2",
                "name": "t",
                "revision": "new",
                "interval_s": HOUR,
                "saved_at": T0,
                "checks": [[T0 + HOUR, 1, 1, 0, 0, 1]],
            },
            "holds a check after the time it was saved: forged",
        ),
        (
            {"state_version": "2", "name": "t", "revision": "new", "interval_s": HOUR, "saved_at": T0 + 7200},
            "saved after this run's time",
        ),
    ],
)
def test_unusable_state_starts_over_with_a_warning(document, why):
    state, warnings = parse_state(document, Context(name="t", revision="new", interval_s=HOUR, now=T0), None)
    assert state.checks == [] and state.started_at is None
    assert len(warnings) == 1 and why in warnings[0]


def test_rollback_key_is_stable_for_the_same_first_breach():
    observations = hours(10)
    observations[T0 + 2 * HOUR].values["latency_p95_ms"] = 60.0
    first = decide(observations, hours_elapsed=10)
    observations[T0 + 8 * HOUR].values["latency_p95_ms"] = 60.0
    later = decide(observations, hours_elapsed=10)
    assert rollback_key(first) == rollback_key(later)


# -- the command over the bundled example metrics ---------------------------------------------


def test_example_passing_metrics_hold_until_the_window_is_complete(cli, repo_root: Path):
    code, out, _ = cli(
        "canary",
        "--baseline",
        repo_root / "examples/canary/baseline.json",
        "--metrics",
        repo_root / "examples/canary/metrics_pass.json",
    )
    assert code == 0
    assert out.startswith("HOLD: window not complete (47h left), 1/48 intervals clean")


def test_example_failing_metrics_roll_back_naming_each_gate(cli, repo_root: Path, tmp_path: Path):
    report_path = tmp_path / "report.json"
    code, out, _ = cli(
        "canary",
        "--baseline",
        repo_root / "examples/canary/baseline.json",
        "--metrics",
        repo_root / "examples/canary/metrics_fail.json",
        "--report",
        report_path,
    )
    assert code == 2
    first = out.splitlines()[0]
    assert first.startswith("ROLLBACK: 1 failed check (threshold 1), at ")
    for part in (
        "mismatch_rate 0.02% > 0.00%",
        "error_rate 0.35% > 0.10%",
        "latency_p50 12.90 ms > 12.36 ms",
        "latency_p95 47.30 ms > 43.20 ms",
    ):
        assert part in first
    report = json.loads(report_path.read_text())
    assert report["decision"] == "ROLLBACK" and report["exit_code"] == 2
    assert sorted(b["gate"] for b in report["breaches"]) == [
        "error_rate",
        "latency_p50",
        "latency_p95",
        "mismatch_rate",
    ]


def _at(hour: int) -> str:
    return datetime.fromtimestamp(T0 + hour * HOUR + 600, timezone.utc).isoformat()


def test_report_on_stdout_is_json_alone(cli, repo_root: Path):
    code, out, err = cli(
        "canary",
        "--baseline",
        repo_root / "examples/canary/baseline.json",
        "--metrics",
        repo_root / "examples/canary/metrics_fail.json",
        "--report",
        "-",
    )
    assert code == 2 and json.loads(out)["decision"] == "ROLLBACK"
    assert err.startswith("ROLLBACK: 1 failed check")


def test_file_source_promotes_only_after_48_clean_hourly_checks(cli, repo_root: Path, tmp_path: Path):
    state = tmp_path / "state.json"
    base = [
        "canary",
        "--baseline",
        repo_root / "examples/canary/baseline.json",
        "--metrics",
        repo_root / "examples/canary/metrics_pass.json",
        "--state-file",
        state,
    ]
    for hour in range(47):
        code, out, _ = cli(*base, "--at", _at(hour))
        assert code == 0 and out.startswith("HOLD: window not complete"), (hour, out)
        assert f"{hour + 1}/48 intervals clean" in out
    # A rerun in the same hour replaces its check: still 47, still HOLD.
    code, out, _ = cli(*base, "--at", _at(46))
    assert out.startswith("HOLD: window not complete (1h left), 47/48 intervals clean")
    assert len(json.loads(state.read_text())["checks"]) == 47
    code, out, _ = cli(*base, "--at", _at(47))
    assert code == 0 and out.startswith("PROMOTE: 48h window clean, 48/48 intervals"), out
    # The state keeps only the window: an hour later the first check is gone.
    cli(*base, "--at", _at(48))
    assert len(json.loads(state.read_text())["checks"]) == 48


def test_file_source_missed_runs_hold_and_a_failing_check_rolls_back(cli, repo_root: Path, tmp_path: Path):
    state = tmp_path / "state.json"
    base = ["canary", "--baseline", repo_root / "examples/canary/baseline.json", "--state-file", state]
    passing = repo_root / "examples/canary/metrics_pass.json"
    for hour in [h for h in range(48) if h not in (5, 6, 7)]:
        code, out, _ = cli(*base, "--metrics", passing, "--at", _at(hour))
    assert code == 0 and out.startswith("HOLD: 45/48 intervals clean (93.8%, 95% needed), 3 missing"), out
    code, out, _ = cli(*base, "--metrics", repo_root / "examples/canary/metrics_fail.json", "--at", _at(48))
    assert code == 2 and out.startswith("ROLLBACK")


def test_damaged_state_file_starts_over_with_a_warning(cli, repo_root: Path, tmp_path: Path):
    state = tmp_path / "state.json"
    state.write_text("{not json")
    code, out, err = cli(
        "canary",
        "--baseline",
        repo_root / "examples/canary/baseline.json",
        "--metrics",
        repo_root / "examples/canary/metrics_pass.json",
        "--state-file",
        state,
    )
    assert code == 0 and "1/48 intervals clean" in out
    assert "unreadable" in err and "starting the canary over" in err
    assert json.loads(state.read_text())["checks"][0][1] == 12.2


def test_a_state_that_cannot_be_saved_is_exit_1(cli, repo_root: Path, tmp_path: Path):
    folder = tmp_path / "state-is-a-folder"
    folder.mkdir()
    code, out, err = cli(
        "canary",
        "--baseline",
        repo_root / "examples/canary/baseline.json",
        "--metrics",
        repo_root / "examples/canary/metrics_pass.json",
        "--state-file",
        folder,
    )
    assert code == 1 and out.startswith("HOLD") and "canary state not saved" in err


def test_dry_run_writes_no_state(cli, repo_root: Path, tmp_path: Path):
    state = tmp_path / "state.json"
    code, out, _ = cli(
        "canary",
        "--baseline",
        repo_root / "examples/canary/baseline.json",
        "--metrics",
        repo_root / "examples/canary/metrics_pass.json",
        "--state-file",
        state,
        "--dry-run",
    )
    assert code == 0 and "dry run" in out and not state.exists()


@pytest.mark.parametrize(
    "args,message",
    [
        ([], "--baseline FILE is required"),
        (["--baseline", "examples/canary/baseline.json"], "give exactly one source"),
        (
            ["--baseline", "nope.json", "--metrics", "examples/canary/metrics_pass.json"],
            "baseline file not found: nope.json",
        ),
        (
            [
                "--baseline",
                "examples/canary/baseline.json",
                "--metrics",
                "examples/canary/metrics_pass.json",
                "--interval",
                "50m",
            ],
            "whole multiple",
        ),
        (
            [
                "--baseline",
                "examples/canary/baseline.json",
                "--metrics",
                "examples/canary/metrics_pass.json",
                "--window",
                "bogus",
            ],
            "not a duration",
        ),
        (["--baseline", "examples/canary/baseline.json", "--prometheus", "localhost:9090"], "must be an http(s) URL"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(cli, repo_root: Path, args, message):
    code, out, err = cli("canary", *args, cwd=repo_root)
    assert code == 1
    assert err.count("\n") == 1 and message in err and err.startswith("tw-gates canary: error:")


def test_metrics_file_with_a_bad_value_is_rejected(cli, repo_root: Path, tmp_path: Path):
    metrics = tmp_path / "m.json"
    metrics.write_text(
        json.dumps(
            {
                "latency_p50_ms": 1,
                "latency_p95_ms": 2,
                "error_rate_pct": 150,
                "baseline_mismatch_rate_pct": 0,
                "parse_count": 5000,
            }
        )
    )
    code, _, err = cli("canary", "--baseline", repo_root / "examples/canary/baseline.json", "--metrics", metrics)
    assert code == 1 and "error_rate_pct: Input should be less than or equal to 100" in err


def test_the_canary_is_an_optional_gate_of_the_chain(cli, repo_root: Path):
    env = {
        "TW_CANARY_BASELINE": str(repo_root / "examples/canary/baseline.json"),
        "TW_CANARY_METRICS": str(repo_root / "examples/canary/metrics_fail.json"),
    }
    code, out, _ = cli("gates", "--only", "canary", env=env)
    assert code == 2 and "canary" in out and "ROLLBACK: 1 failed check" in out
    code, out, _ = cli("gates", "--list")
    assert "canary" in out and "(optional)" in out.split("canary", 1)[1].splitlines()[0]


def test_canary_yml_requires_the_key_unless_the_caller_opts_out(repo_root: Path):
    import yaml

    workflow = yaml.safe_load((repo_root / ".github/workflows/canary.yml").read_text())
    opt_out = workflow[True]["workflow_call"]["inputs"]["allow-unsigned-state"]
    assert opt_out["type"] == "boolean" and opt_out["default"] is False
    step = next(s for s in workflow["jobs"]["canary"]["steps"] if s.get("id") == "canary")
    assert step["with"]["require-key"] == (
        "${{ (inputs.allow-unsigned-state || vars.TW_CANARY_ALLOW_UNSIGNED == 'true') && 'false' || 'true' }}"
    )
    assert step["with"]["canary-key"] == "${{ secrets.TW_CANARY_KEY }}"


def test_require_key_from_the_environment(cli, repo_root: Path):
    code, _, err = cli(
        "canary",
        "--baseline",
        repo_root / "examples/canary/baseline.json",
        "--metrics",
        repo_root / "examples/canary/metrics_pass.json",
        env={"TW_CANARY_REQUIRE_KEY": "true"},
    )
    assert code == 1 and "--require-key: no TW_CANARY_KEY" in err
