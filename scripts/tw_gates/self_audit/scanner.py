"""Scanning a checkout: list the files, read each one safely (no link
followed), rule most of them out with the literal prefilter, parse the rest
with the scanner of their kind (the line scanner when they do not parse, or
for patterns no syntax scanner knows), and turn findings into hits with
their context; count what was skipped and why."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from tw_gates.self_audit.catalog import PatternCatalog, RendererPattern
from tw_gates.self_audit.context import classify
from tw_gates.self_audit.files import DEFAULT_MAX_FILE_BYTES, NoFollowReader, list_source_files, looks_minified
from tw_gates.self_audit.hits import Finding, FoundHit, Scanner, ScanResult, fingerprint
from tw_gates.self_audit.kinds import SYNTAX_PATTERNS, kind_of, scan_kind, scanner_label
from tw_gates.self_audit.line_scan import line_starts, line_text, scan_lines
from tw_gates.self_audit.prefilter import has_candidate

PROGRESS_EVERY_S = 5.0
# What to do with a hit whose argument is harmless (a constant, a sanitized value).
HarmlessArguments = Literal["drop", "info"]


class _FileScan:
    """One file's scan: its kind, the patterns that apply, the findings."""

    def __init__(self, catalog: PatternCatalog, rel: str) -> None:
        self.rel = rel
        self.kind = kind_of(rel)
        applying = catalog.patterns_for(rel)
        self.by_id = catalog.by_id
        # A syntax-read file: syntax patterns come from its scanner, whatever their globs say.
        self.line_patterns = [p for p in applying if self.kind is None or p.id not in SYNTAX_PATTERNS]
        self.fallback_patterns = applying

    @property
    def wanted(self) -> bool:
        return self.kind is not None or bool(self.line_patterns)

    def candidates(self, data: bytes) -> tuple[bool, bool]:
        """(the kind's scanner has a candidate, the line patterns may match)."""
        syntax = self.kind is not None and has_candidate(self.kind, data)
        lines = any(_may_match(p, data) for p in self.line_patterns)
        return syntax, lines

    def findings(self, text: str, data: bytes, syntax: bool, lines: bool) -> list[tuple[Finding, Scanner]]:
        found: list[tuple[Finding, Scanner]] = []
        if syntax and self.kind is not None:
            result = scan_kind(self.kind, self.rel, text, data, self._fallback)
            if result is None:
                found += [(f, "line") for f in scan_lines(text, self.fallback_patterns)]
            else:
                label = scanner_label(self.kind)
                found += [(f, f.scanner or label) for f in result]
        if lines:
            found += [(f, "line") for f in scan_lines(text, self.line_patterns)]
        return [(f, s) for f, s in found if f.pattern in self.by_id]

    def _fallback(self, text: str, first_line: int) -> list[Finding]:
        """A block that does not parse (an inline script): its lines."""
        return [
            Finding(f.line, f.pattern, None, "line")
            for f in scan_lines(text, self.fallback_patterns, first_line=first_line)
        ]


def _may_match(pattern: RendererPattern, data: bytes) -> bool:
    needles = pattern._needles
    return not needles or any(n.encode("utf-8") in data for n in needles)


def _hits(
    rel: str, text: str, found: list[tuple[Finding, Scanner]], catalog: PatternCatalog, harmless: HarmlessArguments
) -> tuple[list[FoundHit], int]:
    """One hit per line and pattern (a harmful finding wins over a harmless
    one); harmless findings dropped (counted) unless reported."""
    best: dict[tuple[int, str], tuple[Finding, Scanner]] = {}
    for finding, scanner in sorted(found, key=lambda item: item[0].argument is not None):
        best.setdefault((finding.line, finding.pattern), (finding, scanner))
    kept = [(f, s) for f, s in best.values() if f.argument is None or harmless == "info"]
    if not kept:
        return [], len(best)
    context = classify(rel, text)
    starts = line_starts(text)
    hits = [
        FoundHit(
            path=rel,
            line=f.line,
            pattern=f.pattern,
            severity=catalog.by_id[f.pattern].severity,
            fingerprint=fingerprint(f.pattern, rel, line_text(text, starts, f.line)),
            context=context,
            scanner=scanner,
            argument=f.argument,
        )
        for f, scanner in kept
        if 1 <= f.line <= len(starts)
    ]
    return hits, len(best) - len(kept)


def scan_source(
    rel: str, data: bytes, catalog: PatternCatalog, *, harmless: HarmlessArguments = "drop"
) -> tuple[list[FoundHit], int, bool]:
    """One file's hits (as ``scan`` finds them in a file at ``rel`` holding
    ``data``), the number of harmless findings dropped, and whether the
    file was read past the prefilter."""
    file_scan = _FileScan(catalog, rel)
    if not file_scan.wanted:
        return [], 0, False
    syntax, lines = file_scan.candidates(data)
    if not (syntax or lines):
        return [], 0, False
    text = data.decode("utf-8", "replace")
    found, dropped = _hits(rel, text, file_scan.findings(text, data, syntax, lines), catalog, harmless)
    return sorted(found, key=lambda h: (h.line, h.pattern)), dropped, True


def scan(
    root: Path,
    catalog: PatternCatalog,
    *,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    harmless: HarmlessArguments = "drop",
    progress: Callable[[str], None] | None = None,
) -> ScanResult:
    """Scan the source files under ``root`` with ``catalog``."""
    files, _ = list_source_files(root)
    result = ScanResult()
    skipped: Counter[str] = Counter()
    hits: list[FoundHit] = []
    last_progress = time.monotonic()
    with NoFollowReader(root, max_file_bytes) as reader:
        for rel in files:
            if not _FileScan(catalog, rel).wanted:
                continue  # not a file any scanner looks at: not counted as scanned
            reason, data = reader.read(rel)
            if reason is None and data is not None and looks_minified(rel, data):
                reason = "minified"
            if reason or data is None:
                skipped[reason or "unreadable"] += 1
                continue
            result.files_scanned += 1
            result.bytes_read += len(data)
            found, dropped, parsed = scan_source(rel, data, catalog, harmless=harmless)
            hits.extend(found)
            result.harmless += dropped
            result.files_parsed += parsed
            if progress and time.monotonic() - last_progress >= PROGRESS_EVERY_S:
                last_progress = time.monotonic()
                progress(f"self-audit: {result.files_scanned} files scanned, {len(hits)} hits so far")
    result.skipped = dict(sorted(skipped.items()))
    result.hits = sorted(hits, key=lambda h: (h.path, h.line, h.pattern))
    return result
