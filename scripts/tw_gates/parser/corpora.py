"""Adversarial corpora: load the folder (manifest and corpus files), select
categories, and plan the cases (expectations resolved, regexes compiled)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tw_gates import DATA_DIR
from tw_gates.core.errors import UsageError
from tw_gates.core.fsio import load_model
from tw_gates.schemas.corpus import Case, CorpusFile, CorpusManifest, ResolvedExpectations, compile_regex

BUNDLED_CORPORA = DATA_DIR / "corpora"
MANIFEST = "manifest.json"
SCHEMA_FILE = "schema.json"
MAX_CORPUS_FILE_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class Corpus:
    file: str
    model: CorpusFile

    @property
    def category(self) -> str:
        return self.model.category


@dataclass(frozen=True)
class Corpora:
    directory: Path
    manifest: CorpusManifest
    files: list[Corpus]


@dataclass(frozen=True)
class PlannedCase:
    category: str
    case: Case
    expect: ResolvedExpectations
    # (how a violation names it, compiled RE2 regex): the manifest's named
    # patterns by name, the case's own regexes by their source.
    regexes: list[tuple[str, Any]]


def load_corpora(directory: Path) -> Corpora:
    """Every corpus file the manifest lists, validated, in manifest order.

    A JSON file in the folder that the manifest does not list is an error:
    a corpus nobody runs is a check silently lost."""
    if not directory.is_dir():
        raise UsageError(f"corpora folder {directory} does not exist")
    manifest_path = directory / MANIFEST
    manifest = load_model(manifest_path, CorpusManifest, "corpus manifest", max_bytes=MAX_CORPUS_FILE_BYTES, fmt="json")
    present = {p.name for p in directory.glob("*.json")} - {MANIFEST, SCHEMA_FILE}
    unlisted = sorted(present - set(manifest.files))
    if unlisted:
        raise UsageError(f"{directory}: {', '.join(unlisted)} not listed in {MANIFEST} (list it or remove it)")
    corpora: list[Corpus] = []
    categories: dict[str, str] = {}
    case_files: dict[str, str] = {}
    for name in manifest.files:
        path = directory / name
        model = load_model(path, CorpusFile, "corpus file", max_bytes=MAX_CORPUS_FILE_BYTES, fmt="json")
        if model.category in categories:
            raise UsageError(
                f"{path}: category {model.category!r} is also the category of {categories[model.category]}"
            )
        categories[model.category] = name
        _check_pattern_names(path, model, manifest)
        for case in model.cases:
            if case.id in case_files:
                raise UsageError(f"{path}: case id {case.id!r} is also used in {case_files[case.id]}")
            case_files[case.id] = name
        corpora.append(Corpus(file=name, model=model))
    return Corpora(directory=directory, manifest=manifest, files=corpora)


def _check_pattern_names(path: Path, model: CorpusFile, manifest: CorpusManifest) -> None:
    for where, expect in [("defaults", model.defaults), *((case.id, case.expect) for case in model.cases)]:
        unknown = [n for n in expect.must_not_match_patterns if n not in manifest.patterns]
        if unknown:
            raise UsageError(
                f"{path}: {where}: unknown pattern(s) {', '.join(unknown)} (the patterns are defined in {MANIFEST})"
            )


def select_corpora(corpora: list[Corpus], only: list[str]) -> list[Corpus]:
    if not only:
        return corpora
    known = [c.category for c in corpora]
    unknown = [name for name in only if name not in known]
    if unknown:
        raise UsageError(
            f"unknown categor{'y' if len(unknown) == 1 else 'ies'}: {', '.join(unknown)} (known: {', '.join(known)})"
        )
    return [c for c in corpora if c.category in only]


def plan(corpora: list[Corpus], manifest: CorpusManifest) -> list[PlannedCase]:
    compiled: dict[str, Any] = {}

    def regex(source: str) -> Any:
        if source not in compiled:
            compiled[source] = compile_regex(source)
        return compiled[source]

    planned = []
    for corpus in corpora:
        for case in corpus.model.cases:
            expect = case.expect.merged_over(corpus.model.defaults)
            regexes = [(name, regex(manifest.patterns[name].pattern)) for name in expect.must_not_match_patterns]
            regexes += [(f"/{source}/", regex(source)) for source in expect.must_not_match]
            planned.append(PlannedCase(category=corpus.category, case=case, expect=expect, regexes=regexes))
    return planned


def input_size(case: Case) -> int:
    """The size of a case's input, without building a generated one."""
    if case.generate is not None:
        return case.generate.size()
    return len(case.markdown_b64 or case.markdown or "")
