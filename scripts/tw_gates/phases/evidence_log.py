"""The evidence log: ``evidence_blocks.jsonl``, a hash chain of evidence
records, appended by many processes at once, with a signed head beside it
(``evidence_blocks.jsonl.head``).

Each record is an evidence block plus its place in the chain::

    {...the block..., "seq": 5, "prev": "<sha256 of record 4's line>", "prev_id": "EV-4",
     "kid": "ev2026", "mac": "<HMAC-SHA256>"}

``seq`` counts from 1; ``prev`` is the sha256 of the previous record's line
exactly as written (64 zeros for the first); ``mac`` (with ``TW_EVIDENCE_KEY``)
is HMAC-SHA256 over the line without ``,"kid":...,"mac":...``, domain-separated
as an ``evidence-log`` record. The head names the number of records and the
hash and id of the last one, signed (``typ`` evidence-log). So an edited
record no longer hashes to its successor's ``prev`` (and fails its MAC), a
deleted one leaves a gap in ``seq``, a moved one breaks the order, and records
cut from the end disagree with the head (``evidence_verify``).

Appending: the lock is portalocker's exclusive lock on the log, taken
*blocking*, with a real timeout (an interval timer interrupts the wait in the
main thread; elsewhere it is polled). What other writers appended since this
writer last looked is read *before* the lock (most of it) and only the rest
under it: under the lock a writer reads a few lines, decides (the same id
with the same hash is a no-op, with another hash a refusal), appends one
line, rewrites the head in place, and unlocks; it fsyncs after unlocking, so
concurrent writers share journal commits. The file is never followed through
a symbolic link."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import portalocker

from tw_gates.core import json_text
from tw_gates.core.errors import GateRejected, TwGatesError, UsageError
from tw_gates.core.fsio import LockTimeout, atomic_write_bytes
from tw_gates.core.signing import ALG, EVIDENCE_LOG, KeyRing
from tw_gates.schemas.evidence import EvidenceBlock, EvidenceRecord

DEFAULT_EVIDENCE_FILE = "evidence_blocks.jsonl"
DEFAULT_LOCK_TIMEOUT = 10.0
GENESIS = "0" * 64
HEAD_SUFFIX = ".head"
HEAD_BYTES = 1024  # the head is rewritten in place, padded to this size (a head is a few hundred bytes)
READ_CHUNK = 1 << 20
RECORD_DOMAIN = b"tw-gates evidence-log record\n"

_LINE_START = b'{"evidence_id":"'
_HASH_KEY = b',"sha256":"'
_START_LEN, _HASH_LEN = len(_LINE_START), len(_HASH_KEY)
_SEQ_KEY = b',"seq":'
_MAC_TAIL = re.compile(rb',"kid":"[^"\\]{1,128}","mac":"[0-9a-f]{64}"\}$')


class EvidenceConflict(GateRejected):
    """The id is already recorded with another hash: evidence is never rewritten."""


def head_path(log: Path) -> Path:
    return log.with_name(log.name + HEAD_SUFFIX)


def line_sha256(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


def unsigned_part(line: bytes) -> bytes:
    """The record line without its ``kid`` and ``mac`` members (what the MAC covers)."""
    match = _MAC_TAIL.search(line)
    return line[: match.start()] + b"}" if match else line


def record_mac_payload(line_without_mac: bytes) -> bytes:
    return RECORD_DOMAIN + line_without_mac


def open_no_follow(path: Path, flags: int, what: str, mode: int = 0o666) -> int:
    """An fd for ``path`` that is never a symbolic link (O_NOFOLLOW on the file itself)."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UsageError(f"{what} {path} is a symbolic link: not followed") from None
        if exc.errno == errno.ENOENT:
            raise UsageError(f"{what} not found: {path}") from None
        raise UsageError(f"cannot open {what} {path}: {exc.strerror or exc}") from None


@dataclass
class AddOutcome:
    block: EvidenceBlock
    added: bool  # False: the same id and hash were already recorded
    seq: int = 0


@dataclass
class _Tail:
    """What a writer knows of the log: how far it has read, and its last record."""

    device: int = -1
    inode: int = -1
    offset: int = 0
    partial: bytes = b""
    lines: int = 0
    last: bytes = b""  # the last record's line (its hash and seq are worked out only when needed)
    last_id: str | None = None
    _seq: int | None = 0
    _hash: str | None = GENESIS

    def took(self, raw: bytes, evidence_id: str) -> None:
        self.last, self.last_id, self._seq, self._hash = raw, evidence_id, None, None

    def appended(self, raw: bytes, evidence_id: str, seq: int) -> None:
        self.last, self.last_id, self._seq, self._hash = raw, evidence_id, seq, None

    @property
    def seq(self) -> int:
        if self._seq is None:
            at = self.last.rfind(_SEQ_KEY)
            digits = self.last[at + len(_SEQ_KEY) : self.last.find(b",", at + 1)] if at > 0 else b""
            # An unchained (older) line counts as one line of the log.
            self._seq = int(digits) if digits.isdigit() else self.lines
        return self._seq

    @property
    def last_hash(self) -> str:
        if self._hash is None:
            self._hash = line_sha256(self.last)
        return self._hash


class _LockAlarm(Exception):
    pass


_waiting = threading.local()
_handler_installed = False


def _on_alarm(signum: int, frame: Any) -> None:
    if getattr(_waiting, "active", False):
        _waiting.active = False
        raise _LockAlarm


@contextlib.contextmanager
def _deadline(timeout: float) -> Iterator[bool]:
    """In the main thread, SIGALRM after ``timeout`` interrupts a blocking lock
    (yields True); elsewhere yields False (the caller polls). The handler is
    installed once, when no other handler is (it acts only while a lock is
    being waited for); the timer is armed per wait."""
    global _handler_installed
    main = threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer")
    if main and not _handler_installed and signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGALRM, _on_alarm)
        _handler_installed = True
    if not main or signal.getsignal(signal.SIGALRM) is not _on_alarm:
        yield False
        return
    _waiting.active = True
    signal.setitimer(signal.ITIMER_REAL, max(timeout, 0.001))
    try:
        yield True
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        _waiting.active = False


def lock_exclusive(handle: Any, path: Path, timeout: float) -> None:
    """portalocker's exclusive lock, blocking, given up after ``timeout`` (LockTimeout): in
    the main thread the wait is the kernel's (FIFO-ish hand-over, no polling) until the
    interval timer interrupts it; elsewhere the lock is polled."""
    exclusive = portalocker.LockFlags.EXCLUSIVE
    message = f"could not lock {path} within {timeout:g}s: another writer holds it"
    try:
        with _deadline(timeout) as interrupted:
            if interrupted:
                portalocker.lock(handle, exclusive)
                return
    except _LockAlarm:
        raise LockTimeout(message) from None
    except portalocker.exceptions.LockException as exc:
        raise TwGatesError(f"cannot lock {path}: {exc}") from exc
    give_up = time.monotonic() + timeout
    while True:  # not the main thread: poll
        try:
            portalocker.lock(handle, exclusive | portalocker.LockFlags.NON_BLOCKING)
            return
        except portalocker.exceptions.AlreadyLocked:
            if time.monotonic() >= give_up:
                raise LockTimeout(message) from None
            time.sleep(0.0005)
        except portalocker.exceptions.LockException as exc:
            raise TwGatesError(f"cannot lock {path}: {exc}") from exc


class EvidenceLog:
    """``evidence_blocks.jsonl`` and its head, appended by many processes at once.

    An instance keeps the log open, remembers the ids it has seen and how far
    it has read, so repeated ``add`` calls read only what other writers
    appended meanwhile (most of it before taking the lock)."""

    def __init__(
        self,
        path: Path | str = DEFAULT_EVIDENCE_FILE,
        *,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        fsync: bool = True,
        ring: KeyRing | None = None,
    ) -> None:
        self.path = Path(path)
        self.head = head_path(self.path)
        self.lock_timeout = lock_timeout
        self.fsync = fsync
        self._tail = _Tail()
        self._hashes: dict[str, str] = {}
        self._fd: int | None = None
        self._head_fd: int | None = None
        self._head_size = -1
        self._record_mac: Callable[[bytes], str] | None = None
        self._head_mac: Callable[[bytes], str] | None = None
        self.kid: str | None = None
        if ring is not None and ring.can_sign:
            self.kid, self._record_mac = ring.signer(EVIDENCE_LOG, raw_bytes=True)
            _, self._head_mac = ring.signer(EVIDENCE_LOG)
        # The constant parts of a record's MAC members and of the head, built once.
        self._kid_member = b',"kid":"%s","mac":"' % str(self.kid).encode()
        self._head_log = f',"log":{json.dumps(self.path.name, ensure_ascii=False)},"records":'
        kid = json.dumps(self.kid, ensure_ascii=False)
        self._head_signature = f',"signature":{{"alg":"{ALG}","kid":{kid},"typ":"{EVIDENCE_LOG.typ}"}}}}'

    def close(self) -> None:
        for fd in (self._fd, self._head_fd):
            if fd is not None:
                os.close(fd)
        self._fd = self._head_fd = None

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    def _log_fd(self) -> int:
        """The open log, reopened when the path no longer names it (replaced, or made a link)."""
        if self._fd is not None:
            try:
                now = os.stat(self.path, follow_symlinks=False)
            except OSError:
                now = None
            if now is not None and (now.st_dev, now.st_ino) == (self._tail.device, self._tail.inode):
                return self._fd
            self.close()
        if not self.path.parent.is_dir():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = open_no_follow(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, "evidence file")
        info = os.fstat(self._fd)
        self._tail, self._hashes = _Tail(device=info.st_dev, inode=info.st_ino), {}
        return self._fd

    # -- reading what others appended -----------------------------------------------------
    def _read_new(self, fd: int) -> bytes:
        """The complete lines other writers appended since this writer last read, and the
        last record among them noted; the ids they hold are taken in by ``_absorb``."""
        tail = self._tail
        chunks = []
        while True:  # to the end of the file, without a stat: one pread when nothing is new
            chunk = os.pread(fd, READ_CHUNK, tail.offset)
            if not chunk:
                break
            chunks.append(chunk)
            tail.offset += len(chunk)
        if not chunks:
            return b""
        complete, _, tail.partial = (tail.partial + b"".join(chunks)).rpartition(b"\n")
        if complete:
            tail.lines += complete.count(b"\n") + 1
            for raw in reversed(complete.split(b"\n")) if not _looks_like_record(complete) else (_last_line(complete),):
                found = _id_and_hash(raw)
                if found is not None:  # else a torn or foreign line: `verify` reports it
                    tail.took(raw, found[0])
                    break
        return complete

    def _absorb(self, complete: bytes) -> None:
        """Every id (and its hash) in lines read by ``_read_new``, for the duplicate check."""
        hashes = self._hashes
        for raw in complete.split(b"\n") if complete else ():
            found = _id_and_hash(raw)
            if found is not None:
                hashes.setdefault(found[0], found[1])

    # -- appending ------------------------------------------------------------------------
    def add(self, block: EvidenceBlock) -> AddOutcome:
        base = block.model_dump_json().encode("utf-8")  # built before the lock: it is held as briefly as possible
        fd = self._log_fd()
        self._absorb(self._read_new(fd))  # most of what others appended, read without the lock
        lock_exclusive(fd, self.path, self.lock_timeout)
        try:
            outcome, late = self._append_locked(fd, block, base)
        finally:
            portalocker.unlock(fd)
        self._absorb(late)  # what arrived while this writer waited, taken in after the lock
        if self.fsync and outcome.added:
            os.fdatasync(fd)
        return outcome

    def _append_locked(self, fd: int, block: EvidenceBlock, base: bytes) -> tuple[AddOutcome, bytes]:
        """Under the lock: only the lines appended since the read before it, searched for
        this id (no parse of the others), then the append and the head."""
        late = self._read_new(fd)
        known = self._hashes.get(block.evidence_id) or _hash_of(late, block.evidence_id)
        if known is not None and known != block.sha256:
            raise EvidenceConflict(
                f"evidence {block.evidence_id} is already recorded with sha256 {known[:12]}..., "
                f"not {block.sha256[:12]}...: evidence is never rewritten, use a new id"
            )
        if known is not None:
            return AddOutcome(block, added=False, seq=0), late
        tail = self._tail
        seq = tail.seq + 1
        line = self._record(base, seq, tail.last_hash, tail.last_id)
        # A line left without its newline by a crashed writer is terminated first.
        payload = (b"\n" + line + b"\n") if tail.partial else (line + b"\n")
        os.write(fd, payload)
        tail.lines += 2 if tail.partial else 1
        tail.partial = b""
        tail.offset += len(payload)
        tail.appended(line, block.evidence_id, seq)
        self._hashes[block.evidence_id] = block.sha256
        self._write_head()
        return AddOutcome(block, added=True, seq=seq), late

    def _record(self, base: bytes, seq: int, prev: str, prev_id: str | None) -> bytes:
        # Evidence ids are letters, digits and ._:/- only: quoting needs no escapes.
        previous = b"null" if prev_id is None else b'"' + prev_id.encode() + b'"'
        line = b'%s,"seq":%d,"prev":"%s","prev_id":%s}' % (base[:-1], seq, prev.encode(), previous)
        if self._record_mac is None:
            return line
        return line[:-1] + self._kid_member + self._record_mac(RECORD_DOMAIN + line).encode() + b'"}'

    def _write_head(self) -> None:
        """The head, rewritten in place under the log's lock, so it always names the last
        record at the moment the lock is released (padded: a shorter head leaves nothing
        behind). Its JSON is RFC 8785 canonical as written (keys in order, no spaces), so
        the MAC is taken over it directly."""
        tail = self._tail
        last_id = "null" if tail.last_id is None else f'"{tail.last_id}"'
        body = f'{{"last_id":{last_id},"last_sha256":"{tail.last_hash}"{self._head_log}{tail.seq}'
        if self._head_mac is None:
            data = (body + "}").encode()
        else:
            covered = body + self._head_signature
            data = (covered[:-2] + f',"value":"{self._head_mac(covered.encode())}"}}}}').encode()
        if self._head_fd is None:
            self._head_fd = open_no_follow(self.head, os.O_WRONLY | os.O_CREAT, "evidence head")
        padded = data.ljust(HEAD_BYTES - 1, b" ") + b"\n"
        os.pwrite(self._head_fd, padded, 0)
        if len(padded) != self._head_size:
            os.ftruncate(self._head_fd, len(padded))  # the first write, or a head longer than HEAD_BYTES
            self._head_size = len(padded)


def _last_line(complete: bytes) -> bytes:
    return complete[complete.rfind(b"\n") + 1 :]


def _looks_like_record(complete: bytes) -> bool:
    """The last line is one this module wrote (the common case: no line-by-line search)."""
    last = _last_line(complete)
    return last.startswith(_LINE_START) and last.endswith(b"}")


def _hash_of(complete: bytes, evidence_id: str) -> str | None:
    """The sha256 recorded for ``evidence_id`` in these lines, found by a substring
    search (ids hold no quote, so the needle cannot occur inside a JSON string)."""
    needle = _LINE_START + evidence_id.encode() + b'"'
    at = complete.find(needle)
    if at < 0:
        return None
    end = complete.find(b"\n", at)
    found = _id_and_hash(complete[at : end if end >= 0 else len(complete)])
    return found[1] if found else None


def _id_and_hash(raw: bytes) -> tuple[str, str] | None:
    """(evidence_id, sha256) of one line. Lines this module wrote are read
    without a JSON parse: the id comes first and holds no quote, and the first
    ``,"sha256":"`` after it is the block's own (inside a JSON string its quotes
    would be escaped). Anything else goes through json."""
    if raw.startswith(_LINE_START):
        id_end = raw.find(b'"', _START_LEN)
        at = raw.find(_HASH_KEY, id_end) if id_end > 0 else -1
        if at > 0:
            digest = raw[at + _HASH_LEN : at + _HASH_LEN + 64]
            if len(digest) == 64 and digest.isalnum():
                return raw[_START_LEN:id_end].decode("utf-8", "replace"), digest.decode()
    try:
        record = json_text.loads(raw)
    except ValueError:
        return None
    if isinstance(record, dict) and isinstance(record.get("evidence_id"), str):
        return record["evidence_id"], str(record.get("sha256"))
    return None


def chain_log(path: Path, ring: KeyRing | None, *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> int:
    """Link a log written before it was a hash chain: every block, in file order,
    becomes a record of the chain (MAC'd with ``ring``), and the head is
    written. Run it when nobody appends (the file is replaced atomically).
    Returns the number of records."""
    fd = open_no_follow(path, os.O_RDWR, "evidence file")
    with os.fdopen(fd, "r+b", buffering=0) as handle:
        lock_exclusive(handle, path, lock_timeout)
        try:
            data = os.pread(fd, os.fstat(fd).st_size, 0)
            if data and not data.endswith(b"\n"):
                raise UsageError(f"{path} ends in a torn line: remove it first")
            log = EvidenceLog(path, ring=ring)
            out = []
            for number, raw in enumerate(data.split(b"\n")[:-1], start=1):
                if not raw.strip():
                    continue
                try:
                    record = EvidenceRecord.model_validate_json(raw)
                except ValueError:
                    raise UsageError(f"{path}:{number} is not an evidence block: fix or remove it first") from None
                if record.seq is not None:
                    raise UsageError(f"{path} is already a hash chain (line {number} has seq {record.seq})")
                tail = log._tail
                line = log._record(
                    record.block().model_dump_json().encode("utf-8"), tail.seq + 1, tail.last_hash, tail.last_id
                )
                tail.appended(line, record.evidence_id, tail.seq + 1)
                out.append(line + b"\n")
            atomic_write_bytes(path, b"".join(out))
            log._write_head()
            log.close()
        finally:
            portalocker.unlock(handle)
    return log._tail.seq
