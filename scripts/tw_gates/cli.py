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

from tw_gates import __version__
from tw_gates.commands import discover, find
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

TYPE_CHECKING = False  # typing stays out of the start-up path
if TYPE_CHECKING:
    from typing import Any, NoReturn


def _terminal_columns() -> int:
    """The terminal's width as shutil.get_terminal_size() finds it (COLUMNS,
    then the terminal, then 80), without importing shutil: argparse builds a
    help formatter for every flag, and shutil brings bz2, lzma and more
    (milliseconds of every start, for a number)."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class _Formatter(argparse.HelpFormatter):
    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24, width: int | None = None):
        # argparse's own default width: the terminal's, less 2.
        super().__init__(prog, indent_increment, max_help_position, _terminal_columns() - 2 if width is None else width)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:  # usage errors: exit 1 per the contract
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(ExitCode.ERROR)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command with its flags; with ``command``, the one
    needed to parse a command line that starts with that word.

    A known command gets its own subparser only: nothing the others add can
    show or matter once the first word is chosen, and importing and
    configuring 19 commands (a help formatter per flag) was most of a fast
    command's start-up. Otherwise (an option or an unknown word first) every
    command is listed by name and help line, as --help and the "invalid
    choice" error show them, and none gets its flags."""
    parser = _Parser(
        prog="tw-gates",
        description="Security gates for the Token Warehouse and its consumers. "
        "Exit codes: 0 pass, 1 usage/internal error, 2 gate rejected, 5 audit P0 "
        "(branch protection), 6 audit P0 (baseline).",
    )
    parser.add_argument("--version", action="version", version=f"tw-gates {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    chosen = find(command) if command else None
    for found in [chosen] if chosen else discover():
        child = sub.add_parser(found.name, help=found.help, description=found.description or found.help)
        if command is None or found is chosen:
            found.configure(child)
        child.set_defaults(_command=found, _parser=child)
    return parser


def _first_word(argv: list[str]) -> str:
    """The command word when the line starts with one ("" otherwise: options
    first, as in ``tw-gates -h platform``, are the top-level parser's)."""
    return argv[0] if argv and not argv[0].startswith("-") else ""


def _register_environment_secrets() -> None:
    # Guessed from variable names: only values long enough to be no common word.
    for value in REDACTOR.register(*secret_env_values(), min_length=MIN_SECRET_LENGTH):
        runner.mask(value)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(_first_word(argv))
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        # The command's own usage, not the list of commands: the flag was given to it.
        getattr(args, "_parser", parser).error(f"unrecognized arguments: {' '.join(unknown)}")
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
            sys.excepthook(type(exc), exc, exc.__traceback__)  # the traceback, without importing traceback
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
