"""Adversarial corpora and the report of a run against them.

A corpus file holds one category of attacks on a Markdown parser (and on
whatever renders its output). A case carries its input in one of three forms:
``markdown`` (text), ``markdown_b64`` (raw bytes, for NUL and invalid UTF-8)
or ``generate`` (a deterministic generator, so a 100k-character or 2,000-level
input is built at run time instead of committed). Its ``expect`` lists what
the target's output and process must satisfy; a file's ``defaults`` apply to
every case in it.

``checks`` says whom an expectation is about: ``parser`` cases are met by a
careful parser configuration; ``downstream`` cases (template delimiters,
bidi and look-alike text) pass through any correct Markdown parser and check
the renderer that consumes its output. The report keeps the two apart.

Regular expressions a corpus supplies (``must_not_match``, the manifest's
named patterns) are RE2 syntax and run on RE2, whose time is linear in the
output's size: a corpus file cannot stall the gate with a backtracking
pattern. A pattern RE2 does not accept (lookaround, backreferences) is
refused when the corpus loads.

``adversarial_corpora/schema.json`` is this module's ``CorpusFile`` schema,
committed for editors; a unit test keeps the two equal."""

from __future__ import annotations

import base64
import binascii
import math
import re
from typing import Annotated, Any, Literal

import re2  # type: ignore[import-untyped]
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from tw_gates.schemas import first_duplicate

CASE_ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,99}$"
CATEGORY_PATTERN = r"^[a-z0-9][a-z0-9-]{0,49}$"
# A generated input larger than this is a corpus mistake, not an attack worth running.
MAX_GENERATED_CHARS = 16 * 1024 * 1024
Checks = Literal["parser", "downstream"]
REGEX_SYNTAX = (
    "RE2 syntax, matched in linear time: no lookaround, no backreferences; \\x{...} for a code point; "
    "\\s, \\w, \\b are ASCII; $ is the end of the output unless (?m)"
)
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False


def compile_regex(pattern: str) -> Any:
    """``pattern`` compiled by RE2 (an object with ``search``, like ``re``'s);
    ValueError naming what RE2 refused."""
    try:
        return re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise ValueError(
            f"not a regular expression RE2 accepts ({reason}); corpus regexes are {REGEX_SYNTAX}"
        ) from None


class _Generator(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _bounded(self):
        size = self.size()
        if size > MAX_GENERATED_CHARS:
            raise ValueError(f"generates {size:,} characters, above the {MAX_GENERATED_CHARS:,} limit")
        return self

    def size(self) -> int:  # pragma: no cover - every generator overrides it
        raise NotImplementedError

    def build(self) -> str:  # pragma: no cover
        raise NotImplementedError


class RepeatGenerator(_Generator):
    """``prefix + unit * count (joined by separator) + suffix``."""

    kind: Literal["repeat"]
    unit: str = Field(min_length=1)
    count: int = Field(ge=1, le=MAX_GENERATED_CHARS)
    separator: str = ""
    prefix: str = ""
    suffix: str = ""

    def size(self) -> int:
        return (
            len(self.prefix) + len(self.unit) * self.count + len(self.separator) * (self.count - 1) + len(self.suffix)
        )

    def build(self) -> str:
        return self.prefix + self.separator.join([self.unit] * self.count) + self.suffix


class NestGenerator(_Generator):
    """``prefix + open * depth + body + close * depth + suffix``: ``"> "``
    nests quotes, ``"- "`` lists, ``"["``/``"]"`` brackets."""

    kind: Literal["nest"]
    open: str = Field(min_length=1)
    close: str = ""
    depth: int = Field(ge=1, le=1_000_000)
    body: str = ""
    prefix: str = ""
    suffix: str = ""

    def size(self) -> int:
        return len(self.prefix) + (len(self.open) + len(self.close)) * self.depth + len(self.body) + len(self.suffix)

    def build(self) -> str:
        return self.prefix + self.open * self.depth + self.body + self.close * self.depth + self.suffix


class TableGenerator(_Generator):
    """A GFM pipe table: a header row, the delimiter row, ``rows`` body rows."""

    kind: Literal["table"]
    rows: int = Field(ge=0, le=1_000_000)
    columns: int = Field(ge=1, le=1_000_000)
    header: str = "h"
    cell: str = "x"

    def size(self) -> int:
        header_row = self.columns * (len(self.header) + 3) + 2
        delimiter_row = self.columns * 4 + 2
        return header_row + delimiter_row + self.rows * (self.columns * (len(self.cell) + 3) + 2)

    def build(self) -> str:
        def row(text: str) -> str:
            return "|" + "|".join(f" {text} " for _ in range(self.columns)) + "|\n"

        return row(self.header) + "|" + "---|" * self.columns + "\n" + row(self.cell) * self.rows


class LongLineGenerator(_Generator):
    """One line of exactly ``length`` characters: ``unit`` repeated and cut."""

    kind: Literal["long_line"]
    length: int = Field(ge=1, le=MAX_GENERATED_CHARS)
    unit: str = Field("a", min_length=1)
    prefix: str = ""

    def size(self) -> int:
        return len(self.prefix) + self.length

    def build(self) -> str:
        return self.prefix + (self.unit * math.ceil(self.length / len(self.unit)))[: self.length]


Generator = Annotated[
    RepeatGenerator | NestGenerator | TableGenerator | LongLineGenerator,
    Field(discriminator="kind"),
]


class Expectations(BaseModel):
    """What the target must satisfy. Unset fields inherit the file's
    ``defaults``; list fields add to them."""

    model_config = ConfigDict(extra="forbid")

    must_not_contain: list[str] = Field(
        default_factory=list, description="substrings the output (decoded as UTF-8) must not contain"
    )
    must_not_match: list[str] = Field(
        default_factory=list, description=f"regular expressions the output must not match ({REGEX_SYNTAX})"
    )
    must_not_match_patterns: list[str] = Field(
        default_factory=list, description="names of patterns from manifest.json the output must not match"
    )
    max_ms: int | None = Field(
        None,
        gt=0,
        description="time budget: CPU time (user + system) of the case's process, milliseconds; "
        "waiting on a busy machine does not count",
    )
    max_rss_mb: int | None = Field(
        None, gt=0, description="memory budget: peak resident memory of the case's process, MiB"
    )
    must_not_crash: bool | None = Field(
        None, description="the process exits 0 (default true); a timeout or a signal always counts as a crash"
    )
    must_be_utf8: bool | None = Field(None, description="the output is valid UTF-8 (default false)")

    @field_validator("must_not_match")
    @classmethod
    def _compiles(cls, patterns: list[str]) -> list[str]:
        for index, pattern in enumerate(patterns):
            try:
                compile_regex(pattern)
            except ValueError as exc:
                raise ValueError(f"pattern {index} is {exc}") from None
        return patterns

    @field_validator("must_not_contain")
    @classmethod
    def _non_empty(cls, needles: list[str]) -> list[str]:
        if any(not needle for needle in needles):
            raise ValueError("an empty substring matches every output")
        return needles

    def merged_over(self, defaults: Expectations) -> ResolvedExpectations:
        def pick(name: str, fallback):
            for source in (self, defaults):
                if getattr(source, name) is not None:
                    return getattr(source, name)
            return fallback

        return ResolvedExpectations(
            must_not_contain=list(dict.fromkeys(defaults.must_not_contain + self.must_not_contain)),
            must_not_match=list(dict.fromkeys(defaults.must_not_match + self.must_not_match)),
            must_not_match_patterns=list(
                dict.fromkeys(defaults.must_not_match_patterns + self.must_not_match_patterns)
            ),
            max_ms=pick("max_ms", None),
            max_rss_mb=pick("max_rss_mb", None),
            must_not_crash=pick("must_not_crash", True),
            must_be_utf8=pick("must_be_utf8", False),
        )


class ResolvedExpectations(BaseModel):
    """A case's expectations with the file's defaults applied."""

    must_not_contain: list[str]
    must_not_match: list[str]
    must_not_match_patterns: list[str]
    max_ms: int | None
    max_rss_mb: int | None
    must_not_crash: bool
    must_be_utf8: bool


class Case(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=CASE_ID_PATTERN, description="unique across all corpora")
    description: str = Field(min_length=1, max_length=500)
    checks: Checks = Field("parser", description="parser: a careful parser meets it; downstream: the renderer must")
    markdown: str | None = Field(None, description="the input, as text")
    markdown_b64: str | None = Field(None, description="the input as base64 bytes (NUL, invalid UTF-8)")
    generate: Generator | None = Field(None, description="build the input at run time")
    expect: Expectations = Field(default_factory=Expectations)

    @model_validator(mode="after")
    def _one_input(self):
        given = [name for name in ("markdown", "markdown_b64", "generate") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of markdown, markdown_b64, generate (got {', '.join(given) or 'none'})")
        if self.markdown_b64 is not None:
            try:
                base64.b64decode(self.markdown_b64, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise ValueError(f"markdown_b64 is not valid base64: {exc}") from None
        return self

    def input_bytes(self) -> bytes:
        if self.markdown_b64 is not None:
            return base64.b64decode(self.markdown_b64, validate=True)
        if self.generate is not None:
            return self.generate.build().encode("utf-8", "surrogatepass")
        return (self.markdown or "").encode("utf-8", "surrogatepass")


class CorpusFile(BaseModel):
    """One category of adversarial cases (``adversarial_corpora/<file>.json``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, title="tw-gates adversarial corpus 1.0")

    schema_ref: str | None = Field(None, alias="$schema", description="path of schema.json, for editors")
    schema_version: Literal["1.0"] = "1.0"
    category: str = Field(pattern=CATEGORY_PATTERN)
    description: str = Field(min_length=1, max_length=1000)
    defaults: Expectations = Field(default_factory=Expectations, description="apply to every case of the file")
    cases: list[Case] = Field(min_length=1, max_length=2000)

    @field_validator("cases")
    @classmethod
    def _unique_ids(cls, cases: list[Case]) -> list[Case]:
        twice = first_duplicate(case.id for case in cases)
        if twice is not None:
            raise ValueError(f"duplicate case id {twice!r}")
        return cases


class NamedPattern(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pattern: str = Field(min_length=1, description=f"a regular expression ({REGEX_SYNTAX})")
    description: str = Field(min_length=1, max_length=500)

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        compile_regex(pattern)
        return pattern


class CorpusManifest(BaseModel):
    """``adversarial_corpora/manifest.json``: the corpus files, in run order,
    and the named output patterns their cases refer to."""

    model_config = ConfigDict(extra="forbid", title="tw-gates adversarial corpora manifest 1.0")

    schema_version: Literal["1.0"] = "1.0"
    files: list[str] = Field(min_length=1)
    patterns: dict[Annotated[str, Field(pattern=CASE_ID_PATTERN)], NamedPattern] = Field(default_factory=dict)
    target_env: dict[str, str] = Field(
        default_factory=dict,
        description="variables set (to these values) in the target's environment: only LANG, LANGUAGE, LC_*, TZ; "
        "a corpus never passes a variable of the job through",
    )

    @field_validator("target_env")
    @classmethod
    def _locale_only(cls, variables: dict[str, str]) -> dict[str, str]:
        for name, value in variables.items():
            if not re.fullmatch(r"LANG|LANGUAGE|LC_[A-Z]+|TZ", name):
                raise ValueError(f"{name!r} cannot be set by a corpus (only LANG, LANGUAGE, LC_*, TZ)")
            if not re.fullmatch(r"[A-Za-z0-9_.:@/+-]{0,100}", value):
                raise ValueError(f"{name}: {value!r} is not a locale or time zone value")
        return variables

    @field_validator("files")
    @classmethod
    def _plain_names(cls, files: list[str]) -> list[str]:
        for name in files:
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*\.json", name) or name in ("manifest.json", "schema.json"):
                raise ValueError(f"{name!r} is not a corpus file name (a plain *.json name in the same folder)")
        if len(set(files)) != len(files):
            raise ValueError("a file is listed twice")
        return files


# --- the report of a run -------------------------------------------------------------


ViolationKind = Literal["output", "crash", "time_budget", "memory_budget"]
CaseStatus = Literal["passed", "violation", "over_budget", "downstream"]


class Violation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expectation: Literal[
        "must_not_contain", "must_not_match", "max_ms", "max_rss_mb", "must_not_crash", "must_be_utf8", "time_limit"
    ]
    kind: ViolationKind = Field(
        description="output: the rendering holds what it must not; crash: the process failed; "
        "time_budget / memory_budget: the case overran its budget (or was stopped by a limit)"
    )
    detail: str
    counts_as: Checks = Field(
        description="parser: fails the gate (output checks of parser cases, crashes and budget overruns of "
        "every case); downstream: output checks of downstream cases, per the policy"
    )


class CaseResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    category: str
    checks: Checks
    passed: bool = Field(description="every expectation held")
    status: CaseStatus = Field(
        description="violation (an output check of a parser case, or a crash), else over_budget (time or "
        "memory), else downstream (downstream checks only), else passed"
    )
    ms: float = Field(description="wall time of the case's process")
    cpu_ms: float | None = Field(None, description="CPU time (user + system) of the case's process: what max_ms judges")
    parse_ms: float | None = Field(None, description="parse+render time the target reported on stderr, if any")
    rss_mb: float = Field(description="peak resident memory of the case's process")
    input_bytes: int
    outcome: str = Field(description="how the process ended")
    violations: list[Violation] = Field(default_factory=list)


class CategorySummary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    category: str
    cases: int
    parser_violations: int = Field(description="cases with a parser violation (an output check, a crash)")
    over_budget: int = Field(0, description="cases over their time or memory budget (they fail the gate too)")
    downstream_violations: int = Field(description="cases whose downstream checks did not hold")
    seconds: float = Field(description="sum of the cases' wall times")
    cpu_seconds: float = Field(0.0, description="sum of the cases' CPU times")
    slowest_case: str
    slowest_ms: float


class AdversarialReport(BaseModel):
    model_config = ConfigDict(extra="forbid", title="tw-gates adversarial report 1.0")

    schema_version: Literal["1.0"] = "1.0"
    target: str
    generated_at: AwareDatetime
    corpora: str
    categories_run: list[str]
    jobs: int
    memory_limit_mb: int
    downstream_policy: Literal["report", "fail"]
    seconds: float = Field(description="wall time of the whole run")
    exit_code: int
    categories: list[CategorySummary]
    cases: list[CaseResult]
