from __future__ import annotations

import argparse

from tw_gates.commands import Command, Outcome


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--platform", help="platform to check instead of this one (sys.platform style, for tests)")
    parser.add_argument("--runner-os", help="runner OS to check instead of $RUNNER_OS")


def run(args: argparse.Namespace) -> Outcome:
    # Not load_settings: that module brings pydantic, and this gate must start in a blink.
    from tw_gates.chain.platform import PlatformSettings, platform
    from tw_gates.core import runner
    from tw_gates.core.errors import GateRejected

    flags = {"platform": args.platform, "runner_os": args.runner_os}
    result = platform(PlatformSettings(**{k: v for k, v in flags.items() if v is not None}))
    runner.set_output("platform", result.platform)
    runner.set_output("linux", "true" if result.linux else "false")
    if not result.linux:
        raise GateRejected(result.message)
    verdict = result.message
    runner.echo(verdict)
    return Outcome(int(result.exit_code), verdict)


def refuse_off_linux() -> None:
    """R2 for every gate command: raise GateRejected (exit 2, the platform
    message) off Linux. The CLI calls it before any gate runs; ``platform``
    itself reports through ``run`` (outputs, verdict)."""
    from tw_gates.chain.platform import PlatformSettings, platform
    from tw_gates.core.errors import GateRejected

    result = platform(PlatformSettings())
    if not result.linux:
        raise GateRejected(result.message)


COMMAND = Command(
    name="platform", help="R2: refuse to run on a non-Linux runner", configure=configure, run=run, order=5
)
