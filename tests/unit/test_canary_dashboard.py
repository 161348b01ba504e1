"""The canary dashboard issue and the rollback signal, over real HTTP against
the GitHub emulator (and a local stand-in for Slack's webhook)."""

from __future__ import annotations

import json
import re
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.emulator.fixtures import pygithub_client
from tests.unit.test_canary import HOUR, T0, decide, hours
from tw_gates.canary.dashboard import MAX_BODY_CHARS, extract_state, render_dashboard, render_state_block

REPO = "acme/canary"


@pytest.fixture
def github(github_emulator):
    github_emulator.add_repo(REPO)
    github_emulator.add_token("tok", kind="actions", repo_permissions={REPO: {"issues": "write", "contents": "write"}})
    github_emulator.add_token("issues-only", kind="actions", repo_permissions={REPO: {"issues": "write"}})
    return github_emulator


@pytest.fixture
def slack():
    """Records what a Slack incoming webhook would receive."""
    received: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/services/T000/B000/XXXX", received
    server.shutdown()
    server.server_close()


def _at(hour: int) -> str:
    return datetime.fromtimestamp(T0 + hour * HOUR + 300, timezone.utc).isoformat()


def _canary(
    cli,
    repo_root: Path,
    hour: int,
    metrics: str = "metrics_pass.json",
    *extra: str,
    token: str = "tok",
    github=None,
    env: dict | None = None,
):
    return cli(
        "canary",
        "--baseline",
        repo_root / "examples/canary/baseline.json",
        "--metrics",
        repo_root / "examples/canary" / metrics,
        "--central-repo",
        REPO,
        "--at",
        _at(hour),
        *extra,
        env={"GITHUB_TOKEN": token, "GITHUB_API_URL": github.url, **(env or {})},
    )


def _edit_body(github, number: int, body: str) -> None:
    """What a person editing the issue on github.com does: PATCH the body."""
    pygithub_client(github, "tok").get_repo(REPO).get_issue(number).edit(body=body)


def _dashboards(github) -> list[dict]:
    return [i for i in github.issues(REPO) if "kind=canary key=default " in (i["body"] or "")]


def _state(issue: dict) -> dict:
    document, warnings = extract_state(issue["body"])
    assert warnings == []
    return document


def test_dashboard_issue_keeps_one_check_per_hour(cli, repo_root: Path, github):
    for hour in range(3):
        code, out, err = _canary(cli, repo_root, hour, github=github)
        assert code == 0, err
    (issue,) = _dashboards(github)
    assert [label["name"] for label in issue["labels"]] == ["tw-gates"]
    assert issue["title"] == "tw-gates canary: default"
    assert "**HOLD**" in issue["body"] and "| time left in the window | 45h |" in issue["body"]
    assert [c[0] for c in _state(issue)["checks"]] == [T0, T0 + HOUR, T0 + 2 * HOUR]
    assert _state(issue)["started_at"] == T0


def test_a_rerun_learning_nothing_new_writes_nothing(cli, repo_root: Path, github):
    _canary(cli, repo_root, 0, github=github)
    github.clear_requests()
    code, out, _ = _canary(cli, repo_root, 0, github=github)
    assert code == 0 and "unchanged" in out
    assert github.count("PATCH") == 0 and github.count("POST") == 0


def test_decision_change_is_commented_once(cli, repo_root: Path, github):
    _canary(cli, repo_root, 0, github=github)
    code, _, _ = _canary(cli, repo_root, 1, "metrics_fail.json", "--dispatch-event", "none", github=github)
    assert code == 2
    (issue,) = _dashboards(github)
    comments = github.comments(REPO, issue["number"])
    assert len(comments) == 1 and comments[0]["body"].startswith("Decision changed: HOLD → **ROLLBACK**")
    assert "**ROLLBACK**" in issue["body"] and "### Breaches" in issue["body"]


def test_rollback_signals_dispatch_and_slack_once(cli, repo_root: Path, github, slack):
    webhook, received = slack
    for hour in (0, 1):
        code, out, err = _canary(
            cli,
            repo_root,
            hour,
            "metrics_fail.json",
            "--dispatch-event",
            "deploy-rollback",
            "--revision",
            "v2.8.0",
            github=github,
            env={"SLACK_WEBHOOK_URL": webhook},
        )
        assert code == 2, err
    (dispatch,) = github.dispatches(REPO)
    assert dispatch["event_type"] == "deploy-rollback"
    payload = dispatch["client_payload"]
    assert payload["canary"] == "default" and payload["revision"] == "v2.8.0"
    assert sorted(b["gate"] for b in payload["breaches"]) == [
        "error_rate",
        "latency_p50",
        "latency_p95",
        "mismatch_rate",
    ]
    assert len(received) == 1 and received[0]["text"].startswith("tw-gates canary default: ROLLBACK: ")
    assert "rollback already announced" in out
    # A new revision is a new canary: its rollback is announced again.
    code, _, _ = _canary(
        cli,
        repo_root,
        2,
        "metrics_fail.json",
        "--revision",
        "v2.8.1",
        github=github,
        env={"SLACK_WEBHOOK_URL": webhook},
    )
    assert code == 2 and len(github.dispatches(REPO)) == 2 and len(received) == 2


def test_rollback_files_one_issue_and_promotion_closes_it(cli, repo_root: Path, github):
    for hour in (0, 1):
        code, _, _ = _canary(cli, repo_root, hour, "metrics_fail.json", "--revision", "r1", github=github)
        assert code == 2
    rollbacks = [i for i in github.issues(REPO) if "key=rollback:default " in i["body"]]
    assert len(rollbacks) == 1 and rollbacks[0]["title"] == "tw-gates canary ROLLBACK: default (r1)"
    body = rollbacks[0]["body"]
    assert "| latency_p95 | 47.30 ms | 43.20 ms |" in body and "repository_dispatch 'tw-canary-rollback'" in body
    assert github.comments(REPO, rollbacks[0]["number"]) == []
    # The fix, as a new revision on a 2-hour window: HOLD, then PROMOTE closes the rollback issue.
    for hour, expected in ((2, "HOLD"), (3, "PROMOTE")):
        code, out, _ = _canary(
            cli, repo_root, hour, "metrics_pass.json", "--revision", "r2", "--window", "2h", github=github
        )
        assert code == 0 and out.startswith(expected), out
    closed = next(i for i in github.issues(REPO) if i["number"] == rollbacks[0]["number"])
    assert closed["state"] == "closed"
    assert "PROMOTE" in github.comments(REPO, closed["number"])[-1]["body"]


def test_no_rollback_issue_when_the_cap_is_zero(cli, repo_root: Path, github):
    code, out, _ = _canary(cli, repo_root, 0, "metrics_fail.json", github=github, env={"MAX_ISSUES_PER_RUN": "0"})
    assert code == 2 and "no rollback issue filed: MAX_ISSUES_PER_RUN is 0" in out
    assert [i["title"] for i in github.issues(REPO)] == ["tw-gates canary: default"]
    assert len(github.dispatches(REPO)) == 1


def test_dispatch_denied_still_rolls_back_and_retries_next_run(cli, repo_root: Path, github):
    code, out, err = _canary(cli, repo_root, 0, "metrics_fail.json", token="issues-only", github=github)
    assert code == 2
    assert "repository_dispatch to acme/canary failed: GitHub answered 403" in err
    assert github.dispatches(REPO) == []
    assert set(_state(_dashboards(github)[0])["rollback_sent"]) == {"issue"}
    code, out, err = _canary(cli, repo_root, 1, "metrics_fail.json", github=github)
    assert code == 2 and len(github.dispatches(REPO)) == 1
    assert "already announced (issue): not sent again" in out
    assert set(_state(_dashboards(github)[0])["rollback_sent"]) == {"issue", "dispatch"}


def test_a_token_that_cannot_write_issues_is_exit_1(cli, repo_root: Path, github):
    github.add_token("read-only", kind="actions", repo_permissions={REPO: {"issues": "read"}})
    code, out, err = _canary(cli, repo_root, 0, token="read-only", github=github)
    assert code == 1 and out.startswith("HOLD")
    assert "canary state not saved: creating issue canary:default in acme/canary: GitHub answered 403" in err
    assert github.issues(REPO) == []


def test_a_damaged_state_block_starts_over_without_crashing(cli, repo_root: Path, github):
    for hour in range(3):
        _canary(cli, repo_root, hour, github=github)
    (issue,) = _dashboards(github)
    damaged = re.sub(r'"checks":\[\[', '"checks":[[oops', issue["body"])
    _edit_body(github, issue["number"], damaged)
    code, out, err = _canary(cli, repo_root, 3, github=github)
    assert code == 0 and "canary state block is damaged" in err and "starting the canary over" in err
    assert "1/48 intervals clean" in out
    assert [c[0] for c in _state(_dashboards(github)[0])["checks"]] == [T0 + 3 * HOUR]


def test_signed_state_cannot_be_forged_by_editing_the_issue(cli, repo_root: Path, github):
    env = {"TW_CANARY_KEY": "canary-state-signing-key-0123456789", "TW_CANARY_KEY_ID": "k2026"}
    for hour in range(2):
        _canary(cli, repo_root, hour, github=github, env=env)
    (issue,) = _dashboards(github)
    document = _state(issue)
    assert document["signature"]["kid"] == "k2026"
    # Someone claims 46 more clean hours.
    forged = {
        **document,
        "checks": [[T0 + h * HOUR, *document["checks"][0][1:]] for h in range(-46, 2)],
        "started_at": T0 - 46 * HOUR,
    }
    body = issue["body"].replace(render_state_block(document), render_state_block(forged))
    _edit_body(github, issue["number"], body)
    code, out, err = _canary(cli, repo_root, 2, github=github, env=env)
    assert code == 0 and "PROMOTE" not in out and "1/48 intervals clean" in out
    assert "failed HMAC verification (bad_signature" in err


def test_dry_run_reads_the_dashboard_but_writes_nothing(cli, repo_root: Path, github):
    _canary(cli, repo_root, 0, github=github)
    github.clear_requests()
    code, out, _ = _canary(cli, repo_root, 1, "metrics_fail.json", "--dry-run", github=github)
    assert code == 2 and "dry run" in out
    assert github.count("GET") >= 1 and github.count("POST") == 0 and github.count("PATCH") == 0
    assert github.dispatches(REPO) == []


# -- rendering -------------------------------------------------------------------------------


def test_charts_plot_each_interval_with_its_limit():
    observations = hours(30)
    observations[T0 + 12 * HOUR].values["latency_p95_ms"] = 50.0
    body = render_dashboard(decide(observations, hours_elapsed=30), {"state_version": "1"})
    charts = re.findall(r"```mermaid\n(.*?)```", body, re.S)
    assert len(charts) == 3 and all(c.startswith("xychart-beta\n") for c in charts)
    p95 = charts[1]
    bars = re.search(r"bar \[(.*)\]", p95).group(1).split(", ")
    assert len(bars) == 30 and bars[12] == "50" and set(bars) - {"50"} == {"41"}
    assert re.search(r"line \[(.*)\]", p95).group(1).split(", ") == ["43.2"] * 30
    labels = re.search(r"x-axis \[(.*)\]", p95).group(1).split(", ")
    assert len(set(labels)) == 30  # unique: a repeated category would merge two points


def test_charts_of_a_fine_interval_are_downsampled_to_the_worst_value():
    from tests.unit.test_canary import BASELINE, GOOD
    from tw_gates.canary.decision import evaluate
    from tw_gates.canary.settings import Timing, load_thresholds
    from tw_gates.canary.sources import Observation

    obs = {T0 + i * 60: Observation(T0 + i * 60, dict(GOOD)) for i in range(2880)}
    obs[T0 + 1000 * 60].values["latency_p95_ms"] = 42.5
    report = evaluate(
        obs,
        baseline=BASELINE,
        thresholds=load_thresholds(None),
        timing=Timing(window_s=48 * HOUR, interval_s=60),
        window_end=T0 + 48 * HOUR,
        started_at=T0,
        evaluated_at=datetime.now(timezone.utc),
        name="t",
        source="prometheus",
    )
    body = render_dashboard(report, None)
    bars = re.findall(r"bar \[(.*)\]", body)[1].split(", ")
    assert len(bars) == 48 and bars.count("42.5") == 1
    assert len(body) < MAX_BODY_CHARS


def test_state_block_survives_text_that_would_close_the_comment():
    document = {"revision": "v1 --> <script>", "n": 1}
    block = render_state_block(document)
    assert block.count("-->") == 1 and block.endswith(" -->")
    assert extract_state(f"text\n{block}\n") == (document, [])


def test_the_largest_state_fits_in_an_issue_body():
    from tests.unit.test_canary import BASELINE, GOOD
    from tw_gates.canary.decision import evaluate
    from tw_gates.canary.settings import Timing, load_thresholds
    from tw_gates.canary.sources import Observation
    from tw_gates.canary.state import MAX_STATE_CHECKS, CanaryState, state_document
    from tw_gates.core.signing import CANARY_STATE, KeyRing

    interval = 300
    checks = [(T0 + i * interval, 12.3456, 41.2345, 0.0512, 0.0, 3012.0) for i in range(MAX_STATE_CHECKS)]
    state = CanaryState(name="default", revision="r" * 200, interval_s=interval, started_at=T0, checks=checks)
    obs = {c[0]: Observation(c[0], dict(zip(GOOD, c[1:], strict=False))) for c in checks}
    for i in range(0, MAX_STATE_CHECKS, 2):
        obs[T0 + i * interval].values["parse_count"] = 10  # many inconclusive rows for the details table
    report = evaluate(
        obs,
        baseline=BASELINE,
        thresholds=load_thresholds(None),
        timing=Timing(window_s=MAX_STATE_CHECKS * interval, interval_s=interval),
        window_end=T0 + MAX_STATE_CHECKS * interval,
        started_at=T0,
        evaluated_at=datetime.now(timezone.utc),
        name="default",
        source="file",
    )
    document = state_document(state, KeyRing(signing_key="x" * 32, doc_type=CANARY_STATE))
    body = render_dashboard(report, document)
    assert len(body) < MAX_BODY_CHARS
    assert extract_state(body) == (document, [])


# -- a rollback is final until a person acts ---------------------------------------------------

CANARY_KEY = {"TW_CANARY_KEY": "canary-state-signing-key-0123456789", "TW_CANARY_KEY_ID": "k2026"}


def _rollback_issues(github) -> list[dict]:
    return [i for i in github.issues(REPO) if "key=rollback:default " in (i["body"] or "")]


def test_restoring_the_dashboard_from_before_a_rollback_never_promotes(cli, repo_root: Path, github):
    """The attack: with TW_CANARY_KEY set, restoring the dashboard body of hour 46 (from the
    issue's edit history) after a ROLLBACK at hour 47 gave PROMOTE at hour 48 (47/48)."""
    for hour in range(47):
        code, out, err = _canary(cli, repo_root, hour, github=github, env=CANARY_KEY)
        assert code == 0, (hour, err)
    (issue,) = _dashboards(github)
    hour_46_body = issue["body"]
    code, out, _ = _canary(cli, repo_root, 47, "metrics_fail.json", github=github, env=CANARY_KEY)
    assert code == 2 and out.startswith("ROLLBACK")
    (rollback,) = _rollback_issues(github)
    _edit_body(github, issue["number"], hour_46_body)
    code, out, err = _canary(cli, repo_root, 48, github=github, env=CANARY_KEY)
    assert code == 2, out
    assert "PROMOTE" not in out.splitlines()[0]
    assert out.startswith(f"ROLLBACK stands (rollback issue #{rollback['number']})")
    assert (
        f"canary state block #47 is older than the rollback recorded in rollback issue #{rollback['number']} "
        "(#48): a replayed or restored block" in err
    )
    # Still standing an hour later, from the state the run just wrote.
    code, out, _ = _canary(cli, repo_root, 49, github=github, env=CANARY_KEY)
    assert code == 2 and out.startswith("ROLLBACK stands")


def test_a_person_closing_the_rollback_issue_is_what_ends_the_rollback(cli, repo_root: Path, github):
    env = {**CANARY_KEY}
    code, _, _ = _canary(cli, repo_root, 0, "metrics_fail.json", "--window", "2h", github=github, env=env)
    assert code == 2
    code, out, _ = _canary(cli, repo_root, 1, "metrics_pass.json", "--window", "2h", github=github, env=env)
    assert code == 2 and out.startswith("ROLLBACK: 1 failed check")  # the breach is still in the window
    for hour in (2, 3):  # the breach has left the 2-hour window: the data alone would promote
        code, out, _ = _canary(cli, repo_root, hour, "metrics_pass.json", "--window", "2h", github=github, env=env)
        assert code == 2 and out.startswith("ROLLBACK stands"), (hour, out)
        assert "close that issue" in out and "The window alone now says: PROMOTE" in out
    (rollback,) = _rollback_issues(github)
    pygithub_client(github, "tok").get_repo(REPO).get_issue(rollback["number"]).edit(state="closed")
    code, out, _ = _canary(cli, repo_root, 4, "metrics_pass.json", "--window", "2h", github=github, env=env)
    assert code == 0 and out.startswith("PROMOTE"), out


def test_a_state_block_copied_from_another_dashboard_is_refused(cli, repo_root: Path, github):
    for hour in range(2):
        _canary(cli, repo_root, hour, github=github, env=CANARY_KEY)
    _canary(cli, repo_root, 0, "metrics_pass.json", "--name", "other", github=github, env=CANARY_KEY)
    issues = {i["title"]: i for i in github.issues(REPO)}
    mine, other = issues["tw-gates canary: default"], issues["tw-gates canary: other"]
    document = _state(mine)
    body = other["body"].replace(render_state_block(_state(other)), render_state_block({**document}))
    _edit_body(github, other["number"], body)
    code, _, err = _canary(cli, repo_root, 2, "metrics_pass.json", "--name", "other", github=github, env=CANARY_KEY)
    assert code == 0
    assert (
        f"canary state block was written to issue {REPO}#{mine['number']}, not this dashboard {REPO}#{other['number']}"
        in err
    )


def test_central_repo_without_a_key_says_what_an_issue_editor_could_forge(cli, repo_root: Path, github):
    code, _, err = _canary(cli, repo_root, 0, github=github)
    assert code == 0
    assert (
        "no TW_CANARY_KEY: the canary state in the dashboard issue of acme/canary is unsigned; anyone who can "
        "edit issues there can forge it: paste clean checks to PROMOTE a canary that never ran its window, "
        "delete failed checks, restore a state from before a ROLLBACK, or change the revision an open rollback "
        "issue names" in err
    )
    code, _, err = _canary(cli, repo_root, 1, "metrics_pass.json", "--require-key", github=github)
    assert code == 1
    assert "--require-key: no TW_CANARY_KEY to sign the canary state" in err
    code, _, err = _canary(cli, repo_root, 1, "metrics_pass.json", "--require-key", github=github, env=CANARY_KEY)
    assert code == 0, err


# -- a failed rollback dispatch is never recorded as sent ---------------------------------------


@pytest.mark.parametrize(
    "fault, answered",
    [
        ({"kind": "not_found"}, "404"),
        ({"kind": "server_error", "status": 502, "times": None}, "502"),
        ({"kind": "permission_denied"}, "403"),
    ],
)
def test_a_dispatch_github_did_not_accept_is_retried_reported_and_never_recorded_as_sent(
    cli, repo_root: Path, github, fault, answered
):
    """PyGithub's create_repository_dispatch returns False on a non-204 answer instead of
    raising: the canary logged 'sent', recorded it, and never retried."""
    params = {k: v for k, v in fault.items() if k != "kind"}
    github.inject(fault["kind"], method="POST", path=r"/dispatches$", **params)
    env = {"TW_GITHUB_BACKOFF": "0", "TW_CANARY_DISPATCH_TIMEOUT": "5"}
    code, out, err = _canary(cli, repo_root, 0, "metrics_fail.json", github=github, env=env)
    assert code == 2
    assert "repository_dispatch 'tw-canary-rollback' sent" not in out
    assert f"repository_dispatch to acme/canary failed: GitHub answered {answered}" in err
    assert "NOT sent; the next run retries it" in err
    assert github.dispatches(REPO) == []
    assert "dispatch" not in _state(_dashboards(github)[0])["rollback_sent"]
    (rollback,) = _rollback_issues(github)
    assert "Signals not sent (retried on the next run): repository_dispatch" in rollback["body"]
    if fault["kind"] == "server_error":
        assert github.count("POST", r"/dispatches$") >= 2  # retried within the deadline
    github.clear_faults()
    code, out, err = _canary(cli, repo_root, 1, "metrics_fail.json", github=github, env=env)
    assert code == 2 and len(github.dispatches(REPO)) == 1
    assert "repository_dispatch 'tw-canary-rollback' sent to acme/canary" in out
    assert _state(_dashboards(github)[0])["rollback_sent"].keys() >= {"dispatch", "issue"}


def test_with_prometheus_the_decision_comes_from_the_source_and_the_state_is_a_cache(github, repo_root: Path):
    """Prometheus holds the window: a forged state cannot add clean hours, and a ROLLBACK still
    stands once its breach has left the window Prometheus returns."""
    from tests.unit.test_canary import GOOD
    from tw_gates.canary.canary import decide_and_publish
    from tw_gates.canary.dashboard import CanaryIssues
    from tw_gates.canary.gather import Gathered
    from tw_gates.canary.settings import CanarySettings, load_baseline, load_thresholds, parse_timing
    from tw_gates.canary.sources import Observation
    from tw_gates.core.github_client import GitHubClient

    settings = CanarySettings(
        baseline=repo_root / "examples/canary/baseline.json",
        prometheus_url="http://prometheus.invalid",
        central_repo=REPO,
        canary_key=CANARY_KEY["TW_CANARY_KEY"],
    )
    timing = parse_timing("48h", "1h")
    client = GitHubClient("tok", github.url, retries=0)
    ring = settings.canary_ring()

    def run(end_hour: int, breach_at: int | None):
        end = T0 + end_hour * HOUR
        observations = {
            b: Observation(b, {**GOOD, "latency_p95_ms": 90.0} if b == T0 + (breach_at or -99) * HOUR else dict(GOOD))
            for b in range(end - 48 * HOUR, end, HOUR)
        }
        gathered = Gathered(end, observations, started_at=end - 48 * HOUR, queries_sent=5)
        issues = CanaryIssues(client, REPO, "default", max_issues=10)
        return decide_and_publish(
            settings,
            gathered,
            issues,
            client,
            issues,
            ring=ring,
            thresholds=load_thresholds(None),
            baseline=load_baseline(settings.baseline),
            timing=timing,
            now=datetime.fromtimestamp(end, timezone.utc),
        )

    assert run(48, breach_at=None).report.decision == "PROMOTE"
    assert run(49, breach_at=48).report.decision == "ROLLBACK"
    (dashboard,) = _dashboards(github)
    assert _state(dashboard)["checks"] == []  # nothing of the window is kept: Prometheus has it
    later = run(100, breach_at=None)  # the breach is far outside the window now
    assert later.report.decision == "ROLLBACK" and later.report.reason.startswith("ROLLBACK stands (rollback issue #")
    assert later.report.exit_code == 2
    client.close()


def test_closing_the_rollback_issue_while_the_breach_is_in_the_window_still_ends_it(cli, repo_root: Path, github):
    env = {**CANARY_KEY}
    code, _, _ = _canary(cli, repo_root, 0, "metrics_fail.json", "--window", "2h", github=github, env=env)
    assert code == 2
    (rollback,) = _rollback_issues(github)
    pygithub_client(github, "tok").get_repo(REPO).get_issue(rollback["number"]).edit(state="closed")
    code, out, _ = _canary(cli, repo_root, 1, "metrics_pass.json", "--window", "2h", github=github, env=env)
    assert code == 2 and out.startswith("ROLLBACK: 1 failed check")  # the data still says so
    assert [i["number"] for i in _rollback_issues(github) if i["state"] == "open"] == []  # not filed again
    code, out, _ = _canary(cli, repo_root, 2, "metrics_pass.json", "--window", "2h", github=github, env=env)
    assert code == 0 and out.startswith("PROMOTE"), out


def test_a_state_block_nested_too_deep_by_an_issue_editor_starts_over_instead_of_crashing():
    body = "dashboard\n<!-- tw-gates:canary-state " + "[" * 100_000 + " -->\n"
    document, warnings = extract_state(body)
    assert document is None
    assert len(warnings) == 1 and "damaged" in warnings[0] and "starting the canary over" in warnings[0]
