"""file-issues against GitHub's documented behaviour (issue 13): each test reproduces one
way GitHub answers that a kinder emulator hid, and checks that the run ends as GitHub's
documentation says it should - nothing lost, nothing filed twice. Real HTTP, no mocks."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import pytest

CENTRAL = "sec/central"
APP = "ghs_" + "P" * 36  # an installation token with issues: write
CLASSIC = "ghp_" + "C" * 36  # a classic token; its user's role decides about labels


def hit(repo: str, n: int = 1) -> dict:
    return {"repo": repo, "path": f"src/m{n}.py", "line": n, "pattern": "jinja2-from-string", "severity": "high"}


@pytest.fixture
def emu(github_emulator):
    github_emulator.add_repo(CENTRAL, collaborators={"triager": "triage", "outsider": "read"})
    github_emulator.add_token(APP, kind="app", repo_permissions={CENTRAL: {"issues": "write"}})
    return github_emulator


@pytest.fixture
def run(cli, emu, tmp_path):
    def invoke(hits: list[dict], *extra: str, token: str = APP, **env: str):
        (tmp_path / "audit.json").write_text(
            json.dumps(
                {
                    "audit_id": "audit-13",
                    "generated_at": "2026-03-01T00:00:00Z",
                    "exit_code": 2,
                    "checks": {},
                    "unregistered_hits": hits,
                }
            )
        )
        return cli(
            "file-issues",
            "--audit",
            tmp_path / "audit.json",
            "--central-repo",
            CENTRAL,
            "--fallback-dir",
            tmp_path / "fallback",
            *extra,
            env={"GITHUB_TOKEN": token, "GITHUB_API_URL": emu.url, "TW_GITHUB_BACKOFF": "0.05", **env},
        )

    return invoke


def fallback(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "fallback" / "issue-fallback-audit-13.json").read_text())


def open_issues(emu) -> list[dict]:
    return [i for i in emu.issues(CENTRAL) if i["state"] == "open"]


# ------------------------------------------------------------------ a write's answer


def test_a_write_answered_with_something_else_than_its_documented_success_is_not_done(run, emu, tmp_path):
    # POST /issues documents 201. A 200 (a proxy, a cache) is not a created issue.
    emu.inject("unexpected_status", method="POST", path=r"/issues$", status=200, times=None)
    code, out, err = run([hit("acme/a"), hit("acme/b", 2)], TW_GITHUB_RETRIES="2")
    assert code == 2 and "not the documented 201" in err
    assert emu.count("POST", r"/issues$") == 3  # tried again (twice), within the deadline; then stopped
    doc = fallback(tmp_path)
    assert doc["reason"] == "github_unavailable" and doc["issues_written"] == 0 and len(doc["findings"]) == 2
    assert "file-issues: created" not in out

    emu.clear_faults()
    emu.inject("unexpected_status", method="POST", path=r"/issues$", status=202, times=1)
    code, out, _ = run([hit("acme/a"), hit("acme/b", 2)])
    assert code == 0 and len(open_issues(emu)) == 2  # a retry got the 201


# ------------------------------------------------------------------ labels GitHub drops


def test_a_token_whose_user_cannot_label_falls_back_before_filing_anything(run, emu, tmp_path):
    # A classic token granted issues: write on the repository, for a user without push or triage:
    # the label probe passes, but GitHub would drop the label from every new issue.
    emu.add_token(CLASSIC, login="outsider", kind="user", repo_permissions={CENTRAL: {"issues": "write"}})
    for _ in range(3):
        code, _out, err = run([hit(f"acme/r{n}", n + 1) for n in range(3)], token=CLASSIC)
        assert code == 2 and "only users with push access can set labels for new issues" in err
        assert "push access (or triage)" in err
    assert emu.issues(CENTRAL) == []  # before: 3 runs left 9 unlabelled open issues
    assert fallback(tmp_path)["reason"] == "permission_denied" and len(fallback(tmp_path)["findings"]) == 3


def test_a_label_dropped_from_a_new_issue_is_put_back_and_nothing_is_filed_twice(run, emu):
    # Triage may label an existing issue, not a new one: GitHub drops it on creation.
    emu.add_token(CLASSIC, login="triager", kind="user")
    for _ in range(2):
        code, _out, err = run([hit("acme/a"), hit("acme/b", 2)], token=CLASSIC)
        assert code == 0, err
    assert "GitHub dropped the label 'tw-gates' from new issue #1" in err or len(open_issues(emu)) == 2
    issues = open_issues(emu)
    assert len(issues) == 2 and all([lb["name"] for lb in i["labels"]] == ["tw-gates"] for i in issues)


def test_a_label_that_cannot_be_put_back_closes_the_issue_and_falls_back(run, emu, tmp_path):
    emu.add_token(CLASSIC, login="triager", kind="user")
    emu.inject("permission_denied", method="POST", path=r"/issues/\d+/labels$", times=None)
    code, _out, err = run([hit("acme/a"), hit("acme/b", 2)], token=CLASSIC)
    assert code == 2 and "GitHub dropped the label 'tw-gates' from new issue #1" in err
    assert open_issues(emu) == []  # the unfindable issue was closed, not left to be filed again
    [closed] = emu.issues(CENTRAL)
    assert closed["state_reason"] == "not_planned" and "push access" in emu.comments(CENTRAL, 1)[0]["body"]
    doc = fallback(tmp_path)
    assert doc["reason"] == "permission_denied" and {f["repo"] for f in doc["findings"]} == {"acme/a", "acme/b"}


# ------------------------------------------------------------------ rate limits: 403 and 429 alike


def test_a_429_with_no_quota_left_and_a_reset_an_hour_away_falls_back_at_once(run, emu, tmp_path):
    emu.inject("primary_rate_limit", method="POST", path=r"/issues$", status=429, reset_in=3600, times=None)
    started = time.monotonic()
    code, _out, _err = run([hit("acme/a"), hit("acme/b", 2)], "--deadline", "10m")
    assert code == 2 and time.monotonic() - started < 10
    assert emu.count("POST", r"/issues$") == 1  # before: retried 6 times in 3 s
    assert fallback(tmp_path)["reason"] == "rate_limit" and "passes the deadline" in fallback(tmp_path)["detail"]


def test_a_429_is_waited_out_when_github_says_how_long_and_the_deadline_allows(run, emu):
    emu.inject("secondary_rate_limit", method="POST", path=r"/issues$", status=429, retry_after=2, times=1)
    emu.inject("primary_rate_limit", method="PATCH", status=429, reset_in=2, times=1)
    started = time.monotonic()
    code, _, err = run([hit("acme/a")])
    assert code == 0 and time.monotonic() - started >= 2, err
    code, _, err = run([hit("acme/a", 5)])  # a changed finding: PATCH, limited until the reset
    assert code == 0 and len(open_issues(emu)) == 1, err
    assert [r.status for r in emu.requests if r.method == "PATCH"] == [429, 200]


# ------------------------------------------------------------------ pacing writes


def test_writes_are_paced_one_second_apart(run, emu):
    code, _, err = run([hit(f"acme/r{n}", n + 1) for n in range(3)])
    assert code == 0, err
    writes = [r.received for r in emu.requests if r.method in ("POST", "PATCH")]
    assert len(writes) == 4  # the label, then three issues
    assert all(later - earlier >= 0.95 for earlier, later in itertools.pairwise(writes))


def test_writes_that_cannot_be_paced_into_the_time_left_become_one_digest(run, emu):
    # The cap lifted, 20 repositories, 20 s left: 21 paced writes do not fit before the deadline.
    code, out, err = run([hit(f"acme/r{n:02d}", n + 1) for n in range(20)], "--max-issues", "1000", "--deadline", "20s")
    assert code == 0, err
    assert "paced to GitHub's secondary limits take" in out and "switching to one digest" in out
    assert [i["title"] for i in open_issues(emu)] == [
        "tw-gates digest: 20 unregistered renderer findings in 20 repositories"
    ]


def test_a_run_that_cannot_finish_its_writes_in_time_falls_back_with_what_is_left(run, emu, tmp_path):
    # The plan fits on paper; GitHub is slower than planned: stop before the deadline, keep the rest.
    emu.inject("latency", method="POST", path=r"/issues$", seconds=4.0, times=None)
    code, _out, err = run([hit(f"acme/r{n}", n + 1) for n in range(4)], "--deadline", "16s")
    assert code == 2 and "deadline" in err
    filed = {i["title"].rsplit(" ", 1)[1] for i in open_issues(emu)}
    doc = fallback(tmp_path)
    assert filed and doc["reason"] == "rate_limit"
    assert filed | {f["repo"] for f in doc["findings"]} == {f"acme/r{n}" for n in range(4)}
    assert not filed & {f["repo"] for f in doc["findings"]}


# ------------------------------------------------------------------ a misconfigured API URL


def test_an_api_url_without_a_scheme_is_one_line_and_nothing_is_lost(run, tmp_path):
    code, _out, err = run([hit("acme/a"), hit("acme/b", 2)], GITHUB_API_URL="ghe.example.com/api/v3")
    assert code == 2 and "Traceback" not in err and "internal error" not in err
    assert "GITHUB_API_URL must be a URL with its scheme" in err and "'ghe.example.com/api/v3'" in err
    doc = fallback(tmp_path)
    assert doc["reason"] == "github_unavailable" and len(doc["findings"]) == 2
