from __future__ import annotations

import argparse

from tw_gates.commands import Command, Outcome


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repo-dir", help="repository to check (default: $TW_REPO_DIR or the current folder)")


def run(args: argparse.Namespace) -> Outcome:
    from tw_gates.chain.verify_nets import VerifyNetsSettings, verify_nets
    from tw_gates.core import runner
    from tw_gates.core.errors import GateRejected
    from tw_gates.core.markdown import escape_markdown, markdown_table
    from tw_gates.core.settings import load_settings

    result = verify_nets(load_settings(VerifyNetsSettings, {"repo_dir": args.repo_dir}))
    for problem in result.parse_errors:
        runner.warn(f"skipped, not parsed: {problem}")
    for net in result.nets:
        runner.echo(net.text)
        if not net.verified and runner.on_runner():
            runner.annotate("error", net.text, file=net.file, line=net.line, title=f"tw-gates G1: {net.net} missing")
    runner.set_output("verified", result.score)
    runner.set_output("missing", ",".join(result.missing))
    runner.append_summary(
        "### tw-gates verify-nets (G1): "
        + escape_markdown(result.score)
        + "\n\n"
        + markdown_table(
            ["net", "status", "evidence / what is missing"],
            [[n.net, "VERIFIED" if n.verified else "MISSING", n.detail] for n in result.nets],
        )
    )
    if result.exit_code:
        raise GateRejected(f"{result.score} safety nets verified; missing: {', '.join(result.missing)}")
    verdict = f"G1: {result.score} safety nets verified"
    runner.echo(verdict)
    return Outcome(int(result.exit_code), verdict)


COMMAND = Command(
    name="verify-nets",
    help="G1: verify the five safety nets (S1 S2 R1 R2 C1) are configured",
    configure=configure,
    run=run,
    order=10,
)
