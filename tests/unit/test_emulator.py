"""Tests of the GitHub REST emulator, driven over real HTTP by PyGithub and requests (no mocks)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import github
import pytest
import requests
from github import GithubException, GithubRetry

from tests.emulator import GitHubEmulator
from tests.emulator.fixtures import github_emulator, pygithub_client  # noqa: F401 (fixture)

REPO = "acme/widgets"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def emu(github_emulator: GitHubEmulator) -> GitHubEmulator:  # noqa: F811 (the fixture, by name)
    e = github_emulator
    e.add_repo(REPO, collaborators={"writer": "write", "reader": "read"})
    e.add_repo("acme/secret", private=True)
    e.add_token("pat", login="writer", kind="user", scopes=["repo", "workflow"])
    e.add_token("reader-pat", login="reader", kind="user")
    e.add_token(
        "gh-actions",
        kind="actions",
        repo_permissions={REPO: {"issues": "write", "contents": "read", "actions": "read"}},
    )
    e.add_token("app", kind="app", repo_permissions={REPO: {"issues": "read", "administration": "read"}})
    e.add_token("fg", login="writer", kind="fine_grained", repo_permissions={REPO: {"issues": "read"}})
    return e


def http(emu: GitHubEmulator, method: str, path: str, token: str | None = "pat", **kw) -> requests.Response:
    headers = kw.pop("headers", {})
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return requests.request(method, emu.url + path, headers=headers, timeout=5, **kw)


# ------------------------------------------------------------------ identity and permissions


def test_user_and_repo_permissions_by_token_kind(emu):
    gh = pygithub_client(emu, "pat")
    assert gh.get_user().login == "writer"
    repo = gh.get_repo(REPO)
    assert repo.default_branch == "main" and repo.permissions.push and not repo.permissions.admin
    assert gh.get_repo(REPO).full_name == REPO

    resp = http(emu, "GET", f"/repos/{REPO}", token="pat")
    assert resp.headers["X-OAuth-Scopes"] == "repo, workflow"
    assert resp.headers["X-Accepted-GitHub-Permissions"] == "metadata=read"
    actions_view = http(emu, "GET", f"/repos/{REPO}", token="gh-actions")
    assert "permissions" not in actions_view.json() and "X-OAuth-Scopes" not in actions_view.headers
    assert http(emu, "GET", f"/repos/{REPO}/collaborators/reader/permission").json()["permission"] == "read"
    assert pygithub_client(emu, "pat").get_repo(REPO).get_collaborator_permission("writer") == "write"


def test_authentication_errors(emu):
    with pytest.raises(github.BadCredentialsException):
        _ = pygithub_client(emu, "nope").get_user().login
    assert http(emu, "GET", "/user", token=None).status_code == 401
    for kind_token in ("gh-actions", "app"):
        resp = http(emu, "GET", "/user", token=kind_token)
        assert resp.status_code == 403 and resp.json()["message"] == "Resource not accessible by integration"
    assert http(emu, "GET", "/user", token="fg").json()["login"] == "writer"


def test_permission_denials_look_like_github(emu):
    denied = http(emu, "POST", f"/repos/{REPO}/issues", token="app", json={"title": "x"})
    assert denied.status_code == 403
    assert denied.json()["message"] == "Resource not accessible by integration"
    assert denied.headers["X-Accepted-GitHub-Permissions"] == "issues=write"
    fg = http(emu, "POST", f"/repos/{REPO}/issues", token="fg", json={"title": "x"})
    assert fg.status_code == 403 and "personal access token" in fg.json()["message"]
    # private repo the token cannot see: 404 for every kind
    for token in ("pat", "gh-actions"):
        assert http(emu, "GET", "/repos/acme/secret", token=token).status_code == 404
    with pytest.raises(github.UnknownObjectException):
        pygithub_client(emu, "pat").get_repo("acme/secret")
    # classic PAT with read role cannot write
    assert http(emu, "POST", f"/repos/{REPO}/labels", token="reader-pat", json={"name": "x"}).status_code == 403
    # actions token: reads and issue writes are fine
    issue = pygithub_client(emu, "gh-actions").get_repo(REPO).create_issue("from a workflow")
    assert issue.user.login == "github-actions[bot]" and issue.user.type == "Bot"


# ------------------------------------------------------------------ issues, comments, labels


def test_issue_lifecycle_labels_and_comments(emu):
    repo = pygithub_client(emu, "gh-actions").get_repo(REPO)
    issue = repo.create_issue("Gate failed", body="details", labels=["gate", "sev:high"], assignees=["writer"])
    assert issue.number == 1 and issue.state == "open" and [a.login for a in issue.assignees] == ["writer"]
    assert sorted(lb.name for lb in issue.labels) == ["gate", "sev:high"]
    assert repo.get_label("sev:high").color == "ededed"  # auto-created
    with pytest.raises(github.UnknownObjectException):
        repo.get_label("absent")
    repo.create_label("triaged", "00ff00", description="seen")
    added = http(emu, "POST", f"/repos/{REPO}/issues/1/labels", token="gh-actions", json={"labels": ["triaged"]})
    assert added.status_code == 200 and "triaged" in {lb["name"] for lb in added.json()}
    assert {lb.name for lb in repo.get_issue(1).labels} == {"gate", "sev:high", "triaged"}

    issue.edit(title="Gate failed (2)", body="more", state="closed", state_reason="not_planned", labels=["gate"])
    fresh = repo.get_issue(1)
    assert (fresh.title, fresh.body, fresh.state, fresh.state_reason) == (
        "Gate failed (2)",
        "more",
        "closed",
        "not_planned",
    )
    assert fresh.closed_at is not None and [lb.name for lb in fresh.labels] == ["gate"]
    fresh.edit(state="open")
    assert repo.get_issue(1).state_reason == "reopened" and repo.get_issue(1).closed_at is None

    issue.create_comment("first")
    comment = issue.create_comment("second")
    comment.edit("second, edited")
    assert [c.body for c in issue.get_comments()] == ["first", "second, edited"]
    assert repo.get_issue(1).comments == 2
    assert [c["body"] for c in emu.comments(REPO, 1)] == ["first", "second, edited"]
    assert emu.issues(REPO)[0]["title"] == "Gate failed (2)"
    assert {"gate", "sev:high", "triaged"} <= set(emu.labels(REPO))


def test_issue_list_filters(emu):
    emu.add_issue(REPO, "old open", labels=["a"], created_at=time.time() - 100)
    emu.add_issue(REPO, "closed", labels=["a", "b"], state="closed")
    emu.add_issue(REPO, "new open", labels=["b"])
    repo = pygithub_client(emu, "pat").get_repo(REPO)
    assert [i.title for i in repo.get_issues()] == ["new open", "old open"]
    assert [i.title for i in repo.get_issues(state="all", labels=["a", "b"])] == ["closed"]
    assert next(i.title for i in repo.get_issues(state="all", direction="asc")) == "old open"
    since = [
        i.title
        for i in repo.get_issues(
            state="all",
            since=github.GithubObject.datetime.fromtimestamp(time.time() - 50, tz=github.GithubObject.timezone.utc),
        )
    ]
    assert "old open" not in since and len(since) == 2


def test_pagination_link_headers_and_total_count(emu):
    for n in range(250):
        emu.add_issue(REPO, f"issue {n}", created_at=1_700_000_000 + n)
    first = http(emu, "GET", f"/repos/{REPO}/issues", params={"per_page": 100})
    assert len(first.json()) == 100
    assert first.headers["Link"] == (
        f'<{emu.url}/repos/{REPO}/issues?per_page=100&page=2>; rel="next", '
        f'<{emu.url}/repos/{REPO}/issues?per_page=100&page=3>; rel="last"'
    )
    third = http(emu, "GET", f"/repos/{REPO}/issues", params={"per_page": 100, "page": 3})
    assert (
        len(third.json()) == 50 and 'rel="prev"' in third.headers["Link"] and 'rel="next"' not in third.headers["Link"]
    )

    gh = pygithub_client(emu, "pat", per_page=100)
    emu.clear_requests()
    issues = list(gh.get_repo(REPO).get_issues())
    assert len(issues) == 250 and issues[0].title == "issue 249"
    assert emu.count("GET", r"/issues$") == 3
    assert gh.get_repo(REPO).get_issues().totalCount == 250


def test_validation_and_unknown_routes(emu):
    with emu.unchecked():  # off GitHub's contract on purpose
        missing = http(emu, "POST", f"/repos/{REPO}/issues", json={"body": "no title"})
        bad = http(
            emu, "POST", f"/repos/{REPO}/issues", data=b"{not json", headers={"Content-Type": "application/json"}
        )
        unknown = http(emu, "GET", "/no/such/thing")
        wrong_version = http(emu, "GET", f"/repos/{REPO}", headers={"X-GitHub-Api-Version": "2021-01-01"})
    assert missing.status_code == 422 and missing.json()["message"] == "Validation Failed"
    assert missing.json()["errors"][0] == {"resource": "Issue", "code": "missing_field", "field": "title"}
    assert bad.status_code == 400 and bad.json()["message"] == "Problems parsing JSON"
    assert wrong_version.status_code == 400 and "2021-01-01" in wrong_version.json()["message"]
    assert unknown.status_code == 404 and unknown.json()["documentation_url"].startswith("https://docs.github.com")
    assert http(emu, "GET", f"/repos/{REPO}/issues/99").status_code == 404
    dup = http(emu, "POST", f"/repos/{REPO}/labels", json={"name": "x"})
    assert dup.status_code == 201
    assert (
        http(emu, "POST", f"/repos/{REPO}/labels", json={"name": "X"}).json()["errors"][0]["code"] == "already_exists"
    )


def test_concurrent_creation_is_thread_safe(emu):
    def create(k: int) -> None:
        repo = pygithub_client(emu, "pat").get_repo(REPO)
        for j in range(5):
            repo.create_issue(f"t{k}-{j}")

    threads = [threading.Thread(target=create, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(i["number"] for i in emu.issues(REPO)) == list(range(1, 31))


# ------------------------------------------------------------------ rate limits and conditional requests


def test_rate_limit_headers_and_rate_limit_endpoint(emu):
    emu.set_rate_limit(remaining=10, limit=10, reset_in=3600)
    r1 = http(emu, "GET", f"/repos/{REPO}")
    r2 = http(emu, "GET", f"/repos/{REPO}")
    assert (r1.headers["X-RateLimit-Remaining"], r2.headers["X-RateLimit-Remaining"]) == ("9", "8")
    assert r2.headers["X-RateLimit-Used"] == "2" and r2.headers["X-RateLimit-Resource"] == "core"
    assert int(r2.headers["X-RateLimit-Reset"]) > time.time()
    gh = pygithub_client(emu, "pat")
    assert gh.get_rate_limit().resources.core.remaining == 8
    assert gh.get_rate_limit().resources.core.remaining == 8  # /rate_limit is free
    assert gh.get_rate_limit().resources.search.limit == 30

    emu.set_rate_limit(remaining=0, limit=10, reset_in=600)
    with pytest.raises(github.RateLimitExceededException) as exc:
        gh.get_repo(REPO)
    assert exc.value.status == 403 and exc.value.headers["x-ratelimit-remaining"] == "0"
    assert "API rate limit exceeded for user ID" in exc.value.data["message"]


def test_etag_conditional_request_is_free(emu):
    first = http(emu, "GET", f"/repos/{REPO}/issues")
    etag = first.headers["ETag"]
    again = http(emu, "GET", f"/repos/{REPO}/issues", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["X-RateLimit-Remaining"] == first.headers["X-RateLimit-Remaining"]
    emu.add_issue(REPO, "changes the list")
    assert http(emu, "GET", f"/repos/{REPO}/issues", headers={"If-None-Match": etag}).status_code == 200


# ------------------------------------------------------------------ faults


def test_server_error_burst_is_retried_by_github_retry(emu):
    emu.inject("server_error", method="POST", path=r"/issues$", times=2, status=502)
    gh = pygithub_client(emu, "pat", retry=GithubRetry(total=3, backoff_factor=0.01))
    assert gh.get_repo(REPO).create_issue("survives").number == 1
    assert emu.count("POST", r"/issues$") == 3 and emu.count(status=502) == 2

    emu.inject("server_error", path=r"/issues/1$", times=None)
    flaky = pygithub_client(emu, "pat", retry=GithubRetry(total=1, backoff_factor=0.01)).get_repo(REPO)
    with pytest.raises(requests.exceptions.RetryError):  # what PyGithub raises once retries run out
        flaky.get_issue(1)
    with pytest.raises(GithubException) as exc:  # without retries: a plain GithubException
        pygithub_client(emu, "pat").get_repo(REPO).get_issue(1)
    assert exc.value.status == 500


def test_after_lets_earlier_requests_succeed(emu):
    emu.inject("server_error", method="POST", path=r"/issues$", after=2, times=1)
    repo = pygithub_client(emu, "pat").get_repo(REPO)
    repo.create_issue("one")
    repo.create_issue("two")
    with pytest.raises(GithubException) as exc:
        repo.create_issue("three")
    assert exc.value.status == 500
    repo.create_issue("three, again")
    assert [i["title"] for i in emu.issues(REPO)] == ["one", "two", "three, again"]


def test_primary_rate_limit_fault(emu):
    emu.inject("primary_rate_limit", path=f"/repos/{REPO}$", reset_in=120)
    with pytest.raises(github.RateLimitExceededException) as exc:
        pygithub_client(emu, "gh-actions").get_repo(REPO)
    reset = int(exc.value.headers["x-ratelimit-reset"])
    assert exc.value.headers["x-ratelimit-remaining"] == "0" and 110 < reset - time.time() <= 121
    assert "installation ID" in exc.value.data["message"]

    emu.inject("primary_rate_limit", path=f"/repos/{REPO}$", reset_in=0)
    gh = pygithub_client(emu, "pat", retry=GithubRetry(total=2, backoff_factor=0.01))
    assert gh.get_repo(REPO).full_name == REPO  # GithubRetry waited for the reset, then retried


def test_secondary_rate_limit_429_with_retry_after(emu):
    emu.inject("secondary_rate_limit", method="POST", status=429, retry_after=1)
    gh = pygithub_client(emu, "pat", retry=GithubRetry(total=2, backoff_factor=0.01))
    started = time.monotonic()
    gh.get_repo(REPO).create_issue("after a pause")
    assert time.monotonic() - started >= 1.0
    statuses = [r.status for r in emu.requests if r.method == "POST"]
    assert statuses == [429, 201]

    emu.inject("secondary_rate_limit", retry_after=None)
    with pytest.raises(github.RateLimitExceededException) as exc:
        pygithub_client(emu, "pat").get_repo(REPO)
    assert exc.value.data["message"].startswith("You have exceeded a secondary rate limit")


def test_denial_not_found_latency_and_hang_faults(emu):
    emu.inject("permission_denied", path=r"/labels", permissions="issues=write")
    resp = http(emu, "GET", f"/repos/{REPO}/labels")
    assert resp.status_code == 403 and resp.headers["X-Accepted-GitHub-Permissions"] == "issues=write"
    assert http(emu, "GET", f"/repos/{REPO}/labels").status_code == 200  # times=1
    emu.inject("not_found", method="GET", path=r"^/user$")
    assert http(emu, "GET", "/user").status_code == 404

    emu.inject("latency", path=r"^/rate_limit$", seconds=0.3)
    started = time.monotonic()
    assert http(emu, "GET", "/rate_limit").status_code == 200
    assert time.monotonic() - started >= 0.3

    emu.inject("timeout_hang", method="POST", seconds=1, process=True)
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post(
            f"{emu.url}/repos/{REPO}/issues",
            json={"title": "landed anyway"},
            headers={"Authorization": "token pat"},
            timeout=0.3,
        )
    deadline = time.monotonic() + 5
    while not emu.issues(REPO) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert emu.issues(REPO)[0]["title"] == "landed anyway"  # the classic "timed out but written" case
    assert next(f for f in emu.faults.faults if f.kind == "timeout_hang").fired == 1

    emu.inject("timeout_hang", path=r"^/user$", seconds=60)  # default: never answers, request not applied
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(f"{emu.url}/user", headers={"Authorization": "token pat"}, timeout=0.2)
    started = time.monotonic()
    emu.stop()  # wakes the hanging handler instead of waiting 60 s
    assert time.monotonic() - started < 2

    with pytest.raises(ValueError):
        emu.inject("meteor_strike")
    with pytest.raises(ValueError):
        emu.inject("latency", status=500)


# ------------------------------------------------------------------ search


def test_search_issues_with_indexing_lag(emu):
    emu.add_issue(REPO, "Gate failure in build", body="token leak", labels=["gate"], created_at=time.time() - 60)
    emu.add_issue(REPO, "Unrelated", labels=["gate"], state="closed", created_at=time.time() - 60)
    emu.search_lag_seconds = 30
    gh = pygithub_client(emu, "pat")
    gh.get_repo(REPO).create_issue("Gate failure fresh", labels=["gate"])

    results = gh.search_issues(f"repo:{REPO} label:gate is:issue is:open gate failure in:title")
    assert results.totalCount == 1 and results[0].title == "Gate failure in build"
    assert gh.search_issues(f'repo:{REPO} "token leak" in:body').totalCount == 1
    emu.search_lag_seconds = 0
    assert gh.search_issues(f"repo:{REPO} gate failure").totalCount == 2

    resp = http(emu, "GET", "/search/issues", params={"q": f"repo:{REPO} gate"})
    assert resp.headers["X-RateLimit-Resource"] == "search" and resp.headers["X-RateLimit-Limit"] == "30"
    hidden = http(emu, "GET", "/search/issues", params={"q": "repo:acme/secret x"})
    assert hidden.status_code == 422


# ------------------------------------------------------------------ branch protection and rulesets


def test_branch_protection(emu):
    admin = "admin-pat"
    emu.add_token(admin, login="acme")  # the owner is admin
    branch = pygithub_client(emu, admin).get_repo(REPO).get_branch("main")
    with pytest.raises(GithubException) as exc:
        branch.get_protection()
    assert exc.value.status == 404 and exc.value.data["message"] == "Branch not protected"

    emu.set_branch_protection(REPO, "main", contexts=["gates / verify", "ci"], strict=True)
    branch = pygithub_client(emu, admin).get_repo(REPO).get_branch("main")
    assert branch.protected
    checks = branch.get_protection().required_status_checks
    assert checks.contexts == ["gates / verify", "ci"] and checks.strict
    assert branch.get_required_status_checks().contexts == ["gates / verify", "ci"]

    # GitHub hides protection from callers without admin rights behind a 404, the answer it
    # also gives for an unprotected branch; the branch itself summarises it for every reader.
    for token in ("gh-actions", "pat"):
        hidden = http(emu, "GET", f"/repos/{REPO}/branches/main/protection/required_status_checks", token=token)
        assert hidden.status_code == 404
        summary = http(emu, "GET", f"/repos/{REPO}/branches/main", token=token).json()
        assert summary["protected"] is True and summary["protection"]["enabled"] is True
        assert summary["protection"]["required_status_checks"]["contexts"] == ["gates / verify", "ci"]
    assert http(emu, "GET", f"/repos/{REPO}/branches/main/protection", token="app").status_code == 200
    plain = http(emu, "GET", f"/repos/{REPO}/branches/main", token="pat")
    emu.remove_branch_protection(REPO, "main")
    unprotected = http(emu, "GET", f"/repos/{REPO}/branches/main", token="pat").json()
    assert plain.status_code == 200 and unprotected["protected"] is False
    assert unprotected["protection"]["required_status_checks"]["enforcement_level"] == "off"


def test_rulesets_and_rules_for_branch(emu):
    active = emu.add_ruleset(
        REPO,
        "gates",
        branch_patterns=["~DEFAULT_BRANCH"],
        required_checks=["gates / verify", {"context": "ci", "integration_id": 15368}],
    )
    emu.add_ruleset(
        REPO, "trial", branch_patterns=["refs/heads/main"], required_checks=["soon"], enforcement="evaluate"
    )
    emu.add_ruleset(REPO, "releases", branch_patterns=["refs/heads/release/*"], required_checks=["rel"])

    rules = http(emu, "GET", f"/repos/{REPO}/rules/branches/main", token="gh-actions").json()
    assert len(rules) == 1 and rules[0]["type"] == "required_status_checks"
    assert rules[0]["ruleset_id"] == active and rules[0]["ruleset_source"] == REPO
    assert rules[0]["parameters"]["required_status_checks"] == [
        {"context": "gates / verify"},  # any app may report it: GitHub leaves integration_id out
        {"context": "ci", "integration_id": 15368},
    ]
    release = http(emu, "GET", f"/repos/{REPO}/rules/branches/release/1.2").json()
    assert [r["parameters"]["required_status_checks"][0]["context"] for r in release] == ["rel"]
    assert http(emu, "GET", f"/repos/{REPO}/rules/branches/feature").json() == []

    listing = http(emu, "GET", f"/repos/{REPO}/rulesets").json()
    assert [(r["name"], r["enforcement"]) for r in listing] == [
        ("gates", "active"),
        ("trial", "evaluate"),
        ("releases", "active"),
    ]
    detail = http(emu, "GET", f"/repos/{REPO}/rulesets/{active}").json()
    assert detail["conditions"]["ref_name"]["include"] == ["~DEFAULT_BRANCH"] and detail["rules"]
    assert http(emu, "GET", f"/repos/{REPO}/rulesets/999999").status_code == 404


# ------------------------------------------------------------------ actions: runs, artifacts, dispatch


def test_artifacts_runs_and_zip_download(emu):
    run_id = emu.add_workflow_run(REPO, conclusion="failure", head_sha="a" * 40, name="gates")
    old = emu.add_artifact(
        REPO, "report", files={"report.json": b'{"ok": false}'}, run_id=run_id, created_at=time.time() - 10
    )
    new = emu.add_artifact(REPO, "report", files={"report.json": b'{"ok": true}', "dir/log.txt": "hi"})
    gone = emu.add_artifact(REPO, "old-logs", files={"x": b"y"}, expired=True)

    repo = pygithub_client(emu, "gh-actions").get_repo(REPO)
    arts = list(repo.get_artifacts("report"))
    assert [a.id for a in arts] == [new, old]
    assert arts[1].workflow_run.id == run_id and arts[1].workflow_run.head_sha == "a" * 40
    assert repo.get_artifacts().totalCount == 3
    run = repo.get_workflow_run(run_id)
    assert (run.conclusion, run.status, run.head_sha, run.name) == ("failure", "completed", "a" * 40, "gates")
    assert [a.id for a in run.get_artifacts()] == [old]

    zip_url = repo.get_artifact(new).archive_download_url
    redirect = requests.get(zip_url, headers={"Authorization": "Bearer gh-actions"}, allow_redirects=False, timeout=5)
    assert redirect.status_code == 302
    assert redirect.headers["Location"].startswith(f"http://localhost:{emu.port}/_blobs/")  # another host
    resp = requests.get(zip_url, headers={"Authorization": "Bearer gh-actions"}, timeout=5)
    with zipfile.ZipFile(io.BytesIO(resp.content)) as zf:
        assert zf.read("report.json") == b'{"ok": true}' and zf.read("dir/log.txt") == b"hi"
    [blob_request] = [r for r in emu.requests if r.path.startswith("/_blobs/")]
    assert not blob_request.sent_token  # requests dropped the token on the cross-host redirect
    assert http(emu, "GET", f"/repos/{REPO}/actions/artifacts/{gone}/zip", token="gh-actions").status_code == 410
    # an explicit grant is authoritative: the app was not given "actions"
    no_actions = http(emu, "GET", f"/repos/{REPO}/actions/artifacts", token="app")
    assert no_actions.status_code == 403 and no_actions.headers["X-Accepted-GitHub-Permissions"] == "actions=read"


def test_repository_dispatch(emu):
    repo = pygithub_client(emu, "pat").get_repo(REPO)
    assert repo.create_repository_dispatch("tw-gates-alert", {"gate": "g1", "n": 3}) is True
    [dispatch] = emu.dispatches(REPO)
    assert dispatch["event_type"] == "tw-gates-alert" and dispatch["client_payload"] == {"gate": "g1", "n": 3}
    with emu.unchecked():
        assert http(emu, "POST", f"/repos/{REPO}/dispatches", json={}).status_code == 422
    denied = http(emu, "POST", f"/repos/{REPO}/dispatches", token="gh-actions", json={"event_type": "x"})
    assert denied.status_code == 403 and denied.headers["X-Accepted-GitHub-Permissions"] == "contents=write"


# ------------------------------------------------------------------ state files and standalone mode


def test_state_round_trip(emu):
    emu.add_issue(REPO, "kept", labels=["l"])
    emu.set_branch_protection(REPO, "main", contexts=["ci"])
    emu.add_ruleset(REPO, "r", required_checks=["ci"])
    emu.add_artifact(REPO, "a", files={"f.txt": b"\x00\x01"})
    dumped = json.loads(json.dumps(emu.dump_state()))
    with GitHubEmulator.from_state(dumped) as twin:
        assert twin.dump_state() == dumped
        repo = pygithub_client(twin, "pat").get_repo(REPO)
        assert repo.get_issue(1).title == "kept"
        [art] = list(repo.get_artifacts())
        blob = requests.get(art.archive_download_url, headers={"Authorization": "token pat"}, timeout=5).content
        assert zipfile.ZipFile(io.BytesIO(blob)).read("f.txt") == b"\x00\x01"


def test_standalone_mode(tmp_path):
    state = {
        "tokens": [{"token": "t0", "login": "octocat", "kind": "user"}],
        "repos": [
            {
                "full_name": "o/r",
                "private": True,
                "collaborators": {"octocat": "write"},
                "artifacts": [{"name": "sbom", "files": {"a.txt": "aGVsbG8="}}],
            }
        ],
    }
    state_file = tmp_path / "state.json"
    state_file.write_text(json.dumps(state))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.emulator", "--port", "0", "--state", str(state_file)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("EMULATOR_URL=http://127.0.0.1:")
        url = line.split("=", 1)[1]
        auth = {"Authorization": "token t0"}
        assert requests.get(f"{url}/repos/o/r", headers=auth, timeout=5).json()["private"] is True
        requests.post(f"{url}/_emulator/faults", json={"kind": "server_error", "path": "/issues$"}, timeout=5)
        assert requests.post(f"{url}/repos/o/r/issues", json={"title": "t"}, headers=auth, timeout=5).status_code == 500
        assert requests.post(f"{url}/repos/o/r/issues", json={"title": "t"}, headers=auth, timeout=5).status_code == 201
        log = requests.get(f"{url}/_emulator/requests", timeout=5).json()
        assert [(r["method"], r["status"]) for r in log] == [("GET", 200), ("POST", 500), ("POST", 201)]
        dumped = requests.get(f"{url}/_emulator/state", timeout=5).json()
        assert dumped["repos"][0]["issues"][0]["title"] == "t"
        assert dumped["repos"][0]["artifacts"][0]["files"] == {"a.txt": "aGVsbG8="}
        dumped["repos"][0]["issues"] = []
        assert requests.post(f"{url}/_emulator/state", json=dumped, timeout=5).status_code == 200
        assert requests.get(f"{url}/repos/o/r/issues", headers=auth, timeout=5).json() == []
    finally:
        proc.terminate()
        proc.wait(timeout=5)
    assert proc.returncode == 0
