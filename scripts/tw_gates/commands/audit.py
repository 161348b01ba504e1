from __future__ import annotations

import argparse
from typing import Literal

from tw_gates.commands import Command, Outcome

DESCRIPTION = """G3: the green-light audit. P0 checks: the required status checks of each
registered consumer's default branch (classic branch protection and rulesets; exit 5)
and a present, signed performance baseline (exit 6). Then the current performance
capture against the baseline and the unregistered renderer hits of the accepted
consumer artifacts (exit 2). Writes the report JSON in every case."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--report", metavar="PATH", help="report JSON to write (default: $TW_AUDIT_REPORT or tw-gates-audit.json)"
    )
    parser.add_argument(
        "--registry", metavar="PATH", help="consumer registry (default: $TW_REGISTRY or consumer_registry.yml)"
    )
    parser.add_argument(
        "--exceptions",
        metavar="PATH",
        help="audit exceptions (default: $TW_AUDIT_EXCEPTIONS or audit_exceptions.yml when present)",
    )
    parser.add_argument(
        "--baseline", metavar="PATH", help="signed performance baseline (default: $TW_BASELINE or perf/baseline.json)"
    )
    parser.add_argument(
        "--current",
        metavar="PATH",
        help="current capture (`tw-gates baseline capture`) to compare with the baseline (default: $TW_PERF_CURRENT)",
    )
    parser.add_argument(
        "--artifacts",
        metavar="PATH",
        help="accepted consumer artifacts: JSON Lines from `tw-gates ingest --out`, or a folder of them "
        "(shards) (default: $TW_ACCEPTED_ARTIFACTS)",
    )
    parser.add_argument("--artifact", dest="artifacts", help=argparse.SUPPRESS)  # ingest's former spelling
    parser.add_argument("--patterns", metavar="PATH", help="pattern catalog for severities (default: the shipped one)")
    parser.add_argument("--audit-id", help="id to put in the report (default: from the workflow run, else generated)")


def run(args: argparse.Namespace) -> Outcome:
    from tw_gates.chain.audit import AuditSettings, audit
    from tw_gates.core import runner
    from tw_gates.core.errors import TwGatesError
    from tw_gates.core.settings import load_settings

    settings = load_settings(
        AuditSettings,
        {
            "report": args.report,
            "registry": args.registry,
            "exceptions": args.exceptions,
            "baseline": args.baseline,
            "current": args.current,
            "artifacts": args.artifacts,
            "patterns": args.patterns,
            "audit_id": args.audit_id,
        },
    )
    outcome = audit(settings, progress=runner.echo)
    for check in outcome.checks:
        runner.echo(f"{check.status.upper():<4} {check.name}: {check.detail}")
    runner.echo(f"report: {outcome.report_path} ({len(outcome.report.unregistered_hits)} unregistered hit(s))")
    _publish(outcome, exceptions_file=str(settings.exceptions) if settings.exceptions else "audit_exceptions.yml")
    if outcome.exit_code:
        raise TwGatesError(outcome.summary, exit_code=outcome.exit_code)
    verdict = f"G3: {outcome.summary}"
    runner.echo(verdict)
    return Outcome(0, verdict)


def _publish(outcome, *, exceptions_file: str | None) -> None:
    """Step outputs, job summary, and (on a runner) annotations."""
    from tw_gates.chain.audit_settings import MAX_ANNOTATIONS, SUMMARY_HITS
    from tw_gates.core import runner
    from tw_gates.core.markdown import inline_code, markdown_table

    report = outcome.report
    runner.set_output("exit-code", str(report.exit_code))
    runner.set_output("report", str(outcome.report_path))
    runner.set_output("unregistered", str(len(report.unregistered_hits)))
    rows = [[c.name, c.status, c.detail] for c in outcome.checks]
    summary = [
        f"### tw-gates audit (G3): exit {report.exit_code}\n",
        markdown_table(["check", "status", "detail"], rows),
    ]
    if report.unregistered_hits:
        shown = report.unregistered_hits[:SUMMARY_HITS]
        summary.append(f"\n#### Unregistered hits ({len(report.unregistered_hits)})\n")
        summary.append(
            markdown_table(
                ["severity", "repository", "file", "line", "pattern"],
                [[h.severity, h.repo, h.path, h.line, h.pattern] for h in shown],
            )
        )
        if len(report.unregistered_hits) > len(shown):
            summary.append(
                f"\n…and {len(report.unregistered_hits) - len(shown)} more in {inline_code(outcome.report_path)}.\n"
            )
    runner.append_summary("\n".join(summary))
    if not runner.on_runner():
        return
    for hit in report.unregistered_hits[:MAX_ANNOTATIONS]:
        level: Literal["error", "warning"] = "error" if hit.severity in ("critical", "high") else "warning"
        runner.annotate(
            level,
            f"{hit.repo}: renderer pattern {hit.pattern} ({hit.severity}) outside the "
            "registered code_paths and not covered by a live exception",
            file=hit.path,
            line=hit.line,
            title="tw-gates audit: unregistered hit",
        )
    if len(report.unregistered_hits) > MAX_ANNOTATIONS:
        runner.annotate(
            "warning",
            f"{len(report.unregistered_hits) - MAX_ANNOTATIONS} more unregistered hits in {outcome.report_path}",
            title="tw-gates audit",
        )
    for line, text in outcome.expired_exceptions:
        runner.annotate(
            "warning", text, file=exceptions_file, line=line or None, title="tw-gates audit: expired exception"
        )


COMMAND = Command(
    name="audit",
    help="G3: green-light audit (P0: required checks exit 5, baseline exit 6)",
    description=DESCRIPTION,
    configure=configure,
    run=run,
    order=12,
)
