"""YAML read the way GitHub reads workflows and actions: YAML 1.2 booleans
(only true/false, so ``on:`` stays the string "on"), with the line of every
mapping kept for evidence and annotations.

Every YAML tw-gates reads (workflows, actions, registry, exceptions, rules,
values files) comes from a repository someone else can change: the file's size
is bounded here, its nesting depth and what its aliases expand to by the
bounded loader this one builds on (``core.yaml_safe``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from tw_gates.core.errors import UsageError
from tw_gates.core.inputs import FileTooLarge, read_bytes_limited
from tw_gates.core.yaml_safe import BoundedSafeLoader, refuse_deep_flow

MAX_YAML_BYTES = 1024 * 1024


class YamlError(Exception):
    """A file that is not valid YAML (or too large); message names the file and line."""


class LineDict(dict):
    """A mapping that remembers the line (1-based) it starts on and each key's line."""

    line: int = 0
    key_lines: dict[str, int]

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)


class _Loader(BoundedSafeLoader):
    """The bounded SafeLoader with YAML 1.2 booleans and line numbers on mappings."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    result = LineDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        key = key if isinstance(key, str) else str(key).lower() if isinstance(key, bool) else str(key)
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(path: Path, *, follow_symlinks: bool = True) -> Any:
    """Parse one YAML file; YamlError with file and line on failure. Files
    found in a repository's folders are read with ``follow_symlinks=False``:
    a link is refused, as are FIFOs and devices (never blocking)."""
    try:
        data = read_bytes_limited(path, MAX_YAML_BYTES, follow_symlinks=follow_symlinks)
    except FileTooLarge as exc:
        raise YamlError(f"{path}: {exc}") from None
    except UsageError as exc:  # a symbolic link, a FIFO, a device
        raise YamlError(str(exc)) from None
    except OSError as exc:
        raise YamlError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
        refuse_deep_flow(text)
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except UnicodeDecodeError:
        raise YamlError(f"{path}: not UTF-8 text") from None
    except RecursionError:
        raise YamlError(f"{path}: nested too deeply to read") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise YamlError(f"{path}{where}: invalid YAML: {problem}") from None


def as_mapping(value: Any) -> LineDict:
    if isinstance(value, LineDict):
        return value
    empty = LineDict()
    empty.line, empty.key_lines = 0, {}
    return empty


def env_of(value: Any) -> dict[str, str]:
    """An ``env:`` block as strings (YAML true becomes "true", as GitHub does)."""
    if not isinstance(value, dict):
        return {}
    return {str(k): scalar_text(v) for k, v in value.items()}


def scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)
