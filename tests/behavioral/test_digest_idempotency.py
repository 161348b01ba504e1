"""R1 digest cap and idempotency (behavioral, 4 sub-tests): one issue per repository
up to MAX_ISSUES_PER_RUN, else one digest; a rerun writes nothing; a change updates
in place; a person's "false positive" tick is honoured; a run killed half way and
run again files no duplicate and loses no finding. Against the GitHub emulator over
real HTTP."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests
from markdown_it import MarkdownIt
from prometheus_client.parser import text_string_to_metric_families

from tests.behavioral import filing

CENTRAL = "sec/central"
TOKEN = "ghs_" + "I" * 36
PERSON = "ghp_" + "P" * 36  # a member of the security team, ticking boxes in the web UI
WRITES = ("POST", "PATCH", "PUT", "DELETE")


def finding(repo: str, n: int, severity: str = "high", path: str | None = None) -> dict:
    return {
        "repo": repo,
        "path": path or f"src/view_{n}.py",
        "line": n,
        "pattern": "jinja2-from-string",
        "severity": severity,
    }


def write_report(tmp_path: Path, found: list[dict], audit_id: str = "audit-1") -> Path:
    path = tmp_path / "audit.json"
    path.write_text(
        json.dumps(
            {
                "audit_id": audit_id,
                "generated_at": "2026-03-01T00:00:00Z",
                "exit_code": 2,
                "checks": {},
                "unregistered_hits": found,
            }
        )
    )
    return path


def setup(emu) -> None:
    emu.add_repo(CENTRAL, collaborators={"secteam": "write"})
    emu.add_token(TOKEN, kind="actions", repo_permissions={CENTRAL: {"issues": "write"}})
    emu.add_token(PERSON, login="secteam", kind="user", scopes=["repo"])


def file_issues(cli, emu, tmp_path: Path, *extra: str):
    return filing.file_issues(cli, emu, tmp_path, *extra, token=TOKEN, repo=CENTRAL)


def open_issues(emu) -> list[dict]:
    return [i for i in emu.issues(CENTRAL) if i["state"] == "open"]


def state_changes(emu) -> list[tuple[str, str, int]]:
    """Requests that changed something (a 422 from the label probe changes nothing)."""
    return [(r.method, r.path, r.status) for r in emu.requests if r.method in WRITES and r.status < 300]


def ids_in(body: str) -> set[str]:
    return set(re.findall(r"`(f-[0-9a-f]{16})`\s*$", body, flags=re.M))


def test_identical_rerun_writes_nothing(cli, github_emulator, tmp_path):
    """Both shapes: per-repository issues (3 repositories, cap 10) and one digest (12 > cap 10)."""
    emu = github_emulator
    setup(emu)
    for found in (
        [finding(f"acme/r{n}", n) for n in range(1, 4)],
        [finding(f"acme/d{n:02d}", n) for n in range(1, 13)],
    ):
        write_report(tmp_path, found)
        emu.clear_requests()
        code, out, _ = file_issues(cli, emu, tmp_path)
        assert code == 0
        filed = len(open_issues(emu))
        first_writes = [w for w in state_changes(emu) if w[1].endswith("/issues")]
        before = {i["number"]: (i["updated_at"], i["body"], i["comments"]) for i in emu.issues(CENTRAL)}

        emu.clear_requests()
        code, out, _ = file_issues(cli, emu, tmp_path)

        assert code == 0 and state_changes(emu) == []
        assert {i["number"]: (i["updated_at"], i["body"], i["comments"]) for i in emu.issues(CENTRAL)} == before
        assert emu.count() <= 2 + math.ceil(len(open_issues(emu)) / 100)
        assert [r.method for r in emu.requests if r.method != "GET"] == []  # not even the write probe
        assert "0 created, 0 updated" in out
    # One digest for the 12 repositories; the 3 per-repository issues were superseded and closed.
    assert [i["title"] for i in open_issues(emu)] == [
        "tw-gates digest: 12 unregistered renderer findings in 12 repositories"
    ]
    assert filed == 1 and len(first_writes) == 1
    assert sorted(i["state_reason"] for i in emu.issues(CENTRAL) if i["state"] == "closed") == ["completed"] * 3


def test_changed_finding_updates_in_place_and_vanished_findings_close(cli, github_emulator, tmp_path):
    emu = github_emulator
    setup(emu)
    write_report(tmp_path, [finding("acme/a", 1), finding("acme/a", 2), finding("acme/b", 3)])
    assert file_issues(cli, emu, tmp_path)[0] == 0
    numbers = {i["title"].rsplit(" ", 1)[1]: i["number"] for i in open_issues(emu)}

    # acme/a: one finding fixed, one new, one more severe; acme/b: fixed entirely.
    write_report(tmp_path, [finding("acme/a", 2, "critical"), finding("acme/a", 9)], audit_id="audit-2")
    emu.clear_requests()
    code, out, _ = file_issues(cli, emu, tmp_path)

    assert code == 0
    issue_a = next(i for i in emu.issues(CENTRAL) if i["number"] == numbers["acme/a"])
    assert issue_a["state"] == "open" and issue_a["title"] == "tw-gates: 2 unregistered renderer findings in acme/a"
    assert "**critical**" in issue_a["body"] and "`src/view_9.py`:9" in issue_a["body"]
    assert "`src/view_1.py`" not in issue_a["body"]
    [comment] = emu.comments(CENTRAL, numbers["acme/a"])
    assert comment["body"].startswith("Findings changed (audit `audit-2`): 1 new, 1 resolved.")
    issue_b = next(i for i in emu.issues(CENTRAL) if i["number"] == numbers["acme/b"])
    assert issue_b["state"] == "closed" and issue_b["state_reason"] == "completed"
    assert "no longer reports" in emu.comments(CENTRAL, numbers["acme/b"])[0]["body"]
    assert len(emu.issues(CENTRAL)) == 2  # updated in place: no new issue
    assert [(m, re.sub(r"\d+", "N", p)) for m, p, _ in state_changes(emu)] == [
        ("PATCH", "/repos/sec/central/issues/N"),
        ("POST", "/repos/sec/central/issues/N/comments"),
        ("POST", "/repos/sec/central/issues/N/comments"),
        ("PATCH", "/repos/sec/central/issues/N"),
    ]


def test_digest_lists_by_severity_and_honours_false_positive_ticks(cli, github_emulator, tmp_path):
    emu = github_emulator
    setup(emu)
    found = [finding(f"acme/low-{n}", n, "low") for n in range(1, 9)]
    found += [
        finding("acme/crit", 1, "critical"),
        finding("acme/many", 1, "high"),
        finding("acme/many", 2, "high"),
        finding("acme/one-high", 1, "high"),
    ]
    hostile = finding(
        "acme/crit",
        66,
        "critical",
        path="docs/@security-team <img src=x onerror=alert(1)> [pay](https://evil.example) #12.md",
    )
    found.append(hostile)
    write_report(tmp_path, found)
    assert file_issues(cli, emu, tmp_path, "--max-issues", "10")[0] == 0

    [digest] = open_issues(emu)
    table = [line.split("|")[1].strip() for line in digest["body"].splitlines() if line.startswith("| `")]
    assert table[:3] == ["`acme/crit`", "`acme/many`", "`acme/one-high`"] and len(table) == 11
    html = MarkdownIt("commonmark").enable("table").render(digest["body"])
    assert "<img" not in html and "<a " not in html and "@security-team" not in re.sub(r"<code>.*?</code>", "", html)

    # A person ticks "false positive" on one finding in the web UI (a body edit).
    target = next(line for line in digest["body"].splitlines() if "`src/view_3.py`:3" in line)
    body = digest["body"].replace(target, target.replace("- [ ]", "- [x]", 1))
    requests.patch(
        f"{emu.url}/repos/{CENTRAL}/issues/{digest['number']}",
        json={"body": body},
        timeout=5,
        headers={"Authorization": f"Bearer {PERSON}"},
    ).raise_for_status()
    marked = ids_in(target)

    code, out, _ = file_issues(cli, emu, tmp_path, "--max-issues", "10")
    assert code == 0 and "1 finding marked false positive" in out
    [digest] = open_issues(emu)
    findings_part, fp_part = digest["body"].split("<!-- tw-gates:false-positives -->")
    assert not ids_in(findings_part) & marked and ids_in(fp_part) == marked
    assert digest["title"] == "tw-gates digest: 12 unregistered renderer findings in 11 repositories"

    code, out, _ = file_issues(cli, emu, tmp_path, "--max-issues", "10")  # stays dropped, counted once
    assert code == 0 and "0 updated, 1 unchanged" in out
    metrics = {f.name: f for f in text_string_to_metric_families((tmp_path / ".metrics" / "tw_gates.prom").read_text())}
    assert metrics["audit_fp_marked"].samples[0].value == 1
    assert metrics["audit_digest_created"].samples[0].value == 1


def test_run_killed_half_way_then_rerun_files_no_duplicate_and_loses_no_finding(cli, github_emulator, tmp_path):
    emu = github_emulator
    setup(emu)
    found = [finding(f"acme/k{n}", n) for n in range(1, 6)] + [finding("acme/k2", 40)]
    write_report(tmp_path, found)
    # The third create hangs; the write lands on GitHub's side after the client is gone.
    hang = emu.inject("timeout_hang", method="POST", path=r"/issues$", after=2, seconds=1.0, process=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "TW_"))}
    env.update(
        GITHUB_TOKEN=TOKEN,
        GITHUB_API_URL=emu.url,
        TW_METRICS_DIR=str(tmp_path / "m"),
        TW_GITHUB_TIMEOUT="20",
        TW_GITHUB_WRITE_INTERVAL="0.01",
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tw_gates",
            "file-issues",
            "--audit",
            str(tmp_path / "audit.json"),
            "--central-repo",
            CENTRAL,
            "--fallback-dir",
            str(tmp_path / "fallback"),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while hang.fired == 0 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        assert hang.fired == 1, "the run never reached its third create"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    while len(emu.issues(CENTRAL)) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)  # the hung create lands
    assert len(emu.issues(CENTRAL)) == 3

    emu.clear_faults()
    code, out, _ = file_issues(cli, emu, tmp_path)

    assert code == 0 and "2 created, 0 updated, 3 unchanged" in out
    titles = sorted(i["title"].rsplit(" ", 1)[1] for i in emu.issues(CENTRAL))
    assert titles == [f"acme/k{n}" for n in range(1, 6)] and all(i["state"] == "open" for i in emu.issues(CENTRAL))
    filed_ids = set().union(*(ids_in(i["body"]) for i in emu.issues(CENTRAL)))
    assert len(filed_ids) == len(found)
