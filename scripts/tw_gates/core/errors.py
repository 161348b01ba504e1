"""The exit-code contract (README, "Exit codes") and the exceptions that carry it.

Gates raise these for every *expected* failure; the CLI turns them into one
clear line on stderr (and an ``::error::`` annotation on a runner) and the
matching exit code. Anything else is an internal error (exit 1)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0  # pass (canary: PROMOTE or HOLD)
    ERROR = 1  # usage or internal error
    REJECTED = 2  # gate rejected (invalid artifact, fallback, non-Linux, findings, ROLLBACK)
    P0_PROTECTION = 5  # audit P0: branch protection / rulesets missing required checks
    P0_BASELINE = 6  # audit P0: baseline missing, unsigned, or capture failed


class TwGatesError(Exception):
    """An expected failure with a one-line, user-facing message."""

    exit_code: ExitCode = ExitCode.ERROR

    def __init__(self, message: str, *, exit_code: ExitCode | None = None, annotate: bool = False) -> None:
        super().__init__(message)
        self.message = message
        if exit_code is not None:
            self.exit_code = exit_code
        # An ``::error::`` line even off a runner: the log of a permission
        # fallback must carry it wherever the log is read.
        self.annotate = annotate

    def __str__(self) -> str:
        return self.message


class UsageError(TwGatesError):
    """Bad flags, bad environment, unreadable input file: exit 1."""

    exit_code = ExitCode.ERROR


class GateRejected(TwGatesError):
    """The gate ran and said no: exit 2."""

    exit_code = ExitCode.REJECTED


class ExternalServiceError(TwGatesError):
    """A service the gate depends on (GitHub, Prometheus) failed in a way
    that leaves no decision: exit 1, never a silent pass."""

    exit_code = ExitCode.ERROR
