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

Artifacts are judged in a pool of worker processes (``--workers``, default
every CPU) over a lazily expanded list of paths; accepted ones stream out as
JSON Lines (one artifact per line, exactly as received, signature kept), so
memory stays flat however many artifacts come in."""

from __future__ import annotations

import contextlib
import glob
import hashlib
import itertools
import json
import multiprocessing
import os
import re
import stat
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, NamedTuple

from pydantic import BaseModel, Field, ValidationError, field_validator

from tw_gates import __version__
from tw_gates.core.errors import ExitCode, UsageError
from tw_gates.core.fsio import FileTooLarge, atomic_open, atomic_write_json, read_bytes_limited
from tw_gates.core.settings import NoDecode, SigningSettings, env, register_secrets
from tw_gates.core.signing import SIGNATURE_FIELD, KeyRing, Signature, SignatureError, parse_keys_json
from tw_gates.core.units import format_duration, parse_duration, parse_size
from tw_gates.schemas.consumer import SUPPORTED_SCHEMA_VERSIONS, ConsumerArtifact

MAX_DEPTH = 64
MAX_FUTURE = timedelta(minutes=5)
DEFAULT_MAX_AGE = timedelta(days=7)
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
PROGRESS_EVERY_S = 5.0
# Below this many artifacts a worker pool costs more than it saves.
POOL_THRESHOLD = 64
CHUNK_SIZE = 32

# Every rejection reason, in check order. Stable: metric labels and
# quarantine reason files use them; docs/ingest.md explains each.
REASONS: dict[str, str] = {
    "not_a_regular_file": "the path is not a regular file (a FIFO, device or socket is never opened)",
    "unreadable": "the file could not be read",
    "too_large": "the file is larger than --max-bytes (refused before it is read)",
    "invalid_utf8": "the bytes are not strict UTF-8, or a string holds an unpaired surrogate escape",
    "nesting_too_deep": f"arrays/objects nested more than {MAX_DEPTH} deep",
    "invalid_json": "not a JSON document",
    "duplicate_key": "an object has the same key twice (parsers disagree on which one wins)",
    "non_finite_number": "NaN, Infinity, or a number that overflows to infinity",
    "unknown_schema_version": "schema_version is not one this gate knows",
    "schema_violation": "the document does not match the consumer artifact schema",
    "unsafe_path": "a hit path is absolute, contains '..', NUL or a control character",
    "missing_signature": "no signature, and POLICY_REQUIRE_HMAC=true",
    "malformed_signature": "the signature member is not {alg, kid, value: 64 lowercase hex}",
    "unsupported_alg": "the signature alg is not HMAC-SHA256",
    "unknown_kid": "the signature's key id is not among the verification keys",
    "bad_signature": "the HMAC does not match the artifact (tampered, or signed with another key)",
    "expired": "generated_at is older than --max-age",
    "future_timestamp": "generated_at is more than 5 minutes in the future (replay or forged clock)",
    "internal_error": "the gate failed on this artifact (a bug); rejected rather than let through",
}


class Rejection(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def show(text: str, limit: int = 120) -> str:
    """Untrusted text (a consumer's path, a file name) made safe for one log
    line: control characters escaped, length capped."""
    shown = text.encode("unicode_escape", "backslashreplace").decode("ascii") if not text.isprintable() else text
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


# --- strict parsing -------------------------------------------------------------------

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_LINE_BREAKS_IN_STRINGS = {"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def nesting_depth(value: object) -> int:
    """Deepest array/object nesting of a parsed JSON value (a scalar is 0),
    walked level by level: no recursion, however deep."""
    depth = 0
    level = [value] if type(value) in (dict, list) else []
    while level:
        depth += 1
        below: list[object] = []
        for item in level:
            below.extend(item.values() if type(item) is dict else item)  # type: ignore[union-attr]
        level = [item for item in below if type(item) in (dict, list)]
    return depth


def _object_without_duplicates(pairs: list[tuple[str, object]]) -> dict:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise Rejection("duplicate_key", f"duplicate key {show(repr(key))} in one object")
            seen.add(key)
    return obj


def _refuse_constant(name: str) -> float:
    raise Rejection("non_finite_number", f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise Rejection("non_finite_number", f"number {show(text, 40)} overflows to infinity")
    return value


def _check_surrogates(value: object) -> None:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            strings: Iterable[str] = (item,)
        elif isinstance(item, dict):
            strings = item.keys()
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
            continue
        else:
            continue
        for text in strings:
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise Rejection(
                    "invalid_utf8", "a string holds an unpaired surrogate escape (\\ud800-\\udfff)"
                ) from None


def _may_exceed_depth(text: str, max_depth: int) -> bool:
    """False when the text has too few brackets to nest past ``max_depth``:
    small documents skip the walk."""
    return text.count("[") + text.count("{") > max_depth


def check_depth(value: object, text: str, max_depth: int) -> None:
    if _may_exceed_depth(text, max_depth) and (depth := nesting_depth(value)) > max_depth:
        raise Rejection("nesting_too_deep", f"nested {depth} levels deep, more than {max_depth}")


def parse_strict(data: bytes, *, max_depth: int | None = MAX_DEPTH) -> tuple[object, str]:
    """(value, text) of a JSON document, or Rejection. ``max_depth=None``
    leaves the depth check to the caller (see ``judge``)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Rejection("invalid_utf8", f"not valid UTF-8 at byte {exc.start}: {exc.reason}") from None
    try:
        value = json.loads(
            text,
            object_pairs_hook=_object_without_duplicates,
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
        )
    except json.JSONDecodeError as exc:
        raise Rejection("invalid_json", f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        # The C parser guards its recursion (about 1000 levels) and unwinds cleanly.
        raise Rejection(
            "nesting_too_deep",
            f"nested more than {sys.getrecursionlimit()} levels deep, the limit is {max_depth or MAX_DEPTH}",
        ) from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise Rejection("invalid_json", f"not JSON: {show(str(exc), 160)}") from None
    if max_depth is not None:
        check_depth(value, text, max_depth)
    if _SURROGATE_ESCAPE.search(text):
        _check_surrogates(value)
    return value, text


def one_line(text: str) -> str:
    """The received JSON text as one JSON Lines line, value for value.

    Raw CR/LF can only be whitespace between tokens (JSON forbids them inside
    strings) and no two tokens need it, so dropping them keeps every value;
    NEL and U+2028/9 can only be inside strings, where their escapes mean the
    same and a reader that splits on them (str.splitlines) stays safe."""
    line = text.replace("\r", "").replace("\n", "").strip()
    if not line.isascii():
        for raw, escaped in _LINE_BREAKS_IN_STRINGS.items():
            line = line.replace(raw, escaped)
    return line


# --- judging one artifact -------------------------------------------------------------


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


# --- quarantine -----------------------------------------------------------------------

_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_REASON_SUFFIX = ".reason.json"


def _reserve(directory: Path, name: str) -> tuple[Path, int]:
    """A new file in ``directory`` named after ``name``, never an existing
    one (O_EXCL: safe against concurrent ingest runs too)."""
    base = _UNSAFE_NAME.sub("_", name).strip("._")[:100] or "artifact"
    if base.endswith(_REASON_SUFFIX):
        base += ".artifact"  # must not be mistaken for (or collide with) a reason file
    stem, dot, suffix = base.rpartition(".") if "." in base else (base, "", "")
    for attempt in itertools.count():
        candidate = base if attempt == 0 else f"{stem}-{attempt}{dot}{suffix}"
        target = directory / candidate
        try:
            return target, os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            continue
    raise AssertionError("unreachable")


def quarantine(path: str, rejection: Rejection, data: bytes | None, directory: Path, *, head_bytes: int) -> Path:
    """Copy the artifact's bytes (what was judged; for a file too large, its
    first --max-bytes) next to ``<name>.reason.json``; return the copy's path.
    ``sha256`` in the reason file is over exactly the bytes copied."""
    directory.mkdir(parents=True, exist_ok=True)
    target, fd = _reserve(directory, os.path.basename(path.rstrip("/")))
    size = len(data) if data is not None else None
    digest = hashlib.sha256(data).hexdigest() if data is not None else None
    copied = "whole"
    with os.fdopen(fd, "wb") as sink:
        if data is not None:
            sink.write(data)
        elif rejection.reason == "too_large":
            copied, size, digest = _copy_head(path, sink, head_bytes)
        else:
            copied = "nothing"  # unreadable, or not a regular file: never opened
    reason = {
        "artifact": path,
        "reason": rejection.reason,
        "message": rejection.message,
        "copied": copied,
        "size": size,
        "sha256": digest,
        "quarantined_as": target.name,
        "quarantined_at": datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "tool_version": __version__,
    }
    atomic_write_json(directory / f"{target.name}{_REASON_SUFFIX}", reason)
    return target


def _copy_head(path: str, sink, limit: int) -> tuple[str, int | None, str | None]:
    """The first ``limit`` bytes of a too-large file as evidence, never more
    (a hostile file may be endless): (what was copied, the file's size, the
    sha256 of the copied head)."""
    digest, kept = hashlib.sha256(), 0
    try:
        with open(path, "rb") as source:
            size = os.fstat(source.fileno()).st_size
            while kept < limit and (chunk := source.read(min(1 << 20, limit - kept))):
                digest.update(chunk)
                sink.write(chunk)
                kept += len(chunk)
    except OSError:
        return "nothing", None, None
    return f"first {kept} bytes", size, digest.hexdigest()


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


# --- the worker pool ------------------------------------------------------------------

_POLICY: Policy | None = None


def _init_worker(policy: Policy) -> None:
    global _POLICY
    _POLICY = policy


def _judge_in_worker(path: str) -> Verdict:
    assert _POLICY is not None
    return judge(path, _POLICY)


def judge_all(paths: Iterable[str], policy: Policy, *, workers: int) -> Iterator[Verdict]:
    """Verdicts in input order; a pool of ``workers`` processes when there
    are enough artifacts to pay for it."""
    paths = iter(paths)
    head = list(itertools.islice(paths, POOL_THRESHOLD))
    if workers <= 1 or len(head) < POOL_THRESHOLD:
        _init_worker(policy)
        yield from (judge(p, policy) for p in itertools.chain(head, paths))
        return
    # fork: the workers inherit the loaded modules (no re-import per worker);
    # tw-gates runs on Linux only (R2).
    context = multiprocessing.get_context("fork")
    with context.Pool(workers, initializer=_init_worker, initargs=(policy,)) as pool:
        yield from pool.imap(_judge_in_worker, itertools.chain(head, paths), chunksize=CHUNK_SIZE)


# --- inputs ---------------------------------------------------------------------------


def _files_under(directory: str, skip: frozenset[str]) -> Iterator[str]:
    for folder, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if os.path.realpath(os.path.join(folder, d)) not in skip)
        for name in sorted(files):
            if name.endswith(".json"):
                yield os.path.join(folder, name)


def expand_artifacts(specs: list[str], *, skip_dirs: Iterable[str | os.PathLike[str]] = ()) -> Iterator[str]:
    """Files, folders (their *.json, recursively) and globs, each file once,
    lazily. Every spec must name something: a typo is an error, not an empty
    (and so "passing") ingest. Folders in ``skip_dirs`` (the quarantine) are
    not walked into: yesterday's rejects are not today's input."""
    skip = frozenset(os.path.realpath(d) for d in skip_dirs)
    for spec in specs:
        if glob.has_magic(spec):
            if next(glob.iglob(spec, recursive=True), None) is None:
                raise UsageError(f"no artifact matches {spec!r}")
        elif not os.path.lexists(spec):
            raise UsageError(f"artifact not found: {spec}")

    # A plain file or folder never names a file twice; several specs, or a
    # glob (`in/**` matches the folder and the files in it), may overlap, and
    # only then is a set of every path kept.
    dedupe = len(specs) > 1 or any(glob.has_magic(spec) for spec in specs)

    def generate() -> Iterator[str]:
        seen: set[str] = set()
        for spec in specs:
            matches = sorted(glob.iglob(spec, recursive=True)) if glob.has_magic(spec) else [spec]
            for match in matches:
                files = _files_under(match, skip) if os.path.isdir(match) else (match,)
                for path in files:
                    if dedupe:
                        key = os.path.realpath(path)
                        if key in seen:
                            continue
                        seen.add(key)
                    yield path

    return generate()


# --- the gate -------------------------------------------------------------------------


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


def policy_from(settings: IngestSettings, *, now: float | None = None) -> Policy:
    ring = settings.verification_ring()
    if settings.require_hmac and not ring.kids:
        raise UsageError(
            f"POLICY_REQUIRE_HMAC=true but no verification keys: set {settings.keys_env} "
            '(a JSON object {"<kid>": "<secret>"})'
        )
    return Policy(
        ring=ring,
        require_hmac=settings.require_hmac,
        max_age_s=settings.max_age.total_seconds(),
        max_bytes=settings.max_bytes,
        quarantine_dir=str(settings.quarantine) if settings.quarantine else None,
        now=now,
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


def ingest(
    settings: IngestSettings,
    *,
    on_verdict: Callable[[Verdict], None] | None = None,
    progress: Callable[[str], None] | None = None,
    now: float | None = None,
) -> IngestResult:
    """Judge every artifact named by ``settings.artifacts``; merge the
    accepted ones into ``settings.out`` (JSON Lines)."""
    if not settings.artifacts:
        raise UsageError("no artifacts given: pass --artifact PATH (a file, folder or glob; repeatable)")
    policy = policy_from(settings, now=now)
    _check_writable(settings)
    paths = expand_artifacts(settings.artifacts, skip_dirs=[settings.quarantine] if settings.quarantine else [])
    result = IngestResult(out=settings.out, quarantine=settings.quarantine)
    reasons: Counter[str] = Counter()
    kids: Counter[str] = Counter()
    started = last_progress = time.monotonic()
    # Accepted lines stream to a temp file beside --out, moved into place only
    # when the run finishes: a reader never sees half a merge.
    sink = atomic_open(settings.out, permissions=0o644) if settings.out is not None else contextlib.nullcontext()
    with sink as out:
        for verdict in judge_all(paths, policy, workers=settings.workers):
            if verdict.accepted:
                if out is not None:
                    out.write(verdict.line or b"")
                result.accepted += 1
                result.hits += verdict.hits
                if verdict.kid:
                    kids[verdict.kid] += 1
            else:
                result.rejected += 1
                reasons[verdict.reason or "internal_error"] += 1
            if on_verdict:
                on_verdict(verdict)
            if progress and time.monotonic() - last_progress >= PROGRESS_EVERY_S:
                last_progress = time.monotonic()
                done = result.accepted + result.rejected
                progress(f"ingest: {done} artifacts judged ({done / (last_progress - started):.0f}/s)")
    result.by_reason = dict(reasons)
    result.by_kid = dict(kids)
    result.seconds = time.monotonic() - started
    _record_metrics(result)
    return result


def _record_metrics(result: IngestResult) -> None:
    from tw_gates.core import metrics

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
