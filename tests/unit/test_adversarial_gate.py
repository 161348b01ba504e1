"""``tw-gates adversarial`` end to end: real processes, real markdown-it-py."""

from __future__ import annotations

import json
import re
import shlex
import sys
import time
from pathlib import Path

import pytest

from tw_gates.chain import run as chain
from tw_gates.schemas.corpus import AdversarialReport

PY = shlex.quote(sys.executable)


def write_corpora(
    folder: Path, cases: list[dict], *, defaults: dict | None = None, patterns: dict | None = None
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {"files": ["probe.json"], "patterns": patterns or {}}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    corpus = {"category": "probe", "description": "test cases", "defaults": defaults or {}, "cases": cases}
    (folder / "probe.json").write_text(json.dumps(corpus))
    return folder


def python_target(code: str) -> str:
    return f"{PY} -c {shlex.quote(code)}"


def read_report(path: Path) -> AdversarialReport:
    return AdversarialReport.model_validate_json(path.read_text())


def by_id(report: AdversarialReport) -> dict:
    return {case.id: case for case in report.cases}


# --- markdown-it-py: the reference target -------------------------------------------------------


def test_commonmark_preset_fails_the_xss_cases_and_names_them(cli, tmp_path):
    report_path = tmp_path / "report.json"
    code, out, err = cli(
        "adversarial", "--target", "builtin:commonmark", "--only", "html-xss", "--jobs", "2", "--report", report_path
    )
    assert code == 2
    report = read_report(report_path)
    cases = by_id(report)
    for name in (
        "html-xss-script-tag",
        "html-xss-img-onerror",
        "html-xss-svg-onload",
        "html-xss-iframe-srcdoc",
        "html-xss-style-url",
        "html-xss-anchor-entity-javascript",
    ):
        assert not cases[name].passed, name
        assert any(v.counts_as == "parser" and v.expectation == "must_not_match" for v in cases[name].violations)
        assert name in out
    assert "html-xss-script-tag" in err  # the one-line verdict names the failing cases
    # What raw HTML cannot reach stays clean even with raw HTML on.
    assert cases["html-xss-code-span-script"].passed and cases["html-xss-link-title-breakout"].passed
    summary = {s.category: s for s in report.categories}["html-xss"]
    assert summary.parser_violations == sum(1 for c in report.cases if not c.passed) > 30


def test_safe_configuration_passes_html_xss_and_uri(cli, tmp_path):
    report_path = tmp_path / "report.json"
    code, out, _ = cli(
        "adversarial", "--target", "builtin:safe", "--only", "html-xss", "uri", "--jobs", "2", "--report", report_path
    )
    assert code == 0, out
    report = read_report(report_path)
    assert report.categories_run == ["html-xss", "uri"]
    assert len(report.cases) > 60 and all(case.passed for case in report.cases)
    assert all(case.parse_ms is not None and case.rss_mb > 0 for case in report.cases)


def test_safe_reports_downstream_checks_apart_and_fails_on_them_only_when_asked(cli, tmp_path):
    report_path = tmp_path / "report.json"
    code, out, _ = cli(
        "adversarial", "--target", "builtin:safe", "--only", "template-injection", "unicode", "--report", report_path
    )
    assert code == 0, out
    report = read_report(report_path)
    downstream = [c for c in report.cases if c.checks == "downstream"]
    assert downstream and all(not c.passed for c in downstream if c.category == "template-injection")
    assert all(v.counts_as == "downstream" for c in downstream for v in c.violations)
    assert all(c.passed for c in report.cases if c.checks == "parser")
    assert "downstream-renderer checks (reported, not failing the gate)" in out
    assert "template-jinja-expression [template-injection] must_not_contain" in out

    code, _, err = cli(
        "adversarial", "--target", "builtin:safe", "--only", "template-injection", "--downstream", "fail"
    )
    assert code == 2 and "template-jinja-expression" in err


def test_commonmark_leaks_erb_from_an_html_block_safe_does_not(cli, tmp_path):
    for target, passed in (("builtin:commonmark", False), ("builtin:safe", True)):
        report_path = tmp_path / f"{target[8:]}.json"
        cli("adversarial", "--target", target, "--only", "template-injection", "--report", report_path)
        assert by_id(read_report(report_path))["template-erb-html-block"].passed is passed


# --- targets that misbehave ------------------------------------------------------------------------


SMALL_CASES = [
    {"id": "one", "description": "d", "markdown": "# one\n", "expect": {"max_ms": 300}},
    {"id": "two", "description": "d", "markdown": "# two\n", "expect": {"max_ms": 300}},
]


def test_a_target_that_sleeps_forever_is_stopped_and_reported(cli, tmp_path):
    corpora = write_corpora(tmp_path / "c", SMALL_CASES)
    report_path = tmp_path / "report.json"
    started = time.monotonic()
    code, _, err = cli(
        "adversarial",
        "--corpora",
        corpora,
        "--jobs",
        "2",
        "--timeout",
        "3",
        "--report",
        report_path,
        "--target",
        python_target("import time\nwhile True: time.sleep(1)"),
    )
    assert time.monotonic() - started < 30  # stopped by the hang guard (--timeout caps it), not waited on
    assert code == 2 and "over their time budget: one, two" in err
    for case in read_report(report_path).cases:
        assert [v.expectation for v in case.violations] == ["time_limit"]
        assert case.outcome == "timed out" and "stopped by the hang guard after 3.0s" in case.violations[0].detail


def test_a_target_that_allocates_without_bound_is_stopped_and_reported(cli, tmp_path):
    corpora = write_corpora(tmp_path / "c", SMALL_CASES[:1])
    report_path = tmp_path / "report.json"
    hog = "chunks = []\nwhile True: chunks.append(b'x' * (16 * 1024 * 1024))"
    code, _, _ = cli(
        "adversarial",
        "--corpora",
        corpora,
        "--memory-limit",
        "256",
        "--report",
        report_path,
        "--target",
        python_target(hog),
    )
    assert code == 2
    case = read_report(report_path).cases[0]
    crash = [v for v in case.violations if v.expectation == "must_not_crash"]
    assert crash and "MemoryError" in crash[0].detail and case.rss_mb < 256


def test_a_crashing_target_is_a_violation(cli, tmp_path):
    corpora = write_corpora(tmp_path / "c", SMALL_CASES[:1])
    report_path = tmp_path / "report.json"
    segfault = "import os, signal, sys\nsys.stdin.read()\nos.kill(os.getpid(), signal.SIGSEGV)"
    code, out, _ = cli(
        "adversarial", "--corpora", corpora, "--report", report_path, "--target", python_target(segfault)
    )
    assert code == 2 and "SIGSEGV" in out
    assert read_report(report_path).cases[0].outcome == "killed by signal 11"

    code, out, _ = cli(
        "adversarial",
        "--corpora",
        corpora,
        "--report",
        report_path,
        "--target",
        "sh -c 'cat >/dev/null; echo broken >&2; exit 3'",
    )
    assert code == 2
    violation = read_report(report_path).cases[0].violations[0]
    assert violation.expectation == "must_not_crash" and "exited 3" in violation.detail and "broken" in violation.detail


def test_time_memory_and_utf8_expectations(cli, tmp_path):
    cases = [
        {"id": "slow", "description": "d", "markdown": "x", "expect": {"max_ms": 100}},
        {"id": "fat", "description": "d", "markdown": "x", "expect": {"max_rss_mb": 64}},
        {"id": "bytes", "description": "d", "markdown": "x", "expect": {"must_be_utf8": True}},
    ]
    corpora = write_corpora(tmp_path / "c", cases)
    report_path = tmp_path / "report.json"
    # Uses half a second of CPU, holds 200 MiB touched memory, writes a byte that is not UTF-8.
    target = python_target(
        "import sys, time\nsys.stdin.read()\nheld = b'x' * (200 * 1024 * 1024)\n"
        "end = time.process_time() + 0.5\nwhile time.process_time() < end: pass\n"
        "sys.stdout.buffer.write(b'ok \\xff')"
    )
    code, _, _ = cli("adversarial", "--corpora", corpora, "--report", report_path, "--target", target)
    assert code == 2
    cases = by_id(read_report(report_path))
    assert [(v.expectation, v.kind) for v in cases["slow"].violations] == [("max_ms", "time_budget")]
    assert [(v.expectation, v.kind) for v in cases["fat"].violations] == [("max_rss_mb", "memory_budget")]
    assert cases["slow"].status == cases["fat"].status == "over_budget" and cases["bytes"].status == "violation"
    assert [v.expectation for v in cases["bytes"].violations] == ["must_be_utf8"]


def test_output_checks_and_bytes_input_reach_a_command_target(cli, tmp_path):
    cases = [
        {"id": "echo-nul", "description": "d", "markdown_b64": "YQBi", "expect": {"must_not_contain": ["\u0000"]}},
        {
            "id": "echo-named",
            "description": "d",
            "markdown": "<b onclick=x>",
            "expect": {"must_not_match_patterns": ["handler"]},
        },
        {
            "id": "echo-regex",
            "description": "d",
            "markdown": "fine text",
            "expect": {"must_not_match": ["(?i)<script"]},
        },
    ]
    patterns = {"handler": {"pattern": r"(?i)<[a-z][^>]*\son[a-z]+=", "description": "an event handler"}}
    corpora = write_corpora(tmp_path / "c", cases, patterns=patterns)
    report_path = tmp_path / "report.json"
    code, _, _ = cli("adversarial", "--corpora", corpora, "--report", report_path, "--target", "cat")
    assert code == 2
    cases = by_id(read_report(report_path))
    assert 'contains "\\u0000"' in cases["echo-nul"].violations[0].detail  # escaped, never raw, in the report
    assert "matches handler" in cases["echo-named"].violations[0].detail
    assert cases["echo-regex"].passed


def test_the_target_does_not_get_the_jobs_secrets(cli, tmp_path):
    secret = "ghp_" + "S3cr3tT0kenValue" * 2
    cases = [{"id": "env", "description": "d", "markdown": "x", "expect": {"must_not_contain": [secret]}}]
    corpora = write_corpora(tmp_path / "c", cases)
    code, out, _ = cli("adversarial", "--corpora", corpora, "--target", "env", env={"GITHUB_TOKEN": secret})
    assert code == 0, out


# --- the command line ------------------------------------------------------------------------------


def test_list_shows_the_corpus_files(cli):
    code, out, _ = cli("adversarial", "--list")
    assert code == 0
    for category, file in (
        ("html-xss", "html_xss.json"),
        ("regex-pathological", "regex_pathological.json"),
        ("smoke", "smoke.json"),
    ):
        assert re.search(rf"^{category}\s+{re.escape(file)}\s+\d+", out, re.M)
    assert re.search(r"^\d+ cases in 11 categories$", out, re.M)
    code, out, _ = cli("adversarial", "--list", "--only", "smoke")
    assert "smoke.json" in out and "uri.json" not in out


def test_only_selects_categories_and_rejects_unknown_ones(cli, tmp_path):
    report_path = tmp_path / "report.json"
    code, _, _ = cli("adversarial", "--target", "builtin:safe", "--only", "smoke", "--report", report_path)
    report = read_report(report_path)
    assert code == 0 and {c.category for c in report.cases} == {"smoke"} and report.categories_run == ["smoke"]
    code, _, err = cli("adversarial", "--target", "builtin:safe", "--only", "smoke,nope")
    assert code == 1 and "unknown category: nope (known: smoke, html-xss" in err


def test_report_holds_every_case(cli, tmp_path):
    report_path = tmp_path / "out" / "report.json"
    cli("adversarial", "--target", "builtin:safe", "--only", "smoke", "--report", report_path)
    raw = json.loads(report_path.read_text())
    assert raw["target"] == "builtin:safe" and raw["exit_code"] == 0
    assert {"id", "category", "passed", "ms", "violations"} <= set(raw["cases"][0])
    assert [c["id"] for c in raw["cases"]][:2] == ["smoke-script-tag", "smoke-img-onerror"]  # corpus order
    summary = raw["categories"][0]
    assert summary["category"] == "smoke" and summary["cases"] == 10 and summary["slowest_case"]


def test_step_outputs_and_job_summary(cli, tmp_path):
    output, summary = tmp_path / "out.txt", tmp_path / "summary.md"
    output.touch()
    summary.touch()
    code, _, _ = cli(
        "adversarial",
        "--target",
        "builtin:commonmark",
        "--only",
        "smoke",
        env={"GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary)},
    )
    assert code == 2
    outputs = output.read_text()
    assert "passed<<" in outputs and "false" in outputs and "violations<<" in outputs
    text = summary.read_text()
    assert "| category | cases | violations | over budget | downstream | time | CPU | slowest case | slowest |" in text
    assert "#### Parser violations" in text and "#### Downstream-renderer checks" in text


@pytest.mark.parametrize(
    "manifest, corpus, message",
    [
        (None, None, "corpus manifest not found: "),
        ("{", None, "manifest.json is not valid JSON: Expecting property name enclosed in double quotes at line 1"),
        ({"files": ["probe.json"]}, "[1,", "probe.json is not valid JSON: Expecting value at line 1 column 4"),
        (
            {"files": ["probe.json"]},
            {"category": "probe", "description": "d", "cases": [{"id": "x", "description": "d"}]},
            "probe.json: cases.0: Value error, give exactly one of markdown, markdown_b64, generate",
        ),
        (
            {"files": ["probe.json"]},
            {
                "category": "probe",
                "description": "d",
                "cases": [
                    {"id": "x", "description": "d", "markdown": "a", "expect": {"must_not_match_patterns": ["nope"]}}
                ],
            },
            "probe.json: x: unknown pattern(s) nope",
        ),
        (
            {"files": ["other.json"]},
            {"category": "probe", "description": "d", "cases": []},
            "probe.json not listed in manifest.json",
        ),
    ],
)
def test_a_bad_corpus_is_one_clear_error_line(cli, tmp_path, manifest, corpus, message):
    folder = tmp_path / "c"
    folder.mkdir()
    if manifest is not None:
        (folder / "manifest.json").write_text(manifest if isinstance(manifest, str) else json.dumps(manifest))
    if corpus is not None:
        (folder / "probe.json").write_text(corpus if isinstance(corpus, str) else json.dumps(corpus))
    code, _, err = cli("adversarial", "--corpora", folder, "--target", "builtin:safe")
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tw-gates adversarial: error: ") and message in lines[0], err


@pytest.mark.parametrize(
    "args, message",
    [
        ((), "no target: pass --target"),
        (
            ("--target", "builtin:nope"),
            "unknown builtin target 'builtin:nope' (known: builtin:commonmark, builtin:safe)",
        ),
        (("--target", "definitely-not-a-parser-xyz"), "target command not found or not executable"),
        (("--target", "builtin:safe", "--jobs", "0"), "jobs"),
        (
            ("--target", "builtin:safe", "--memory-limit", "1"),
            "invalid --memory-limit-mb: Input should be greater than or equal to 64",
        ),  # the flag, not the field
    ],
)
def test_bad_flags_are_one_clear_error_line(cli, args, message):
    code, _, err = cli("adversarial", *args)
    assert code == 1 and message in err and len(err.strip().splitlines()) == 1


def test_the_chain_runs_the_gate_when_selected_and_configured(cli):
    code, out, _ = cli(
        "gates", "--only", "adversarial", env={"TW_ADVERSARIAL_TARGET": "builtin:safe", "TW_ADVERSARIAL_ONLY": "smoke"}
    )
    assert code == 0 and re.search(r"adversarial\s+PASS\s+10 cases against builtin:safe", out)
    code, out, _ = cli(
        "gates",
        "--only",
        "adversarial",
        env={"TW_ADVERSARIAL_TARGET": "builtin:commonmark", "TW_ADVERSARIAL_ONLY": "smoke"},
    )
    assert code == 2 and "smoke-script-tag" in out


def test_the_gate_is_optional_in_the_chain():
    assert "adversarial" not in [g.name for g in chain.select("all")]
    assert [g.name for g in chain.select("adversarial")] == ["adversarial"]
