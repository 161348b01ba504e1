"""Judging one consumer artifact, cheapest and most hostile checks first:

1. the file, read without following links (``safe_read``), and its
   provenance from collect (``provenance``);
2. the bytes and the contract: the fast path (``fast``) when it is sure,
   else the full path (``strict_json`` + the model + the key ring, in
   ``checks``), which names every reason;
3. identity: the repository it was collected from, the key ids the registry
   binds to it; then freshness.

Accepted: one JSON Lines line (with ``provenance`` when collected).
Rejected: a stable reason, and the quarantine."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from tw_gates.core.signing import KeyRing
from tw_gates.ingest.checks import MAX_FUTURE, KeyBinding, check_fresh, check_keys, check_origin, judge_full
from tw_gates.ingest.fast import FastPath, Judged
from tw_gates.ingest.provenance import provenance_json, read_provenance
from tw_gates.ingest.quarantine import quarantine
from tw_gates.ingest.reasons import MAX_DEPTH, Rejection, show
from tw_gates.ingest.safe_read import NotRegular, TooLarge, read_no_follow
from tw_gates.schemas.consumer import ProvenanceSidecar


@dataclass(frozen=True)
class Policy:
    """What a worker needs to judge an artifact (inherited by forked workers)."""

    ring: KeyRing
    require_hmac: bool
    max_age_s: float
    max_bytes: int
    quarantine_dir: str | None
    max_depth: int = MAX_DEPTH
    max_future_s: float = MAX_FUTURE.total_seconds()
    # Fixed "now" (epoch seconds) for tests; None: the clock at each check.
    now: float | None = None
    require_provenance: bool = False
    # The registry's key ids per consumer; None: no registry, keys not bound.
    binding: KeyBinding | None = None
    # None: every artifact takes the full path.
    fast: FastPath | None = None


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
    # (repo, commit, generated_at): the parent accepts each once.
    identity: tuple[str, str, float] | None = None
    # The repository it was collected from (None: given without provenance).
    source: str | None = None

    @property
    def accepted(self) -> bool:
        return self.reason is None


def read_artifact(path: str, max_bytes: int) -> bytes:
    try:
        return read_no_follow(path, max_bytes)
    except NotRegular as exc:
        raise Rejection("not_a_regular_file", f"not a regular file: {exc}") from None
    except TooLarge as exc:
        raise Rejection("too_large", f"{exc}, more than the limit of {max_bytes}", size=exc.size) from None
    except FileNotFoundError:
        raise Rejection("unreadable", "cannot read: it no longer exists") from None
    except OSError as exc:
        raise Rejection("unreadable", f"cannot read: {exc.strerror or exc}") from None


def identity(judged: Judged) -> tuple[str, str, float]:
    """What makes two artifacts the same one: repository, commit, the instant generated."""
    return judged.repo.lower(), judged.commit, judged.generated_at.timestamp()


def _judge(data: bytes, origin: ProvenanceSidecar | None, policy: Policy) -> Judged:
    judged = policy.fast.judge(data, require_signature=policy.require_hmac) if policy.fast else None
    if judged is None:
        judged = judge_full(data, origin, policy.ring, policy.require_hmac, policy.max_depth)
    else:
        check_origin(judged.repo, origin)
    check_keys(judged, origin, policy.binding)
    check_fresh(judged, policy.now, policy.max_age_s, policy.max_future_s)
    return judged


def judge(path: str, policy: Policy) -> Verdict:
    """Accept or reject one artifact; a rejected one is quarantined."""
    data: bytes | None = None
    origin: ProvenanceSidecar | None = None
    try:
        data = read_artifact(path, policy.max_bytes)
        origin = read_provenance(path, data, required=policy.require_provenance)
        judged = _judge(data, origin, policy)
    except Rejection as rejection:
        return reject(path, rejection, data, policy, origin)
    except Exception as exc:  # fail closed: a bug never lets an artifact through
        failure = Rejection("internal_error", f"{type(exc).__name__}: {show(str(exc), 200)}")
        return reject(path, failure, data, policy, origin)
    line = judged.line
    if origin is not None:
        line = line[:-1] + b',"provenance":' + provenance_json(origin) + b"}"
    signed = f", key id {judged.kid}" if judged.kid else ", unsigned"
    collected = f", collected from {origin.repo} run {origin.run_id}" if origin else ""
    return Verdict(
        path=path,
        reason=None,
        message=f"{judged.repo}@{judged.commit[:12]}, {judged.hits} hits{signed}{collected}",
        line=line + b"\n",
        repo=judged.repo,
        kid=judged.kid,
        hits=judged.hits,
        identity=identity(judged),
        source=origin.repo if origin else None,
    )


def reject(
    path: str, rejection: Rejection, data: bytes | None, policy: Policy, origin: ProvenanceSidecar | None = None
) -> Verdict:
    quarantined = None
    if policy.quarantine_dir:
        try:
            quarantined = str(quarantine(path, rejection, data, Path(policy.quarantine_dir), provenance=origin))
        except OSError as exc:
            rejection = Rejection(rejection.reason, f"{rejection.message} (NOT quarantined: {exc.strerror or exc})")
    return Verdict(path=path, reason=rejection.reason, message=rejection.message, quarantined=quarantined)
