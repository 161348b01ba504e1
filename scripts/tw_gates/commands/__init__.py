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
from dataclasses import dataclass


@dataclass(frozen=True)
class Outcome:
    """What a command returns: its exit code and, for a gate, the one-line
    verdict it printed (the gate chain shows it in its table). A gate that
    rejects raises instead; the CLI's error path prints that."""

    exit_code: int = 0
    verdict: str = ""


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], Outcome]
    # Listing order in --help: gates in chain order first, then tools.
    order: int = 100
    description: str | None = None


def _module_names() -> list[str]:
    # The folder listed directly: pkgutil would bring typing and more (start-up).
    names = set()
    for folder in __path__:
        for entry in os.listdir(folder):
            name, ext = os.path.splitext(entry)
            if ext == ".py" and name.isidentifier() and not name.startswith("_"):
                names.add(name)
    return sorted(names)


def discover() -> list[Command]:
    found = []
    for name in _module_names():
        module = importlib.import_module(f"{__name__}.{name}")
        command = getattr(module, "COMMAND", None)
        if isinstance(command, Command):
            found.append(command)
    return sorted(found, key=lambda c: (c.order, c.name))
