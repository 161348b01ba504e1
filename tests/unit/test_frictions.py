"""What a newcomer trips over: each a clear one-line message, no traceback, no
workflow command or stray folder off a runner."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CANARY = ROOT / "examples" / "canary"


def one_error_line(err: str, command: str) -> str:
    lines = [line for line in err.strip().splitlines() if not line.startswith("warning: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"tw-gates {command}: error: "), lines
    return lines[0]


def test_canary_dry_run_needs_no_token(cli, tmp_path):
    code, out, err = cli(
        "canary",
        "--baseline",
        CANARY / "baseline.json",
        "--metrics",
        CANARY / "metrics_pass.json",
        "--central-repo",
        "acme/app",
        "--dry-run",
        cwd=tmp_path,
    )
    assert code == 0, err
    assert out.startswith("HOLD: ") and "dry run: no dashboard update" in out
    assert err.strip() == (
        "warning: dry run without a GitHub token: the dashboard issue of acme/app is not read, "
        "so the decision rests on this run's data alone"
    )


def test_off_a_runner_no_workflow_command_and_no_metrics_folder(cli, tmp_path, monkeypatch):
    monkeypatch.delenv("TW_METRICS_DIR")
    report = tmp_path / "audit.json"
    report.write_text(
        json.dumps(
            {
                "audit_id": "a-1",
                "generated_at": "2026-11-30T00:00:00Z",
                "exit_code": 2,
                "checks": {},
                "unregistered_hits": [{"repo": "acme/a", "path": "x.py", "line": 1, "pattern": "jinja2-markup"}],
            }
        )
    )
    code, out, err = cli(
        "file-issues",
        "--audit",
        report,
        "--central-repo",
        "sec/central",
        "--fallback-dir",
        tmp_path / "fb",
        cwd=tmp_path,
    )
    assert code == 2
    assert one_error_line(err, "file-issues").startswith("tw-gates file-issues: error: S2 fallback: 1 finding")
    assert "::" not in out + err  # no ::error off a runner (tests/behavioral checks it on one)
    assert not (tmp_path / ".metrics").exists()


def test_on_a_runner_metrics_default_to_dot_metrics(cli, tmp_path, monkeypatch):
    monkeypatch.delenv("TW_METRICS_DIR")
    (tmp_path / "output").touch()
    env = {"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(tmp_path / "output")}
    assert cli("platform", env=env, cwd=tmp_path)[0] == 0
    assert "tw_gates_command_runs_total" in (tmp_path / ".metrics" / "tw_gates.prom").read_text()


def test_file_issues_dry_run_without_a_token_says_so_in_one_line(cli, tmp_path):
    report = tmp_path / "audit.json"
    report.write_text(
        json.dumps(
            {
                "audit_id": "a-2",
                "generated_at": "2026-11-30T00:00:00Z",
                "exit_code": 0,
                "checks": {},
                "unregistered_hits": [],
            }
        )
    )
    code, out, _ = cli("file-issues", "--audit", report, "--central-repo", "sec/central", "--dry-run")
    assert code == 0
    assert not re.search(r"file-issues: ;", out)
    assert out.splitlines()[-1] == (
        "file-issues: dry run without a GitHub token: planned as if no issue existed; nothing sent, 0 API calls"
    )


def test_an_unknown_flag_shows_the_commands_usage(cli):
    code, out, err = cli("audit", "--bogus", "x")
    assert code == 1 and out == ""
    assert err.startswith("usage: tw-gates audit ")
    assert err.strip().splitlines()[-1] == "tw-gates audit: error: unrecognized arguments: --bogus x"


def test_ingest_and_audit_spell_artifacts_alike(cli, tmp_path):
    for command in ("ingest", "audit"):
        code, out, _ = cli(command, "--help")
        assert code == 0 and "--artifacts" in out and "--artifact " not in out and "--artifact," not in out
    (tmp_path / "in").mkdir()
    for flag in ("--artifacts", "--artifact"):  # the former spelling still works, unlisted
        code, _, err = cli("ingest", flag, str(tmp_path / "in" / "nope.json"))
        assert code == 1 and "artifact not found" in err


def test_validation_errors_name_the_flag_or_the_variable_not_a_class(cli, tmp_path):
    registry = tmp_path / "r.yml"
    registry.write_text('schema_version: "1.0"\nconsumers: []\n')
    code, _, err = cli("collect", "--registry", registry, "--out", tmp_path / "c", env={"TW_GITHUB_RETRIES": "99"})
    assert code == 1
    assert one_error_line(err, "collect") == (
        "tw-gates collect: error: invalid TW_GITHUB_RETRIES: Input should be less than or equal to 20"
    )
    code, _, err = cli("file-issues", "--audit", registry, "--max-issues", "-3")  # TW_GITHUB_RETRIES still 99
    assert code == 1 and one_error_line(err, "file-issues") == (
        "tw-gates file-issues: error: invalid TW_GITHUB_RETRIES: Input should be less than or equal to 20; "
        "--max-issues: Input should be greater than or equal to 0"
    )
    assert "Settings" not in err


def test_the_ingest_action_names_its_input_when_keys_are_missing(cli, tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.json").write_text("{}")
    env = {"GITHUB_ACTION_PATH": str(ROOT / "actions" / "ingest"), "POLICY_REQUIRE_HMAC": "true"}
    code, _, err = cli("ingest", "--artifacts", tmp_path / "in", env=env)
    assert code == 1
    assert "no verification keys: give the action's input hmac-keys" in one_error_line(err, "ingest")
    code, _, err = cli("ingest", "--artifacts", tmp_path / "in", "--require-hmac", env={"GITHUB_ACTION_PATH": ""})
    assert code == 1 and "set TW_HMAC_KEYS" in err  # the command line: the variable


def test_an_unsigned_baseline_is_written_with_a_warning(cli, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.md").write_text("# title\n\nsome *text*\n")
    out = tmp_path / "baseline.json"
    argv = ["baseline", "capture", "--target", "builtin:safe", "--corpus", corpus, "--runs", "1", "--warmup", "0"]
    code, _, err = cli(*argv, "--out", out)
    assert code == 0 and out.is_file()
    assert f"warning: {out} is unsigned: fine as a current capture (audit --current), but the audit (G3) refuses" in err


def test_the_readme_says_which_actions_take_repo_dir():
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"input of the umbrella and of (.*?);", readme, re.S)
    assert match, "the README's sentence about repo-dir"
    said = set(re.findall(r"`([\w-]+)`", match.group(1)))
    actual = {
        p.parent.name
        for p in (ROOT / "actions").glob("*/action.yml")
        if "repo-dir" in (yaml.safe_load(p.read_text()).get("inputs") or {})
        and "deprecated" not in (yaml.safe_load(p.read_text()).get("description") or "").lower()
    }
    assert said == actual
    assert "repo-dir" in yaml.safe_load((ROOT / "action.yml").read_text())["inputs"]
