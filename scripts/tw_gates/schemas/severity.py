"""Severity of a renderer finding: one scale for the pattern catalog, the
consumer artifact, the audit, the issues and SARIF."""

from __future__ import annotations

from typing import Literal, get_args

Severity = Literal["critical", "high", "medium", "low"]

# Worst first: the order of every table and ranking.
SEVERITIES: tuple[Severity, ...] = get_args(Severity)
SEVERITY_RANK: dict[str, int] = {name: rank for rank, name in enumerate(SEVERITIES)}
