"""The line scanner: the catalog's regexes over a file's text."""

from __future__ import annotations

import bisect

from tw_gates.core.signing import sha256_hex
from tw_gates.self_audit.catalog import RendererPattern
from tw_gates.self_audit.hits import FoundHit


def _line_starts(text: str) -> list[int]:
    starts = [0]
    find = text.find
    pos = find("\n")
    while pos != -1:
        starts.append(pos + 1)
        pos = find("\n", pos + 1)
    return starts


def scan_text(path: str, text: str, patterns: list[RendererPattern]) -> list[FoundHit]:
    """The hits of ``patterns`` in one file's text (one per pattern and line)."""
    hits: dict[tuple[int, str], FoundHit] = {}
    starts: list[int] | None = None
    for pattern in patterns:
        if pattern._needles and not any(needle in text for needle in pattern._needles):
            continue
        if pattern._requires is not None and (
            (pattern._requires_needles and not any(n in text for n in pattern._requires_needles))
            or pattern._requires.search(text) is None
        ):
            continue
        for match in pattern._compiled.finditer(text):
            if starts is None:
                starts = _line_starts(text)
            index = bisect.bisect_right(starts, match.start()) - 1
            line = index + 1
            if (line, pattern.id) in hits:
                continue
            end = starts[index + 1] - 1 if index + 1 < len(starts) else len(text)
            snippet = " ".join(text[starts[index] : end].split())
            hits[(line, pattern.id)] = FoundHit(
                path=path,
                line=line,
                pattern=pattern.id,
                severity=pattern.severity,
                fingerprint=sha256_hex(f"{pattern.id}\0{path}\0{snippet}"),
            )
    return sorted(hits.values(), key=lambda h: (h.line, h.pattern))
