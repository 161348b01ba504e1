from __future__ import annotations

import argparse

from tw_gates.commands import Command, Outcome


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repo-dir", help="repository to check (default: $TW_REPO_DIR or the current folder)")
    parser.add_argument(
        "--rules",
        dest="rules_file",
        metavar="PATH",
        help="rules file, relative to the repository (default: prometheus/rules/audit_rules.yml)",
    )
    parser.add_argument(
        "--require-metric",
        action="append",
        metavar="NAME",
        help="metric an alert must read (repeatable; replaces the built-in list)",
    )
    parser.add_argument("--promtool", metavar="PATH", help="promtool to run (default: promtool on the PATH)")


def run(args: argparse.Namespace) -> Outcome:
    from tw_gates.chain.telemetry_check import TelemetryCheckSettings, telemetry_check
    from tw_gates.core import runner
    from tw_gates.core.errors import GateRejected
    from tw_gates.core.markdown import escape_markdown, markdown_table
    from tw_gates.core.settings import load_settings

    settings = load_settings(
        TelemetryCheckSettings,
        {
            "repo_dir": args.repo_dir,
            "rules_file": args.rules_file,
            "promtool": args.promtool,
            "required_metrics": ",".join(args.require_metric) if args.require_metric else None,
        },
    )
    result = telemetry_check(settings)
    for finding in result.findings:
        runner.echo(finding.text)
        if finding.status == "fail" and runner.on_runner():
            runner.annotate("error", finding.text, file=finding.file, line=finding.line, title="tw-gates G5")
    runner.set_output("result", result.summary)
    runner.append_summary(
        f"### tw-gates telemetry-check (G5): {escape_markdown(result.summary)}\n\n"
        + markdown_table(["check", "status", "detail"], [[f.check, f.status, f.detail] for f in result.findings])
    )
    if result.exit_code:
        raise GateRejected(result.summary)
    verdict = f"G5: {result.summary}"
    runner.echo(verdict)
    return Outcome(int(result.exit_code), verdict)


COMMAND = Command(
    name="telemetry-check",
    help="G5: alert rules valid and covering the metrics; ingest workflow present",
    configure=configure,
    run=run,
    order=15,
)
