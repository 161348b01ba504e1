"""G2 behavioral: JUnit XML in, passed/expected out; anything short of all-passed fails."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

FILES = {  # the suite's contract: 4 files, 14 sub-tests
    "test_ingest_gate_enforcement": 4,
    "test_permission_fallback": 3,
    "test_digest_idempotency": 4,
    "test_rate_limit_guard_switches_to_digest": 3,
}


def junit(cases: list[tuple[str, str, str]], *, suite: str = "pytest") -> str:
    """cases: (classname, name, outcome) with outcome passed|failure|error|skipped."""
    body = []
    for classname, name, outcome in cases:
        inner = {
            "passed": "",
            "failure": '<failure message="assert 1 == 2">trace</failure>',
            "error": '<error message="fixture broke">trace</error>',
            "skipped": '<skipped message="needs act" type="pytest.skip"/>',
        }[outcome]
        body.append(f'<testcase classname="{classname}" name="{name}" time="0.01">{inner}</testcase>')
    return (
        f'<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="{suite}" tests="{len(cases)}">'
        + "".join(body)
        + "</testsuite></testsuites>"
    )


def suite_cases(outcome_of=lambda module, i: "passed") -> list[tuple[str, str, str]]:
    return [
        (f"tests.behavioral.{module}", f"test_{i}", outcome_of(module, i))
        for module, count in FILES.items()
        for i in range(count)
    ]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_all_fourteen_passed(tmp_path, cli):
    report = write(tmp_path / "junit.xml", junit(suite_cases()))
    code, out, _ = cli("behavioral", "--junit", report)
    assert code == 0, out
    assert "tests.behavioral.test_permission_fallback: 3 passed" in out
    assert out.splitlines()[-1] == "G2: 14/14 passed"


@pytest.mark.parametrize(
    ("outcome", "shown"), [("failure", "1 failed"), ("error", "1 error"), ("skipped", "1 skipped")]
)
def test_any_failure_error_or_skip_fails(tmp_path, cli, outcome, shown):
    cases = suite_cases(lambda module, i: outcome if (module, i) == ("test_digest_idempotency", 2) else "passed")
    code, out, err = cli("behavioral", "--junit", write(tmp_path / "j.xml", junit(cases)))
    assert code == 2
    assert f"behavioral tests: 13/14 passed, {shown}" in err
    label = {"failure": "FAILED", "error": "ERROR", "skipped": "SKIPPED"}[outcome]
    assert f"{label} tests.behavioral.test_digest_idempotency::test_2" in out


def test_shortfall_fails_and_says_how_many_are_missing(tmp_path, cli):
    cases = [c for c in suite_cases() if "rate_limit" not in c[0]]
    code, _, err = cli("behavioral", "--junit", write(tmp_path / "j.xml", junit(cases)), "--expect", "14")
    assert code == 2 and "behavioral tests: 11/14 passed, 3 missing" in err


def test_without_expect_every_reported_test_must_pass_and_there_must_be_one(tmp_path, cli):
    """No default count: a consumer with 3 tests is 3/3, never 3/14 (the count is the repository's own)."""
    three = [("tests.test_app", f"test_{i}", "passed") for i in range(3)]
    code, out, _ = cli("behavioral", "--junit", write(tmp_path / "three.xml", junit(three)))
    assert code == 0 and out.splitlines()[-1] == "G2: 3/3 passed"
    code, _, err = cli("behavioral", "--junit", write(tmp_path / "none.xml", junit([])))
    assert code == 2 and "behavioral tests: 0/1 passed, no test in the reports" in err
    failing = [*three, ("tests.test_app", "test_x", "failure")]
    code, _, err = cli("behavioral", "--junit", write(tmp_path / "f.xml", junit(failing)), env={"TW_EXPECT_TESTS": ""})
    assert code == 2 and "3/4 passed, 1 failed" in err


def test_a_report_given_twice_cannot_make_up_for_missing_tests(tmp_path, cli):
    half = suite_cases()[:7]
    report = write(tmp_path / "half.xml", junit(half))
    copy = write(tmp_path / "copy.xml", junit(half))
    code, _, err = cli("behavioral", "--junit", report, copy, "--expect", "14")
    assert code == 2 and "7/14 passed" in err and "reported more than once" in err


def test_duplicate_keeps_the_worst_outcome(tmp_path, cli):
    first = write(tmp_path / "a.xml", junit(suite_cases()))
    rerun = write(tmp_path / "b.xml", junit([("tests.behavioral.test_permission_fallback", "test_0", "failure")]))
    code, _, err = cli("behavioral", "--junit", first, rerun)
    assert code == 2 and "13/14 passed, 1 failed" in err


def test_folder_glob_and_environment(tmp_path, cli):
    for index, (module, count) in enumerate(FILES.items()):
        write(
            tmp_path / "reports" / f"{index}.xml",
            junit([(f"tests.behavioral.{module}", f"t{i}", "passed") for i in range(count)], suite=module),
        )
    assert cli("behavioral", "--junit", tmp_path / "reports")[0] == 0
    assert cli("behavioral", "--junit", f"{tmp_path}/reports/*.xml")[0] == 0
    code, out, _ = cli(
        "behavioral", env={"TW_JUNIT": f"{tmp_path}/reports/0.xml, {tmp_path}/reports/1.xml", "TW_EXPECT_TESTS": "7"}
    )
    assert code == 0 and "7/7 passed" in out


def test_more_than_expected_passes_with_a_warning(tmp_path, cli):
    code, out, err = cli("behavioral", "--junit", write(tmp_path / "j.xml", junit(suite_cases())), "--expect", "10")
    assert code == 0 and "14/10 passed, 4 more than expected: raise --expect" in out
    assert "raise --expect" in err


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: None, "no JUnit XML given"),
        (lambda p: write(p / "x.xml", "<testsuites><testsuite"), "is not JUnit XML"),
        (lambda p: (p / "empty").mkdir(), "no *.xml file in folder"),
    ],
)
def test_bad_input_is_exit_1_with_one_line(tmp_path, cli, setup, message):
    setup(tmp_path)
    argv = {
        "no JUnit XML given": [],
        "is not JUnit XML": ["--junit", tmp_path / "x.xml"],
        "no *.xml file in folder": ["--junit", tmp_path / "empty"],
    }[message]
    code, _, err = cli("behavioral", *argv)
    assert code == 1 and message in err and "Traceback" not in err


def test_missing_file_and_bad_expect(tmp_path, cli):
    code, _, err = cli("behavioral", "--junit", tmp_path / "nope.xml")
    assert code == 1 and "JUnit XML not found" in err
    code, _, err = cli("behavioral", "--junit", write(tmp_path / "j.xml", junit(suite_cases())), "--expect", "-1")
    assert code == 1 and "expect" in err


def test_real_pytest_junit(tmp_path, cli):
    """JUnit written by pytest itself (parametrised ids, a class, a skip)."""
    write(
        tmp_path / "t" / "test_sample.py",
        textwrap.dedent("""\
        import pytest

        @pytest.mark.parametrize("n", [1, 2, 3])
        def test_param(n):
            assert n

        class TestGroup:
            def test_one(self):
                pass

        def test_skipped():
            pytest.skip("not here")
    """),
    )
    report = tmp_path / "junit.xml"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            str(tmp_path / "t"),
            f"--junitxml={report}",
            "-o",
            "addopts=",
        ],
        cwd=tmp_path,
        capture_output=True,
        check=False,
    )
    code, out, err = cli("behavioral", "--junit", report, "--expect", "4")
    assert code == 2 and "4/4 passed, 1 skipped" in err
    assert "SKIPPED t.test_sample::test_skipped: not here" in out and "t.test_sample.TestGroup: 1 passed" in out
