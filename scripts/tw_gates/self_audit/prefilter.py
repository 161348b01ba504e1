"""The literal prefilter: one RE2 search per file, over its bytes, for the
words without which no scanner of that file's kind can find anything
(``innerHTML``, ``mark_safe``, ``|safe``, ...). RE2 runs a DFA in C at about
the speed the machine reads; a file with no candidate is never decoded or
parsed. Each kind's words are a necessary condition of every syntax
matcher of that kind (a test checks this on the benchmark files)."""

from __future__ import annotations

from functools import cache

import re2  # type: ignore[import-untyped]

_PYTHON = (
    r"Markup|mark_safe|\bSafe(?:String|Text|Data|Bytes|Unicode)\b|render_template|from_string|\bTemplate\b|autoescape"
    r"|is_safe|html_safe|__html__|format_html|render_to_string|Environment\b|MarkdownIt|[\x22\x27]html[\x22\x27]\s*:\s*True"
)
_JS = (
    r"innerHTML|outerHTML|srcdoc|insertAdjacentHTML|document\s*\.\s*write|createContextualFragment|HTMLUnsafe"
    r"|bypassSecurityTrust|trustAs|sceProvider|\.\s*html\s*\(|\$\(|\bjQuery\b|angular\s*\.\s*element"
    r"|\$[A-Za-z_][\w$]*\s*\.|\.\s*template\s*\(|andlebars|\bhbs\b|SafeString|noEscape|renderString|autoescape"
    r"|dangerouslySetInnerHTML|allowDangerousHtml|escapeHtml|rehype|markdown-it|ustache|v-html|utext"
)
_JINJA = r"\|\s*(?:safe|raw)|autoescape"
_MUSTACHE = r"\{\{~?\{|\{\{~?&"
KINDS = {
    "python": _PYTHON,
    "javascript": _JS,
    "html": "|".join((_JS, _JINJA, _MUSTACHE)),
    "vue": _JS,
    "svelte": _JS + r"|\{@html",
    "mdx": _JS,
    "jinja": "|".join((_JINJA, _MUSTACHE)),
    "twig": _JINJA,
    "mustache": _MUSTACHE,
    "ejs": r"<%-",
    "pug": r"!\{|!=|&attributes",
}


@cache
def _compiled(kind: str) -> re2._Regexp:
    options = re2.Options()
    options.max_mem = 64 << 20
    return re2.compile(KINDS[kind].encode(), options)


def has_candidate(kind: str, data: bytes) -> bool:
    """True when ``data`` holds a word a scanner of ``kind`` looks for."""
    return _compiled(kind).search(data) is not None
