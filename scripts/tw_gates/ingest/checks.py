"""The checks of one artifact after its bytes: the full (slow) path for the
contract and the signature, which names every reason; then what both paths
share: the repository binding, the key binding and freshness."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import timedelta

from pydantic import ValidationError

from tw_gates.core.signing import SIGNATURE_FIELD, KeyRing, Signature, SignatureError, canonical_bytes
from tw_gates.core.units import format_duration
from tw_gates.ingest.fast import Judged, json_line
from tw_gates.ingest.reasons import MAX_DEPTH, Rejection, show
from tw_gates.ingest.strict_json import check_depth, parse_strict
from tw_gates.schemas.consumer import SUPPORTED_SCHEMA_VERSIONS, ConsumerArtifact, Provenance

MAX_FUTURE = timedelta(minutes=5)


@dataclass(frozen=True)
class KeyBinding:
    """Which key ids the registry binds to which consumer (lower-case repos).
    Tuples, not sets: a consumer has one or two ids, and a registry may list
    100,000 consumers."""

    keys_of: dict[str, tuple[str, ...]] = field(default_factory=dict)
    owners_of: dict[str, frozenset[str]] = field(default_factory=dict)


def _schema_rejection(exc: ValidationError) -> Rejection:
    errors = exc.errors(include_url=False, include_input=False)
    for error in errors:
        loc = error.get("loc", ())
        if len(loc) == 3 and loc[0] == "hits" and loc[2] == "path" and error.get("type") == "value_error":
            message = str(error.get("msg", "")).removeprefix("Value error, ")
            return Rejection("unsafe_path", f"hit {loc[1]} path: {message}")
    parts = [f"{'.'.join(str(p) for p in e.get('loc', ())) or 'document'}: {e.get('msg', 'invalid')}" for e in errors]
    more = f" (+{len(parts) - 3} more)" if len(parts) > 3 else ""
    return Rejection("schema_violation", show("; ".join(parts[:3]), 300) + more)


def check_contract(document: object) -> ConsumerArtifact:
    """The artifact the document is (without its signature), or Rejection."""
    if not isinstance(document, dict):
        raise Rejection("schema_violation", f"the document is a JSON {type(document).__name__}, not an object")
    version = document.get("schema_version")
    if version is None:
        raise Rejection("schema_violation", "schema_version is missing")
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        known = ", ".join(SUPPORTED_SCHEMA_VERSIONS)
        raise Rejection(
            "unknown_schema_version", f"schema_version {show(repr(version), 60)} is not supported ({known})"
        )
    # The signature member is judged by the key ring, which names the precise
    # problem (alg, kid, value); the model checks everything else.
    unsigned = {k: v for k, v in document.items() if k != SIGNATURE_FIELD}
    try:
        return ConsumerArtifact.model_validate(unsigned)
    except ValidationError as exc:
        raise _schema_rejection(exc) from None


def check_signature(document: dict, ring: KeyRing, require_hmac: bool) -> str | None:
    """The key id that verified the signature; None when unsigned and allowed."""
    if document.get(SIGNATURE_FIELD) is None and not require_hmac:
        return None
    try:
        kid = ring.verify(document)
    except SignatureError as exc:
        raise Rejection(exc.reason, show(exc.message, 200)) from None
    try:
        Signature.model_validate(document[SIGNATURE_FIELD])
    except ValidationError:
        raise Rejection("malformed_signature", "the signature member has fields other than alg, kid, value") from None
    return kid


def check_origin(repo: str, origin: Provenance | None) -> None:
    """An artifact speaks only for the repository it was collected from."""
    if origin is not None and repo.lower() != origin.repo.lower():
        raise Rejection(
            "repo_mismatch",
            f"the artifact claims {show(repo, 140)} but was collected from {origin.repo} "
            f"(run {origin.run_id}, {show(origin.workflow_path or '?', 100)}, {origin.event or '?'} "
            f"on {show(origin.head_branch or '?', 80)})",
        )


def judge_full(data: bytes, origin: Provenance | None, ring: KeyRing, require_hmac: bool, max_depth: int) -> Judged:
    """The full path: strict parse, contract, repository binding, signature."""
    document, text = parse_strict(data, max_depth=None)
    try:
        artifact = check_contract(document)
    except Rejection:
        # The schema nests 3 deep, so only a document the contract refuses
        # can be too deep: measured here, the verdict names the depth first,
        # and no valid artifact pays for the walk.
        check_depth(document, text, max_depth)
        raise
    check_origin(artifact.repo, origin)
    kid = check_signature(document, ring, require_hmac)  # type: ignore[arg-type]  # an object, checked above
    line = json_line(canonical_bytes(document))
    return Judged(artifact.repo, artifact.commit, artifact.generated_at, len(artifact.hits), kid, line)


def check_keys(judged: Judged, origin: Provenance | None, binding: KeyBinding | None) -> None:
    """Where the registry binds a consumer to key ids, only those sign for it;
    a key id bound to consumers signs for no one else."""
    if binding is None:
        return
    subject = (origin.repo if origin else judged.repo).lower()
    bound = binding.keys_of.get(subject)
    if bound:
        if judged.kid is None:
            raise Rejection(
                "missing_signature",
                f"unsigned, but the registry binds {show(judged.repo, 140)} to key id(s) {', '.join(sorted(bound))}",
            )
        if judged.kid not in bound:
            raise Rejection(
                "kid_not_allowed",
                f"signed with key id {show(judged.kid, 80)}, but the registry binds {show(judged.repo, 140)} "
                f"to {', '.join(sorted(bound))}",
            )
        return
    owners = binding.owners_of.get(judged.kid) if judged.kid else None
    if owners and subject not in owners:
        shown = ", ".join(sorted(owners)[:3]) + (f" (+{len(owners) - 3} more)" if len(owners) > 3 else "")
        raise Rejection(
            "kid_not_allowed",
            f"signed with key id {show(judged.kid or '', 80)}, which the registry binds to {shown}, "
            f"not {show(judged.repo, 140)}",
        )


def check_fresh(judged: Judged, now: float | None, max_age_s: float, max_future_s: float) -> None:
    moment = now if now is not None else time.time()
    age = moment - judged.generated_at.timestamp()
    if -max_future_s <= age <= max_age_s:
        return
    stamp = judged.generated_at.isoformat().replace("+00:00", "Z")
    if age > max_age_s:
        raise Rejection(
            "expired",
            f"generated_at {stamp} is {format_duration(age)} old, "
            f"older than the max age of {format_duration(max_age_s)}",
        )
    if -age > max_future_s:
        raise Rejection(
            "future_timestamp",
            f"generated_at {stamp} is {format_duration(-age)} in the future "
            f"(more than {format_duration(max_future_s)} ahead: replay or forged clock)",
        )


__all__ = ["MAX_DEPTH", "MAX_FUTURE", "KeyBinding", "check_fresh", "check_keys", "check_origin", "judge_full"]
