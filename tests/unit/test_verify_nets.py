"""G1 verify-nets on fixture repositories written to tmp dirs.

Each test starts from a repository where all five nets are configured and
breaks one thing, so every MISSING line is caused by exactly that change."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tw_gates.chain.invocations import invocations
from tw_gates.chain.verify_nets import VerifyNetsSettings, verify_nets
from tw_gates.chain.workflow_model import RepoConfig
from tw_gates.core.settings import load_settings

SHA = "11bd71901bbe5b1630ceea73d27597364c9af683"

INGEST_YML = f"""\
name: ingest
on:
  schedule:
    - cron: "17 * * * *"
  workflow_dispatch:
permissions: {{}}
jobs:
  ingest:
    runs-on: ubuntu-latest
    permissions:
      contents: read
    env:
      POLICY_REQUIRE_HMAC: "true"
    steps:
      - uses: actions/checkout@{SHA} # v4.2.2
        with:
          persist-credentials: false
      - name: Ingest gate
        uses: ./actions/ingest
  issues:
    needs: ingest
    runs-on: ubuntu-latest
    concurrency:
      group: tw-gates-issues
      cancel-in-progress: false
    env:
      MAX_ISSUES_PER_RUN: 5
    steps:
      - name: File issues
        run: |
          tw-gates file-issues --audit report.json \\
            --fallback-dir out/fallback
      - name: Keep the fallback
        if: failure()
        uses: actions/upload-artifact@{SHA} # v4
        with:
          name: tw-gates-fallback
          path: out/fallback
"""

INGEST_ACTION = """\
name: ingest gate
inputs:
  require-hmac:
    description: reject unsigned artifacts
    default: "true"
runs:
  using: composite
  steps:
    - id: setup
      shell: bash
      run: '"$GITHUB_ACTION_PATH/../setup/install.sh"'
    - id: gate
      shell: bash
      env:
        TW_GATES_BIN: ${{ steps.setup.outputs.bin }}
        POLICY_REQUIRE_HMAC: ${{ inputs.require-hmac }}
      run: '"$TW_GATES_BIN/tw-gates" ingest --out accepted.jsonl'
"""

RULES = """\
groups:
  - name: tw-gates
    rules:
      - alert: TwGatesCommandFailing
        expr: sum by (command) (increase(tw_gates_command_runs_total{exit_code!="0"}[1h])) > 0
        for: 5m
        labels:
          severity: page
      - alert: TwGatesFallback
        expr: increase(audit_issue_create_failures_total[1h]) > 0
      - alert: TwGatesDigests
        expr: increase(audit_digest_created_total[1d]) > 1
      - alert: TwGatesQuotaLow
        expr: min(github_api_quota_remaining) < 500
      - alert: TwGatesFindings
        expr: increase(audit_unregistered_repos_total[1d]) > 10 or increase(audit_fp_marked_total[7d]) > 5
"""

GOOD = {
    ".github/workflows/ingest.yml": INGEST_YML,
    "actions/ingest/action.yml": INGEST_ACTION,
    "prometheus/rules/audit_rules.yml": RULES,
}


def make_repo(root: Path, files: dict[str, str | None]) -> Path:
    for rel, text in files.items():
        if text is None:
            continue
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


def nets_of(root: Path) -> dict[str, object]:
    result = verify_nets(load_settings(VerifyNetsSettings, {"repo_dir": root}))
    return {n.net: n for n in result.nets}


def with_changes(tmp_path: Path, **changes: str | None) -> Path:
    files = dict(GOOD)
    for key, value in changes.items():
        files[
            {
                "ingest": ".github/workflows/ingest.yml",
                "action": "actions/ingest/action.yml",
                "rules": "prometheus/rules/audit_rules.yml",
            }.get(key, key)
        ] = value
    return make_repo(tmp_path / "repo", files)


def test_fully_configured_repository_verifies_five_of_five_with_evidence(tmp_path, cli):
    repo = with_changes(tmp_path)
    code, out, _ = cli("verify-nets", "--repo-dir", repo)
    assert code == 0, out
    lines = out.splitlines()
    assert [line.split(":")[0] for line in lines[:5]] == [f"VERIFIED {n}" for n in ("S1", "S2", "R1", "R2", "C1")]
    assert lines[-1] == "G1: 5/5 safety nets verified"
    s1, s2, r1, r2, c1 = lines[:5]
    # Evidence names file, job and step, and where the value came from.
    assert ".github/workflows/ingest.yml job 'ingest' step 'Ingest gate'" in s1
    assert "POLICY_REQUIRE_HMAC=true" in s1 and "default of input 'require-hmac'" in s1
    assert (
        "fallback folder 'out/fallback' (--fallback-dir of `tw-gates file-issues` in run:); "
        "step 'Keep the fallback' uploads 'out/fallback' with `if: failure()`"
    ) in s2
    assert "MAX_ISSUES_PER_RUN=5" in r1 and "job concurrency group 'tw-gates-issues'" in r1
    assert "Linux runners (ubuntu-*/linux) for .github/workflows/ingest.yml (ingest, issues)" in r2
    assert c1.endswith(
        "5 alert(s) in 1 group(s) reading audit_issue_create_failures_total, audit_digest_created_total, "
        "github_api_quota_remaining, audit_unregistered_repos_total, audit_fp_marked_total, "
        "tw_gates_command_runs_total"
    )


def test_one_missing_net_fails_with_exit_2_and_names_it(tmp_path, cli):
    repo = with_changes(tmp_path, rules=None)
    code, out, err = cli("verify-nets", "--repo-dir", repo)
    assert code == 2
    assert "MISSING C1: prometheus/rules/audit_rules.yml not found" in out
    assert "4/5 safety nets verified; missing: C1" in err


def test_repo_dir_from_environment_and_unknown_folder(tmp_path, cli):
    repo = with_changes(tmp_path)
    assert cli("verify-nets", env={"TW_REPO_DIR": str(repo)})[0] == 0
    code, _, err = cli("verify-nets", "--repo-dir", tmp_path / "nope")
    assert code == 1 and "repository folder not found" in err


# --------------------------------------------------------------------------- S1


def test_s1_needs_the_ingest_workflow(tmp_path):
    repo = with_changes(tmp_path, ingest=None, **{".github/workflows/other.yml": INGEST_YML})
    s1 = nets_of(repo)["S1"]
    assert not s1.verified and ".github/workflows/ingest.yml not found" in s1.detail


@pytest.mark.parametrize(
    ("step_env", "expected"),
    [
        ('POLICY_REQUIRE_HMAC: "false"', "POLICY_REQUIRE_HMAC is 'false' from step env"),
        ("POLICY_REQUIRE_HMAC: ${{ vars.REQUIRE_HMAC }}", "only known at run time"),
        ("POLICY_REQUIRE_HMAC: ''", "POLICY_REQUIRE_HMAC is not set"),
    ],
    ids=["false", "vars", "empty"],
)
def test_s1_step_env_overrides_job_env(tmp_path, step_env, expected):
    # An action that does not set POLICY_REQUIRE_HMAC itself runs with the
    # caller's env: the step's value beats the job's "true".
    action = INGEST_ACTION.replace("        POLICY_REQUIRE_HMAC: ${{ inputs.require-hmac }}\n", "")
    workflow = INGEST_YML.replace(
        "        uses: ./actions/ingest\n",
        f"        uses: ./actions/ingest\n        env:\n          {step_env}\n",
    )
    s1 = nets_of(with_changes(tmp_path, ingest=workflow, action=action))["S1"]
    assert not s1.verified
    assert expected in s1.detail and "job 'ingest' step 'Ingest gate'" in s1.detail


def test_s1_action_input_overrides_caller_env(tmp_path):
    workflow = INGEST_YML.replace(
        "        uses: ./actions/ingest\n",
        "        uses: ./actions/ingest\n        with:\n          require-hmac: false\n",
    )
    s1 = nets_of(with_changes(tmp_path, ingest=workflow))["S1"]
    assert not s1.verified and "`with: require-hmac`" in s1.detail


def test_s1_run_step_with_require_hmac_flag_or_workflow_env(tmp_path):
    flag = INGEST_YML.replace(
        "        uses: ./actions/ingest\n", "        run: tw-gates ingest --require-hmac --out accepted.jsonl\n"
    )
    flag = flag.replace('      POLICY_REQUIRE_HMAC: "true"\n', '      POLICY_REQUIRE_HMAC: "false"\n')
    s1 = nets_of(with_changes(tmp_path / "a", ingest=flag))["S1"]
    assert s1.verified and "--require-hmac of `tw-gates ingest`" in s1.detail

    workflow_env = INGEST_YML.replace("permissions: {}\n", "permissions: {}\nenv:\n  POLICY_REQUIRE_HMAC: 'true'\n", 1)
    workflow_env = workflow_env.replace('    env:\n      POLICY_REQUIRE_HMAC: "true"\n', "")
    workflow_env = workflow_env.replace(
        "        uses: ./actions/ingest\n", "        run: python3 -m tw_gates ingest --out accepted.jsonl\n"
    )
    s1 = nets_of(with_changes(tmp_path / "b", ingest=workflow_env))["S1"]
    assert s1.verified and "workflow env of .github/workflows/ingest.yml" in s1.detail


def test_s1_reusable_workflow_input_default(tmp_path):
    workflow = INGEST_YML.replace(
        "  workflow_dispatch:\n",
        ("  workflow_call:\n    inputs:\n      require-hmac:\n        type: string\n        default: 'true'\n"),
    )
    workflow = workflow.replace(
        'POLICY_REQUIRE_HMAC: "true"', "POLICY_REQUIRE_HMAC: ${{ inputs.require-hmac || 'false' }}"
    )
    workflow = workflow.replace("        uses: ./actions/ingest\n", "        run: tw-gates ingest\n")
    s1 = nets_of(with_changes(tmp_path, ingest=workflow))["S1"]
    assert s1.verified and "inputs.require-hmac" in s1.detail


def test_s1_remote_reference_reads_the_bundled_action(tmp_path):
    tw_gates = make_repo(tmp_path / "tw-gates", {"actions/ingest/action.yml": INGEST_ACTION})
    workflow = INGEST_YML.replace("uses: ./actions/ingest", "uses: org/tw-gates/actions/ingest@v3")
    repo = with_changes(tmp_path, ingest=workflow, action=None)
    found = invocations(RepoConfig(repo, tw_gates_root=tw_gates))
    assert [(c.command, c.env["POLICY_REQUIRE_HMAC"].value) for c in found if c.command == "ingest"] == [
        ("ingest", "true")
    ]
    # An actions/<name> of another project is not ours.
    other = INGEST_YML.replace("uses: ./actions/ingest", "uses: someone/else/actions/ingest@v1")
    repo = with_changes(tmp_path / "other", ingest=other, action=None)
    assert not [c for c in invocations(RepoConfig(repo, tw_gates_root=tw_gates)) if c.command == "ingest"]


# --------------------------------------------------------------------------- S2 / R1


def test_s2_needs_an_upload_that_runs_on_failure(tmp_path):
    no_if = INGEST_YML.replace("        if: failure()\n", "")
    s2 = nets_of(with_changes(tmp_path / "a", ingest=no_if))["S2"]
    assert not s2.verified and "nothing uploads the fallback artifact on failure" in s2.detail
    always = INGEST_YML.replace("if: failure()", "if: ${{ always() }}")
    assert nets_of(with_changes(tmp_path / "b", ingest=always))["S2"].verified
    before = (
        INGEST_YML.split("      - name: File issues")[0]
        + textwrap.dedent(f"""\
          - if: failure()
            uses: actions/upload-artifact@{SHA}
            with:
              path: out/fallback
          - name: File issues
            run: tw-gates file-issues
    """)
        .replace("\n", "\n      ")
        .rstrip()
        + "\n"
    )
    assert not nets_of(with_changes(tmp_path / "c", ingest=before))["S2"].verified  # upload runs before filing


def test_s2_and_r1_without_file_issues(tmp_path):
    workflow = INGEST_YML.split("  issues:\n")[0]
    nets = nets_of(with_changes(tmp_path, ingest=workflow))
    assert not nets["S2"].verified and "no workflow step runs file-issues" in nets["S2"].detail
    assert not nets["R1"].verified


def test_s2_fallback_uploaded_inside_the_action(tmp_path):
    action = (
        """\
    name: file issues
    runs:
      using: composite
      steps:
        - shell: bash
          run: tw-gates file-issues
        - if: failure()
          uses: actions/upload-artifact@"""
        + SHA
        + """
          with:
            path: tw-gates-fallback
    """
    )
    workflow = INGEST_YML.split("      - name: File issues")[0] + "      - uses: ./actions/file-issues\n"
    s2 = nets_of(with_changes(tmp_path, ingest=workflow, **{"actions/file-issues/action.yml": action}))["S2"]
    assert (
        s2.verified
        and (
            "fallback folder 'tw-gates-fallback' (file-issues' default); "
            "./actions/file-issues/action.yml step 2 uploads 'tw-gates-fallback'"
        )
        in s2.detail
    )


def test_s2_upload_must_include_the_fallback_folder(tmp_path):
    elsewhere = INGEST_YML.replace(
        "          path: out/fallback\n", "          path: |\n            logs/\n            !logs/tmp\n"
    )
    s2 = nets_of(with_changes(tmp_path / "a", ingest=elsewhere))["S2"]
    assert (
        not s2.verified
        and "uploads 'logs/, !logs/tmp' on failure, but the fallback goes to 'out/fallback'" in s2.detail
    )
    parent = INGEST_YML.replace(
        "          path: out/fallback\n", "          path: |\n            logs/\n            out/\n"
    )
    assert nets_of(with_changes(tmp_path / "b", ingest=parent))["S2"].verified


def test_r1_needs_a_concurrency_group(tmp_path):
    workflow = INGEST_YML.replace(
        "    concurrency:\n      group: tw-gates-issues\n      cancel-in-progress: false\n", ""
    )
    r1 = nets_of(with_changes(tmp_path / "a", ingest=workflow))["R1"]
    assert not r1.verified and "job 'issues'" in r1.detail and "without a `concurrency:` group" in r1.detail
    top = workflow.replace("permissions: {}\n", "permissions: {}\nconcurrency: tw-gates-central\n", 1)
    r1 = nets_of(with_changes(tmp_path / "b", ingest=top))["R1"]
    assert r1.verified and "workflow concurrency group 'tw-gates-central'" in r1.detail


@pytest.mark.parametrize(
    ("cap", "verified", "expected"),
    [
        (None, True, "default cap 10 of file-issues"),
        ("'0'", True, "MAX_ISSUES_PER_RUN=0"),
        ("ten", False, "must be a whole number"),
        ("${{ vars.CAP }}", True, "checked by file-issues at run time"),
    ],
)
def test_r1_cap(tmp_path, cap, verified, expected):
    workflow = INGEST_YML.replace("      MAX_ISSUES_PER_RUN: 5\n", f"      MAX_ISSUES_PER_RUN: {cap}\n" if cap else "")
    if cap is None:
        workflow = workflow.replace(
            "    env:\n    steps:\n      - name: File issues", "    steps:\n      - name: File issues"
        )
    r1 = nets_of(with_changes(tmp_path, ingest=workflow))["R1"]
    assert r1.verified is verified and expected in r1.detail


def test_r1_flag_wins_over_env(tmp_path):
    workflow = INGEST_YML.replace("tw-gates file-issues --audit report.json", "tw-gates file-issues --max-issues 3")
    r1 = nets_of(with_changes(tmp_path, ingest=workflow))["R1"]
    assert r1.verified and "MAX_ISSUES_PER_RUN=3 (--max-issues" in r1.detail


# --------------------------------------------------------------------------- R2


def test_r2_non_linux_job_without_guard(tmp_path):
    workflow = INGEST_YML.replace("runs-on: ubuntu-latest\n    concurrency", "runs-on: windows-latest\n    concurrency")
    r2 = nets_of(with_changes(tmp_path, ingest=workflow))["R2"]
    assert not r2.verified and "job 'issues'" in r2.detail and "'windows-latest' is not a Linux runner" in r2.detail


def test_r2_platform_guard_covers_any_runner(tmp_path):
    workflow = INGEST_YML.replace(
        "runs-on: ubuntu-latest\n    concurrency", "runs-on: [self-hosted, gpu]\n    concurrency"
    )
    workflow = workflow.replace(
        "      - name: File issues\n", "      - run: tw-gates platform\n      - name: File issues\n"
    )
    r2 = nets_of(with_changes(tmp_path, ingest=workflow))["R2"]
    assert r2.verified and r2.detail == (
        "platform guard in .github/workflows/ingest.yml (issues); "
        "Linux runners (ubuntu-*/linux) for .github/workflows/ingest.yml (ingest)"
    )


def test_r2_umbrella_selection_decides(tmp_path):
    umbrella = make_repo(
        tmp_path / "repo",
        {
            **GOOD,
            "action.yml": """\
        name: tw-gates
        inputs:
          gates:
            default: all
        runs:
          using: composite
          steps:
            - id: run
              shell: bash
              env:
                TW_GATES_SELECTION: ${{ inputs.gates }}
              run: '"$TW_GATES_BIN/tw-gates" gates --only "$TW_GATES_SELECTION"'
        """,
        },
    )
    extra = "  mac:\n    runs-on: macos-latest\n    steps:\n      - uses: ./\n        with:\n          gates: {}\n"
    wf = umbrella / ".github/workflows/ingest.yml"
    wf.write_text(INGEST_YML + extra.format("platform"))
    assert nets_of(umbrella)["R2"].verified
    wf.write_text(INGEST_YML + extra.format("platform").replace("uses: ./", "uses: $/."))  # self-repository syntax
    assert nets_of(umbrella)["R2"].verified
    wf.write_text(INGEST_YML + extra.format("g4"))
    r2 = nets_of(umbrella)["R2"]
    assert not r2.verified and "job 'mac'" in r2.detail


def test_r2_matrix_runner(tmp_path):
    workflow = INGEST_YML.replace(
        "runs-on: ubuntu-latest\n    concurrency",
        (
            "strategy:\n      matrix:\n        os: [ubuntu-22.04, windows-2022]\n"
            "    runs-on: ${{ matrix.os }}\n    concurrency"
        ),
    )
    r2 = nets_of(with_changes(tmp_path, ingest=workflow))["R2"]
    assert not r2.verified and "windows-2022" in r2.detail


# --------------------------------------------------------------------------- C1


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        ("groups: [", "invalid YAML"),
        ("groups: []\n", "no `groups:` list"),
        ("groups:\n  - name: g\n    rules:\n      - record: x\n        expr: vector(1)\n", "defines no alerts"),
        (
            "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up == 0\n"
            "        annotations:\n          summary: tw_gates_command_runs_total is not read here\n",
            "no alert reads audit_issue_create_failures_total, audit_digest_created_total",
        ),
        (
            RULES.replace("increase(audit_digest_created_total[1d])", 'absent(up{job="audit_digest_created_total"})'),
            "no alert reads audit_digest_created_total",
        ),
    ],
)
def test_c1_rules_must_parse_and_alert_on_the_metrics(tmp_path, rules, expected):
    c1 = nets_of(with_changes(tmp_path, rules=rules))["C1"]
    assert not c1.verified and expected in c1.detail


def test_c1_metric_read_through_a_recording_rule(tmp_path):
    rules = RULES.replace(
        "    rules:\n",
        (
            "    rules:\n      - record: tw:failures:rate1h\n"
            '        expr: sum(rate(tw_gates_command_runs_total{exit_code!="0"}[1h]))\n'
        ),
        1,
    )
    rules = rules.replace(
        'sum by (command) (increase(tw_gates_command_runs_total{exit_code!="0"}[1h]))', "tw:failures:rate1h"
    )
    assert "tw_gates_command_runs_total" not in rules.split("alert:", 1)[1]
    c1 = nets_of(with_changes(tmp_path, rules=rules))["C1"]
    assert c1.verified and "tw_gates_command_runs_total" in c1.detail


def test_broken_workflow_is_reported_not_fatal(tmp_path, cli):
    repo = with_changes(tmp_path, **{".github/workflows/broken.yml": "jobs: [\n"})
    code, out, err = cli("verify-nets", "--repo-dir", repo)
    assert code == 0, out
    assert "skipped, not parsed: .github/workflows/broken.yml:2: invalid YAML" in err


def test_self_repository_syntax_is_a_local_action(tmp_path):
    workflow = INGEST_YML.replace("uses: ./actions/ingest", "uses: $/actions/ingest")
    s1 = nets_of(with_changes(tmp_path, ingest=workflow))["S1"]
    assert s1.verified and "($/actions/ingest)" in s1.detail


def test_folder_made_by_the_job_resolves_to_the_bundled_action(tmp_path):
    # gates.yml's jobs run ./.tw-gates/actions/<gate>, a folder that exists only in the job.
    tw_gates = make_repo(tmp_path / "tw-gates", {"actions/ingest/action.yml": INGEST_ACTION})
    workflow = INGEST_YML.replace("uses: ./actions/ingest", "uses: ./.tw-gates/actions/ingest")
    repo = with_changes(tmp_path, ingest=workflow, action=None)
    found = [c for c in invocations(RepoConfig(repo, tw_gates_root=tw_gates)) if c.command == "ingest"]
    assert [c.via for c in found] == ["./.tw-gates/actions/ingest"]
