from __future__ import annotations

import argparse

from tw_gates.commands import Command, Outcome

ANNOTATED_REJECTIONS = 10  # GitHub shows at most 10 error annotations per step


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--artifacts",
        dest="artifacts",
        action="extend",
        nargs="+",
        metavar="PATH",
        help="consumer artifacts: files, folders (their *.json, recursively) or globs; repeatable "
        "(default: $TW_INGEST_ARTIFACTS, one per line)",
    )
    # The former spelling, kept working: `audit --artifacts` and this command now agree.
    parser.add_argument("--artifact", dest="artifacts", action="extend", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument(
        "--require-hmac",
        action="store_true",
        default=None,
        help="reject unsigned artifacts (same as POLICY_REQUIRE_HMAC=true)",
    )
    parser.add_argument(
        "--keys-env",
        metavar="NAME",
        help='environment variable holding the verification keys {"kid": "secret"} (default TW_HMAC_KEYS)',
    )
    parser.add_argument("--max-age", metavar="DURATION", help="reject artifacts generated longer ago (default 7d)")
    parser.add_argument("--max-bytes", metavar="SIZE", help="reject larger files without reading them (default 10MiB)")
    parser.add_argument(
        "--quarantine",
        metavar="DIR",
        help="where rejected artifacts are copied with a reason file (default ./tw-quarantine)",
    )
    parser.add_argument(
        "--out",
        metavar="ACCEPTED.jsonl",
        help="write the accepted artifacts here, one JSON per line (what `tw-gates audit` reads)",
    )
    parser.add_argument("--workers", type=int, metavar="N", help="worker processes (default: every CPU)")
    parser.add_argument(
        "--registry",
        metavar="PATH",
        help="consumer registry: where it binds a consumer to key ids (keys: [...]), only those sign for it "
        "(default: $TW_REGISTRY; none: keys not bound)",
    )
    parser.add_argument(
        "--require-provenance",
        action="store_true",
        default=None,
        help="reject an artifact that `tw-gates collect` did not record the source of (the central path; "
        "same as TW_INGEST_REQUIRE_PROVENANCE=true)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="also print a line per accepted artifact")


def run(args: argparse.Namespace) -> Outcome:
    import os

    from tw_gates.core import runner
    from tw_gates.core.errors import GateRejected, UsageError
    from tw_gates.core.markdown import markdown_table
    from tw_gates.core.settings import load_settings
    from tw_gates.ingest.ingest import IngestSettings, Verdict, ingest
    from tw_gates.ingest.reasons import show

    settings = load_settings(
        IngestSettings,
        {
            "artifacts": args.artifacts,
            "require_hmac": args.require_hmac,
            "keys_env": args.keys_env,
            "max_age": args.max_age,
            "max_bytes": args.max_bytes,
            "quarantine": args.quarantine,
            "out": args.out,
            "workers": args.workers,
            "registry": args.registry,
            "require_provenance": args.require_provenance,
        },
    )
    if settings.require_hmac and not settings.verification_ring().kids and os.environ.get("GITHUB_ACTION_PATH"):
        # Inside an action (actions/ingest, the umbrella) the user set an input, not a variable.
        raise UsageError(
            "require-hmac is on but no verification keys: give the action's input hmac-keys "
            '(a secret: a JSON object {"<kid>": "<secret>"}, e.g. hmac-keys: ${{ secrets.TW_HMAC_KEYS }})'
        )
    annotated = 0

    def report(verdict: Verdict) -> None:
        nonlocal annotated
        if verdict.accepted:
            if args.verbose:
                runner.echo(f"ACCEPTED {show(verdict.path, 300)}: {verdict.message}")
            return
        runner.echo(f"REJECTED {show(verdict.path, 300)}: {verdict.reason}: {verdict.message}")
        if runner.on_runner() and annotated < ANNOTATED_REJECTIONS:
            annotated += 1
            runner.annotate(
                "error",
                f"{verdict.reason}: {verdict.message}",
                title="tw-gates ingest rejected an artifact",
                file=show(verdict.path, 300),
            )

    result = ingest(settings, on_verdict=report, progress=runner.echo, warn=runner.warn)
    verdict = result.describe()
    runner.echo(verdict)
    if result.out:
        runner.echo(f"accepted artifacts: {result.out}")
    runner.set_output("accepted", str(result.accepted))
    runner.set_output("rejected", str(result.rejected))
    runner.set_output("out", str(result.out) if result.out else "")
    runner.set_output("quarantine", str(result.quarantine) if result.quarantine and result.rejected else "")
    rows = [["accepted", "", result.accepted]] + [
        ["rejected", reason, n] for reason, n in sorted(result.by_reason.items())
    ]
    runner.append_summary(
        f"### tw-gates ingest: {result.accepted} accepted, {result.rejected} rejected\n\n"
        + markdown_table(["result", "reason", "artifacts"], rows)
    )
    if result.total == 0:
        runner.warn("no artifacts found in the paths given")
    if result.rejected:
        where = f"; quarantined in {result.quarantine}" if result.quarantine else ""
        raise GateRejected(f"{result.rejected} of {result.total} artifacts rejected{where}")
    return Outcome(int(result.exit_code), verdict)


COMMAND = Command(
    name="ingest",
    help="S1: accept consumer artifacts that are valid and (under POLICY_REQUIRE_HMAC) signed; quarantine the rest",
    configure=configure,
    run=run,
    order=10,
)
