"""Human units on the command line: durations ("7d", "48h", "1h30m") and
sizes ("10MiB", "500KB").

Every value is checked against a range before it is used: a duration or size
nobody could mean (``99999999999999d``, a 400-digit number) is a usage error
naming the limit, never an OverflowError from datetime or float deep inside a
gate."""

from __future__ import annotations

import math
import re
from datetime import timedelta

from tw_gates.core.errors import UsageError

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")
_DURATION_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([KMGT]?i?B?)", re.IGNORECASE)
# The longest duration and the largest size any flag of tw-gates can mean:
# a century (datetime.timedelta itself ends at 999,999,999 days) and 1 PiB.
MAX_DURATION = timedelta(days=36_500)
MAX_SIZE = 1024**5
# Digits beyond this are no number a person typed: refuse before float() sees them.
_MAX_DIGITS = 30
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


def _shown(text: object) -> str:
    shown = repr(text)
    return shown if len(shown) <= 40 else shown[:37] + "..."


def _duration_in_range(seconds: float, text: object, maximum: timedelta) -> timedelta:
    if not math.isfinite(seconds) or seconds < 0 or seconds > maximum.total_seconds():
        longest = f"{maximum.days}d" if maximum == timedelta(days=maximum.days) else format_duration(maximum)
        raise UsageError(f"duration {_shown(text)} is out of range (0 to {longest})")
    return timedelta(seconds=seconds)


def parse_duration(text: str | int | float | timedelta, *, maximum: timedelta = MAX_DURATION) -> timedelta:
    """'7d', '48h', '1h30m', '90s', '250ms' or a number of seconds, from 0 up
    to ``maximum`` (a UsageError naming the range otherwise)."""
    if isinstance(text, timedelta):
        return _duration_in_range(text.total_seconds(), text, maximum)
    if isinstance(text, (int, float)):
        return _duration_in_range(float(text), text, maximum)
    raw = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", raw):
        return _duration_in_range(_number(raw, text, "duration"), text, maximum)
    pos, total = 0, 0.0
    for match in _DURATION_PART.finditer(raw):
        if match.start() != pos and raw[pos : match.start()].strip():
            break
        total += _number(match.group(1), text, "duration") * _DURATION_SECONDS[match.group(2)]
        pos = match.end()
    if pos == 0 or raw[pos:].strip():
        raise UsageError(f"not a duration: {_shown(text)} (use e.g. 7d, 48h, 1h30m, 90s)")
    return _duration_in_range(total, text, maximum)


def _number(digits: str, text: object, what: str) -> float:
    if len(digits) > _MAX_DIGITS:
        raise UsageError(f"{what} {_shown(text)} is out of range (more than {_MAX_DIGITS} digits)")
    return float(digits)


def parse_size(text: str | int, *, maximum: int = MAX_SIZE) -> int:
    """'10MiB', '500KB', '1.5GiB' or a number of bytes, from 0 up to
    ``maximum`` (a UsageError naming the range otherwise)."""
    if isinstance(text, bool):
        raise UsageError(f"not a size: {text!r} (use e.g. 10MiB, 500KB, 1048576)")
    if isinstance(text, int):
        value = float(text)
    else:
        match = _SIZE.fullmatch(text.strip())
        factor = _SIZE_FACTORS.get(match.group(2).lower()) if match else None
        if match is None or factor is None:
            raise UsageError(f"not a size: {_shown(text)} (use e.g. 10MiB, 500KB, 1048576)")
        value = _number(match.group(1), text, "size") * factor
    if not math.isfinite(value) or value < 0 or value > maximum:
        raise UsageError(f"size {_shown(text)} is out of range (0 to {maximum} bytes)")
    return int(value)


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
