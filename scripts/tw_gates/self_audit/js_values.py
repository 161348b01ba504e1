"""JavaScript and TypeScript values as the scanner judges them: harmless
(a constant literal, or a value passed through a known sanitizer) or not."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache

import tree_sitter
import tree_sitter_javascript
import tree_sitter_typescript

from tw_gates.self_audit.hits import Argument

# Calls whose result is escaped or sanitized HTML, by callee: a dotted name,
# or "*.name" for a method of that name on any receiver.
SANITIZER_CALLS = frozenset(
    {
        "DOMPurify.sanitize",
        "*.sanitize",
        "sanitize",
        "sanitizeHtml",
        "sanitizeHTML",
        "xss",
        "filterXSS",
        "escapeHtml",
        "escapeHTML",
        "escape",
        "htmlEscape",
        "encodeHTML",
        "_.escape",
        "lodash.escape",
        "he.encode",
        "he.escape",
        "validator.escape",
        "Handlebars.escapeExpression",
        "Handlebars.Utils.escapeExpression",
        "Mustache.escape",
        "*.escapeHtml",
        "*.escapeHTML",
    }
)
_CONSTANT_TYPES = frozenset({"number", "true", "false", "null", "undefined", "regex"})


@cache
def language(name: str) -> tree_sitter.Language:
    """The tree-sitter grammar: 'javascript' (with JSX), 'typescript' or 'tsx'."""
    loaders: dict[str, Callable[[], object]] = {
        "javascript": tree_sitter_javascript.language,
        "typescript": tree_sitter_typescript.language_typescript,
        "tsx": tree_sitter_typescript.language_tsx,
    }
    return tree_sitter.Language(loaders[name]())


def callee_name(node: tree_sitter.Node) -> str:
    """``a.b.c`` for a member chain of identifiers, else the last property
    as ``*.c`` (``foo().c``), else ''."""
    parts: list[str] = []
    while node.type == "member_expression":
        prop = node.child_by_field_name("property")
        parts.append(_text(prop))
        node = node.child_by_field_name("object") or node
        if node.type not in ("member_expression", "identifier", "this"):
            return f"*.{parts[0]}" if parts else ""
    if node.type in ("identifier", "this"):
        parts.append(_text(node))
        return ".".join(reversed(parts))
    return ""


def _text(node: tree_sitter.Node | None) -> str:
    return node.text.decode("utf-8", "replace") if node is not None and node.text is not None else ""


class Values:
    """Judges values in one file (``source`` is its text, for the names it
    binds to literals)."""

    def __init__(self, source: bytes) -> None:
        self.source = source
        self._constants: dict[tuple[int, int, str], bool | None] = {}

    def harmless(self, node: tree_sitter.Node | None) -> Argument | None:
        if node is None:
            return None
        kind = node.type
        if kind == "string" or kind in _CONSTANT_TYPES:
            return "constant"
        if kind == "template_string":
            return self._all([c for c in node.named_children if c.type == "template_substitution"])
        if kind == "template_substitution" or kind == "parenthesized_expression":
            inner = node.named_children
            return self.harmless(inner[0]) if len(inner) == 1 else None
        if kind == "binary_expression":
            return self._all([node.child_by_field_name("left"), node.child_by_field_name("right")])
        if kind == "ternary_expression":
            return self._all([node.child_by_field_name("consequence"), node.child_by_field_name("alternative")])
        if kind == "call_expression":
            return self._call(node)
        if kind == "identifier" and self.is_constant(node):
            return "constant"
        return None

    def _all(self, nodes: list[tree_sitter.Node | None]) -> Argument | None:
        kinds = [self.harmless(n) for n in nodes]
        if not all(kinds):
            return None
        return "sanitized" if "sanitized" in kinds else "constant"

    def _call(self, node: tree_sitter.Node) -> Argument | None:
        function = node.child_by_field_name("function")
        if function is None:
            return None
        name = callee_name(function)
        method = "*." + name.rsplit(".", 1)[-1] if "." in name or name.startswith("*.") else ""
        if name in SANITIZER_CALLS or method in SANITIZER_CALLS:
            return "sanitized"
        return None

    def is_constant(self, node: tree_sitter.Node) -> bool:
        """An identifier whose nearest scope binding it (a function, else the
        file) only ever assigns it string literals, and has no parameter of
        that name."""
        name = _text(node)
        scope = node.parent
        while scope is not None:
            if scope.type in _SCOPES:
                verdict = self._verdict(scope, name)
                if verdict is not None:
                    return verdict
            scope = scope.parent
        return False

    def _verdict(self, scope: tree_sitter.Node, name: str) -> bool | None:
        key = (scope.start_byte, scope.end_byte, name)
        if key not in self._constants:
            self._constants[key] = _scope_verdict(scope, name)
        return self._constants[key]


_SCOPES = frozenset(
    {"program", "function_declaration", "function_expression", "function", "arrow_function", "method_definition"}
)
_LITERAL_VALUE = re.compile(rb"\s*(?:'[^'\\\n]*'|\"[^\"\\\n]*\"|`[^`$\\]*`)\s*(?:[;,)\n]|$)")


def _scope_verdict(scope: tree_sitter.Node, name: str) -> bool | None:
    """True/False when ``scope`` binds ``name`` (literals only, or not);
    None when it does not bind it (the enclosing scope decides)."""
    parameters = scope.child_by_field_name("parameters") or scope.child_by_field_name("parameter")
    if parameters is not None and re.search(
        rb"(?<![\w$])" + re.escape(name.encode()) + rb"(?![\w$])", parameters.text or b""
    ):
        return False
    body = scope.text or b""
    binding = re.compile(rb"(?<![\w$.])" + re.escape(name.encode()) + rb"\s*(?::\s*string\s*)?(?:\+=|=(?![=>]))")
    found = None
    for match in binding.finditer(body):
        if not _LITERAL_VALUE.match(body, match.end()):
            return False
        found = True
    return found


def parse(source: bytes, grammar: str) -> tree_sitter.Tree:
    return tree_sitter.Parser(language(grammar)).parse(source)


def harmless_expression(text: str, values: Values | None = None) -> Argument | None:
    """Judge an expression written in a template attribute or tag
    (``v-html="DOMPurify.sanitize(x)"``, ``{@html '<b>x</b>'}``)."""
    tree = parse(f"({text}\n);".encode(), "javascript")
    if tree.root_node.has_error:
        return None
    statement = tree.root_node.named_children[0] if tree.root_node.named_children else None
    expression = statement.named_children[0] if statement is not None and statement.named_children else None
    return (values or Values(b"")).harmless(expression)
