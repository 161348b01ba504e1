"""``${{ ... }}`` expressions, resolved only where the value is knowable from
the files: literals, ``inputs.X`` (the caller's ``with:`` or the declared
default), ``env.X`` and ``a || b``. Anything else (``vars``, ``secrets``,
functions) is reported as not statically known."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from tw_gates.core.yaml_lines import scalar_text

TRUTHY = {"true", "1", "yes", "on", "y", "t"}  # what pydantic accepts as True for a bool setting
# --------------------------------------------------------------------------- expressions

_EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}", re.S)
_LITERAL_STRING = re.compile(r"^'((?:[^']|'')*)'$")
_CONTEXT_REF = re.compile(r"^(inputs|env)\.([A-Za-z_][A-Za-z0-9_-]*)$|^(inputs|env)\[\s*'([^']+)'\s*\]$")


@dataclass(frozen=True)
class Resolved:
    """The statically known value of a setting, or why it is not known."""

    value: str | None  # None: not set at all
    known: bool = True
    source: str = ""  # where the value comes from, for evidence

    @property
    def is_true(self) -> bool:
        return self.known and self.value is not None and self.value.strip().lower() in TRUTHY


@dataclass
class Scope:
    """What an expression may refer to at one place: env visible there and the
    inputs of the enclosing workflow_call / workflow_dispatch or composite action."""

    env: dict[str, Resolved] = field(default_factory=dict)
    inputs: dict[str, Resolved] = field(default_factory=dict)


def resolve(raw: Any, scope: Scope, *, source: str) -> Resolved:
    """Resolve a scalar that may be an expression. Only a whole-value
    expression is evaluated; text mixed with an expression is 'not known'."""
    if raw is None:
        return Resolved(None, True, source)
    text = scalar_text(raw)
    match = _EXPR.fullmatch(text.strip())
    if not match:
        if "${{" in text:
            return Resolved(text, False, f"{source} (mixes text and an expression)")
        return Resolved(text, True, source)
    return _evaluate(match.group(1), scope, source)


def _split_or(expr: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    depth, quote = 0, False
    i = 0
    while i < len(expr):
        ch = expr[i]
        if ch == "'":
            quote = not quote
        elif not quote and ch in "([":
            depth += 1
        elif not quote and ch in ")]":
            depth -= 1
        elif not quote and depth == 0 and expr.startswith("||", i):
            parts.append("".join(current).strip())
            current = []
            i += 2
            continue
        current.append(ch)
        i += 1
    parts.append("".join(current).strip())
    return parts


def _evaluate(expr: str, scope: Scope, source: str) -> Resolved:
    alternatives = _split_or(expr)
    if len(alternatives) > 1:
        # a || b: the first truthy operand (GitHub's falsy: '', false, 0, null).
        for alternative in alternatives:
            value = _evaluate(alternative, scope, source)
            if not value.known:
                return Resolved(None, False, f"{source} (`{expr}` depends on {value.source})")
            if value.value not in (None, "", "false", "0"):
                return value
        return Resolved("", True, source)
    term = expr.strip()
    return (
        _literal(term, source)
        or _context_ref(term, scope, source)
        or Resolved(None, False, f"{source} (`${{{{ {term} }}}}` is only known at run time)")
    )


def _literal(term: str, source: str) -> Resolved | None:
    """A string, boolean, number or null literal; None for anything else."""
    literal = _LITERAL_STRING.match(term)
    if literal:
        return Resolved(literal.group(1).replace("''", "'"), True, source)
    if term in ("true", "false") or re.fullmatch(r"-?\d+(\.\d+)?", term):
        return Resolved(term, True, source)
    if term == "null":
        return Resolved(None, True, source)
    return None


def _context_ref(term: str, scope: Scope, source: str) -> Resolved | None:
    """``inputs.X`` / ``env.X`` (or the ``['X']`` forms) from the scope; None for anything else."""
    ref = _CONTEXT_REF.match(term)
    if not ref:
        return None
    context = ref.group(1) or ref.group(3)
    name = ref.group(2) or ref.group(4)
    table = scope.inputs if context == "inputs" else scope.env
    found = table.get(name)
    if found is None:
        # An undeclared input or unset env variable is empty, as on GitHub.
        return Resolved(None, True, f"{source} ({context}.{name} is not set)")
    return Resolved(found.value, found.known, f"{source} via {context}.{name} = {found.source}")
