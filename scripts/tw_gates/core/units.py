"""Human units on the command line: durations ("7d", "48h", "1h30m") and
sizes ("10MiB", "500KB")."""

from __future__ import annotations

import re
from datetime import timedelta

from tw_gates.core.errors import UsageError

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")
_DURATION_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([KMGT]?i?B?)", re.IGNORECASE)
_SIZE_FACTORS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "kib": 1024,
    "ki": 1024,
    "m": 1000**2,
    "mb": 1000**2,
    "mib": 1024**2,
    "mi": 1024**2,
    "g": 1000**3,
    "gb": 1000**3,
    "gib": 1024**3,
    "gi": 1024**3,
    "t": 1000**4,
    "tb": 1000**4,
    "tib": 1024**4,
    "ti": 1024**4,
}


def parse_duration(text: str | int | float | timedelta) -> timedelta:
    """'7d', '48h', '1h30m', '90s', '250ms' or a number of seconds."""
    if isinstance(text, timedelta):
        return text
    if isinstance(text, (int, float)):
        return timedelta(seconds=text)
    raw = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", raw):
        return timedelta(seconds=float(raw))
    pos, total = 0, 0.0
    for match in _DURATION_PART.finditer(raw):
        if match.start() != pos and raw[pos : match.start()].strip():
            break
        total += float(match.group(1)) * _DURATION_SECONDS[match.group(2)]
        pos = match.end()
    if pos == 0 or raw[pos:].strip():
        raise UsageError(f"not a duration: {text!r} (use e.g. 7d, 48h, 1h30m, 90s)")
    return timedelta(seconds=total)


def parse_size(text: str | int) -> int:
    """'10MiB', '500KB', '1.5GiB' or a number of bytes."""
    if isinstance(text, int):
        return text
    match = _SIZE.fullmatch(text.strip())
    factor = _SIZE_FACTORS.get(match.group(2).lower()) if match else None
    if factor is None:
        raise UsageError(f"not a size: {text!r} (use e.g. 10MiB, 500KB, 1048576)")
    return int(float(match.group(1)) * factor)


def format_duration(delta: timedelta | float) -> str:
    seconds = delta.total_seconds() if isinstance(delta, timedelta) else float(delta)
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 120:
        return f"{seconds:.1f}s"
    minutes, sec = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{sec:02d}s"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours}h"
