"""What a ``--target`` string names: a builtin parser configuration
(``builtin:safe``, ``builtin:commonmark``, run by ``parser.targets``) or a
command line (the consumer's own parser: Markdown on stdin, the rendering on
stdout). Kept apart from ``parser.targets`` so the gate's side resolves a
target without importing the parser it runs."""

from __future__ import annotations

import shlex
import shutil

from tw_gates.core.errors import UsageError

NAMES = ("commonmark", "safe")
BUILTIN_PREFIX = "builtin:"
# The line a target may print on stderr with its own parse+render time.
PARSE_MS_PREFIX = "tw-gates-parse-ms:"


def command_argv(target: str) -> list[str]:
    """A command target as argv, split like a shell would, its program on PATH."""
    try:
        argv = shlex.split(target)
    except ValueError as exc:
        raise UsageError(f"target is not a valid command line: {target!r}: {exc}") from None
    if not argv:
        raise UsageError("the target is empty: give a command or builtin:safe / builtin:commonmark")
    if shutil.which(argv[0]) is None:
        raise UsageError(f"target command not found or not executable: {argv[0]}")
    return argv
