"""Judging one consumer artifact: read it (bounded), parse it strictly,
check the contract, the signature and freshness; accept it as one JSON
Lines line, or reject it with a stable reason and quarantine it."""

from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import NamedTuple

from pydantic import ValidationError

from tw_gates.core.fsio import FileTooLarge, read_bytes_limited
from tw_gates.core.signing import SIGNATURE_FIELD, KeyRing, Signature, SignatureError
from tw_gates.core.units import format_duration
from tw_gates.ingest.quarantine import quarantine
from tw_gates.ingest.reasons import MAX_DEPTH, Rejection, show
from tw_gates.ingest.strict_json import check_depth, one_line, parse_strict
from tw_gates.schemas.consumer import SUPPORTED_SCHEMA_VERSIONS, ConsumerArtifact

MAX_FUTURE = timedelta(minutes=5)


@dataclass(frozen=True)
class Policy:
    """What a worker needs to judge an artifact (picklable)."""

    ring: KeyRing
    require_hmac: bool
    max_age_s: float
    max_bytes: int
    quarantine_dir: str | None
    max_depth: int = MAX_DEPTH
    max_future_s: float = MAX_FUTURE.total_seconds()
    # Fixed "now" (epoch seconds) for tests; None: the clock at each check.
    now: float | None = None


class Verdict(NamedTuple):
    path: str
    reason: str | None  # None: accepted
    message: str
    # The accepted artifact as one JSON Lines line, UTF-8 with its newline:
    # encoded once in the worker, written as is by the parent.
    line: bytes | None = None
    repo: str | None = None
    kid: str | None = None
    hits: int = 0
    quarantined: str | None = None

    @property
    def accepted(self) -> bool:
        return self.reason is None


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


def check_document(document: object, policy: Policy) -> tuple[ConsumerArtifact, str | None]:
    """Contract, signature and freshness checks of a parsed artifact:
    (the artifact, the key id that verified it) or Rejection."""
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
    # The signature member is judged by the key ring below, which names the
    # precise problem (alg, kid, value); the model checks everything else.
    unsigned = {k: v for k, v in document.items() if k != SIGNATURE_FIELD}
    try:
        artifact = ConsumerArtifact.model_validate(unsigned)
    except ValidationError as exc:
        raise _schema_rejection(exc) from None

    kid = None
    if document.get(SIGNATURE_FIELD) is not None or policy.require_hmac:
        try:
            kid = policy.ring.verify(document)
        except SignatureError as exc:
            raise Rejection(exc.reason, show(exc.message, 200)) from None
        try:
            Signature.model_validate(document[SIGNATURE_FIELD])
        except ValidationError:
            raise Rejection(
                "malformed_signature", "the signature member has fields other than alg, kid, value"
            ) from None

    now = policy.now if policy.now is not None else time.time()
    age = now - artifact.generated_at.timestamp()
    stamp = artifact.generated_at.isoformat().replace("+00:00", "Z")
    if age > policy.max_age_s:
        raise Rejection(
            "expired",
            f"generated_at {stamp} is {format_duration(age)} old, "
            f"older than the max age of {format_duration(policy.max_age_s)}",
        )
    if -age > policy.max_future_s:
        raise Rejection(
            "future_timestamp",
            f"generated_at {stamp} is {format_duration(-age)} in the future "
            f"(more than {format_duration(policy.max_future_s)} ahead: replay or forged clock)",
        )
    return artifact, kid


def _read(path: str, max_bytes: int) -> bytes:
    try:
        info = os.stat(path)
    except OSError as exc:
        raise Rejection("unreadable", f"cannot stat: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise Rejection("not_a_regular_file", "not a regular file")
    try:
        return read_bytes_limited(path, max_bytes)
    except FileTooLarge as exc:
        raise Rejection("too_large", f"{exc.size} bytes, more than the limit of {max_bytes}") from None
    except OSError as exc:
        raise Rejection("unreadable", f"cannot read: {exc.strerror or exc}") from None


def judge(path: str, policy: Policy) -> Verdict:
    """Accept or reject one artifact; a rejected one is quarantined."""
    data: bytes | None = None
    try:
        data = _read(path, policy.max_bytes)
        document, text = parse_strict(data, max_depth=None)
        try:
            artifact, kid = check_document(document, policy)
        except Rejection:
            # The schema nests 3 deep, so only a document the contract refuses
            # can be too deep: measured here, the verdict names the depth
            # first, and no valid artifact pays for the walk.
            check_depth(document, text, policy.max_depth)
            raise
    except Rejection as rejection:
        return _reject(path, rejection, data, policy)
    except Exception as exc:  # fail closed: a bug never lets an artifact through
        return _reject(path, Rejection("internal_error", f"{type(exc).__name__}: {show(str(exc), 200)}"), data, policy)
    signed = f", key id {kid}" if kid else ", unsigned"
    return Verdict(
        path=path,
        reason=None,
        message=f"{artifact.repo}@{artifact.commit[:12]}, {len(artifact.hits)} hits{signed}",
        line=one_line(text).encode("utf-8") + b"\n",
        repo=artifact.repo,
        kid=kid,
        hits=len(artifact.hits),
    )


def _reject(path: str, rejection: Rejection, data: bytes | None, policy: Policy) -> Verdict:
    quarantined = None
    if policy.quarantine_dir:
        try:
            quarantined = str(
                quarantine(path, rejection, data, Path(policy.quarantine_dir), head_bytes=policy.max_bytes)
            )
        except OSError as exc:
            rejection = Rejection(rejection.reason, f"{rejection.message} (NOT quarantined: {exc.strerror or exc})")
    return Verdict(path=path, reason=rejection.reason, message=rejection.message, quarantined=quarantined)
