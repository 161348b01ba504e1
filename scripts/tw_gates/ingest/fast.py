"""The ingest gate's fast path: accept a well-formed, validly signed
artifact from its bytes in one pass, or step aside.

It never rejects. Anything it is not sure of (a ``\\u`` escape, a duplicate
key, a schema or path problem, a signature that does not verify) returns
None, and the full path (``strict_json`` + the pydantic model + the key
ring) judges the artifact and names the reason. So the reasons stay the full
path's, and the fast path can only be wrong by accepting: it accepts exactly
what the full path accepts, with the same line, which the tests check by
differential fuzzing.

How it saves the work: msgspec decodes and validates the bytes into typed
structs in one pass (C, no dict tree), and encodes them back with sorted
members, which for this schema is the RFC 8785 form (strings escaped as
RFC 8785 escapes them, no floats, integers far inside 2**53): the MAC is
computed over that, with no second walk. Duplicate keys, which a decoder
resolves silently, are caught by counting: without ``\\u`` escapes every
``:`` in the text is a member separator or a ``:`` inside a string value, so
the text holds exactly as many as the canonical form plus the signature's,
and one more for every member a duplicate hid.

It uses the key ring's own keys, and only after proving at start-up that it
computes the very MAC the ring computes (``FastPath.from_ring``): if the
signing format ever changes, the probe fails and the fast path stands down."""

from __future__ import annotations

import hmac
import secrets
from datetime import datetime, timezone
from typing import Annotated, Literal, NamedTuple

import msgspec
from pydantic import AwareDatetime, TypeAdapter, ValidationError

from tw_gates.core.signing import KeyRing
from tw_gates.schemas.consumer import REPO_PATTERN, check_relative_path

_M = msgspec.Meta
# Python's re, used by msgspec: \A...\Z, because "$" would also match before a final newline.
_REPO = REPO_PATTERN.replace("^", r"\A", 1).removesuffix("$") + r"\Z"
_MAX_HITS = 100_000
_ALG = "HMAC-SHA256"


class _Signature(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    alg: Literal["HMAC-SHA256"]
    kid: Annotated[str, _M(min_length=1, max_length=128)]
    value: Annotated[str, _M(pattern=r"\A[0-9a-f]{64}\Z")]


class _Hit(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    path: Annotated[str, _M(min_length=1, max_length=4096)]
    line: Annotated[int, _M(ge=1, le=10_000_000)]
    pattern: Annotated[str, _M(min_length=1, max_length=200)]


class _Artifact(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    schema_version: Literal["1.0"]
    repo: Annotated[str, _M(pattern=_REPO)]
    commit: Annotated[str, _M(pattern=r"\A[0-9a-f]{40}\Z")]
    branch: Annotated[str, _M(min_length=1, max_length=255)]
    generated_at: str
    tool_version: Annotated[str, _M(min_length=1, max_length=64)]
    # UNSET: absent (and so absent from the canonical form); [] and null stay what they were.
    hits: list[_Hit] | msgspec.UnsetType = msgspec.UNSET
    signature: _Signature | msgspec.UnsetType | None = msgspec.UNSET


_DECODER = msgspec.json.Decoder(_Artifact)
_ENCODER = msgspec.json.Encoder(order="sorted")
_DATETIME: TypeAdapter[datetime] = TypeAdapter(AwareDatetime)
_UTC = timezone.utc.utcoffset(None)
_LINE_BREAKS = ((b"\xc2\x85", b"\\u0085"), (b"\xe2\x80\xa8", b"\\u2028"), (b"\xe2\x80\xa9", b"\\u2029"))


class Judged(NamedTuple):
    """An artifact whose contract and signature passed (either path)."""

    repo: str
    commit: str
    generated_at: datetime
    hits: int
    kid: str | None
    line: bytes  # the RFC 8785 form of the artifact, signature included, as one JSON Lines line


def json_line(canonical: bytes) -> bytes:
    """The RFC 8785 form as one JSON Lines line: it has no raw CR or LF
    (escaped in strings, no whitespace between tokens); NEL and U+2028/9,
    which RFC 8785 leaves raw inside strings, are written as their escapes
    (the same value) so a reader splitting on them (str.splitlines) stays safe."""
    if not canonical.isascii():
        for raw, escaped in _LINE_BREAKS:
            canonical = canonical.replace(raw, escaped)
    return canonical


def _paths_are_safe(hits: list[_Hit], escapes: bool) -> bool:
    """check_relative_path for every hit, with a few scans of the joined paths
    in the common case. The decoder refuses raw control characters, so
    without a backslash anywhere in the bytes (``escapes`` false) no string
    holds a control character or a backslash; joined with "\\n", the paths
    then show every start, every ".." and every ":" to one scan each (measured:
    cheaper than scanning the canonical form, where every "." is a candidate)."""
    if not escapes:
        joined = "\n".join([hit.path for hit in hits])
        if not ("~" in joined or ":" in joined or ".." in joined or "\n/" in joined or joined.startswith("/")):
            return True
    try:
        for hit in hits:
            check_relative_path(hit.path)
    except ValueError:
        return False
    return True


def _utc_time(text: str) -> datetime | None:
    try:
        value = _DATETIME.validate_python(text)
    except ValidationError:
        return None
    return value if value.utcoffset() == _UTC else None


def _without_signature(canonical: bytes, signature: _Signature | msgspec.UnsetType | None) -> bytes:
    """The canonical form without the ``signature`` member: what it signs.

    Members are sorted, so the member follows ``schema_version`` (required),
    behind a comma, and only ``tool_version`` follows it; a string cannot hold
    ``,"signature":`` (its quote would be escaped), so the one found is the
    member."""
    if signature is msgspec.UNSET:
        return canonical
    start = canonical.rfind(b',"signature":')  # from the end: only tool_version follows it
    end = start + len(b',"signature":') + len(_ENCODER.encode(signature))
    return canonical[:start] + canonical[end:]


class FastPath:
    """Accepts from bytes what the full path would accept; None otherwise."""

    def __init__(self, keys: dict[str, bytes]) -> None:
        self._keys = keys

    @classmethod
    def from_ring(cls, ring: KeyRing) -> FastPath | None:
        """The fast path for ``ring``, or None when it cannot prove it agrees
        with the ring (its keys are not readable as expected, or a probe
        signed by a ring of the same kind does not verify here, or a tampered
        one does)."""
        keys = cls._keys_of(ring)
        if keys is None:
            return None
        try:
            secret = secrets.token_hex(32)
            probe_ring = KeyRing({"probe": secret}, signing_key=secret, signing_kid="probe")
            probe_keys = cls._keys_of(probe_ring)
            document = probe_ring.sign(_PROBE)
            tampered = {**document, "branch": "other"}
        except Exception:  # a changed signing API: stand aside
            return None
        if probe_keys is None:
            return None
        probe = cls(probe_keys)
        good = probe.judge(msgspec.json.encode(document), require_signature=True)
        bad = probe.judge(msgspec.json.encode(tampered), require_signature=True)
        if good is None or good.kid != "probe" or bad is not None:
            return None
        return cls(keys)

    @staticmethod
    def _keys_of(ring: KeyRing) -> dict[str, bytes] | None:
        keys = getattr(ring, "_verify", None)
        if not isinstance(keys, dict) or sorted(keys) != ring.kids:
            return None
        if not all(isinstance(k, str) and isinstance(v, bytes) for k, v in keys.items()):
            return None
        return dict(keys)

    def judge(self, data: bytes, *, require_signature: bool) -> Judged | None:
        """The artifact's contract and signature from its bytes, or None."""
        escapes = b"\\" in data  # one memchr; only then the slower two-byte search
        if escapes and b"\\u" in data:
            return None
        try:
            artifact = _DECODER.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None
        hits = [] if artifact.hits is msgspec.UNSET else artifact.hits
        generated_at = _utc_time(artifact.generated_at)
        if len(hits) > _MAX_HITS or generated_at is None:
            return None
        # The RFC 8785 form of the whole document, signature included: the line.
        canonical = _ENCODER.encode(artifact)
        colons = canonical.count(b":")
        if data.count(b":") != colons:
            return None  # a duplicate key (or something else to look at closely)
        if not _paths_are_safe(hits, escapes):
            return None
        signature = artifact.signature
        kid = self._verify(signature, _without_signature(canonical, signature), require_signature)
        if kid is False:
            return None
        return Judged(artifact.repo, artifact.commit, generated_at, len(hits), kid, json_line(canonical))

    def _verify(
        self, signature: _Signature | msgspec.UnsetType | None, payload: bytes, required: bool
    ) -> str | Literal[False] | None:
        """The kid that verified; None for an unsigned artifact that may be
        unsigned; False: let the full path judge."""
        if signature is None or signature is msgspec.UNSET:
            return False if required else None
        key = self._keys.get(signature.kid)
        if key is None or signature.alg != _ALG:
            return False
        expected = hmac.digest(key, payload, "sha256").hex()  # one-shot, in C
        return signature.kid if hmac.compare_digest(expected, signature.value) else False


# A probe artifact for the start-up check; the ":" in the path exercises the colon count.
_PROBE = {
    "schema_version": "1.0",
    "repo": "probe-org/probe",
    "commit": "0" * 40,
    "branch": "main",
    "generated_at": "2026-01-01T00:00:00Z",
    "tool_version": "0",
    "hits": [{"path": "a/b:c.py", "line": 1, "pattern": "p"}],
}
