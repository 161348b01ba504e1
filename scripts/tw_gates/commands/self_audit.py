from __future__ import annotations

import argparse

from tw_gates.commands import Command, Outcome

SHOWN_HITS = 50  # hits listed in the log; all of them are in the artifact
ANNOTATED_HITS = 10  # GitHub shows at most 10 warning annotations per step


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repo-dir", help="checkout to scan (default: the current folder)")
    parser.add_argument(
        "--patterns",
        metavar="FILE",
        help="pattern catalog to use instead of the shipped one (extends_default: true to add to it)",
    )
    parser.add_argument(
        "--out",
        metavar="PATH",
        help="where to write the consumer artifact (JSON; default: $TW_SELF_AUDIT_OUT, else tw-self-audit.json)",
    )
    parser.add_argument("--sarif", metavar="PATH", help="also write the hits as SARIF 2.1.0 (for code scanning)")
    parser.add_argument("--repo", help="owner/name of the scanned repository (default: $GITHUB_REPOSITORY, else git)")
    parser.add_argument("--commit", help="40-hex commit scanned (default: $GITHUB_SHA, else git HEAD)")
    parser.add_argument("--branch", help="branch scanned (default: $GITHUB_HEAD_REF or $GITHUB_REF_NAME, else git)")
    parser.add_argument("--max-file-bytes", metavar="SIZE", help="skip files larger than this (default 2MiB)")
    parser.add_argument(
        "--harmless-arguments",
        choices=("drop", "info"),
        help="a hit whose argument is a constant or sanitized: left out (drop, the default) or kept, "
        "marked with its argument (info)",
    )


def run(args: argparse.Namespace) -> Outcome:
    from tw_gates.core import runner
    from tw_gates.core.markdown import markdown_table
    from tw_gates.core.settings import load_settings
    from tw_gates.schemas.severity import SEVERITY_RANK
    from tw_gates.self_audit.self_audit import SelfAuditSettings, self_audit

    settings = load_settings(
        SelfAuditSettings,
        {
            "repo_dir": args.repo_dir,
            "patterns_file": args.patterns,
            "out": args.out,
            "sarif": args.sarif,
            "repo": args.repo,
            "commit": args.commit,
            "branch": args.branch,
            "max_file_bytes": args.max_file_bytes,
            "harmless_arguments": args.harmless_arguments,
        },
    )
    result = self_audit(settings, progress=runner.echo)

    severities = ", ".join(f"{n} {s}" for s, n in result.hits_by_severity.items())
    skipped = ", ".join(f"{n} {reason}" for reason, n in result.skipped.items())
    contexts = ", ".join(f"{n} {c}" for c, n in result.hits_by_context.items())
    runner.echo(
        f"self-audit: {len(result.hits)} hits{f' ({severities})' if severities else ''} in "
        f"{result.files_scanned} files scanned{f' (skipped: {skipped})' if skipped else ''} "
        f"for {result.repo}@{result.commit[:12]} ({result.branch})"
    )
    runner.echo(
        f"  where: {contexts or 'none'}; {result.files_parsed} file(s) parsed past the prefilter; "
        f"{result.harmless} harmless argument(s) (constant or sanitized) left out"
    )
    for hit in result.hits[:SHOWN_HITS]:
        notes = [n for n in (hit.context if hit.context != "production" else "", hit.argument or "") if n]
        runner.echo(f"  {hit.path}:{hit.line}: {hit.pattern} ({hit.severity}{''.join(f', {n}' for n in notes)})")
    if len(result.hits) > SHOWN_HITS:
        runner.echo(f"  ... and {len(result.hits) - SHOWN_HITS} more (all are in {result.artifact})")
    ranked = sorted(result.hits, key=lambda h: SEVERITY_RANK[h.severity])
    # On a runner the worst hits also show on the code; elsewhere the list above says it all.
    for hit in ranked[:ANNOTATED_HITS] if runner.on_runner() else []:
        runner.annotate(
            "warning",
            f"renderer pattern {hit.pattern} ({hit.severity})",
            file=hit.path,
            line=hit.line,
            title="tw-gates self-audit",
        )
    if result.signed_kid:
        runner.echo(f"artifact: {result.artifact} (signed, key id {result.signed_kid})")
    else:
        runner.echo(f"artifact: {result.artifact} (unsigned)")
        runner.annotate(
            "warning",
            "the artifact is unsigned (no hmac-key input, TW_HMAC_KEY not set): the central ingest gate "
            "with POLICY_REQUIRE_HMAC=true will reject it; sign it with a key the central repository holds",
            title="tw-gates self-audit",
        )
    if result.sarif:
        runner.echo(f"sarif: {result.sarif}")

    runner.set_output("artifact", str(result.artifact))
    runner.set_output("sarif", str(result.sarif) if result.sarif else "")
    runner.set_output("hits", str(len(result.hits)))
    runner.set_output("signed", "true" if result.signed_kid else "false")
    rows = [[s, n] for s, n in result.hits_by_severity.items()] or [["none", 0]]
    where = [[c, n] for c, n in result.hits_by_context.items()] or [["none", 0]]
    runner.append_summary(
        f"### tw-gates self-audit: {len(result.hits)} renderer hits\n\n"
        + markdown_table(["severity", "hits"], rows)
        + "\n"
        + markdown_table(["where", "hits"], where)
    )

    return Outcome(int(result.exit_code))


COMMAND = Command(
    name="self-audit",
    help="consumer side: scan for renderer patterns, write the (signed) consumer artifact",
    configure=configure,
    run=run,
    order=40,
)
