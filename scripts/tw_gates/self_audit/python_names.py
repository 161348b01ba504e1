"""Names in a Python file: what each name is bound to by the file's imports
(``from markupsafe import Markup as M`` binds ``M`` to ``markupsafe.Markup``),
which names the file defines itself, and which expressions are harmless
arguments (constant literals, or values passed through a known sanitizer)."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from tw_gates.self_audit.hits import Argument

LOCAL = "<local>"  # a name the file defines itself (def, class, assignment)

# Bare names that mean a well-known sink when the file neither imports nor
# defines them (a snippet, a star import).
BARE_NAMES = {
    "Markup": "markupsafe.Markup",
    "mark_safe": "django.utils.safestring.mark_safe",
    "SafeString": "django.utils.safestring.SafeString",
    "SafeText": "django.utils.safestring.SafeText",
    "SafeData": "django.utils.safestring.SafeData",
    "SafeBytes": "django.utils.safestring.SafeBytes",
    "format_html": "django.utils.html.format_html",
    "format_html_join": "django.utils.html.format_html_join",
    "html_safe": "django.utils.html.html_safe",
    "render_template_string": "flask.render_template_string",
    "render_template": "flask.render_template",
    "render_to_string": "django.template.loader.render_to_string",
    "escape": "markupsafe.escape",
    "conditional_escape": "django.utils.html.conditional_escape",
}
# Bare names that need the library named somewhere in the file to count.
BARE_NAMES_IF_MENTIONED = {
    "Environment": ("jinja2", "jinja2.Environment"),
    "Template": ("jinja2", "jinja2.Template"),
}

# Calls whose result is escaped HTML (or text with the markup removed).
SANITIZERS = frozenset(
    {
        "markupsafe.escape",
        "markupsafe.Markup.escape",
        "markupsafe.escape_silent",
        "flask.escape",
        "jinja2.escape",
        "html.escape",
        "cgi.escape",
        "xml.sax.saxutils.escape",
        "django.utils.html.escape",
        "django.utils.html.conditional_escape",
        "django.utils.html.format_html",
        "django.utils.html.format_html_join",
        "django.utils.html.json_script",
        "bleach.clean",
        "bleach.linkify",
        "bleach.sanitizer.Cleaner().clean",
        "bleach.Cleaner().clean",
        "nh3.clean",
        "lxml.html.clean.clean_html",
    }
)

_SCOPE_FIELDS = ("body", "orelse", "finalbody", "handlers", "cases")


def iter_statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Every statement, at any depth (not the expressions inside them)."""
    stack = list(reversed(body))
    while stack:
        node = stack.pop()
        yield node
        for name in _SCOPE_FIELDS:
            children = getattr(node, name, None)
            if children:
                stack.extend(reversed(children))


class Names:
    """The bindings of one module, resolved lazily where it costs a walk."""

    def __init__(self, tree: ast.Module, text: str) -> None:
        self.text = text
        self.bound: dict[str, str] = {}
        self._tree = tree
        self._constants: frozenset[str] | None = None
        for node in iter_statements(tree.body):
            self._bind(node)

    def _bind(self, node: ast.stmt) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    self.bound[alias.asname] = alias.name
                else:
                    top = alias.name.split(".", 1)[0]
                    self.bound.setdefault(top, top)
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            for alias in node.names:
                if alias.name != "*":
                    self.bound[alias.asname or alias.name] = f"{module}.{alias.name}"
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            self.bound.setdefault(node.name, LOCAL)
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            # ``M = markupsafe.Markup`` is an alias; any other value is the file's own.
            alias = self.qualname(node.value) if isinstance(node.value, (ast.Name, ast.Attribute)) else None
            self.bound.setdefault(node.targets[0].id, alias or LOCAL)

    def qualname(self, node: ast.expr) -> str | None:
        """The dotted name an expression refers to through the file's
        imports (``M.unescape`` -> ``markupsafe.Markup.unescape``); a call in
        the chain is written ``()``; None for the file's own names."""
        parts: list[str] = []
        while True:
            if isinstance(node, ast.Attribute):
                parts.append(node.attr)
                node = node.value
            elif isinstance(node, ast.Call):
                parts.append("()")
                node = node.func
            else:
                break
        if not isinstance(node, ast.Name):
            return None
        base = self.bound.get(node.id)
        if base is None:
            base = BARE_NAMES.get(node.id)
            mentioned = BARE_NAMES_IF_MENTIONED.get(node.id)
            if base is None and mentioned and mentioned[0] in self.text:
                base = mentioned[1]
            base = base or node.id
        if base == LOCAL:
            return None
        dotted = base
        for part in reversed(parts):
            dotted = dotted + part if part == "()" else f"{dotted}.{part}"
        return dotted

    # --- harmless arguments -----------------------------------------------------------

    def harmless(self, node: ast.expr | None) -> Argument | None:
        """'constant' for a literal (or a name only ever bound to literals),
        'sanitized' for a value passed through a sanitizer or built from
        such values, None for anything that may carry markup."""
        if node is None:
            return None
        if isinstance(node, ast.Constant):
            return "constant"
        if isinstance(node, ast.JoinedStr):
            return self._all_harmless([v.value for v in node.values if isinstance(v, ast.FormattedValue)])
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mod)):
            right = node.right.elts if isinstance(node.right, ast.Tuple) else [node.right]
            return self._all_harmless([node.left, *right])
        if isinstance(node, ast.IfExp):
            return self._all_harmless([node.body, node.orelse])
        if isinstance(node, ast.Call):
            return self._harmless_call(node)
        if isinstance(node, ast.Name) and node.id in self.constant_names():
            return "constant"
        return None

    def _all_harmless(self, nodes: list[ast.expr]) -> Argument | None:
        kinds = [self.harmless(n) for n in nodes]
        if not all(kinds):
            return None
        return "sanitized" if "sanitized" in kinds else "constant"

    def _harmless_call(self, node: ast.Call) -> Argument | None:
        name = self.qualname(node.func)
        if name in SANITIZERS:
            return "sanitized"
        func = node.func
        # "<b>{}</b>".format(safe, ...)
        if isinstance(func, ast.Attribute) and func.attr == "format" and isinstance(func.value, ast.Constant):
            return self._all_harmless([func.value, *node.args, *(k.value for k in node.keywords)])
        return None

    def constant_names(self) -> frozenset[str]:
        """Names every binding of which, anywhere in the file, is a literal
        (and that are never a parameter, a loop target or an import)."""
        if self._constants is None:
            constant: dict[str, bool] = {}
            for node in ast.walk(self._tree):
                for name, is_constant in _bindings_of(node):
                    constant[name] = constant.get(name, True) and is_constant
            self._constants = frozenset(n for n, ok in constant.items() if ok and self.bound.get(n, LOCAL) == LOCAL)
        return self._constants


def _bindings_of(node: ast.AST) -> Iterator[tuple[str, bool]]:
    """(name, bound to a literal) for each name ``node`` binds."""
    if isinstance(node, ast.Assign):
        literal = isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
        for target in node.targets:
            for name in ast.walk(target):
                if isinstance(name, ast.Name):
                    yield name.id, literal and isinstance(target, ast.Name)
    elif isinstance(node, (ast.AugAssign, ast.AnnAssign, ast.For, ast.comprehension, ast.NamedExpr)):
        target = node.target
        for name in ast.walk(target):
            if isinstance(name, ast.Name):
                yield name.id, False
    elif isinstance(node, ast.arg):
        yield node.arg, False
    elif isinstance(node, (ast.withitem,)) and node.optional_vars is not None:
        for name in ast.walk(node.optional_vars):
            if isinstance(name, ast.Name):
                yield name.id, False
