"""Strict JSON reading for the ingest gate: strict UTF-8, no duplicate
object keys, no NaN/Infinity or numbers that overflow, bounded nesting
(measured without recursion), no unpaired surrogate escapes."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable

from tw_gates.ingest.reasons import MAX_DEPTH, Rejection, show

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def nesting_depth(value: object) -> int:
    """Deepest array/object nesting of a parsed JSON value (a scalar is 0),
    walked level by level: no recursion, however deep."""
    depth = 0
    level = [value] if type(value) in (dict, list) else []
    while level:
        depth += 1
        below: list[object] = []
        for item in level:
            below.extend(item.values() if isinstance(item, dict) else item if isinstance(item, list) else ())
        level = [item for item in below if type(item) in (dict, list)]
    return depth


def _object_without_duplicates(pairs: list[tuple[str, object]]) -> dict:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise Rejection("duplicate_key", f"duplicate key {show(repr(key))} in one object")
            seen.add(key)
    return obj


def _refuse_constant(name: str) -> float:
    raise Rejection("non_finite_number", f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise Rejection("non_finite_number", f"number {show(text, 40)} overflows to infinity")
    return value


def _check_surrogates(value: object) -> None:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            strings: Iterable[str] = (item,)
        elif isinstance(item, dict):
            strings = item.keys()
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
            continue
        else:
            continue
        for text in strings:
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise Rejection(
                    "invalid_utf8", "a string holds an unpaired surrogate escape (\\ud800-\\udfff)"
                ) from None


def _may_exceed_depth(text: str, max_depth: int) -> bool:
    """False when the text has too few brackets to nest past ``max_depth``:
    small documents skip the walk."""
    return text.count("[") + text.count("{") > max_depth


def check_depth(value: object, text: str, max_depth: int) -> None:
    if _may_exceed_depth(text, max_depth) and (depth := nesting_depth(value)) > max_depth:
        raise Rejection("nesting_too_deep", f"nested {depth} levels deep, more than {max_depth}")


def parse_strict(data: bytes, *, max_depth: int | None = MAX_DEPTH) -> tuple[object, str]:
    """(value, text) of a JSON document, or Rejection. ``max_depth=None``
    leaves the depth check to the caller (see ``judge``)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Rejection("invalid_utf8", f"not valid UTF-8 at byte {exc.start}: {exc.reason}") from None
    try:
        value = json.loads(
            text,
            object_pairs_hook=_object_without_duplicates,
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
        )
    except json.JSONDecodeError as exc:
        raise Rejection("invalid_json", f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        # The C parser guards its recursion (about 1000 levels) and unwinds cleanly.
        raise Rejection(
            "nesting_too_deep",
            f"nested more than {sys.getrecursionlimit()} levels deep, the limit is {max_depth or MAX_DEPTH}",
        ) from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise Rejection("invalid_json", f"not JSON: {show(str(exc), 160)}") from None
    if max_depth is not None:
        check_depth(value, text, max_depth)
    if _SURROGATE_ESCAPE.search(text):
        _check_surrogates(value)
    return value, text
