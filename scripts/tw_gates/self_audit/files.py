"""Which files the self-audit reads, and how: the tracked files (``git
ls-files``) when the folder is in a git work tree, otherwise every file under
it; never vendored folders, minified bundles, binaries (a NUL in the first
8 KiB), symlinks or huge files."""

from __future__ import annotations

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


def _is_vendored(parts: tuple[str, ...]) -> bool:
    return any(part in VENDORED_DIRS for part in parts[:-1])


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
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if d not in VENDORED_DIRS)
        rel = Path(folder).relative_to(root)
        for name in sorted(files):
            yield (rel / name).as_posix() if rel.parts else name


def list_source_files(root: Path) -> tuple[Iterator[str], str]:
    """(relative posix paths, how they were listed: 'git' or 'walk')."""
    tracked = _git_files(root)
    if tracked is not None:
        return iter(sorted(tracked)), "git"
    return _walk_files(root), "walk"


def _name_skip_reason(rel: str) -> str | None:
    """Why a file is skipped by its name alone, or None."""
    if _is_vendored(PurePosixPath(rel).parts):
        return "vendored"
    if rel.lower().endswith(MINIFIED_SUFFIXES):
        return "minified"
    try:
        check_relative_path(rel)
        rel.encode("utf-8")
    except (ValueError, UnicodeEncodeError):
        return "unreportable_name"  # a hit there could not be written into a valid artifact
    return None


def _skip_reason(root: Path, rel: str, max_file_bytes: int) -> tuple[str | None, bytes | None]:
    """(reason to skip, file bytes when not skipped)."""
    reason = _name_skip_reason(rel)
    if reason:
        return reason, None
    full = root / rel
    try:
        info = os.lstat(full)
    except OSError:
        return "unreadable", None  # deleted since listed
    if stat.S_ISLNK(info.st_mode):
        return "symlink", None  # may point outside the repository
    if not stat.S_ISREG(info.st_mode):
        return "not_a_file", None  # submodule, socket, fifo
    if info.st_size > max_file_bytes:
        return "too_large", None
    try:
        with open(full, "rb") as handle:
            data = handle.read(max_file_bytes + 1)
    except OSError:
        return "unreadable", None
    if len(data) > max_file_bytes:
        return "too_large", None
    if b"\0" in data[:BINARY_SNIFF_BYTES]:
        return "binary", None
    return None, data


def _looks_generated(rel: str, text: str) -> bool:
    if not rel.lower().endswith(GENERATED_SNIFF_SUFFIXES):
        return False
    head = text[:65536]
    return any(len(line) > GENERATED_LINE_CHARS for line in head.split("\n"))
