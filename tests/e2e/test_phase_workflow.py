"""phase.yml end to end under act, with the GitHub emulator serving the Actions
artifacts between runs: phase 0 completes; phase 1 starts from phase 0's
artifact (uploaded by the first run, served by the emulator) and completes;
phase 2 without phase 1 is refused; a tampered phase 1 artifact is refused.

Everything is real: phase.yml, its actions, the behavioral suite
(tests/behavioral, through the `tests-command` input with this interpreter,
which has pytest: the job's offline python3 has not) and the whole gate chain
(gates.yml, G1 -> G5) on a copy configured as gates.yml's own end-to-end test
configures it (five nets, a registry whose consumer the emulator protects, a
signed baseline)."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.test_gates_workflow import CONSUMER, configure
from tests.e2e.test_gates_workflow import KEY as BASELINE_KEY
from tests.e2e.test_gates_workflow import TOKEN as AUDIT_TOKEN

pytestmark = pytest.mark.e2e

REPOSITORY = "org/tw-gates"  # the rig's copy has this origin: act sets GITHUB_REPOSITORY from it
TOKEN = "ghs_" + "e2ePhaseToken" * 3
KEY = "phase-e2e-signing-key-0123456789"
WORKFLOW = ".github/workflows/phase.yml"
TIMEOUT = 1200
# The real suite, written as JUnit XML where phase.yml's behavioral job wants it.
TESTS_COMMAND = (
    f"PYTHONPATH=scripts {shlex.quote(sys.executable)} -m pytest tests/behavioral -q "
    '-p no:cacheprovider --junitxml "$TW_JUNIT_DIR/behavioral.xml"'
)
GATES = ["verify-nets", "behavioral", "audit", "hmac-policy", "telemetry-check"]


@pytest.fixture
def emu(github_emulator):
    # The workflow token: reads this repository's Actions artifacts (phase artifacts).
    github_emulator.add_token(
        TOKEN, kind="actions", repo_permissions={REPOSITORY: {"actions": "read", "contents": "read"}}
    )
    github_emulator.add_repo(REPOSITORY, private=True)
    # G3's token and the consumer whose required checks it reads.
    github_emulator.add_token(AUDIT_TOKEN, login="auditor", kind="user", scopes=["repo"])
    github_emulator.add_repo(CONSUMER, default_branch="main", collaborators={"auditor": "admin"})
    github_emulator.set_branch_protection(CONSUMER, "main", contexts=["tw-gates / self-audit"])
    return github_emulator


@pytest.fixture
def rig(act):
    configure(act)
    return act


def run_phase(act, emu, phase: int, *, name: str = "", push_tag: bool = False):
    inputs = {"phase": str(phase), "tests-command": TESTS_COMMAND, "push-tag": "true" if push_tag else "false"}
    if name:
        inputs["name"] = name
    secrets = {
        "GITHUB_TOKEN": TOKEN,
        "TW_PHASE_KEY": KEY,
        "TW_BASELINE_KEYS": json.dumps({"perf": BASELINE_KEY}),
        "AUDIT_TOKEN": AUDIT_TOKEN,
    }
    return act.run(
        WORKFLOW, event="workflow_dispatch", inputs=inputs, api_url=emu.url, secrets=secrets, timeout=TIMEOUT
    )


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


def git_head(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD")


def uploaded(run, phase: int) -> bytes:
    folder = run.artifacts().get(f"phase-{phase}-complete")
    assert folder is not None, f"no phase-{phase}-complete uploaded; artifacts: {list(run.artifacts())}"
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert [p.name for p in files] == [f".phase-{phase}.complete.json"]
    return files[0].read_bytes()


def publish(emu, phase: int, data: bytes) -> int:
    """What GitHub keeps after a successful run: the artifact, listed and downloadable."""
    run_id = emu.add_workflow_run(
        REPOSITORY, conclusion="success", name="phase", event="workflow_dispatch", path=WORKFLOW
    )
    return emu.add_artifact(
        REPOSITORY, f"phase-{phase}-complete", files={f".phase-{phase}.complete.json": data}, run_id=run_id
    )


def test_phases_unlock_in_order_and_refuse_a_missing_or_tampered_predecessor(rig, emu):
    # The push-tag job pushes to origin; here origin's push URL is a local bare repository.
    remote = rig.base_dir / "origin.git"
    git(rig.base_dir, "init", "-q", "--bare", str(remote))
    git(rig.repo, "remote", "set-url", "--push", "origin", str(remote))

    # Phase 0: no prerequisite; the gates pass; the signed artifact is uploaded; the tag is pushed.
    run0 = run_phase(rig, emu, 0, push_tag=True)
    run0.expect_success()
    assert git(remote, "rev-parse", "refs/tags/phase-0-complete^{commit}") == git_head(rig.repo)
    assert "Phase 0 has no prerequisite" in run0.job("unlock").log
    phase0 = json.loads(uploaded(run0, 0))
    assert phase0["phase"] == 0 and phase0["signature"]["kid"] == "default"
    assert phase0["git_commit"] == git_head(rig.repo)
    assert phase0["ci_gates_passed"] == ["G1", "G2", "G3", "G4", "G5"]
    assert phase0["baseline_pass_count"] == "14/14"  # the real suite, read by G2 and again by complete
    assert {g: run0.job(f"gates/{g}").result for g in GATES} == dict.fromkeys(GATES, "success")
    assert run0.job("gates/behavioral").outputs == {"passed": "14/14"}
    assert phase0["safety_nets_count_after"] == 5  # G1, measured again by complete on the same checkout
    complete0 = run0.job("complete")
    assert "# Phase 0 Completion Report" in complete0.summary
    assert "## Next Steps" in complete0.summary and "{{" not in complete0.summary

    # Phase 1: phase 0's artifact comes from the emulator, through the REST API.
    artifact_id = publish(emu, 0, uploaded(run0, 0))
    emu.clear_requests()
    run1 = run_phase(rig, emu, 1, name="Ingest gate")
    run1.expect_success()
    assert run1.job("push-tag").result == "skipped"
    unlock1 = run1.job("unlock").log
    assert f"Actions artifact phase-0-complete (id {artifact_id})" in unlock1
    assert "Phase 1 may start" in unlock1
    assert emu.count("GET", rf"/repos/{REPOSITORY}/actions/artifacts/{artifact_id}/zip$") >= 1
    phase1 = json.loads(uploaded(run1, 1))
    assert phase1["phase"] == 1 and phase1["phase_name"] == "Ingest gate"
    assert phase1["safety_nets_count_before"] == phase0["safety_nets_count_after"]

    # Phase 2 while phase 1's artifact is not published: refused at unlock, nothing else runs.
    run2 = run_phase(rig, emu, 2)
    assert not run2.ok
    unlock2 = run2.job("unlock")
    assert unlock2.result == "failure"
    assert (
        "Phase 1 not complete. Cannot start Phase 2. Reason: no Actions artifact phase-1-complete from a "
        f"successful run of {WORKFLOW} on main in {REPOSITORY}"
    ) in unlock2.log
    assert "phase-2-complete" not in run2.artifacts()
    assert run2.jobs.get("complete") is None or run2.job("complete").result != "success"

    # A tampered phase 1 artifact (one field changed, signature kept) is refused.
    tampered = dict(phase1, safety_nets_count_after=phase1["safety_nets_count_after"] + 1)
    publish(emu, 1, json.dumps(tampered).encode())
    run2 = run_phase(rig, emu, 2)
    unlock2 = run2.job("unlock")
    assert unlock2.result == "failure"
    assert "Phase 1 not complete. Cannot start Phase 2. Reason: signature check failed" in unlock2.log
    assert "phase-2-complete" not in run2.artifacts()
