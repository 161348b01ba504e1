"""file-issues: the plan (pure), the command line, and faults against the emulator over HTTP."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from tw_gates.issues.bodies import read_marks, render_digest_body
from tw_gates.issues.findings import Finding, findings_from
from tw_gates.issues.plan import DIGEST_KEY, plan_issues
from tw_gates.issues.settings import parse_deadline
from tw_gates.issues.tracker import MAX_BODY_CHARS, Marker, TrackedIssue
from tw_gates.schemas.audit import AuditReport

CENTRAL = "sec/central"
TOKEN = "ghs_" + "A" * 36  # an installation-token-shaped secret


def hit(repo: str, n: int = 1, severity: str = "high", pattern: str = "jinja2-from-string") -> dict:
    return {"repo": repo, "path": f"src/mod{n}.py", "line": n + 1, "pattern": pattern, "severity": severity}


def write_report(path: Path, hits: list[dict], *, audit_id: str = "audit-1", exit_code: int = 2) -> Path:
    path.write_text(
        json.dumps(
            {
                "audit_id": audit_id,
                "generated_at": "2026-01-02T03:04:05Z",
                "exit_code": exit_code,
                "checks": {},
                "unregistered_hits": hits,
            }
        ),
        encoding="utf-8",
    )
    return path


def report(hits: list[dict], exit_code: int = 2) -> AuditReport:
    return AuditReport.model_validate(
        {"audit_id": "a", "generated_at": "2026-01-02T03:04:05Z", "exit_code": exit_code, "unregistered_hits": hits}
    )


def tracked(number: int, kind: str, key: str, body: str = "", fp: str = "0" * 64) -> TrackedIssue:
    return TrackedIssue(number, "t", Marker(kind, key, fp).render() + "\n" + body, Marker(kind, key, fp), None, "")


# ------------------------------------------------------------------ pure: findings and plan


def test_findings_are_deduplicated_and_ids_survive_a_severity_change():
    found = findings_from(report([hit("acme/a", 1, "low"), hit("acme/a", 1, "critical"), hit("acme/b", 2)]))
    assert [(f.repo, f.severity) for f in found] == [("acme/a", "critical"), ("acme/b", "high")]
    same_place = Finding("acme/a", "src/mod1.py", 2, "jinja2-from-string", "low")
    assert same_place.id == found[0].id and same_place.id.startswith("f-") and len(same_place.id) == 18


def test_plan_one_issue_per_repository_up_to_the_cap_then_one_digest():
    findings = findings_from(report([hit(f"acme/r{n}", n) for n in range(3)]))
    per_repo = plan_issues(findings, [], cap=3, audit_id="a")
    assert per_repo.mode == "per-repo" and [u.key for u in per_repo.upserts] == ["acme/r0", "acme/r1", "acme/r2"]
    assert all(u.action == "create" for u in per_repo.upserts) and per_repo.writes == 3
    digest = plan_issues(findings, [], cap=2, audit_id="a")
    assert digest.mode == "digest" and [(u.kind, u.key) for u in digest.upserts] == [("digest", DIGEST_KEY)]
    low_quota = plan_issues(findings, [], cap=10, audit_id="a", digest_only="quota low")
    assert low_quota.mode == "digest" and "quota low" in low_quota.upserts[0].body
    assert plan_issues([], [], cap=10, audit_id="a").mode == "none"


def test_plan_is_stable_so_an_identical_rerun_writes_nothing():
    findings = findings_from(report([hit("acme/a", 1), hit("acme/a", 2), hit("acme/b", 3)]))
    first = plan_issues(findings, [], cap=10, audit_id="a")
    existing = [tracked(n + 1, u.kind, u.key, u.body, u.fingerprint) for n, u in enumerate(first.upserts)]
    again = plan_issues(list(reversed(findings)), existing, cap=10, audit_id="another-audit-id")
    assert [u.action for u in again.upserts] == ["unchanged", "unchanged"] and again.writes == 0


def test_false_positive_ticks_are_read_back_and_unticking_reports_again():
    findings = findings_from(report([hit(f"acme/r{n}", n) for n in range(4)]))
    digest = plan_issues(findings, [], cap=1, audit_id="a").upserts[0]
    target = findings[2]
    ticked = digest.body.replace(
        "- [ ] false positive · **high** · `src/mod2.py`", "- [x] false positive · **high** · `src/mod2.py`"
    )
    assert ticked != digest.body and read_marks(ticked).ticked == {target.id}
    plan = plan_issues(findings, [tracked(1, "digest", DIGEST_KEY, ticked, digest.fingerprint)], cap=1, audit_id="a")
    item = plan.upserts[0]
    assert item.action == "update" and item.newly_marked == {target.id}
    assert [f.id for f in item.false_positives] == [target.id] and target.id not in {f.id for f in item.active}
    assert "1 marked false positive" in item.comment
    marks = read_marks(item.body)
    assert marks.kept_false == {target.id} and target.id not in marks.listed
    # The next run keeps it suppressed without counting it again.
    steady = plan_issues(
        findings, [tracked(1, "digest", DIGEST_KEY, item.body, item.fingerprint)], cap=1, audit_id="a"
    ).upserts[0]
    assert steady.action == "unchanged" and not steady.newly_marked
    # Unticked in the false-positive list: reported again.
    unticked = item.body.replace(
        "- [x] false positive · **high** · `acme/r2`", "- [ ] false positive · **high** · `acme/r2`"
    )
    back = plan_issues(
        findings, [tracked(1, "digest", DIGEST_KEY, unticked, item.fingerprint)], cap=1, audit_id="a"
    ).upserts[0]
    assert target.id in {f.id for f in back.active} and "1 reported again" in back.comment


def test_plan_closes_resolved_superseded_and_duplicate_issues_but_never_others():
    findings = findings_from(report([hit("acme/a", 1)]))
    existing = [
        tracked(1, "repo", "acme/a"),
        tracked(2, "repo", "acme/gone"),
        tracked(3, "repo", "acme/a"),
        tracked(4, "digest", DIGEST_KEY),
        tracked(5, "canary", "dashboard"),
    ]
    plan = plan_issues(findings, existing, cap=10, audit_id="a")
    assert [(c.issue.number, c.why) for c in plan.closes] == [(3, "duplicate"), (2, "resolved"), (4, "superseded")]
    assert [u.existing.number for u in plan.upserts] == [1]
    to_digest = plan_issues(findings, existing, cap=0, audit_id="a")
    assert [(c.issue.number, c.why) for c in to_digest.closes] == [
        (3, "duplicate"),
        (1, "superseded"),
        (2, "superseded"),
    ]
    assert to_digest.upserts[0].existing.number == 4
    # A failed audit (exit_code 1) closes nothing.
    assert plan_issues([], existing, cap=10, audit_id="a", close_allowed=False).closes == []


def test_a_huge_digest_stays_under_githubs_body_limit_and_reports_its_overflow():
    findings = findings_from(report([hit(f"acme/repo-{n:04d}", n, ["critical", "low"][n % 2]) for n in range(2000)]))
    rendered = render_digest_body(findings, [], "a", "why")
    assert len(rendered.text) < MAX_BODY_CHARS
    assert len(rendered.shown) + len(rendered.overflow) == 2000 and rendered.overflow
    assert {f.severity for f in rendered.shown} == {"critical"}  # the worst come first
    assert "more repositories" in rendered.text and "did not fit" in rendered.text


def test_deadline_accepts_durations_times_and_epochs():
    now = 1_800_000_000.0
    assert parse_deadline("15m", now) == now + 900
    assert parse_deadline("90", now) == now + 90
    assert parse_deadline("2027-01-15T07:00:00Z", now) == now - 3600
    assert parse_deadline("2027-01-15T08:00:00", now) == now  # naive: UTC
    assert parse_deadline("1800000100", now) == 1_800_000_100.0


# ------------------------------------------------------------------ command line


@pytest.mark.parametrize(
    "argv, needle",
    [
        ([], "--audit REPORT.json is required"),
        (["--audit", "{report}"], "--central-repo OWNER/REPO is required"),
        (["--audit", "{report}", "--central-repo", "not a repo"], "--central-repo: Value error, must be owner/name"),
        (["--audit", "{report}", "--central-repo", CENTRAL, "--max-issues", "-1"], "invalid --max-issues: "),
        (["--audit", "{missing}", "--central-repo", CENTRAL], "audit report not found"),
        (["--audit", "{broken}", "--central-repo", CENTRAL], "invalid audit report"),
        (["--audit", "{report}", "--central-repo", CENTRAL, "--deadline", "soon"], "not a duration"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(cli, tmp_path, argv, needle):
    paths = {
        "report": write_report(tmp_path / "r.json", [hit("acme/a")]),
        "missing": tmp_path / "none.json",
        "broken": tmp_path / "broken.json",
    }
    paths["broken"].write_text('{"audit_id": ""}')
    code, out, err = cli("file-issues", *[a.format(**paths) for a in argv])
    assert code == 1 and needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_dry_run_without_token_prints_the_plan_and_writes_nothing(cli, tmp_path):
    report_path = write_report(tmp_path / "r.json", [hit(f"acme/r{n}", n) for n in range(12)])
    code, out, err = cli(
        "file-issues", "--audit", report_path, "--central-repo", CENTRAL, "--dry-run", "--fallback-dir", tmp_path / "fb"
    )
    assert code == 0 and "[dry run] would-create digest (12 findings)" in out
    assert not (tmp_path / "fb").exists()


def test_without_a_token_every_finding_goes_to_the_fallback(cli, tmp_path):
    report_path = write_report(tmp_path / "r.json", [hit("acme/a", 1), hit("acme/b", 2)])
    code, out, err = cli(
        "file-issues", "--audit", report_path, "--central-repo", CENTRAL, "--fallback-dir", tmp_path / "fb"
    )
    # Off a runner: the error line, no workflow command (on a runner the CLI annotates it).
    assert code == 2 and "tw-gates file-issues: error: S2 fallback: 2 findings" in err and "::" not in out + err
    doc = json.loads((tmp_path / "fb" / "issue-fallback-audit-1.json").read_text())
    assert doc["reason"] == "no_token" and len(doc["findings"]) == 2


# ------------------------------------------------------------------ against the emulator


@pytest.fixture
def emu(github_emulator):
    github_emulator.add_repo(CENTRAL)
    github_emulator.add_token(TOKEN, kind="app", repo_permissions={CENTRAL: {"issues": "write"}})
    return github_emulator


@pytest.fixture
def run(cli, emu, tmp_path):
    """Run file-issues against the emulator; returns (code, out, err)."""

    def invoke(hits: list[dict] | None = None, *extra: str, env: dict | None = None, audit_id: str = "audit-1"):
        if hits is not None:
            write_report(tmp_path / "report.json", hits, audit_id=audit_id)
        base = {"GITHUB_TOKEN": TOKEN, "GITHUB_API_URL": emu.url, "TW_GITHUB_BACKOFF": "0.01", "TW_GITHUB_RETRIES": "3"}
        return cli(
            "file-issues",
            "--audit",
            tmp_path / "report.json",
            "--central-repo",
            CENTRAL,
            "--fallback-dir",
            tmp_path / "fallback",
            *extra,
            env={**base, **(env or {})},
        )

    return invoke


def open_issues(emu) -> list[dict]:
    return [i for i in emu.issues(CENTRAL) if i["state"] == "open"]


def fallback(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "fallback" / "issue-fallback-audit-1.json").read_text())


def test_5xx_burst_is_retried_and_the_run_completes(run, emu):
    emu.inject("server_error", method="POST", path=r"/issues$", times=2, status=502)
    code, out, _ = run([hit("acme/a"), hit("acme/b")])
    assert code == 0 and len(open_issues(emu)) == 2
    assert emu.count("POST", r"/issues$", status=502) == 2


def test_github_down_mid_run_saves_the_rest_and_a_rerun_converges(run, emu, tmp_path):
    hits = [hit(f"acme/r{n}", n) for n in range(4)]
    emu.inject("server_error", method="POST", path=r"/issues$", after=1, times=None, status=503)
    code, out, err = run(hits)
    assert code == 2 and "github_unavailable" in err
    saved = {(f["repo"]) for f in fallback(tmp_path)["findings"]}
    assert saved == {"acme/r1", "acme/r2", "acme/r3"} and [i["title"] for i in open_issues(emu)] == [
        "tw-gates: 1 unregistered renderer finding in acme/r0"
    ]
    emu.clear_faults()
    code, out, _ = run()
    assert code == 0 and sorted(i["title"][-7:] for i in open_issues(emu)) == [
        "acme/r0",
        "acme/r1",
        "acme/r2",
        "acme/r3",
    ]


def test_a_timed_out_create_that_landed_is_not_left_duplicated(run, emu):
    # The first POST answers after the client gave up; urllib3 retries it; both land.
    emu.inject("latency", method="POST", path=r"/issues$", seconds=1.5)
    code, out, _ = run([hit("acme/a")], env={"TW_GITHUB_TIMEOUT": "0.5"})
    time.sleep(1.6)  # let the slow write land
    code, out, _ = run()
    assert code == 0 and len(open_issues(emu)) == 1
    assert sum(1 for i in emu.issues(CENTRAL) if i["state_reason"] == "not_planned") == len(emu.issues(CENTRAL)) - 1


def test_secondary_rate_limit_honours_retry_after(run, emu):
    emu.inject("secondary_rate_limit", method="POST", path=r"/issues$", retry_after=1)
    started = time.monotonic()
    code, out, _ = run([hit("acme/a")])
    assert code == 0 and len(open_issues(emu)) == 1 and time.monotonic() - started >= 1.0


def test_primary_rate_limit_past_the_deadline_falls_back_without_waiting(run, emu, tmp_path):
    emu.inject("primary_rate_limit", method="POST", path=r"/issues$", reset_in=3600)
    started = time.monotonic()
    code, out, err = run([hit("acme/a"), hit("acme/b")], "--deadline", "30s")
    assert code == 2 and time.monotonic() - started < 15 and "deadline" in err
    assert fallback(tmp_path)["reason"] == "rate_limit" and len(fallback(tmp_path)["findings"]) == 2


def test_two_overlapping_runs_converge_to_one_issue_per_repository(emu, tmp_path, monkeypatch):
    from tw_gates.core.settings import load_settings
    from tw_gates.issues.file_issues import FileIssuesSettings, file_issues

    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_API_URL", emu.url)
    report_path = write_report(tmp_path / "r.json", [hit(f"acme/r{n}", n) for n in range(3)])
    # Both runs list before either creates: the listing answers slowly.
    # 2 s is far longer than starting the second thread takes, even on a loaded machine.
    emu.inject("latency", method="GET", path=r"/issues$", times=2, seconds=2.0)
    results = []

    def one_run(name: str) -> None:
        settings = load_settings(
            FileIssuesSettings, {"audit": report_path, "central_repo": CENTRAL, "fallback_dir": tmp_path / name}
        )
        results.append(file_issues(settings, echo=lambda line: None))

    threads = [threading.Thread(target=one_run, args=(n,)) for n in ("one", "two")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [r.exit_code for r in results] == [0, 0]
    assert emu.count("POST", r"/issues$") == 6  # the race really happened
    assert sorted(i["title"][-7:] for i in open_issues(emu)) == ["acme/r0", "acme/r1", "acme/r2"]
    kept = {i["number"] for i in open_issues(emu)}
    assert kept == {
        min(i["number"] for i in emu.issues(CENTRAL) if i["title"].endswith(r))
        for r in ("acme/r0", "acme/r1", "acme/r2")
    }


def test_quota_too_small_for_one_issue_per_repo_switches_to_digest(run, emu):
    emu.set_rate_limit(remaining=6)
    code, out, _ = run([hit(f"acme/r{n}", n) for n in range(8)], "--quota-threshold", "0")
    assert code == 0 and "switching to one digest" in out
    assert [i["title"] for i in open_issues(emu)] == [
        "tw-gates digest: 8 unregistered renderer findings in 8 repositories"
    ]


def test_body_limit_overflow_is_listed_in_the_artifact_without_failing(run, emu, tmp_path):
    hits = [hit("acme/huge", n) for n in range(1, 1200)]
    code, out, err = run(hits)
    body = open_issues(emu)[0]["body"]
    assert code == 0 and len(body) <= MAX_BODY_CHARS and "did not fit" in body
    doc = fallback(tmp_path)
    assert doc["reason"] == "body_limit"
    listed = set(read_marks(body).listed)
    assert len(listed) + len(doc["findings"]) == 1199 and not listed & {f["id"] for f in doc["findings"]}


def test_metrics_use_the_seed_names(run, emu, tmp_path):
    from prometheus_client.parser import text_string_to_metric_families

    run([hit(f"acme/r{n}", n) for n in range(12)])
    text = (tmp_path / ".metrics" / "tw_gates.prom").read_text()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["audit_digest_created"].samples[0].value == 1
    assert families["audit_unregistered_repos"].samples[0].value == 12
    assert families["github_api_quota_remaining"].samples[0].value > 0
    endpoints = {s.labels["endpoint"] for s in families["tw_gates_github_api_calls"].samples}
    assert "POST /repos/{owner}/{repo}/issues" in endpoints and "GET /rate_limit" in endpoints


def test_the_gate_chain_runs_file_issues_from_the_environment(emu, tmp_path, monkeypatch):
    from tw_gates.chain.run import run_chain, select

    report_path = write_report(tmp_path / "r.json", [hit("acme/a"), hit("acme/b", 2)])
    for name, value in {
        "TW_AUDIT_REPORT": str(report_path),
        "TW_CENTRAL_REPO": CENTRAL,
        "GITHUB_TOKEN": TOKEN,
        "GITHUB_API_URL": emu.url,
        "TW_FALLBACK_DIR": str(tmp_path / "fb"),
    }.items():
        monkeypatch.setenv(name, value)
    assert "file-issues" not in [g.name for g in select("all")]  # optional: only when named
    result = run_chain(select("s2"))
    assert result.exit_code == 0 and result.outcomes[0].message.startswith("file-issues: 2 created")
    monkeypatch.delenv("GITHUB_TOKEN")
    result = run_chain(select("file-issues"))
    assert result.exit_code == 2 and "S2 fallback: 2 findings" in result.outcomes[0].message


def test_a_dry_run_that_cannot_read_the_tracker_fails_without_writing_anything(cli, github_emulator, tmp_path):
    github_emulator.add_repo(CENTRAL, private=True)
    github_emulator.add_token(TOKEN, kind="app", repo_permissions={"other/repo": {"issues": "write"}})
    report_path = write_report(tmp_path / "r.json", [hit("acme/a")])
    code, out, err = cli(
        "file-issues",
        "--audit",
        report_path,
        "--central-repo",
        CENTRAL,
        "--dry-run",
        "--fallback-dir",
        tmp_path / "fb",
        env={"GITHUB_TOKEN": TOKEN, "GITHUB_API_URL": github_emulator.url},
    )
    assert code == 1 and "dry run: listing open 'tw-gates' issues in sec/central" in err
    assert not (tmp_path / "fb").exists() and github_emulator.count("POST") == 0


def test_every_alerting_series_exists_from_the_first_run(run, emu, tmp_path):
    from prometheus_client.parser import text_string_to_metric_families

    run([hit("acme/a")])
    families = {
        f.name: f for f in text_string_to_metric_families((tmp_path / ".metrics" / "tw_gates.prom").read_text())
    }
    failures = {s.labels["reason"]: s.value for s in families["audit_issue_create_failures"].samples}
    assert failures.get("permission_denied") == 0 and failures.get("rate_limit") == 0 and "body_limit" not in failures
    for name in ("audit_digest_created", "audit_fp_marked", "audit_findings_filed"):
        assert name in families
    assert families["audit_findings_filed"].samples[0].value == 1
