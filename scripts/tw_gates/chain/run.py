"""The gate chain: the gates the umbrella action and ``tw-gates gates`` run
in one process, in order, each configured from the environment.

A gate is registered once here with its names; running a selection stops at
the first gate that does not pass (as ``needs:`` does between jobs).

The default selection depends on the repository's role. A *consumer*
repository renders Token Warehouse output: its gates are the platform guard
and the self-audit (the signed artifact the central repository ingests). The
*central* repository runs the chain G1..G5 on its own configuration. The role
is declared (``--role``, ``TW_ROLE``, the umbrella's ``role`` input) or read
from the checkout: a consumer registry there (``consumer_registry.yml``, the
list of consumers the central repository audits) makes it central."""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NoReturn

from pydantic import BaseModel, Field

from tw_gates.chain.audit_settings import DEFAULT_REGISTRY
from tw_gates.commands import discover
from tw_gates.core.errors import ExitCode, TwGatesError, UsageError
from tw_gates.core.settings import EnvSettings, env

Role = Literal["consumer", "central"]
ROLES: tuple[Role, ...] = ("consumer", "central")


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
    """A gate of the chain; ``name`` is also the ``tw-gates`` command that runs it."""

    name: str
    title: str
    aliases: tuple[str, ...] = ()
    # The roles whose default selection ("all") includes the gate; none: the
    # gate is optional and runs only when named.
    roles: tuple[Role, ...] = ()
    names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", (self.name.lower(), *(a.lower() for a in self.aliases)))

    @property
    def optional(self) -> bool:
        return not self.roles

    def run(self) -> GateOutcome:
        """Run the gate's own command with no flags: each gate's settings then
        come from the environment (TW_REPO_DIR, TW_JUNIT, TW_AUDIT_REPORT, ...),
        and the chain shows, annotates and outputs exactly what the command
        alone would."""
        command = next(c for c in discover() if c.name == self.name)
        parser = _FlaglessParser(prog=f"tw-gates {self.name}")
        command.configure(parser)
        outcome = command.run(parser.parse_args([]))
        return GateOutcome(
            gate=self.name, exit_code=outcome.exit_code, message=outcome.verdict or f"exit {outcome.exit_code}"
        )


class _FlaglessParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


GATES: list[GateSpec] = [
    GateSpec("platform", "R2 Linux-only", aliases=("r2",), roles=("consumer", "central")),
    # TW_REPO_DIR, TW_SELF_AUDIT_OUT, TW_SELF_AUDIT_SARIF, TW_HMAC_KEY, TW_HMAC_KEY_ID ...
    GateSpec("self-audit", "S1 consumer self-audit (signed artifact, SARIF)", roles=("consumer",)),
    # TW_INGEST_ARTIFACTS (one path/folder/glob per line), POLICY_REQUIRE_HMAC, TW_HMAC_KEYS, TW_INGEST_OUT ...
    GateSpec("ingest", "S1 ingest gate (consumer artifacts)", aliases=("s1",)),
    # G1..G5: TW_REPO_DIR (G1, G4, G5), TW_JUNIT / TW_EXPECT_TESTS (G2), TW_AUDIT_REPORT,
    # TW_REGISTRY, TW_BASELINE, TW_PERF_CURRENT, TW_ACCEPTED_ARTIFACTS, TW_AUDIT_EXCEPTIONS... (G3).
    GateSpec("verify-nets", "G1 safety nets verified", aliases=("g1",), roles=("central",)),
    GateSpec("behavioral", "G2 behavioral tests", aliases=("g2",), roles=("central",)),
    GateSpec("audit", "G3 green-light audit", aliases=("g3",), roles=("central",)),
    # TW_AUDIT_REPORT, TW_CENTRAL_REPO, GITHUB_TOKEN, MAX_ISSUES_PER_RUN, TW_FALLBACK_DIR, TW_DEADLINE ...
    GateSpec("file-issues", "S2/R1 file audit findings as issues", aliases=("s2", "r1")),
    GateSpec("hmac-policy", "G4 HMAC policy", aliases=("g4",), roles=("central",)),
    GateSpec("telemetry-check", "G5 telemetry infrastructure", aliases=("g5",), roles=("central",)),
    # TW_ADVERSARIAL_TARGET, TW_ADVERSARIAL_ONLY, _CORPORA, _JOBS, _REPORT, _DOWNSTREAM ...
    GateSpec("adversarial", "Adversarial Markdown corpora"),
    # TW_CANARY_BASELINE plus TW_PROMETHEUS_URL or TW_CANARY_METRICS, TW_CENTRAL_REPO ...
    GateSpec("canary", "48-hour canary (PROMOTE/HOLD pass, ROLLBACK fails)"),
]


class ChainSettings(EnvSettings):
    """What decides the default selection: the declared role, else the checkout."""

    role: Literal["auto", "consumer", "central"] = Field("auto", validation_alias=env("TW_ROLE", "role"))
    repo_dir: Path = Field(Path("."), validation_alias=env("TW_REPO_DIR", "repo_dir"))
    registry: Path = Field(Path(DEFAULT_REGISTRY), validation_alias=env("TW_REGISTRY", "registry"))


@dataclass(frozen=True)
class RoleChoice:
    role: Role
    why: str


def detect_role(settings: ChainSettings) -> RoleChoice:
    """The repository's role, and why: declared, or read from the checkout."""
    if settings.role != "auto":
        return RoleChoice(settings.role, "declared (role input, TW_ROLE or --role)")
    registry = settings.registry if settings.registry.is_absolute() else settings.repo_dir / settings.registry
    shown = registry.as_posix().removeprefix("./")
    if registry.is_file():
        return RoleChoice("central", f"{shown} found: this repository registers the consumers it audits")
    return RoleChoice(
        "consumer",
        f"no {shown}: a repository that registers no consumers renders Token Warehouse output "
        "(declare role: central to run the gate chain G1..G5)",
    )


def select(selection: str | list[str] | None, role: Role = "central") -> list[GateSpec]:
    """'all' (or empty) = the role's default gates; else the named gates in chain order."""
    words = selection if isinstance(selection, list) else re.split(r"[\s,]+", (selection or "").strip())
    words = [w.lower() for w in words if w]
    if not words or words == ["all"]:
        return [g for g in GATES if role in g.roles]
    unknown = [w for w in words if w != "all" and not any(w in g.names for g in GATES)]
    if unknown:
        known = ", ".join(g.name for g in GATES)
        raise UsageError(f"unknown gate(s): {', '.join(unknown)} (known: {known}, or all)")
    return [g for g in GATES if ("all" in words and role in g.roles) or any(w in g.names for w in words)]


def is_default(selection: str | list[str] | None) -> bool:
    """The selection is the role's default set (nothing named)."""
    words = selection if isinstance(selection, list) else re.split(r"[\s,]+", (selection or "").strip())
    return [w.lower() for w in words if w] in ([], ["all"])


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
            return ChainResult(outcomes=outcomes, skipped=[g.name for g in gates[index + 1 :]])
    return ChainResult(outcomes=outcomes, skipped=[])
