"""Reading a file from a folder the gate was pointed at, without trusting
the folder: a symbolic link is never followed (``lstat`` first, then
``O_NOFOLLOW``), a FIFO, socket or device is never opened (opening a FIFO
blocks, opening a device can have effects), the open file must be the one
that was ``lstat``-ed, and at most ``max_bytes`` are read, judged on the open
descriptor and again while reading (``/proc`` files report size 0)."""

from __future__ import annotations

import errno
import os
import stat

_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOCTTY", 0)
_KINDS = (
    (stat.S_ISLNK, "a symbolic link (never followed)"),
    (stat.S_ISFIFO, "a FIFO (never opened)"),
    (stat.S_ISSOCK, "a socket (never opened)"),
    (stat.S_ISCHR, "a character device (never opened)"),
    (stat.S_ISBLK, "a block device (never opened)"),
    (stat.S_ISDIR, "a folder"),
)


class NotRegular(Exception):
    """The path is not a regular file; the message says what it is."""


class TooLarge(Exception):
    def __init__(self, size: int | None, limit: int) -> None:
        super().__init__(f"{size if size is not None else 'more than ' + str(limit)} bytes")
        self.size = size
        self.limit = limit


def describe_kind(mode: int) -> str:
    return next((what for test, what in _KINDS if test(mode)), "not a regular file")


def read_no_follow(path: str, max_bytes: int) -> bytes:
    """The bytes of the regular file at ``path`` (never through a link).

    Raises NotRegular, TooLarge, or OSError (unreadable)."""
    before = os.lstat(path)
    if not stat.S_ISREG(before.st_mode):
        raise NotRegular(describe_kind(before.st_mode))
    try:
        fd = os.open(path, _FLAGS)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # became a link between lstat and open
            raise NotRegular("a symbolic link (never followed)") from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or (info.st_dev, info.st_ino) != (before.st_dev, before.st_ino):
            raise NotRegular("replaced while it was opened")
        if info.st_size > max_bytes:
            raise TooLarge(info.st_size, max_bytes)
        return _read_at_most(fd, max_bytes, info.st_size)
    finally:
        os.close(fd)


def _read_at_most(fd: int, max_bytes: int, size_hint: int) -> bytes:
    first = os.read(fd, min(max_bytes + 1, max(size_hint, 0) + 1) or 1)
    if len(first) <= size_hint or not first:
        return first  # the common case: one read of the whole file
    chunks, total = [first], len(first)
    while total <= max_bytes:
        chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    if total > max_bytes:
        raise TooLarge(None, max_bytes)
    return b"".join(chunks)
