from __future__ import annotations

import argparse

from tw_gates.commands import Command, Outcome

DESCRIPTION = """\
48-hour canary analysis against a baseline. Every interval of the window is one
check of the binding gates (mismatch rate 0.00%, error rate <= 0.1%, p50 <=
baseline +3%, p95 <= baseline +8%, at least 1000 samples). Decision: PROMOTE
(whole window clean, >= 95% of intervals covered), HOLD (not yet), ROLLBACK
(a binding breach: exit 2, repository_dispatch, Slack, issue). A ROLLBACK stands
(exit 2) until a person closes its rollback issue or a new revision is canaried.
Exit 1 when the source cannot be read (nothing recorded)."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--baseline", metavar="FILE", help="baseline metrics (JSON/YAML; schema canary-baseline)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--metrics", metavar="FILE", help="this run's check (schema canary-metrics); earlier checks come from the state"
    )
    source.add_argument("--prometheus", metavar="URL", help="Prometheus base URL: the whole window by range queries")
    parser.add_argument("--queries", metavar="FILE", help="PromQL per metric (default: the bundled canary_queries.yml)")
    parser.add_argument(
        "--thresholds",
        metavar="FILE",
        help="binding gates and decision rules (default: the bundled canary_thresholds.yml)",
    )
    parser.add_argument("--window", help="how long the canary must stay clean (default 48h)")
    parser.add_argument("--interval", help="one check per interval (default 1h)")
    parser.add_argument("--start", metavar="TIME", help="when the canary started (ISO 8601; default: its first data)")
    parser.add_argument("--at", metavar="TIME", help="evaluate as of this time (ISO 8601; default now)")
    parser.add_argument("--name", help="canary name: the dashboard issue's key (default 'default')")
    parser.add_argument("--revision", help="what is being canaried (commit, version); a new one starts over")
    parser.add_argument(
        "--central-repo",
        metavar="OWNER/REPO",
        help="repository of the dashboard issue, the state and the rollback dispatch",
    )
    parser.add_argument(
        "--dispatch-event",
        metavar="TYPE",
        help="repository_dispatch event type on ROLLBACK (default tw-canary-rollback; 'none': off)",
    )
    parser.add_argument("--state-file", metavar="FILE", help="keep the state in this file instead of an issue")
    parser.add_argument(
        "--require-key",
        action="store_true",
        default=None,
        help="refuse to run without TW_CANARY_KEY (an unsigned state can be forged by anyone who edits issues)",
    )
    parser.add_argument("--report", metavar="FILE", help="write the JSON report here ('-': stdout)")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        default=None,
        help="decide and print, but write nothing to GitHub, Slack or the state",
    )


def run(args: argparse.Namespace) -> Outcome:
    import contextlib
    import json
    import os
    import sys

    from tw_gates.core import runner

    if (args.report if args.report is not None else os.environ.get("TW_CANARY_REPORT")) != "-":
        return _run(args)[0]
    # --report -: stdout carries the JSON report alone; the lines for people go to stderr.
    with contextlib.redirect_stdout(sys.stderr):
        outcome, report = _run(args)
    runner.echo(json.dumps(report.model_dump(mode="json"), indent=2))
    return outcome


def _run(args: argparse.Namespace):
    """Decide, say so, publish outputs and metrics: (exit code, report)."""
    from tw_gates.canary.canary import run_canary
    from tw_gates.canary.decision import fmt_value
    from tw_gates.canary.settings import CanarySettings
    from tw_gates.core import runner
    from tw_gates.core.markdown import escape_markdown, inline_code, markdown_table
    from tw_gates.core.settings import load_settings

    settings = load_settings(
        CanarySettings,
        {
            "baseline": args.baseline,
            "metrics": args.metrics,
            "prometheus_url": args.prometheus,
            "queries": args.queries,
            "thresholds": args.thresholds,
            "window": args.window,
            "interval": args.interval,
            "start": args.start,
            "at": args.at,
            "name": args.name,
            "revision": args.revision,
            "central_repo": args.central_repo,
            "dispatch_event": args.dispatch_event,
            "state_file": args.state_file,
            "require_key": args.require_key,
            "report": args.report,
            "dry_run": args.dry_run,
        },
    )
    if settings.dry_run and settings.central_repo is not None and settings.github_token is None:
        # A dry run writes nothing; without a token it cannot read the dashboard either.
        runner.warn(
            f"dry run without a GitHub token: the dashboard issue of {settings.central_repo} is not read, "
            "so the decision rests on this run's data alone"
        )
        settings = settings.model_copy(update={"central_repo": None})
    run_result = run_canary(settings, progress=runner.echo, warn=runner.warn)
    report = run_result.report
    window = report.window

    runner.echo(report.reason)
    for gate in report.gates:
        runner.echo(
            f"  {gate.name:<14} {gate.status:<8} last {fmt_value(gate.last_value, gate.metric):<12} "
            f"worst {fmt_value(gate.worst_value, gate.metric):<12} {gate.rule}"
        )
    for line in run_result.actions:
        runner.echo(f"  {line}")
    for problem in run_result.problems:
        runner.annotate("error", problem, title="tw-gates canary")

    runner.set_output("decision", report.decision)
    runner.set_output("reason", report.reason)
    runner.set_output("coverage-pct", f"{window.coverage_pct:.1f}")
    runner.set_output("time-left-seconds", str(window.time_left_s))
    if settings.report is not None and str(settings.report) != "-":
        runner.set_output("report", str(settings.report))
    rows = [[g.name, g.rule, g.status, g.failed_checks] for g in report.gates]
    runner.append_summary(
        f"### Canary {inline_code(report.name)}: {report.decision}\n\n{escape_markdown(report.reason)}\n\n"
        + markdown_table(["gate", "rule", "status", "failed checks"], rows)
    )
    if report.decision == "ROLLBACK" and runner.on_runner():
        runner.annotate("error", report.reason, title="tw-gates canary ROLLBACK")

    return Outcome(int(run_result.exit_code), report.reason), report


COMMAND = Command(
    name="canary",
    help="48-hour canary analysis: PROMOTE, HOLD or ROLLBACK (exit 2)",
    description=DESCRIPTION,
    configure=configure,
    run=run,
    order=60,
)
