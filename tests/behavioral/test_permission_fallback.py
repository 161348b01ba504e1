"""S2 permission fallback (behavioral, 3 sub-tests): when the token may not file
issues in the central repository, every finding lands - redacted - in the fallback
artifact, Slack hears about it, the log carries ``::error::`` and the exit code is 2.
Against the GitHub emulator over real HTTP, for each kind of token."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.behavioral import filing

CENTRAL = "sec/central"
SECRET_IN_PATH = "ghp_" + "S" * 36  # a token a consumer committed into a file name


def hits(n: int) -> list[dict]:
    found = [
        {
            "repo": f"acme/svc-{i}",
            "path": f"src/render_{i}.py",
            "line": 10 + i,
            "pattern": "jinja2-from-string",
            "severity": "high",
        }
        for i in range(n)
    ]
    found.append(
        {
            "repo": "acme/svc-0",
            "path": f"config/{SECRET_IN_PATH}/x.py",
            "line": 1,
            "pattern": "markdown-it-html",
            "severity": "critical",
        }
    )
    return found


def write_report(path: Path, found: list[dict]) -> Path:
    path.write_text(
        json.dumps(
            {
                "audit_id": "audit-7",
                "generated_at": "2026-03-01T00:00:00Z",
                "exit_code": 2,
                "checks": {},
                "unregistered_hits": found,
            }
        )
    )
    return path


class _Slack(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.server.messages.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def slack():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Slack)
    server.messages = []
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield server, f"http://127.0.0.1:{server.server_address[1]}/services/T1/B2/webhooksecret42"
    server.shutdown()
    server.server_close()


def run_file_issues(cli, emu, tmp_path: Path, token: str, repo: str = CENTRAL, **env: str):
    return filing.file_issues(cli, emu, tmp_path, token=token, repo=repo, **env)


def read_fallback(tmp_path: Path) -> tuple[dict, str]:
    path = tmp_path / "fallback" / "issue-fallback-audit-7.json"
    text = path.read_text()
    return json.loads(text), text


def test_github_token_without_issues_write_falls_back_with_every_finding(cli, github_emulator, tmp_path, slack):
    """The workflow's GITHUB_TOKEN with `issues: read`: nothing filed, nothing lost, no secret written."""
    server, webhook = slack
    token = "ghs_" + "R" * 36
    github_emulator.add_repo(CENTRAL)
    github_emulator.add_token(token, kind="actions", repo_permissions={CENTRAL: {"issues": "read"}})
    found = hits(3)
    write_report(tmp_path / "audit.json", found)

    # On a runner (GITHUB_ACTIONS=true), where the ::error annotation belongs.
    on_runner = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_OUTPUT": str(tmp_path / "output"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary"),
    }
    (tmp_path / "output").touch()
    (tmp_path / "summary").touch()
    code, out, err = run_file_issues(cli, github_emulator, tmp_path, token, SLACK_WEBHOOK_URL=webhook, **on_runner)

    assert code == 2
    assert "::error title=tw-gates file-issues::S2 fallback: 4 findings not filed in sec/central" in out
    assert "permission_denied" in err and "issues=write" in err
    doc, text = read_fallback(tmp_path)
    assert doc["reason"] == "permission_denied" and doc["issues_written"] == 0
    assert sorted((f["repo"], f["line"]) for f in doc["findings"]) == sorted((h["repo"], h["line"]) for h in found)
    # Secrets appear in the log only inside ::add-mask:: commands (which the runner hides), nowhere else.
    masks = [line for line in out.splitlines() if line.startswith("::add-mask::")]
    visible = "\n".join(line for line in (out + err).splitlines() if not line.startswith("::add-mask::"))
    assert any(token in line for line in masks) and any("webhooksecret42" in line for line in masks)
    summary = (tmp_path / "summary").read_text() + (tmp_path / "output").read_text()
    for secret in (token, SECRET_IN_PATH, "webhooksecret42"):
        assert secret not in text and secret not in visible and secret not in summary
    assert "[REDACTED]" in text  # the committed token is gone, the rest of its path is kept
    # Nothing was written to GitHub, and GET /user (which this token may not call) was never asked.
    assert github_emulator.issues(CENTRAL) == [] and github_emulator.labels(CENTRAL) == []
    assert github_emulator.count("GET", r"^/user$") == 0
    assert len(server.messages) == 1 and "4 findings" in server.messages[0]["text"]
    assert "webhooksecret42" not in server.messages[0]["text"]


def test_write_access_is_told_apart_for_every_kind_of_token(cli, github_emulator, tmp_path):
    """Classic PAT, fine-grained PAT, App installation token and GITHUB_TOKEN, each with and without
    the right to write issues: the probe never guesses, never calls /user, never files on a denial."""
    emu = github_emulator
    cases = [
        ("user", {"collaborators": {"writer": "write"}}, {"login": "writer", "scopes": ["repo"]}, 0),
        ("user", {"collaborators": {"reader": "read"}}, {"login": "reader", "scopes": ["repo"]}, 2),
        ("fine_grained", {}, {"login": "octocat", "repo_permissions": "issues:write"}, 0),
        ("fine_grained", {}, {"login": "octocat", "repo_permissions": "issues:read"}, 2),
        ("app", {}, {"repo_permissions": "issues:write"}, 0),
        ("app", {"private": True}, {"repo_permissions": None}, 2),  # not installed there: 404
        ("actions", {}, {"repo_permissions": "issues:write"}, 0),
        ("actions", {}, {"repo_permissions": "contents:write"}, 2),
    ]
    write_report(tmp_path / "audit.json", hits(2))
    for index, (kind, repo_kw, token_kw, expected) in enumerate(cases):
        repo, token = f"sec/central-{index}", f"tok-{kind}-{index}-padding"
        emu.add_repo(repo, **repo_kw)
        grant = token_kw.pop("repo_permissions", None)
        if grant:
            name, level = grant.split(":")
            token_kw["repo_permissions"] = {repo: {name: level}}
        emu.add_token(token, kind=kind, **token_kw)
        for stale in (tmp_path / "fallback").glob("*.json"):
            stale.unlink()

        code, out, err = run_file_issues(cli, emu, tmp_path, token, repo=repo)

        assert code == expected, (kind, token_kw, out, err)
        if expected == 0:
            assert len(emu.issues(repo)) == 2 and not list((tmp_path / "fallback").glob("*.json"))
        else:
            assert emu.issues(repo) == []
            doc, _ = read_fallback(tmp_path)
            assert doc["reason"] == "permission_denied" and len(doc["findings"]) == 3
    assert emu.count("GET", r"^/user$") == 0


def test_permission_lost_mid_run_sends_the_rest_to_the_fallback(cli, github_emulator, tmp_path):
    """A 403 after two issues: those two stay, the rest is in the fallback, a rerun completes without duplicates."""
    emu = github_emulator
    token = "github_pat_" + "F" * 40
    emu.add_repo(CENTRAL)
    emu.add_token(token, kind="fine_grained", repo_permissions={CENTRAL: {"issues": "write"}})
    found = hits(5)
    write_report(tmp_path / "audit.json", found)
    emu.inject(
        "permission_denied",
        method="POST",
        path=r"/issues$",
        after=2,
        times=None,
        permissions="issues=write",
        message="Resource not accessible by personal access token",
    )

    code, out, err = run_file_issues(cli, emu, tmp_path, token)

    assert code == 2 and "permission_denied" in err
    filed = {i["title"].rsplit(" ", 1)[1] for i in emu.issues(CENTRAL)}
    assert filed == {"acme/svc-0", "acme/svc-1"}
    doc, text = read_fallback(tmp_path)
    assert doc["issues_written"] == 2 and token not in text
    assert {f["repo"] for f in doc["findings"]} == {"acme/svc-2", "acme/svc-3", "acme/svc-4"}
    assert len(doc["findings"]) + sum(1 for h in found if h["repo"] in filed) == len(found)  # nothing lost

    emu.clear_faults()
    code, out, err = run_file_issues(cli, emu, tmp_path, token)
    assert code == 0
    titles = sorted(i["title"].rsplit(" ", 1)[1] for i in emu.issues(CENTRAL))
    assert titles == [f"acme/svc-{i}" for i in range(5)]  # each once
