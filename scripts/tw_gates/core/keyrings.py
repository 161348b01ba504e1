"""The key rings of the documents the central repository signs, one per type,
from the environment (or flags):

| document | signs with | verifies with |
| --- | --- | --- |
| phase unlock artifact | ``TW_PHASE_KEY``, ``TW_PHASE_KEY_ID`` | ``TW_PHASE_KEYS`` (+ the signing key) |
| performance baseline | ``TW_BASELINE_KEY``, ``TW_BASELINE_KEY_ID`` | ``TW_BASELINE_KEYS`` (+ the signing key) |
| canary state, rollback record | ``TW_CANARY_KEY``, ``TW_CANARY_KEY_ID`` | ``TW_CANARY_KEYS`` (+ the signing key) |
| evidence log head | ``TW_EVIDENCE_KEY``, ``TW_EVIDENCE_KEY_ID`` | ``TW_EVIDENCE_KEYS`` (+ the signing key) |

The consumers' keys (``TW_HMAC_KEY*``, ``core.settings.SigningSettings``)
verify consumer artifacts only. A central ring that holds a secret the
consumers' ring also holds is refused: whoever holds a consumer key could
then sign that central document (the type inside the MAC separates documents
signed by the same key, not the people who hold it)."""

from __future__ import annotations

import os
from collections.abc import Iterable

from pydantic import Field, SecretStr

from tw_gates.core import json_text
from tw_gates.core.errors import UsageError
from tw_gates.core.settings import EnvSettings, env, register_secrets
from tw_gates.core.signing import (
    CANARY_ROLLBACK,
    CANARY_STATE,
    CONSUMER_ARTIFACT,
    EVIDENCE_LOG,
    PERFORMANCE_BASELINE,
    PHASE_UNLOCK,
    DocType,
    KeyRing,
    parse_keys_json,
)


def central_ring(
    doc_type: DocType,
    keys: SecretStr | None,
    key: SecretStr | None,
    kid: str,
    *,
    also: Iterable[DocType] = (),
) -> KeyRing:
    """The ring of one central document type; its secrets are registered for
    redaction (and masked on a runner)."""
    verification = parse_keys_json(keys.get_secret_value() if keys else None, source=doc_type.keys_var)
    signing = key.get_secret_value() if key else None
    register_secrets(*verification.values(), *([signing] if signing else []))
    ring = KeyRing(verification, signing_key=signing, signing_kid=kid, doc_type=doc_type, also=also)
    _refuse_consumer_secrets(ring)
    return ring


def _consumer_secrets() -> set[bytes]:
    """The consumers' keys in this environment (read leniently: judging them is the ingest gate's job)."""
    found = set()
    single = os.environ.get(CONSUMER_ARTIFACT.signing_var)
    if single:
        found.add(single.encode("utf-8"))
    try:
        ring = json_text.loads(os.environ.get(CONSUMER_ARTIFACT.keys_var) or "{}")
    except ValueError:
        ring = {}
    if isinstance(ring, dict):
        found |= {v.encode("utf-8") for v in ring.values() if isinstance(v, str) and v}
    return found


def _refuse_consumer_secrets(ring: KeyRing) -> None:
    shared = set(ring.secrets()) & _consumer_secrets()
    if shared:
        kind = ring.doc_type
        raise UsageError(
            f"{kind.keys_var}/{kind.signing_var} holds a key that is also a consumer key "
            f"({CONSUMER_ARTIFACT.keys_var}/{CONSUMER_ARTIFACT.signing_var}): a consumer could sign a "
            f"{kind.title}; give the {kind.title} its own key"
        )


class PhaseKeys(EnvSettings):
    phase_key: SecretStr | None = Field(None, validation_alias=env("TW_PHASE_KEY", "phase_key"))
    phase_key_id: str = Field("default", validation_alias=env("TW_PHASE_KEY_ID", "phase_key_id"))
    phase_keys: SecretStr | None = Field(None, validation_alias=env("TW_PHASE_KEYS", "phase_keys"))

    def phase_ring(self) -> KeyRing:
        return central_ring(PHASE_UNLOCK, self.phase_keys, self.phase_key, self.phase_key_id)


class BaselineKeys(EnvSettings):
    baseline_key: SecretStr | None = Field(None, validation_alias=env("TW_BASELINE_KEY", "baseline_key"))
    baseline_key_id: str = Field("default", validation_alias=env("TW_BASELINE_KEY_ID", "baseline_key_id"))
    baseline_keys: SecretStr | None = Field(None, validation_alias=env("TW_BASELINE_KEYS", "baseline_keys"))

    def baseline_ring(self) -> KeyRing:
        return central_ring(PERFORMANCE_BASELINE, self.baseline_keys, self.baseline_key, self.baseline_key_id)


class CanaryKeys(EnvSettings):
    canary_key: SecretStr | None = Field(None, validation_alias=env("TW_CANARY_KEY", "canary_key"))
    canary_key_id: str = Field("default", validation_alias=env("TW_CANARY_KEY_ID", "canary_key_id"))
    canary_keys: SecretStr | None = Field(None, validation_alias=env("TW_CANARY_KEYS", "canary_keys"))

    def canary_ring(self) -> KeyRing:
        return central_ring(
            CANARY_STATE, self.canary_keys, self.canary_key, self.canary_key_id, also=(CANARY_ROLLBACK,)
        )


class EvidenceKeys(EnvSettings):
    evidence_key: SecretStr | None = Field(None, validation_alias=env("TW_EVIDENCE_KEY", "evidence_key"))
    evidence_key_id: str = Field("default", validation_alias=env("TW_EVIDENCE_KEY_ID", "evidence_key_id"))
    evidence_keys: SecretStr | None = Field(None, validation_alias=env("TW_EVIDENCE_KEYS", "evidence_keys"))

    def evidence_ring(self) -> KeyRing:
        return central_ring(EVIDENCE_LOG, self.evidence_keys, self.evidence_key, self.evidence_key_id)
