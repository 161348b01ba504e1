"""Files written so that a crash never leaves half a file: a temp file beside
the target, fsync'd, then renamed over it. (Files read with a size bound and
one-line errors: core.inputs, re-exported here. Locked appends: the evidence
log, phases.evidence_log, the one writer that appends.)"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

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
