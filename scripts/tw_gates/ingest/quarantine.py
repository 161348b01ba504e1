"""The quarantine: every rejected artifact leaves a reason file (and the
evidence) in a folder, under a name never reused."""

from __future__ import annotations

import hashlib
import itertools
import os
import re
from datetime import datetime, timezone
from pathlib import Path

from tw_gates import __version__
from tw_gates.core.fsio import atomic_write_json
from tw_gates.ingest.reasons import Rejection

_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_REASON_SUFFIX = ".reason.json"


def _reserve(directory: Path, name: str) -> tuple[Path, int]:
    """A new file in ``directory`` named after ``name``, never an existing
    one (O_EXCL: safe against concurrent ingest runs too)."""
    base = _UNSAFE_NAME.sub("_", name).strip("._")[:100] or "artifact"
    if base.endswith(_REASON_SUFFIX):
        base += ".artifact"  # must not be mistaken for (or collide with) a reason file
    stem, dot, suffix = base.rpartition(".") if "." in base else (base, "", "")
    for attempt in itertools.count():
        candidate = base if attempt == 0 else f"{stem}-{attempt}{dot}{suffix}"
        target = directory / candidate
        try:
            return target, os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            continue
    raise AssertionError("unreachable")


def quarantine(path: str, rejection: Rejection, data: bytes | None, directory: Path, *, head_bytes: int) -> Path:
    """Copy the artifact's bytes (what was judged; for a file too large, its
    first --max-bytes) next to ``<name>.reason.json``; return the copy's path.
    ``sha256`` in the reason file is over exactly the bytes copied."""
    directory.mkdir(parents=True, exist_ok=True)
    target, fd = _reserve(directory, os.path.basename(path.rstrip("/")))
    size = len(data) if data is not None else None
    digest = hashlib.sha256(data).hexdigest() if data is not None else None
    copied = "whole"
    with os.fdopen(fd, "wb") as sink:
        if data is not None:
            sink.write(data)
        elif rejection.reason == "too_large":
            copied, size, digest = _copy_head(path, sink, head_bytes)
        else:
            copied = "nothing"  # unreadable, or not a regular file: never opened
    reason = {
        "artifact": path,
        "reason": rejection.reason,
        "message": rejection.message,
        "copied": copied,
        "size": size,
        "sha256": digest,
        "quarantined_as": target.name,
        "quarantined_at": datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "tool_version": __version__,
    }
    atomic_write_json(directory / f"{target.name}{_REASON_SUFFIX}", reason)
    return target


def _copy_head(path: str, sink, limit: int) -> tuple[str, int | None, str | None]:
    """The first ``limit`` bytes of a too-large file as evidence, never more
    (a hostile file may be endless): (what was copied, the file's size, the
    sha256 of the copied head)."""
    digest, kept = hashlib.sha256(), 0
    try:
        with open(path, "rb") as source:
            size = os.fstat(source.fileno()).st_size
            while kept < limit and (chunk := source.read(min(1 << 20, limit - kept))):
                digest.update(chunk)
                sink.write(chunk)
                kept += len(chunk)
    except OSError:
        return "nothing", None, None
    return f"first {kept} bytes", size, digest.hexdigest()
