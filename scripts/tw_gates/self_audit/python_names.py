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
    "SafeUnicode": "django.utils.safestring.SafeUnicode",
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
        self._constants: dict[int, dict[str, bool]] = {}
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
            target = self.qualname(node.value) if isinstance(node.value, (ast.Name, ast.Attribute)) else None
            self.bound.setdefault(node.targets[0].id, target or LOCAL)

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

    def harmless(self, node: ast.expr | None, scope: ast.AST | None = None, *, names: bool = True) -> Argument | None:
        """'constant' for a literal (or, with ``names``, a name that its
        scope only ever binds to literals), 'sanitized' for a value passed
        through a sanitizer or built from such values, None for anything
        that may carry markup."""
        if node is None:
            return None
        if isinstance(node, ast.Name):
            return "constant" if names and self.is_constant_name(node.id, scope) else None
        parts = _parts(node)
        if parts is not None:
            return self._all_harmless(parts, scope, names)
        if isinstance(node, ast.Call):
            return self._harmless_call(node, scope, names)
        return "constant" if isinstance(node, ast.Constant) else None

    def _all_harmless(self, nodes: list[ast.expr], scope: ast.AST | None, names: bool) -> Argument | None:
        kinds = [self.harmless(n, scope, names=names) for n in nodes]
        if not all(kinds):
            return None
        return "sanitized" if "sanitized" in kinds else "constant"

    def _harmless_call(self, node: ast.Call, scope: ast.AST | None, names: bool) -> Argument | None:
        if self.qualname(node.func) in SANITIZERS:
            return "sanitized"
        func = node.func
        # "<b>{}</b>".format(safe, ...)
        if isinstance(func, ast.Attribute) and func.attr == "format" and isinstance(func.value, ast.Constant):
            arguments = [_unstarred(a) for a in node.args] + [k.value for k in node.keywords]
            return self._all_harmless([func.value, *arguments], scope, names)
        return None

    def string_value(self, node: ast.expr | None, scope: ast.AST | None) -> str | None:
        """The value of a string literal, or of a name its scope binds to
        one literal only (``page = "x.txt"; render_template(page)``)."""
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if not isinstance(node, ast.Name) or not self.is_constant_name(node.id, scope):
            return None
        for each in (scope, self._tree):
            if each is None:
                continue
            values = {
                v.value
                for n in ast.walk(each)
                for name, v in _bindings_of(n)
                if name == node.id and isinstance(v, ast.Constant) and isinstance(v.value, str)
            }
            if len(values) == 1:
                return values.pop()
        return None

    def is_constant_name(self, name: str, scope: ast.AST | None) -> bool:
        """True when every binding of ``name`` in its scope (the function,
        else the module) is a literal, and it is not a parameter."""
        if self.bound.get(name, LOCAL) != LOCAL:
            return False  # an import
        if scope is not None and not isinstance(scope, ast.Module):
            verdict = self._scope_constants(scope).get(name)
            if verdict is not None:
                return verdict
        return self._scope_constants(self._tree).get(name, False)

    def _scope_constants(self, scope: ast.AST) -> dict[str, bool]:
        cached = self._constants.get(id(scope))
        if cached is None:
            nodes: Iterator[ast.AST] = (
                iter_statements_shallow(scope.body) if isinstance(scope, ast.Module) else ast.walk(scope)
            )
            bindings = [b for node in nodes for b in _bindings_of(node)]
            outer = None if isinstance(scope, ast.Module) else self._scope_constants(self._tree)
            # The greatest fixpoint: every name is a constant until one of its
            # bindings is not (``s = "<b>{}</b>".format(s)`` keeps ``s`` one).
            cached = {name: True for name, _ in bindings}
            while True:
                verdict: dict[str, bool] = {}
                for name, value in bindings:
                    ok = value is not None and self._literal(value, cached, outer)
                    verdict[name] = verdict.get(name, True) and ok
                if verdict == cached:
                    break
                cached = verdict
            self._constants[id(scope)] = cached
        return cached

    def _literal(self, node: ast.expr, known: dict[str, bool], outer: dict[str, bool] | None = None) -> bool:
        if isinstance(node, ast.Name):
            if node.id in known:
                return known[node.id]
            return bool(outer and outer.get(node.id, False))
        parts = _parts(node)
        if parts is not None:
            return all(self._literal(p, known, outer) for p in parts)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
            arguments = [_unstarred(a) for a in node.args] + [k.value for k in node.keywords]
            return all(self._literal(p, known, outer) for p in [node.func.value, *arguments])
        return isinstance(node, ast.Constant)


def _unstarred(node: ast.expr) -> ast.expr:
    return node.value if isinstance(node, ast.Starred) else node


def _parts(node: ast.expr) -> list[ast.expr] | None:
    """The parts a string is built from (f-string, ``+``, ``%``, a tuple,
    list or dict of them, a conditional), None for anything else."""
    if isinstance(node, ast.JoinedStr):
        return [v.value for v in node.values if isinstance(v, ast.FormattedValue)]
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mod)):
        return [node.left, node.right]
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return [_unstarred(e) for e in node.elts]
    if isinstance(node, ast.Dict):
        return [v for v in node.values if v is not None] + [k for k in node.keys if k is not None]
    if isinstance(node, ast.IfExp):
        return [node.body, node.orelse]
    return None


def iter_statements_shallow(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """The module's own statements (into if/try/with blocks, not into
    functions or classes)."""
    for node in iter_statements(body):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            yield node


def _bindings_of(node: ast.AST) -> Iterator[tuple[str, ast.expr | None]]:
    """(name, the value bound, None when unknown) for each name ``node`` binds."""
    if isinstance(node, ast.Assign):
        for target in node.targets:
            yield from _unpack(target, node.value)
    elif isinstance(node, ast.AnnAssign):
        yield from _unpack(node.target, node.value)
    elif isinstance(node, (ast.AugAssign, ast.For, ast.AsyncFor, ast.comprehension, ast.NamedExpr)):
        yield from _unpack(node.target, None)
    elif isinstance(node, ast.arg):
        yield node.arg, None
    elif isinstance(node, ast.withitem) and node.optional_vars is not None:
        yield from _unpack(node.optional_vars, None)
    elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        yield node.name, None


def _unpack(target: ast.expr, value: ast.expr | None) -> Iterator[tuple[str, ast.expr | None]]:
    if isinstance(target, ast.Name):
        yield target.id, value
    elif isinstance(target, (ast.Tuple, ast.List)):
        values = (
            value.elts if isinstance(value, (ast.Tuple, ast.List)) and len(value.elts) == len(target.elts) else None
        )
        for index, element in enumerate(target.elts):
            yield from _unpack(_unstarred(element), values[index] if values else None)
    elif isinstance(target, ast.Starred):
        yield from _unpack(target.value, None)
