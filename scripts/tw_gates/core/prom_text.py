"""The Prometheus text exposition format (0.0.4), read and written without
prometheus_client.

C1 keeps its metrics in one textfile that every command merges into. Reading
and writing it is all most commands need of Prometheus, and prometheus_client
costs about 0.15 s to import (its exposition module pulls in an HTTP server and
client), more than `tw-gates platform` may take in all. So the file is parsed
and written here, byte for byte as prometheus_client's ``generate_latest``
writes it and its ``text_string_to_metric_families`` reads it (a unit test
holds the two side by side); prometheus_client is imported only to push to a
Pushgateway.

The merge rule is C1's: counters add to what earlier runs left, gauges and
other types take the newest value, series and families a run did not touch are
kept, so counters stay cumulative across runs as Prometheus expects."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")
# Sample-name suffixes a family of each type owns (the parser's rule).
_SUFFIXES = {"summary": ("_count", "_sum", ""), "histogram": ("_count", "_sum", "_bucket")}
_ESCAPES = {"\\": "\\", "n": "\n", '"': '"'}

Labels = tuple[tuple[str, str], ...]  # sorted by label name


# Plain classes, not dataclasses: every command writes the textfile, and
# dataclasses imports inspect (start-up).


class Sample:
    __slots__ = ("labels", "name", "timestamp", "value")

    def __init__(self, name: str, labels: Labels, value: float, timestamp: str | None = None) -> None:
        self.name = name
        self.labels = labels  # sorted by label name
        self.value = value
        self.timestamp = timestamp  # as written (milliseconds); tw-gates writes none

    @property
    def key(self) -> tuple[str, Labels]:
        return (self.name, self.labels)

    def __repr__(self) -> str:
        return f"Sample({self.name!r}, {self.labels!r}, {self.value!r}, {self.timestamp!r})"


class Family:
    """A metric family; a counter's ``name`` is without ``_total`` (its
    samples keep it), as prometheus_client names them."""

    __slots__ = ("help", "name", "samples", "type")

    def __init__(self, name: str, type: str, help: str = "", samples: list[Sample] | None = None) -> None:
        self.name = name
        self.type = type
        self.help = help
        self.samples = samples if samples is not None else []

    def __repr__(self) -> str:
        return f"Family({self.name!r}, {self.type!r}, {self.help!r}, {self.samples!r})"


def format_value(value: float) -> str:
    """A sample value as Go (and prometheus_client) prints it."""
    value = float(value)
    if value == math.inf:
        return "+Inf"
    if value == -math.inf:
        return "-Inf"
    if math.isnan(value):
        return "NaN"
    text = repr(value)
    dot = text.find(".")
    if value > 0 and dot > 6:  # Go switches to an exponent sooner than Python
        mantissa = f"{text[0]}.{text[1:dot]}{text[dot + 1 :]}".rstrip("0.")
        return f"{mantissa}e+{dot - 1:02d}"
    return text


def _escape_label(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _escape_help(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n")


def render(families: Iterable[Family]) -> str:
    """The text format, as prometheus_client's ``generate_latest`` writes it."""
    out = []
    for family in families:
        name = f"{family.name}_total" if family.type == "counter" else family.name
        out.append(f"# HELP {name} {_escape_help(family.help)}\n")
        out.append(f"# TYPE {name} {family.type}\n")
        for sample in family.samples:
            labels = ",".join(f'{k}="{_escape_label(v)}"' for k, v in sample.labels)
            stamp = f" {sample.timestamp}" if sample.timestamp is not None else ""
            out.append(f"{sample.name}{{{labels}}}" if labels else sample.name)
            out.append(f" {format_value(sample.value)}{stamp}\n")
    return "".join(out)


# --------------------------------------------------------------------------- parsing


def parse(text: str) -> list[Family]:
    """Families of a textfile; ValueError on anything malformed."""
    return _families(text)


class _Reader:
    """prometheus_client's parser, rule for rule: a HELP or TYPE line of a new
    name starts a family; a sample belongs to the family it is named for,
    otherwise it is an untyped family of its own."""

    def __init__(self) -> None:
        self.current: Family | None = None
        self.allowed: tuple[str, ...] = ()
        self.done: list[Family] = []

    def close(self) -> None:
        if self.current is not None:
            self.done.append(_finish(self.current))
        self.current, self.allowed = None, ()

    def comment(self, line: str) -> None:
        parts = line.split(None, 3)
        if len(parts) < 3 or parts[1] not in ("HELP", "TYPE"):
            return  # a plain comment
        name = parts[2]
        if not METRIC_NAME.fullmatch(name):
            raise ValueError(f"invalid metric name {name!r}")
        if self.current is None or name != self.current.name:
            self.close()
            self.current, self.allowed = Family(name, "untyped"), (name,)
        if parts[1] == "HELP":
            self.current.help = _unescape_help(parts[3]) if len(parts) == 4 else ""
            return
        if len(parts) < 4 or parts[3] not in TYPES:
            raise ValueError(f"invalid TYPE line {line!r}")
        self.current.type = parts[3]
        self.allowed = tuple(name + suffix for suffix in _SUFFIXES.get(self.current.type, ("",)))

    def sample(self, line: str) -> None:
        sample = _parse_sample(line)
        if self.current is not None and sample.name in self.allowed:
            self.current.samples.append(sample)
            return
        self.close()
        self.done.append(Family(sample.name, "untyped", "", [sample]))


def _families(text: str) -> list[Family]:
    reader = _Reader()
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#"):
            reader.comment(line)
        elif line:
            reader.sample(line)
    reader.close()
    return reader.done


def _finish(family: Family) -> Family:
    if family.type == "counter":
        if family.name.endswith("_total"):
            family.name = family.name[: -len("_total")]
        else:
            for sample in family.samples:
                sample.name += "_total"
    return family


def _unescape_help(text: str) -> str:
    return re.sub(r"\\([\\n])", lambda m: "\n" if m.group(1) == "n" else "\\", text)


def _parse_sample(line: str) -> Sample:
    match = METRIC_NAME.match(line)
    if not match:
        raise ValueError(f"invalid sample line {line!r}")
    name, rest = match.group(), line[match.end() :]
    labels: Labels = ()
    if rest.startswith("{"):
        labels, rest = _parse_labels(rest)
    fields = rest.split()
    if not rest[:1].isspace() or len(fields) not in (1, 2):
        raise ValueError(f"invalid sample line {line!r}")
    value = float(fields[0])
    timestamp = fields[1] if len(fields) == 2 else None
    if timestamp is not None:
        int(timestamp)  # milliseconds; ValueError otherwise
    return Sample(name, labels, value, timestamp)


def _parse_labels(text: str) -> tuple[Labels, str]:
    """``{a="x",b="y"}rest`` -> (sorted labels, rest)."""
    pairs: dict[str, str] = {}
    i = 1
    while True:
        while text[i : i + 1].isspace():
            i += 1
        if text[i : i + 1] == "}":
            return tuple(sorted(pairs.items())), text[i + 1 :]
        match = LABEL_NAME.match(text, i)
        if not match or text[match.end() : match.end() + 2] != '="':
            raise ValueError(f"invalid labels in {text!r}")
        value, i = _parse_quoted(text, match.end() + 2)
        pairs[match.group()] = value
        while text[i : i + 1].isspace():
            i += 1
        if text[i : i + 1] == ",":
            i += 1
        elif text[i : i + 1] != "}":
            raise ValueError(f"invalid labels in {text!r}")


def _parse_quoted(text: str, i: int) -> tuple[str, int]:
    """The label value starting at ``i`` (after the quote) and the index after its closing quote."""
    out: list[str] = []
    while i < len(text):
        char = text[i]
        if char == '"':
            return "".join(out), i + 1
        if char == "\\":
            escaped = _ESCAPES.get(text[i + 1 : i + 2])
            if escaped is None:  # an unknown escape stays as written
                out.append(text[i : i + 2])
            else:
                out.append(escaped)
            i += 2
            continue
        out.append(char)
        i += 1
    raise ValueError(f"unterminated label value in {text!r}")


# --------------------------------------------------------------------------- merging


def merge(previous: Iterable[Family], current: Iterable[Family]) -> list[Family]:
    """Counters: previous + current. Gauges and others: current wins.
    Series or families only in ``previous`` are kept unchanged. Sorted by name."""
    merged: dict[str, Family] = {}
    for family in previous:
        merged[family.name] = family
    for family in current:
        old = merged.get(family.name)
        if old is None or old.type != family.type:
            merged[family.name] = family
            continue
        samples = {s.key: s for s in old.samples}
        for sample in family.samples:
            before = samples.get(sample.key)
            if family.type == "counter" and before is not None and not sample.name.endswith("_created"):
                sample = Sample(sample.name, sample.labels, before.value + sample.value, sample.timestamp)
            samples[sample.key] = sample
        ordered = sorted(samples.values(), key=lambda s: s.key)
        merged[family.name] = Family(family.name, family.type, family.help or old.help, ordered)
    return [merged[name] for name in sorted(merged)]
