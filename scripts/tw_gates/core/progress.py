"""How a gate speaks while it works, without printing itself.

Gate functions take ``progress`` (a line for the person reading the log) and
``warn`` (a problem that does not stop the gate) callbacks; only the command
layer passes ones that print. The defaults keep a gate silent, as the demo
and tests want it."""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str], None]


def silent(_line: str) -> None:
    """A callback that says nothing."""
