"""The errors of the performance baseline (capture, signature, comparison)."""

from __future__ import annotations

from tw_gates.core.errors import ExitCode, TwGatesError


class BaselineError(TwGatesError):
    """Baseline missing, unsigned, unreadable, or its capture failed: exit 6."""

    exit_code = ExitCode.P0_BASELINE


class Comparability(TwGatesError):
    """Baseline and current capture measured different things: exit 1."""
