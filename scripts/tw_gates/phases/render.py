"""``{{PLACEHOLDER}}`` templates (Markdown, YAML, JSON) filled from a values file.

* A placeholder is ``{{NAME}}`` with NAME in upper case, digits and
  underscores (the templates' style); ``{{ NAME }}`` with inner spaces is the
  same placeholder. ``${{ ... }}`` (GitHub Actions expressions) and triple
  braces are never placeholders.
* Markdown and plain text get the value as it is. JSON and YAML get it
  escaped for the spot it lands in: inside a string it is string content,
  as a whole value it is the value's own JSON/YAML form (a number stays a
  number, a list a list). The result is parsed before it is written, so a
  value with quotes, colons or newlines can never produce a broken file.
* Any placeholder without a value: nothing is written, exit 2 with the list
  of names and their line numbers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from tw_gates.core.errors import GateRejected, UsageError
from tw_gates.core.fsio import load_document, read_text_input
from tw_gates.core.yaml_safe import safe_load_all_bounded

Format = Literal["text", "json", "yaml"]
# Templates and values files are a few KiB; the bound stops a mistaken path (a log, an image).
MAX_INPUT_BYTES = 16 * 1024 * 1024
PLACEHOLDER = re.compile(r"(?<![$\{])\{\{[ \t]*([A-Z][A-Z0-9_]*)[ \t]*\}\}(?!\})")
FORMAT_BY_SUFFIX = {
    ".json": "json",
    ".yml": "yaml",
    ".yaml": "yaml",
    ".md": "text",
    ".markdown": "text",
    ".txt": "text",
}


class RenderError(UsageError):
    """The template and the values cannot make a valid document (exit 1)."""


class UnresolvedPlaceholders(GateRejected):
    """Placeholders without a value (exit 2); ``missing`` maps name -> line numbers."""

    def __init__(self, missing: dict[str, list[int]], source: str = "template") -> None:
        self.missing = missing
        listed = ", ".join(
            f"{name} (line{'s' if len(lines) > 1 else ''} {', '.join(map(str, lines))})"
            for name, lines in missing.items()
        )
        super().__init__(
            f"{len(missing)} placeholder{'s' if len(missing) != 1 else ''} unresolved in {source}: {listed}"
        )


@dataclass(frozen=True)
class Placeholder:
    name: str
    start: int
    end: int
    line: int
    # Where it sits: text | json-string | json-value | yaml-double | yaml-single |
    # yaml-block | yaml-comment | yaml-plain (the whole scalar) | yaml-plain-part
    context: str = "text"
    indent: str = ""  # yaml-block: what continuation lines of the value get in front
    flow: bool = False  # yaml-plain-part: inside [...] or {...}
    at_start: bool = False  # yaml-plain-part: the placeholder begins the scalar


def format_for(path: str | Path, explicit: str | None = None) -> Format:
    if explicit:
        if explicit not in ("text", "md", "json", "yaml"):
            raise UsageError(f"unknown format {explicit!r} (text, md, json, yaml)")
        return "text" if explicit == "md" else explicit  # type: ignore[return-value]
    return FORMAT_BY_SUFFIX.get(Path(path).suffix.lower(), "text")  # type: ignore[return-value]


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


# ------------------------------------------------------------------ finding placeholders


def find_placeholders(text: str, fmt: Format = "text") -> list[Placeholder]:
    if fmt == "json":
        return _json_placeholders(text)
    if fmt == "yaml":
        return _yaml_placeholders(text)
    return [Placeholder(m.group(1), m.start(), m.end(), _line_of(text, m.start())) for m in PLACEHOLDER.finditer(text)]


_JSON_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"')


def _json_placeholders(text: str) -> list[Placeholder]:
    strings = [(m.start(), m.end()) for m in _JSON_STRING.finditer(text)]
    found = []
    for m in PLACEHOLDER.finditer(text):
        inside = any(a < m.start() and m.end() < b for a, b in strings)
        found.append(
            Placeholder(
                m.group(1), m.start(), m.end(), _line_of(text, m.start()), "json-string" if inside else "json-value"
            )
        )
    return found


_BLOCK_INDICATOR = re.compile(r"[|>][1-9+-]{0,2}[ \t]*(?:#.*)?$")


class _YamlScanner:
    """Just enough of a YAML lexer to know, for each placeholder, whether it is
    inside a double- or single-quoted scalar, a block scalar, a comment, or
    a plain scalar (the whole of it, or a part). Placeholders are treated as
    opaque plain text, so ``key: {{X}}`` is a value, not a flow mapping."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.found: list[Placeholder] = []
        self.quote: str | None = None  # inside a quoted scalar that spans lines
        self.block_parent: int | None = None  # inside a block scalar opened at this indentation
        self.flow = 0

    def add(self, m: re.Match[str], base: int, context: str, **extra: Any) -> None:
        start = base + m.start()
        self.found.append(Placeholder(m.group(1), start, base + m.end(), _line_of(self.text, start), context, **extra))

    def scan(self) -> list[Placeholder]:
        base = 0
        for raw in self.text.splitlines(keepends=True):
            line = raw.rstrip("\r\n")
            self.scan_line(line, base)
            base += len(raw)
        return self.found

    def scan_line(self, line: str, base: int) -> None:
        indent = len(line) - len(line.lstrip(" "))
        if self.block_parent is not None:
            if not line.strip() or indent > self.block_parent:
                for m in PLACEHOLDER.finditer(line):
                    self.add(m, base, "yaml-block", indent=line[:indent])
                return
            self.block_parent = None
        moved: tuple[int, bool] | None = self.line_start(line, base)
        while moved is not None and moved[0] < len(line):
            moved = self.token(line, base, moved[0], moved[1], indent)

    def line_start(self, line: str, base: int) -> tuple[int, bool]:
        """Where scanning starts, and whether a node may start there."""
        if self.quote is not None:
            return self.quoted(line, base, 0), False
        if line.startswith(("---", "...")) and line[3:4] in ("", " ", "\t"):
            return 3, True
        return 0, True

    def token(self, line: str, base: int, pos: int, node_start: bool, indent: int) -> tuple[int, bool] | None:
        """Scan the token at ``pos``: (where scanning resumes, whether a node
        may start there), or None when the rest of the line is done."""
        ch = line[pos]
        if PLACEHOLDER.match(line, pos) is not None:
            return self.plain(line, base, pos), False
        if ch in " \t":
            return pos + 1, node_start
        if ch == "#" and (pos == 0 or line[pos - 1] in " \t"):
            for m in PLACEHOLDER.finditer(line, pos):
                self.add(m, base, "yaml-comment")
            return None
        if ch in "\"'" and node_start:
            self.quote = ch
            return self.quoted(line, base, pos + 1), False
        after_flow = self.flow_token(ch)
        if after_flow is not None:
            return pos + 1, after_flow
        return self.indicator(line, base, pos, node_start, indent)

    def flow_token(self, ch: str) -> bool | None:
        """For ``[ { ] } ,`` (in a flow): whether a node may start after it; None for anything else."""
        if ch in "[{":
            self.flow += 1
            return True
        if ch in "]}":
            self.flow = max(0, self.flow - 1)
            return False
        if ch == "," and self.flow:
            return True
        return None

    def indicator(self, line: str, base: int, pos: int, node_start: bool, indent: int) -> tuple[int, bool] | None:
        """``- ? :``, anchors, tags, aliases and block scalar headers; a plain scalar otherwise."""
        ch = line[pos]
        if (ch in "-?:" and line[pos + 1 : pos + 2] in ("", " ", "\t")) or (ch == ":" and self.flow):
            pos += 1
            if _BLOCK_INDICATOR.match(line[pos:].lstrip(" \t")):
                self.block_parent = indent
                return None
            return pos, True
        if ch in "&*!" and node_start:
            while pos < len(line) and line[pos] not in " \t":
                pos += 1
            return pos, node_start
        if ch in "|>" and node_start:
            self.block_parent = indent if pos > indent else indent - 1
            return None
        return self.plain(line, base, pos), False

    def quoted(self, line: str, base: int, pos: int) -> int:
        """Scan a quoted scalar from ``pos`` (just after the opening quote, or
        the start of a continuation line); return where scanning resumes."""
        quote = self.quote
        context = "yaml-double" if quote == '"' else "yaml-single"
        end = len(line)
        i = pos
        while i < len(line):
            if quote == '"' and line[i] == "\\":
                i += 2
                continue
            if line[i] == quote:
                if quote == "'" and line[i + 1 : i + 2] == "'":
                    i += 2
                    continue
                end = i
                self.quote = None
                break
            i += 1
        for m in PLACEHOLDER.finditer(line, pos, end):
            self.add(m, base, context)
        return end + 1 if self.quote is None else len(line)

    def plain(self, line: str, base: int, pos: int) -> int:
        """Scan a plain scalar from ``pos``; return where it ends."""
        begin = pos
        inner: list[re.Match[str]] = []
        while pos < len(line):
            m = PLACEHOLDER.match(line, pos)
            if m:
                inner.append(m)
                pos = m.end()
                continue
            ch = line[pos]
            nxt = line[pos + 1 : pos + 2]
            if ch == ":" and (nxt in ("", " ", "\t") or (self.flow and nxt in ",[]{}")):
                break
            if ch == "#" and line[pos - 1] in " \t":
                break
            if self.flow and ch in ",[]{}":
                break
            pos += 1
        scalar = line[begin:pos].rstrip(" \t")
        for m in inner:
            whole = scalar == m.group(0)
            self.add(
                m, base, "yaml-plain" if whole else "yaml-plain-part", flow=bool(self.flow), at_start=m.start() == begin
            )
        return pos


def _yaml_placeholders(text: str) -> list[Placeholder]:
    return _YamlScanner(text).scan()


# ------------------------------------------------------------------ encoding values


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


_YAML_PRINTABLE = re.compile("[\t\n\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_YAML_ESCAPES = {
    "\\": "\\\\",
    '"': '\\"',
    "\n": "\\n",
    "\t": "\\t",
    "\r": "\\r",
    "\x00": "\\0",
    "\x07": "\\a",
    "\x08": "\\b",
    "\x0b": "\\v",
    "\x0c": "\\f",
    "\x1b": "\\e",
}


def _yaml_double_content(text: str) -> str:
    out = []
    for ch in text:
        if ch in _YAML_ESCAPES:
            out.append(_YAML_ESCAPES[ch])
        elif _YAML_PRINTABLE.match(ch):
            out.append(ch)
        elif ord(ch) <= 0xFF:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return "".join(out)


def _yaml_flow(value: Any) -> str:
    """A value as a YAML flow node: strings always double-quoted (so "yes",
    "1.0" or "null" stay strings), numbers and booleans as themselves."""
    if isinstance(value, str):
        return f'"{_yaml_double_content(value)}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_yaml_flow(str(k))}: {_yaml_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_yaml_flow(v) for v in value) + "]"
    raise RenderError(f"cannot put a {type(value).__name__} into YAML")


_PLAIN_SAFE = re.compile(r"[\w.,/+=%()~@^$-]+(?: [\w.,/+=%()~@^$-]+)*")
_PLAIN_START = re.compile(r"[\w(+./~$]")


def encode(value: Any, where: Placeholder) -> str:
    context = where.context
    if context == "json-value":
        return json.dumps(value, ensure_ascii=False)
    if context == "yaml-plain":
        return _yaml_flow(value)
    return _TEXT_ENCODERS[context](_as_text(value), where)


def _yaml_single(text: str, where: Placeholder) -> str:
    if any(not _YAML_PRINTABLE.match(ch) or ch in "\n\t" for ch in text):
        raise RenderError(
            f"{where.name} (line {where.line}) sits in a single-quoted YAML string and its value "
            "has a line break or control character; use a double-quoted string in the template"
        )
    return text.replace("'", "''")


def _yaml_plain_part(text: str, where: Placeholder) -> str:
    """A part of an unquoted value: inserted as is only when it cannot change the YAML structure."""
    safe = (
        _PLAIN_SAFE.fullmatch(text)
        and not (where.flow and "," in text)
        and (not where.at_start or _PLAIN_START.match(text))
    )
    if not safe:
        raise RenderError(
            f"{where.name} (line {where.line}) is part of an unquoted YAML value and its value "
            f"{text[:40]!r} would change the YAML structure; quote that value in the template"
        )
    return text


_TEXT_ENCODERS: dict[str, Callable[[str, Placeholder], str]] = {
    "text": lambda text, _: text,
    "json-string": lambda text, _: json.dumps(text, ensure_ascii=False)[1:-1],
    "yaml-double": lambda text, _: _yaml_double_content(text),
    "yaml-single": _yaml_single,
    "yaml-block": lambda text, where: text.replace("\n", "\n" + where.indent),
    "yaml-comment": lambda text, _: " ".join(text.splitlines()),
    "yaml-plain-part": _yaml_plain_part,
}


# ------------------------------------------------------------------ rendering


def render_text(text: str, values: Mapping[str, Any], fmt: Format = "text", *, source: str = "template") -> str:
    """Fill every placeholder; raise UnresolvedPlaceholders (exit 2) listing
    those without a value, RenderError (exit 1) when the result is not valid."""
    found = find_placeholders(text, fmt)
    missing: dict[str, list[int]] = {}
    for p in found:
        if values.get(p.name) is None:
            lines = missing.setdefault(p.name, [])
            if p.line not in lines:
                lines.append(p.line)
    if missing:
        raise UnresolvedPlaceholders(missing, source)
    parts, last = [], 0
    for p in found:
        parts.append(text[last : p.start])
        parts.append(encode(values[p.name], p))
        last = p.end
    parts.append(text[last:])
    rendered = "".join(parts)
    _check_parses(rendered, fmt, source)
    return rendered


def _check_parses(rendered: str, fmt: Format, source: str) -> None:
    if fmt == "json":
        try:
            json.loads(rendered)
        except ValueError as exc:
            raise RenderError(f"{source} does not render to valid JSON: {exc}") from None
    elif fmt == "yaml":
        try:
            safe_load_all_bounded(rendered)
        except yaml.YAMLError as exc:
            raise RenderError(f"{source} does not render to valid YAML: {' '.join(str(exc).split())}") from None


def load_values(paths: list[str | Path]) -> dict[str, Any]:
    """Merge YAML/JSON mappings, later files winning."""
    merged: dict[str, Any] = {}
    for path in paths:
        data = load_document(path, "values file", max_bytes=MAX_INPUT_BYTES)
        if data is None:
            continue
        if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
            raise UsageError(f"values file {path} must be a mapping of NAME: value")
        merged.update(data)
    return merged


@dataclass
class RenderResult:
    text: str
    placeholders: int
    unused: list[str]


def render_file(template: str | Path, values: Mapping[str, Any], fmt: Format | None = None) -> RenderResult:
    path = Path(template)
    text = read_text_input(path, "template", max_bytes=MAX_INPUT_BYTES)
    fmt = fmt or format_for(path)
    rendered = render_text(text, values, fmt, source=str(path))
    used = {p.name for p in find_placeholders(text, fmt)}
    return RenderResult(text=rendered, placeholders=len(used), unused=sorted(set(values) - used))
