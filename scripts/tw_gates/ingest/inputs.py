"""What the ingest gate is pointed at: files, folders (their *.json,
recursively) and globs, expanded lazily, each file once."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Iterator

from tw_gates.core.errors import UsageError


def _files_under(directory: str, skip: frozenset[str]) -> Iterator[str]:
    """The *.json below ``directory``, sorted, folders after files, links to
    folders not walked into. Only the *.json names of one folder are held at
    a time (a collected folder may list 200,000 entries)."""
    names: list[str] = []
    folders: list[str] = []
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.is_dir():
                    if not entry.is_symlink() and os.path.realpath(entry.path) not in skip:
                        folders.append(entry.name)
                elif entry.name.endswith(".json"):
                    names.append(entry.name)
    except OSError:
        return  # as os.walk: a folder that cannot be listed has nothing to give
    names.sort()
    for name in names:
        yield os.path.join(directory, name)
    del names
    for folder in sorted(folders):
        yield from _files_under(os.path.join(directory, folder), skip)


def _check_specs(specs: list[str]) -> None:
    for spec in specs:
        if glob.has_magic(spec):
            if next(glob.iglob(spec, recursive=True), None) is None:
                raise UsageError(f"no artifact matches {spec!r}")
        elif not os.path.lexists(spec):
            raise UsageError(f"artifact not found: {spec}")


def _files_of(spec: str, skip: frozenset[str]) -> Iterator[str]:
    matches = sorted(glob.iglob(spec, recursive=True)) if glob.has_magic(spec) else [spec]
    for match in matches:
        yield from _files_under(match, skip) if os.path.isdir(match) else (match,)


def expand_artifacts(specs: list[str], *, skip_dirs: Iterable[str | os.PathLike[str]] = ()) -> Iterator[str]:
    """Files, folders (their *.json, recursively) and globs, each file once,
    lazily. Every spec must name something: a typo is an error, not an empty
    (and so "passing") ingest. Folders in ``skip_dirs`` (the quarantine) are
    not walked into: yesterday's rejects are not today's input."""
    skip = frozenset(os.path.realpath(d) for d in skip_dirs)
    _check_specs(specs)

    # A plain file or folder never names a file twice; several specs, or a
    # glob (`in/**` matches the folder and the files in it), may overlap, and
    # only then is a set of every path kept.
    dedupe = len(specs) > 1 or any(glob.has_magic(spec) for spec in specs)

    def generate() -> Iterator[str]:
        seen: set[str] = set()
        for spec in specs:
            for path in _files_of(spec, skip):
                if dedupe:
                    key = os.path.realpath(path)
                    if key in seen:
                        continue
                    seen.add(key)
                yield path

    return generate()
