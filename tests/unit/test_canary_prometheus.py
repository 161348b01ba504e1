"""The canary against a real Prometheus on loopback, serving 48 hours of
backfilled 1-minute samples (promtool tsdb create-blocks-from openmetrics).

One server per module holds every scenario (label ``scenario``); each test
points the bundled queries' selector at one of them."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.canary_promdata import aligned_window_end, free_port, scenario_queries, serve, write_baseline
from tests.conftest import require_tool

HOUR = 3600


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory):
    prometheus, promtool = require_tool("prometheus"), require_tool("promtool")
    root = tmp_path_factory.mktemp("prometheus")
    window_end = aligned_window_end()
    for server in serve(prometheus, promtool, root, window_end=window_end):
        server.window_end = window_end
        server.root = root
        yield server


def _at(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat()


def _run(cli, prom, tmp_path: Path, scenario: str, *extra: str, env: dict | None = None):
    report = tmp_path / "report.json"
    code, out, err = cli(
        "canary",
        "--baseline",
        write_baseline(tmp_path / "baseline.json"),
        "--prometheus",
        prom.url,
        "--queries",
        scenario_queries(tmp_path / "q.yml", scenario),
        "--at",
        _at(prom.window_end),
        "--report",
        report,
        *extra,
        env=env,
    )
    return code, out, err, (json.loads(report.read_text()) if report.exists() else None)


def test_clean_canary_promotes(cli, prom, tmp_path: Path):
    code, out, err, report = _run(cli, prom, tmp_path, "clean")
    assert code == 0, err
    assert "PROMOTE: 48h window clean, 48/48 intervals (100.0% >= 95%)" in out
    assert report["decision"] == "PROMOTE" and report["source"] == "prometheus"
    assert report["queries_sent"] == 5  # one range query per metric, whatever the window
    p95 = [c["values"]["latency_p95_ms"] for c in report["checks"]]
    assert len(p95) == 48 and all(abs(v - 39.09) < 0.01 for v in p95)
    assert all(c["values"]["parse_count"] == pytest.approx(3000) for c in report["checks"])


def test_p95_spike_at_hour_30_rolls_back_naming_the_interval(cli, prom, tmp_path: Path):
    code, out, err, report = _run(cli, prom, tmp_path, "spike")
    assert code == 2, err
    spike = datetime.fromtimestamp(prom.window_end - 48 * HOUR + 30 * HOUR, timezone.utc)
    expected = (
        f"ROLLBACK: 1 failed check (threshold 1), at {spike:%Y-%m-%d %H:00}-"
        f"{spike + timedelta(hours=1):%H:00} UTC: latency_p95 57.81 ms > 41.58 ms"
    )
    assert expected in out
    assert [(b["gate"], b["interval_start"]) for b in report["breaches"]] == [
        ("latency_p95", spike.isoformat().replace("+00:00", "Z"))
    ]
    assert {g["name"]: g["status"] for g in report["gates"]} == {
        "mismatch_rate": "pass",
        "error_rate": "pass",
        "latency_p50": "pass",
        "latency_p95": "fail",
    }


def test_sparse_samples_hold(cli, prom, tmp_path: Path):
    code, out, err, report = _run(cli, prom, tmp_path, "sparse")
    assert code == 0, err
    assert "HOLD: 24/48 intervals clean (50.0%, 95% needed), 24 inconclusive" in out
    notes = {c["note"] for c in report["checks"] if c["status"] == "inconclusive"}
    assert notes == {"600 samples < 1000"}


def test_canary_started_ten_hours_ago_holds_with_time_left(cli, prom, tmp_path: Path):
    code, out, _, report = _run(cli, prom, tmp_path, "clean", "--start", _at(prom.window_end - 10 * HOUR))
    assert code == 0 and "HOLD: window not complete (38h left)" in out
    assert report["window"]["time_left_s"] == 38 * HOUR


def test_a_missed_run_loses_nothing(cli, prom, tmp_path: Path):
    """Evaluated three hours late, the window is rebuilt from Prometheus: the
    spike is still found (the last three intervals have no data yet)."""
    report = tmp_path / "late.json"
    code, out, _ = cli(
        "canary",
        "--baseline",
        write_baseline(tmp_path / "b.json"),
        "--prometheus",
        prom.url,
        "--queries",
        scenario_queries(tmp_path / "q.yml", "spike"),
        "--at",
        _at(prom.window_end + 3 * HOUR),
        "--report",
        report,
    )
    assert code == 2 and "latency_p95 57.81 ms > 41.58 ms" in out
    assert json.loads(report.read_text())["window"]["missing"] == 3


def test_prometheus_unreachable_exits_1_and_records_nothing(cli, tmp_path: Path, github_emulator):
    github_emulator.add_repo("acme/canary")
    github_emulator.add_token(
        "tok", kind="actions", repo_permissions={"acme/canary": {"issues": "write", "contents": "write"}}
    )
    report = tmp_path / "report.json"
    url = f"http://127.0.0.1:{free_port()}"
    code, out, err = cli(
        "canary",
        "--baseline",
        write_baseline(tmp_path / "b.json"),
        "--prometheus",
        url,
        "--central-repo",
        "acme/canary",
        "--report",
        report,
        env={"GITHUB_TOKEN": "tok", "GITHUB_API_URL": github_emulator.url, "TW_PROMETHEUS_RETRIES": "1"},
    )
    assert code == 1
    assert err.strip() == f"tw-gates canary: error: Prometheus at {url} unreachable: [Errno 111] Connection refused"
    assert "PROMOTE" not in out and "HOLD" not in out and "ROLLBACK" not in out
    assert not report.exists()
    assert github_emulator.requests == [] and github_emulator.issues("acme/canary") == []


def _queries(path: Path, **override: str) -> Path:
    queries = {
        "latency_p50_ms": "vector(10)",
        "latency_p95_ms": "vector(20)",
        "error_rate_pct": "vector(0)",
        "baseline_mismatch_rate_pct": "vector(0)",
        "parse_count": "vector(5000)",
        **override,
    }
    path.write_text(json.dumps({"queries": queries}))
    return path


def test_a_query_returning_several_series_is_refused(cli, prom, tmp_path: Path):
    queries = _queries(tmp_path / "q.json", parse_count="increase(tw_parse_total[{{interval}}])")
    code, _, err = cli(
        "canary",
        "--baseline",
        write_baseline(tmp_path / "b.json"),
        "--prometheus",
        prom.url,
        "--queries",
        queries,
        "--at",
        _at(prom.window_end),
    )
    assert code == 1 and "query for parse_count returned 3 series" in err and "aggregate it to one" in err


def test_bad_promql_is_a_usage_error(cli, prom, tmp_path: Path):
    queries = _queries(tmp_path / "q.json", latency_p50_ms="histogram_quantile(0.5,")
    code, _, err = cli(
        "canary",
        "--baseline",
        write_baseline(tmp_path / "b.json"),
        "--prometheus",
        prom.url,
        "--queries",
        queries,
        "--at",
        _at(prom.window_end),
    )
    assert code == 1 and "Prometheus rejected the query for latency_p50_ms (bad_data: " in err


def test_rollback_dispatches_once_and_updates_the_dashboard(cli, prom, tmp_path: Path, github_emulator):
    github_emulator.add_repo("acme/canary")
    github_emulator.add_token(
        "tok", kind="actions", repo_permissions={"acme/canary": {"issues": "write", "contents": "write"}}
    )
    env = {"GITHUB_TOKEN": "tok", "GITHUB_API_URL": github_emulator.url}
    for _ in range(2):
        code, out, err, _ = _run(
            cli, prom, tmp_path, "spike", "--central-repo", "acme/canary", "--revision", "v2.8.0", env=env
        )
        assert code == 2, err
    dispatches = github_emulator.dispatches("acme/canary")
    assert len(dispatches) == 1  # the hourly rerun of a failed canary does not dispatch again
    payload = dispatches[0]["client_payload"]
    assert dispatches[0]["event_type"] == "tw-canary-rollback"
    assert payload["decision"] == "ROLLBACK" and payload["revision"] == "v2.8.0"
    assert payload["breaches"][0]["gate"] == "latency_p95" and "latency_p95 57.81 ms" in payload["reason"]
    assert "rollback already announced" in out
    dashboards = [i for i in github_emulator.issues("acme/canary") if i["title"] == "tw-gates canary: default"]
    assert len(dashboards) == 1
    body = dashboards[0]["body"]
    assert "kind=canary key=default" in body.splitlines()[0]
    assert "**ROLLBACK**" in body and "xychart-beta" in body and "| latency_p95 |" in body
