"""G3's non-fatal check: renderer hits in the accepted consumer artifacts that
lie outside the consumer's registered ``code_paths`` and no live exception
covers (exit 2)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path

from pydantic import ValidationError

from tw_gates.chain.audit_checks import Check
from tw_gates.chain.audit_settings import DEFAULT_EXCEPTIONS, MAX_ARTIFACT_LINE_BYTES, AuditSettings, Progress
from tw_gates.core.errors import ExitCode, UsageError
from tw_gates.core.fsio import InputNotFound, open_input, regular_files_under
from tw_gates.core.settings import describe_validation_error
from tw_gates.schemas.audit import Severity, UnregisteredHit
from tw_gates.schemas.consumer import AcceptedRecord
from tw_gates.schemas.exceptions import AuditException, AuditExceptions, load_exceptions
from tw_gates.schemas.registry import ConsumerRegistry
from tw_gates.schemas.severity import SEVERITIES, SEVERITY_RANK
from tw_gates.self_audit.self_audit import load_pattern_catalog

# --------------------------------------------------------------------------- globs


@lru_cache(maxsize=4096)
def compile_glob(pattern: str) -> re.Pattern[str]:
    """A path glob: ``**`` spans folders, ``*``/``?``/``[..]`` stay in one
    name; a glob without "/" matches the file name at any depth; a match on a
    folder covers everything below it."""
    body = pattern.strip().strip("/") if pattern.strip() not in ("/", "") else "**"
    out, i = [], 0
    while i < len(body):
        if body.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif body.startswith("**", i):
            out.append(".*")
            i += 2
        elif body[i] == "*":
            out.append("[^/]*")
            i += 1
        elif body[i] == "?":
            out.append("[^/]")
            i += 1
        elif body[i] == "[" and "]" in body[i + 2 :]:
            end = body.index("]", i + 2)
            inner = body[i + 1 : end]
            inner = "^" + inner[1:] if inner.startswith("!") else inner
            out.append(f"[{inner.replace(chr(92), chr(92) * 2)}]")
            i = end + 1
        else:
            out.append(re.escape(body[i]))
            i += 1
    anchor = "" if "/" in body else "(?:.*/)?"
    return re.compile(f"{anchor}{''.join(out)}(?:/.*)?", re.S)


def path_matches(path: str, globs: list[str]) -> str | None:
    """The first glob that covers ``path`` (normalised to forward slashes)."""
    normal = path.replace("\\", "/").lstrip("./") if path.startswith("./") else path.replace("\\", "/")
    for glob in globs:
        if compile_glob(glob).fullmatch(normal):
            return glob
    return None


# --------------------------------------------------------------------------- unregistered hits


def accepted_files(path: Path) -> list[Path]:
    """The accepted-artifacts file, or every *.jsonl below a folder (the shards
    of a sharded ingest, merged here)."""
    if path.is_dir():
        # Shards found in a folder: regular files only, no link followed.
        files, _skipped = regular_files_under(path, (".jsonl",))
        if not files:
            raise UsageError(f"no *.jsonl file in {path} (accepted artifacts from `tw-gates ingest --out`)")
        return files
    return [path]


def iter_accepted_artifacts(path: Path) -> Iterator[tuple[int, AcceptedRecord]]:
    """(line number, AcceptedRecord) for each line of one accepted JSONL file."""

    try:
        handle = open_input(path, "accepted artifacts", follow_symlinks=False)
    except InputNotFound as exc:
        raise UsageError(f"{exc} (written by `tw-gates ingest --out`)") from None
    with handle:
        for number, raw in enumerate(iter(lambda: handle.readline(MAX_ARTIFACT_LINE_BYTES + 1), b""), 1):
            if len(raw) > MAX_ARTIFACT_LINE_BYTES:
                raise UsageError(f"{path}:{number}: line longer than {MAX_ARTIFACT_LINE_BYTES} bytes")
            if not raw.strip():
                continue
            try:
                yield number, AcceptedRecord.model_validate_json(raw)
            except ValidationError as exc:
                raise UsageError(
                    f"{path}:{number}: not a consumer artifact: {describe_validation_error(exc, 'artifact')}"
                ) from None


def _severity_lookup(settings: AuditSettings) -> tuple[Callable[[str], Severity | None], str]:

    catalog = load_pattern_catalog(settings.patterns)
    return catalog.severity_of, str(settings.patterns or "the shipped pattern catalog")


@dataclass
class _Evaluated:
    repo: str
    registered: bool
    hits: list[tuple[str, int, str, Severity]] = field(default_factory=list)  # path, line, pattern, severity
    excepted: int = 0
    expired_only: int = 0
    # hits outside the audited contexts, by context ("harmless" for a constant or sanitized argument)
    counted_only: Counter[str] = field(default_factory=Counter)


def check_unregistered_hits(
    settings: AuditSettings, registry: ConsumerRegistry, *, today: date, progress: Progress
) -> tuple[list[Check], list[UnregisteredHit], list[tuple[int, str]]]:
    exceptions, checks, expired_notes = _exceptions_check(settings, today)
    if settings.artifacts is None:
        checks.append(Check("unregistered_hits", "skip", "no accepted artifacts given (--artifacts): hits not audited"))
        return checks, [], expired_notes
    severity_of, catalog_name = _severity_lookup(settings)
    judge = _Judge(registry, exceptions, severity_of, settings.hit_contexts, today)
    evaluated = _newest_per_repository(settings.artifacts, judge, progress)
    hits = sorted(
        # Built without re-validation: every field comes from a validated artifact.
        (
            UnregisteredHit.model_construct(repo=e.repo, path=p, line=n, pattern=k, severity=sev)
            for e in evaluated
            for p, n, k, sev in e.hits
        ),
        key=lambda h: (SEVERITY_RANK[h.severity], h.repo.lower(), h.path, h.line, h.pattern),
    )
    checks.append(_hits_check(hits, evaluated, catalog_name))
    unknown_consumers = sorted({e.repo for e in evaluated if not e.registered})
    if unknown_consumers:
        checks.append(
            Check(
                "unknown_consumers",
                "warn",
                "artifacts from repositories not in the registry (every hit counts as unregistered): "
                + ", ".join(unknown_consumers),
            )
        )
    return checks, hits, expired_notes


def _exceptions_check(
    settings: AuditSettings, today: date
) -> tuple[AuditExceptions, list[Check], list[tuple[int, str]]]:
    """The exceptions file (audit_exceptions.yml when present), its check, and a
    note (line, text) per expired exception."""
    exceptions = AuditExceptions()
    lines: list[int] = []
    exceptions_path = settings.exceptions
    if exceptions_path is None and Path(DEFAULT_EXCEPTIONS).is_file():
        exceptions_path = Path(DEFAULT_EXCEPTIONS)
    if exceptions_path is None:
        return exceptions, [], []
    exceptions, lines = load_exceptions(exceptions_path)
    live = [e for e in exceptions.exceptions if e.live_on(today)]
    expired = [
        (lines[i] if i < len(lines) else 0, e) for i, e in enumerate(exceptions.exceptions) if not e.live_on(today)
    ]
    detail = f"{len(live)} live exception(s) in {exceptions_path}"
    if expired:
        detail += f"; {len(expired)} expired and ignored: " + "; ".join(
            f"{e.repo} {e.path} (expired {e.expires}, approver {e.approver})" for _, e in expired
        )
    notes = [
        (line, f"exception for {e.repo} {e.path} (approved by {e.approver}) expired on {e.expires}")
        for line, e in expired
    ]
    return exceptions, [Check("exceptions", "warn" if expired else "pass", detail)], notes


class _Judge:
    """An artifact's unregistered hits, judged as it is read: only these (small
    tuples) are kept, never the artifact, so memory follows the findings, not
    the size of the input."""

    def __init__(
        self,
        registry: ConsumerRegistry,
        exceptions: AuditExceptions,
        severity_of: Callable[[str], Severity | None],
        contexts: Iterable[str],
        today: date,
    ) -> None:
        self.consumers = {c.repo.lower(): c for c in registry.consumers}
        self.exceptions_of: dict[str, list[AuditException]] = {}
        for exception in exceptions.exceptions:
            self.exceptions_of.setdefault(exception.repo.lower(), []).append(exception)
        self.severity_of = severity_of
        self.contexts = set(contexts)
        self.today = today

    def evaluate(self, artifact: AcceptedRecord) -> _Evaluated:
        consumer = self.consumers.get(artifact.repo.lower())
        code_paths = consumer.code_paths if consumer else []
        repo_exceptions = self.exceptions_of.get(artifact.repo.lower(), [])
        result = _Evaluated(repo=artifact.repo, registered=consumer is not None)
        seen = set()
        for hit in artifact.hits:
            key = (hit.path, hit.line, hit.pattern)
            if key in seen or path_matches(hit.path, code_paths):
                continue
            seen.add(key)
            # An artifact from before hit contexts: every hit counts as production.
            context = hit.context or "production"
            if hit.argument is not None or context not in self.contexts:
                result.counted_only["harmless" if hit.argument is not None else context] += 1
                continue
            covering = [
                e
                for e in repo_exceptions
                if (e.pattern is None or e.pattern == hit.pattern) and path_matches(hit.path, [e.path])
            ]
            if any(e.live_on(self.today) for e in covering):
                result.excepted += 1
                continue
            result.expired_only += bool(covering)
            severity = (consumer.severity if consumer and consumer.severity else None) or self.severity_of(hit.pattern)
            result.hits.append((hit.path, hit.line, hit.pattern, severity or "medium"))
        return result


def _newest_per_repository(artifacts: Path, judge: _Judge, progress: Progress) -> list[_Evaluated]:
    """The newest artifact of each repository (ties: the later line), keyed on
    the repository it was collected from, never on what the artifact claims."""
    newest: dict[str, tuple[datetime, int, _Evaluated]] = {}
    count = 0
    for source in accepted_files(artifacts):
        for _, artifact in iter_accepted_artifacts(source):
            count += 1
            key = artifact.source_repo.lower()
            if key not in newest or (artifact.generated_at, count) >= newest[key][:2]:
                newest[key] = (artifact.generated_at, count, judge.evaluate(artifact))
    progress(f"{count} accepted artifact(s) from {len(newest)} repositor(ies)")
    return [item[2] for item in newest.values()]


def _hits_check(hits: list[UnregisteredHit], evaluated: list[_Evaluated], catalog_name: str) -> Check:
    excepted = sum(e.excepted for e in evaluated)
    expired_only = sum(e.expired_only for e in evaluated)
    detail = (
        f"{len(hits)} unregistered hit(s) in {len({h.repo for h in hits})} repositor(ies) "
        f"from {len(evaluated)} artifact(s); {excepted} covered by live exceptions"
    )
    if expired_only:
        detail += f"; {expired_only} matched only expired exceptions"
    if hits:
        by_severity = Counter(h.severity for h in hits)
        shown = ", ".join(f"{by_severity[s]} {s}" for s in SEVERITIES if by_severity[s])
        detail += f" ({shown}; severities from {catalog_name})"
    counted_only = sum((e.counted_only for e in evaluated), Counter[str]())
    if counted_only:
        detail += "; counted, not filed: " + ", ".join(f"{n} in {c}" for c, n in sorted(counted_only.items()))
    return Check("unregistered_hits", "fail" if hits else "pass", detail, ExitCode.REJECTED if hits else ExitCode.OK)
