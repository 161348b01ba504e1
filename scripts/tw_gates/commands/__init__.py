"""The subcommands of ``tw-gates``, one module each.

A command module defines ``COMMAND = Command(...)``: its name, one-line help,
a function that adds its flags, and a function that runs it and returns an
exit code. Modules here stay cheap to import (the gate itself is imported
inside ``run``), so ``tw-gates --help`` and the fast gates start quickly.
New commands are picked up by discovery: add a module, nothing else."""

from __future__ import annotations

import argparse
import importlib
import os
from collections.abc import Callable

# Plain classes, not dataclasses: this module is on every command's start-up
# path, and dataclasses imports inspect (with ast, dis, tokenize).


class Outcome:
    """What a command returns: its exit code and, for a gate, the one-line
    verdict it printed (the gate chain shows it in its table). A gate that
    rejects raises instead; the CLI's error path prints that."""

    __slots__ = ("exit_code", "verdict")

    def __init__(self, exit_code: int = 0, verdict: str = "") -> None:
        self.exit_code = exit_code
        self.verdict = verdict

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Outcome) and (self.exit_code, self.verdict) == (other.exit_code, other.verdict)

    def __hash__(self) -> int:
        return hash((self.exit_code, self.verdict))

    def __repr__(self) -> str:
        return f"Outcome(exit_code={self.exit_code!r}, verdict={self.verdict!r})"


class Command:
    """A subcommand: its name, one-line help, a function that adds its flags,
    one that runs it; ``order`` places it in --help (gates in chain order first,
    then tools)."""

    __slots__ = ("configure", "description", "help", "name", "order", "run")

    def __init__(
        self,
        name: str,
        help: str,
        configure: Callable[[argparse.ArgumentParser], None],
        run: Callable[[argparse.Namespace], Outcome],
        order: int = 100,
        description: str | None = None,
    ) -> None:
        self.name = name
        self.help = help
        self.configure = configure
        self.run = run
        self.order = order
        self.description = description

    def __repr__(self) -> str:
        return f"Command({self.name!r})"


def _module_names() -> list[str]:
    # The folder listed directly: pkgutil would bring typing and more (start-up).
    names = set()
    for folder in __path__:
        for entry in os.listdir(folder):
            name, ext = os.path.splitext(entry)
            if ext == ".py" and name.isidentifier() and not name.startswith("_"):
                names.add(name)
    return sorted(names)


def find(name: str) -> Command | None:
    """The command ``name``, importing its module only (``verify-nets`` lives
    in verify_nets.py); None if there is no such command."""
    module_name = name.replace("-", "_")
    if module_name.isidentifier() and not module_name.startswith("_") and module_name in _module_names():
        command = getattr(importlib.import_module(f"{__name__}.{module_name}"), "COMMAND", None)
        if isinstance(command, Command) and command.name == name:
            return command
    return next((command for command in discover() if command.name == name), None)


def discover() -> list[Command]:
    found = []
    for name in _module_names():
        module = importlib.import_module(f"{__name__}.{name}")
        command = getattr(module, "COMMAND", None)
        if isinstance(command, Command):
            found.append(command)
    return sorted(found, key=lambda c: (c.order, c.name))
