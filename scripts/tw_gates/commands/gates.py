from __future__ import annotations

import argparse

from tw_gates.commands import Command, Outcome


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--only",
        "--select",
        dest="only",
        default="all",
        help="gates to run: 'all' or a comma separated list of names (default: all)",
    )
    parser.add_argument("--list", action="store_true", help="list the gates and exit")


def run(args: argparse.Namespace) -> Outcome:
    from tw_gates.chain import run as chain
    from tw_gates.core import runner
    from tw_gates.core.markdown import markdown_table

    if args.list:
        for gate in chain.GATES:
            names = ", ".join(gate.names)
            runner.echo(f"{gate.name:<16} {gate.title}{' (optional)' if gate.optional else ''}  [{names}]")
        return Outcome(0)

    def show(outcome: chain.GateOutcome) -> None:
        mark = "PASS" if outcome.passed else f"FAIL (exit {outcome.exit_code})"
        runner.echo(f"{outcome.gate:<16} {mark:<14} {outcome.message}")

    result = chain.run_chain(chain.select(args.only), on_outcome=show)
    for name in result.skipped:
        runner.echo(f"{name:<16} {'SKIPPED':<14} an earlier gate failed")
    passed = [o.gate for o in result.outcomes if o.passed]
    runner.set_output("passed", ",".join(passed))
    rows = [
        [o.gate, "pass" if o.passed else f"fail ({o.exit_code})", f"{o.seconds:.2f}s", o.message]
        for o in result.outcomes
    ] + [[n, "skipped", "", "an earlier gate failed"] for n in result.skipped]
    runner.append_summary("### tw-gates\n\n" + markdown_table(["gate", "result", "time", "detail"], rows))
    return Outcome(int(result.exit_code))


COMMAND = Command(
    name="gates", help="run the gate chain (or a selection) on this checkout", configure=configure, run=run, order=1
)
