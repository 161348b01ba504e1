"""The hidden marker that makes an issue tw-gates' own, and the fingerprint of what it says.

    <!-- tw-gates:v1 kind=<kind> key=<key> fingerprint=<sha256> -->

Only the first line of a body is read as a marker: untrusted text quoted further
down cannot forge one."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tw_gates.core.signing import canonical_bytes, sha256_hex

MARKER_VERSION = "v1"
_KIND = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
_KEY = re.compile(r"^[A-Za-z0-9._/:@+=-]{1,200}$")
_FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")
_MARKER = re.compile(
    r"^<!-- tw-gates:(?P<version>v\d+) kind=(?P<kind>[a-z][a-z0-9-]{0,31}) key=(?P<key>\S{1,200}) "
    r"fingerprint=(?P<fingerprint>[0-9a-f]{64}) -->$"
)


@dataclass(frozen=True)
class Marker:
    kind: str
    key: str
    fingerprint: str

    def __post_init__(self) -> None:
        if not _KIND.match(self.kind):
            raise ValueError(f"bad issue kind {self.kind!r}")
        if not _KEY.match(self.key):
            raise ValueError(f"bad issue key {self.key!r} (letters, digits and ._/:@+=- only)")
        if not _FINGERPRINT.match(self.fingerprint):
            raise ValueError("fingerprint must be 64 lowercase hex digits")

    def render(self) -> str:
        return f"<!-- tw-gates:{MARKER_VERSION} kind={self.kind} key={self.key} fingerprint={self.fingerprint} -->"

    @classmethod
    def parse(cls, body: str | None) -> Marker | None:
        """The marker on the first line of ``body``; anywhere else it is not ours
        (untrusted text quoted further down cannot forge one)."""
        first = (body or "").lstrip("\ufeff").split("\n", 1)[0].strip()
        match = _MARKER.match(first)
        if not match or match.group("version") != MARKER_VERSION:
            return None
        try:
            return cls(match.group("kind"), match.group("key"), match.group("fingerprint"))
        except ValueError:
            return None


def fingerprint(items: Any) -> str:
    """sha256 of the RFC 8785 canonical JSON of ``items``; a list is sorted first
    (by its own canonical form) so the order findings arrive in does not matter."""
    if isinstance(items, (list, tuple, set, frozenset)):
        items = sorted(items, key=lambda item: canonical_bytes(item))
    return sha256_hex(canonical_bytes(items))
