"""Reading files tw-gates did not write: files a user named on the command
line and files found in a folder someone else controls. Every read is
size-bounded, refuses FIFOs and devices without blocking, and (for files
found in a folder) refuses symbolic links; every failure is one line naming
what the file is and where (``audit report not found: PATH``), exit 1."""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, TypeVar

import yaml
from pydantic import ValidationError

from tw_gates.core import json_text
from tw_gates.core.errors import TwGatesError, UsageError
from tw_gates.core.settings import describe_validation_error
from tw_gates.core.yaml_safe import safe_load_bounded

if TYPE_CHECKING:
    from pydantic import BaseModel


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


# Both are OSErrors too: a caller that handles an unreadable file with
# ``except OSError`` handles these the same way.
class SymlinkRefused(UsageError, OSError):
    """A symbolic link where tw-gates reads only regular files."""


class NotARegularFile(UsageError, OSError):
    """A FIFO, device, socket or directory where a regular file was expected."""

    def __init__(self, message: str, *, kind: str = "not a regular file") -> None:
        super().__init__(message)
        self.kind = kind  # "a FIFO", "a device", ...


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
    if "\x00" in os.fspath(path):
        raise UsageError(f"{os.fspath(path)!r} holds a NUL byte: no file has such a name")
    try:
        fd = os.open(path, flags, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP and not follow_symlinks:
            raise SymlinkRefused(f"{path} is a symbolic link: not followed") from None
        raise
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotARegularFile(f"{path} is {_kind_of(mode)}, not a regular file: refused", kind=_kind_of(mode))
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_nofollow(
    path: str | os.PathLike[str],
    what: str,
    *,
    max_bytes: int,
    dir_fd: int | None = None,
    shown: str | os.PathLike[str] | None = None,
) -> bytes:
    """The bytes of a regular file found in a folder, at most ``max_bytes``:
    never through a symbolic link, never blocking on a FIFO, never more than
    the limit. Every refusal is one UsageError line naming ``what`` and the
    path ("JUnit XML results/x.xml is a symbolic link: not followed ..."); ``shown``
    is the path to name when ``path`` is relative to ``dir_fd``."""
    name = os.fspath(shown if shown is not None else path)
    try:
        fd = open_regular(path, follow_symlinks=False, dir_fd=dir_fd)
    except SymlinkRefused:
        raise SymlinkRefused(f"{what} {name} is a symbolic link: not followed") from None
    except NotARegularFile as exc:
        raise NotARegularFile(f"{what} {name} is {exc.kind}, not a regular file: refused") from None
    except UsageError as exc:
        raise UsageError(f"{what}: {exc}") from None
    except FileNotFoundError:
        raise InputNotFound(f"{what} not found: {name}") from None
    except OSError as exc:
        raise UsageError(f"cannot read {what} {name}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as handle:
        return _read_named(handle, max_bytes, what, name)


def read_under(root: str | os.PathLike[str], relative: str, what: str, *, max_bytes: int) -> bytes:
    """The bytes of the regular file ``root/relative``, opened folder by folder
    with O_NOFOLLOW: a symbolic link anywhere below ``root`` (a folder or the
    file) is refused, not followed, and so is a FIFO or a device. One
    UsageError line naming ``what`` and the path for every refusal."""
    shown = Path(root) / relative
    parts = Path(relative).parts
    dir_flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        folder = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise UsageError(f"{what}: folder {root} cannot be opened: {exc.strerror or exc}") from None
    try:
        for index, name in enumerate(parts[:-1]):
            try:
                inner = os.open(name, dir_flags, dir_fd=folder)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR) and os.path.islink(Path(root, *parts[: index + 1])):
                    raise SymlinkRefused(
                        f"{what} {Path(root, *parts[: index + 1])} is a symbolic link: not followed"
                    ) from None
                if exc.errno == errno.ENOENT:
                    raise InputNotFound(f"{what} not found: {shown}") from None
                raise UsageError(f"cannot read {what} {shown}: {exc.strerror or exc}") from None
            os.close(folder)
            folder = inner
        return read_nofollow(parts[-1], what, max_bytes=max_bytes, dir_fd=folder, shown=shown)
    finally:
        os.close(folder)


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


def _read_named(handle: IO[bytes], max_bytes: int, what: str, name: object) -> bytes:
    """_read_bounded, an oversized file said as the user named it."""
    try:
        return _read_bounded(handle, max_bytes)
    except FileTooLarge as exc:
        raise InputTooLarge(
            f"{what} {name} is {exc.size} bytes, larger than the limit of {exc.limit} bytes",
            size=exc.size,
            limit=exc.limit,
        ) from None


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
    except UsageError as exc:
        raise UsageError(f"{what}: {exc}") from None
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror or exc}") from None


def read_input(path: str | os.PathLike[str], what: str, *, max_bytes: int, follow_symlinks: bool = True) -> bytes:
    """The bytes of a user-named file of at most ``max_bytes`` (never reads
    more). ``what`` names it in the errors: "registry not found: PATH".
    ``follow_symlinks=False`` for files found in a folder (see read_nofollow)."""
    with open_input(path, what, follow_symlinks=follow_symlinks) as handle:
        try:
            return _read_named(handle, max_bytes, what, path)
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
        # A leading byte-order mark is allowed, as json_text.loads(bytes) and YAML allow it.
        return json_text.loads(text.removeprefix("\ufeff"))
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{what} {path} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise UsageError(f"{what} {path} is not valid JSON: {' '.join(str(exc).split())}") from None


def _parse_yaml(text: str, path: str | os.PathLike[str], what: str) -> Any:

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
