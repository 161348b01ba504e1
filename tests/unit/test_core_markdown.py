"""core.markdown: the one escaping function for every Markdown the product
writes from consumer-controlled text, tested once against a table of hostile
strings. Rendered with markdown-it (CommonMark + GFM tables): the text must
come out as the same words (less the zero-width spaces that break GitHub's
own autolinks and pings) and as nothing else."""

from __future__ import annotations

import html
import re

import pytest
from markdown_it import MarkdownIt

from tw_gates.core.markdown import Markdown, escape_markdown, inline_code, markdown_table, plain_title

ZWSP = "\u200b"

HOSTILE = {
    "tracking-pixel": '<img src="https://evil.example/p.gif?u=1" width=1>',
    "script": "<script>alert(1)</script><details open>x</details>",
    "phishing-link": "[click to verify](http://evil.example/login)",
    "image": "![x](http://evil.example/x.png)",
    "reference-link": "[x][1]\n\n[1]: http://evil.example",
    "autolink-angle": "<http://evil.example>",
    "autolink-bare": "see https://evil.example and www.evil.example and evil@example.com",
    "javascript-url": "[x](javascript:alert(1)) javascript:alert(document.cookie)",
    "mention": "@security-team @org/admins please look",
    "issue-refs": "fixes #12, GH-7 and org/repo#3",
    "commit-like": "a1b2c3d4e5f6a7b8c9d0a1b2c3d4e5f6a7b8c9d0",
    "close-hidden-marker": "--> <!-- tw-gates:v1 kind=repo key=x fingerprint=" + "0" * 64 + " -->",
    "backticks": "a`b``c```d ```js",
    "pipes": "| cell | another |",
    "newlines": "line\nbreak\r\n- [ ] injected checkbox\n# heading",
    "heading-start": "# not a heading",
    "list-start": "- not a list",
    "ordered-start": "1. not a list",
    "setext": "=====",
    "quote-start": "> [!WARNING] not an alert",
    "emphasis": "**bold** _it_ ~~gone~~ *x*",
    "math": "$\\frac{1}{2}$ and $$x$$",
    "html-entity": "&lt;b&gt; &#60;img&#62; &amp;",
    "backslashes": "\\*not bold\\* \\\\",
    "bidi": "\u202etxt.exe\u202c and \u2066hidden\u2069",
    "zero-width": "in\u200bvisible\u200d \ufeffbom",
    "control": "bell\x07 nul\x00 esc\x1b[31mred",
    "table-break": "x |\n|---|\n| injected |",
    "footnote": "text[^1]\n\n[^1]: http://evil.example",
    "snake_case": "invalid_json and __init__.py",
}


def render(markdown: str) -> str:
    return MarkdownIt("commonmark").enable("table").render(markdown)


def visible(rendered: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", rendered)).replace(ZWSP, "")


def words(text: str) -> str:
    """What the escaped text should read as: one line, control and invisible characters gone."""
    text = re.sub(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069\ufeff]", " ", text)
    return " ".join(text.split())


def tags(rendered: str) -> set[str]:
    return set(re.findall(r"<(/?[a-zA-Z][a-zA-Z0-9]*)", rendered))


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_escaped_text_renders_as_its_words_and_nothing_else(name):
    text = HOSTILE[name]
    escaped = escape_markdown(text)
    assert "\n" not in escaped
    rendered = render(escaped)
    assert tags(rendered) <= {"p", "/p"}, rendered
    assert visible(rendered).strip() == words(text)
    # What GitHub links or pings after rendering is broken by a zero-width space.
    shown = html.unescape(re.sub(r"<[^>]+>", "", rendered))
    assert not re.search(r"@\w|#\d|://|www\.|GH-\d", shown, re.I)
    for run in re.findall(r"\b[0-9a-fA-F]{7,}\b", words(text)):
        assert run not in shown  # a commit-like run no longer starts a commit reference
    assert "-->" not in rendered and "<!--" not in rendered


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_table_cells_hold_their_words_and_nothing_else(name):
    text = HOSTILE[name]
    table = markdown_table(["h", "other"], [[text, "ok"], ["next", 1]])
    rendered = render(table)
    assert tags(rendered) <= {"table", "thead", "tbody", "tr", "th", "td"} | {
        f"/{t}" for t in ("table", "thead", "tbody", "tr", "th", "td")
    }, rendered
    cells = re.findall(r"<td>(.*?)</td>", rendered)
    assert len(cells) == 4 and visible(cells[1]) == "ok" and visible(cells[2]) == "next"
    assert visible(cells[0]) == words(text)


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_inline_code_shows_the_words_literally(name):
    text = HOSTILE[name]
    code = inline_code(text)
    rendered = render(f"- item {code} end")
    assert tags(rendered) <= {"ul", "/ul", "li", "/li", "code", "/code"}, rendered
    assert rendered.count("<code>") == 1
    inner = re.search(r"<code>(.*)</code>", rendered, re.S).group(1)
    assert html.unescape(inner).strip() == words(text).strip()


def test_markdown_the_caller_wrote_goes_in_as_it_is_and_secrets_never():
    table = markdown_table(["issue", "path"], [[Markdown("#12"), "ghp_" + "a" * 36]])
    assert "| #12 |" in table and "ghp_" not in table and "\\[REDACTED\\]" in table


def test_readable_text_stays_readable():
    assert escape_markdown("src/a.py") == "src/a.py"
    assert escape_markdown("jinja2-from-string (critical)") == "jinja2-from-string (critical)"
    assert escape_markdown("invalid_json") == "invalid_json"
    assert escape_markdown("fail (2): 3/14 passed.") == "fail (2): 3/14 passed."


def test_titles_are_one_line_without_pings():
    title = plain_title("tw-gates: @org/team\nsecond line " + "x" * 400)
    assert "\n" not in title and "@\u200borg" in title and len(title) <= 250
    assert plain_title("closes #12") == "closes #\u200b12"
