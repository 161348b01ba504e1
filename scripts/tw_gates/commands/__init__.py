"""The subcommands of ``tw-gates``, one module each.

A command module defines ``COMMAND = Command(...)``: its name, one-line help,
a function that adds its flags, and a function that runs it and returns an
exit code. Modules here stay cheap to import (the gate itself is imported
inside ``run``), so ``tw-gates --help`` and the fast gates start quickly.
New commands are picked up by discovery: add a module, nothing else."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
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


def discover() -> list[Command]:
    found = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        command = getattr(module, "COMMAND", None)
        if isinstance(command, Command):
            found.append(command)
    return sorted(found, key=lambda c: (c.order, c.name))
