from __future__ import annotations

import argparse

from tw_gates.commands import Command, Outcome


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--audit", metavar="REPORT.json", help="audit report written by `tw-gates audit` (env TW_AUDIT_REPORT)"
    )
    parser.add_argument(
        "--central-repo",
        metavar="OWNER/REPO",
        help="where the issues go (env TW_CENTRAL_REPO, default GITHUB_REPOSITORY)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        default=None,
        help="print what would be filed; write nothing (no token needed)",
    )
    parser.add_argument(
        "--max-issues",
        type=int,
        metavar="N",
        help="cap on issues per run; more repositories "
        "with findings -> one digest (env MAX_ISSUES_PER_RUN, default 10)",
    )
    parser.add_argument("--audit-id", metavar="ID", help="audit id shown in the issues (default: the report's)")
    parser.add_argument(
        "--fallback-dir",
        metavar="DIR",
        help="where the S2 fallback artifact goes (env TW_FALLBACK_DIR, default tw-gates-fallback)",
    )
    parser.add_argument("--label", metavar="L", help="label of the issues tw-gates owns (default tw-gates)")
    parser.add_argument(
        "--quota-threshold",
        type=int,
        metavar="N",
        help="below this many API requests left, file one digest only (env TW_QUOTA_THRESHOLD, default 500)",
    )
    parser.add_argument(
        "--deadline",
        metavar="WHEN",
        help="never wait for GitHub past this: a duration from now "
        "(15m), an ISO time or epoch seconds (env TW_DEADLINE, default 15m)",
    )


def run(args: argparse.Namespace) -> Outcome:
    from tw_gates.core import runner
    from tw_gates.core.errors import TwGatesError
    from tw_gates.core.markdown import Markdown, markdown_table
    from tw_gates.core.settings import load_settings
    from tw_gates.issues.file_issues import FileIssuesSettings, file_issues

    settings = load_settings(
        FileIssuesSettings,
        {
            "audit": args.audit,
            "central_repo": args.central_repo,
            "dry_run": args.dry_run,
            "max_issues": args.max_issues,
            "audit_id": args.audit_id,
            "fallback_dir": args.fallback_dir,
            "label": args.label,
            "quota_threshold": args.quota_threshold,
            "deadline": args.deadline,
        },
    )
    result = file_issues(settings, echo=runner.echo, warn=runner.warn)
    runner.set_output("mode", result.mode)
    for action in ("created", "updated", "unchanged", "closed"):
        runner.set_output(action, str(result.count(action)))
    runner.set_output("issues", [a.number for a in result.actions if a.number is not None and a.action != "closed"])
    runner.set_output("fallback-path", result.fallback_path or "")
    runner.set_output("api-calls", str(result.api_calls))
    rows = [
        [a.action, a.kind, a.name, Markdown(f"#{int(a.number)}") if a.number else "", a.findings]
        for a in result.actions
    ]
    if rows:
        runner.append_summary(
            "### tw-gates file-issues\n\n" + markdown_table(["action", "kind", "repository", "issue", "findings"], rows)
        )
    verdict = f"file-issues: {_said(result, offline=settings.github_token is None)}"
    runner.echo(verdict)
    if result.exit_code:
        # The CLI's error path annotates on a runner; off a runner the line alone says it.
        raise TwGatesError(result.message, exit_code=result.exit_code)
    if result.fallback_path:
        runner.annotate("warning", result.message, title="tw-gates file-issues")
    return Outcome(int(result.exit_code), verdict)


def _said(result, *, offline: bool) -> str:
    """The run in one line: its message and the API calls it cost."""
    if result.dry_run and offline:
        return "dry run without a GitHub token: planned as if no issue existed; nothing sent, 0 API calls"
    message = result.message or ("dry run: nothing written" if result.dry_run else "nothing to do")
    return f"{message}; {result.api_calls} API calls"


COMMAND = Command(
    name="file-issues",
    help="S2/R1: file audit findings as issues (capped, idempotent; fallback artifact when it cannot)",
    configure=configure,
    run=run,
    order=20,
)
