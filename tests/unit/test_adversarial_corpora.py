"""The corpus format, the bundled corpora, and the named output patterns."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from pydantic import ValidationError

from tw_gates.parser.corpora import BUNDLED_CORPORA, load_corpora
from tw_gates.parser.targets import allow_listed_link
from tw_gates.schemas.corpus import Case, CorpusFile, CorpusManifest, compile_regex

SEED_CATEGORIES = {
    "html-xss",
    "template-injection",
    "uri",
    "unicode",
    "deep-nesting",
    "huge-lists",
    "oversized-tables",
    "regex-pathological",
    "large-document",
    "malformed",
    "smoke",
}


@pytest.fixture(scope="module")
def bundled():
    return load_corpora(BUNDLED_CORPORA)


def test_committed_schema_is_the_models_schema():
    committed = json.loads((BUNDLED_CORPORA / "schema.json").read_text(encoding="utf-8"))
    assert committed == CorpusFile.model_json_schema(), (
        "adversarial_corpora/schema.json is stale: tw-gates schema adversarial-corpus > adversarial_corpora/schema.json"
    )


def test_bundled_corpora_cover_the_seed_categories(bundled):
    categories = {c.category for c in bundled.files}
    assert categories >= SEED_CATEGORIES
    cases = [case for c in bundled.files for case in c.model.cases]
    assert 100 <= len(cases) <= 300  # the gate's time budget is sized for this


def test_downstream_checks_are_only_where_a_parser_cannot_help(bundled):
    for corpus in bundled.files:
        for case in corpus.model.cases:
            if case.checks == "downstream":
                assert corpus.category in {"template-injection", "unicode", "smoke"}, case.id


def test_generated_sizes_are_what_the_corpus_promises(bundled):
    for corpus in bundled.files:
        for case in corpus.model.cases:
            if case.generate is not None:
                assert len(case.generate.build()) == case.generate.size(), case.id
    by_id = {case.id: case for c in bundled.files for case in c.model.cases}
    pathological = next(c for c in bundled.files if c.category == "regex-pathological").model.cases
    assert all(len(case.input_bytes()) >= 99_990 for case in pathological)
    assert by_id["nesting-blockquotes-2000"].input_bytes().count(b">") == 2000
    assert len(by_id["large-mixed-1mb"].input_bytes()) > 900_000


def test_bytes_inputs_carry_invalid_utf8_and_nul(bundled):
    by_id = {case.id: case for c in bundled.files for case in c.model.cases}
    with pytest.raises(UnicodeDecodeError):
        by_id["malformed-invalid-utf8"].input_bytes().decode("utf-8")
    assert b"\x00" in by_id["malformed-nul-bytes"].input_bytes()


def test_corpus_files_are_ascii_so_no_bidi_control_hides_in_the_repository():
    for path in BUNDLED_CORPORA.glob("*.json"):
        assert path.read_bytes().isascii(), f"{path.name}: write non-ASCII characters as \\u escapes"


def test_a_case_needs_exactly_one_input():
    with pytest.raises(ValidationError, match="exactly one of markdown, markdown_b64, generate"):
        Case.model_validate({"id": "x", "description": "d", "markdown": "a", "markdown_b64": "YQ=="})
    with pytest.raises(ValidationError, match="exactly one"):
        Case.model_validate({"id": "x", "description": "d"})
    with pytest.raises(ValidationError, match="not valid base64"):
        Case.model_validate({"id": "x", "description": "d", "markdown_b64": "not base64!"})


def test_expectations_reject_what_would_match_everything_or_nothing():
    with pytest.raises(ValidationError, match="not a regular expression RE2 accepts"):
        Case.model_validate(
            {"id": "x", "description": "d", "markdown": "a", "expect": {"must_not_match": ["(unclosed"]}}
        )
    with pytest.raises(ValidationError, match="empty substring"):
        Case.model_validate({"id": "x", "description": "d", "markdown": "a", "expect": {"must_not_contain": [""]}})


def test_generators_are_bounded():
    with pytest.raises(ValidationError, match="above the"):
        Case.model_validate(
            {"id": "x", "description": "d", "generate": {"kind": "repeat", "unit": "abcd", "count": 10_000_000}}
        )


def test_defaults_merge_under_case_expectations():
    corpus = CorpusFile.model_validate(
        {
            "category": "c",
            "description": "d",
            "defaults": {"must_not_contain": ["a"], "max_ms": 100, "must_be_utf8": True},
            "cases": [
                {
                    "id": "x",
                    "description": "d",
                    "markdown": "m",
                    "expect": {"must_not_contain": ["b"], "max_ms": 50, "must_not_crash": False},
                }
            ],
        }
    )
    resolved = corpus.cases[0].expect.merged_over(corpus.defaults)
    assert resolved.must_not_contain == ["a", "b"]
    assert (resolved.max_ms, resolved.must_be_utf8, resolved.must_not_crash, resolved.max_rss_mb) == (
        50,
        True,
        False,
        None,
    )


def test_manifest_names_plain_files_once():
    with pytest.raises(ValidationError, match="not a corpus file name"):
        CorpusManifest.model_validate({"files": ["../x.json"]})
    with pytest.raises(ValidationError, match="listed twice"):
        CorpusManifest.model_validate({"files": ["a.json", "a.json"]})


# --- the named patterns: they must catch the attack and spare a careful parser's output ---------


@pytest.fixture(scope="module")
def patterns(bundled):
    # Compiled the way the gate runs them: RE2.
    return {name: compile_regex(p.pattern) for name, p in bundled.manifest.patterns.items()}


@pytest.mark.parametrize(
    "name, html",
    [
        ("event-handler", "<img src=x onerror=alert(1)>"),
        ("event-handler", '<ImG sRc="x"\tOnErRoR="alert(1)">'),
        ("event-handler", "<svg/onload=alert(1)>"),
        ("dangerous-url", '<a href="javascript:alert(1)">'),
        ("dangerous-url", '<a href=" JaVa\tScRiPt:alert(1)">'),
        ("dangerous-url", "<iframe src='data:text/html,x'>"),
        ("dangerous-url", '<img src="DATA:image/svg+xml;base64,PHN2Zz4=">'),
        ("dangerous-url", '<a href="data:\timage/png;base64,AAA=">'),
        ("dangerous-url", '<a href="data:image/png">'),
        ("charref-in-url", '<a href="javascript&colon;alert(1)">'),
        ("charref-in-url", '<a href="x&AMP&#58;y">'),
        ("charref-in-url", "<a href=x\x0bjavascript&colon;alert(1)>"),  # VT is not HTML whitespace
        ("bidi-control", "a\u202eb"),
        ("unicode-tag-character", "a\U000e0041b"),
        ("charref-in-url", '<a href="&#106;avascript:alert(1)">'),
        ("charref-in-url", '<a href="javascript&colon;alert(1)">'),
        ("style-payload", '<div style="background:url(javascript:alert(1))">'),
        ("scheme-relative-url", '<a href="//evil.example/">'),
        ("non-ascii-url", '<a href="https://example.com/\u202efdp.exe">'),
        ("dangerous-tag", "<script>alert(1)</script>"),
        ("srcdoc", '<iframe srcdoc="&lt;script&gt;">'),
    ],
)
def test_patterns_catch_the_attack(patterns, name, html):
    assert patterns[name].search(html)


@pytest.mark.parametrize(
    "html",
    [
        # markdown-it's own output for the attacks, as a careful configuration renders them.
        "<p>&lt;img src=x onerror=alert(1)&gt;</p>",
        '<p><a href="https://a.example" title="t onmouseover=alert(1) href=javascript:alert(1)">x</a></p>',
        '<p><img src="x.png" alt="&quot; onerror=&quot;alert(1)" /></p>',
        '<pre><code class="language-&quot;">q</code></pre>',
        '<p><a href="https://example.com/?a=1&amp;b=2">x</a></p>',
        '<p><a href="data:image/png;base64,AAA=">x</a></p>',
        '<p><img src="DATA:IMAGE/WEBP,AAA=" alt="" /></p>',
        '<p><a href="https://example.com/?a=1&AMP;b=2">x</a></p>',
        '<th style="text-align:right">a</th>',
        '<p><a href="https://xn--l-7sba6dbr.com/login">a</a> <a href="java%09script:alert(1)">b</a></p>',
        "<p>[a](javascript:alert(1))</p>",
    ],
)
def test_patterns_spare_a_careful_parsers_output(patterns, html):
    parser_patterns = [
        "dangerous-tag",
        "event-handler",
        "dangerous-url",
        "charref-in-url",
        "style-payload",
        "srcdoc",
        "scheme-relative-url",
        "non-ascii-url",
    ]
    assert [name for name in parser_patterns if patterns[name].search(html)] == []


def test_every_named_pattern_is_used(bundled):
    used = {
        n
        for c in bundled.files
        for e in [c.model.defaults, *(k.expect for k in c.model.cases)]
        for n in e.must_not_match_patterns
    }
    assert used == set(bundled.manifest.patterns)


# --- the builtin targets ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, allowed",
    [
        ("https://example.com/x", True),
        ("mailto:a@example.com", True),
        ("/relative/path", True),
        ("#anchor", True),
        ("data:image/png;base64,AAA=", True),
        ("javascript:alert(1)", False),
        ("JAVASCRIPT:alert(1)", False),
        ("vbscript:x", False),
        ("data:text/html,x", False),
        ("data:image/svg+xml;base64,x", False),
        ("file:///etc/passwd", False),
        ("//evil.example/", False),
        ("ftp://example.com/", False),
    ],
)
def test_safe_target_allow_lists_link_schemes(url, allowed):
    assert allow_listed_link(url) is allowed


def test_builtin_targets_are_processes_reading_stdin():
    def render(name: str, text: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "tw_gates.parser.targets", name],
            input=text.encode(),
            capture_output=True,
            timeout=60,
            check=True,
        )
        assert b"tw-gates-parse-ms:" in done.stderr
        return done.stdout.decode()

    attack = "<img src=x onerror=alert(1)> [a](//evil.example/)\n"
    assert "<img src=x onerror" in render("commonmark", attack)
    safe = render("safe", attack)
    assert "&lt;img" in safe and 'href="//evil' not in safe
    usage = subprocess.run([sys.executable, "-m", "tw_gates.parser.targets", "nope"], capture_output=True, timeout=60)
    assert usage.returncode == 1 and b"usage:" in usage.stderr
