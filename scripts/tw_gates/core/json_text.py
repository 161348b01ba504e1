"""JSON from somewhere else (an issue body, a file, an environment variable),
parsed so that every way it can be wrong is a ValueError: Python's parser
recurses per nesting level, and ``[[[[...`` a hundred thousand deep ends in
RecursionError, which no caller expects from bad input."""

from __future__ import annotations

import json
from typing import Any


class JSONTooDeep(ValueError):
    """JSON nested deeper than the interpreter can parse."""


def loads(text: str | bytes | bytearray) -> Any:
    """``json.loads``, but too deep a document is a ValueError (JSONTooDeep)."""
    try:
        return json.loads(text)
    except RecursionError:
        raise JSONTooDeep("JSON nested too deeply to read") from None
