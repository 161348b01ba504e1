"""The emulator answers as GitHub does where a kinder answer would hide a client's bug:
per-actor quotas, token-scoped ETags, secondary limits, 403 or 429, labels dropped
for users without push access, protection hidden from non-admins. Real HTTP, no mocks."""

from __future__ import annotations

import time

import pytest
import requests

from tests.emulator import GitHubEmulator

REPO = "acme/widgets"


@pytest.fixture
def emu(github_emulator: GitHubEmulator) -> GitHubEmulator:
    e = github_emulator
    e.add_repo(REPO, collaborators={"writer": "write", "reader": "read", "triager": "triage"})
    e.add_repo("acme/other")
    e.add_token("pat-1", login="writer", kind="user")
    e.add_token("pat-2", login="writer", kind="fine_grained", repo_permissions={REPO: {"issues": "write"}})
    e.add_token("reader", login="reader", kind="user")
    e.add_token("triager", login="triager", kind="user")
    e.add_token("run-1", kind="actions", repo_permissions={REPO: {"issues": "write"}})
    e.add_token("run-2", kind="actions", repo_permissions={REPO: {"issues": "write"}})
    e.add_token("other-run", kind="actions", repo_permissions={"acme/other": {"issues": "write"}})
    e.add_token("app", kind="app", repo_permissions={REPO: {"issues": "write"}})
    return e


def call(emu: GitHubEmulator, method: str, path: str, token: str, **kw) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}", "X-GitHub-Api-Version": "2022-11-28", **kw.pop("headers", {})}
    return requests.request(method, emu.url + path, headers=headers, timeout=5, **kw)


def remaining(resp: requests.Response) -> int:
    return int(resp.headers["X-RateLimit-Remaining"])


def test_quota_belongs_to_the_user_the_installation_or_the_workflow_repository(emu):
    # A user's tokens share the user's 5,000; a GITHUB_TOKEN has 1,000 per repository.
    a, b = call(emu, "GET", f"/repos/{REPO}", "pat-1"), call(emu, "GET", f"/repos/{REPO}", "pat-2")
    assert a.headers["X-RateLimit-Limit"] == "5000" and remaining(b) == remaining(a) - 1
    run1, run2 = call(emu, "GET", f"/repos/{REPO}", "run-1"), call(emu, "GET", f"/repos/{REPO}", "run-2")
    assert run1.headers["X-RateLimit-Limit"] == "1000" and remaining(run2) == remaining(run1) - 1
    other = call(emu, "GET", f"/repos/{REPO}", "other-run")
    assert remaining(other) == 999  # another repository's workflow: its own 1,000
    assert remaining(call(emu, "GET", f"/repos/{REPO}", "app")) == 4999
    assert call(emu, "GET", "/rate_limit", "run-1").json()["resources"]["core"]["limit"] == 1000

    emu.set_rate_limit(remaining=0, token="run-1")  # one actor exhausted, the others not
    assert call(emu, "GET", f"/repos/{REPO}", "run-2").status_code == 403
    assert call(emu, "GET", f"/repos/{REPO}", "pat-1").status_code == 200
    assert emu.rate_remaining("pat-2") == 4997


def test_rate_limits_answer_403_or_429(emu):
    emu.rate_limit_status = 429
    emu.set_rate_limit(remaining=0, reset_in=3600, token="app")
    limited = call(emu, "GET", f"/repos/{REPO}", "app")
    assert limited.status_code == 429 and limited.headers["X-RateLimit-Remaining"] == "0"
    assert int(limited.headers["X-RateLimit-Reset"]) > time.time() + 3500
    assert limited.json()["message"].startswith("API rate limit exceeded for installation ID")


def test_etags_are_per_token(emu):
    first = call(emu, "GET", f"/repos/{REPO}/issues", "run-1")
    etag = first.headers["ETag"]
    same = call(emu, "GET", f"/repos/{REPO}/issues", "run-1", headers={"If-None-Match": etag})
    assert same.status_code == 304 and remaining(same) == remaining(first)
    # Next run's GITHUB_TOKEN is another token: GitHub's ETag does not match, the call is paid for.
    fresh = call(emu, "GET", f"/repos/{REPO}/issues", "run-2", headers={"If-None-Match": etag})
    assert fresh.status_code == 200 and remaining(fresh) == remaining(first) - 1


def test_bursts_of_writes_meet_the_secondary_limit(emu):
    emu.set_secondary_limits(content_per_minute=3)
    for n in range(3):
        assert call(emu, "POST", f"/repos/{REPO}/issues", "app", json={"title": f"t{n}"}).status_code == 201
    refused = call(emu, "POST", f"/repos/{REPO}/issues", "app", json={"title": "one too many"})
    assert refused.status_code == 403 and refused.json()["message"].startswith("You have exceeded a secondary")
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert len(emu.issues(REPO)) == 3  # not carried out
    assert call(emu, "GET", f"/repos/{REPO}/issues", "app").status_code == 200  # reads go on
    assert call(emu, "POST", f"/repos/{REPO}/issues", "pat-1", json={"title": "x"}).status_code == 201  # another actor

    emu.rate_limit_status = 429
    emu.set_secondary_limits(points_per_minute=3)  # one endpoint: 1 point a GET
    statuses = [call(emu, "GET", f"/repos/{REPO}/labels", "app").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


def test_documented_limits_are_the_defaults(emu):
    limits = emu.state.secondary_limits
    assert (limits.content_per_minute, limits.content_per_hour, limits.points_per_minute) == (80, 500, 900)


def test_labels_on_a_new_issue_need_push_access(emu):
    # "Any user with pull access can create an issue ... Only users with push access can set
    # labels for new issues. Labels are silently dropped otherwise."
    for token in ("reader", "triager"):
        made = call(emu, "POST", f"/repos/{REPO}/issues", token, json={"title": "t", "labels": ["tw-gates"]})
        assert made.status_code == 201 and made.json()["labels"] == [], token
        number = made.json()["number"]
        closed = call(emu, "PATCH", f"/repos/{REPO}/issues/{number}", token, json={"state": "closed"})
        assert closed.status_code == 200 and closed.json()["state"] == "closed"  # its author may close it
    assert call(emu, "POST", f"/repos/{REPO}/labels", "reader", json={"name": "x"}).status_code == 403
    for token in ("pat-1", "run-1", "app"):
        made = call(emu, "POST", f"/repos/{REPO}/issues", token, json={"title": "t", "labels": ["tw-gates"]})
        assert [lb["name"] for lb in made.json()["labels"]] == ["tw-gates"], token
    someone_elses = call(emu, "PATCH", f"/repos/{REPO}/issues/3", "reader", json={"body": "mine now"})
    assert someone_elses.status_code == 403


def test_branch_protection_is_hidden_from_non_admins_behind_a_404(emu):
    emu.set_branch_protection(REPO, "main", contexts=["ci"])
    emu.add_token("admin", login="acme")
    for token in ("pat-1", "run-1"):
        for tail in ("", "/required_status_checks"):
            hidden = call(emu, "GET", f"/repos/{REPO}/branches/main/protection{tail}", token)
            assert hidden.status_code == 404 and hidden.json()["message"] == "Not Found"
    assert call(emu, "GET", f"/repos/{REPO}/branches/main/protection/required_status_checks", "admin").ok
    summary = call(emu, "GET", f"/repos/{REPO}/branches/main", "run-1").json()
    assert summary["protection"]["required_status_checks"]["checks"] == [{"context": "ci", "app_id": None}]
