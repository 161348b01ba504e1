"""The builtin targets of ``tw-gates adversarial``: markdown-it-py, the parser
family the Token Warehouse indexes, in two configurations.

- ``commonmark``: the CommonMark preset as shipped, raw HTML on. It is the
  baseline that shows what the corpora catch: raw-HTML attacks reach its output.
- ``safe``: what a careful consumer configures: raw HTML off (escaped as
  text), nesting capped (the preset's maxNesting of 20), GFM tables and
  strikethrough on, and links validated against an allow-list of schemes
  (http, https, mailto, raster ``data:image``) instead of markdown-it's
  deny-list, which also refuses scheme-relative ``//host`` destinations.

The gate runs each case in a child forked from a server that built the parser
once (``parser.forkserver``), with the same limits as any case process; the
same configurations run as a command too:

    python -m tw_gates.parser.targets safe < doc.md > doc.html

Input is read as bytes and decoded as UTF-8 with U+FFFD for invalid
sequences (CommonMark's rule for insecure input). The parse+render time goes
to stderr as ``tw-gates-parse-ms: <ms>``; the gate reports it beside the
process's wall time (which also counts interpreter start-up)."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable

from markdown_it import MarkdownIt

from tw_gates.parser.target_spec import NAMES, PARSE_MS_PREFIX

_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*):")
_ALLOWED_SCHEMES = frozenset({"http", "https", "mailto"})
_RASTER_DATA = re.compile(r"^data:image/(?:png|gif|jpeg|webp)[;,]")


def allow_listed_link(url: str) -> bool:
    """markdown-it calls this with the destination already normalized
    (entities decoded, then percent-encoded), so a scheme hidden behind
    entities or Unicode look-alikes is either decoded here or encoded into
    something that no longer reads as a scheme."""
    url = url.strip().lower()
    scheme = _SCHEME.match(url)
    if scheme is None:
        # Relative. A scheme-relative //host (or /\host, which browsers read
        # the same way) leaves the site while looking relative; a backslash
        # that normalization percent-encoded (%5c) is just a path character.
        return not re.match(r"^[/\\]{2}", url)
    if scheme.group(1) == "data":
        return bool(_RASTER_DATA.match(url))
    return scheme.group(1) in _ALLOWED_SCHEMES


def build(name: str) -> MarkdownIt:
    if name == "commonmark":
        return MarkdownIt("commonmark")
    if name == "safe":
        parser = MarkdownIt("commonmark", {"html": False, "maxNesting": 20}).enable(["table", "strikethrough"])
        parser.validateLink = allow_listed_link  # type: ignore[method-assign]
        return parser
    raise ValueError(f"unknown builtin target {name!r} (known: {', '.join(NAMES)})")


# Every construct once, so what markdown-it builds lazily is built before the fork server forks.
WARM_UP = (
    "# warm up\n\n*a* **b** `c` [d](https://example.com) ![e](x.png) <b>&amp;</b> ~~f~~\n\n"
    "- g\n- h\n\n1. i\n\n> j\n\n| k | l |\n|---|---|\n| m | n |\n\n```\ncode\n```\n"
)


def renderer(name: str) -> Callable[[bytes], bytes]:
    """The render function the fork server runs per case, warmed up: bytes in
    (decoded as UTF-8 with U+FFFD), HTML bytes out."""
    parser = build(name)
    parser.render(WARM_UP)

    def render(data: bytes) -> bytes:
        return parser.render(data.decode("utf-8", "replace")).encode("utf-8", "replace")

    return render


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] not in NAMES:
        print(f"usage: python -m tw_gates.parser.targets {{{'|'.join(NAMES)}}} < input.md", file=sys.stderr)
        return 1
    parser = build(args[0])
    text = sys.stdin.buffer.read().decode("utf-8", "replace")
    started = time.perf_counter()
    html = parser.render(text)
    elapsed_ms = (time.perf_counter() - started) * 1000
    sys.stdout.buffer.write(html.encode("utf-8", "replace"))
    sys.stdout.buffer.flush()
    print(f"{PARSE_MS_PREFIX} {elapsed_ms:.1f}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
