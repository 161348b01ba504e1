from __future__ import annotations

import argparse

from tw_gates.commands import Command, Outcome


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--junit", nargs="+", metavar="FILE", help="JUnit XML files, folders or globs (default: $TW_JUNIT)"
    )
    parser.add_argument(
        "--expect",
        type=int,
        metavar="N",
        help="number of tests that must pass (default: $TW_EXPECT_TESTS, else every test in the reports)",
    )


def run(args: argparse.Namespace) -> Outcome:
    from tw_gates.chain.behavioral import BehavioralSettings, behavioral
    from tw_gates.core import runner
    from tw_gates.core.errors import GateRejected
    from tw_gates.core.markdown import escape_markdown, markdown_table
    from tw_gates.core.settings import load_settings

    settings = load_settings(
        BehavioralSettings, {"junit": " ".join(args.junit) if args.junit else None, "expect": args.expect}
    )
    result = behavioral(settings)
    for suite, row in result.by_suite().items():
        extra = ", ".join(f"{n} {k}" for k, n in row.items() if k != "passed" and n)
        runner.echo(f"{suite}: {row['passed']} passed" + (f", {extra}" if extra else ""))
    for case in result.problems:
        runner.echo(f"{case.outcome.upper()} {case.suite}::{case.name}" + (f": {case.message}" if case.message else ""))
    if result.duplicates:
        runner.warn(f"{result.duplicates} test(s) reported more than once were counted once (worst outcome)")
    runner.set_output("passed", result.score)
    runner.append_summary(
        f"### tw-gates behavioral (G2): {escape_markdown(result.summary)}\n\n"
        + markdown_table(
            ["test file / class", "passed", "failed", "error", "skipped"],
            [[s, r["passed"], r["failed"], r["error"], r["skipped"]] for s, r in result.by_suite().items()],
        )
    )
    if result.exit_code:
        raise GateRejected(f"behavioral tests: {result.summary}")
    if result.passed > result.expected:
        runner.warn(f"{result.passed} tests passed, {result.expected} expected: raise --expect")
    verdict = f"G2: {result.summary}"
    runner.echo(verdict)
    return Outcome(int(result.exit_code), verdict)


COMMAND = Command(
    name="behavioral",
    help="G2: check the behavioral tests' JUnit XML (passed/expected)",
    configure=configure,
    run=run,
    order=11,
)
