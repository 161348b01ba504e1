from __future__ import annotations

import argparse

from tw_gates.commands import Command, Outcome

DESCRIPTION = """\
Run the adversarial corpora against a Markdown parser. Each case runs in its own
process with a time budget (its CPU time), an address-space limit and a hang guard;
a target that crashes is a violation, one that overruns a budget or hangs is
reported over its budget; never a hang of the gate. The target sees only PATH,
HOME, LANG, LC_*, TMPDIR and what --pass-env declares.

A command target reads Markdown on stdin and writes its rendering on stdout.
builtin:commonmark is markdown-it-py's CommonMark preset (raw HTML on);
builtin:safe is markdown-it-py with raw HTML off and allow-listed link schemes.

Exit 2 when a case violates a parser expectation or overruns its budget
(downstream-renderer checks count only with --downstream fail), 1 on bad input."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "--target",
        metavar="CMD|builtin:commonmark|builtin:safe",
        help="the parser to attack (env TW_ADVERSARIAL_TARGET)",
    )
    parser.add_argument(
        "--corpora",
        metavar="DIR",
        help="corpora folder holding manifest.json (default: the bundled adversarial_corpora)",
    )
    parser.add_argument(
        "--only", nargs="+", metavar="CATEGORY", help="run only these categories (names or comma separated; see --list)"
    )
    parser.add_argument("--list", action="store_true", help="list the corpus files and their categories, then exit")
    parser.add_argument("--jobs", type=int, metavar="N", help="cases run in parallel (default: one per core)")
    parser.add_argument("--report", metavar="PATH", help="write the report JSON here")
    parser.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        dest="timeout_s",
        help="wall-clock hang guard of any case (default 60; a case with max_ms is stopped at ten times "
        "its budget, at least 10 s past it, or at this, whichever is sooner)",
    )
    parser.add_argument(
        "--memory-limit",
        type=int,
        metavar="MIB",
        dest="memory_limit_mb",
        help="address-space limit (RLIMIT_AS) of each case's process, MiB (default 1024)",
    )
    parser.add_argument(
        "--pass-env",
        nargs="+",
        metavar="NAME",
        help="variables the target needs from this environment (names or comma separated); it gets only "
        "PATH, HOME, LANG, LC_*, TMPDIR otherwise (env TW_ADVERSARIAL_PASS_ENV)",
    )
    parser.add_argument(
        "--downstream",
        choices=["report", "fail"],
        help="downstream-renderer checks: report them (default) or fail the gate on them, "
        "for a target that is the whole rendering pipeline",
    )


def run(args: argparse.Namespace) -> Outcome:
    from tw_gates.core import runner
    from tw_gates.core.errors import GateRejected
    from tw_gates.core.settings import load_settings
    from tw_gates.parser import adversarial
    from tw_gates.parser import report as present

    settings = load_settings(
        adversarial.AdversarialSettings,
        {
            "target": args.target,
            "corpora": args.corpora,
            "only": ",".join(args.only) if args.only else None,
            "jobs": args.jobs,
            "report": args.report,
            "timeout_s": args.timeout_s,
            "memory_limit_mb": args.memory_limit_mb,
            "downstream": args.downstream,
            "pass_env": ",".join(args.pass_env) if args.pass_env else None,
        },
    )
    if args.list:
        corpora = adversarial.select_corpora(adversarial.load_corpora(settings.corpora).files, settings.categories())
        for line in present.list_lines(corpora, settings.corpora):
            runner.echo(line)
        return Outcome(0)

    report = adversarial.adversarial(settings, progress=runner.echo)
    runner.echo()
    runner.echo(present.text_table(present.SUMMARY_HEADERS, present.summary_rows(report)))
    _echo_violations(report)
    if settings.report is not None:
        runner.set_output("report", str(settings.report))
    runner.set_output("violations", str(len(present.violating_cases(report))))
    runner.set_output("over-budget", str(len(present.over_budget_cases(report))))
    runner.set_output("downstream", str(len(present.downstream_cases(report))))
    runner.set_output("passed", "true" if report.exit_code == 0 else "false")
    runner.append_summary(present.summary_markdown(report))
    runner.echo()
    if report.exit_code:
        raise GateRejected(present.verdict(report))
    verdict = present.verdict(report)
    runner.echo(verdict)
    return Outcome(int(report.exit_code), verdict)


def _echo_violations(report) -> None:
    """The violations, the budget overruns and the downstream checks, each under its own heading."""
    from tw_gates.core import runner
    from tw_gates.parser import report as present

    sections = [
        ("parser", "parser violations:"),
        ("budget", f"{present.budget_heading(report).lower()} (CPU time of the case's process; fails the gate):"),
        (
            "downstream",
            "downstream-renderer checks ("
            + ("failing the gate" if report.downstream_policy == "fail" else "reported, not failing the gate")
            + "): a correct Markdown parser passes these through; "
            "the renderer that consumes its output must neutralise them",
        ),
    ]
    for section, heading in sections:
        lines = present.violation_lines(report.cases, section)
        if lines:
            runner.echo()
            runner.echo(heading)
            for line in lines:
                runner.echo(f"  {line}")


COMMAND = Command(
    name="adversarial",
    help="run the adversarial Markdown corpora against a parser",
    configure=configure,
    run=run,
    order=60,
    description=DESCRIPTION,
)
