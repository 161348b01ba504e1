"""Canonical JSON (RFC 8785 / JCS) and HMAC-SHA256 signatures with key ids.

A signed document is a JSON object with a ``signature`` member
``{"alg": "HMAC-SHA256", "kid": ..., "value": <hex>}``; the MAC covers the
RFC 8785 canonical form of the object *without* that member. Any independent
JCS + HMAC-SHA256 implementation produces the same value: the canonical form
is the standard's, not ours."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any, Literal

import rfc8785
from pydantic import BaseModel, ConfigDict, Field

from tw_gates.core.errors import TwGatesError, UsageError

ALG = "HMAC-SHA256"
SIGNATURE_FIELD = "signature"


class Signature(BaseModel):
    model_config = ConfigDict(extra="forbid")

    alg: Literal["HMAC-SHA256"]
    kid: str = Field(min_length=1, max_length=128)
    value: str = Field(pattern=r"^[0-9a-f]{64}$")


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


class KeyRing:
    """Signing key (one kid) and verification keys (several kids, for rotation)."""

    def __init__(
        self,
        verification_keys: Mapping[str, str | bytes] | None = None,
        *,
        signing_key: str | bytes | None = None,
        signing_kid: str | None = None,
    ) -> None:
        self._verify: dict[str, bytes] = {
            kid: key.encode("utf-8") if isinstance(key, str) else key
            for kid, key in (verification_keys or {}).items()
            if key
        }
        self._signing_key = signing_key.encode("utf-8") if isinstance(signing_key, str) else signing_key
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

    def sign(self, document: Mapping[str, Any]) -> dict[str, Any]:
        """Return a copy of ``document`` with a fresh ``signature`` member."""
        if not self._signing_key:
            raise UsageError("no signing key: set TW_HMAC_KEY (and TW_HMAC_KEY_ID)")
        unsigned = _unsigned(document)
        value = mac_hex(self._signing_key, canonical_bytes(unsigned))
        return {**unsigned, SIGNATURE_FIELD: {"alg": ALG, "kid": self._signing_kid, "value": value}}

    def verify(self, document: Mapping[str, Any]) -> str:
        """Verify ``document``'s signature; return the kid that verified it.

        Raises SignatureError with reason missing_signature, malformed_signature,
        unsupported_alg, unknown_kid or bad_signature."""
        raw = document.get(SIGNATURE_FIELD)
        if raw is None:
            raise SignatureError("missing_signature", "no signature")
        if not isinstance(raw, dict):
            raise SignatureError("malformed_signature", "signature is not an object")
        alg = raw.get("alg")
        if alg != ALG:
            raise SignatureError("unsupported_alg", f"unsupported signature alg {alg!r} (only {ALG})")
        kid = raw.get("kid")
        if not isinstance(kid, str) or kid not in self._verify:
            known = ", ".join(self.kids) or "none configured"
            raise SignatureError("unknown_kid", f"unknown key id {kid!r} (known: {known})")
        value = raw.get("value")
        if not isinstance(value, str) or not _is_hex64(value):
            raise SignatureError("malformed_signature", "signature value is not 64 lowercase hex digits")
        expected = mac_hex(self._verify[kid], canonical_bytes(_unsigned(document)))
        if not hmac.compare_digest(expected, value):
            raise SignatureError("bad_signature", f"signature does not match (key id {kid!r})")
        return kid


def _is_hex64(value: str) -> bool:
    return len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def parse_keys_json(text: str | None, *, source: str = "TW_HMAC_KEYS") -> dict[str, str]:
    """``{"kid": "secret", ...}`` from an environment variable."""
    if not text or not text.strip():
        return {}
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{source} is not valid JSON: {exc.msg}") from None
    except ValueError as exc:
        raise UsageError(f"{source} is not valid JSON: {exc}") from None
    if not isinstance(parsed, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and k and v for k, v in parsed.items()
    ):
        raise UsageError(f'{source} must be a JSON object of key id to secret, e.g. {{"k2026": "..."}}')
    return parsed
