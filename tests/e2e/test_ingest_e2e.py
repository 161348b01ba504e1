"""S1 end to end under nektos/act: a consumer job runs actions/self-audit
(scan, sign, upload), central jobs download that artifact and run
actions/ingest with POLICY_REQUIRE_HMAC=true. The signed artifact
passes; a tampered copy fails its job with exit 2 and is quarantined.
And the central side: actions/collect fetches the artifact from the GitHub
API (the emulator) and actions/ingest accepts it; then the whole of
.github/workflows/ingest.yml (plan, shard, audit, issue plan dry run)."""

from __future__ import annotations

import json
import time

import pytest

from tw_gates.core.signing import KeyRing

pytestmark = pytest.mark.e2e

KEY_ID, KEY = "k2026", "consumer-signing-secret-2026-0123456789"

CHECKOUT = """\
      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2
        with:
          persist-credentials: false
"""
DOWNLOAD = """\
      - uses: actions/download-artifact@d3f86a106a0bac45b974a628896c90dbdf5c8093 # v4.3.0
        with:
          name: tw-self-audit
          path: ${{ runner.temp }}/consumer-artifacts
"""


def central_job(name: str, tamper: bool) -> str:
    tamper_step = (
        """\
      - name: An attacker drops the unregistered hits
        env:
          ARTIFACTS: ${{ runner.temp }}/consumer-artifacts
        run: |
          python3 - "$ARTIFACTS/tw-self-audit.json" <<'PY'
          import json, sys
          path = sys.argv[1]
          document = json.load(open(path))
          document["hits"] = [h for h in document["hits"] if h["path"].startswith("app/rendering/")]
          json.dump(document, open(path, "w"))
          PY
"""
        if tamper
        else ""
    )
    return f"""\
  {name}:
    needs: consumer
    runs-on: ubuntu-latest
    env:
      POLICY_REQUIRE_HMAC: "true"
    steps:
{CHECKOUT}{DOWNLOAD}{tamper_step}      - id: gate
        uses: ./actions/ingest
        with:
          artifacts: ${{{{ runner.temp }}}}/consumer-artifacts
          hmac-keys: ${{{{ secrets.TW_HMAC_KEYS }}}}
          require-hmac: ${{{{ env.POLICY_REQUIRE_HMAC }}}}
          out: accepted.jsonl
          quarantine-artifact: quarantine-{name}
      - id: accepted
        run: cat accepted.jsonl
"""


WORKFLOW = f"""\
name: e2e-ingest
on: push
permissions: {{}}
jobs:
  consumer:
    runs-on: ubuntu-latest
    steps:
{CHECKOUT}      - id: audit
        uses: ./actions/self-audit
        with:
          repo-dir: examples/consumer
          sarif: ${{{{ runner.temp }}}}/tw-self-audit.sarif
          hmac-key: ${{{{ secrets.CONSUMER_HMAC_KEY }}}}
          hmac-key-id: {KEY_ID}
{central_job("central", tamper=False)}{central_job("central-tampered", tamper=True)}"""


def test_signed_self_audit_artifact_passes_the_ingest_gate_and_a_tampered_copy_fails_with_exit_2(act):
    run = act.run(WORKFLOW, secrets={"CONSUMER_HMAC_KEY": KEY, "TW_HMAC_KEYS": json.dumps({KEY_ID: KEY})}, timeout=420)

    consumer = run.job("consumer")
    assert consumer.result == "success", run.tail()
    audit = consumer.step("audit")
    assert audit.outputs["signed"] == "true" and int(audit.outputs["hits"]) >= 6
    uploaded = run.artifacts()["tw-self-audit"]
    artifact = json.loads((uploaded / "tw-self-audit.json").read_text())
    assert artifact["signature"]["kid"] == KEY_ID
    assert artifact["repo"] == "org/tw-gates" and artifact["branch"] == "main"  # from the runner's env
    assert not any(h["path"].startswith(("node_modules/", "web/dist/")) for h in artifact["hits"])

    central = run.job("central")
    assert central.result == "success", run.tail()
    gate = central.step("gate")
    assert gate.outputs["accepted"] == "1" and gate.outputs["rejected"] == "0"
    assert [json.loads(line) for line in central.step("accepted").log.strip().splitlines() if line.startswith("{")] == [
        artifact
    ]

    tampered = run.job("central-tampered")
    assert tampered.result == "failure"
    gate = tampered.step("gate")
    assert gate.result == "failure" and tampered.step("gate.gate").exit_code == 2
    assert "REJECTED" in gate.log and "bad_signature" in gate.log
    assert any("bad_signature" in a.message for a in gate.annotations)
    assert tampered.step("accepted").result in (None, "skipped")  # the job stopped at the gate
    quarantine = run.artifacts()["quarantine-central-tampered"]
    reason = json.loads((quarantine / "tw-self-audit.json.reason.json").read_text())
    assert reason["reason"] == "bad_signature"


def test_central_job_collects_from_the_github_api_and_ingests(act, github_emulator):
    emu = github_emulator
    emu.add_repo("acme/shop")
    emu.add_token("collector-token-0123456789", kind="app", repo_permissions={"acme/shop": {"actions": "read"}})
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    document = KeyRing(signing_key=KEY, signing_kid=KEY_ID).sign(
        {
            "schema_version": "1.0",
            "repo": "acme/shop",
            "commit": "ab" * 20,
            "branch": "main",
            "generated_at": stamp,
            "tool_version": "0.1.0",
            "hits": [{"path": "web/app.js", "line": 3, "pattern": "dom-inner-html"}],
        }
    )
    run_id = emu.add_workflow_run("acme/shop", head_branch="main")
    emu.add_artifact("acme/shop", "tw-self-audit", files={"tw-self-audit.json": json.dumps(document)}, run_id=run_id)
    act.write(
        "central-registry.yml", "schema_version: '1.0'\nconsumers:\n  - {repo: acme/shop, default_branch: main}\n"
    )
    run = act.run(
        f"""\
name: e2e-central
on: push
permissions: {{}}
jobs:
  central:
    runs-on: ubuntu-latest
    steps:
{CHECKOUT}      - id: collect
        uses: ./actions/collect
        with:
          registry: central-registry.yml
          out: ${{{{ runner.temp }}}}/collected
          github-token: ${{{{ secrets.COLLECT_TOKEN }}}}
      - id: gate
        uses: ./actions/ingest
        with:
          artifacts: ${{{{ steps.collect.outputs.out }}}}
          hmac-keys: ${{{{ secrets.TW_HMAC_KEYS }}}}
""",
        api_url=emu.url,
        secrets={"COLLECT_TOKEN": "collector-token-0123456789", "TW_HMAC_KEYS": json.dumps({KEY_ID: KEY})},
        timeout=300,
    )
    job = run.expect_success().job("central")
    assert job.step("collect").outputs["collected"] == "1"
    assert "DOWNLOADED acme/shop" in job.step("collect").log
    assert job.step("gate").outputs["accepted"] == "1"
    assert emu.count("GET", r"/actions/artifacts/\d+/zip$") == 1


def cache_stand_in(folder):
    """actions/cache/restore and /save for act, offline: a cache miss, and a save
    that keeps nothing (each act run starts without caches anyway)."""
    for part, note in (("restore", "cache miss"), ("save", "nothing kept")):
        (folder / part).mkdir(parents=True)
        (folder / part / "action.yml").write_text(f"""\
name: cache {part} stand-in (e2e tests only)
inputs:
  path: {{required: true}}
  key: {{required: true}}
  restore-keys: {{required: false, default: ""}}
outputs:
  cache-hit: {{value: "false"}}
runs:
  using: composite
  steps:
    - shell: bash
      run: 'echo "cache {part} stand-in - {note}"'
""")
    return folder


def test_ingest_workflow_collects_ingests_audits_and_plans_issues(act, github_emulator, tmp_path):
    emu = github_emulator
    # signed or not; evil/tool's own run uploads an artifact that claims acme/shop, clean and newer
    consumers = {"acme/shop": True, "acme/blog": False, "evil/tool": True}
    token = "collector-token-0123456789"
    for repo in consumers:
        emu.add_repo(repo)
    emu.add_token(token, kind="app", repo_permissions={r: {"actions": "read", "metadata": "read"} for r in consumers})
    for repo, sign in consumers.items():
        evil = repo == "evil/tool"
        document = {
            "schema_version": "1.0",
            "repo": "acme/shop" if evil else repo,
            "commit": "cd" * 20,
            "branch": "main",
            "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + (120 if evil else 0))),
            "tool_version": "0.1.0",
            "hits": [] if evil else [{"path": "web/app.js", "line": 3, "pattern": "dom-inner-html"}],
        }
        if sign:
            document = KeyRing(signing_key=KEY, signing_kid=KEY_ID).sign(document)
        run_id = emu.add_workflow_run(repo, head_branch="main")
        emu.add_artifact(repo, "tw-self-audit", files={"tw-self-audit.json": json.dumps(document)}, run_id=run_id)
    act.write(
        "consumer_registry.yml",
        "schema_version: '1.0'\nconsumers:\n"
        + "".join(f"  - {{repo: {r}, default_branch: main, code_paths: ['app/**']}}\n" for r in consumers),
    )

    run = act.run(
        ".github/workflows/ingest.yml",
        event="workflow_dispatch",
        api_url=emu.url,
        secrets={"COLLECT_TOKEN": token, "AUDIT_TOKEN": token, "TW_HMAC_KEYS": json.dumps({KEY_ID: KEY})},
        stand_ins={"actions/cache": cache_stand_in(tmp_path / "cache-stand-in")},
        timeout=480,
    )

    assert run.job("plan").outputs == {"shards": "[1]", "count": "1"}, run.tail()
    shard = next(job for key, job in run.jobs.items() if key.startswith("ingest"))
    # The unsigned consumer is rejected under the policy, and evil/tool speaking for acme/shop
    # for where it was collected from: the shard fails, visibly...
    assert shard.result == "failure", run.tail()
    assert shard.step("collect").outputs["collected"] == "3", run.tail()
    gate = shard.step("gate")
    assert gate.outputs["accepted"] == "1" and gate.outputs["rejected"] == "2"
    assert "acme__blog.json: missing_signature" in gate.log
    assert "evil__tool.json: repo_mismatch: the artifact claims acme/shop but was collected from evil/tool" in gate.log
    artifacts = run.artifacts()
    accepted = [
        json.loads(line) for line in (artifacts["tw-gates-accepted-shard-1"] / "shard-1.jsonl").read_text().splitlines()
    ]
    assert [(a["repo"], a["provenance"]["repo"], a["provenance"]["event"]) for a in accepted] == [
        ("acme/shop", "acme/shop", "push")
    ]
    assert (artifacts["tw-gates-quarantine-shard-1"] / "acme__blog.json.reason.json").exists()
    # ... and what was accepted is still audited, and the issue plan made without writing anything.
    audit = run.job("audit")
    assert audit.outputs["accepted"] == "1"  # acme/shop's finding is still there
    report = json.loads((artifacts["tw-gates-ingest-results"] / "tw-gates-audit.json").read_text())
    assert [(h["repo"], h["path"]) for h in report["unregistered_hits"]] == [("acme/shop", "web/app.js")]
    assert audit.step("issue-plan").result == "success"
    assert (artifacts["tw-gates-ingest-results"] / "tw-gates-issue-plan.txt").read_text().strip()
    assert emu.count("POST") == 0 and emu.count("PATCH") == 0
