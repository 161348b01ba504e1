"""G3: the green-light audit.

P0 checks (fatal, with their own exit codes):

* required status checks: for each registered consumer with
  ``required_checks``, its default branch must require every one of them,
  through classic branch protection or repository rulesets (the union of both:
  GitHub enforces both). Missing: exit 5. A check that cannot be confirmed is
  treated as missing (fail closed): no GITHUB_TOKEN, a repository the token
  cannot see, a bad token. A GitHub outage that survives the retries leaves no
  decision: exit 1 (the other checks still run and the report is written).
* baseline: present, valid and carrying a signature that verifies
  (TW_HMAC_KEYS / TW_HMAC_KEY). Missing or bad: exit 6.

Then, non-fatal (exit 2):

* performance: a current capture (``--current``) against the baseline: p50
  within x1.10, p95 within x1.25, p99 within x1.5 (each at least +0.5 ms),
  peak RSS within +30 MiB; all configurable. Captures of different corpora or
  targets cannot be compared: exit 1.
* unregistered hits: every renderer hit in the accepted consumer artifacts
  (the JSON Lines written by ``tw-gates ingest --out``, one file or a folder
  of shards, streamed, newest artifact per repository) whose path is outside the consumer's registered
  ``code_paths`` and not covered by a live exception. Severity comes from the
  consumer's registry entry, else the self-audit pattern catalog, else medium.

The report JSON (schemas/audit.py) is written whatever the verdict (only bad
input, exit 1, stops the audit before it), along with a job summary and an annotation per offending file."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

from pydantic import Field, ValidationError

from tw_gates.core.errors import ExitCode, TwGatesError, UsageError
from tw_gates.core.settings import GitHubSettings, SigningSettings, env
from tw_gates.schemas.audit import AuditReport, CheckResult, Severity, UnregisteredHit
from tw_gates.schemas.severity import SEVERITIES, SEVERITY_RANK

DEFAULT_REPORT = "tw-gates-audit.json"
DEFAULT_REGISTRY = "consumer_registry.yml"
DEFAULT_EXCEPTIONS = "audit_exceptions.yml"
DEFAULT_BASELINE = "perf/baseline.json"
MAX_ARTIFACT_LINE_BYTES = 64 * 1024 * 1024
MAX_ANNOTATIONS = 50
SUMMARY_HITS = 100
Progress = Callable[[str], None]


class AuditSettings(GitHubSettings, SigningSettings):
    report: Path = Field(Path(DEFAULT_REPORT), validation_alias=env("TW_AUDIT_REPORT", "report"))
    registry: Path = Field(Path(DEFAULT_REGISTRY), validation_alias=env("TW_REGISTRY", "registry"))
    # None: audit_exceptions.yml when it exists, else no exceptions.
    exceptions: Path | None = Field(None, validation_alias=env("TW_AUDIT_EXCEPTIONS", "exceptions"))
    baseline: Path = Field(Path(DEFAULT_BASELINE), validation_alias=env("TW_BASELINE", "baseline"))
    current: Path | None = Field(None, validation_alias=env("TW_PERF_CURRENT", "current"))
    artifacts: Path | None = Field(None, validation_alias=env("TW_ACCEPTED_ARTIFACTS", "artifacts"))
    patterns: Path | None = Field(None, validation_alias=env("TW_PATTERN_CATALOG", "patterns"))
    audit_id: str | None = Field(None, validation_alias=env("TW_AUDIT_ID", "audit_id"))


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


# --------------------------------------------------------------------------- checks


@dataclass
class Check:
    name: str
    status: str  # pass | fail | warn | skip
    detail: str
    exit_code: ExitCode = ExitCode.OK

    def result(self) -> CheckResult:
        return CheckResult(status=self.status, detail=self.detail)  # type: ignore[arg-type]


@dataclass
class AuditOutcome:
    report: AuditReport
    checks: list[Check]
    report_path: Path
    expired_exceptions: list[tuple[int, str]] = field(default_factory=list)  # (line, text)

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode(self.report.exit_code)

    @property
    def summary(self) -> str:
        failed = [c for c in self.checks if c.status == "fail"]
        if not failed:
            return f"green light: {len(self.checks)} check(s) passed or skipped"
        first = next(c for c in failed if c.exit_code == self.exit_code)
        more = f" (+{len(failed) - 1} more failed check(s))" if len(failed) > 1 else ""
        return f"{first.name}: {first.detail}{more}"


_EXIT_PRIORITY = (ExitCode.P0_PROTECTION, ExitCode.P0_BASELINE, ExitCode.ERROR, ExitCode.REJECTED)


def overall_exit(checks: list[Check]) -> ExitCode:
    codes = {c.exit_code for c in checks if c.status == "fail"}
    return next((code for code in _EXIT_PRIORITY if code in codes), ExitCode.OK)


# --------------------------------------------------------------------------- P0: required checks


def _required_contexts_from_rules(client, repo: str, branch: str) -> set[str]:
    from urllib.parse import quote

    found: set[str] = set()
    page = 1
    while True:
        rules = client.request_json(
            "GET", f"/repos/{repo}/rules/branches/{quote(branch, safe='')}", params={"per_page": 100, "page": page}
        )
        if not isinstance(rules, list):
            break
        for rule in rules:
            if isinstance(rule, dict) and rule.get("type") == "required_status_checks":
                for check in (rule.get("parameters") or {}).get("required_status_checks") or []:
                    if isinstance(check, dict) and check.get("context"):
                        found.add(str(check["context"]))
        if len(rules) < 100:
            break
        page += 1
    return found


def _required_contexts_from_protection(client, repo: str, branch: str) -> tuple[set[str], str | None]:
    """(contexts, why unreadable or None). A branch without protection has none."""
    from urllib.parse import quote

    from github import GithubException

    try:
        data = client.request_json(
            "GET", f"/repos/{repo}/branches/{quote(branch, safe='')}/protection/required_status_checks"
        )
    except GithubException as exc:
        if exc.status == 404:
            return set(), None
        if exc.status == 403:
            return _contexts_from_branch(client, repo, branch)
        raise
    contexts = {str(c) for c in (data or {}).get("contexts") or []}
    contexts |= {
        str(c["context"]) for c in (data or {}).get("checks") or [] if isinstance(c, dict) and c.get("context")
    }
    return contexts, None


def _contexts_from_branch(client, repo: str, branch: str) -> tuple[set[str], str | None]:
    """The branch resource summarises its protection for readers without admin
    rights; when it does not, the classic protection stays unknown."""
    from urllib.parse import quote

    data = client.request_json("GET", f"/repos/{repo}/branches/{quote(branch, safe='')}")
    protection = (data or {}).get("protection") if isinstance(data, dict) else None
    status = (protection or {}).get("required_status_checks") if isinstance(protection, dict) else None
    if isinstance(status, dict) and ("contexts" in status or "checks" in status):
        contexts = {str(c) for c in status.get("contexts") or []}
        contexts |= {str(c["context"]) for c in status.get("checks") or [] if isinstance(c, dict) and c.get("context")}
        return contexts, None
    if isinstance(data, dict) and data.get("protected") is False:
        return set(), None
    return set(), "classic branch protection not readable with this token (needs administration: read)"


def check_required_checks(settings: AuditSettings, registry, *, progress: Progress) -> list[Check]:
    from github import GithubException
    from requests import RequestException

    from tw_gates.core.github_client import client_from_settings, describe_github_error

    consumers = [c for c in registry.consumers if c.required_checks]
    if not consumers:
        return [Check("p0_required_checks", "skip", "no consumer in the registry lists required_checks")]
    if settings.github_token is None:
        names = ", ".join(c.repo for c in consumers)
        return [
            Check(
                "p0_required_checks",
                "fail",
                (
                    f"GITHUB_TOKEN is not set: the required status checks of {names} cannot be confirmed "
                    "(fail closed); set GITHUB_TOKEN to a token that can read those repositories"
                ),
                ExitCode.P0_PROTECTION,
            )
        ]
    client = client_from_settings(settings)
    checks: list[Check] = []
    try:
        for index, consumer in enumerate(consumers, 1):
            progress(f"required checks {index}/{len(consumers)}: {consumer.repo}")
            name = f"required_checks {consumer.repo}"
            try:
                branch = consumer.default_branch or str(
                    client.request_json("GET", f"/repos/{consumer.repo}")["default_branch"]
                )
                ruleset = _required_contexts_from_rules(client, consumer.repo, branch)
                classic, unreadable = _required_contexts_from_protection(client, consumer.repo, branch)
            except GithubException as exc:
                if exc.status in (401, 403, 404):
                    checks.append(
                        Check(
                            name,
                            "fail",
                            (
                                f"cannot read {consumer.repo}: {describe_github_error(exc)} "
                                "(the token cannot see it, or is not valid)"
                            ),
                            ExitCode.P0_PROTECTION,
                        )
                    )
                    continue
                checks.append(
                    Check(name, "fail", f"GitHub failed: {describe_github_error(exc)}; no decision", ExitCode.ERROR)
                )
                break
            except (RequestException, TwGatesError) as exc:  # unreachable, or the deadline passed
                checks.append(Check(name, "fail", f"{describe_github_error(exc)}; no decision", ExitCode.ERROR))
                break
            required = list(dict.fromkeys(consumer.required_checks))
            missing = [c for c in required if c not in ruleset and c not in classic]
            sources = []
            if ruleset:
                sources.append(f"rulesets: {', '.join(sorted(ruleset))}")
            if classic:
                sources.append(f"branch protection: {', '.join(sorted(classic))}")
            seen = "; ".join(sources) or "none required"
            if missing:
                detail = f"{consumer.repo}@{branch} does not require {', '.join(missing)} (required now: {seen})"
                if unreadable:
                    detail += f"; {unreadable}"
                checks.append(Check(name, "fail", detail, ExitCode.P0_PROTECTION))
            else:
                checks.append(Check(name, "pass", f"{consumer.repo}@{branch} requires {', '.join(required)} ({seen})"))
    finally:
        client.publish_metrics()
        client.close()
    passed = sum(1 for c in checks if c.status == "pass")
    missing = any(c.exit_code == ExitCode.P0_PROTECTION for c in checks)
    undecided = any(c.exit_code == ExitCode.ERROR for c in checks)
    detail = f"{passed}/{len(consumers)} consumer(s) require their status checks"
    if undecided:
        detail += f"; GitHub failed, {len(consumers) - len(checks) + 1} consumer(s) undecided"
    code = ExitCode.P0_PROTECTION if missing else ExitCode.ERROR if undecided else ExitCode.OK
    summary = Check("p0_required_checks", "fail" if code else "pass", detail, code)
    return [summary, *checks]


# --------------------------------------------------------------------------- P0: baseline, performance


def check_baseline(settings: AuditSettings, thresholds=None) -> tuple[list[Check], object | None]:
    """P0 baseline (present, signed) and the current capture against it, with
    ``thresholds`` (a baseline.Thresholds; default: TW_PERF_* or the defaults)."""
    from tw_gates.core.settings import load_settings
    from tw_gates.parser.baseline import (
        BaselineError,
        Comparability,
        Thresholds,
        compare,
        parse_capture,
        read_capture,
        verify_capture,
    )

    try:
        baseline, kid = verify_capture(settings.baseline, settings)
    except BaselineError as exc:
        return [
            Check(
                "p0_baseline",
                "fail",
                f"{exc} (capture one with `tw-gates baseline capture`, then `tw-gates baseline sign`)",
                ExitCode.P0_BASELINE,
            ),
            Check("performance", "skip", "no valid baseline to compare with"),
        ], None
    checks = [
        Check(
            "p0_baseline",
            "pass",
            (
                f"{settings.baseline} signed by key {kid!r}: {baseline.target} on {baseline.corpus}, "
                f"p95 {baseline.latency.p95_ms:g} ms, peak RSS {baseline.peak_rss_mib:g} MiB, captured {baseline.captured_at:%Y-%m-%d}"
            ),
        )
    ]
    if settings.current is None:
        checks.append(Check("performance", "skip", "no current capture given (--current): nothing compared"))
        return checks, baseline
    try:
        current = parse_capture(
            read_capture(settings.current, what="current capture"), settings.current, what="current capture"
        )
        results = compare(baseline, current, thresholds or load_settings(Thresholds))
    except (BaselineError, Comparability) as exc:
        checks.append(Check("performance", "fail", str(exc), ExitCode.ERROR))
        return checks, baseline
    breaches = [r for r in results if not r.ok]
    detail = "; ".join(r.text for r in (breaches or results))
    checks.append(
        Check("performance", "fail" if breaches else "pass", detail, ExitCode.REJECTED if breaches else ExitCode.OK)
    )
    return checks, baseline


# --------------------------------------------------------------------------- unregistered hits


def accepted_files(path: Path) -> list[Path]:
    """The accepted-artifacts file, or every *.jsonl below a folder (the shards
    of a sharded ingest, merged here)."""
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.jsonl") if p.is_file())
        if not files:
            raise UsageError(f"no *.jsonl file in {path} (accepted artifacts from `tw-gates ingest --out`)")
        return files
    return [path]


def iter_accepted_artifacts(path: Path) -> Iterator[tuple[int, object]]:
    """(line number, ConsumerArtifact) for each line of one accepted JSONL file."""
    from tw_gates.core.fsio import InputNotFound, open_input
    from tw_gates.core.settings import describe_validation_error
    from tw_gates.schemas.consumer import ConsumerArtifact

    try:
        handle = open_input(path, "accepted artifacts")
    except InputNotFound as exc:
        raise UsageError(f"{exc} (written by `tw-gates ingest --out`)") from None
    with handle:
        for number, raw in enumerate(iter(lambda: handle.readline(MAX_ARTIFACT_LINE_BYTES + 1), b""), 1):
            if len(raw) > MAX_ARTIFACT_LINE_BYTES:
                raise UsageError(f"{path}:{number}: line longer than {MAX_ARTIFACT_LINE_BYTES} bytes")
            if not raw.strip():
                continue
            try:
                yield number, ConsumerArtifact.model_validate_json(raw)
            except ValidationError as exc:
                raise UsageError(
                    f"{path}:{number}: not a consumer artifact: {describe_validation_error(exc, 'artifact')}"
                ) from None


def _severity_lookup(settings: AuditSettings) -> tuple[Callable[[str], Severity | None], str]:
    from tw_gates.self_audit.self_audit import load_pattern_catalog

    catalog = load_pattern_catalog(settings.patterns)
    return catalog.severity_of, str(settings.patterns or "the shipped pattern catalog")


@dataclass
class _Evaluated:
    repo: str
    registered: bool
    hits: list[tuple[str, int, str, str]] = field(default_factory=list)  # path, line, pattern, severity
    excepted: int = 0
    expired_only: int = 0


def check_unregistered_hits(
    settings: AuditSettings, registry, *, today, progress: Progress
) -> tuple[list[Check], list[UnregisteredHit], list[tuple[int, str]]]:
    from tw_gates.schemas.exceptions import AuditExceptions, load_exceptions

    exceptions, lines = AuditExceptions(), []
    exceptions_path = settings.exceptions
    if exceptions_path is None and Path(DEFAULT_EXCEPTIONS).is_file():
        exceptions_path = Path(DEFAULT_EXCEPTIONS)
    if exceptions_path is not None:
        exceptions, lines = load_exceptions(exceptions_path)
    live = [e for e in exceptions.exceptions if e.live_on(today)]
    expired = [
        (lines[i] if i < len(lines) else 0, e) for i, e in enumerate(exceptions.exceptions) if not e.live_on(today)
    ]
    checks: list[Check] = []
    expired_notes = [
        (line, f"exception for {e.repo} {e.path} (approved by {e.approver}) expired on {e.expires}")
        for line, e in expired
    ]
    if exceptions_path is not None:
        detail = f"{len(live)} live exception(s) in {exceptions_path}"
        if expired:
            detail += f"; {len(expired)} expired and ignored: " + "; ".join(
                f"{e.repo} {e.path} (expired {e.expires}, approver {e.approver})" for _, e in expired
            )
        checks.append(Check("exceptions", "warn" if expired else "pass", detail))

    if settings.artifacts is None:
        checks.append(Check("unregistered_hits", "skip", "no accepted artifacts given (--artifacts): hits not audited"))
        return checks, [], expired_notes

    severity_of, catalog_name = _severity_lookup(settings)
    consumers = {c.repo.lower(): c for c in registry.consumers}
    exceptions_of: dict[str, list] = {}
    for exception in exceptions.exceptions:
        exceptions_of.setdefault(exception.repo.lower(), []).append(exception)

    def evaluate(artifact) -> _Evaluated:
        """An artifact's unregistered hits, judged as it is read: only these
        (small tuples) are kept, never the artifact, so memory follows the
        findings, not the size of the input."""
        consumer = consumers.get(artifact.repo.lower())
        code_paths = consumer.code_paths if consumer else []
        repo_exceptions = exceptions_of.get(artifact.repo.lower(), [])
        result = _Evaluated(repo=artifact.repo, registered=consumer is not None)
        seen = set()
        for hit in artifact.hits:
            key = (hit.path, hit.line, hit.pattern)
            if key in seen or path_matches(hit.path, code_paths):
                continue
            seen.add(key)
            covering = [
                e
                for e in repo_exceptions
                if (e.pattern is None or e.pattern == hit.pattern) and path_matches(hit.path, [e.path])
            ]
            if any(e.live_on(today) for e in covering):
                result.excepted += 1
                continue
            result.expired_only += bool(covering)
            severity = (consumer.severity if consumer and consumer.severity else None) or severity_of(hit.pattern)
            result.hits.append((hit.path, hit.line, hit.pattern, severity or "medium"))
        return result

    # Newest artifact per repository (ties: the later line).
    newest: dict[str, tuple[datetime, int, _Evaluated]] = {}
    count = 0
    for source in accepted_files(settings.artifacts):
        for _, artifact in iter_accepted_artifacts(source):
            count += 1
            key = artifact.repo.lower()
            if key not in newest or (artifact.generated_at, count) >= newest[key][:2]:
                newest[key] = (artifact.generated_at, count, evaluate(artifact))
    progress(f"{count} accepted artifact(s) from {len(newest)} repositor(ies)")
    evaluated = [item[2] for item in newest.values()]
    excepted = sum(e.excepted for e in evaluated)
    expired_only = sum(e.expired_only for e in evaluated)
    unknown_consumers = [e.repo for e in evaluated if not e.registered]
    # Built without re-validation: every field comes from a validated artifact.
    hits = [
        UnregisteredHit.model_construct(repo=e.repo, path=p, line=n, pattern=k, severity=sev)
        for e in evaluated
        for p, n, k, sev in e.hits
    ]
    order = SEVERITY_RANK
    hits.sort(key=lambda h: (order[h.severity], h.repo.lower(), h.path, h.line, h.pattern))
    detail = (
        f"{len(hits)} unregistered hit(s) in {len({h.repo for h in hits})} repositor(ies) "
        f"from {len(newest)} artifact(s); {excepted} covered by live exceptions"
    )
    if expired_only:
        detail += f"; {expired_only} matched only expired exceptions"
    if hits:
        by_severity = {s: sum(1 for h in hits if h.severity == s) for s in order if any(h.severity == s for h in hits)}
        detail += " (" + ", ".join(f"{n} {s}" for s, n in by_severity.items()) + f"; severities from {catalog_name})"
    checks.append(
        Check("unregistered_hits", "fail" if hits else "pass", detail, ExitCode.REJECTED if hits else ExitCode.OK)
    )
    if unknown_consumers:
        checks.append(
            Check(
                "unknown_consumers",
                "warn",
                (
                    f"artifacts from repositories not in the registry (every hit counts as unregistered): "
                    f"{', '.join(sorted(set(unknown_consumers)))}"
                ),
            )
        )
    return checks, hits, expired_notes


# --------------------------------------------------------------------------- the gate


def _audit_id(settings: AuditSettings, now: datetime) -> str:
    if settings.audit_id:
        return settings.audit_id
    import os

    run_id = os.environ.get("GITHUB_RUN_ID")
    if run_id:
        return f"gh-{run_id}-{os.environ.get('GITHUB_RUN_ATTEMPT', '1')}"
    return f"local-{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def run_audit(
    settings: AuditSettings, *, progress: Progress = lambda _line: None, today=None, thresholds=None
) -> AuditOutcome:
    from tw_gates.core.fsio import atomic_write_text
    from tw_gates.schemas.registry import load_registry

    now = datetime.now(timezone.utc).replace(microsecond=0)
    today = today or now.date()
    registry = load_registry(settings.registry)
    checks: list[Check] = []
    checks += check_required_checks(settings, registry, progress=progress)
    baseline_checks, _ = check_baseline(settings, thresholds)
    checks += baseline_checks
    hit_checks, hits, expired = check_unregistered_hits(settings, registry, today=today, progress=progress)
    checks += hit_checks
    code = overall_exit(checks)
    report = AuditReport(
        audit_id=_audit_id(settings, now),
        generated_at=now,
        exit_code=int(code),
        checks={c.name: c.result() for c in checks},
        unregistered_hits=hits,
    )
    # Redacted as one text (the default of atomic_write_text): per field, a
    # report of 100,000 hits spends most of its time in the redactor.
    atomic_write_text(settings.report, json.dumps(report.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n")
    _record_metrics(checks, hits)
    return AuditOutcome(report=report, checks=checks, report_path=settings.report, expired_exceptions=expired)


def _record_metrics(checks: list[Check], hits: list[UnregisteredHit]) -> None:
    from tw_gates.core import metrics

    sink = metrics.current()
    failed = sink.gauge("tw_gates_audit_check_failed")
    for check in checks:
        if not check.name.startswith("required_checks "):  # one series per consumer would be unbounded
            failed.labels(check=check.name).set(1 if check.status == "fail" else 0)
    gauge = sink.gauge("tw_gates_audit_unregistered_hits")
    for severity in SEVERITIES:
        gauge.labels(severity=severity).set(sum(1 for h in hits if h.severity == severity))
