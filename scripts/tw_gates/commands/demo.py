from __future__ import annotations

import argparse

from tw_gates.commands import Command, Outcome

DESCRIPTION = """The whole story on the bundled example consumer (examples/consumer), offline:
no GitHub, no network, none of your GITHUB_TOKEN. One line per step (PASS, EXPECTED <what>
for a rejection the story expects, FAIL), then a summary table. Exit 0 when every step
went as the story expects, 2 otherwise, 1 when not run from a tw-gates checkout.
Signing key: TW_HMAC_KEY (TW_HMAC_KEY_ID) when set, else a random key for this run."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        default="demo-out",
        metavar="DIR",
        help="where the demo writes (default demo-out; only what the demo writes there is replaced)",
    )
    parser.add_argument(
        "--repo-dir",
        default=".",
        metavar="DIR",
        help="the tw-gates checkout holding examples/consumer (default: the current folder)",
    )
    parser.add_argument(
        "--skip-tests",
        action="store_true",
        help="do not run the behavioral tests: G2 and phase 0 are then not run (faster)",
    )
    parser.add_argument(
        "--only", metavar="STEPS", help="run only these steps: numbers or names, comma separated (see --list)"
    )
    parser.add_argument("--list", action="store_true", help="list the steps and exit")


def run(args: argparse.Namespace) -> Outcome:
    from pathlib import Path

    from tw_gates.core import runner
    from tw_gates.core.errors import GateRejected
    from tw_gates.demo import demo

    if args.list:
        for step in demo.STEPS:
            needs = f" (needs {', '.join(step.needs)})" if step.needs else ""
            runner.echo(f"{step.number:>2} {step.name:<12} {step.gate:<11} {step.doing}{needs}")
        return Outcome(0)
    result = demo.run_demo(
        Path(args.repo_dir), Path(args.out), skip_tests=args.skip_tests, only=args.only, echo=runner.echo
    )
    runner.append_summary(result.summary_markdown)
    if result.failed:
        names = ", ".join(f"{r.step.number} ({r.step.name})" for r in result.failed)
        raise GateRejected(f"{len(result.failed)} step(s) did not go as the story expects: {names}")
    return Outcome(int(result.exit_code))


COMMAND = Command(
    name="demo",
    help="run the whole story on the bundled example consumer, offline",
    description=DESCRIPTION,
    configure=configure,
    run=run,
    order=2,
)
