"""Consumer self-audit: find the code that renders parsed Markdown or metadata
through a template engine or straight into the DOM (the SSTI and XSS risk the
Token Warehouse hardening is about), and report it as a consumer artifact
(schema 1.0), HMAC-signed when the consumer has a key, for the central ingest
gate. Optionally also as SARIF 2.1.0, so the hits show up in code scanning.

What is scanned: the tracked files (``git ls-files``) when the folder is in a
git work tree, otherwise every file under it; never vendored folders, minified
bundles, binaries (a NUL in the first 8 KiB), symlinks or huge files.
The patterns come from a catalog (``data/renderer_patterns.yml``, or a file of
the same shape); the central audit reads severities from the same catalog."""

from __future__ import annotations

import bisect
import fnmatch
import json
import os
import re
import stat
import time
from collections import Counter
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from tw_gates import DATA_DIR, __version__
from tw_gates.core import metrics
from tw_gates.core.errors import ExitCode, UsageError
from tw_gates.core.settings import SigningSettings, env
from tw_gates.core.signing import sha256_hex
from tw_gates.core.units import parse_size
from tw_gates.schemas import first_duplicate
from tw_gates.schemas.consumer import check_relative_path
from tw_gates.schemas.severity import SEVERITIES, Severity

DEFAULT_CATALOG = DATA_DIR / "renderer_patterns.yml"

# Folder names whose content is someone else's code or a build output.
VENDORED_DIRS = frozenset(
    {
        "node_modules",
        "bower_components",
        "jspm_packages",
        "vendor",
        "third_party",
        "third-party",
        ".venv",
        "venv",
        "site-packages",
        "dist",
        "build",
        "__pycache__",
        ".git",
        ".hg",
        ".svn",
        ".tox",
        ".nox",
        ".mypy_cache",
        ".pytest_cache",
        ".next",
        ".nuxt",
        ".svelte-kit",
    }
)
MINIFIED_SUFFIXES = (".min.js", ".min.mjs", ".min.css", "-min.js", ".bundle.js")
BINARY_SNIFF_BYTES = 8192
# A line this long in a script or stylesheet means generated or minified code.
GENERATED_LINE_CHARS = 5000
GENERATED_SNIFF_SUFFIXES = (".js", ".mjs", ".cjs", ".css")
DEFAULT_MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_CATALOG_BYTES = 1024 * 1024  # the shipped catalog is about 10 KiB
MAX_HITS = 100_000  # the consumer artifact schema's limit
PROGRESS_EVERY_S = 5.0


# --- the pattern catalog -------------------------------------------------------------


def required_literals(regex: str) -> tuple[str, ...] | None:
    """Strings at least one of which occurs in every match of ``regex``, so
    that ``any(s in text ...)`` (C speed) can rule a file out before the
    regex scans it; None when none is known (case-insensitive, no literal)."""
    try:
        from re import _constants as const  # Python 3.11+
        from re import _parser as parser
    except ImportError:  # pragma: no cover - Python 3.10
        import sre_constants as const  # type: ignore[no-redef]
        import sre_parse as parser  # type: ignore[no-redef]
    try:
        parsed = parser.parse(regex, re.MULTILINE)
    except re.error:
        return None
    if parsed.state.flags & re.IGNORECASE:
        return None
    return _literals_of(list(parsed), const)


def _literals_of(items: list, const) -> tuple[str, ...] | None:
    """The best candidate of a sequence: its longest run of literal
    characters, or a mandatory group or branch whose every alternative has
    one (every item of a sequence is part of every match)."""
    best: tuple[str, ...] | None = None
    run: list[str] = []

    def consider(candidate: tuple[str, ...] | None) -> None:
        nonlocal best
        if candidate and all(candidate) and (best is None or min(map(len, candidate)) > min(map(len, best))):
            best = candidate

    for op, arg in items:
        if op is const.LITERAL:
            run.append(chr(arg))
            continue
        consider(("".join(run),) if run else None)
        run = []
        if op is const.SUBPATTERN and not arg[1] & re.IGNORECASE:
            consider(_literals_of(list(arg[3]), const))
        elif op is const.BRANCH:
            alternatives = [_literals_of(list(alternative), const) for alternative in arg[1]]
            if all(alternatives):
                consider(tuple(text for alternative in alternatives for text in alternative))
    consider(("".join(run),) if run else None)
    return best


class RendererPattern(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,99}$", description="stable id reported in every hit")
    regex: str = Field(min_length=1, description="Python re syntax, searched with MULTILINE")
    severity: Severity
    description: str = Field(min_length=1)
    languages: list[str] = Field(default_factory=list, description="informational")
    globs: list[str] = Field(min_length=1, description="a glob without '/' matches the file name, else the path")
    requires: str | None = Field(None, description="regex that must occur in the file for the pattern to apply")

    _compiled: re.Pattern[str] = PrivateAttr()
    _requires: re.Pattern[str] | None = PrivateAttr(None)
    _needles: tuple[str, ...] | None = PrivateAttr(None)
    _requires_needles: tuple[str, ...] | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _compile(self) -> RendererPattern:
        for field, source in (("regex", self.regex), ("requires", self.requires)):
            if source is None:
                continue
            try:
                compiled = re.compile(source, re.MULTILINE)
            except re.error as exc:
                raise ValueError(f"{field} of {self.id} is not a valid regex: {exc}") from None
            if compiled.search("") is not None:
                raise ValueError(f"{field} of {self.id} matches the empty string (it would hit every file)")
            if field == "regex":
                self._compiled, self._needles = compiled, required_literals(source)
            else:
                self._requires, self._requires_needles = compiled, required_literals(source)
        return self

    def applies_to(self, path: str) -> bool:
        name = path.rsplit("/", 1)[-1]
        return any(fnmatch.fnmatchcase(path if "/" in glob else name, glob) for glob in self.globs)


class PatternCatalog(BaseModel):
    model_config = ConfigDict(extra="forbid", title="tw-gates renderer pattern catalog 1.0")

    schema_version: Literal["1.0"] = "1.0"
    extends_default: bool = Field(
        False, description="true: these patterns are added to the shipped ones (same id replaces)"
    )
    patterns: list[RendererPattern] = Field(min_length=1)

    @field_validator("patterns")
    @classmethod
    def _unique_ids(cls, patterns: list[RendererPattern]) -> list[RendererPattern]:
        twice = first_duplicate(pattern.id for pattern in patterns)
        if twice is not None:
            raise ValueError(f"pattern id {twice} is listed twice")
        return patterns

    @cached_property
    def by_id(self) -> dict[str, RendererPattern]:
        return {p.id: p for p in self.patterns}

    def severity_of(self, pattern_id: str) -> Severity | None:
        """The severity of a pattern id, None when the catalog does not know it."""
        pattern = self.by_id.get(pattern_id)
        return pattern.severity if pattern else None


def _read_catalog(path: Path) -> PatternCatalog:
    from tw_gates.core.fsio import load_document
    from tw_gates.core.settings import describe_validation_error

    data = load_document(path, "pattern catalog", max_bytes=MAX_CATALOG_BYTES)
    # A bare list of patterns is a catalog too.
    try:
        return PatternCatalog.model_validate(data if isinstance(data, dict) else {"patterns": data})
    except ValidationError as exc:
        raise UsageError(describe_validation_error(exc, f"pattern catalog {path}")) from None


_default_catalog: PatternCatalog | None = None


def load_pattern_catalog(path: str | os.PathLike[str] | None = None) -> PatternCatalog:
    """The shipped catalog (``path`` None) or the one in ``path``; a catalog
    with ``extends_default: true`` is merged over the shipped one."""
    global _default_catalog
    if _default_catalog is None:
        _default_catalog = _read_catalog(DEFAULT_CATALOG)
    if path is None:
        return _default_catalog
    custom = _read_catalog(Path(path))
    if not custom.extends_default:
        return custom
    merged = {p.id: p for p in _default_catalog.patterns}
    merged.update({p.id: p for p in custom.patterns})
    return PatternCatalog(patterns=list(merged.values()))


# --- scanning ------------------------------------------------------------------------


class FoundHit(BaseModel):
    """A hit as the scan sees it; the artifact keeps path, line and pattern."""

    model_config = ConfigDict(frozen=True)

    path: str
    line: int
    pattern: str
    severity: Severity
    # sha256 of the pattern id, path and the trimmed line text: survives the
    # line moving up or down, changes when the code on it changes.
    fingerprint: str


class ScanResult(BaseModel):
    files_scanned: int = 0
    skipped: dict[str, int] = Field(default_factory=dict)
    hits: list[FoundHit] = Field(default_factory=list)


def _is_vendored(parts: tuple[str, ...]) -> bool:
    return any(part in VENDORED_DIRS for part in parts[:-1])


def _git_files(root: Path) -> list[str] | None:
    """Tracked files under ``root`` (relative to it), or None when ``root``
    is not in a git work tree or git is unavailable."""
    from tw_gates.core.proc import run

    try:
        result = run(["git", "-C", str(root), "ls-files", "-z", "--cached"], timeout=120)
    except UsageError:  # git not installed
        return None
    if not result.ok:
        return None
    tracked = [p for p in result.stdout.decode("utf-8", "surrogateescape").split("\0") if p]
    # A folder inside a work tree with nothing tracked (a scratch copy, an
    # ignored folder) is scanned as a plain folder.
    return tracked or None


def _walk_files(root: Path) -> Iterator[str]:
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if d not in VENDORED_DIRS)
        rel = Path(folder).relative_to(root)
        for name in sorted(files):
            yield (rel / name).as_posix() if rel.parts else name


def list_source_files(root: Path) -> tuple[Iterator[str], str]:
    """(relative posix paths, how they were listed: 'git' or 'walk')."""
    tracked = _git_files(root)
    if tracked is not None:
        return iter(sorted(tracked)), "git"
    return _walk_files(root), "walk"


def _line_starts(text: str) -> list[int]:
    starts = [0]
    find = text.find
    pos = find("\n")
    while pos != -1:
        starts.append(pos + 1)
        pos = find("\n", pos + 1)
    return starts


def scan_text(path: str, text: str, patterns: list[RendererPattern]) -> list[FoundHit]:
    """The hits of ``patterns`` in one file's text (one per pattern and line)."""
    hits: dict[tuple[int, str], FoundHit] = {}
    starts: list[int] | None = None
    for pattern in patterns:
        if pattern._needles and not any(needle in text for needle in pattern._needles):
            continue
        if pattern._requires is not None and (
            (pattern._requires_needles and not any(n in text for n in pattern._requires_needles))
            or pattern._requires.search(text) is None
        ):
            continue
        for match in pattern._compiled.finditer(text):
            if starts is None:
                starts = _line_starts(text)
            index = bisect.bisect_right(starts, match.start()) - 1
            line = index + 1
            if (line, pattern.id) in hits:
                continue
            end = starts[index + 1] - 1 if index + 1 < len(starts) else len(text)
            snippet = " ".join(text[starts[index] : end].split())
            hits[(line, pattern.id)] = FoundHit(
                path=path,
                line=line,
                pattern=pattern.id,
                severity=pattern.severity,
                fingerprint=sha256_hex(f"{pattern.id}\0{path}\0{snippet}"),
            )
    return sorted(hits.values(), key=lambda h: (h.line, h.pattern))


def _skip_reason(root: Path, rel: str, max_file_bytes: int) -> tuple[str | None, bytes | None]:
    """(reason to skip, file bytes when not skipped)."""
    parts = PurePosixPath(rel).parts
    if _is_vendored(parts):
        return "vendored", None
    if rel.lower().endswith(MINIFIED_SUFFIXES):
        return "minified", None
    try:
        check_relative_path(rel)
        rel.encode("utf-8")
    except (ValueError, UnicodeEncodeError):
        return "unreportable_name", None  # a hit there could not be written into a valid artifact
    full = root / rel
    try:
        info = os.lstat(full)
    except OSError:
        return "unreadable", None  # deleted since listed
    if stat.S_ISLNK(info.st_mode):
        return "symlink", None  # may point outside the repository
    if not stat.S_ISREG(info.st_mode):
        return "not_a_file", None  # submodule, socket, fifo
    if info.st_size > max_file_bytes:
        return "too_large", None
    try:
        with open(full, "rb") as handle:
            data = handle.read(max_file_bytes + 1)
    except OSError:
        return "unreadable", None
    if len(data) > max_file_bytes:
        return "too_large", None
    if b"\0" in data[:BINARY_SNIFF_BYTES]:
        return "binary", None
    return None, data


def _looks_generated(rel: str, text: str) -> bool:
    if not rel.lower().endswith(GENERATED_SNIFF_SUFFIXES):
        return False
    head = text[:65536]
    return any(len(line) > GENERATED_LINE_CHARS for line in head.split("\n"))


def scan(
    root: Path, catalog: PatternCatalog, *, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES, progress=None
) -> ScanResult:
    """Scan the source files under ``root`` with ``catalog``."""
    files, _ = list_source_files(root)
    result = ScanResult()
    skipped: Counter[str] = Counter()
    hits: list[FoundHit] = []
    last_progress = time.monotonic()
    for rel in files:
        patterns = [p for p in catalog.patterns if p.applies_to(rel)]
        if not patterns:
            continue  # not a file any pattern looks at: not counted as scanned
        reason, data = _skip_reason(root, rel, max_file_bytes)
        if reason is None and data is not None:
            text = data.decode("utf-8", "replace")
            if _looks_generated(rel, text):
                reason = "minified"
            else:
                hits.extend(scan_text(rel, text, patterns))
                result.files_scanned += 1
        if reason:
            skipped[reason] += 1
        if progress and time.monotonic() - last_progress >= PROGRESS_EVERY_S:
            last_progress = time.monotonic()
            progress(f"self-audit: {result.files_scanned} files scanned, {len(hits)} hits so far")
    result.skipped = dict(sorted(skipped.items()))
    result.hits = sorted(hits, key=lambda h: (h.path, h.line, h.pattern))
    return result


# --- the artifact and SARIF ------------------------------------------------------------


class SelfAuditSettings(SigningSettings):
    repo_dir: Path = Field(Path("."), validation_alias=env("TW_REPO_DIR", "repo_dir"))
    patterns_file: Path | None = Field(None, validation_alias=env("TW_PATTERNS_FILE", "patterns_file"))
    out: Path = Field(Path("tw-self-audit.json"), validation_alias=env("TW_SELF_AUDIT_OUT", "out"))
    sarif: Path | None = Field(None, validation_alias=env("TW_SELF_AUDIT_SARIF", "sarif"))
    # The artifact's identity: a flag, else the runner's environment, else git.
    repo: str | None = Field(None, validation_alias=env("GITHUB_REPOSITORY", "repo"))
    commit: str | None = Field(None, validation_alias=env("GITHUB_SHA", "commit"))
    # On a pull_request run GITHUB_REF_NAME is "<n>/merge"; GITHUB_HEAD_REF is the branch.
    branch: str | None = Field(None, validation_alias=env("GITHUB_HEAD_REF", "GITHUB_REF_NAME", "branch"))
    max_file_bytes: int = Field(
        DEFAULT_MAX_FILE_BYTES, gt=0, validation_alias=env("TW_SELF_AUDIT_MAX_FILE_BYTES", "max_file_bytes")
    )

    @field_validator("max_file_bytes", mode="before")
    @classmethod
    def _size(cls, value: object) -> object:
        return parse_size(value) if isinstance(value, str) else value


class SelfAuditResult(BaseModel):
    artifact: Path
    sarif: Path | None
    repo: str
    commit: str
    branch: str
    files_scanned: int
    skipped: dict[str, int]
    hits: list[FoundHit]
    signed_kid: str | None

    @property
    def hits_by_severity(self) -> dict[str, int]:
        counts = Counter(h.severity for h in self.hits)
        return {s: counts[s] for s in SEVERITIES if counts[s]}

    @property
    def exit_code(self) -> ExitCode:
        # The consumer reports; the central audit decides what the hits mean.
        return ExitCode.OK


def _git(root: Path, *args: str) -> str | None:
    from tw_gates.core.proc import run

    try:
        result = run(["git", "-C", str(root), *args], timeout=30)
    except UsageError:
        return None
    text = result.stdout.decode("utf-8", "replace").strip()
    return text if result.ok and text else None


_REMOTE_REPO = re.compile(r"[:/]([A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+?)(?:\.git)?/?$")


def _identity_from_git(root: Path) -> dict[str, str | None]:
    """repo, commit and branch of the checkout at ``root``: only when
    ``root`` is the top of its own work tree (a folder inside another
    repository is not that repository)."""
    top = _git(root, "rev-parse", "--show-toplevel")
    if top is None or Path(top).resolve() != root.resolve():
        return {}
    remote = _git(root, "config", "--get", "remote.origin.url")
    match = _REMOTE_REPO.search(remote or "")
    return {
        "repo": match.group(1) if match else None,
        "commit": _git(root, "rev-parse", "HEAD"),
        "branch": _git(root, "symbolic-ref", "--short", "-q", "HEAD"),
    }


def build_artifact(repo: str, commit: str, branch: str, hits: list[FoundHit], generated_at: str) -> dict:
    """The unsigned consumer artifact, validated against the schema."""
    from tw_gates.core.settings import describe_validation_error
    from tw_gates.schemas.consumer import SCHEMA_VERSION, ConsumerArtifact

    document = {
        "schema_version": SCHEMA_VERSION,
        "repo": repo,
        "commit": commit,
        "branch": branch,
        "generated_at": generated_at,
        "tool_version": __version__,
        "hits": [{"path": h.path, "line": h.line, "pattern": h.pattern} for h in hits],
    }
    try:
        ConsumerArtifact.model_validate(document)
    except ValidationError as exc:
        raise UsageError(
            describe_validation_error(exc, "consumer artifact")
            + " (set --repo/--commit/--branch or GITHUB_REPOSITORY/GITHUB_SHA/GITHUB_REF_NAME)"
        ) from None
    return document


_SARIF_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note"}
# GitHub code scanning reads `security-severity` (0-10) to rank alerts.
_SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0"}


def build_sarif(catalog: PatternCatalog, hits: list[FoundHit], *, repo: str, commit: str, branch: str) -> dict:
    """SARIF 2.1.0 with one rule per catalog pattern and one result per hit."""
    rules = []
    index_of: dict[str, int] = {}
    for index, pattern in enumerate(catalog.patterns):
        index_of[pattern.id] = index
        rules.append(
            {
                "id": pattern.id,
                "name": "".join(part.capitalize() for part in pattern.id.split("-")),
                "shortDescription": {"text": f"Renderer pattern {pattern.id}"},
                "fullDescription": {"text": pattern.description},
                "help": {
                    "text": f"{pattern.description} Make sure parsed Markdown and metadata never reach this "
                    "renderer unescaped, or register the path with the Token Warehouse team."
                },
                "defaultConfiguration": {"level": _SARIF_LEVEL[pattern.severity]},
                "properties": {
                    "tags": ["security", "tw-gates", *pattern.languages],
                    "security-severity": _SECURITY_SEVERITY[pattern.severity],
                    "precision": "medium",
                },
            }
        )
    results = [
        {
            "ruleId": hit.pattern,
            "ruleIndex": index_of[hit.pattern],
            "level": _SARIF_LEVEL[hit.severity],
            "message": {
                "text": f"{hit.severity} renderer pattern {hit.pattern}: {catalog.by_id[hit.pattern].description}"
            },
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": quote(hit.path), "uriBaseId": "%SRCROOT%"},
                        "region": {"startLine": hit.line},
                    }
                }
            ],
            "partialFingerprints": {"twGatesHit/v1": hit.fingerprint},
        }
        for hit in hits
    ]
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "tw-gates self-audit",
                        "semanticVersion": __version__,
                        "informationUri": "https://github.com/org/tw-gates",
                        "rules": rules,
                    }
                },
                "automationDetails": {"id": "tw-gates/self-audit/"},
                "versionControlProvenance": [
                    {
                        "repositoryUri": f"https://github.com/{repo}",
                        "revisionId": commit,
                        "branch": branch,
                    }
                ],
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }


def self_audit(settings: SelfAuditSettings, *, progress=None, now_iso: str | None = None) -> SelfAuditResult:
    """Scan, write the (signed) artifact and the optional SARIF file."""
    from tw_gates.core.fsio import atomic_write_bytes, atomic_write_json
    from tw_gates.schemas.consumer import utc_now_iso

    root = settings.repo_dir
    if not root.is_dir():
        raise UsageError(f"--repo-dir {root} is not a folder")
    catalog = load_pattern_catalog(settings.patterns_file)
    identity = {"repo": settings.repo, "commit": settings.commit, "branch": settings.branch}
    if not all(identity.values()):
        from_git = _identity_from_git(root)
        identity = {k: v or from_git.get(k) for k, v in identity.items()}
    missing = [k for k, v in identity.items() if not v]
    if missing:
        flags = ", ".join(f"--{k}" for k in missing)
        raise UsageError(
            f"cannot tell the artifact's {', '.join(missing)}: {root} is not the top of a git "
            f"checkout; pass {flags} (or set GITHUB_REPOSITORY, GITHUB_SHA, GITHUB_REF_NAME)"
        )
    repo, commit, branch = (str(identity[k]) for k in ("repo", "commit", "branch"))

    result = scan(root, catalog, max_file_bytes=settings.max_file_bytes, progress=progress)
    if len(result.hits) > MAX_HITS:
        raise UsageError(
            f"{len(result.hits)} hits, more than an artifact may hold ({MAX_HITS}); "
            "check the pattern catalog for a pattern that matches too much"
        )
    document = build_artifact(repo, commit, branch, result.hits, now_iso or utc_now_iso())
    ring = settings.key_ring()
    signed_kid = None
    if ring.can_sign:
        document = ring.sign(document)
        signed_kid = ring.signing_kid
    # Written byte for byte: redacting a signed document would break its signature.
    atomic_write_bytes(settings.out, (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    if settings.sarif:
        atomic_write_json(settings.sarif, build_sarif(catalog, result.hits, repo=repo, commit=commit, branch=branch))
    outcome = SelfAuditResult(
        artifact=settings.out,
        sarif=settings.sarif,
        repo=repo,
        commit=commit,
        branch=branch,
        files_scanned=result.files_scanned,
        skipped=result.skipped,
        hits=result.hits,
        signed_kid=signed_kid,
    )
    gauge = metrics.current().gauge("tw_gates_self_audit_hits")
    for severity in SEVERITIES:
        gauge.labels(severity=severity).set(outcome.hits_by_severity.get(severity, 0))
    return outcome
