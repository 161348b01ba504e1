"""Runner I/O: what a gate says to the person (stdout/stderr), to the job
(outputs, step summary) and to the code view (annotations).

On a GitHub runner (GITHUB_ACTIONS=true) this uses the workflow commands
through actions-toolkit; elsewhere it prints plain text. Everything passes
through the redactor first.

Start-up: the toolkit is imported where a workflow command is written, not
when this module is: its modules bring typing, uuid and platform, which a
command off a runner (or one that writes none) need not pay; and only its
command and file-command modules are used, because its ``core`` module pulls in
requests for OIDC (0.2 s). ``mask`` and ``set_output`` write what the toolkit's
``core.set_secret`` and ``core.set_output`` write."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping

from tw_gates.core.redact import REDACTOR

TYPE_CHECKING = False  # typing stays out of the start-up path
if TYPE_CHECKING:
    from typing import Literal

    Level = Literal["error", "warning", "notice"]


def on_runner() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


def mask(secret: str) -> None:
    """``::add-mask::`` a secret for the rest of the job (runner only)."""
    if secret and on_runner():
        for line in secret.splitlines() or [secret]:
            if line.strip():
                _command("add-mask", {}, line)
        sys.stdout.flush()


def echo(message: str = "") -> None:
    """A line for the person reading the log (stdout)."""
    print(REDACTOR.redact(message), flush=True)


def progress(message: str) -> None:
    """A progress line on stderr: stdout stays the verdict (and pure JSON where a
    command prints JSON)."""
    print(REDACTOR.redact(message), file=sys.stderr, flush=True)


def warn(message: str) -> None:
    """A problem that does not stop the gate (stderr)."""
    print(f"warning: {REDACTOR.redact(message)}", file=sys.stderr, flush=True)


def annotate(
    level: Level,
    message: str,
    *,
    file: str | None = None,
    line: int | None = None,
    end_line: int | None = None,
    title: str | None = None,
    always: bool = False,
) -> None:
    """An annotation on the run (and on ``file:line`` when given).

    Off a runner it is a plain ``level: file:line: message`` line on stderr,
    unless ``always`` asks for the workflow command wherever the log goes."""
    message = REDACTOR.redact(message)
    if always or on_runner():
        # issue_command directly: the toolkit's helpers emit empty properties
        # ("title=,line=") for every field not given.
        props = {
            k: v for k, v in {"title": title, "file": file, "line": line, "endLine": end_line}.items() if v is not None
        }
        _command(level, props, message)
        sys.stdout.flush()
        return
    where = f"{file}:{line}: " if file and line else f"{file}: " if file else ""
    print(f"{level}: {where}{message}", file=sys.stderr, flush=True)


def set_output(name: str, value: object) -> None:
    """A step output (``$GITHUB_OUTPUT``); no-op off a runner."""
    path = os.environ.get("GITHUB_OUTPUT")
    if path:
        # The runner creates the file; create it if a caller did not (the
        # toolkit refuses a missing file with an internal error).
        open(path, "a", encoding="utf-8").close()
        text = value if isinstance(value, str) else _json(value)
        _file_command("OUTPUT", name, REDACTOR.redact(text))


def append_summary(markdown: str) -> None:
    """Add Markdown to the job summary (``$GITHUB_STEP_SUMMARY``); no-op elsewhere."""
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return
    text = REDACTOR.redact(markdown)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(text if text.endswith("\n") else text + "\n")


def _json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


# The toolkit, imported on first use (see the module docstring).


def _command(command: str, properties: Mapping[str, object], message: str) -> None:
    """``::command key=value::message`` on stdout."""
    from actions_toolkit.command import issue_command  # noqa: PLC0415

    issue_command(command, properties, message)


def _file_command(command: str, key: str, value: str) -> None:
    """``key<<delimiter`` / value / delimiter appended to the ``$GITHUB_<command>`` file."""
    from actions_toolkit.file_command import issue_file_command, prepare_key_value_message  # noqa: PLC0415

    issue_file_command(command, prepare_key_value_message(key, value))
