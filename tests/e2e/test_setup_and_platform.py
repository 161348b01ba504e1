"""The setup step and the R2 platform gate, through the real composite actions under act.

Each workflow here is what a consumer would write: check out, then `uses:`
our actions by path. Nothing re-implements the actions' steps."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.e2e

CHECKOUT = """\
      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2
        with:
          persist-credentials: false
"""


def workflow(steps: str) -> str:
    return f"""\
name: e2e
on: push
permissions: {{}}
jobs:
  gate:
    runs-on: ubuntu-latest
    steps:
{CHECKOUT}{steps}"""


def test_platform_guard_passes_on_linux(act):
    run = act.run(
        workflow("""\
      - id: guard
        uses: ./actions/platform
""")
    )
    job = run.expect_success().job("gate")
    guard = job.step("guard")
    assert guard.result == "success"
    assert guard.outputs == {"platform": "linux", "linux": "true"}
    assert "R2 platform: Linux (linux, runner Linux)" in guard.log
    assert "installed in" in job.step("guard.setup").log


def test_second_gate_in_a_job_reuses_the_install(act):
    run = act.run(
        workflow("""\
      - id: guard
        uses: ./actions/platform
      - id: umbrella
        uses: ./
        with:
          gates: platform
      - id: guard_again
        uses: ./actions/platform
""")
    )
    job = run.expect_success().job("gate")
    first, second, third = (job.step(f"{s}.setup") for s in ("guard", "umbrella", "guard_again"))
    assert "already installed" not in first.log and re.search(r"^tw-gates \S+ installed in ", first.log, re.M)
    assert "already installed in" in second.log
    assert "already installed in" in third.log
    assert first.outputs["bin"] == second.outputs["bin"] == third.outputs["bin"]
    assert job.log.count("installed in") == 3 and job.log.count("already installed in") == 2
    assert job.step("umbrella").outputs["passed"] == "platform"


@pytest.mark.parametrize(
    ("variable", "value", "seen"),
    [
        ("TW_PLATFORM", "win32", "win32"),
        ("RUNNER_OS", "Windows", "Windows"),
    ],
    ids=["python-platform", "runner-os"],
)
def test_non_linux_runner_fails_the_job_and_stops_it(act, variable, value, seen):
    # Step-level env: act lets a job's env override no RUNNER_* variable.
    run = act.run(
        workflow(f"""\
      - id: guard
        uses: ./actions/platform
        env:
          {variable}: {value}
      - id: after
        run: echo "this step must not run"
      - id: cleanup
        if: failure()
        run: echo "failure() steps still run"
""")
    )
    assert run.returncode != 0
    job = run.job("gate")
    assert job.result == "failure"
    guard = job.step("guard")
    assert guard.result == "failure"
    assert job.step("guard.gate").exit_code == 2  # ExitCode.REJECTED
    assert guard.outputs["linux"] == "false"
    errors = [a.message for a in job.annotations if a.level == "error"]
    assert any("runs on Linux only" in m and f"'{seen}'" in m and "runs-on: ubuntu-latest" in m for m in errors), errors
    assert job.step("after").result == "skipped"
    assert "this step must not run" not in job.log
    assert job.step("cleanup").result == "success"


def test_umbrella_action_runs_the_selected_gates(act):
    run = act.run("""\
name: e2e
on: push
permissions: {}
jobs:
  selected:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2
        with:
          persist-credentials: false
      - id: gates
        uses: ./
        with:
          gates: r2
  unknown:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2
        with:
          persist-credentials: false
      - id: gates
        uses: ./
        with:
          gates: platform, no-such-gate
""")
    selected = run.job("selected")
    assert selected.result == "success", run.tail()
    assert selected.step("gates").outputs["passed"] == "platform"
    assert "| platform | pass |" in selected.summary
    unknown = run.job("unknown")
    assert unknown.result == "failure", run.tail()
    assert unknown.step("gates.run").exit_code == 1
    assert "unknown gate(s): no-such-gate" in unknown.log


def test_ci_self_test_job_runs_the_actions_by_self_reference(act):
    """The repository's own CI job, as committed: `uses: $/actions/platform` and `uses: $/.`."""
    run = act.run(".github/workflows/ci.yml", job="self-test")
    job = run.expect_success().job("self-test")
    action_outputs = [s.outputs for s in job.steps.values() if s.stage == "Main" and "." not in s.id]
    assert {"platform": "linux", "linux": "true"} in action_outputs
    # The umbrella's step: the chain's `passed`, beside the outputs of the gate's own command.
    wanted = {"passed": "platform", "platform": "linux", "linux": "true"}
    assert any(wanted.items() <= outputs.items() for outputs in action_outputs), action_outputs
