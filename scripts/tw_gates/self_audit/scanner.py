"""Scanning a checkout: list the files, read each one safely, run the
scanners over it, count what was skipped and why."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from tw_gates.self_audit.catalog import PatternCatalog
from tw_gates.self_audit.files import DEFAULT_MAX_FILE_BYTES, _looks_generated, _skip_reason, list_source_files
from tw_gates.self_audit.hits import FoundHit, ScanResult
from tw_gates.self_audit.line_scan import scan_text

PROGRESS_EVERY_S = 5.0


def scan(
    root: Path, catalog: PatternCatalog, *, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES, progress=None
) -> ScanResult:
    """Scan the source files under ``root`` with ``catalog``."""
    files, _ = list_source_files(root)
    result = ScanResult()
    skipped: Counter[str] = Counter()
    hits: list[FoundHit] = []
    last_progress = time.monotonic()
    for rel in files:
        patterns = [p for p in catalog.patterns if p.applies_to(rel)]
        if not patterns:
            continue  # not a file any pattern looks at: not counted as scanned
        reason, data = _skip_reason(root, rel, max_file_bytes)
        if reason is None and data is not None:
            text = data.decode("utf-8", "replace")
            if _looks_generated(rel, text):
                reason = "minified"
            else:
                hits.extend(scan_text(rel, text, patterns))
                result.files_scanned += 1
        if reason:
            skipped[reason] += 1
        if progress and time.monotonic() - last_progress >= PROGRESS_EVERY_S:
            last_progress = time.monotonic()
            progress(f"self-audit: {result.files_scanned} files scanned, {len(hits)} hits so far")
    result.skipped = dict(sorted(skipped.items()))
    result.hits = sorted(hits, key=lambda h: (h.path, h.line, h.pattern))
    return result
