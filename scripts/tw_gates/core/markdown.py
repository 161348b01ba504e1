"""Markdown the product writes (job summaries, issue bodies, reports, the
demo's summary) from text it does not control.

One escaping function for all of it: ``escape_markdown`` turns untrusted text
into inert prose, ``inline_code`` shows it literally in a code span, and
``markdown_table`` escapes every cell with the first unless the caller marks
a cell as Markdown it wrote itself (``Markdown("#12")``). What "inert" means,
for GitHub's renderer (GFM plus its own references):

* no HTML: ``&``, ``<`` and ``>`` become entities, so ``<img src=...>`` (a
  tracking pixel), ``<script>``, ``<details>`` and a ``-->`` that would close
  a hidden marker stay text;
* no links or images: ``[`` and ``]`` are escaped, so ``[x](http://...)`` and
  ``![x](...)`` stay text; ``javascript:`` is then just a word;
* no autolinks, pings or references GitHub adds after rendering: a zero-width
  space goes into ``scheme://``, ``www.``, ``@name`` (mentions, e-mail
  addresses), ``#123``, ``GH-123`` and commit-like hex runs;
* no emphasis, code, strike-through, math or table-cell breaks: ``\\``,
  `````, ``*``, ``_``, ``~``, ``$``, ``|`` are backslash-escaped;
* no block structure: the text becomes one line (newlines and the other
  control characters are dropped), and a leading ``#``, ``-``, ``+``, ``=``
  or ``1.`` is escaped, so it cannot start a heading, a list or a checkbox;
* no invisible text: zero-width and bidirectional-override characters
  (Trojan Source) are removed;
* no secrets: the text goes through the redactor first.

Pure text functions, no I/O: the command layer decides where the text goes."""

from __future__ import annotations

import re
from collections.abc import Sequence

from tw_gates.core.redact import REDACTOR

# C0/C1 controls, zero-width and bidirectional formatting characters (Trojan Source).
_UNSAFE_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
_ZWSP = "\u200b"
# Inline punctuation that means something to CommonMark, GFM or GitHub's math.
# An underscore between two letters or digits never opens or closes emphasis
# (GFM's flanking rules), so ``invalid_json`` stays as it is.
_INLINE = re.compile(r"[\\`*\[\]~$|]|(?<![^\W_])_|_(?![^\W_])")
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_HTML = re.compile(r"[&<>]")
# What would start a block at the beginning of a line (ATX heading, list item,
# setext underline, ordered list "1." / "1)").
_BLOCK_START = re.compile(r"^(?:[#+=-]|\d{1,9}(?=[.)]))")
# What GitHub turns into a link or a ping after rendering.
_REFERENCES = (
    (re.compile(r"@(?=\w)"), "@" + _ZWSP),
    (re.compile(r"#(?=\d)"), "#" + _ZWSP),
    (re.compile(r"(?i)\bGH-(?=\d)"), lambda m: m.group(0) + _ZWSP),
    (re.compile(r":(?=//)"), ":" + _ZWSP),
    (re.compile(r"(?i)\bwww\."), lambda m: m.group(0)[:3] + _ZWSP + "."),
    (re.compile(r"\b([0-9a-fA-F]{3})(?=[0-9a-fA-F]{4,}\b)"), r"\1" + _ZWSP),
)

MAX_CELL_CHARS = 1000


class Markdown(str):
    """Markdown the product wrote itself (an issue reference, a code span it
    built with ``inline_code``): ``markdown_table`` puts it in as it is."""

    __slots__ = ()


def clean_text(text: object, max_chars: int = 500, *, heuristics: bool = True) -> str:
    """Untrusted text as one line: secrets redacted (with the heuristics too by
    default: this is text from elsewhere), control and invisible characters
    removed, whitespace collapsed, length capped."""
    value = REDACTOR.redact(str(text), heuristics=heuristics)
    value = _UNSAFE_CHARS.sub(" ", value)
    value = " ".join(value.split())
    if len(value) > max_chars:
        value = value[: max_chars - 1] + "…"
    return value


def escape_markdown(text: object, max_chars: int = MAX_CELL_CHARS, *, heuristics: bool = True) -> str:
    """Untrusted text as inert Markdown prose (see the module docstring): it
    renders as the same words, and as nothing else, wherever it is put on a
    line, in a paragraph, a list item or a table cell."""
    value = clean_text(text, max_chars, heuristics=heuristics)
    for pattern, replacement in _REFERENCES:
        value = pattern.sub(replacement, value)
    value = _INLINE.sub(lambda m: "\\" + m.group(0), value)
    value = _HTML.sub(lambda m: _ENTITIES[m.group(0)], value)
    start = _BLOCK_START.match(value)
    if start:
        end = start.end()
        # "#" "-" "+" "=": escape the character; "12." / "12)": escape the dot.
        value = "\\" + value if not value[0].isdigit() else value[:end] + "\\" + value[end:]
    return value


def inline_code(text: object, max_chars: int = 500, *, in_table: bool = False, heuristics: bool = True) -> str:
    """Untrusted text shown literally in a code span: inside one, GitHub renders
    no Markdown, no HTML, no mentions and no autolinks. The fence is longer than
    any backtick run in the text, so the text cannot close it."""
    value = clean_text(text, max_chars, heuristics=heuristics)
    if not value:
        return "(empty)"
    if in_table:
        # GFM splits table cells on '|' even inside code spans unless escaped.
        value = value.replace("|", "\\|")
    longest = max((len(run) for run in re.findall(r"`+", value)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if value[0] in "` " or value[-1] in "` " else ""
    return f"{fence}{pad}{value}{pad}{fence}"


def plain_title(text: object, max_chars: int = 250) -> str:
    """An issue title (plain text, no Markdown): one line, no invisible
    characters, no pings, no issue references."""
    value = clean_text(text, max_chars)
    value = re.sub(r"@(?=\w)", "@" + _ZWSP, value)
    value = re.sub(r"#(?=\d)", "#" + _ZWSP, value)  # GitHub links #123 even in titles
    return value or "tw-gates"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-flavoured Markdown table. Every cell is escaped with
    ``escape_markdown`` (the always-on redaction formats apply; the free-text
    heuristics do not, so long paths and hashes stay readable) unless it is
    ``Markdown`` the caller built itself."""

    def cell(value: object) -> str:
        if isinstance(value, Markdown):
            return str(value).replace("\n", " ")
        return escape_markdown(value, heuristics=False)

    lines = ["| " + " | ".join(cell(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
