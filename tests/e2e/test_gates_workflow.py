"""gates.yml end to end under act: a caller workflow runs G1 -> G5 as jobs linked
by `needs:`, in order; when G1 fails, the later gates do not run.

The repository copy gets a known configuration of the five nets (ingest
workflow, issue filing, Prometheus rules), a consumer registry whose consumer
the GitHub emulator protects, and a signed baseline, so the test depends on
the workflow and the actions, not on the state of this repository's own files."""

from __future__ import annotations

import json
import textwrap

import pytest

from tests.unit.test_baseline import capture_doc
from tests.unit.test_verify_nets import INGEST_YML, RULES
from tw_gates.core.signing import PERFORMANCE_BASELINE, KeyRing

pytestmark = pytest.mark.e2e

TOKEN = "ghp_" + "e2eGatesToken0" * 3
KEY = "gates-e2e-baseline-key-0123456789"
CONSUMER = "acme/storefront"
TIMEOUT = 900
GATE_JOBS = ["verify-nets", "behavioral", "audit", "hmac-policy", "telemetry-check"]

CALLER = textwrap.dedent("""\
    name: e2e gates caller
    on: push
    permissions: {}
    jobs:
      tests:
        runs-on: ubuntu-latest
        steps:
          - name: Behavioral tests (their JUnit XML)
            run: |
              mkdir -p junit
              python3 - <<'PY'
              counts = {"test_ingest_gate_enforcement": 4, "test_permission_fallback": 3,
                        "test_digest_idempotency": 4, "test_rate_limit_guard_switches_to_digest": 3}
              cases = "".join(f'<testcase classname="tests.behavioral.{m}" name="test_{i}"/>'
                              for m, n in counts.items() for i in range(n))
              with open("junit/behavioral.xml", "w") as f:
                  f.write(f"<testsuites><testsuite name='pytest'>{cases}</testsuite></testsuites>")
              PY
          - uses: actions/upload-artifact@ea165f8d65b6e75b540449e92b4886f43607fa02 # v4.6.2
            with:
              name: behavioral-junit
              path: junit/
      gates:
        needs: tests
        uses: ./.github/workflows/gates.yml
        permissions:
          contents: read
        secrets:
          TW_BASELINE_KEYS: ${{ secrets.TW_BASELINE_KEYS }}
          AUDIT_TOKEN: ${{ secrets.AUDIT_TOKEN }}
    """)


@pytest.fixture
def emu(github_emulator):
    github_emulator.add_token(TOKEN, login="auditor", kind="user", scopes=["repo"])
    github_emulator.add_repo(CONSUMER, default_branch="main", collaborators={"auditor": "admin"})
    github_emulator.set_branch_protection(CONSUMER, "main", contexts=["tw-gates / self-audit"])
    return github_emulator


def configure(act) -> None:
    """The repository under test: five nets configured, a registry, a signed baseline."""
    act.write(
        ".github/workflows/ingest.yml",
        INGEST_YML.replace("uses: ./actions/ingest", "run: tw-gates ingest --out accepted.jsonl"),
    )
    act.write("prometheus/rules/audit_rules.yml", RULES)
    act.write(
        "consumer_registry.yml",
        textwrap.dedent(f"""\
        schema_version: "1.0"
        consumers:
          - repo: {CONSUMER}
            code_paths: ["app/rendering/**"]
            required_checks: ["tw-gates / self-audit"]
        """),
    )
    baseline = KeyRing(signing_key=KEY, signing_kid="perf", doc_type=PERFORMANCE_BASELINE).sign(
        capture_doc().model_dump(mode="json", exclude_none=True)
    )
    act.write("perf/baseline.json", json.dumps(baseline, indent=2))


def run_caller(act, emu):
    return act.run(
        CALLER,
        api_url=emu.url,
        timeout=TIMEOUT,
        secrets={"TW_BASELINE_KEYS": json.dumps({"perf": KEY}), "AUDIT_TOKEN": TOKEN},
    )


def first_event_index(run, job_key: str) -> int:
    name = run.job(job_key).name
    return next(i for i, e in enumerate(run.events) if (e.get("job") or "").strip() == name)


def test_chain_runs_g1_to_g5_in_order_with_outputs(act, emu):
    configure(act)
    run = run_caller(act, emu).expect_success()
    jobs = {key: run.job(f"gates/{key}") for key in GATE_JOBS}
    assert {key: job.result for key, job in jobs.items()} == dict.fromkeys(GATE_JOBS, "success")
    starts = [first_event_index(run, f"gates/{key}") for key in GATE_JOBS]
    assert starts == sorted(starts), f"gate jobs started out of order: {dict(zip(GATE_JOBS, starts, strict=False))}"

    assert jobs["verify-nets"].outputs == {"verified": "5/5"}
    assert "VERIFIED S1: .github/workflows/ingest.yml job 'ingest'" in jobs["verify-nets"].log
    assert jobs["behavioral"].outputs == {"passed": "14/14"}
    assert jobs["audit"].outputs == {"exit-code": "0"}
    assert f"PASS required_checks {CONSUMER}: {CONSUMER}@main requires tw-gates / self-audit" in jobs["audit"].log
    assert "PASS p0_baseline: perf/baseline.json signed by key 'perf'" in jobs["audit"].log
    assert "### tw-gates audit (G3): exit 0" in jobs["audit"].summary
    assert jobs["hmac-policy"].outputs == {"enforced": "1/1"}
    assert jobs["telemetry-check"].outputs == {"result": "telemetry infrastructure in place"}
    # The report file-issues reads travels as an artifact.
    report = next(run.artifacts()["tw-gates-audit-report"].rglob("*.json"))
    assert json.loads(report.read_text())["exit_code"] == 0
    assert emu.count("GET", rf"/repos/{CONSUMER}/rules/branches/main") == 1


def test_failing_g1_stops_the_later_gates(act, emu):
    configure(act)
    (act.repo / "prometheus/rules/audit_rules.yml").unlink()  # C1 missing
    run = run_caller(act, emu)
    assert not run.ok
    g1 = run.job("gates/verify-nets")
    assert g1.result == "failure"
    assert "MISSING C1: prometheus/rules/audit_rules.yml not found" in g1.log
    assert "4/5 safety nets verified; missing: C1" in g1.log
    assert {key: run.job(f"gates/{key}").result for key in GATE_JOBS[1:]} == dict.fromkeys(GATE_JOBS[1:], "skipped")
    assert emu.count() == 0  # G3 never asked GitHub anything
    assert "tw-gates-audit-report" not in run.artifacts()
