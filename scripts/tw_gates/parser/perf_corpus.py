"""The corpus a performance baseline is captured on: a folder of Markdown
files, or the built-in synthetic corpus ``builtin:v1`` (deterministic Markdown
of 0.5 to 64 KiB using every common construct), the default. Its digest goes
into the capture so a baseline is never compared with a capture of other
documents."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from tw_gates.core.errors import UsageError
from tw_gates.core.signing import sha256_hex
from tw_gates.parser.target_spec import BUILTIN_PREFIX

BUILTIN_CORPUS = "builtin:v1"
CORPUS_SUFFIXES = (".md", ".markdown", ".txt")
MAX_CORPUS_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class PerfCorpus:
    name: str
    documents: list[tuple[str, bytes]]

    @property
    def sha256(self) -> str:
        lines = [f"{path}\0{sha256_hex(data)}" for path, data in self.documents]
        return sha256_hex("\n".join(lines))

    @property
    def total_bytes(self) -> int:
        return sum(len(data) for _, data in self.documents)


def load_corpus(spec: str | None) -> PerfCorpus:
    if not spec or spec == BUILTIN_CORPUS:
        return PerfCorpus(BUILTIN_CORPUS, builtin_corpus())
    if spec.startswith(BUILTIN_PREFIX):
        raise UsageError(f"unknown builtin corpus {spec!r} (known: {BUILTIN_CORPUS})")
    root = Path(spec)
    if not root.is_dir():
        raise UsageError(f"corpus folder not found: {spec}")
    documents, total = [], 0
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in CORPUS_SUFFIXES):
        data = path.read_bytes()
        total += len(data)
        if total > MAX_CORPUS_BYTES:
            raise UsageError(f"corpus {spec} is larger than {MAX_CORPUS_BYTES // (1024 * 1024)} MiB")
        documents.append((path.relative_to(root).as_posix(), data))
    if not documents:
        raise UsageError(f"corpus {spec} holds no {', '.join(CORPUS_SUFFIXES)} file")
    return PerfCorpus(spec, documents)


_WORDS = (
    "token",
    "warehouse",
    "parser",
    "markdown",
    "render",
    "block",
    "inline",
    "link",
    "table",
    "gate",
    "phase",
    "canary",
    "signed",
    "artifact",
    "consumer",
    "audit",
    "latency",
    "baseline",
    "nested",
    "code",
)


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(6, 16))]
    i = rng.randrange(len(words))
    words[i] = rng.choice(
        [
            f"*{words[i]}*",
            f"**{words[i]}**",
            f"`{words[i]}`",
            f"[{words[i]}](https://example.com/{words[i]})",
            f"~~{words[i]}~~",
            f"<{words[i]}@example.com>",
        ]
    )
    return " ".join(words).capitalize() + "."


def _block(rng: random.Random, n: int) -> str:
    kind = n % 7
    if kind == 0:
        return f"{'#' * rng.randint(1, 4)} {_sentence(rng)[:-1]}\n"
    if kind == 1:
        return " ".join(_sentence(rng) for _ in range(rng.randint(2, 5))) + "\n"
    if kind == 2:
        return "".join(f"{'  ' * (i % 3)}- {_sentence(rng)}\n" for i in range(rng.randint(3, 8)))
    if kind == 3:
        return "".join(f"> {_sentence(rng)}\n" for _ in range(rng.randint(1, 4)))
    if kind == 4:
        body = "".join(f"    value_{i} = parse({rng.randint(0, 999)})\n" for i in range(rng.randint(2, 6)))
        return f"```python\n{body}```\n"
    if kind == 5:
        rows = "".join(
            f"| {rng.choice(_WORDS)} | {rng.randint(0, 9999)} | {rng.choice(_WORDS)} |\n"
            for _ in range(rng.randint(2, 6))
        )
        return "| name | value | note |\n| --- | ---: | :--- |\n" + rows
    return "".join(f"{i + 1}. {_sentence(rng)}\n" for i in range(rng.randint(2, 5)))


def builtin_corpus() -> list[tuple[str, bytes]]:
    """24 deterministic documents, 512 B to 64 KiB, every common construct."""
    rng = random.Random(20251018)  # noqa: S311 - deterministic text, not a secret
    sizes = [512 * 2 ** (i % 8) for i in range(24)]  # 0.5 KiB .. 64 KiB, three of each
    documents = []
    for index, size in enumerate(sizes):
        parts, length, n = [], 0, index
        while length < size:
            block = _block(rng, n)
            parts.append(block)
            length += len(block) + 1
            n += 1
        documents.append((f"builtin-{index:02d}.md", "\n".join(parts).encode("utf-8")))
    return documents
