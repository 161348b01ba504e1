"""The e2e rig itself: artifact stand-ins, results of reusable workflows, run options, timeouts.

Other e2e tests trust what the rig reports; these check it against workflows
whose outcome is known."""

from __future__ import annotations

import os
import time

import pytest

from tests.e2e.act_rig import ActRigError, caller_workflow

pytestmark = pytest.mark.e2e

UPLOAD = "actions/upload-artifact@ea165f8d65b6e75b540449e92b4886f43607fa02 # v4.6.2"
DOWNLOAD = "actions/download-artifact@d3f86a106a0bac45b974a628896c90dbdf5c8093 # v4.3.0"


def test_artifacts_round_trip_through_the_stand_ins(act):
    run = act.run(f"""\
name: artifacts
on: push
permissions: {{}}
jobs:
  produce:
    runs-on: ubuntu-latest
    outputs:
      report-id: ${{{{ steps.report.outputs.artifact-id }}}}
    steps:
      - run: |
          mkdir -p out/sub out/.cache
          echo a > out/a.txt; echo b > out/sub/b.txt; echo c > out/sub/c.log
          echo hidden > out/.env; echo cached > out/.cache/x.txt
      - id: report
        uses: {UPLOAD}
        with:
          name: report
          path: out/
      - id: texts
        uses: {UPLOAD}
        with:
          name: texts
          path: |
            out/**/*.txt
            !out/sub/**
      - id: single
        uses: {UPLOAD}
        with:
          name: single
          path: out/sub/b.txt
      - id: again
        continue-on-error: true
        uses: {UPLOAD}
        with:
          name: report
          path: out/a.txt
      - id: nothing
        continue-on-error: true
        uses: {UPLOAD}
        with:
          name: nothing
          path: no-such-dir/
          if-no-files-found: error
  consume:
    needs: produce
    runs-on: ubuntu-latest
    steps:
      - id: one
        uses: {DOWNLOAD}
        with:
          name: report
          path: got/report
      - id: all
        uses: {DOWNLOAD}
        with:
          path: got/all
      - id: missing
        continue-on-error: true
        uses: {DOWNLOAD}
        with:
          name: never-uploaded
      - run: cd got && find . -type f | sort
""")
    produce, consume = run.job("produce"), run.job("consume")
    assert produce.result == "success", run.tail()
    assert consume.result == "success", run.tail()

    stored = {
        name: sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())
        for name, path in run.artifacts().items()
    }
    assert stored == {"report": ["a.txt", "sub/b.txt", "sub/c.log"], "texts": ["a.txt"], "single": ["b.txt"]}
    assert produce.outputs == {"report-id": "1"}
    assert produce.step("texts").outputs["artifact-id"] == "2"
    assert len(produce.step("report").outputs["artifact-digest"]) == 64

    assert produce.step("again").result == "failure"
    assert any("(409) Conflict" in a.message for a in produce.step("again").annotations)
    assert produce.step("nothing").result == "failure"
    assert any(
        "No files were found with the provided path: no-such-dir/" in a.message
        for a in produce.step("nothing").annotations
    )

    assert consume.step("one").outputs["download-path"].endswith("/got/report")
    assert consume.step("missing").result == "failure"
    assert any("Artifact not found for name: never-uploaded" in a.message for a in consume.annotations)
    assert consume.step("3").lines == [
        "./all/report/a.txt",
        "./all/report/sub/b.txt",
        "./all/report/sub/c.log",
        "./all/single/b.txt",
        "./all/texts/a.txt",
        "./report/a.txt",
        "./report/sub/b.txt",
        "./report/sub/c.log",
    ]


def test_reusable_workflow_results_and_options_reach_the_job(act):
    act.write(
        ".github/workflows/e2e-reusable.yml",
        """\
name: reusable
on:
  workflow_call:
    inputs:
      who: {type: string, required: true}
    outputs:
      greeting:
        value: ${{ jobs.greet.outputs.text }}
permissions: {}
jobs:
  greet:
    runs-on: ubuntu-latest
    outputs:
      text: ${{ steps.say.outputs.text }}
    steps:
      - id: say
        run: echo "text=hello ${{ inputs.who }} from $GITHUB_REPOSITORY" >> "$GITHUB_OUTPUT"
  versions:
    needs: greet
    runs-on: ubuntu-latest
    strategy:
      matrix:
        python: ["3.10", "3.12"]
    steps:
      - run: echo "python ${{ matrix.python }}, api $GITHUB_API_URL, v=${{ vars.LEVEL }}, s=${{ secrets.TOKEN }}"
""",
    )
    # Referenced as a consumer would (owner/repo/path@ref): the rig maps this repository to the copy.
    run = act.run(
        caller_workflow("org/tw-gates/.github/workflows/e2e-reusable.yml@v3", with_={"who": "ann"}, secrets="inherit"),
        vars={"LEVEL": "3"},
        secrets={"TOKEN": "s3cret-value"},
        api_url="http://127.0.0.1:9",
    )
    run.expect_success()
    assert run.job("call").outputs == {"greeting": "hello ann from org/tw-gates"}
    assert run.job("call/greet").outputs == {"text": "hello ann from org/tw-gates"}
    assert run.job("call/versions (3.10)").lines == ["python 3.10, api http://127.0.0.1:9, v=3, s=***"]
    assert run.job("call/versions (3.12)").result == "success"
    assert "s3cret-value" not in run.log


def test_dispatch_inputs_and_job_conditions(act):
    workflow = """\
name: dispatch
on:
  workflow_dispatch:
    inputs:
      phase: {type: string, required: true}
  schedule:
    - cron: "0 * * * *"
permissions: {}
jobs:
  manual:
    if: github.event_name == 'workflow_dispatch'
    runs-on: ubuntu-latest
    steps:
      - run: echo "phase ${{ inputs.phase }} on $GITHUB_REF for $GITHUB_EVENT_NAME, E=$E"
  hourly:
    if: github.event_name == 'schedule'
    runs-on: ubuntu-latest
    steps:
      - run: echo hourly
"""
    dispatched = act.run(workflow, event="workflow_dispatch", inputs={"phase": "2"}, env={"E": "x"})
    assert dispatched.job("manual").lines == ["phase 2 on refs/heads/main for workflow_dispatch, E=x"]
    assert dispatched.job("hourly").result == "skipped"
    scheduled = act.run(workflow, event="schedule")
    assert scheduled.job("manual").result == "skipped"
    assert scheduled.job("hourly").lines == ["hourly"]


def test_remote_actions_without_a_stand_in_are_refused_up_front(act):
    with pytest.raises(ActRigError, match=r"cannot be fetched offline: actions/setup-python@v5\b"):
        act.run("""\
name: remote
on: push
jobs:
  a:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/setup-python@v5
""")
    with pytest.raises(ActRigError, match=r"'setup-python' \(malformed"):
        act.run(
            "name: bad\non: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: setup-python\n"
        )


def _processes_with(argument: str) -> list[int]:
    """Live processes with this exact argument (a dying process may linger a moment: poll)."""
    deadline = time.monotonic() + 2
    while True:
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as fh:
                    if argument.encode() in fh.read().split(b"\0"):
                        found.append(int(pid))
            except OSError:
                continue
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def _unique_sleep() -> str:
    """A sleep duration no other process on the machine uses, to find ours by."""
    return f"{4000 + os.getpid() % 1000}.{time.monotonic_ns() % 10**6:06d}"


def test_timeout_kills_act_and_the_job_and_reports_the_log_tail(act):
    seconds = _unique_sleep()
    with pytest.raises(ActRigError, match=r"(?s)did not finish within 3s.*Run Main echo started") as info:
        act.run(
            f"""\
name: slow
on: push
jobs:
  a:
    runs-on: ubuntu-latest
    steps:
      - run: echo started; trap '' HUP; sleep {seconds} & sleep {seconds}
""",
            timeout=3,
        )
    assert "started" in str(info.value)
    assert "killed 3 step process(es) left running" in str(info.value)  # the step's bash and its two sleeps
    assert _processes_with(seconds) == []


def test_job_steps_reach_the_github_emulator(act, github_emulator):
    github_emulator.add_token("job-token", kind="actions", repo_permissions={"org/tw-gates": {"contents": "read"}})
    github_emulator.add_repo("org/tw-gates")
    run = act.run(
        """\
name: api
on: push
permissions: {}
jobs:
  a:
    runs-on: ubuntu-latest
    steps:
      - env:
          GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}
        run: |
          python3 - <<'PY'
          import json, os, urllib.request
          request = urllib.request.Request(os.environ["GITHUB_API_URL"] + "/repos/" + os.environ["GITHUB_REPOSITORY"],
                                           headers={"Authorization": "Bearer " + os.environ["GITHUB_TOKEN"]})
          print("default branch:", json.load(urllib.request.urlopen(request, timeout=10))["default_branch"])
          PY
""",
        api_url=github_emulator.url,
        secrets={"GITHUB_TOKEN": "job-token"},
    )
    assert run.expect_success().job("a").lines == ["default branch: main"]
    assert github_emulator.count("GET", r"^/repos/org/tw-gates$", status=200) == 1
