from __future__ import annotations

import argparse

from tw_gates.commands import Command, Outcome

DESCRIPTION = """\
Run the adversarial corpora against a Markdown parser. Each case runs in its own
process with a time limit and an address-space limit; a target that crashes, hangs
or allocates without bound is a violation, never a hang of the gate.

A command target reads Markdown on stdin and writes its rendering on stdout.
builtin:commonmark is markdown-it-py's CommonMark preset (raw HTML on);
builtin:safe is markdown-it-py with raw HTML off and allow-listed link schemes.

Exit 2 when a case violates a parser expectation (downstream-renderer checks
count only with --downstream fail), 1 on bad input."""


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
        help="longest any case may run before it is killed (default 60; a case with max_ms "
        "is killed at twice its budget, at least 2 s past it)",
    )
    parser.add_argument(
        "--memory-limit",
        type=int,
        metavar="MIB",
        dest="memory_limit_mb",
        help="address-space limit (RLIMIT_AS) of each case's process, MiB (default 1024)",
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
    parser_lines = present.violation_lines(report.cases, "parser")
    if parser_lines:
        runner.echo()
        runner.echo("parser violations:")
        for line in parser_lines:
            runner.echo(f"  {line}")
    downstream_lines = present.violation_lines(report.cases, "downstream")
    if downstream_lines:
        effect = "failing the gate" if report.downstream_policy == "fail" else "reported, not failing the gate"
        runner.echo()
        runner.echo(
            f"downstream-renderer checks ({effect}): a correct Markdown parser passes these through; "
            "the renderer that consumes its output must neutralise them"
        )
        for line in downstream_lines:
            runner.echo(f"  {line}")
    if settings.report is not None:
        runner.set_output("report", str(settings.report))
    runner.set_output("violations", str(len(present.failing_cases(report))))
    runner.set_output("downstream", str(len(present.downstream_cases(report))))
    runner.set_output("passed", "true" if report.exit_code == 0 else "false")
    runner.append_summary(present.summary_markdown(report))
    runner.echo()
    if report.exit_code:
        raise GateRejected(present.verdict(report))
    verdict = present.verdict(report)
    runner.echo(verdict)
    return Outcome(int(report.exit_code), verdict)


COMMAND = Command(
    name="adversarial",
    help="run the adversarial Markdown corpora against a parser",
    configure=configure,
    run=run,
    order=60,
    description=DESCRIPTION,
)
