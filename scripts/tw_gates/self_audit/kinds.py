"""Which scanner reads which file: the file kind by name, and the syntax (or
template) scanner of each kind. A kind's scanner returns None when the file
does not parse; the caller then falls back to the line scanner."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import PurePosixPath

from tw_gates.self_audit.hits import Finding, Scanner
from tw_gates.self_audit.js_scan import grammar_for, scan_js
from tw_gates.self_audit.markup import scan_html, scan_mdx, scan_svelte
from tw_gates.self_audit.python_scan import scan_python_partially
from tw_gates.self_audit.templates import scan_ejs, scan_jinja, scan_mustache, scan_pug

KIND_BY_SUFFIX = {
    ".py": "python",
    ".pyw": "python",
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".jsx": "javascript",
    ".ts": "javascript",
    ".mts": "javascript",
    ".cts": "javascript",
    ".tsx": "javascript",
    ".vue": "vue",
    ".svelte": "svelte",
    ".mdx": "mdx",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".jinja": "jinja",
    ".jinja2": "jinja",
    ".j2": "jinja",
    ".njk": "jinja",
    ".nunjucks": "jinja",
    ".tmpl": "jinja",
    ".tpl": "jinja",
    ".djhtml": "jinja",
    ".liquid": "jinja",
    ".txt": "jinja",  # Django/Jinja text templates (emails)
    ".xml": "jinja",  # feeds and sitemaps rendered by a template engine
    ".twig": "twig",
    ".hbs": "mustache",
    ".handlebars": "mustache",
    ".mustache": "mustache",
    ".ejs": "ejs",
    ".pug": "pug",
    ".jade": "pug",
}
# The pattern ids the syntax and template scanners report: in a file one of
# them reads, these are not matched line by line (other patterns still are).
SYNTAX_PATTERNS = frozenset(
    {
        "jinja2-from-string",
        "flask-render-template-string",
        "flask-render-template-non-html",
        "jinja2-template",
        "jinja2-autoescape-disabled",
        "django-autoescape-disabled",
        "markupsafe-markup",
        "markupsafe-unescape",
        "django-template",
        "django-render-to-string",
        "django-mark-safe",
        "django-safestring-subclass",
        "django-filter-is-safe",
        "django-html-safe",
        "django-format-html",
        "python-dunder-html",
        "mako-template",
        "tornado-template",
        "markdown-it-html-enabled",
        "template-safe-filter",
        "template-autoescape-off",
        "handlebars-triple-stash",
        "ejs-unescaped-output",
        "pug-unescaped-output",
        "thymeleaf-utext",
        "react-dangerously-set-inner-html",
        "react-markdown-raw-html",
        "vue-v-html",
        "dom-inner-html",
        "dom-insert-adjacent-html",
        "dom-document-write",
        "dom-unsafe-html-parsing",
        "dom-srcdoc",
        "svelte-html-tag",
        "angular-bypass-sanitizer",
        "angular-inner-html-binding",
        "angularjs-sce-trust",
        "jquery-html-sink",
        "lodash-template",
        "handlebars-compile",
        "handlebars-safe-string",
        "mustache-escape-overwrite",
        "nunjucks-render-string",
        "nunjucks-autoescape-disabled",
    }
)
LineFallback = Callable[[str, int], list[Finding]]


def kind_of(path: str) -> str | None:
    """The file kind a syntax or template scanner reads, None for others."""
    return KIND_BY_SUFFIX.get(PurePosixPath(path).suffix.lower())


def scanner_label(kind: str) -> Scanner:
    return "syntax" if kind in ("python", "javascript", "vue", "svelte", "mdx", "html") else "template"


def scan_kind(kind: str, path: str, text: str, data: bytes, fallback: LineFallback) -> list[Finding] | None:
    """The findings of the kind's scanner, None when the file does not parse."""
    if kind == "python":
        return scan_python_partially(text, fallback)
    if kind == "javascript":
        template = partial(_template, fallback=fallback)
        return scan_js(data, grammar_for(path), html_template=template, line_fallback=fallback)
    if kind == "html":
        return scan_html(text, line_fallback=fallback) + _as_template(scan_jinja(text) + scan_mustache(text))
    if kind == "vue":
        return scan_html(text, line_fallback=fallback)
    if kind == "svelte":
        return scan_svelte(text, line_fallback=fallback)
    if kind == "mdx":
        return scan_mdx(text, line_fallback=fallback)
    return TEMPLATE_SCANNERS[kind](text)


def _as_template(findings: list[Finding]) -> list[Finding]:
    return [replace(f, scanner="template") if f.scanner is None else f for f in findings]


def _template(text: str, first_line: int, *, fallback: LineFallback) -> list[Finding]:
    return scan_html(text, first_line=first_line, line_fallback=fallback)


TEMPLATE_SCANNERS: dict[str, Callable[[str], list[Finding]]] = {
    "jinja": lambda text: scan_jinja(text) + scan_mustache(text),
    "twig": lambda text: scan_jinja(text, filters=("safe", "safeseq", "raw")),
    "mustache": scan_mustache,
    "ejs": scan_ejs,
    "pug": scan_pug,
}
