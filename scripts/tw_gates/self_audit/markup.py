"""Markup files and components, split into what each part is: HTML (and the
template of a Vue or Svelte component) is parsed with tree-sitter-html for
its attributes (``v-html``, ``:innerHTML``, ``[innerHTML]``, ``th:utext``)
and its inline ``<script>`` blocks, which go to the JavaScript scanner with
their line numbers kept. MDX is split into its Markdown and its JSX/ESM
blocks (fenced code is text, never code)."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache

import tree_sitter
import tree_sitter_html

from tw_gates.self_audit.hits import Finding
from tw_gates.self_audit.js_scan import scan_js
from tw_gates.self_audit.js_values import harmless_expression
from tw_gates.self_audit.templates import blank, scan_svelte_markup

# Attribute name -> pattern id.
ATTRIBUTE_SINKS = {
    "v-html": "vue-v-html",
    ":innerhtml": "vue-v-html",
    "v-bind:innerhtml": "vue-v-html",
    ":outerhtml": "vue-v-html",
    "v-bind:outerhtml": "vue-v-html",
    "[innerhtml]": "angular-inner-html-binding",
    "[outerhtml]": "angular-inner-html-binding",
    "th:utext": "thymeleaf-utext",
    "data-th-utext": "thymeleaf-utext",
    "bind:innerhtml": "dom-inner-html",
    "ng-bind-html-unsafe": "angularjs-sce-trust",  # AngularJS 1.0: binds without $sanitize
}
_QUERY = """
(attribute (attribute_name) @name) @attribute
(script_element (start_tag) @start (raw_text) @code) @script
"""
_JS_TYPES = frozenset({"", "text/javascript", "module", "application/javascript", "text/babel", "text/jsx"})
_FENCE = re.compile(r"^(?P<fence>```|~~~).*?^(?P=fence)[ \t]*$", re.M | re.S)
_INLINE_CODE = re.compile(r"`[^`\n]+`")
_MDX_JS_BLOCK = re.compile(r"^(?:<|import\s|export\s|\{)")
MDX_LINE_SINKS = (
    (re.compile(r"\bdangerouslySetInnerHTML\b"), "react-dangerously-set-inner-html"),
    (re.compile(r"\.(?:innerHTML|outerHTML)\s*\+?=(?!=)"), "dom-inner-html"),
    (re.compile(r"\bdocument\s*\.\s*write(?:ln)?\s*\("), "dom-document-write"),
)
LineFallback = Callable[[str, int], list[Finding]]


@cache
def _html() -> tuple[tree_sitter.Language, tree_sitter.Query]:
    language = tree_sitter.Language(tree_sitter_html.language())
    return language, tree_sitter.Query(language, _QUERY)


def _text(node: tree_sitter.Node | None) -> str:
    return node.text.decode("utf-8", "replace") if node is not None and node.text is not None else ""


def _attribute_value(attribute: tree_sitter.Node) -> str | None:
    for child in attribute.named_children:
        if child.type == "quoted_attribute_value":
            inner = child.named_children
            return _text(inner[0]) if inner else ""
        if child.type == "attribute_value":
            return _text(child)
    return None


def _script_grammar(start: tree_sitter.Node) -> str | None:
    """The grammar of a ``<script>`` block, None for data (JSON, templates)."""
    kind, lang = "", ""
    for attribute in start.named_children:
        if attribute.type != "attribute":
            continue
        name = _text(attribute.named_children[0]).lower() if attribute.named_children else ""
        if name == "type":
            kind = (_attribute_value(attribute) or "").strip().lower()
        elif name == "lang":
            lang = (_attribute_value(attribute) or "").strip().lower()
        elif name == "src":
            return None
    if kind not in _JS_TYPES:
        return None
    if lang in ("ts", "typescript"):
        return "typescript"
    return "tsx" if lang == "tsx" else "javascript"


def scan_html(text: str, *, first_line: int = 1, line_fallback: LineFallback | None = None) -> list[Finding]:
    """Attribute sinks and inline scripts of an HTML document, a Vue or
    Svelte component or an Angular template (comments never match)."""
    language, query = _html()
    source = text.encode("utf-8")
    tree = tree_sitter.Parser(language).parse(source)
    findings: list[Finding] = []
    for _, captures in tree_sitter.QueryCursor(query).matches(tree.root_node):
        if "attribute" in captures:
            attribute = captures["attribute"][0]
            pattern = ATTRIBUTE_SINKS.get(_text(captures["name"][0]).lower())
            if pattern:
                value = _attribute_value(attribute)
                judged = harmless_expression(value) if value else None
                findings.append(Finding(attribute.start_point.row + first_line, pattern, judged))
        elif "script" in captures:
            findings.extend(_script(captures, first_line, line_fallback))
    return findings


def _script(captures, first_line: int, line_fallback: LineFallback | None) -> list[Finding]:
    grammar = _script_grammar(captures["start"][0])
    code = captures["code"][0]
    if grammar is None or code.text is None:
        return []
    start = code.start_point.row + first_line
    # Keep columns of the first line out of it: the block starts after '>'.
    found = scan_js(code.text, grammar, first_line=start, html_template=_template_scanner, line_fallback=line_fallback)
    if found is None and line_fallback is not None:
        return line_fallback(code.text.decode("utf-8", "replace"), start)
    return found or []


def _template_scanner(text: str, first_line: int) -> list[Finding]:
    """A ``template:`` option's literal: a Vue or Angular template."""
    return scan_html(text, first_line=first_line)


def scan_svelte(text: str, *, line_fallback: LineFallback | None = None) -> list[Finding]:
    """A Svelte component: its scripts and attributes, and ``{@html}`` in
    its markup (scripts and styles blanked out)."""
    findings = scan_html(text, line_fallback=line_fallback)
    markup = re.sub(r"<(script|style)\b.*?</\1\s*>", blank, text, flags=re.S | re.I)
    findings.extend(scan_svelte_markup(markup, judge=harmless_expression))
    return findings


def scan_mdx(text: str, *, line_fallback: LineFallback | None = None) -> list[Finding]:
    """MDX: its JSX and ESM blocks are scanned as JSX; fenced and inline
    code is text. A block that does not parse is matched line by line."""
    clean = _INLINE_CODE.sub(blank, _FENCE.sub(blank, text))
    findings: list[Finding] = []
    line = 1
    for block in re.split(r"(\n[ \t]*\n)", clean):
        if block.strip() and _MDX_JS_BLOCK.match(block.lstrip()):
            found = scan_js(block.encode("utf-8"), "javascript", first_line=line, html_template=_template_scanner)
            if found is None:
                found = [
                    Finding(line + block.count("\n", 0, m.start()), pattern, None, "line")
                    for regex, pattern in MDX_LINE_SINKS
                    for m in regex.finditer(block)
                ]
            findings.extend(found)
        line += block.count("\n")
    return findings
