"""Files written so that a crash never leaves half a file, appends that
several processes can make at once without losing or tearing a line, and
files a user named read with a size bound and one-line errors."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, TypeVar

import portalocker

from tw_gates.core.errors import TwGatesError, UsageError
from tw_gates.core.redact import REDACTOR

if TYPE_CHECKING:
    from pydantic import BaseModel


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
        with os.fdopen(fd, mode, **({} if mode == "wb" else {"encoding": "utf-8"})) as handle:
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
            start = cursor.offset if same_file and cursor.offset <= info.st_size else 0
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


def read_bytes_limited(path: str | os.PathLike[str], max_bytes: int, *, follow_symlinks: bool = True) -> bytes:
    """Read a file only if it is at most ``max_bytes``; never read more.

    The size is checked on the open descriptor (no stat-then-open race) and
    the read itself is bounded, so a file that grows meanwhile cannot
    blow the memory budget. Only regular files are read: a FIFO or a device
    is refused without blocking (NotARegularFile); with
    ``follow_symlinks=False`` a symbolic link is refused too (SymlinkRefused)."""
    with os.fdopen(open_regular(path, follow_symlinks=follow_symlinks), "rb") as handle:
        return _read_bounded(handle, max_bytes)


# ---------------------------------------------------------------- no-follow reading
#
# Files found in a folder someone else controls (a checkout, a downloaded
# artifact, a folder of shards) are opened with O_NOFOLLOW: a link named
# "results.xml" pointing at /proc/self/environ or /etc/shadow is refused, not
# read. O_NONBLOCK makes the open of a FIFO return at once (a FIFO would
# otherwise block until a writer comes), and fstat on the open descriptor
# then refuses anything that is not a regular file, with no race between the
# check and the read.


class SymlinkRefused(UsageError):
    """A symbolic link where tw-gates reads only regular files."""


class NotARegularFile(UsageError):
    """A FIFO, device, socket or directory where a regular file was expected."""


_NOFOLLOW_FLAGS = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)


def _kind_of(mode: int) -> str:
    for test, kind in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISLNK, "a symbolic link"),
    ):
        if test(mode):
            return kind
    return "not a regular file"


def open_regular(path: str | os.PathLike[str], *, follow_symlinks: bool = False, dir_fd: int | None = None) -> int:
    """A read-only descriptor on ``path`` if it is a regular file: no FIFO,
    device or socket (refused without blocking), and, unless
    ``follow_symlinks``, no symbolic link as the last component (O_NOFOLLOW).
    OSError for a missing or unreadable file, as open() raises it."""
    flags = _NOFOLLOW_FLAGS | (0 if follow_symlinks else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP and not follow_symlinks:
            raise SymlinkRefused(f"{path} is a symbolic link: refused (links are not followed here)") from None
        raise
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotARegularFile(f"{path} is {_kind_of(mode)}, not a regular file: refused")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_nofollow(path: str | os.PathLike[str], what: str, *, max_bytes: int, dir_fd: int | None = None) -> bytes:
    """The bytes of a regular file found in a folder, at most ``max_bytes``:
    never through a symbolic link, never blocking on a FIFO, never more than
    the limit. Every refusal is one UsageError line naming ``what`` and the
    path ("JUnit XML results/x.xml is a symbolic link: refused ...")."""
    try:
        fd = open_regular(path, follow_symlinks=False, dir_fd=dir_fd)
    except (SymlinkRefused, NotARegularFile) as exc:
        raise type(exc)(f"{what} {exc}") from None
    except FileNotFoundError:
        raise InputNotFound(f"{what} not found: {path}") from None
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as handle:
        try:
            return _read_bounded(handle, max_bytes)
        except FileTooLarge as exc:
            raise InputTooLarge(
                f"{what} {path} is {exc.size} bytes, larger than the limit of {exc.limit} bytes",
                size=exc.size,
                limit=exc.limit,
            ) from None


def regular_files_under(root: str | os.PathLike[str], suffixes: tuple[str, ...]) -> tuple[list[Path], list[str]]:
    """The regular files below ``root`` whose names end in one of ``suffixes``
    (sorted), walking without following symbolic links, and a note for each
    link or special file skipped on the way ("x.xml: a symbolic link")."""
    found: list[Path] = []
    skipped: list[str] = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        for name in sorted(dirs):
            if os.path.islink(os.path.join(folder, name)):
                skipped.append(f"{os.path.join(folder, name)}: a symbolic link to a folder, not followed")
        for name in files:
            if not name.lower().endswith(suffixes):
                continue
            path = os.path.join(folder, name)
            mode = os.lstat(path).st_mode
            if stat.S_ISREG(mode):
                found.append(Path(path))
            else:
                skipped.append(f"{path}: {_kind_of(mode)}, not read")
    return sorted(found), skipped


def _read_bounded(handle: IO[bytes], max_bytes: int) -> bytes:
    size = os.fstat(handle.fileno()).st_size
    if size > max_bytes:
        raise FileTooLarge(size, max_bytes)
    data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise FileTooLarge(len(data), max_bytes)
    return data


class FileTooLarge(TwGatesError):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"file is {size} bytes, larger than the limit of {limit} bytes")
        self.size = size
        self.limit = limit


# ---------------------------------------------------------------- files a user named
#
# Every gate reads the files named on its command line through these, so a
# missing, unreadable, oversized or malformed file is always one line naming
# what it is and where (``audit report not found: PATH``), exit 1.


class InputNotFound(UsageError):
    """The named file does not exist (callers may treat absence as a case of its own)."""


class InputTooLarge(UsageError):
    """The named file is larger than the caller's limit."""

    def __init__(self, message: str, *, size: int, limit: int) -> None:
        super().__init__(message)
        self.size = size
        self.limit = limit


def open_input(path: str | os.PathLike[str], what: str, *, follow_symlinks: bool = True) -> IO[bytes]:
    """Open a user-named file for reading in binary, for callers that stream
    it; the errors are read_input's. A FIFO or device is refused without
    blocking; a file found by walking a folder is opened with
    ``follow_symlinks=False`` (a link there is refused, not followed)."""
    try:
        return os.fdopen(open_regular(path, follow_symlinks=follow_symlinks), "rb")
    except FileNotFoundError:
        raise InputNotFound(f"{what} not found: {path}") from None
    except NotARegularFile as exc:
        if "a directory" in str(exc):
            raise UsageError(f"{what} is a directory, not a file: {path}") from None
        raise NotARegularFile(f"{what} {exc}") from None
    except SymlinkRefused as exc:
        raise SymlinkRefused(f"{what} {exc}") from None
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror or exc}") from None


def read_input(path: str | os.PathLike[str], what: str, *, max_bytes: int, follow_symlinks: bool = True) -> bytes:
    """The bytes of a user-named file of at most ``max_bytes`` (never reads
    more). ``what`` names it in the errors: "registry not found: PATH".
    ``follow_symlinks=False`` for files found in a folder (see read_nofollow)."""
    with open_input(path, what, follow_symlinks=follow_symlinks) as handle:
        try:
            return _read_bounded(handle, max_bytes)
        except FileTooLarge as exc:
            raise InputTooLarge(
                f"{what} {path} is {exc.size} bytes, larger than the limit of {exc.limit} bytes",
                size=exc.size,
                limit=exc.limit,
            ) from None
        except OSError as exc:  # e.g. EISDIR on read where open allowed it, EIO
            raise UsageError(f"cannot read {what} {path}: {exc.strerror or exc}") from None


def _decode_utf8(data: bytes, path: str | os.PathLike[str], what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{what} {path} is not UTF-8 text: {exc.reason} at byte {exc.start}") from None


def read_text_input(path: str | os.PathLike[str], what: str, *, max_bytes: int, follow_symlinks: bool = True) -> str:
    """read_input decoded as strict UTF-8 (the error names the byte offset)."""
    return _decode_utf8(read_input(path, what, max_bytes=max_bytes, follow_symlinks=follow_symlinks), path, what)


def load_document(
    path: str | os.PathLike[str], what: str, *, max_bytes: int, fmt: Literal["json", "yaml"] | None = None
) -> Any:
    """A user-named JSON or YAML document: JSON when the name ends in .json
    (or ``fmt="json"``), YAML (safe_load) otherwise; a parse error is one
    line with its line and column."""
    text = read_text_input(path, what, max_bytes=max_bytes)
    if fmt is None:
        fmt = "json" if Path(path).suffix.lower() == ".json" else "yaml"
    try:
        if fmt == "json":
            return _parse_json(text, path, what)
        return _parse_yaml(text, path, what)
    except RecursionError:
        raise UsageError(f"{what} {path} is nested too deeply to read") from None


def _parse_json(text: str, path: str | os.PathLike[str], what: str) -> Any:
    try:
        # A leading byte-order mark is allowed, as json.loads(bytes) and YAML allow it.
        return json.loads(text.removeprefix("\ufeff"))
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{what} {path} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise UsageError(f"{what} {path} is not valid JSON: {' '.join(str(exc).split())}") from None


def _parse_yaml(text: str, path: str | os.PathLike[str], what: str) -> Any:
    import yaml

    from tw_gates.core.yaml_lines import safe_load_bounded

    try:
        return safe_load_bounded(text)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or " ".join(str(exc).split())
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        raise UsageError(f"{what} {path} is not valid YAML: {problem}{where}") from None


Model = TypeVar("Model", bound="BaseModel")


def load_model(
    path: str | os.PathLike[str],
    model_cls: type[Model],
    what: str,
    *,
    max_bytes: int,
    fmt: Literal["json", "yaml"] | None = None,
    allow_empty: bool = False,
) -> Model:
    """load_document validated as ``model_cls``. Every problem is one
    UsageError line. An empty file is refused (a truncated file must not
    pass for one meaning "all defaults") unless ``allow_empty``: then it is
    an empty mapping."""
    from pydantic import ValidationError

    from tw_gates.core.settings import describe_validation_error

    data = load_document(path, what, max_bytes=max_bytes, fmt=fmt)
    if data is None:
        if not allow_empty:
            raise UsageError(f"{what} {path} is empty")
        data = {}
    if not isinstance(data, dict):
        raise UsageError(f"{what} {path} must hold a mapping of fields, not {_kind(data)}")
    try:
        return model_cls.model_validate(data)
    except ValidationError as exc:
        raise UsageError(describe_validation_error(exc, f"{what} {path}")) from None


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return type(value).__name__
