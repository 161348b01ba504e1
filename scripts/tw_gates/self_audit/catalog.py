"""The renderer pattern catalog: what the self-audit looks for (ids, severities,
descriptions, file globs and the regex the line scanner uses), loaded from
``data/renderer_patterns.yml`` or a file of the same shape. The central audit
reads severities from the same catalog."""

from __future__ import annotations

import fnmatch
import importlib
import os
import re
import sys
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from tw_gates import DATA_DIR
from tw_gates.core.errors import UsageError
from tw_gates.core.fsio import load_document
from tw_gates.core.settings import describe_validation_error
from tw_gates.schemas import first_duplicate
from tw_gates.schemas.severity import Severity

# The regex parser of the standard library (``sre_parse`` before 3.11).
_re_parser = importlib.import_module("re._parser" if sys.version_info >= (3, 11) else "sre_parse")
_re_constants = importlib.import_module("re._constants" if sys.version_info >= (3, 11) else "sre_constants")

Precision = Literal["very-high", "high", "medium", "low"]
_GLOB_SPECIAL = re.compile(r"[*?\[\]]")
DEFAULT_CATALOG = DATA_DIR / "renderer_patterns.yml"
MAX_CATALOG_BYTES = 1024 * 1024  # the shipped catalog is about 10 KiB


def required_literals(regex: str) -> tuple[str, ...] | None:
    """Strings at least one of which occurs in every match of ``regex``, so
    that ``any(s in text ...)`` (C speed) can rule a file out before the
    regex scans it; None when none is known (case-insensitive, no literal)."""
    try:
        parsed = _re_parser.parse(regex, re.MULTILINE)
    except re.error:
        return None
    if parsed.state.flags & re.IGNORECASE:
        return None
    return _literals_of(list(parsed), _re_constants)


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
                consider(tuple(text for alternative in alternatives if alternative for text in alternative))
    consider(("".join(run),) if run else None)
    return best


class RendererPattern(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,99}$", description="stable id reported in every hit")
    regex: str = Field(min_length=1, description="Python re syntax, searched with MULTILINE")
    severity: Severity
    description: str = Field(min_length=1)
    help: str | None = Field(None, description="what to do about a hit (SARIF help; code scanning shows it)")
    precision: Precision = Field("medium", description="how often a hit is a real sink (SARIF precision)")
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

    @cached_property
    def _by_name_only(self) -> bool:
        return not any("/" in glob for glob in self.globs)

    @cached_property
    def _suffixes(self) -> tuple[tuple[str, ...], list[str]]:
        """The globs' plain ``*.ext`` suffixes (an ``endswith`` test), and the rest."""
        plain = tuple(g[1:] for g in self.globs if g.startswith("*.") and not _GLOB_SPECIAL.search(g[1:]))
        return plain, [g for g in self.globs if not (g.startswith("*.") and g[1:] in plain)]

    def matches_name(self, name: str) -> bool:
        plain, rest = self._suffixes
        return name.endswith(plain) or any(fnmatch.fnmatchcase(name, g) for g in rest if "/" not in g)


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

    def patterns_for(self, path: str) -> list[RendererPattern]:
        """The patterns whose globs match ``path`` (cached by file name for
        the patterns whose globs look at the name only)."""
        name = path.rsplit("/", 1)[-1]
        cache = self._name_cache
        by_name = cache.get(name)
        if by_name is None:
            if len(cache) > 65536:
                cache.clear()
            by_name = cache[name] = [p for p in self.patterns if p._by_name_only and p.matches_name(name)]
        if self._all_by_name:
            return by_name
        with_path = {p.id for p in self.patterns if not p._by_name_only and p.applies_to(path)}
        return [p for p in self.patterns if p in by_name or p.id in with_path]

    @cached_property
    def _all_by_name(self) -> bool:
        return all(p._by_name_only for p in self.patterns)

    @cached_property
    def _name_cache(self) -> dict[str, list[RendererPattern]]:
        return {}

    @cached_property
    def by_id(self) -> dict[str, RendererPattern]:
        return {p.id: p for p in self.patterns}

    def severity_of(self, pattern_id: str) -> Severity | None:
        """The severity of a pattern id, None when the catalog does not know it."""
        pattern = self.by_id.get(pattern_id)
        return pattern.severity if pattern else None


def _read_catalog(path: Path) -> PatternCatalog:
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
