"""Latency statistics of a performance capture."""

from __future__ import annotations

import math

from tw_gates.schemas.baseline import LatencyStats


def percentile(values: list[float], pct: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latency_stats(values: list[float]) -> LatencyStats:
    return LatencyStats(
        samples=len(values),
        p50_ms=round(percentile(values, 50), 4),
        p95_ms=round(percentile(values, 95), 4),
        p99_ms=round(percentile(values, 99), 4),
        mean_ms=round(sum(values) / len(values), 4),
        max_ms=round(max(values), 4),
    )
