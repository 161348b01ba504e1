"""S1: the ingest gate. Consumer artifacts come in; only the ones that are
valid and, under POLICY_REQUIRE_HMAC=true, signed by a known key go on to the
audit. Every other one is quarantined with the reason, named in one output
line, and counted; the gate then exits 2. Nothing is dropped silently.

Each artifact goes through these checks, cheapest and most hostile first,
and stops at the first that fails (the reason codes are stable: they name the
quarantine reason file, the output line and the metric label):

1. the file: a regular file (``not_a_regular_file``), readable
   (``unreadable``), at most ``--max-bytes`` judged on the open descriptor
   before reading (``too_large``);
2. the bytes: strict UTF-8 (``invalid_utf8``), JSON (``invalid_json``)
   without duplicate object keys (``duplicate_key``) or NaN/Infinity/
   overflowing numbers (``non_finite_number``), nested at most 64 deep
   (``nesting_too_deep``: the C parser's own recursion guard stops absurd
   depths, an iterative walk measures the rest);
3. the contract: a known ``schema_version`` (``unknown_schema_version``), the
   pydantic model (``schema_violation``), hit paths inside the repository:
   relative, no ``..``, no NUL (``unsafe_path``);
4. the signature (when present, or always under the policy):
   ``missing_signature``, ``malformed_signature``, ``unsupported_alg``,
   ``unknown_kid``, ``bad_signature``;
5. freshness: ``generated_at`` older than ``--max-age`` (``expired``) or more
   than 5 minutes ahead of our clock (``future_timestamp``: a replay or a
   forged clock).

The modules: ``strict_json`` (the bytes), ``judge`` (one artifact),
``quarantine``, ``pool`` (many artifacts), ``inputs`` (what was pointed at);
this one is the gate: settings, the run, the result and its metrics.

Artifacts are judged in a pool of worker processes (``--workers``, default
every CPU) over a lazily expanded list of paths; accepted ones stream out as
JSON Lines (one artifact per line in its RFC 8785 form: the values as received,
signature kept, plus where it was collected from), so
memory stays flat however many artifacts come in."""

from __future__ import annotations

import contextlib
import gc
import os
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import IO, Annotated

from pydantic import BaseModel, Field, field_validator

from tw_gates.core import metrics
from tw_gates.core.errors import ExitCode, UsageError
from tw_gates.core.fsio import atomic_open
from tw_gates.core.settings import NoDecode, SigningSettings, env, register_secrets
from tw_gates.core.signing import KeyRing, parse_keys_json
from tw_gates.core.units import parse_duration, parse_size
from tw_gates.ingest.checks import KeyBinding
from tw_gates.ingest.fast import FastPath
from tw_gates.ingest.inputs import expand_artifacts
from tw_gates.ingest.judge import Policy, Verdict, read_artifact, reject
from tw_gates.ingest.pool import judge_all
from tw_gates.ingest.provenance import read_provenance
from tw_gates.ingest.reasons import REASONS, Rejection, show
from tw_gates.schemas.registry import ConsumerRegistry, load_registry

__all__ = ["REASONS", "IngestResult", "IngestSettings", "Policy", "Rejection", "Verdict", "ingest", "show"]

DEFAULT_MAX_AGE = timedelta(days=7)
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
PROGRESS_EVERY_S = 5.0
WRITE_CHUNK = 1 << 20


def _default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


class IngestSettings(SigningSettings):
    # Paths, folders or globs; from the environment one per line.
    artifacts: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias=env("TW_INGEST_ARTIFACTS", "artifacts")
    )
    require_hmac: bool = Field(False, validation_alias=env("POLICY_REQUIRE_HMAC", "require_hmac"))
    keys_env: str = Field(
        "TW_HMAC_KEYS", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", validation_alias=env("TW_INGEST_KEYS_ENV", "keys_env")
    )
    max_age: timedelta = Field(DEFAULT_MAX_AGE, validation_alias=env("TW_INGEST_MAX_AGE", "max_age"))
    max_bytes: int = Field(DEFAULT_MAX_BYTES, gt=0, validation_alias=env("TW_INGEST_MAX_BYTES", "max_bytes"))
    quarantine: Path | None = Field(Path("tw-quarantine"), validation_alias=env("TW_INGEST_QUARANTINE", "quarantine"))
    out: Path | None = Field(None, validation_alias=env("TW_INGEST_OUT", "out"))
    workers: int = Field(
        default_factory=_default_workers, ge=1, le=256, validation_alias=env("TW_INGEST_WORKERS", "workers")
    )
    # The registry binds consumers to key ids (keys: [...]); None: no binding.
    registry: Path | None = Field(None, validation_alias=env("TW_REGISTRY", "registry"))
    # The central path: every artifact must come with collect's provenance.
    require_provenance: bool = Field(False, validation_alias=env("TW_INGEST_REQUIRE_PROVENANCE", "require_provenance"))
    # Diagnostics and benchmarks: false sends every artifact down the full path.
    fast_path: bool = Field(True, validation_alias=env("TW_INGEST_FAST_PATH", "fast_path"))

    @field_validator("artifacts", mode="before")
    @classmethod
    def _lines(cls, value: object) -> object:
        if isinstance(value, str):
            return [line.strip() for line in value.splitlines() if line.strip()]
        return value

    @field_validator("max_age", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        return parse_duration(value) if isinstance(value, str) else value

    @field_validator("max_bytes", mode="before")
    @classmethod
    def _size(cls, value: object) -> object:
        return parse_size(value) if isinstance(value, str) else value

    def verification_ring(self) -> KeyRing:
        """Verification keys from the variable named by keys_env (plus the
        signing key, as the core's KeyRing does)."""
        if self.keys_env == "TW_HMAC_KEYS":
            return self.key_ring()
        keys = parse_keys_json(os.environ.get(self.keys_env), source=self.keys_env)
        register_secrets(*keys.values())
        return KeyRing(
            keys,
            signing_key=self.hmac_key.get_secret_value() if self.hmac_key else None,
            signing_kid=self.hmac_key_id,
            keys_source=self.keys_env,
        )


class IngestResult(BaseModel):
    accepted: int = 0
    rejected: int = 0
    hits: int = 0
    by_reason: dict[str, int] = Field(default_factory=dict)
    by_kid: dict[str, int] = Field(default_factory=dict)
    out: Path | None = None
    quarantine: Path | None = None
    seconds: float = 0.0

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.REJECTED if self.rejected else ExitCode.OK

    @property
    def total(self) -> int:
        return self.accepted + self.rejected

    def describe(self) -> str:
        reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(self.by_reason.items()))
        rate = f", {self.total / self.seconds:.0f}/s" if self.seconds > 0 and self.total else ""
        return (
            f"ingest: {self.accepted} accepted, {self.rejected} rejected"
            f"{f' ({reasons})' if reasons else ''} in {self.seconds:.2f}s{rate}"
        )


def key_binding(registry: ConsumerRegistry) -> KeyBinding:
    return KeyBinding(
        keys_of={c.repo.lower(): tuple(dict.fromkeys(c.keys)) for c in registry.consumers if c.keys},
        owners_of=registry.key_owners(),
    )


def _binding_warnings(registry: ConsumerRegistry, path: Path, owners: dict[str, frozenset[str]]) -> list[str]:
    """A shared key, or consumers bound to no key id, are allowed, and said."""
    notes = []
    unbound = [c.repo for c in registry.consumers if not c.keys]
    if unbound:
        shown = ", ".join(unbound[:5]) + (f" (+{len(unbound) - 5} more)" if len(unbound) > 5 else "")
        notes.append(
            f"{len(unbound)} consumer(s) in {path} are not bound to key ids ({shown}): any verification key "
            "not bound to another consumer signs for them; give each consumer its own key (keys: [...])"
        )
    for kid in registry.shared_keys:
        if len(owners.get(kid, ())) > 1:
            notes.append(
                f"key id {kid} is shared by {len(owners[kid])} consumers (shared_keys in {path}): any holder "
                "can sign for all of them; only the repository they were collected from tells them apart"
            )
    return notes


def policy_from(
    settings: IngestSettings, *, now: float | None = None, warn: Callable[[str], None] | None = None
) -> Policy:
    ring = settings.verification_ring()
    if settings.require_hmac and not ring.kids:
        raise UsageError(
            f"POLICY_REQUIRE_HMAC=true but no verification keys: set {settings.keys_env} "
            '(a JSON object {"<kid>": "<secret>"})'
        )
    say = warn or (lambda _message: None)
    binding = None
    if settings.registry is not None:
        registry = load_registry(settings.registry)
        binding = key_binding(registry)
        for note in _binding_warnings(registry, settings.registry, binding.owners_of):
            say(note)
        del registry  # only the binding is kept (the workers inherit it)
        gc.collect()
    elif settings.require_provenance:
        say("no --registry: key ids are not bound to consumers (only the repository binding applies)")
    fast = FastPath.from_ring(ring) if settings.fast_path else None
    if settings.fast_path and fast is None:
        say(
            "the fast path stands down (it could not prove it computes the key ring's signatures): every artifact "
            "takes the full path, slower but the same verdicts"
        )
    return Policy(
        ring=ring,
        require_hmac=settings.require_hmac,
        max_age_s=settings.max_age.total_seconds(),
        max_bytes=settings.max_bytes,
        quarantine_dir=str(settings.quarantine) if settings.quarantine else None,
        now=now,
        require_provenance=settings.require_provenance,
        binding=binding,
        fast=fast,
    )


def _check_writable(settings: IngestSettings) -> None:
    """Where the verdicts go must be usable before the first artifact is
    judged: a rejected artifact that cannot be quarantined would be lost."""
    if settings.out is not None and settings.out.is_dir():
        raise UsageError(f"--out {settings.out} is a folder; give the file to write (e.g. accepted.jsonl)")
    if settings.quarantine is not None:
        try:
            settings.quarantine.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot use --quarantine {settings.quarantine}: {exc.strerror or exc}") from None
        if not os.access(settings.quarantine, os.W_OK | os.X_OK):
            raise UsageError(f"cannot write to --quarantine {settings.quarantine}")


class _Tally:
    """Counts of a run (plain ints: this runs once per artifact), and the
    identities already accepted (judged once)."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.accepted = self.rejected = self.hits = 0
        self.reasons: Counter[str] = Counter()
        self.kids: Counter[str] = Counter()
        self.seen: set[int] = set()

    def settle(self, verdict: Verdict) -> Verdict:
        """The verdict, made a ``duplicate`` when its artifact was already accepted."""
        if verdict.accepted and verdict.identity is not None:
            # A 64-bit hash, not the tuple: a few bytes per artifact, however many.
            key = hash(verdict.identity)
            if key in self.seen:
                return duplicate(verdict, self.policy)
            self.seen.add(key)
        return verdict

    def count(self, verdict: Verdict) -> None:
        if verdict.accepted:
            self.accepted += 1
            self.hits += verdict.hits
            if verdict.kid:
                self.kids[verdict.kid] += 1
        else:
            self.rejected += 1
            self.reasons[verdict.reason or "internal_error"] += 1

    def into(self, result: IngestResult) -> None:
        result.accepted, result.rejected, result.hits = self.accepted, self.rejected, self.hits
        result.by_reason, result.by_kid = dict(self.reasons), dict(self.kids)


class _Lines:
    """Accepted lines gathered into large writes (a line is ~10 KiB: one
    system call each would cost more than judging it)."""

    def __init__(self, out: IO[bytes] | None) -> None:
        self.out = out
        self.pending: list[bytes] = []
        self.size = 0

    def add(self, line: bytes) -> None:
        if self.out is None:
            return
        self.pending.append(line)
        self.size += len(line)
        if self.size >= WRITE_CHUNK:
            self.flush()

    def flush(self) -> None:
        if self.out is not None and self.pending:
            self.out.write(b"".join(self.pending))
        self.pending.clear()
        self.size = 0


def duplicate(verdict: Verdict, policy: Policy) -> Verdict:
    """Reject a second arrival of an accepted artifact, quarantined like any other."""
    rejection = Rejection(
        "duplicate",
        f"{verdict.repo} at the same commit and generated_at was already accepted in this run: judged once",
    )
    data, origin = None, None
    with contextlib.suppress(Rejection):
        data = read_artifact(verdict.path, policy.max_bytes)
        origin = read_provenance(verdict.path, data, required=False)
    return reject(verdict.path, rejection, data, policy, origin)


def ingest(
    settings: IngestSettings,
    *,
    on_verdict: Callable[[Verdict], None] | None = None,
    progress: Callable[[str], None] | None = None,
    warn: Callable[[str], None] | None = None,
    now: float | None = None,
) -> IngestResult:
    """Judge every artifact named by ``settings.artifacts``; merge the
    accepted ones into ``settings.out`` (JSON Lines)."""
    if not settings.artifacts:
        raise UsageError("no artifacts given: pass --artifact PATH (a file, folder or glob; repeatable)")
    policy = policy_from(settings, now=now, warn=warn)
    _check_writable(settings)
    paths = expand_artifacts(settings.artifacts, skip_dirs=[settings.quarantine] if settings.quarantine else [])
    result = IngestResult(out=settings.out, quarantine=settings.quarantine)
    tally = _Tally(policy)
    started = last_progress = time.monotonic()
    # Accepted lines stream to a temp file beside --out, moved into place only
    # when the run finishes: a reader never sees half a merge.
    sink = atomic_open(settings.out, permissions=0o644) if settings.out is not None else contextlib.nullcontext()
    with sink as out:
        lines = _Lines(out)
        for judged in judge_all(paths, policy, workers=settings.workers):
            verdict = tally.settle(judged)
            if verdict.accepted:
                lines.add(verdict.line or b"")
            tally.count(verdict)
            if on_verdict:
                on_verdict(verdict)
            if progress and time.monotonic() - last_progress >= PROGRESS_EVERY_S:
                last_progress = time.monotonic()
                done = tally.accepted + tally.rejected
                progress(f"ingest: {done} artifacts judged ({done / (last_progress - started):.0f}/s)")
        lines.flush()
    tally.into(result)
    result.seconds = time.monotonic() - started
    _record_metrics(result)
    return result


def _record_metrics(result: IngestResult) -> None:
    sink = metrics.current()
    artifacts = sink.counter("tw_gates_ingest_artifacts_total")
    if result.accepted:
        artifacts.labels(result="accepted", reason="none").inc(result.accepted)
    for reason, count in result.by_reason.items():
        artifacts.labels(result="rejected", reason=reason).inc(count)
    verified = sink.counter("tw_gates_ingest_verified_total")
    for kid, count in result.by_kid.items():
        verified.labels(kid=kid).inc(count)
    sink.gauge("tw_gates_ingest_last_run_rejected").set(result.rejected)
    sink.gauge("tw_gates_ingest_last_run_accepted").set(result.accepted)
