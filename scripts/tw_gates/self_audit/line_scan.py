"""The line scanner: the catalog's regexes over a file's text. It scans the
files no syntax scanner reads (custom patterns, other languages) and is the
fallback for a file that does not parse (its hits say ``scanner: line``)."""

from __future__ import annotations

import bisect

from tw_gates.self_audit.catalog import RendererPattern
from tw_gates.self_audit.hits import Finding, FoundHit, fingerprint


def line_starts(text: str) -> list[int]:
    """The offset where each line of ``text`` starts."""
    starts = [0]
    find = text.find
    pos = find("\n")
    while pos != -1:
        starts.append(pos + 1)
        pos = find("\n", pos + 1)
    return starts


def line_text(text: str, starts: list[int], line: int) -> str:
    """Line ``line`` (1-based) of ``text``, '' past the end."""
    if not 1 <= line <= len(starts):
        return ""
    end = starts[line] - 1 if line < len(starts) else len(text)
    return text[starts[line - 1] : end]


def _applies(pattern: RendererPattern, text: str) -> bool:
    if pattern._needles and not any(needle in text for needle in pattern._needles):
        return False
    if pattern._requires is None:
        return True
    if pattern._requires_needles and not any(n in text for n in pattern._requires_needles):
        return False
    return pattern._requires.search(text) is not None


def scan_lines(text: str, patterns: list[RendererPattern], *, first_line: int = 1) -> list[Finding]:
    """The findings of ``patterns`` in ``text`` (one per pattern and line)."""
    found: dict[tuple[int, str], Finding] = {}
    starts: list[int] | None = None
    for pattern in patterns:
        if not _applies(pattern, text):
            continue
        for match in pattern._compiled.finditer(text):
            if starts is None:
                starts = line_starts(text)
            line = bisect.bisect_right(starts, match.start()) - 1 + first_line
            found.setdefault((line, pattern.id), Finding(line, pattern.id))
    return sorted(found.values(), key=lambda f: (f.line, f.pattern))


def scan_text(path: str, text: str, patterns: list[RendererPattern]) -> list[FoundHit]:
    """The line scanner's hits in one file's text (one per pattern and line)."""
    starts = line_starts(text)
    severity = {p.id: p.severity for p in patterns}
    return [
        FoundHit(
            path=path,
            line=f.line,
            pattern=f.pattern,
            severity=severity[f.pattern],
            fingerprint=fingerprint(f.pattern, path, line_text(text, starts, f.line)),
        )
        for f in scan_lines(text, patterns)
    ]
