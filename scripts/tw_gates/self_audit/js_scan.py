"""The JavaScript/TypeScript scanner: the file is parsed with tree-sitter
(JavaScript with JSX, TypeScript, TSX) and matched on its syntax tree with
queries: property assignments (``el.innerHTML = x``, ``el['innerHTML'] = x``),
calls by receiver and method (``document.write``, ``$sce.trustAsHtml``),
object literal keys (``Object.assign(el, {innerHTML: x})``) and JSX
attributes (``dangerouslySetInnerHTML``). Comments and string literals never
match; a literal ``template:`` option is scanned as an HTML template."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from functools import cache

import tree_sitter

from tw_gates.self_audit.hits import Finding
from tw_gates.self_audit.js_values import Values, callee_name, language, parse

_ASSIGNED = '"innerHTML" "outerHTML" "srcdoc" "escape"'
_METHODS = (
    '"write" "writeln" "insertAdjacentHTML" "createContextualFragment" "setHTMLUnsafe" "parseHTMLUnsafe" '
    '"bypassSecurityTrustHtml" "bypassSecurityTrustScript" "bypassSecurityTrustStyle" "bypassSecurityTrustUrl" '
    '"bypassSecurityTrustResourceUrl" "trustAsHtml" "trustAsJs" "trustAsResourceUrl" "trustAsUrl" "trustAsCss" '
    '"trustAs" "enabled" "html" "append" "prepend" "after" "before" "replaceWith" "wrap" "wrapAll" "wrapInner" '
    '"template" "compile" "renderString" "SafeString"'
)
_KEYS = "innerHTML|outerHTML|dangerouslySetInnerHTML|allowDangerousHtml|escapeHtml|html|autoescape|noEscape|template"
QUERY = f"""
(assignment_expression left: (member_expression property: (property_identifier) @prop (#any-of? @prop {_ASSIGNED}))
  right: (_) @value) @node
(augmented_assignment_expression
  left: (member_expression property: (property_identifier) @prop (#any-of? @prop {_ASSIGNED})) right: (_) @value) @node
(assignment_expression left: (subscript_expression index: (string (string_fragment) @prop (#any-of? @prop {_ASSIGNED})))
  right: (_) @value) @node
(call_expression function: (member_expression property: (property_identifier) @method (#any-of? @method {_METHODS}))
  arguments: (arguments) @args) @node
(call_expression function: (identifier) @function (#any-of? @function "$" "jQuery") arguments: (arguments) @args) @node
(new_expression constructor: (_) @constructor arguments: (arguments) @args) @node
(pair key: (_) @key (#match? @key "^['\\"]?({_KEYS})['\\"]?$") value: (_) @value) @node
"""
JSX_QUERY = """
(jsx_attribute (property_identifier) @attribute
  (#any-of? @attribute "dangerouslySetInnerHTML" "allowDangerousHtml" "escapeHtml" "rehypePlugins" "innerHTML")) @node
"""
# Methods that are sinks on any receiver: pattern id and the decisive argument.
ANY_RECEIVER = {
    "insertAdjacentHTML": ("dom-insert-adjacent-html", 1),
    "createContextualFragment": ("dom-unsafe-html-parsing", 0),
    "setHTMLUnsafe": ("dom-unsafe-html-parsing", 0),
    "parseHTMLUnsafe": ("dom-unsafe-html-parsing", 0),
    "bypassSecurityTrustHtml": ("angular-bypass-sanitizer", 0),
    "bypassSecurityTrustScript": ("angular-bypass-sanitizer", 0),
    "bypassSecurityTrustStyle": ("angular-bypass-sanitizer", 0),
    "bypassSecurityTrustUrl": ("angular-bypass-sanitizer", 0),
    "bypassSecurityTrustResourceUrl": ("angular-bypass-sanitizer", 0),
    "trustAsHtml": ("angularjs-sce-trust", 0),
    "trustAsJs": ("angularjs-sce-trust", 0),
    "trustAsResourceUrl": ("angularjs-sce-trust", 0),
    "trustAsUrl": ("angularjs-sce-trust", 0),
    "trustAsCss": ("angularjs-sce-trust", 0),
    "trustAs": ("angularjs-sce-trust", 1),
}
JQUERY_INSERTS = frozenset({"append", "prepend", "after", "before", "replaceWith", "wrap", "wrapAll", "wrapInner"})
TemplateScanner = Callable[[str, int], list[Finding]]


@cache
def _query(grammar: str, jsx: bool) -> tree_sitter.Query:
    return tree_sitter.Query(language(grammar), QUERY + (JSX_QUERY if jsx else ""))


def grammar_for(name: str) -> str:
    lower = name.lower()
    if lower.endswith((".ts", ".mts", ".cts")):
        return "typescript"
    if lower.endswith(".tsx"):
        return "tsx"
    return "javascript"


def scan_js(
    source: bytes,
    grammar: str,
    *,
    first_line: int = 1,
    html_template: TemplateScanner | None = None,
    line_fallback: TemplateScanner | None = None,
) -> list[Finding] | None:
    """The findings in a JavaScript/TypeScript source. Where it does not
    parse (tree-sitter's ERROR nodes), those lines go to ``line_fallback``
    (the line scanner) and the rest is matched on the tree; None when there
    is no fallback or most of the source does not parse."""
    tree = parse(source, grammar)
    errors = _error_rows(tree.root_node) if tree.root_node.has_error else []
    if errors and (line_fallback is None or _rows(errors) * 2 > source.count(b"\n") + 1):
        return None
    matcher = _Matcher(Values(source), first_line - 1, html_template)
    cursor = tree_sitter.QueryCursor(_query(grammar, grammar != "typescript"))
    findings: list[Finding] = []
    for _, captures in cursor.matches(tree.root_node):
        findings.extend(matcher.match(captures))
    if not errors or line_fallback is None:
        return findings
    offset = first_line - 1
    kept = [f for f in findings if not any(a <= f.line - offset - 1 <= b for a, b in errors)]
    lines = source.decode("utf-8", "replace").split("\n")
    for start, end in errors:
        kept.extend(line_fallback("\n".join(lines[start : end + 1]), start + first_line))
    return kept


def _error_rows(root: tree_sitter.Node) -> list[tuple[int, int]]:
    """(first row, last row) of each outermost ERROR node."""
    rows: list[tuple[int, int]] = []
    stack = [root]
    while stack:
        node = stack.pop()
        if node.type == "ERROR":
            rows.append((node.start_point.row, node.end_point.row))
        elif node.has_error:
            stack.extend(node.children)
    return sorted(rows)


def _rows(ranges: list[tuple[int, int]]) -> int:
    return sum(end - start + 1 for start, end in ranges)


def _text(node: tree_sitter.Node | None) -> str:
    return node.text.decode("utf-8", "replace") if node is not None and node.text is not None else ""


def _arguments(args: tree_sitter.Node | None) -> list[tree_sitter.Node]:
    return [a for a in args.named_children if a.type != "comment"] if args is not None else []


class _Matcher:
    def __init__(self, values: Values, offset: int, html_template: TemplateScanner | None) -> None:
        self.values = values
        self.offset = offset
        self.html_template = html_template
        self.handlers: dict[str, Callable[[dict[str, list[tree_sitter.Node]]], Iterator[Finding]]] = {
            "prop": self._assignment,
            "method": self._method_call,
            "function": self._jquery_call,
            "constructor": self._new,
            "key": self._pair,
            "attribute": self._jsx_attribute,
        }

    def match(self, captures: dict[str, list[tree_sitter.Node]]) -> Iterator[Finding]:
        for name, handler in self.handlers.items():
            if name in captures:
                yield from handler(captures)
                return

    def _finding(self, node: tree_sitter.Node, pattern: str, argument: tree_sitter.Node | None = None, *, decide=True):
        harmless = self.values.harmless(argument) if decide else None
        return Finding(node.start_point.row + 1 + self.offset, pattern, harmless)

    def _assignment(self, captures) -> Iterator[Finding]:
        node, prop, value = captures["node"][0], _text(captures["prop"][0]), captures["value"][0]
        target = node.child_by_field_name("left")
        receiver = callee_name(target) if target is not None else ""
        if receiver.endswith((".dataset." + prop, ".style." + prop)):
            return  # a data attribute or style property of that name
        if prop in ("innerHTML", "outerHTML"):
            yield self._finding(node, "dom-inner-html", value)
        elif prop == "srcdoc":
            yield self._finding(node, "dom-srcdoc", value)
        elif prop == "escape":
            obj = target.child_by_field_name("object") if target is not None else None
            if _text(obj) in ("Mustache", "mustache"):
                yield self._finding(node, "mustache-escape-overwrite", decide=False)

    def _method_call(self, captures) -> Iterator[Finding]:
        node, method, args = captures["node"][0], _text(captures["method"][0]), _arguments(captures["args"][0])
        receiver = callee_name(node.child_by_field_name("function") or node).rsplit(".", 1)[0]
        first = args[0] if args else None
        if method in ANY_RECEIVER:
            pattern, index = ANY_RECEIVER[method]
            yield self._finding(node, pattern, args[index] if len(args) > index else None)
        elif method in ("write", "writeln") and receiver.endswith("document") and args:
            yield Finding(node.start_point.row + 1 + self.offset, "dom-document-write", self.values._all(list(args)))
        elif method == "enabled" and receiver.endswith("$sceProvider") and first is not None and first.type == "false":
            yield self._finding(node, "angularjs-sce-trust", decide=False)
        elif method in ("html", *JQUERY_INSERTS) and first is not None and _is_jquery(receiver, node):
            if method == "html" or _looks_like_html(first, self.values):
                yield self._finding(node, "jquery-html-sink", first)
        else:
            yield from self._library_call(node, method, receiver, args)

    def _library_call(self, node, method: str, receiver: str, args: list[tree_sitter.Node]) -> Iterator[Finding]:
        first = args[0] if args else None
        if method == "template" and receiver in ("_", "lodash", "underscore"):
            yield self._finding(node, "lodash-template", first)
        elif method == "compile" and receiver.lower() in ("handlebars", "hbs"):
            options = args[1] if len(args) > 1 else None
            if options is not None and "noEscape" in _text(options) and "true" in _text(options):
                yield self._finding(node, "handlebars-compile", decide=False)
            else:
                yield self._finding(node, "handlebars-compile", first)
        elif method == "renderString" and b"nunjucks" in self.values.source:
            yield self._finding(node, "nunjucks-render-string", first)
        elif method == "SafeString":  # Handlebars.SafeString(x) without new
            yield self._finding(node, "handlebars-safe-string", first)

    def _jquery_call(self, captures) -> Iterator[Finding]:
        node, args = captures["node"][0], _arguments(captures["args"][0])
        if args and _builds_markup(args[0], self.values):
            yield self._finding(node, "jquery-html-sink", args[0])

    def _new(self, captures) -> Iterator[Finding]:
        node, args = captures["node"][0], _arguments(captures["args"][0])
        if callee_name(captures["constructor"][0]).rsplit(".", 1)[-1] == "SafeString":
            yield self._finding(node, "handlebars-safe-string", args[0] if args else None)

    def _pair(self, captures) -> Iterator[Finding]:
        node, key, value = captures["node"][0], _text(captures["key"][0]).strip("'\""), captures["value"][0]
        if key in ("innerHTML", "outerHTML"):
            yield self._finding(node, "dom-inner-html", value)
        elif key == "dangerouslySetInnerHTML":
            yield self._finding(node, "react-dangerously-set-inner-html", _inner_html(value))
        elif (key == "allowDangerousHtml" and value.type == "true") or (key == "escapeHtml" and value.type == "false"):
            yield self._finding(node, "react-markdown-raw-html", decide=False)
        elif key == "html" and value.type == "true" and b"markdown-it" in self.values.source:
            yield self._finding(node, "markdown-it-html-enabled", decide=False)
        elif key == "autoescape" and value.type == "false":
            yield self._finding(node, "nunjucks-autoescape-disabled", decide=False)
        elif key == "noEscape" and value.type == "true":
            yield self._finding(node, "handlebars-compile", decide=False)
        elif key == "template" and value.type in ("string", "template_string") and self.html_template:
            yield from self.html_template(_text(value)[1:-1], value.start_point.row + 1 + self.offset)

    def _jsx_attribute(self, captures) -> Iterator[Finding]:
        node, name = captures["node"][0], _text(captures["attribute"][0])
        value = node.named_children[1] if len(node.named_children) > 1 else None
        inner = value.named_children[0] if value is not None and value.named_children else None
        if name == "dangerouslySetInnerHTML":
            yield self._finding(node, "react-dangerously-set-inner-html", _inner_html(inner))
        elif name == "innerHTML":
            yield self._finding(node, "dom-inner-html", inner)
        elif _raw_markdown(name, value, inner):
            yield self._finding(node, "react-markdown-raw-html", decide=False)


def _raw_markdown(name: str, value: tree_sitter.Node | None, inner: tree_sitter.Node | None) -> bool:
    """react-markdown told to pass raw HTML: ``allowDangerousHtml``,
    ``escapeHtml={false}``, ``rehypePlugins={[rehypeRaw]}``."""
    if name == "allowDangerousHtml":
        return value is None or _text(inner) == "true"
    if name == "escapeHtml":
        return _text(inner) == "false"
    return name == "rehypePlugins" and inner is not None and _mentions_rehype_raw(inner)


def _inner_html(value: tree_sitter.Node | None) -> tree_sitter.Node | None:
    """The ``__html`` of ``{__html: x}``; None (not harmless) for anything else."""
    if value is None or value.type != "object":
        return None
    for pair in value.named_children:
        if pair.type == "pair" and _text(pair.child_by_field_name("key")).strip("'\"") == "__html":
            return pair.child_by_field_name("value")
    return None


def _mentions_rehype_raw(node: tree_sitter.Node) -> bool:
    text = _text(node)
    return "rehypeRaw" in text or "rehype-raw" in text


def _is_jquery(receiver: str, node: tree_sitter.Node) -> bool:
    """A jQuery (or jqLite) object: ``$(...)``, ``jQuery(...)``,
    ``angular.element(...)`` or a ``$name`` variable, at the chain's root."""
    if receiver.startswith("$") or receiver.startswith("this.$"):
        return True
    function = node.child_by_field_name("function")
    root = function.child_by_field_name("object") if function is not None else None
    while root is not None and root.type in ("call_expression", "member_expression"):
        inner = root.child_by_field_name("function") or root.child_by_field_name("object")
        if root.type == "call_expression" and _text(inner) in ("$", "jQuery", "angular.element"):
            return True
        root = inner
    return False


def _looks_like_html(node: tree_sitter.Node, values: Values) -> bool:
    """An argument that may be a markup string rather than an element: not a
    literal, not an element (``$("<li>")``, ``document.createElement``,
    ``x.cloneNode()``, ``new ...``, a variable named like an element)."""
    if values.harmless(node) is not None:
        return True  # reported as harmless (dropped unless asked)
    if node.type == "new_expression":
        return False
    if node.type == "call_expression":
        text = _text(node)
        return not (
            text.startswith(("$(", "jQuery("))
            or _ELEMENT_CALL.search(callee_name(node.child_by_field_name("function") or node))
        )
    if node.type in ("identifier", "member_expression"):
        return not _ELEMENT_NAME.search(_text(node))
    return True


def _builds_markup(node: tree_sitter.Node, values: Values) -> bool:
    """A markup string built at run time: ``"<li>" + x``, `` `<b>${x}</b>` ``."""
    return (
        node.type in ("binary_expression", "template_string") and "<" in _text(node) and values.harmless(node) is None
    )


_ELEMENT_CALL = re.compile(
    r"^(?:\$|jQuery|angular\.element)$|^\*?\.?(?:clone|cloneNode|importNode)$|createElement|^\$\(|^jQuery\("
)
_ELEMENT_NAME = re.compile(r"(?:^|[._$])(?:el|elem|element|node|item|child|\$\w*)$|(?:El|Elem|Element|Node|Nodes|\$)$")
