"""Reading and checking the evidence log (``evidence_log``): every record's
cited lines against the files as they are now, and the log against itself.

The chain names what was done to it, by evidence id: an **edited** record
(its MAC fails, or it no longer hashes to its successor's ``prev``), a
**deleted** one (a gap in ``seq``: the record after it names it in
``prev_id``; records cut from the end: the head names the last), a
**reordered** one (a ``seq`` lower than one before it), an **unchained** one
(written before the log was a chain), and a **head** that does not verify or
does not match. Neither the log nor its head is ever followed through a
symbolic link."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from tw_gates.core import json_text
from tw_gates.core.errors import ExitCode, UsageError
from tw_gates.core.inputs import read_nofollow
from tw_gates.core.settings import describe_validation_error
from tw_gates.core.signing import EVIDENCE_LOG, KeyRing, SignatureError
from tw_gates.phases.evidence import BlockCheck, SourceCache, check_block
from tw_gates.phases.evidence_log import (
    GENESIS,
    head_path,
    line_sha256,
    record_mac_payload,
    unsigned_part,
)
from tw_gates.schemas.evidence import EvidenceBlock, EvidenceRecord

MAX_LOG_BYTES = 256 * 1024 * 1024  # a block is a few KiB: about 100,000 blocks
MAX_HEAD_BYTES = 64 * 1024


@dataclass
class LineProblem:
    line: int
    problem: str


@dataclass
class Entry:
    line: int
    raw: bytes
    record: EvidenceRecord


def read_no_follow(path: Path, what: str, max_bytes: int) -> bytes:
    """A regular file's bytes, never through a symbolic link, at most ``max_bytes``."""
    return read_nofollow(path, what, max_bytes=max_bytes)


def parse_log(data: bytes) -> tuple[list[Entry], list[LineProblem]]:
    entries: list[Entry] = []
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
            entries.append(Entry(number, raw, EvidenceRecord.model_validate_json(raw)))
        except ValidationError as exc:
            problems.append(LineProblem(number, describe_validation_error(exc, "evidence block")))
    return entries, problems


def read_log(path: Path | str) -> tuple[list[tuple[int, EvidenceBlock]], list[LineProblem]]:
    """Every block with its line number, and every line that is not a block."""
    entries, problems = parse_log(read_no_follow(Path(path), "evidence file", MAX_LOG_BYTES))
    return [(e.line, e.record.block()) for e in entries], problems


def blocks_for_phase(path: Path | str, phase: int) -> list[EvidenceBlock]:
    """The phase's blocks, in file order; no file means no evidence."""
    if not os.path.lexists(path):
        return []
    blocks, _ = read_log(path)
    return [block for _, block in blocks if block.phase == phase]


@dataclass
class VerifyResult:
    path: Path
    checks: list[BlockCheck] = field(default_factory=list)
    chain: str = ""  # what the chain check established, for the success line
    warnings: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[BlockCheck]:
        return [c for c in self.checks if c.status != "ok"]

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.REJECTED if self.failures else ExitCode.OK


def _check(entry: Entry, status: str, detail: str) -> BlockCheck:
    r = entry.record
    return BlockCheck(entry.line, r.evidence_id, r.file, r.lines, status, detail)  # type: ignore[arg-type]


def _mac_problem(entry: Entry, ring: KeyRing | None) -> str | None:
    record = entry.record
    if ring is None or not ring.kids:
        return None
    if record.mac is None or record.kid is None:
        return "it carries no MAC (written without TW_EVIDENCE_KEY, or its MAC was removed)"
    try:
        ring.verify_bytes(record_mac_payload(unsigned_part(entry.raw)), record.kid, record.mac, EVIDENCE_LOG)
    except SignatureError as exc:
        return f"its MAC does not verify ({exc.reason})"
    return None


@dataclass
class _Walk:
    expected: int = 1
    prev_hash: str = GENESIS
    prev: Entry | None = None
    checks: list[BlockCheck] = field(default_factory=list)


def check_chain(entries: list[Entry], ring: KeyRing | None) -> tuple[list[BlockCheck], Entry | None]:
    """The chain's failures, by record, and its last record."""
    walk = _Walk()
    for entry in entries:
        _step(walk, entry, ring)
    moved = {c.evidence_id for c in walk.checks if c.status == "reordered"}
    seen: set[tuple[str, str]] = set()
    checks = []
    for check in walk.checks:
        key = (check.evidence_id, check.status)
        if key not in seen and not (check.status == "deleted" and check.evidence_id in moved):
            seen.add(key)
            checks.append(check)
    return checks, walk.prev


def _step(walk: _Walk, entry: Entry, ring: KeyRing | None) -> None:
    record = entry.record
    if record.seq is None:
        walk.checks.append(
            _check(entry, "unchained", "written before the log was a hash chain: `tw-gates evidence chain` links it")
        )
        return
    problem = _mac_problem(entry, ring)
    if problem:
        walk.checks.append(_check(entry, "edited", f"the record changed after it was written: {problem}"))
    if record.seq < walk.expected:
        walk.checks.append(
            _check(entry, "reordered", f"seq {record.seq} comes after seq {walk.expected - 1}: moved or copied")
        )
        return
    if record.seq > walk.expected:
        missing = record.seq - walk.expected
        span = f"seq {walk.expected}" if missing == 1 else f"seq {walk.expected}-{record.seq - 1}"
        detail = f"{missing} record{'s' if missing > 1 else ''} missing before {record.evidence_id} ({span})"
        walk.checks.append(BlockCheck(entry.line, record.prev_id or "?", "", "", "deleted", detail))
    elif (record.prev, record.prev_id) != (walk.prev_hash, walk.prev.record.evidence_id if walk.prev else None):
        culprit = walk.prev if walk.prev is not None and not problem else entry
        walk.checks.append(
            _check(
                culprit,
                "edited",
                f"the record changed after it was written: {record.evidence_id} chains to sha256 "
                f"{(record.prev or '')[:12]}..., the record before it hashes to {walk.prev_hash[:12]}...",
            )
        )
    walk.expected, walk.prev_hash, walk.prev = record.seq + 1, line_sha256(entry.raw), entry


def check_head(path: Path, last: Entry | None, ring: KeyRing | None) -> tuple[list[BlockCheck], list[str], str]:
    """(failures, warnings, what was established) of the head beside the log."""
    head = head_path(path)
    if last is None or last.record.seq is None:
        return [], [], ""
    if not os.path.lexists(head):
        return (
            [BlockCheck(0, "-", "", "", "head", f"no head {head.name} beside the log: cannot tell what was cut")],
            [],
            "",
        )
    try:
        document = json_text.loads(read_no_follow(head, "evidence head", MAX_HEAD_BYTES))
    except UsageError as exc:
        return [BlockCheck(0, "-", "", "", "head", str(exc))], [], ""
    except ValueError:
        return [BlockCheck(0, "-", "", "", "head", f"{head.name} is not JSON")], [], ""
    failures, warnings, signed = _head_signature(head, document, ring)
    if failures:
        return failures, warnings, ""
    return _head_matches(document, last, signed), warnings, signed


def _head_signature(head: Path, document: object, ring: KeyRing | None) -> tuple[list[BlockCheck], list[str], str]:
    if not isinstance(document, dict):
        return [BlockCheck(0, "-", "", "", "head", f"{head.name} is not a JSON object")], [], ""
    if ring is not None and ring.kids:
        try:
            kid = ring.verify(document, EVIDENCE_LOG)
        except SignatureError as exc:
            return [BlockCheck(0, "-", "", "", "head", f"{head.name} does not verify ({exc.reason}): {exc}")], [], ""
        return [], [], f"its signed head (key {kid})"
    if document.get("signature") is None:
        return (
            [],
            [
                f"{head.name}: the head is not signed (no TW_EVIDENCE_KEY when it was written): anyone who "
                "can write the log can rewrite the chain after an edit"
            ],
            "its unsigned head",
        )
    return [], [f"{head.name} is signed but no TW_EVIDENCE_KEYS is set to verify it"], "its head (not verified)"


def _head_matches(document: dict, last: Entry, signed: str) -> list[BlockCheck]:
    records, last_id, last_sha = document.get("records"), document.get("last_id"), document.get("last_sha256")
    seq = last.record.seq or 0
    if not isinstance(records, int):
        return [BlockCheck(0, "-", "", "", "head", "the head names no record count")]
    where = "the signed head" if signed.startswith("its signed") else "the head"
    if records > seq:
        detail = (
            f"the last record(s) were cut: {where} records {records} records, the last {last_id}; "
            f"the log ends at seq {seq}"
        )
        return [BlockCheck(last.line, str(last_id), "", "", "deleted", detail)]
    if records < seq:
        detail = (
            f"{seq - records} record(s) after {where} (seq {records}): appended without the key, "
            "or a crash before the head was written"
        )
        return [BlockCheck(last.line, last.record.evidence_id, "", "", "head", detail)]
    if last_sha != line_sha256(last.raw) or last_id != last.record.evidence_id:
        return [_check(last, "edited", f"the record changed after it was written: {where} names another last record")]
    return []


def verify_log(
    path: Path | str = "evidence_blocks.jsonl",
    *,
    root: Path | str = ".",
    phase: int | None = None,
    ring: KeyRing | None = None,
) -> VerifyResult:
    """The chain, the head, and every block's lines re-hashed against the files under ``root``
    (of one phase, if given: the chain and head are checked whole)."""
    path = Path(path)
    result = VerifyResult(path=path)
    entries, problems = parse_log(read_no_follow(path, "evidence file", MAX_LOG_BYTES))
    for problem in problems:
        result.checks.append(BlockCheck(problem.line, "?", "", "", "invalid", problem.problem))
    chain, last = check_chain(entries, ring)
    head_failures, result.warnings, signed = check_head(path, last, ring)
    phase_of = {e.record.evidence_id: e.record.phase for e in entries}
    for check in chain + head_failures:
        if phase is None or phase_of.get(check.evidence_id, phase) == phase:
            result.checks.append(check)
    cache = SourceCache(Path(root))
    for entry in entries:
        if phase is None or entry.record.phase == phase:
            result.checks.append(check_block(entry.record, cache, line=entry.line))
    if signed:
        result.chain = f"chain of {len(entries)} records and {signed}"
    if (ring is None or not ring.kids) and any(e.record.mac for e in entries):
        result.warnings.append("the records carry MACs but no TW_EVIDENCE_KEYS is set to verify them")
    result.checks.sort(key=lambda c: c.line)
    return result


def iter_failures(result: VerifyResult) -> Iterator[str]:
    for check in result.failures:
        where = f"{result.path}:{check.line}"
        yield f"{check.status.upper()} {check.evidence_id} ({where}): {check.detail}"
