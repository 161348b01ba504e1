"""The GitHub client against the local emulator over real HTTP."""

import io
import time
import zipfile

import pytest

from tests.emulator import traffic
from tw_gates.core import metrics
from tw_gates.core.errors import UsageError
from tw_gates.core.github_client import (
    DeadlineExceeded,
    GitHubClient,
    UnexpectedAnswer,
    WritePacer,
    client_from_settings,
    endpoint_of,
)
from tw_gates.core.settings import GitHubSettings, load_settings

TOKEN = "ghp_" + "T" * 36


@pytest.fixture
def emu(github_emulator):
    github_emulator.add_token(TOKEN, login="octocat", kind="user", scopes=["repo"])
    github_emulator.add_repo("acme/central", collaborators={"octocat": "admin"})
    return github_emulator


def client(emu, **kw):
    kw.setdefault("backoff_s", 0.01)
    return GitHubClient(TOKEN, emu.url, timeout=5, **kw)


def test_endpoint_labels_have_bounded_cardinality():
    assert (
        endpoint_of("get", "https://api.github.com/repos/a/b/issues/12/comments?page=2")
        == "GET /repos/{owner}/{repo}/issues/{n}/comments"
    )
    assert (
        endpoint_of("GET", "http://ghe.local/api/v3/repos/a/b/labels/tw-gates")
        == "GET /repos/{owner}/{repo}/labels/{name}"
    )
    assert (
        endpoint_of("GET", "/repos/a/b/branches/main/protection")
        == "GET /repos/{owner}/{repo}/branches/{name}/protection"
    )


def test_settings_select_the_api_and_calls_are_counted_like_the_server_saw_them(emu, monkeypatch):
    monkeypatch.setenv("GITHUB_API_URL", emu.url)
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    gh = client_from_settings(load_settings(GitHubSettings))
    repo = gh.repo("acme/central")
    for n in range(3):
        repo.create_issue(title=f"t{n}", labels=["tw-gates"])
    assert len(list(repo.get_issues(state="open", labels=["tw-gates"]))) == 3
    assert gh.calls.total == emu.count() == 4
    assert gh.calls.by_endpoint["POST /repos/{owner}/{repo}/issues"] == 3
    assert gh.calls.writes == 3
    assert gh.calls.quota_remaining is not None and gh.calls.quota_remaining < 5000


def test_5xx_burst_is_retried_and_each_attempt_counted(emu):
    emu.inject("server_error", path=r"/issues$", method="POST", times=2, status=502)
    gh = client(emu)
    gh.repo("acme/central").create_issue(title="survives")
    assert [i["title"] for i in emu.issues("acme/central")] == ["survives"]
    assert gh.calls.retries["POST /repos/{owner}/{repo}/issues"] == 2
    assert emu.count(method="POST") == 3


def test_secondary_rate_limit_429_honours_retry_after(emu):
    emu.inject("secondary_rate_limit", status=429, retry_after=1, path=r"/repos/acme/central$")
    gh = client(emu)
    started = time.monotonic()
    assert gh.repo("acme/central").default_branch == "main"
    assert time.monotonic() - started >= 0.9


def test_waits_past_the_deadline_fail_fast_instead(emu):
    emu.inject("primary_rate_limit", reset_in=600, path=r"/repos/acme/central$")
    gh = client(emu, deadline=time.time() + 5)
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded, match="passes the deadline"):
        _ = gh.repo("acme/central").default_branch
    assert time.monotonic() - started < 3
    emu.clear_faults()
    emu.inject("secondary_rate_limit", status=403, retry_after=120, path=r"/repos/acme/central$")
    with pytest.raises(DeadlineExceeded):
        _ = client(emu, deadline=time.time() + 5).repo("acme/central").default_branch


def test_rate_limit_endpoint_does_not_spend_quota(emu):
    gh = client(emu)
    first, _ = gh.rate_limit_remaining()
    second, reset = gh.rate_limit_remaining()
    assert first == second and reset > time.time()


def test_download_follows_redirect_without_leaking_the_token(emu):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a.json", "{}")
    run = emu.add_workflow_run("acme/central")
    artifact = emu.add_artifact("acme/central", "phase-0-complete", files={"a.json": b"{}"}, run_id=run)
    gh = client(emu)
    data = gh.download(f"{emu.url}/repos/acme/central/actions/artifacts/{artifact}/zip")
    assert zipfile.ZipFile(io.BytesIO(data)).read("a.json") == b"{}"
    blob_requests = [r for r in emu.requests if "zip" not in r.path and r.method == "GET"]
    assert blob_requests and not any(r.sent_token for r in blob_requests)


def test_publish_metrics(emu, tmp_path):
    sink = metrics.MetricsSink(tmp_path)
    metrics.configure(sink)
    gh = client(emu)
    _ = gh.repo("acme/central").default_branch
    gh.publish_metrics()
    text = sink.flush().read_text()
    assert 'tw_gates_github_api_calls_total{endpoint="GET /repos/{owner}/{repo}"} 1.0' in text
    assert "github_api_quota_remaining" in text


def test_missing_token_is_a_clear_error(monkeypatch):
    with pytest.raises(UsageError, match="GITHUB_TOKEN"):
        client_from_settings(load_settings(GitHubSettings))


# ------------------------------------------------------------------ GitHub's contract (issue 13)


def test_every_request_says_its_api_version_media_type_and_who_sends_it(emu):
    seen = []
    traffic.add_observer(seen.append)
    try:
        gh = client(emu)
        gh.rate_limit_remaining()
        gh.write("POST", "/repos/acme/central/issues", {"title": "t"}, expect=201)
    finally:
        traffic.remove_observer(seen.append)
    assert len(seen) == 2
    for exchange in seen:
        assert exchange.headers["x-github-api-version"] == "2022-11-28"
        assert exchange.headers["accept"] == "application/vnd.github+json"
        assert exchange.headers["user-agent"].startswith("tw-gates/")


@pytest.mark.parametrize("url", ["ghe.example.com/api/v3", "ftp://ghe.example.com", "https://"])
def test_an_api_url_without_scheme_or_host_is_a_one_line_usage_error(url):
    with pytest.raises(UsageError, match=r"^GITHUB_API_URL must be a URL with its scheme") as exc:
        GitHubClient(TOKEN, url)
    assert "\n" not in str(exc.value)


def test_a_write_is_done_only_on_its_documented_success(emu):
    emu.inject("unexpected_status", method="POST", path=r"/issues$", status=200, times=1)
    gh = client(emu, retries=2)
    created = gh.write("POST", "/repos/acme/central/issues", {"title": "second try"}, expect=201)
    assert created["title"] == "second try" and emu.count("POST") == 2
    emu.inject("unexpected_status", method="POST", path=r"/issues$", status=302, times=None)
    with pytest.raises(UnexpectedAnswer, match="answered 302, not the documented 201"):
        gh.write("POST", "/repos/acme/central/issues", {"title": "never"}, expect=201)
    assert emu.count("POST") == 5  # 1 + 2 retries
    emu.clear_faults()
    with pytest.raises(UnexpectedAnswer):  # the deadline allows no retry
        client(emu, retries=5, deadline=time.time() + 0.5, backoff_s=1).write(
            "POST", "/repos/acme/central/issues", {"title": "x"}, expect=204
        )


def test_a_429_without_quota_waits_for_the_reset_or_fails_fast(emu):
    emu.inject("primary_rate_limit", status=429, reset_in=3600, path=r"/repos/acme/central$", times=None)
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded, match="passes the deadline"):
        client(emu, deadline=time.time() + 600).request_json("GET", "/repos/acme/central")
    assert time.monotonic() - started < 3 and emu.count("GET", r"/repos/acme/central$") == 1
    with pytest.raises(DeadlineExceeded, match="longer than 900s"):  # no deadline: still no hour-long sleep
        client(emu).request_json("GET", "/repos/acme/central")
    emu.clear_faults()
    emu.inject("primary_rate_limit", status=429, reset_in=1, path=r"/repos/acme/central$", times=1)
    started = time.monotonic()
    assert client(emu, deadline=time.time() + 60).request_json("GET", "/repos/acme/central")["name"] == "central"
    assert time.monotonic() - started >= 1.0  # until the reset (+1 s), not a quick backoff


def test_writes_are_paced_and_the_pacer_cannot_be_pushed_past_githubs_limits():
    assert WritePacer(1.0).seconds_for(10) == pytest.approx(9.0)
    fast = WritePacer(0.0)  # even with no interval asked for:
    assert fast.seconds_for(80) == 0 and fast.seconds_for(81) == pytest.approx(60.0)
    assert fast.seconds_for(501) >= 3600  # 500 an hour
    assert WritePacer(1.0).seconds_for(1000) >= 3600  # a lifted cap cannot file 1,000 in an hour
    paced = WritePacer(0.3, deadline=time.time() + 0.5)
    started = time.monotonic()
    paced.wait()
    paced.wait()
    assert time.monotonic() - started >= 0.29
    with pytest.raises(DeadlineExceeded, match="pacing writes"):
        paced.wait()
        paced.wait()
