"""Evidence blocks: ``evidence_blocks.jsonl``, one JSON object a line, each
pointing at lines of a file in the repository with the sha256 of those lines.

* The hash covers the full snippet as it is in the file; the stored
  ``code_snippet`` is redacted (the seed's heuristics too: snippets are code
  copied from elsewhere) and only then cut to 1000 characters, so a secret
  cut in half can never survive redaction.
* Appends happen under an exclusive portalocker lock that really times out,
  and the duplicate check reads the file under that same lock: the same id
  with the same hash is a no-op, the same id with another hash is refused
  (exit 2), however many processes append at once.
* ``verify`` re-hashes every block against the files as they are now.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import ValidationError

from tw_gates.core.errors import ExitCode, GateRejected, UsageError
from tw_gates.core.fsio import AppendCursor, locked_read_append, read_input, read_text_input
from tw_gates.core.redact import REDACTOR
from tw_gates.core.settings import describe_validation_error
from tw_gates.core.signing import sha256_hex
from tw_gates.schemas.consumer import check_relative_path, utc_now_iso
from tw_gates.schemas.evidence import SNIPPET_LIMIT, EvidenceBlock, parse_line_range

DEFAULT_EVIDENCE_FILE = "evidence_blocks.jsonl"
MAX_SOURCE_BYTES = 64 * 1024 * 1024
MAX_LOG_BYTES = 256 * 1024 * 1024  # a block is a few KiB: about 100,000 blocks
DEFAULT_LOCK_TIMEOUT = 10.0


class EvidenceConflict(GateRejected):
    """The id is already recorded with another hash: evidence is never rewritten."""


# ------------------------------------------------------------------ snippets


def _relative_to_root(file: str, root: Path) -> str:
    """The repository-relative POSIX path of ``file`` (given relative to the
    working folder or absolute), refusing anything outside ``root``."""
    candidate = Path(file)
    absolute = (candidate if candidate.is_absolute() else Path.cwd() / candidate).resolve()
    try:
        relative = absolute.relative_to(root.resolve())
    except ValueError:
        raise UsageError(f"evidence file {file} is outside the repository root {root}") from None
    text = relative.as_posix()
    try:
        return check_relative_path(text)
    except ValueError as exc:
        raise UsageError(f"evidence file {file}: {exc}") from None


def _file_lines(path: Path) -> list[str]:
    return read_text_input(path, "evidence file", max_bytes=MAX_SOURCE_BYTES).split("\n")


def snippet_of(lines: list[str], line_range: str, *, what: str) -> str:
    """Lines A..B (1-based, inclusive) joined with newlines, exactly as the seed cuts them."""
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
    snippet = snippet_of(_file_lines(root / relative), lines, what=relative)
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


# ------------------------------------------------------------------ the log


@dataclass
class AddOutcome:
    block: EvidenceBlock
    added: bool  # False: the same id and hash were already recorded


_LINE_START = b'{"evidence_id":"'
_HASH_KEY = b',"sha256":"'
_HEX64 = re.compile(rb"[0-9a-f]{64}")


def _id_and_hash(raw: bytes) -> tuple[str, str] | None:
    """(evidence_id, sha256) of one line. Lines this module wrote are read
    without a JSON parse (ids cannot hold quotes, and inside a JSON string
    the key below would be escaped); anything else goes through json."""
    if raw.startswith(_LINE_START) and raw.endswith(b'"}'):
        id_end = raw.find(b'"', len(_LINE_START))
        at = raw.rfind(_HASH_KEY)
        digest = raw[at + len(_HASH_KEY) : at + len(_HASH_KEY) + 64] if at > id_end > 0 else b""
        if _HEX64.fullmatch(digest):
            return raw[len(_LINE_START) : id_end].decode("utf-8", "replace"), digest.decode()
    try:
        record = json.loads(raw)
    except ValueError:
        return None  # a torn or foreign line: `verify` reports it, it decides nothing here
    if isinstance(record, dict) and isinstance(record.get("evidence_id"), str):
        return record["evidence_id"], str(record.get("sha256"))
    return None


class EvidenceLog:
    """``evidence_blocks.jsonl``, appended by many processes at once.

    An instance remembers which ids it has seen and how far it has read, so
    repeated ``add`` calls read only what other writers appended meanwhile."""

    def __init__(
        self,
        path: Path | str = DEFAULT_EVIDENCE_FILE,
        *,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        fsync: bool = True,
    ) -> None:
        self.path = Path(path)
        self.lock_timeout = lock_timeout
        self.fsync = fsync
        self._cursor: AppendCursor | None = None
        self._hashes: dict[str, str] = {}
        self._partial = b""

    def _take_in(self, data: bytes, from_start: bool) -> None:
        if from_start:
            self._hashes.clear()
            self._partial = b""
        data = self._partial + data
        complete, _, self._partial = data.rpartition(b"\n")
        for raw in complete.split(b"\n") if complete else ():
            found = _id_and_hash(raw)
            if found:
                self._hashes.setdefault(*found)

    def add(self, block: EvidenceBlock) -> AddOutcome:
        outcome = AddOutcome(block=block, added=False)
        line = block.model_dump_json()  # built before the lock: the lock is held as briefly as possible

        def decide(new: bytes, from_start: bool) -> list[str]:
            self._take_in(new, from_start)
            if self._partial:
                # A line without its newline is a writer's torn tail: the append
                # terminates it, so it is never glued to ours.
                self._partial = b""
            known = self._hashes.get(block.evidence_id)
            if known is None:
                outcome.added = True
                self._hashes[block.evidence_id] = block.sha256
                return [line]
            if known == block.sha256:
                return []
            raise EvidenceConflict(
                f"evidence {block.evidence_id} is already recorded with sha256 {known[:12]}..., "
                f"not {block.sha256[:12]}...: evidence is never rewritten, use a new id"
            )

        self._cursor = locked_read_append(
            self.path, decide, cursor=self._cursor, timeout=self.lock_timeout, fsync=self.fsync
        )
        return outcome


# ------------------------------------------------------------------ reading and verifying


@dataclass
class LineProblem:
    line: int
    problem: str


def read_log(path: Path | str) -> tuple[list[tuple[int, EvidenceBlock]], list[LineProblem]]:
    """Every block with its line number, and every line that is not a block."""
    path = Path(path)
    data = read_input(path, "evidence file", max_bytes=MAX_LOG_BYTES)
    blocks: list[tuple[int, EvidenceBlock]] = []
    problems: list[LineProblem] = []
    raw_lines = data.split(b"\n")
    torn_tail = raw_lines[-1] != b""
    for number, raw in enumerate(raw_lines, start=1):
        if not raw.strip():
            continue
        if number == len(raw_lines) and torn_tail:
            problems.append(LineProblem(number, "torn line (no newline at the end of the file)"))
            continue
        try:
            blocks.append((number, EvidenceBlock.model_validate_json(raw)))
        except ValidationError as exc:
            problems.append(LineProblem(number, describe_validation_error(exc, "evidence block")))
    return blocks, problems


def blocks_for_phase(path: Path | str, phase: int) -> list[EvidenceBlock]:
    """The phase's blocks, in file order; no file means no evidence."""
    if not Path(path).exists():
        return []
    blocks, _ = read_log(path)
    return [block for _, block in blocks if block.phase == phase]


Status = Literal["ok", "changed", "missing", "invalid"]


@dataclass
class BlockCheck:
    line: int
    evidence_id: str
    file: str
    lines: str
    status: Status
    detail: str = ""


@dataclass
class VerifyResult:
    path: Path
    checks: list[BlockCheck] = field(default_factory=list)

    @property
    def failures(self) -> list[BlockCheck]:
        return [c for c in self.checks if c.status != "ok"]

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.REJECTED if self.failures else ExitCode.OK


class SourceCache:
    """Each source file is read and split once, however many blocks cite it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lines: dict[str, list[str] | UsageError] = {}

    def lines(self, relative: str) -> list[str]:
        if relative not in self._lines:
            try:
                self._lines[relative] = _file_lines(self.root / relative)
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


def verify_log(
    path: Path | str = DEFAULT_EVIDENCE_FILE, *, root: Path | str = ".", phase: int | None = None
) -> VerifyResult:
    """Re-hash every block (of one phase, if given) against the files under ``root``."""
    path = Path(path)
    result = VerifyResult(path=path)
    blocks, problems = read_log(path)
    for problem in problems:
        result.checks.append(
            BlockCheck(line=problem.line, evidence_id="?", file="", lines="", status="invalid", detail=problem.problem)
        )
    cache = SourceCache(Path(root))
    first_line: dict[str, int] = {}
    for number, block in blocks:
        if phase is not None and block.phase != phase:
            continue
        if block.evidence_id in first_line:
            result.checks.append(
                BlockCheck(
                    line=number,
                    evidence_id=block.evidence_id,
                    file=block.file,
                    lines=block.lines,
                    status="invalid",
                    detail=f"id already used on line {first_line[block.evidence_id]} (edited by hand?)",
                )
            )
            continue
        first_line[block.evidence_id] = number
        result.checks.append(check_block(block, cache, line=number))
    result.checks.sort(key=lambda c: c.line)
    return result


def iter_failures(result: VerifyResult) -> Iterator[str]:
    for check in result.failures:
        where = f"{result.path}:{check.line}"
        yield f"{check.status.upper()} {check.evidence_id} ({where}): {check.detail}"
