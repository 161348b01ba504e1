"""Template languages, each read by its own small lexer: comments are
blanked out first (with their newlines kept, so line numbers stay true), then
only the constructs that output a value unescaped are matched:

- Jinja2/Django/Nunjucks/Twig: the ``safe``/``safeseq`` filters (``raw`` in
  Twig) inside ``{{ }}`` or ``{% %}``, and ``{% autoescape off|false %}``;
- Mustache/Handlebars: triple braces ``{{{x}}}`` and ``{{&x}}``;
- EJS: ``<%- x %>`` (not ``<%- include(...) %>``, EJS's way to insert a partial);
- Pug: ``!{x}``, ``tag!= x``, ``attr!=x`` and ``&attributes(x)``;
- Svelte: ``{@html x}``.

A value that is a string literal is reported as harmless (``constant``)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from tw_gates.self_audit.hits import Argument, Finding

_JINJA_COMMENTS = re.compile(
    r"\{#.*?#\}"
    r"|\{%-?\s*comment\s*-?%\}.*?\{%-?\s*endcomment\s*-?%\}"
    r"|\{%-?\s*raw\s*-?%\}.*?\{%-?\s*endraw\s*-?%\}"
    r"|\{%-?\s*verbatim\s*-?%\}.*?\{%-?\s*endverbatim\s*-?%\}",
    re.S,
)
_JINJA_BLOCKS = re.compile(r"\{\{(?!\{)(.*?)\}\}|\{%(.*?)%\}", re.S)
_STRINGS = re.compile(r"'(?:[^'\\\n]|\\.)*'|\"(?:[^\"\\\n]|\\.)*\"")
_AUTOESCAPE_OFF = re.compile(r"^[-+]?\s*autoescape\s+(?:off|false)\b")
_FILTER_TAG = re.compile(r"^[-+]?\s*filter\s+(?:\w+\s*\|\s*)*(?:safe|safeseq)\b")
_LITERAL_ONLY = re.compile(r"^\s*(?:'[^']*'|\"[^\"]*\")\s*$")

_MUSTACHE_COMMENTS = re.compile(r"\{\{!--.*?--\}\}|\{\{!.*?\}\}", re.S)
_MUSTACHE_RAW = re.compile(r"\{\{~?\{~?(.*?)~?\}~?\}\}|\{\{~?&(.*?)~?\}\}", re.S)

_EJS_TAGS = re.compile(r"<%([#%_=-]?)(.*?)[-_]?%>", re.S)
_EJS_INCLUDE = re.compile(r"^\s*include\b")

_PUG_INTERPOLATION = re.compile(r"(?<!\\)!\{")
_PUG_BUFFERED = re.compile(r"^\s*(?:[\w#.:-]*(?:\([^)]*\))?)?!=")
_PUG_ATTRIBUTES = re.compile(r"^\s*[\w#.:-]+\(([^()]*(?:\([^()]*\)[^()]*)*)\)")
_PUG_ATTRIBUTE = re.compile(r"(?:^|[\s,])[\w:@.\-\[\]]+\s*!=(?!=)")
_PUG_AND_ATTRIBUTES = re.compile(r"&attributes\(")
_PUG_CODE = re.compile(r"^\s*(?:-|if\b|else\b|unless\b|while\b|each\b|for\b|case\b|when\b|script\b|style\b)")

_SVELTE_COMMENTS = re.compile(r"<!--.*?-->", re.S)
_SVELTE_HTML = re.compile(r"\{@html\s(.*?)\}", re.S)


def blank(match: re.Match[str]) -> str:
    """The match replaced by spaces, its newlines kept."""
    return re.sub(r"[^\n]", " ", match.group(0))


def _line(text: str, offset: int, first_line: int) -> int:
    return first_line + text.count("\n", 0, offset)


def scan_jinja(text: str, *, first_line: int = 1, filters: tuple[str, ...] = ("safe", "safeseq")) -> list[Finding]:
    """Jinja2/Django/Nunjucks/Twig constructs that turn escaping off."""
    if "{" not in text:
        return []
    clean = _JINJA_COMMENTS.sub(blank, text)
    unsafe = re.compile(r"\|\s*(?:" + "|".join(filters) + r")\b(?!\s*\()")
    findings = []
    for match in _JINJA_BLOCKS.finditer(clean):
        expression, tag = match.group(1), match.group(2)
        body = _STRINGS.sub(blank, expression if expression is not None else tag)
        if tag is not None and _AUTOESCAPE_OFF.search(body):
            findings.append(Finding(_line(clean, match.start(), first_line), "template-autoescape-off"))
        filtered = unsafe.search(body)
        if tag is not None and _FILTER_TAG.search(body):
            findings.append(Finding(_line(clean, match.start(), first_line), "template-safe-filter"))
        elif filtered:
            source = expression if expression is not None else tag
            head = source[: filtered.start()]
            argument: Argument | None = "constant" if _LITERAL_ONLY.match(head) else None
            findings.append(Finding(_line(clean, match.start(), first_line), "template-safe-filter", argument))
    return findings


def scan_mustache(text: str, *, first_line: int = 1) -> list[Finding]:
    """Mustache/Handlebars raw output: ``{{{x}}}`` and ``{{&x}}``."""
    if "{{" not in text:
        return []
    clean = _MUSTACHE_COMMENTS.sub(blank, text)
    return [
        Finding(_line(clean, m.start(), first_line), "handlebars-triple-stash") for m in _MUSTACHE_RAW.finditer(clean)
    ]


def scan_ejs(text: str, *, first_line: int = 1) -> list[Finding]:
    """EJS ``<%-``, the unescaped output tag."""
    findings = []
    for match in _EJS_TAGS.finditer(text):
        kind, body = match.group(1), match.group(2)
        if kind != "-" or _EJS_INCLUDE.match(body):
            continue
        argument: Argument | None = "constant" if _LITERAL_ONLY.match(body) else None
        findings.append(Finding(_line(text, match.start(), first_line), "ejs-unescaped-output", argument))
    return findings


def _pug_lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, line) for lines outside comments (``//`` and ``//-``,
    with every more indented line after them)."""
    comment_indent: int | None = None
    for number, line in enumerate(text.split("\n"), 1):
        stripped = line.lstrip()
        indent = len(line) - len(stripped)
        if comment_indent is not None:
            if not stripped or indent > comment_indent:
                continue
            comment_indent = None
        if stripped.startswith("//"):
            comment_indent = indent
            continue
        yield number, line


def scan_pug(text: str, *, first_line: int = 1) -> list[Finding]:
    """Pug's unescaped interpolation, buffered code and attributes."""
    findings = []
    for number, line in _pug_lines(text):
        if _PUG_CODE.match(line):
            continue
        code = _STRINGS.sub(blank, line)
        if (
            _PUG_INTERPOLATION.search(line)
            or _PUG_BUFFERED.match(code)
            or _pug_unescaped_attribute(code)
            or _PUG_AND_ATTRIBUTES.search(code)
        ):
            findings.append(Finding(first_line + number - 1, "pug-unescaped-output"))
    return findings


def _pug_unescaped_attribute(code: str) -> bool:
    attributes = _PUG_ATTRIBUTES.match(code)
    return attributes is not None and _PUG_ATTRIBUTE.search(attributes.group(1)) is not None


def scan_svelte_markup(text: str, *, first_line: int = 1, judge=None) -> list[Finding]:
    """Svelte's ``{@html x}`` (``judge`` tells a harmless expression)."""
    if "{@html" not in text:
        return []
    clean = _SVELTE_COMMENTS.sub(blank, text)
    return [
        Finding(_line(clean, m.start(), first_line), "svelte-html-tag", judge(m.group(1)) if judge else None)
        for m in _SVELTE_HTML.finditer(clean)
    ]
