"""Files written so that a crash never leaves half a file, and appends that
several processes can make at once without losing or tearing a line. (Files
read with a size bound and one-line errors: core.inputs, re-exported here.)"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

import portalocker

from tw_gates.core.errors import TwGatesError

# The readers live in core.inputs; callers that import them from here keep working.
from tw_gates.core.inputs import FileTooLarge as FileTooLarge
from tw_gates.core.inputs import InputNotFound as InputNotFound
from tw_gates.core.inputs import InputTooLarge as InputTooLarge
from tw_gates.core.inputs import NotARegularFile as NotARegularFile
from tw_gates.core.inputs import SymlinkRefused as SymlinkRefused
from tw_gates.core.inputs import load_document as load_document
from tw_gates.core.inputs import load_model as load_model
from tw_gates.core.inputs import open_input as open_input
from tw_gates.core.inputs import open_regular as open_regular
from tw_gates.core.inputs import read_bytes_limited as read_bytes_limited
from tw_gates.core.inputs import read_input as read_input
from tw_gates.core.inputs import read_nofollow as read_nofollow
from tw_gates.core.inputs import read_text_input as read_text_input
from tw_gates.core.inputs import regular_files_under as regular_files_under
from tw_gates.core.redact import REDACTOR

if TYPE_CHECKING:
    pass


# Read once, at import, while the process is still single-threaded: reading
# the umask means setting it, which other threads creating files would see.
_UMASK = os.umask(0)
os.umask(_UMASK)


class LockTimeout(TwGatesError):
    """Another writer held the lock for longer than our timeout."""


def _fsync_dir(directory: Path) -> None:
    # Make the rename itself durable; not all filesystems allow it.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_open(
    path: str | os.PathLike[str], mode: Literal["wb", "w"] = "wb", *, permissions: int | None = None
) -> Iterator[IO[Any]]:
    """A handle on a temp file beside ``path`` that becomes ``path`` (fsync,
    then os.replace) only when the block ends normally; on an exception the
    temp file is removed and ``path`` keeps its old content. A reader never
    sees half a file, however long the writing takes. ``mode`` "w" is UTF-8
    text (no redaction: stream only what is safe to publish). The file gets
    ``permissions``, or the mode a plain open() would give it."""
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open mode must be 'wb' or 'w', not {mode!r}")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        opened: IO[Any] = os.fdopen(fd, "wb") if mode == "wb" else os.fdopen(fd, "w", encoding="utf-8")
        with opened as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        if permissions is None:
            # mkstemp creates 0600; give the file the mode a plain open() would.
            permissions = 0o666 & ~_UMASK
        os.chmod(tmp, permissions)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(target.parent)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, mode: int | None = None) -> Path:
    """Write via a temp file in the same folder, fsync, then os.replace."""
    with atomic_open(path, "wb", permissions=mode) as handle:
        handle.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str, *, redact: bool = True) -> Path:
    """Atomic text write; secrets are redacted unless the caller opts out
    (only for content that is already redacted or signed)."""
    if redact:
        text = REDACTOR.redact(text)
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], obj: Any, *, redact: bool = True, indent: int | None = 2) -> Path:
    if redact:
        obj = REDACTOR.redact_obj(obj)
    text = json.dumps(obj, indent=indent, ensure_ascii=False, sort_keys=False)
    return atomic_write_text(path, text + "\n", redact=False)


@contextlib.contextmanager
def file_lock(lock_path: str | os.PathLike[str], *, timeout: float = 10.0) -> Iterator[None]:
    """An exclusive advisory lock on a side file, with a real timeout.

    LOCK_NB matters: with LOCK_EX alone the OS call blocks and portalocker's
    timeout is never consulted."""
    path = Path(lock_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = portalocker.Lock(
        str(path),
        mode="a",
        timeout=timeout,
        check_interval=0.005,
        flags=portalocker.LockFlags.EXCLUSIVE | portalocker.LockFlags.NON_BLOCKING,
    )
    try:
        lock.acquire()
    except portalocker.exceptions.LockException as exc:
        raise LockTimeout(f"could not lock {path} within {timeout:g}s: another writer holds it") from exc
    try:
        yield
    finally:
        lock.release()


def locked_append_lines(
    path: str | os.PathLike[str], lines: Iterable[str], *, timeout: float = 10.0, fsync: bool = True
) -> int:
    """Append whole lines to ``path`` under an exclusive lock on the file itself.

    O_APPEND plus the lock means concurrent writers never interleave or tear
    lines; fsync before unlocking means a reader never sees a line that a
    crash could take back. Returns the number of lines written."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    payload = "".join(line if line.endswith("\n") else line + "\n" for line in lines)
    if not payload:
        return 0
    lock = portalocker.Lock(
        str(target),
        mode="a",
        timeout=timeout,
        check_interval=0.002,
        flags=portalocker.LockFlags.EXCLUSIVE | portalocker.LockFlags.NON_BLOCKING,
    )
    try:
        handle = lock.acquire()
    except portalocker.exceptions.LockException as exc:
        raise LockTimeout(f"could not lock {target} within {timeout:g}s: another writer holds it") from exc
    try:
        handle.write(payload)
        handle.flush()
        if fsync:
            os.fsync(handle.fileno())
    finally:
        lock.release()
    return payload.count("\n")


@dataclass(frozen=True)
class AppendCursor:
    """How far a reader of an append-only file has read: the file's identity
    (device, inode) and the byte offset after the last byte it saw."""

    device: int
    inode: int
    offset: int


def locked_read_append(
    path: str | os.PathLike[str],
    decide: Callable[[bytes, bool], Iterable[str]],
    *,
    cursor: AppendCursor | None = None,
    timeout: float = 10.0,
    fsync: bool = True,
) -> AppendCursor:
    """Read what is new in an append-only file, decide what to append, and
    append it, all under one exclusive lock on the file.

    ``decide(new_bytes, from_start)`` gets the bytes after ``cursor`` (the
    whole file, with ``from_start=True``, when there is no cursor or the file
    was replaced or truncated since) and returns the lines to append; it may
    raise to append nothing. Holding the lock across read and write is what
    makes check-then-append decisions (deduplication, conflicts) race-free
    between processes. A tail left without its newline by a crashed writer
    is terminated first, so the new lines stay whole. Returns the cursor at
    the new end of the file, for the next call to read only what others
    appended meanwhile.

    With ``fsync`` the file is flushed after the lock is released, so
    concurrent writers share journal commits instead of queueing one flush
    each under the lock (several times the throughput). The call still
    returns only once its lines, and every line ``decide`` saw, are on disk:
    fsync covers the whole file, whoever wrote to it.

    The lock is portalocker's, taken non-blocking and retried with short,
    growing pauses until ``timeout`` (a blocking LOCK_EX would ignore any
    timeout); short pauses keep the lock busy when many writers queue."""
    target = Path(path)
    if not target.parent.is_dir():
        target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "a+b") as handle:
        _lock_before(handle, target, timeout)
        try:
            info = os.fstat(handle.fileno())
            same_file = cursor is not None and (cursor.device, cursor.inode) == (info.st_dev, info.st_ino)
            start = cursor.offset if cursor is not None and same_file and cursor.offset <= info.st_size else 0
            handle.seek(start)
            new = handle.read(info.st_size - start)
            lines = list(decide(new, start == 0))
            payload = "".join(line if line.endswith("\n") else line + "\n" for line in lines).encode("utf-8")
            if payload:
                last = new[-1:] if new else _last_byte(handle, info.st_size)
                if info.st_size and last != b"\n":
                    payload = b"\n" + payload
                handle.write(payload)
                handle.flush()
            end = info.st_size + len(payload)
        finally:
            portalocker.unlock(handle)
        if fsync:
            os.fsync(handle.fileno())
    return AppendCursor(info.st_dev, info.st_ino, end)


def _lock_before(handle: Any, path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pause = 0.0001
    while True:
        try:
            portalocker.lock(handle, portalocker.LockFlags.EXCLUSIVE | portalocker.LockFlags.NON_BLOCKING)
            return
        except portalocker.exceptions.AlreadyLocked:
            pass
        except portalocker.exceptions.LockException as exc:
            raise TwGatesError(f"cannot lock {path}: {exc}") from exc
        left = deadline - time.monotonic()
        if left <= 0:
            raise LockTimeout(f"could not lock {path} within {timeout:g}s: another writer holds it")
        time.sleep(min(pause, left))
        pause = min(pause * 2, 0.0005)


def _last_byte(handle: Any, size: int) -> bytes:
    if not size:
        return b""
    handle.seek(size - 1)
    return handle.read(1)
