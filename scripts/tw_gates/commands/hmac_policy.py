from __future__ import annotations

import argparse

from tw_gates.commands import Command, Outcome


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repo-dir", help="repository to check (default: $TW_REPO_DIR or the current folder)")


def run(args: argparse.Namespace) -> Outcome:
    from tw_gates.chain.hmac_policy import HmacPolicySettings, hmac_policy
    from tw_gates.core import runner
    from tw_gates.core.errors import GateRejected
    from tw_gates.core.markdown import escape_markdown, markdown_table
    from tw_gates.core.settings import load_settings

    result = hmac_policy(load_settings(HmacPolicySettings, {"repo_dir": args.repo_dir}))
    for problem in result.parse_errors:
        runner.warn(f"skipped, not parsed: {problem}")
    for site in result.sites:
        runner.echo(site.text)
        if not site.enforced and runner.on_runner():
            runner.annotate("error", site.text, file=site.file, line=site.line, title="tw-gates G4: HMAC not enforced")
    runner.set_output("enforced", result.score)
    runner.append_summary(
        f"### tw-gates hmac-policy (G4): {escape_markdown(result.summary)}\n\n"
        + markdown_table(["ingest gate", "POLICY_REQUIRE_HMAC"], [[s.where, s.detail] for s in result.sites])
    )
    if result.exit_code:
        raise GateRejected(result.summary)
    verdict = f"G4: {result.summary}"
    runner.echo(verdict)
    return Outcome(int(result.exit_code), verdict)


COMMAND = Command(
    name="hmac-policy",
    help="G4: POLICY_REQUIRE_HMAC is true wherever the ingest gate runs",
    configure=configure,
    run=run,
    order=14,
)
