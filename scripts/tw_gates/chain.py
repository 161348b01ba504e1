"""The gate chain: the gates the umbrella action and ``tw-gates gates`` run
in one process, in order, each configured from the environment.

A gate is registered once here with its names; running a selection stops at
the first gate that does not pass (as ``needs:`` does between jobs)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Callable

from pydantic import BaseModel

from tw_gates.core.errors import ExitCode, TwGatesError, UsageError


class GateOutcome(BaseModel):
    gate: str
    exit_code: int
    message: str
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.exit_code == ExitCode.OK


class ChainResult(BaseModel):
    outcomes: list[GateOutcome]
    skipped: list[str]

    @property
    def exit_code(self) -> int:
        failed = [o.exit_code for o in self.outcomes if not o.passed]
        return failed[0] if failed else ExitCode.OK


@dataclass(frozen=True)
class GateSpec:
    name: str
    title: str
    run: Callable[[], GateOutcome]
    aliases: tuple[str, ...] = ()
    # Optional gates run only when selected by name, never under "all".
    optional: bool = False
    names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", (self.name.lower(), *(a.lower() for a in self.aliases)))


def _platform() -> GateOutcome:
    from tw_gates.core.settings import load_settings
    from tw_gates.platform_guard import PlatformSettings, check_platform

    result = check_platform(load_settings(PlatformSettings))
    return GateOutcome(gate="platform", exit_code=result.exit_code, message=result.message)


GATES: list[GateSpec] = [
    GateSpec("platform", "R2 Linux-only", _platform, aliases=("r2",)),
]


def select(selection: str | list[str] | None) -> list[GateSpec]:
    """'all' (or empty) = every non-optional gate; else the named gates in chain order."""
    words = selection if isinstance(selection, list) else re.split(r"[\s,]+", (selection or "").strip())
    words = [w.lower() for w in words if w]
    if not words or words == ["all"]:
        return [g for g in GATES if not g.optional]
    unknown = [w for w in words if w != "all" and not any(w in g.names for g in GATES)]
    if unknown:
        known = ", ".join(g.name for g in GATES)
        raise UsageError(f"unknown gate(s): {', '.join(unknown)} (known: {known}, or all)")
    return [g for g in GATES if "all" in words and not g.optional or any(w in g.names for w in words)]


def run_chain(gates: list[GateSpec], *, on_outcome: Callable[[GateOutcome], None] | None = None) -> ChainResult:
    outcomes: list[GateOutcome] = []
    for index, gate in enumerate(gates):
        started = time.monotonic()
        try:
            outcome = gate.run()
        except TwGatesError as exc:
            outcome = GateOutcome(gate=gate.name, exit_code=int(exc.exit_code), message=str(exc))
        outcome.seconds = time.monotonic() - started
        outcomes.append(outcome)
        if on_outcome:
            on_outcome(outcome)
        if not outcome.passed:
            return ChainResult(outcomes=outcomes, skipped=[g.name for g in gates[index + 1:]])
    return ChainResult(outcomes=outcomes, skipped=[])
