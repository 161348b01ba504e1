"""Taking the artifact JSON out of an Actions artifact zip, in memory and
safely: member names checked (zip-slip), sizes capped in the header and
again while inflating (a header can lie), encrypted members refused."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import PurePosixPath

MAX_ZIP_MEMBERS = 100
PREFERRED_MEMBER = "tw-self-audit.json"


class ConsumerError(Exception):
    """This consumer cannot be collected; the others still are."""


def _safe_member_name(name: str) -> bool:
    if not name or "\x00" in name or "\\" in name or name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return False
    return ".." not in PurePosixPath(name).parts


def extract_artifact_json(zip_bytes: bytes, max_bytes: int) -> bytes:
    """The artifact JSON inside an Actions artifact zip: the only ``*.json``
    member (or ``tw-self-audit.json`` among several). Nothing is written to
    disk under a member's name; names that would escape a folder (zip-slip),
    encrypted members and members over ``max_bytes`` (checked in the header
    and again while reading: a header can lie) are refused."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(zip_bytes))
        members = [info for info in archive.infolist() if not info.is_dir()]
    except (zipfile.BadZipFile, ValueError, EOFError) as exc:
        raise ConsumerError(f"the artifact download is not a valid zip: {exc}") from None
    if len(members) > MAX_ZIP_MEMBERS:
        raise ConsumerError(f"the artifact zip holds {len(members)} files, more than {MAX_ZIP_MEMBERS}")
    unsafe = [m.filename for m in members if not _safe_member_name(m.filename)]
    if unsafe:
        raise ConsumerError(f"the artifact zip has unsafe member names (zip-slip): {unsafe[:3]!r}")
    candidates = [m for m in members if m.filename.lower().endswith(".json")]
    if len(candidates) > 1:
        candidates = [m for m in candidates if PurePosixPath(m.filename).name == PREFERRED_MEMBER]
    if len(candidates) != 1:
        names = ", ".join(m.filename for m in members[:10]) or "nothing"
        raise ConsumerError(f"the artifact zip must hold one *.json file (or {PREFERRED_MEMBER}); it holds {names}")
    member = candidates[0]
    if member.flag_bits & 0x1:
        raise ConsumerError(f"{member.filename} in the artifact zip is encrypted")
    if member.file_size > max_bytes:
        raise ConsumerError(f"{member.filename} is {member.file_size} bytes, more than the limit of {max_bytes}")
    try:
        with archive.open(member) as handle:
            data = handle.read(max_bytes + 1)
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as exc:
        raise ConsumerError(f"cannot extract {member.filename}: {exc}") from None
    if len(data) > max_bytes:
        raise ConsumerError(f"{member.filename} inflates past the limit of {max_bytes} bytes (a zip bomb?)")
    return data
