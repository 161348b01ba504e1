"""Evidence blocks: each points at lines of a file in the repository with the
sha256 of those lines (the log that keeps them: ``evidence_log``; checking
it: ``evidence_verify``).

* The hash covers the full snippet as it is in the file; the stored
  ``code_snippet`` is redacted (the plan's heuristics too: snippets are code
  copied from elsewhere) and only then cut to 1000 characters, so a secret
  cut in half can never survive redaction.
* A cited file is read through its folders from the repository root without
  following a symbolic link anywhere on the way, and only if it is a regular
  file (not a FIFO or a device): a link to ``/etc/shadow`` is refused, never
  hashed or quoted.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import ValidationError

from tw_gates.core.errors import UsageError
from tw_gates.core.inputs import read_under
from tw_gates.core.redact import REDACTOR
from tw_gates.core.settings import describe_validation_error
from tw_gates.core.signing import sha256_hex
from tw_gates.schemas.consumer import check_relative_path, utc_now_iso
from tw_gates.schemas.evidence import SNIPPET_LIMIT, EvidenceBlock, parse_line_range

MAX_SOURCE_BYTES = 64 * 1024 * 1024


# ------------------------------------------------------------------ snippets


def _relative_to_root(file: str, root: Path) -> str:
    """The repository-relative POSIX path of ``file`` (given relative to the
    working folder or absolute), refusing anything outside ``root``. The file
    itself is not resolved: a symbolic link is refused when it is read."""
    candidate = Path(file)
    absolute = Path(os.path.normpath(candidate if candidate.is_absolute() else Path.cwd() / candidate))
    try:
        relative = absolute.relative_to(Path(os.path.abspath(root)))
    except ValueError:
        # The working folder or the root reached through a symlinked folder: compare real folders.
        real = Path(os.path.realpath(absolute.parent)) / absolute.name
        try:
            relative = real.relative_to(Path(os.path.realpath(root)))
        except ValueError:
            raise UsageError(f"evidence file {file} is outside the repository root {root}") from None
    text = relative.as_posix()
    try:
        return check_relative_path(text)
    except ValueError as exc:
        raise UsageError(f"evidence file {file}: {exc}") from None


def read_source(root: Path, relative: str) -> bytes:
    """The bytes of ``root/relative``, opened folder by folder without following a
    symbolic link, only a regular file, at most MAX_SOURCE_BYTES."""
    return read_under(root, relative, "evidence file", max_bytes=MAX_SOURCE_BYTES)


def _file_lines(root: Path, relative: str) -> list[str]:
    data = read_source(root, relative)
    try:
        return data.decode("utf-8").split("\n")
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"evidence file {root / relative} is not UTF-8 text: {exc.reason} at byte {exc.start}"
        ) from None


def snippet_of(lines: list[str], line_range: str, *, what: str) -> str:
    """Lines A..B (1-based, inclusive) joined with newlines, exactly as the evidence format cuts them."""
    try:
        first, last = parse_line_range(line_range)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    # A file ending in a newline splits into one empty element too many.
    count = len(lines) - 1 if lines and lines[-1] == "" else len(lines)
    if last > count:
        raise UsageError(f"{what} has {count} lines; range {line_range} goes past the end")
    return "\n".join(lines[first - 1 : last])


def make_block(
    evidence_id: str, phase: int, file: str, lines: str, description: str, *, root: Path | str = "."
) -> EvidenceBlock:
    """Read the snippet, hash it whole, redact it, cut it, and build the block."""
    root = Path(root)
    relative = _relative_to_root(file, root)
    snippet = snippet_of(_file_lines(root, relative), lines, what=relative)
    first, last = parse_line_range(lines)
    stored = REDACTOR.redact(snippet, heuristics=True)[:SNIPPET_LIMIT]
    try:
        return EvidenceBlock(
            evidence_id=evidence_id,
            phase=phase,
            file=relative,
            lines=f"{first}-{last}",
            description=REDACTOR.redact(description),
            code_snippet=stored,
            sha256=sha256_hex(snippet),
            timestamp=utc_now_iso(),
        )
    except ValidationError as exc:
        raise UsageError(describe_validation_error(exc, "evidence block")) from None


# ok / changed / missing: the cited lines against the file now. invalid: a line that is not a
# record. edited / deleted / reordered / unchained / head: the chain and its head (evidence_verify).
Status = Literal["ok", "changed", "missing", "invalid", "edited", "deleted", "reordered", "unchained", "head"]


@dataclass
class BlockCheck:
    line: int
    evidence_id: str
    file: str
    lines: str
    status: Status
    detail: str = ""


class SourceCache:
    """Each source file is read and split once, however many blocks cite it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lines: dict[str, list[str] | UsageError] = {}

    def lines(self, relative: str) -> list[str]:
        if relative not in self._lines:
            try:
                self._lines[relative] = _file_lines(self.root, relative)
            except UsageError as exc:
                self._lines[relative] = exc
        found = self._lines[relative]
        if isinstance(found, UsageError):
            raise found
        return found


def check_block(block: EvidenceBlock, cache: SourceCache, *, line: int = 0) -> BlockCheck:
    check = BlockCheck(line=line, evidence_id=block.evidence_id, file=block.file, lines=block.lines, status="ok")
    try:
        snippet = snippet_of(cache.lines(block.file), block.lines, what=block.file)
    except UsageError as exc:
        check.status, check.detail = "missing", str(exc)
        return check
    actual = sha256_hex(snippet)
    if actual != block.sha256:
        check.status = "changed"
        check.detail = f"lines {block.lines} of {block.file} hash to {actual[:12]}..., recorded {block.sha256[:12]}..."
    return check
