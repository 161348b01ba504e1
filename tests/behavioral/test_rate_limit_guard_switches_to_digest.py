"""R1 rate-limit guard (behavioral, 3 sub-tests): the quota is read from the free
``/rate_limit``; below the threshold the run files one digest; exhausted, it writes
the fallback artifact and exits 2; rate limits met mid-run are waited out only when
the job's deadline allows, otherwise the rest goes to the fallback. Against the
GitHub emulator over real HTTP."""

from __future__ import annotations

import json
import time
from pathlib import Path

import requests

from tests.behavioral import filing

CENTRAL = "sec/central"
TOKEN = "ghs_" + "Q" * 36


def write_report(tmp_path: Path, repos: int) -> None:
    hits = [
        {"repo": f"acme/q{n}", "path": f"app/{n}.py", "line": n, "pattern": "jinja2-from-string", "severity": "medium"}
        for n in range(1, repos + 1)
    ]
    (tmp_path / "audit.json").write_text(
        json.dumps(
            {
                "audit_id": "audit-q",
                "generated_at": "2026-03-01T00:00:00Z",
                "exit_code": 2,
                "checks": {},
                "unregistered_hits": hits,
            }
        )
    )


def file_issues(cli, emu, tmp_path: Path, *extra: str, **env: str):
    return filing.file_issues(cli, emu, tmp_path, *extra, token=TOKEN, repo=CENTRAL, **env)


def setup(emu) -> None:
    emu.add_repo(CENTRAL)
    emu.add_token(TOKEN, kind="app", repo_permissions={CENTRAL: {"issues": "write"}})


def fallback(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "fallback" / "issue-fallback-audit-q.json").read_text())


def test_low_quota_switches_to_one_digest(cli, github_emulator, tmp_path):
    emu = github_emulator
    setup(emu)
    emu.set_rate_limit(remaining=420)  # threshold 500; 3 repositories would fit under the cap of 10
    write_report(tmp_path, 3)

    code, out, _ = file_issues(cli, emu, tmp_path)

    assert code == 0 and "mode digest: The GitHub API quota was low (420 requests left" in out
    issues = emu.issues(CENTRAL)
    assert [i["title"] for i in issues] == ["tw-gates digest: 3 unregistered renderer findings in 3 repositories"]
    assert "quota was low" in issues[0]["body"]
    counted = emu.count() - emu.count("GET", r"^/rate_limit$")
    remaining = requests.get(f"{emu.url}/rate_limit", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5).json()
    assert remaining["resources"]["core"]["remaining"] == 420 - counted  # /rate_limit itself is free

    # With the quota back, the next run goes back to one issue per repository and retires the digest.
    emu.set_rate_limit(remaining=5000)
    code, out, _ = file_issues(cli, emu, tmp_path)
    assert code == 0
    assert sorted(i["title"].rsplit(" ", 1)[1] for i in emu.issues(CENTRAL) if i["state"] == "open") == [
        "acme/q1",
        "acme/q2",
        "acme/q3",
    ]


def test_exhausted_quota_falls_back_without_writing(cli, github_emulator, tmp_path):
    emu = github_emulator
    setup(emu)
    emu.set_rate_limit(remaining=0, reset_in=1800)
    write_report(tmp_path, 4)

    # On a runner, where the ::error annotation belongs (off one, the error line alone says it).
    (tmp_path / "output").touch()
    runner = {"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(tmp_path / "output")}
    code, out, err = file_issues(cli, emu, tmp_path, **runner)

    assert code == 2 and "::error title=tw-gates file-issues::" in out and "quota is exhausted" in err
    assert [(r.method, r.path) for r in emu.requests] == [("GET", "/rate_limit")]
    doc = fallback(tmp_path)
    assert doc["reason"] == "rate_limit" and len(doc["findings"]) == 4 and doc["issues_written"] == 0


def test_rate_limits_mid_run_are_waited_out_within_the_deadline_else_fall_back(cli, github_emulator, tmp_path):
    emu = github_emulator
    setup(emu)
    write_report(tmp_path, 4)
    # Secondary limit with Retry-After: 1 on the second create: honoured, the run completes.
    emu.inject("secondary_rate_limit", method="POST", path=r"/issues$", after=1, retry_after=1)
    started = time.monotonic()
    code, out, _ = file_issues(cli, emu, tmp_path, "--deadline", "60s")
    assert code == 0 and time.monotonic() - started >= 1.0 and len(emu.issues(CENTRAL)) == 4

    # Primary limit whose reset is an hour away, on a job with 20 s left: no sleep, fallback.
    write_report(tmp_path, 7)
    emu.inject("primary_rate_limit", method="POST", path=r"/issues$", after=1, times=None, reset_in=3600)
    started = time.monotonic()
    code, out, err = file_issues(cli, emu, tmp_path, "--deadline", "20s")
    elapsed = time.monotonic() - started
    assert code == 2 and elapsed < 20 and "rate_limit" in err
    doc = fallback(tmp_path)
    assert doc["issues_written"] == 1 and {f["repo"] for f in doc["findings"]} == {"acme/q6", "acme/q7"}
    assert len(emu.issues(CENTRAL)) == 5  # the 4 unchanged + the one that got through

    emu.clear_faults()
    code, out, _ = file_issues(cli, emu, tmp_path)
    assert code == 0 and len(emu.issues(CENTRAL)) == 7  # converged, nothing duplicated
