"""Markdown the product writes (job summaries, issue bodies, reports).

Pure text functions, no I/O: the command layer decides where the text goes."""

from __future__ import annotations


def markdown_table(headers: list[str], rows: list[list[object]]) -> str:
    """A GitHub-flavoured Markdown table; cell text is escaped."""

    def cell(value: object) -> str:
        return escape_markdown_cell(str(value))

    lines = ["| " + " | ".join(cell(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def escape_markdown_cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("\r", " ")
