"""The quarantine: every rejected artifact leaves a reason file (reason,
message, size, sha256, provenance) in a folder, under a name never reused,
and beside it the judged bytes only when they are safe text, redacted. The
ingest action uploads this folder: it must never hold bytes the gate did not
judge safe (a symlink's target, /proc/self/environ, a binary)."""

from __future__ import annotations

import hashlib
import itertools
import os
import re
from datetime import datetime, timezone
from pathlib import Path

from tw_gates import __version__
from tw_gates.core.fsio import atomic_write_json
from tw_gates.core.redact import redact
from tw_gates.ingest.reasons import Rejection
from tw_gates.schemas.consumer import Provenance

_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# O_EXCL: never an existing file, and never through a link planted under the name.
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
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
            return target, os.open(target, _CREATE, 0o644)
        except FileExistsError:
            continue
    raise AssertionError("unreachable")


def judged_safe_copy(data: bytes) -> tuple[bytes, str] | None:
    """What of ``data`` may be written to the quarantine, and how much of it
    was kept ("whole" or "redacted"); None: nothing may be.

    Only text: strict UTF-8 with no control character but tab, CR and LF (so
    never /proc/self/environ, a binary, or anything else a JSON artifact cannot
    be), and even then every secret this run knows and every known secret
    format is redacted first."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if _CONTROL.search(text):
        return None
    cleaned = redact(text)
    return (data, "whole") if cleaned == text else (cleaned.encode("utf-8"), "redacted")


def quarantine(
    path: str,
    rejection: Rejection,
    data: bytes | None,
    directory: Path,
    *,
    provenance: Provenance | None = None,
) -> Path:
    """Record a rejected artifact: ``<name>.reason.json`` (reason, message,
    size, sha256 of the bytes judged, provenance) and, under ``<name>``, the
    bytes judged only when they are safe text (``judged_safe_copy``), else an
    empty file. Nothing unread is ever copied: not a symlink's target, not a
    FIFO, not the head of a file too large. Returns the ``<name>`` path."""
    directory.mkdir(parents=True, exist_ok=True)
    target, fd = _reserve(directory, os.path.basename(path.rstrip("/")))
    copy = judged_safe_copy(data) if data is not None else None
    with os.fdopen(fd, "wb") as sink:
        if copy is not None:
            sink.write(copy[0])
    reason = {
        "artifact": path,
        "reason": rejection.reason,
        "message": rejection.message,
        "copied": copy[1] if copy is not None else "nothing",
        "size": len(data) if data is not None else rejection.size,
        "sha256": hashlib.sha256(data).hexdigest() if data is not None else None,
        "provenance": provenance.model_dump(mode="json", exclude={"file"}) if provenance is not None else None,
        "quarantined_as": target.name,
        "quarantined_at": datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "tool_version": __version__,
    }
    atomic_write_json(directory / f"{target.name}{_REASON_SUFFIX}", reason)
    return target
