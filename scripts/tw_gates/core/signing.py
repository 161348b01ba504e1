"""Canonical JSON (RFC 8785 / JCS) and HMAC-SHA256 signatures with key ids,
each saying what kind of document it signs.

A signed document is a JSON object with a ``signature`` member. Every
document tw-gates signs itself (a phase unlock, a performance baseline, the
canary's state and rollback record, the evidence log's head) names its type
inside the MAC::

    "signature": {"alg": "HMAC-SHA256", "typ": "phase-unlock", "kid": ..., "value": <hex>}

``value`` is HMAC-SHA256 over the RFC 8785 canonical form of the document in
which ``signature`` holds only ``alg``, ``typ`` and ``kid``: the type and the
key id are signed too, so a signature made for one type never verifies as
another, whoever holds the key. Each type verifies against its own key ring
(``TW_PHASE_KEYS``, ``TW_BASELINE_KEYS``, ``TW_CANARY_KEYS``,
``TW_EVIDENCE_KEYS``).

The *consumer artifact* keeps the form consumers sign with their own code:
``{"alg", "kid", "value"}``, the MAC over the canonical form of the artifact
without ``signature``. That form has no ``typ``, and it verifies as a consumer
artifact only (against ``TW_HMAC_KEYS``): every other type refuses a
signature without its ``typ`` (``untyped_signature``).

Keys are at least 32 bytes (RFC 2104: at least the hash's output length).
Any independent JCS + HMAC-SHA256 implementation produces the same values:
the canonical form is the standard's, not ours."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import rfc8785
from pydantic import BaseModel, ConfigDict, Field

from tw_gates.core import json_text
from tw_gates.core.errors import TwGatesError, UsageError

ALG = "HMAC-SHA256"
SIGNATURE_FIELD = "signature"
MIN_KEY_BYTES = 32


@dataclass(frozen=True)
class DocType:
    """A kind of signed document: its ``typ``, its name in messages, and the
    prefix of its key variables (``<env>_KEY``, ``<env>_KEY_ID``, ``<env>_KEYS``)."""

    typ: str
    title: str
    env: str
    typed: bool = True  # False: the consumer artifact's form, without typ

    @property
    def signing_var(self) -> str:
        return f"{self.env}_KEY"

    @property
    def keys_var(self) -> str:
        return f"{self.env}_KEYS"


CONSUMER_ARTIFACT = DocType("consumer-artifact", "consumer artifact", "TW_HMAC", typed=False)
PHASE_UNLOCK = DocType("phase-unlock", "phase unlock artifact", "TW_PHASE")
PERFORMANCE_BASELINE = DocType("performance-baseline", "performance baseline", "TW_BASELINE")
CANARY_STATE = DocType("canary-state", "canary state", "TW_CANARY")
CANARY_ROLLBACK = DocType("canary-rollback", "canary rollback record", "TW_CANARY")
EVIDENCE_LOG = DocType("evidence-log", "evidence log head", "TW_EVIDENCE")
DOC_TYPES = {
    t.typ: t
    for t in (CONSUMER_ARTIFACT, PHASE_UNLOCK, PERFORMANCE_BASELINE, CANARY_STATE, CANARY_ROLLBACK, EVIDENCE_LOG)
}


class Signature(BaseModel):
    """The consumer artifact's signature (no typ)."""

    model_config = ConfigDict(extra="forbid")

    alg: Literal["HMAC-SHA256"]
    kid: str = Field(min_length=1, max_length=128)
    value: str = Field(pattern=r"^[0-9a-f]{64}$")


class TypedSignature(Signature):
    """The signature of every document tw-gates signs itself: its type is signed too."""

    typ: str = Field(min_length=1, max_length=64)


class SignatureError(TwGatesError):
    """Why a signature does not verify; ``reason`` is a stable short code
    (used in metrics labels and quarantine reason files)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


_JCS_INT_LIMIT = 2**53 - 1  # RFC 8785 numbers are IEEE doubles; rfc8785 refuses larger integers
# Values visited before handing over to rfc8785: bounds the walk (a cyclic
# structure would otherwise never end it).
_FAST_PATH_BUDGET = 1_000_000


def _canonical_bytes_fast(document: Any) -> bytes | None:
    """The RFC 8785 form through the C JSON encoder, for the documents where
    the two provably agree; None for anything else (rfc8785 handles it).

    They agree when the value holds only objects with ASCII keys (so code
    point order is UTF-16 order), arrays, strings without lone surrogates
    (both escape exactly ``"``, ``\\`` and U+0000-U+001F, with the same short
    forms and lowercase ``\\u00xx``), integers within the double-exact range,
    booleans and null. No floats: their shortest form differs. This makes
    verifying a consumer artifact several times faster (see the ingest bench)."""
    stack = [document]
    budget = _FAST_PATH_BUDGET
    while stack:
        budget -= 1
        if budget < 0 or not _fast_value(stack.pop(), stack):
            return None
    return json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _fast_value(value: Any, stack: list[Any]) -> bool:
    """Whether ``value`` itself is one the fast path handles; its members go on ``stack``."""
    kind = type(value)
    if kind is str:
        return value.isascii() or _encodes(value)
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str or not key.isascii():
                return False
            stack.append(item)
        return True
    if kind is list:
        stack.extend(value)
        return True
    if kind is int:
        return -_JCS_INT_LIMIT <= value <= _JCS_INT_LIMIT
    return value is None or kind is bool


def _encodes(text: str) -> bool:
    """No lone surrogate: the string is valid UTF-8 once encoded."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def canonical_bytes(document: Any) -> bytes:
    """RFC 8785 canonical UTF-8 bytes of a JSON value."""
    fast = _canonical_bytes_fast(document)
    if fast is not None:
        return fast
    try:
        return rfc8785.dumps(document)
    except rfc8785.CanonicalizationError as exc:
        raise UsageError(f"cannot canonicalise JSON: {exc}") from exc


def sha256_hex(data: bytes | str) -> str:
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def mac_hex(key: bytes, payload: bytes) -> str:
    return hmac.new(key, payload, hashlib.sha256).hexdigest()


def _unsigned(document: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k != SIGNATURE_FIELD}


def signed_bytes(document: Mapping[str, Any], doc_type: DocType, kid: str) -> bytes:
    """What the MAC covers: the canonical form of the document without its
    signature (the consumer form), or with a signature of alg, typ and kid."""
    unsigned = _unsigned(document)
    if not doc_type.typed:
        return canonical_bytes(unsigned)
    return canonical_bytes({**unsigned, SIGNATURE_FIELD: {"alg": ALG, "kid": kid, "typ": doc_type.typ}})


def _key_bytes(key: str | bytes, where: str) -> bytes:
    data = key.encode("utf-8") if isinstance(key, str) else key
    if len(data) < MIN_KEY_BYTES:
        raise UsageError(
            f"{where} is {len(data)} bytes; an HMAC-SHA256 key must be at least {MIN_KEY_BYTES} bytes "
            "(make one with: openssl rand -hex 32)"
        )
    return data


class KeyRing:
    """The keys of one document type: a signing key (one kid) and verification
    keys (several kids, for rotation). A ring signs and verifies its own
    types only (``doc_type``, and ``also``: the canary's ring signs its state
    and its rollback record).

    ``keys_source``/``key_source`` name where the keys came from in messages
    (default the type's variables, e.g. ``TW_PHASE_KEYS``/``TW_PHASE_KEY``)."""

    def __init__(
        self,
        verification_keys: Mapping[str, str | bytes] | None = None,
        *,
        signing_key: str | bytes | None = None,
        signing_kid: str | None = None,
        doc_type: DocType = CONSUMER_ARTIFACT,
        also: Iterable[DocType] = (),
        keys_source: str | None = None,
        key_source: str | None = None,
    ) -> None:
        self.doc_type = doc_type
        self.types = {doc_type.typ: doc_type, **{t.typ: t for t in also}}
        keys_source = keys_source or doc_type.keys_var
        self.key_source = key_source or doc_type.signing_var
        self._verify: dict[str, bytes] = {
            kid: _key_bytes(key, f"{keys_source}: key {kid!r}") for kid, key in (verification_keys or {}).items() if key
        }
        self._signing_key = _key_bytes(signing_key, f"{self.key_source}: the key") if signing_key else None
        self._signing_kid = signing_kid or "default"
        if self._signing_key and self._signing_kid not in self._verify:
            # A key that signs also verifies what it signed.
            self._verify[self._signing_kid] = self._signing_key

    @property
    def can_sign(self) -> bool:
        return bool(self._signing_key)

    @property
    def signing_kid(self) -> str:
        return self._signing_kid

    @property
    def kids(self) -> list[str]:
        return sorted(self._verify)

    def secrets(self) -> list[bytes]:
        """Every key of the ring (to check that two rings share none)."""
        return list(self._verify.values())

    def _type(self, doc_type: DocType | None) -> DocType:
        wanted = doc_type or self.doc_type
        if wanted.typ not in self.types:
            raise UsageError(f"the {self.doc_type.title} keys do not sign or verify a {wanted.title}")
        return wanted

    def sign(self, document: Mapping[str, Any], doc_type: DocType | None = None) -> dict[str, Any]:
        """Return a copy of ``document`` with a fresh ``signature`` member."""
        kind = self._type(doc_type)
        if not self._signing_key:
            raise UsageError(f"no signing key: set {self.key_source} (and {self.key_source}_ID)")
        kid = self._signing_kid
        value = mac_hex(self._signing_key, signed_bytes(document, kind, kid))
        signature = {"alg": ALG, "typ": kind.typ, "kid": kid} if kind.typed else {"alg": ALG, "kid": kid}
        return {**_unsigned(document), SIGNATURE_FIELD: {**signature, "value": value}}

    def mac_bytes(self, payload: bytes, doc_type: DocType | None = None) -> tuple[str, str]:
        """(kid, HMAC-SHA256 hex) of raw bytes, domain-separated by the type: for records
        whose exact bytes are what is signed (an evidence log line)."""
        kind = self._type(doc_type)
        if not self._signing_key:
            raise UsageError(f"no signing key: set {self.key_source} (and {self.key_source}_ID)")
        return self._signing_kid, mac_hex(self._signing_key, _typed_bytes(kind, payload))

    def signer(self, doc_type: DocType | None = None, *, raw_bytes: bool = False) -> tuple[str, Callable[[bytes], str]]:
        """(kid, a function from message to MAC hex) for a hot loop: the MAC of ``sign``
        over a canonical JSON payload (``raw_bytes=False``), or of ``mac_bytes``."""
        kind = self._type(doc_type)
        key = self._signing_key
        if not key:
            raise UsageError(f"no signing key: set {self.key_source} (and {self.key_source}_ID)")
        prefix = _typed_bytes(kind, b"") if raw_bytes else b""

        def mac(payload: bytes) -> str:
            return hmac.digest(key, prefix + payload, "sha256").hex()

        return self._signing_kid, mac

    def verify_bytes(self, payload: bytes, kid: str, value: str, doc_type: DocType | None = None) -> str:
        """Check a ``mac_bytes`` value; SignatureError unknown_kid or bad_signature."""
        kind = self._type(doc_type)
        if kid not in self._verify:
            known = ", ".join(self.kids) or "none configured"
            raise SignatureError("unknown_kid", f"unknown key id {kid!r} (known: {known})")
        if not hmac.compare_digest(mac_hex(self._verify[kid], _typed_bytes(kind, payload)), value):
            raise SignatureError("bad_signature", f"MAC does not match (key id {kid!r})")
        return kid

    def verify(self, document: Mapping[str, Any], doc_type: DocType | None = None) -> str:
        """Verify ``document``'s signature as a ``doc_type`` (default the
        ring's type); return the kid that verified it.

        Raises SignatureError with reason missing_signature, malformed_signature,
        unsupported_alg, untyped_signature, wrong_type, unknown_kid or bad_signature."""
        kind = self._type(doc_type)
        raw = document.get(SIGNATURE_FIELD)
        if raw is None:
            raise SignatureError("missing_signature", "no signature")
        if not isinstance(raw, dict):
            raise SignatureError("malformed_signature", "signature is not an object")
        alg = raw.get("alg")
        if alg != ALG:
            raise SignatureError("unsupported_alg", f"unsupported signature alg {alg!r} (only {ALG})")
        _check_type(raw, kind)
        kid = raw.get("kid")
        if not isinstance(kid, str) or kid not in self._verify:
            known = ", ".join(self.kids) or "none configured"
            raise SignatureError("unknown_kid", f"unknown key id {kid!r} (known: {known})")
        value = raw.get("value")
        if not isinstance(value, str) or not _is_hex64(value):
            raise SignatureError("malformed_signature", "signature value is not 64 lowercase hex digits")
        expected = mac_hex(self._verify[kid], signed_bytes(document, kind, kid))
        if not hmac.compare_digest(expected, value):
            raise SignatureError("bad_signature", f"signature does not match (key id {kid!r})")
        return kid


def _typed_bytes(kind: DocType, payload: bytes) -> bytes:
    return kind.typ.encode("ascii") + b"\0" + payload


def _check_type(raw: Mapping[str, Any], kind: DocType) -> None:
    """The signature's typ is the one expected (none, for the consumer form)."""
    typ = raw.get("typ")
    if not kind.typed:
        if typ is not None:
            raise SignatureError("wrong_type", f"the signature is for a {_title(typ)}, not a {kind.title}")
        return
    if typ is None:
        raise SignatureError(
            "untyped_signature",
            f"the signature names no document type (a consumer artifact's form, or signed before "
            f"tw-gates signed the type): it never verifies a {kind.title}",
        )
    if typ != kind.typ:
        raise SignatureError("wrong_type", f"the signature is for a {_title(typ)}, not a {kind.title}")
    extra = sorted(set(raw) - {"alg", "typ", "kid", "value"})
    if extra:
        raise SignatureError("malformed_signature", f"the signature has unsigned members: {', '.join(extra)}")


def _title(typ: object) -> str:
    known = DOC_TYPES.get(typ) if isinstance(typ, str) else None
    return known.title if known else f"document of type {str(typ)[:40]!r}"


def _is_hex64(value: str) -> bool:
    return len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def parse_keys_json(text: str | None, *, source: str = "TW_HMAC_KEYS") -> dict[str, str]:
    """``{"kid": "secret", ...}`` from an environment variable."""
    if not text or not text.strip():
        return {}
    try:
        parsed = json_text.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{source} is not valid JSON: {exc.msg}") from None
    except ValueError as exc:
        raise UsageError(f"{source} is not valid JSON: {exc}") from None
    if not isinstance(parsed, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and k and v for k, v in parsed.items()
    ):
        raise UsageError(f'{source} must be a JSON object of key id to secret, e.g. {{"k2026": "..."}}')
    return parsed
