"""The Python scanner: the file is parsed with ``ast`` and matched on its
syntax tree. Calls are resolved through the file's imports and aliases;
keyword arguments, dict literals, class bases, decorators and attribute
assignments are read as what they are. Comments, docstrings and string
literals never match, except a literal that a template engine compiles (its
template text is scanned as a template)."""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from pathlib import PurePosixPath

from tw_gates.self_audit.hits import Finding
from tw_gates.self_audit.python_names import Names
from tw_gates.self_audit.templates import scan_jinja

# Calls whose decisive argument is (position, keyword): a constant or
# sanitized value there is harmless.
_ARGS = tuple[int, str] | None
CALL_SINKS: dict[str, tuple[str, _ARGS]] = {
    "flask.render_template_string": ("flask-render-template-string", (0, "source")),
    "jinja2.Template": ("jinja2-template", (0, "source")),
    "jinja2.environment.Template": ("jinja2-template", (0, "source")),
    "markupsafe.Markup": ("markupsafe-markup", (0, "base")),
    "flask.Markup": ("markupsafe-markup", (0, "base")),
    "jinja2.Markup": ("markupsafe-markup", (0, "base")),
    "jinja2.utils.Markup": ("markupsafe-markup", (0, "base")),
    "django.template.Template": ("django-template", (0, "template_string")),
    "django.template.base.Template": ("django-template", (0, "template_string")),
    "django.template.loader.render_to_string": ("django-render-to-string", None),
    "django.utils.safestring.mark_safe": ("django-mark-safe", (0, "s")),
    "django.utils.safestring.SafeString": ("django-mark-safe", (0, "s")),
    "django.utils.safestring.SafeText": ("django-mark-safe", (0, "s")),
    "django.utils.safestring.SafeBytes": ("django-mark-safe", (0, "s")),
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
    {"jinja2.Environment", "jinja2.environment.Environment", "jinja2.sandbox.SandboxedEnvironment"}
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


def scan_python(tree: ast.Module, text: str) -> list[Finding]:
    """The findings in one parsed Python file."""
    return list(_Matcher(Names(tree, text)).run(tree))


class _Matcher:
    def __init__(self, names: Names) -> None:
        self.names = names
        self.handlers: dict[type, Callable[..., Iterator[Finding]]] = {
            ast.Call: self._call,
            ast.Assign: self._assign,
            ast.Dict: self._dict,
            ast.ClassDef: self._class,
            ast.FunctionDef: self._function,
            ast.AsyncFunctionDef: self._function,
        }

    def run(self, tree: ast.Module) -> Iterator[Finding]:
        handlers = self.handlers
        for node in ast.walk(tree):
            handler = handlers.get(type(node))
            if handler is not None:
                yield from handler(node)

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
        yield Finding(node.lineno, pattern, self.names.harmless(argument) if decisive else None)

    def _special_call(self, node: ast.Call, name: str) -> Iterator[Finding]:
        if name in JINJA_ENVIRONMENTS:
            yield from self._environment(node)
        elif name in FORMAT_HTML:
            fmt = _argument(node, (FORMAT_HTML[name], "format_string"))
            if fmt is not None and _is_formatted(fmt):
                yield Finding(node.lineno, "django-format-html")
        elif name in FLASK_RENDER_TEMPLATE:
            template = _argument(node, (0, "template_name_or_list"))
            if isinstance(template, ast.Constant) and isinstance(template.value, str):
                if PurePosixPath(template.value).suffix.lower() not in FLASK_AUTOESCAPED:
                    yield Finding(node.lineno, "flask-render-template-non-html")

    def _environment(self, node: ast.Call) -> Iterator[Finding]:
        """A Jinja2 environment escapes only when told to: no ``autoescape``
        (its default is False) or one read from a variable is a finding;
        True, ``select_autoescape(...)`` or a function deciding per template
        is not (False is reported by the keyword check)."""
        if any(k.arg is None for k in node.keywords):
            return  # **options: cannot tell
        value = next((k.value for k in node.keywords if k.arg == "autoescape"), None)
        if value is None:
            yield Finding(node.lineno, "jinja2-autoescape-disabled")
        elif isinstance(value, (ast.Name, ast.Attribute, ast.Subscript)):
            yield Finding(node.lineno, "jinja2-autoescape-disabled")

    def _keywords(self, node: ast.Call, name: str) -> Iterator[Finding]:
        for keyword in node.keywords:
            if keyword.arg == "autoescape" and _is_false(keyword.value):
                yield Finding(node.lineno, _autoescape_pattern(name))
            elif keyword.arg == "is_safe" and _is_true(keyword.value):
                yield Finding(node.lineno, "django-filter-is-safe")

    # --- statements and literals ------------------------------------------------------

    def _assign(self, node: ast.Assign) -> Iterator[Finding]:
        for target in node.targets:
            if not isinstance(target, ast.Attribute):
                continue
            if target.attr == "autoescape" and _is_false(node.value):
                yield Finding(node.lineno, "jinja2-autoescape-disabled")
            elif target.attr == "is_safe" and _is_true(node.value):
                yield Finding(node.lineno, "django-filter-is-safe")

    def _dict(self, node: ast.Dict) -> Iterator[Finding]:
        for key, value in zip(node.keys, node.values):
            if isinstance(key, ast.Constant) and key.value == "autoescape" and _is_false(value):
                yield Finding(key.lineno, "django-autoescape-disabled")
            elif isinstance(key, ast.Constant) and key.value == "html" and _is_true(value):
                if "markdown_it" in self.names.text:
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
        if item.arg == keyword:
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
