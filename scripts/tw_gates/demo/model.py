"""The demo's vocabulary: its example's names, settings built without the
environment, and what a step is, says and hands to the next one."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import Field, ValidationError

from tw_gates.core.errors import UsageError
from tw_gates.core.proc import ProcResult
from tw_gates.core.settings import EnvSettings, SigningSettings, describe_settings_error, env
from tw_gates.schemas.severity import SEVERITIES

CONSUMER_DIR = Path("examples") / "consumer"
CANARY_DIR = Path("examples") / "canary"
CONSUMER_REPO = "example-org/example-consumer"
CONSUMER_BRANCH = "main"
CODE_PATHS = ["app/rendering/**"]  # where the example's renderer code is registered
DEMO_KID = "demo"
APPROVER = "security-team (demo)"
EXCEPTION_DAYS = 30
EXPECTED_BEHAVIORAL = 14
PYTEST_TIMEOUT_S = 300
# The performance baseline is sized for a demo: the built-in corpus's 12 documents of
# 0.5 to 4 KiB (of 24, up to 64 KiB), 1 warm-up + 10 measured parses each: 120
# samples in about a second, where the whole corpus takes several.
DEMO_CORPUS_MAX_BYTES = 4 * 1024
CAPTURE_RUNS, CAPTURE_WARMUP = 10, 1
# The behavioral tests mostly wait (on the local GitHub emulator, on processes they
# stop): two pytest-xdist workers halve that when pytest-xdist is installed.
TEST_WORKERS = 2

S = TypeVar("S", bound=EnvSettings)


# --------------------------------------------------------------------------- settings


def explicit(cls: type[S], **values: Any) -> S:
    """Settings of ``cls`` from ``values`` and the defaults only: the
    environment is not read."""
    try:
        return cls.without_environment(**values)
    except ValidationError as exc:
        raise UsageError(describe_settings_error(exc, cls)) from None


class DemoSettings(SigningSettings):
    """What the demo takes from the environment: the signing key and the issue cap."""

    max_issues: int = Field(10, ge=0, le=1000, validation_alias=env("MAX_ISSUES_PER_RUN", "max_issues"))


# --------------------------------------------------------------------------- steps


Status = Literal["PASS", "EXPECTED", "FAIL", "SKIP"]


@dataclass
class Outcome:
    status: Status
    detail: str  # the step's result line
    short: str = ""  # for the summary table; the detail when empty
    expected: str = ""  # EXPECTED <what>

    @property
    def label(self) -> str:
        if self.status == "EXPECTED":
            return f"EXPECTED {self.expected}"
        return "NOT RUN" if self.status == "SKIP" else self.status

    @property
    def as_told(self) -> bool:
        """The step went as the story says (a skip is not a failure)."""
        return self.status != "FAIL"

    @property
    def done(self) -> bool:
        """The step ran and its outputs are there for the steps after it."""
        return self.status in ("PASS", "EXPECTED")


@dataclass(frozen=True)
class Step:
    number: int
    name: str  # for --only
    gate: str  # the gate or net it shows
    doing: str  # the progress line
    run: Callable[[Demo], Outcome]
    needs: tuple[str, ...] = ()  # steps whose outputs it reads
    writes: tuple[str, ...] = ()  # what it writes under --out (replaced on each run)


@dataclass
class StepResult:
    step: Step
    outcome: Outcome
    seconds: float


@dataclass
class Demo:
    """The run's inputs and what the steps hand to each other."""

    repo_dir: Path
    out: Path
    signing: dict[str, Any]  # the consumer key (hmac_key) and each central ring's (phase_key, ...)
    skip_tests: bool
    max_issues: int
    echo: Callable[[str], None]
    head: str | None = None  # the checkout's git HEAD
    self_audit: Any = None  # SelfAuditResult
    accepted: Path | None = None
    junit: Path | None = None
    audit_report: Any = None  # AuditReport before triage
    hidden: Any = None  # the hit the tampered copy hid
    gates_passed: set[str] = field(default_factory=set)
    tests_running: Future[ProcResult] | None = None  # the behavioral tests, started with the demo

    @property
    def consumer(self) -> Path:
        return self.repo_dir / CONSUMER_DIR

    def path(self, *parts: str) -> Path:
        return self.out.joinpath(*parts)


def show(path: Path) -> str:
    """A path as the user would type it: relative to the current folder when below it."""
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def count_by_severity(hits: list[Any]) -> str:
    counts = {s: sum(1 for h in hits if h.severity == s) for s in SEVERITIES}
    return ", ".join(f"{n} {s}" for s, n in counts.items() if n)
