"""YAML from someone else, loaded with bounds: a document is refused before
anything is constructed when its aliases expand past a limit, when they form a
cycle, or when it nests too deep. A "billion laughs" document (nine aliases of
nine aliases... in 500 bytes) composes into a handful of nodes but expands to
hundreds of millions; it is refused with one line instead of running for
minutes and ending in MemoryError. Anchors and aliases as people use them (a
shared ``env:`` block, a few reused steps) stay well inside the limits.

Pure parsing, no file I/O: ``core.inputs`` and ``core.yaml_lines`` read the
files (size-bounded) and parse them here."""

from __future__ import annotations

from typing import Any

import yaml

# What a document may expand to, counting every alias as a copy of what it
# names: far above any real workflow (a 1 MiB file of plain YAML composes into
# fewer nodes than this), far below what takes seconds or memory to walk.
MAX_EXPANDED_NODES = 200_000
# Nesting deeper than this is no workflow; PyYAML's composer recurses per level.
MAX_DEPTH = 200


class YamlBombError(yaml.YAMLError):
    """A document whose aliases expand past MAX_EXPANDED_NODES, or nested past MAX_DEPTH."""

    def __init__(self, problem: str, mark: yaml.Mark | None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.problem_mark = mark


def _expanded_size(root: yaml.Node) -> int:
    """Nodes the document would have with every alias copied out, computed
    over the composed graph (each distinct node once, so it is linear in the
    file's size); stops as soon as the limit is passed. Raises YamlBombError."""
    sizes: dict[int, int] = {}
    # Iterative post-order walk: (node, depth, children done?).
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, done = stack.pop()
        if id(node) in sizes:
            continue
        children = _children(node)
        if not done:
            if depth > MAX_DEPTH:
                raise YamlBombError(f"nested deeper than {MAX_DEPTH} levels", node.start_mark)
            stack.append((node, depth, True))
            stack.extend((child, depth + 1, False) for child in children if id(child) not in sizes)
            continue
        size = 1 + sum(sizes.get(id(child), 0) for child in children)
        if size > MAX_EXPANDED_NODES:
            raise YamlBombError(
                f"aliases expand to more than {MAX_EXPANDED_NODES} nodes (an alias bomb?); refused",
                node.start_mark,
            )
        sizes[id(node)] = size
    return sizes[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


class _Bounded:
    """Checks every composed document (depth, alias expansion) before it is
    constructed. A recursive alias (``&a [*a]``) is a cycle: it expands
    without end, so it is refused too."""

    def get_single_node(self) -> yaml.Node | None:
        node = super().get_single_node()  # type: ignore[misc]
        if node is not None:
            _check_graph(node)
        return node

    def get_node(self) -> yaml.Node | None:
        node = super().get_node()  # type: ignore[misc]
        if node is not None:
            _check_graph(node)
        return node


# libyaml's parser where PyYAML was built with it (the wheels are): 8x faster
# than the pure-Python one on the workflows G1/G4/G5 read, which was most of
# their run. Same marks (lines), same resolvers and constructors (Python); the
# bounds check the composed graph, before anything is constructed.
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class BoundedSafeLoader(_Bounded, _SafeLoader):  # type: ignore[valid-type,misc]
    """yaml's SafeLoader (libyaml's when present) with the bounds of this module."""


def refuse_deep_flow(text: str | bytes) -> None:
    """PyYAML's scanner takes time quadratic in the flow nesting depth (5,000
    '[' cost seconds, a 1 MiB file of them hours): refuse nesting past
    MAX_DEPTH before it sees the text. An upper bound (brackets inside
    strings count too), computed only when there are that many brackets."""
    chars = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    if chars.count("[") + chars.count("{") <= MAX_DEPTH:
        return
    depth = 0
    for char in chars:
        if char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise YamlBombError(f"nested deeper than {MAX_DEPTH} levels", None)
        elif char in "]}" and depth:
            depth -= 1


def _check_graph(root: yaml.Node) -> None:
    # A cycle never finishes the post-order walk's bookkeeping: detect it first.
    _refuse_cycles(root)
    _expanded_size(root)


def _refuse_cycles(root: yaml.Node) -> None:
    state: dict[int, int] = {}  # 1: on the current path, 2: finished
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, leaving = stack.pop()
        if leaving:
            state[id(node)] = 2
            continue
        if state.get(id(node)) == 2:
            continue
        state[id(node)] = 1
        stack.append((node, True))
        for child in _children(node):
            if state.get(id(child)) == 1:
                raise YamlBombError("an alias refers to a node that contains it (a cycle); refused", child.start_mark)
            if state.get(id(child)) != 2:
                stack.append((child, False))


def safe_load_bounded(text: str | bytes) -> Any:
    """yaml.safe_load with the bounds of this module (YamlBombError, a YAMLError)."""
    refuse_deep_flow(text)
    return yaml.load(text, Loader=BoundedSafeLoader)  # noqa: S506 - a SafeLoader


def safe_load_all_bounded(text: str | bytes) -> list[Any]:
    """yaml.safe_load_all with the bounds of this module, every document read."""
    refuse_deep_flow(text)
    return list(yaml.load_all(text, Loader=BoundedSafeLoader))
