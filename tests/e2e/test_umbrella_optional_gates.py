"""The umbrella action's optional gates under act: configured through an input,
or through the job's environment when the input is left empty (an empty input
must not shadow a job-level variable)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e

WORKFLOW = """\
name: e2e
on: push
permissions: {}
jobs:
  from-env:
    runs-on: ubuntu-latest
    env:
      TW_ADVERSARIAL_TARGET: builtin:safe
      TW_ADVERSARIAL_ONLY: smoke
    steps:
      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2
        with:
          persist-credentials: false
      - id: gates
        uses: ./
        with:
          gates: platform, adversarial
  from-input:
    runs-on: ubuntu-latest
    env:
      TW_ADVERSARIAL_TARGET: builtin:safe
      TW_ADVERSARIAL_ONLY: smoke
    steps:
      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2
        with:
          persist-credentials: false
      - id: gates
        uses: ./
        with:
          gates: adversarial
          adversarial-target: builtin:commonmark
"""


def test_optional_gate_configured_by_job_env_or_by_input(act):
    run = act.run(WORKFLOW)
    from_env = run.job("from-env")
    assert from_env.result == "success", run.tail()
    assert from_env.step("gates").outputs["passed"] == "platform,adversarial"
    # The input wins over the job's variable: raw HTML on fails the smoke set.
    from_input = run.job("from-input")
    assert from_input.result == "failure", run.tail()
    assert "| adversarial | fail (2) |" in from_input.summary
