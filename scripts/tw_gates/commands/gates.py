from __future__ import annotations

import argparse

from tw_gates.commands import Command, Outcome

DESCRIPTION = """Run gates of the chain on this checkout, in order, in one process; the first
gate that fails stops the chain (exit: that gate's code). Without --only the
repository's role picks the gates: a consumer repository (renders Token Warehouse
output) runs the platform guard and the self-audit; the central repository runs
R2 and G1..G5. The role is --role / $TW_ROLE, else central when the checkout holds
a consumer registry ($TW_REGISTRY, default consumer_registry.yml), else consumer."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--only",
        "--select",
        dest="only",
        default="all",
        help="gates to run: 'all' (the role's default gates) or a comma separated list of names (default: all)",
    )
    parser.add_argument(
        "--role",
        choices=("auto", "consumer", "central"),
        help="the repository's role, which picks the default gates (default: $TW_ROLE, else auto: "
        "central when the checkout holds a consumer registry)",
    )
    parser.add_argument("--list", action="store_true", help="list the gates and exit")


def run(args: argparse.Namespace) -> Outcome:
    from tw_gates.chain import run as chain
    from tw_gates.core import runner
    from tw_gates.core.markdown import markdown_table
    from tw_gates.core.settings import load_settings

    if args.list:
        for gate in chain.GATES:
            names = ", ".join(gate.names)
            roles = f" (default for: {', '.join(gate.roles)})" if gate.roles else " (optional) runs when named"
            runner.echo(f"{gate.name:<16} {gate.title}{roles}  [{names}]")
        return Outcome(0)

    choice = chain.detect_role(load_settings(chain.ChainSettings, {"role": args.role}))
    gates = chain.select(args.only, choice.role)
    chosen = f"the {choice.role} repository's default gates" if chain.is_default(args.only) else "as selected (--only)"
    runner.echo(f"role: {choice.role} ({choice.why})")
    runner.echo(f"gates: {', '.join(g.name for g in gates)} ({chosen})")
    runner.set_output("role", choice.role)

    def show(outcome: chain.GateOutcome) -> None:
        mark = "PASS" if outcome.passed else f"FAIL (exit {outcome.exit_code})"
        runner.echo(f"{outcome.gate:<16} {mark:<14} {outcome.message}")

    result = chain.run_chain(gates, on_outcome=show)
    for name in result.skipped:
        runner.echo(f"{name:<16} {'SKIPPED':<14} an earlier gate failed")
    passed = [o.gate for o in result.outcomes if o.passed]
    runner.set_output("passed", ",".join(passed))
    rows: list[list[object]] = [
        [o.gate, "pass" if o.passed else f"fail ({o.exit_code})", f"{o.seconds:.2f}s", o.message]
        for o in result.outcomes
    ]
    rows += [[n, "skipped", "", "an earlier gate failed"] for n in result.skipped]
    runner.append_summary(
        f"### tw-gates\n\nRole: **{choice.role}** ({choice.why}); gates: {chosen}.\n\n"
        + markdown_table(["gate", "result", "time", "detail"], rows)
    )
    return Outcome(int(result.exit_code))


COMMAND = Command(
    name="gates",
    help="run the gate chain (or a selection) on this checkout; the repository's role picks the default gates",
    description=DESCRIPTION,
    configure=configure,
    run=run,
    order=1,
)
