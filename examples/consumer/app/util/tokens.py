"""Thin wrapper over the Token Warehouse parser. No rendering here."""

from dataclasses import dataclass
from html import escape


@dataclass(frozen=True)
class Token:
    kind: str
    html: str


def parse_tokens(source: str) -> list[Token]:
    # Stand-in for the Token Warehouse parser: one paragraph token per block.
    blocks = [block.strip() for block in source.split("\n\n") if block.strip()]
    return [Token(kind="paragraph", html=f"<p>{escape(block)}</p>") for block in blocks]
