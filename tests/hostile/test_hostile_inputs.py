"""The hostile-input suite: every case of tests/hostile/cases.py through the
real CLI (forked, time-limited), judged by tests/hostile/harness.py.

A case that fails today in another helper's room is a strict xfail naming
that room: it turns into a failure the moment the room's fix lands, and the
xfail is then removed."""

from __future__ import annotations

import pytest
from markdown_it import MarkdownIt

from tests.hostile.cases import CASES, MARKDOWN_PATH, artifact_line
from tests.hostile.harness import Case, judge, run_case


def _param(case: Case):
    marks = [pytest.mark.xfail(strict=True, reason=f"{case.room} fixes this")] if case.room else []
    return pytest.param(case, id=case.id, marks=marks)


def test_case_ids_are_unique():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_hostile_input(case: Case, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    run = run_case(case, work)
    problems = judge(case, run)
    assert not problems, f"{case.id}: {'; '.join(problems)}\nstdout: {run.stdout[-800:]}\nstderr: {run.stderr[-800:]}"


def test_summaries_escape_consumer_text(tmp_path):
    """A hit path from a consumer artifact reaches the audit's job summary as text."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "a.jsonl").write_text(artifact_line(MARKDOWN_PATH) + "\n")
    summary = work / "summary.md"
    summary.touch()
    case = Case(
        "audit/summary",
        ("audit", "--artifacts", "{tmp}/a.jsonl", "--report", "{tmp}/report.json", "--registry", "{tmp}/reg.yml"),
        code=-1,
        reason="",
        setup=lambda t: (t / "reg.yml").write_text("consumers: []\n"),
        env={"GITHUB_STEP_SUMMARY": "{tmp}/summary.md"},
    )
    run = run_case(case, work)
    assert run.code is not None and "Traceback" not in run.stderr
    text = summary.read_text()
    rendered = MarkdownIt("commonmark").enable("table").render(text)
    assert "<img" not in rendered and "<a " not in rendered and "@admins" not in text
    assert "&lt;img" in text and "\\[click\\]" in text
