"""``tw-gates``: the command line over the gates.

One error path for every command: expected failures (TwGatesError) print one
line ``tw-gates <command>: error: <message>`` (plus an ``::error::``
annotation on a runner) and exit with their contract code; anything else is an
internal error, also one line (the traceback only with TW_GATES_DEBUG=1)."""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from typing import NoReturn

from tw_gates import __version__
from tw_gates.commands import discover
from tw_gates.commands.platform import refuse_off_linux
from tw_gates.core import metrics, runner
from tw_gates.core.errors import ExitCode, TwGatesError
from tw_gates.core.redact import MIN_SECRET_LENGTH, REDACTOR, secret_env_values

# R2 holds for every command that judges or writes something security-relevant:
# every command is a gate unless named here. These run anywhere: ``schema``
# prints a contract, ``render`` fills a template, ``demo`` tells a story whose
# first step is R2 itself (shown failing off Linux); ``platform`` reports R2 on
# its own (step outputs, verdict). --help and --version never reach a command.
NOT_GATES = frozenset({"schema", "render", "demo", "platform"})


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # usage errors: exit 1 per the contract
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(ExitCode.ERROR)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="tw-gates",
        description="Security gates for the Token Warehouse and its consumers. "
        "Exit codes: 0 pass, 1 usage/internal error, 2 gate rejected, 5 audit P0 "
        "(branch protection), 6 audit P0 (baseline).",
    )
    parser.add_argument("--version", action="version", version=f"tw-gates {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for command in discover():
        child = sub.add_parser(command.name, help=command.help, description=command.description or command.help)
        command.configure(child)
        child.set_defaults(_command=command)
    return parser


def _register_environment_secrets() -> None:
    # Guessed from variable names: only values long enough to be no common word.
    for value in REDACTOR.register(*secret_env_values(), min_length=MIN_SECRET_LENGTH):
        runner.mask(value)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    command = getattr(args, "_command", None)
    if command is None:
        parser.print_help(sys.stderr)
        return ExitCode.ERROR
    _register_environment_secrets()
    started = time.monotonic()
    code = _run(command, args)
    _record_run(command.name, code, time.monotonic() - started)
    return int(code)


def _run(command, args: argparse.Namespace) -> int:
    try:
        if command.name not in NOT_GATES:
            refuse_off_linux()
        return int(command.run(args).exit_code)
    except TwGatesError as exc:
        _report(command.name, str(exc), annotate=exc.annotate)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        _report(command.name, "interrupted")
        return ExitCode.ERROR
    except BrokenPipeError:
        # The reader went away (`tw-gates ... | head`): stop quietly, as Unix
        # tools do, and keep Python from complaining again when it flushes.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitCode.ERROR
    except Exception as exc:  # the contract: never a bare traceback
        if os.environ.get("TW_GATES_DEBUG") == "1":
            traceback.print_exc()
        _report(command.name, f"internal error: {type(exc).__name__}: {exc} (set TW_GATES_DEBUG=1 for a traceback)")
        return ExitCode.ERROR


def _report(name: str, message: str, *, annotate: bool = False) -> None:
    message = REDACTOR.redact(" ".join(message.split()))
    if annotate or runner.on_runner():
        runner.annotate("error", message, title=f"tw-gates {name}", always=annotate)
    print(f"tw-gates {name}: error: {message}", file=sys.stderr, flush=True)


def _record_run(name: str, code: int, seconds: float) -> None:
    """Every command leaves a trace in the metrics, whatever its outcome."""
    try:
        sink = metrics.current()
        sink.counter("tw_gates_command_runs_total").labels(command=name, exit_code=str(int(code))).inc()
        sink.gauge("tw_gates_command_last_run_timestamp_seconds").labels(command=name).set_to_current_time()
        sink.gauge("tw_gates_command_duration_seconds").labels(command=name).set(seconds)
        sink.flush()
    except Exception as exc:  # telemetry must never change a gate's verdict
        runner.warn(f"metrics not written: {type(exc).__name__}: {exc}")


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
