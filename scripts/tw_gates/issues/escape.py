"""Untrusted text (consumer artifacts, audit reports, metric labels) made safe for an
issue: one line, no invisible characters, secrets redacted, and inert in Markdown -
no HTML, no ``@mention`` pings, no autolinks nobody intended."""

from __future__ import annotations

import re

from tw_gates.core.redact import REDACTOR

MAX_TITLE_CHARS = 250

# C0/C1 controls, zero-width and bidirectional formatting characters (Trojan Source).
_UNSAFE_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
_ZWSP = "\u200b"
# ASCII punctuation that means something to CommonMark/GFM.
_MD_PUNCT = re.compile(r"([\\`*_{}\[\]()#+\-.!|~<>=:\"'$^])")


def clean_text(text: object, max_chars: int = 500, *, heuristics: bool = True) -> str:
    """Untrusted text as one line: control/invisible characters removed, secrets
    redacted (by default with the heuristics too: this is text from elsewhere),
    length capped."""
    value = REDACTOR.redact(str(text), heuristics=heuristics)
    value = _UNSAFE_CHARS.sub(" ", value)
    value = " ".join(value.split())
    if len(value) > max_chars:
        value = value[: max_chars - 1] + "…"
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


def escape_markdown(text: object, max_chars: int = 1000) -> str:
    """Untrusted text as inert prose: every Markdown punctuation character
    backslash-escaped, HTML special characters as entities, and a zero-width
    space wedged into what GitHub would turn into a ping or a link (``@name``,
    ``#123``, ``scheme://``, ``www.``, commit-like hex runs)."""
    value = clean_text(text, max_chars)
    value = re.sub(r"@(?=\w)", "@" + _ZWSP, value)
    value = re.sub(r"#(?=\d)", "#" + _ZWSP, value)
    value = re.sub(r"(?i):(?=//)", ":" + _ZWSP, value)
    value = re.sub(r"(?i)\bwww\.", "www" + _ZWSP + ".", value)
    value = re.sub(r"\b([0-9a-fA-F]{3})(?=[0-9a-fA-F]{4,}\b)", r"\1" + _ZWSP, value)
    out = []
    for char in value:
        if char == "&":
            out.append("&amp;")
        elif char == "<":
            out.append("&lt;")
        elif char == ">":
            out.append("&gt;")
        elif _MD_PUNCT.fullmatch(char):
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


def plain_title(text: object, max_chars: int = MAX_TITLE_CHARS) -> str:
    """An issue title: one line, no invisible characters, no pings, no issue references."""
    value = clean_text(text, max_chars)
    value = re.sub(r"@(?=\w)", "@" + _ZWSP, value)
    value = re.sub(r"#(?=\d)", "#" + _ZWSP, value)  # GitHub links #123 even in titles
    return value or "tw-gates"
