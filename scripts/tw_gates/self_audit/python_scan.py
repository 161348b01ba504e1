"""The Python scanner: the file is parsed with ``ast`` and matched on its
syntax tree. Calls are resolved through the file's imports and aliases;
keyword arguments, dict literals, class bases, decorators and attribute
assignments are read as what they are. Comments, docstrings and string
literals never match, except a literal that a template engine compiles (its
template text is scanned as a template)."""

from __future__ import annotations

import ast
import bisect
import re
from collections.abc import Callable, Iterator
from pathlib import PurePosixPath

import re2  # type: ignore[import-untyped]

from tw_gates.self_audit.hits import Finding
from tw_gates.self_audit.prefilter import KINDS
from tw_gates.self_audit.python_names import LOCAL, Names
from tw_gates.self_audit.templates import scan_jinja

# Calls whose decisive argument is (position, keyword): a constant or
# sanitized value there is harmless.
_ARGS = tuple[int, str] | None
CALL_SINKS: dict[str, tuple[str, _ARGS]] = {
    "flask.render_template_string": ("flask-render-template-string", (0, "source")),
    "flask.templating.render_template_string": ("flask-render-template-string", (0, "source")),
    "jinja2.Template": ("jinja2-template", (0, "source")),
    "jinja2.environment.Template": ("jinja2-template", (0, "source")),
    "markupsafe.Markup": ("markupsafe-markup", (0, "base|object")),
    "flask.Markup": ("markupsafe-markup", (0, "base|object")),
    "jinja2.Markup": ("markupsafe-markup", (0, "base|object")),
    "jinja2.utils.Markup": ("markupsafe-markup", (0, "base|object")),
    "django.template.Template": ("django-template", (0, "template_string")),
    "django.template.base.Template": ("django-template", (0, "template_string")),
    "django.template.loader.render_to_string": ("django-render-to-string", None),
    "django.utils.safestring.mark_safe": ("django-mark-safe", (0, "s")),
    "django.utils.safestring.SafeString": ("django-mark-safe", (0, "s")),
    "django.utils.safestring.SafeText": ("django-mark-safe", (0, "s")),
    "django.utils.safestring.SafeBytes": ("django-mark-safe", (0, "s")),
    "django.utils.safestring.SafeUnicode": ("django-mark-safe", (0, "s")),
    "mako.template.Template": ("mako-template", None),
    "tornado.template.Template": ("tornado-template", (0, "template_string")),
}
# Method names that are sinks on any receiver.
METHOD_SINKS: dict[str, tuple[str, _ARGS]] = {
    "from_string": ("jinja2-from-string", (0, "source")),
}
# Sinks whose decisive argument is template source: a literal there is
# scanned as a Jinja2/Django template.
TEMPLATE_SOURCE = frozenset(
    {"jinja2-from-string", "flask-render-template-string", "jinja2-template", "django-template", "tornado-template"}
)
JINJA_ENVIRONMENTS = frozenset(
    {
        "jinja2.Environment",
        "jinja2.environment.Environment",
        "jinja2.sandbox.SandboxedEnvironment",
        "jinja2.sandbox.ImmutableSandboxedEnvironment",
    }
)
MARKUP_CLASSES = frozenset({"markupsafe.Markup", "flask.Markup", "jinja2.Markup", "jinja2.utils.Markup"})
SAFESTRING_CLASSES = frozenset(
    {
        "django.utils.safestring.SafeString",
        "django.utils.safestring.SafeText",
        "django.utils.safestring.SafeData",
        "django.utils.safestring.SafeBytes",
    }
)
FORMAT_HTML = {"django.utils.html.format_html": 0, "django.utils.html.format_html_join": 1}
HTML_SAFE = frozenset({"django.utils.html.html_safe"})
FLASK_RENDER_TEMPLATE = frozenset({"flask.render_template", "flask.templating.render_template"})
# Flask autoescapes templates with these extensions only.
FLASK_AUTOESCAPED = frozenset({".html", ".htm", ".xml", ".xhtml", ".svg"})


def parse_python(text: str) -> ast.Module | None:
    """The module's tree, or None when it does not parse."""
    try:
        return ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def scan_python_partially(text: str, line_fallback: Callable[[str, int], list[Finding]]) -> list[Finding] | None:
    """The findings of a Python file. A statement that does not parse is
    cut out (its lines blanked, numbering kept) and given to the line
    scanner, up to MAX_EXCISIONS times; None when the file still does not
    parse (the caller line-scans all of it)."""
    lines = text.split("\n")
    cut: list[tuple[int, int]] = []
    for _ in range(MAX_EXCISIONS):
        source = "\n".join(lines) if cut else text
        tree = parse_python(source)
        if tree is not None:
            found = scan_python(tree, source)
            for start, end in cut:
                found.extend(line_fallback("\n".join(text.split("\n")[start:end]), start + 1))
            return found
        block = _bad_block(source, lines)
        if block is None or sum(e - s for s, e in cut) + block[1] - block[0] > len(lines) // 2:
            return None
        cut.append(block)
        lines[block[0] : block[1]] = [""] * (block[1] - block[0])
    return None


MAX_EXCISIONS = 8


def _bad_block(source: str, lines: list[str]) -> tuple[int, int] | None:
    """(first, end) line indexes of the top-level statement where parsing fails."""
    try:
        ast.parse(source)
    except SyntaxError as exc:
        row = min(max((exc.lineno or 1) - 1, 0), len(lines) - 1)
    except (ValueError, RecursionError, MemoryError):
        return None
    else:
        return None
    start = row
    while start > 0 and not _top_level(lines[start]):
        start -= 1
    end = row + 1
    while end < len(lines) and not _top_level(lines[end]):
        end += 1
    return start, end


def _top_level(line: str) -> bool:
    return bool(line) and not line[0].isspace() and not line.startswith(("#", ")", "]", "}"))


def scan_python(tree: ast.Module, text: str) -> list[Finding]:
    """The findings in one parsed Python file. Only the statements that
    hold a candidate line (a word of the prefilter, or a name the file's
    imports bind to one) are walked: most of a large file is never visited."""
    names = Names(tree, text)
    matcher = _Matcher(names, candidate_lines(text, names))
    matcher.visit(tree.body, tree)
    return matcher.found


def candidate_lines(text: str, names: Names) -> list[int]:
    """Sorted line numbers where a sink can start."""
    words = [re.escape(n) for n, target in names.bound.items() if target != LOCAL and _WORDS.search(target)]
    regex = _WORDS_RE2 if not words else re2.compile(f"{KINDS['python']}|\\b(?:{'|'.join(words)})\\b")
    lines: list[int] = []
    line, position = 1, 0
    for match in regex.finditer(text):
        line += text.count("\n", position, match.start())
        position = match.start()
        if not lines or lines[-1] != line:
            lines.append(line)
    return lines


_WORDS = re.compile(KINDS["python"])
_WORDS_RE2 = re2.compile(KINDS["python"])
# Statement fields that hold statements (walked with pruning); the other
# fields hold expressions (walked whole).
_BODIES = ("body", "orelse", "finalbody", "handlers", "cases")
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


class _Matcher:
    def __init__(self, names: Names, lines: list[int]) -> None:
        self.names = names
        self.lines = lines
        self.found: list[Finding] = []
        self.scope: ast.AST | None = None
        self.handlers: dict[type, Callable[..., Iterator[Finding]]] = {
            ast.Call: self._call,
            ast.Assign: self._assign,
            ast.Dict: self._dict,
            ast.ClassDef: self._class,
            ast.FunctionDef: self._function,
            ast.AsyncFunctionDef: self._function,
        }

    def _candidate(self, node: ast.stmt) -> bool:
        decorators = getattr(node, "decorator_list", None)
        start = min([node.lineno] + [d.lineno for d in decorators]) if decorators else node.lineno
        index = bisect.bisect_left(self.lines, start)
        return index < len(self.lines) and self.lines[index] <= (node.end_lineno or node.lineno)

    def visit(self, body: list, scope: ast.AST) -> None:
        for node in body:
            if isinstance(node, ast.stmt) and not self._candidate(node):
                continue
            inner = node if isinstance(node, _SCOPES) else scope
            self._handle(node, scope)
            for field in node._fields:
                value = getattr(node, field, None)
                if field in _BODIES and isinstance(value, list):
                    self.visit(value, inner)
                elif isinstance(value, list):
                    for item in value:
                        if isinstance(item, ast.AST):
                            self._walk(item, inner)
                elif isinstance(value, ast.AST):
                    self._walk(value, inner)

    def _walk(self, node: ast.AST, scope: ast.AST) -> None:
        for child in ast.walk(node):
            self._handle(child, child if isinstance(child, ast.Lambda) else scope)

    def _handle(self, node: ast.AST, scope: ast.AST) -> None:
        handler = self.handlers.get(type(node))
        if handler is not None:
            self.scope = scope
            self.found.extend(handler(node))

    # --- calls ------------------------------------------------------------------------

    def _call(self, node: ast.Call) -> Iterator[Finding]:
        name = self.names.qualname(node.func)
        func = node.func
        sink = CALL_SINKS.get(name or "")
        if sink is None and isinstance(func, ast.Attribute):
            sink = METHOD_SINKS.get(func.attr)
        if sink is not None:
            yield from self._sink(node, *sink)
        if name:
            yield from self._special_call(node, name)
        yield from self._keywords(node, name or "")
        if isinstance(func, ast.Attribute) and func.attr == "unescape":
            receiver = self.names.qualname(func.value)
            if receiver and (receiver in MARKUP_CLASSES or receiver.removesuffix("()") in MARKUP_CLASSES):
                yield Finding(node.lineno, "markupsafe-unescape")

    def _sink(self, node: ast.Call, pattern: str, decisive: _ARGS) -> Iterator[Finding]:
        if pattern == "mako-template" and _escapes_by_default(node):
            yield Finding(node.lineno, pattern, "sanitized")
            return
        argument = _argument(node, decisive) if decisive else None
        if pattern in TEMPLATE_SOURCE and isinstance(argument, ast.Constant) and isinstance(argument.value, str):
            yield from scan_jinja(argument.value, first_line=argument.lineno)
        literal_only = pattern == "markupsafe-markup"  # a name holding a literal still counts (bandit B704)
        harmless = self.names.harmless(argument, self.scope, names=not literal_only) if decisive else None
        yield Finding(node.lineno, pattern, harmless)

    def _special_call(self, node: ast.Call, name: str) -> Iterator[Finding]:
        if name in JINJA_ENVIRONMENTS:
            yield from self._environment(node)
        elif name in FORMAT_HTML:
            fmt = _argument(node, (FORMAT_HTML[name], "format_string"))
            if fmt is not None and _is_formatted(fmt):
                yield Finding(node.lineno, "django-format-html")
        elif name in FLASK_RENDER_TEMPLATE:
            template = self.names.string_value(_argument(node, (0, "template_name_or_list")), self.scope)
            if template is not None and PurePosixPath(template).suffix.lower() not in FLASK_AUTOESCAPED:
                yield Finding(node.lineno, "flask-render-template-non-html")
        elif name in HTML_SAFE:
            yield Finding(node.lineno, "django-html-safe")  # html_safe(SomeClass)

    def _environment(self, node: ast.Call) -> Iterator[Finding]:
        """A Jinja2 environment escapes only when told to: no ``autoescape``
        (its default is False), or one that is neither True nor
        ``select_autoescape(...)`` (a variable, a function: nothing proves
        it escapes) is a finding (False is reported by the keyword check)."""
        if any(k.arg is None for k in node.keywords):
            return  # **options: cannot tell
        value = next((k.value for k in node.keywords if k.arg == "autoescape"), None)
        if value is None or not (_is_true(value) or _is_false(value) or self._selects(value)):
            yield Finding(node.lineno, "jinja2-autoescape-disabled")

    def _selects(self, value: ast.expr) -> bool:
        """``select_autoescape(...)``, however it was imported."""
        if not isinstance(value, ast.Call):
            return False
        name = self.names.qualname(value.func) or ""
        return name.rsplit(".", 1)[-1] == "select_autoescape"

    def _keywords(self, node: ast.Call, name: str) -> Iterator[Finding]:
        for keyword in node.keywords:
            if keyword.arg == "autoescape" and _is_false(keyword.value):
                yield Finding(node.lineno, _autoescape_pattern(name))
            elif keyword.arg == "is_safe" and _is_true(keyword.value):
                yield Finding(node.lineno, "django-filter-is-safe")

    # --- statements and literals ------------------------------------------------------

    def _assign(self, node: ast.Assign) -> Iterator[Finding]:
        for target in node.targets:
            attribute = target.attr if isinstance(target, ast.Attribute) else None
            if (attribute, _is_false(node.value)) == ("autoescape", True):
                yield Finding(node.lineno, "jinja2-autoescape-disabled")
            elif (attribute, _is_true(node.value)) == ("is_safe", True):
                yield Finding(node.lineno, "django-filter-is-safe")

    def _dict(self, node: ast.Dict) -> Iterator[Finding]:
        for key, value in zip(node.keys, node.values, strict=True):
            if not isinstance(key, ast.Constant):
                continue
            if key.value == "autoescape" and _is_false(value):
                yield Finding(key.lineno, "django-autoescape-disabled")
            elif key.value == "html" and _is_true(value) and "markdown_it" in self.names.text:
                yield Finding(key.lineno, "markdown-it-html-enabled")

    def _class(self, node: ast.ClassDef) -> Iterator[Finding]:
        if any(self.names.qualname(base) in SAFESTRING_CLASSES for base in node.bases):
            yield Finding(node.lineno, "django-safestring-subclass")
        yield from self._decorators(node)

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> Iterator[Finding]:
        if node.name == "__html__":
            yield Finding(node.lineno, "python-dunder-html")
        yield from self._decorators(node)

    def _decorators(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> Iterator[Finding]:
        for decorator in node.decorator_list:
            target = decorator.func if isinstance(decorator, ast.Call) else decorator
            name = self.names.qualname(target)
            if name in HTML_SAFE:
                yield Finding(decorator.lineno, "django-html-safe")
            elif name == "django.utils.safestring.mark_safe":
                yield Finding(decorator.lineno, "django-mark-safe")


def _argument(node: ast.Call, decisive: tuple[int, str]) -> ast.expr | None:
    position, keyword = decisive
    for item in node.keywords:
        if item.arg is not None and item.arg in keyword.split("|"):
            return item.value
    if len(node.args) > position and not any(isinstance(a, ast.Starred) for a in node.args[: position + 1]):
        return node.args[position]
    return None


def _escapes_by_default(node: ast.Call) -> bool:
    """Mako with ``default_filters`` holding "h" escapes every expression."""
    for keyword in node.keywords:
        if keyword.arg == "default_filters" and isinstance(keyword.value, (ast.List, ast.Tuple)):
            return any(isinstance(e, ast.Constant) and e.value == "h" for e in keyword.value.elts)
    return False


def _is_false(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value in (False, None) and not isinstance(node.value, str)


def _is_true(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def _is_formatted(node: ast.expr) -> bool:
    """A format string built at run time: an f-string with fields,
    ``str.format``, ``%`` or ``+`` (format_html escapes its arguments, not
    its format string)."""
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(v, ast.FormattedValue) for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mod)):
        return True
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format"


def _autoescape_pattern(callee: str) -> str:
    return (
        "django-autoescape-disabled"
        if callee.startswith("django.") or callee == "dict"
        else "jinja2-autoescape-disabled"
    )
