"""Which files the self-audit reads, and how: the tracked files (``git
ls-files``) when the folder is in a git work tree, otherwise every file under
it; never vendored folders, minified bundles, binaries (a NUL in the first
8 KiB), symlinks or huge files."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from tw_gates.core.errors import UsageError
from tw_gates.core.proc import run
from tw_gates.schemas.consumer import check_relative_path

# Folder names whose content is someone else's code or a build output.
VENDORED_DIRS = frozenset(
    {
        "node_modules",
        "bower_components",
        "jspm_packages",
        "vendor",
        "third_party",
        "third-party",
        ".venv",
        "venv",
        "site-packages",
        "dist",
        "build",
        "__pycache__",
        ".git",
        ".hg",
        ".svn",
        ".tox",
        ".nox",
        ".mypy_cache",
        ".pytest_cache",
        ".next",
        ".nuxt",
        ".svelte-kit",
    }
)
MINIFIED_SUFFIXES = (".min.js", ".min.mjs", ".min.css", "-min.js", ".bundle.js")
BINARY_SNIFF_BYTES = 8192
# A line this long in a script or stylesheet means generated or minified code.
GENERATED_LINE_CHARS = 5000
GENERATED_SNIFF_SUFFIXES = (".js", ".mjs", ".cjs", ".css")
DEFAULT_MAX_FILE_BYTES = 2 * 1024 * 1024


def _is_vendored(rel: str) -> bool:
    return any(part in VENDORED_DIRS for part in rel.split("/")[:-1])


def _git_files(root: Path) -> list[str] | None:
    """Tracked files under ``root`` (relative to it), or None when ``root``
    is not in a git work tree or git is unavailable."""
    try:
        result = run(["git", "-C", str(root), "ls-files", "-z", "--cached"], timeout=120)
    except UsageError:  # git not installed
        return None
    if not result.ok:
        return None
    tracked = [p for p in result.stdout.decode("utf-8", "surrogateescape").split("\0") if p]
    # A folder inside a work tree with nothing tracked (a scratch copy, an
    # ignored folder) is scanned as a plain folder.
    return tracked or None


def _walk_files(root: Path) -> Iterator[str]:
    top = os.fspath(root)
    skip = len(top.rstrip(os.sep)) + 1
    for folder, dirs, files in os.walk(top, followlinks=False):
        dirs[:] = sorted(d for d in dirs if d not in VENDORED_DIRS)
        prefix = folder[skip:].replace(os.sep, "/") + "/" if len(folder) >= skip else ""
        for name in sorted(files):
            yield prefix + name


def list_source_files(root: Path) -> tuple[Iterator[str], str]:
    """(relative posix paths, how they were listed: 'git' or 'walk')."""
    tracked = _git_files(root)
    if tracked is not None:
        return iter(sorted(tracked)), "git"
    return _walk_files(root), "walk"


def _name_skip_reason(rel: str) -> str | None:
    """Why a file is skipped by its name alone, or None."""
    if _is_vendored(rel):
        return "vendored"
    if rel.lower().endswith(MINIFIED_SUFFIXES):
        return "minified"
    try:
        check_relative_path(rel)
        rel.encode("utf-8")
    except (ValueError, UnicodeEncodeError):
        return "unreportable_name"  # a hit there could not be written into a valid artifact
    return None


class NoFollowReader:
    """Reads files below a root without following a symbolic link anywhere
    on the way: every folder of the path is opened relative to its parent
    with ``O_NOFOLLOW | O_DIRECTORY`` and the file itself with
    ``O_NOFOLLOW | O_NONBLOCK`` (a FIFO does not block), then checked with
    ``fstat`` on the open descriptor, so nothing can be swapped in between.
    A link, even one pointing inside the repository, is never read."""

    def __init__(self, root: Path, max_file_bytes: int) -> None:
        self.root = root
        self.max_file_bytes = max_file_bytes
        self._folder: tuple[str, int] | None = None  # the last folder opened (files come sorted)

    def close(self) -> None:
        if self._folder is not None:
            os.close(self._folder[1])
            self._folder = None

    def __enter__(self) -> NoFollowReader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _folder_fd(self, folder: str) -> int:
        if self._folder is not None and self._folder[0] == folder:
            return self._folder[1]
        self.close()
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for part in PurePosixPath(folder).parts if folder else ():
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = child
        except OSError:
            os.close(fd)
            raise
        self._folder = (folder, fd)
        return fd

    def read(self, rel: str) -> tuple[str | None, bytes | None]:
        """(reason to skip, the file's bytes when not skipped)."""
        reason = _name_skip_reason(rel)
        if reason:
            return reason, None
        folder, _, name = rel.rpartition("/")
        try:
            fd = os.open(name, _FILE_FLAGS, dir_fd=self._folder_fd(folder))
        except OSError as exc:
            return _open_error(exc), None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                return "not_a_file", None  # submodule, socket, fifo, device
            if info.st_size > self.max_file_bytes:
                return "too_large", None
            data = _read_all(fd, self.max_file_bytes + 1)
        except OSError:
            return "unreadable", None
        finally:
            os.close(fd)
        if len(data) > self.max_file_bytes:
            return "too_large", None
        if b"\0" in data[:BINARY_SNIFF_BYTES]:
            return "binary", None
        return None, data


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0)


def _open_error(exc: OSError) -> str:
    # ELOOP: the file is a link; ENOTDIR: a folder on the way is a link (or a file).
    if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
        return "symlink"
    return "unreadable"  # deleted since listed, no permission


def _read_all(fd: int, limit: int) -> bytes:
    chunks = []
    size = 0
    while size < limit:
        chunk = os.read(fd, min(1 << 20, limit - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def looks_minified(rel: str, text: str | bytes) -> bool:
    """A script or stylesheet with a line longer than any person writes."""
    if not rel.lower().endswith(GENERATED_SNIFF_SUFFIXES):
        return False
    head = text[:65536]
    newline = "\n" if isinstance(head, str) else b"\n"
    return any(len(line) > GENERATED_LINE_CHARS for line in head.split(newline))  # type: ignore[arg-type]
