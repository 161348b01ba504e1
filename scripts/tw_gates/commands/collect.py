from __future__ import annotations

import argparse

from tw_gates.commands import Command, Outcome


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--registry", metavar="PATH", help="consumer registry (default: consumer_registry.yml)")
    parser.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="folder for the collected artifacts, one <owner>__<name>.json per consumer, each with the "
        "<owner>__<name>.json.provenance the ingest gate binds it to",
    )
    parser.add_argument("--shard", metavar="I/N", help="collect only shard I of N (1-based; stable per consumer name)")
    parser.add_argument(
        "--etag-cache",
        metavar="FILE",
        help="ETags and bodies kept between runs: an unchanged consumer then costs no API quota",
    )
    parser.add_argument("--max-bytes", metavar="SIZE", help="largest artifact JSON taken out of a zip (default 10MiB)")
    parser.add_argument("--manifest", metavar="PATH", help="also write every consumer's outcome as JSON here")


def run(args: argparse.Namespace) -> Outcome:
    from tw_gates.core import runner
    from tw_gates.core.errors import ExternalServiceError
    from tw_gates.core.fsio import atomic_write_json
    from tw_gates.core.markdown import markdown_table
    from tw_gates.core.settings import load_settings
    from tw_gates.ingest.collect import CollectSettings, ConsumerOutcome, collect

    settings = load_settings(
        CollectSettings,
        {
            "registry": args.registry,
            "out": args.out,
            "shard": args.shard,
            "etag_cache": args.etag_cache,
            "max_bytes": args.max_bytes,
            "manifest": args.manifest,
        },
    )

    def report(outcome: ConsumerOutcome) -> None:
        runner.echo(f"{outcome.status.upper():<10} {outcome.repo}: {outcome.detail}")
        if outcome.status == "error":
            runner.annotate("error", f"{outcome.repo}: {outcome.detail}", title="tw-gates collect")
        elif outcome.status == "missing":
            runner.annotate("warning", f"{outcome.repo}: {outcome.detail}", title="tw-gates collect")

    result = collect(settings, on_outcome=report, progress=runner.echo)
    runner.echo(result.describe())
    if settings.manifest:
        atomic_write_json(settings.manifest, result.model_dump(mode="json"))
    collected = result.count("downloaded") + result.count("unchanged")
    runner.set_output("collected", str(collected))
    runner.set_output("missing", str(result.count("missing")))
    runner.set_output("errors", str(result.count("error")))
    runner.set_output("out", str(settings.out))
    rows: list[list[object]] = [[o.repo, o.status, o.detail] for o in result.outcomes]
    runner.append_summary(
        f"### tw-gates collect: {collected} of {len(result.outcomes)} consumers\n\n"
        + markdown_table(["consumer", "result", "detail"], rows)
    )
    failed = [o.repo for o in result.outcomes if o.status == "error"]
    if failed:
        shown = ", ".join(failed[:5]) + (f" (+{len(failed) - 5} more)" if len(failed) > 5 else "")
        raise ExternalServiceError(
            f"{len(failed)} consumer(s) could not be collected: {shown}; "
            f"the {collected} collected are in {settings.out}"
        )
    return Outcome(0)


COMMAND = Command(
    name="collect",
    help="fetch the newest self-audit artifact of each registered consumer (REST, ETag-cached)",
    configure=configure,
    run=run,
    order=9,
)
