"""Run one ``tw-gates`` command against one hostile input, in a forked child
with a hard time limit, and judge it the way a user and an attacker would:

* it ends within its limit (a hang is killed and fails the case);
* with the expected exit code and, on stderr, one line ``tw-gates <cmd>: error: ...``
  that carries the expected reason (or, for a pass, no error line);
* no traceback anywhere;
* no secret (the tokens and keys in the child's environment, the planted secret
  files that links point at) in stdout, stderr, or any file the command wrote.

The child is forked from the test process: tw-gates is already imported, so a
case costs a fork (milliseconds), not an interpreter start."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# What the child's environment holds and must never come out.
SECRETS = {
    "GITHUB_TOKEN": "ghp_" + "HostileSuiteToken0123456789abcdefABCD",
    "TW_HMAC_KEY": "hostile-signing-key-0123456789abcdef",
    "TW_HMAC_KEY_ID": "ci",
    "TW_HMAC_KEYS": '{"ci": "hostile-signing-key-0123456789abcdef", "old": "old-hostile-key-0123456789abcdefgh"}',
    "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0HOSTILE/B0HOSTILE/hostileWebhookSecret",
    # The central repository's own key rings (never a consumer key).
    "TW_PHASE_KEY": "hostile-phase-key-0123456789abcdefgh",
    "TW_BASELINE_KEY": "hostile-baseline-key-0123456789abcdef",
    "TW_CANARY_KEY": "hostile-canary-key-0123456789abcdefgh",
    "TW_EVIDENCE_KEY": "hostile-evidence-key-0123456789abcdef",
}
SECRET_VALUES = (
    SECRETS["GITHUB_TOKEN"],
    "hostile-signing-key-0123456789abcdef",
    "old-hostile-key-0123456789abcdefgh",
    "hostileWebhookSecret",
    "hostile-phase-key-0123456789abcdefgh",
    "hostile-baseline-key-0123456789abcdef",
    "hostile-canary-key-0123456789abcdefgh",
    "hostile-evidence-key-0123456789abcdef",
)
# Planted in files outside the folders a command is pointed at; links point here.
PLANTED = "PLANTED-" + "s3cr3t" * 4
# A link to /proc/self/environ shows the process's environment at exec time: its PATH line
# marks the environment's bytes wherever they are copied.
ENVIRON_MARK = "PATH=" + os.environ.get("PATH", "")
FILE_SECRETS = (PLANTED, "AKIAHOSTILE000000000", ENVIRON_MARK)


@dataclass
class Case:
    """One hostile input for one command."""

    id: str
    argv: Sequence[str]  # {tmp} is replaced by the case's folder
    code: int  # the documented exit code expected
    reason: str  # a part of the one error line (empty: no error line expected)
    setup: Callable[[Path], None] = lambda _tmp: None
    env: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 20.0
    room: str = ""  # set: this case fails today in that helper's room (strict xfail)
    detail: str = ""  # must appear on stderr too (the warning that names the refused file)


@dataclass
class Run:
    code: int | None  # None: killed at the time limit
    stdout: str
    stderr: str
    seconds: float
    written: dict[str, bytes]


_warm = False


def _warm_up() -> None:
    """Import every module of tw-gates (and detect-secrets) once in the parent:
    the commands import their gates lazily, and a forked child inherits what the
    parent has imported, so a case costs a fork instead of the imports."""
    global _warm
    if _warm:
        return
    import importlib
    import pkgutil

    import tw_gates

    for info in pkgutil.walk_packages(tw_gates.__path__, "tw_gates."):
        if info.name.endswith("__main__"):  # runs the CLI when imported
            continue
        with contextlib.suppress(Exception):
            importlib.import_module(info.name)
    for name in ("detect_secrets.plugins.keyword", "junitparser", "github", "markdown_it"):
        with contextlib.suppress(Exception):
            importlib.import_module(name)
    _warm = True


def run_case(case: Case, tmp: Path) -> Run:
    from tw_gates.cli import main

    _warm_up()
    case.setup(tmp)
    before = _snapshot(tmp)
    argv = [a.replace("{tmp}", str(tmp)) for a in case.argv]
    env = {**SECRETS, **{k: v.replace("{tmp}", str(tmp)) for k, v in case.env.items()}}
    out_path, err_path = tmp.parent / f"{tmp.name}.stdout", tmp.parent / f"{tmp.name}.stderr"
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 70
        try:
            os.setsid()
            with open(out_path, "wb") as out, open(err_path, "wb") as err:
                os.dup2(out.fileno(), 1)
                os.dup2(err.fileno(), 2)
            # pytest's capture replaced sys.stdout/stderr: write to the real descriptors.
            sys.stdout = open(1, "w", encoding="utf-8", errors="backslashreplace", closefd=False)  # noqa: SIM115
            sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False)  # noqa: SIM115
            os.chdir(tmp)
            for name in ("GITHUB_ACTIONS", "GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "RUNNER_OS", "TW_PLATFORM"):
                os.environ.pop(name, None)
            os.environ.update(env)
            os.environ["TW_METRICS_DIR"] = str(tmp / ".metrics")
            os.environ["TMPDIR"] = str(tmp / ".tmp")
            (tmp / ".tmp").mkdir(exist_ok=True)
            tempfile.tempdir = None
            code = int(main(argv))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:  # the CLI let something through: show it, as Python would
            import traceback

            traceback.print_exc()
            code = 71
        finally:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            os._exit(code)
    code = _wait(pid, case.timeout)
    seconds = time.monotonic() - started
    after = _snapshot(tmp)
    written = {name: data for name, data in after.items() if before.get(name) != data}
    return Run(code, _text(out_path), _text(err_path), seconds, written)


def _wait(pid: int, timeout: float) -> int | None:
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return None
        time.sleep(0.01)


def _text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8", "replace")
    finally:
        path.unlink(missing_ok=True)


def _snapshot(root: Path) -> dict[str, bytes]:
    """Every regular file below ``root`` (links and FIFOs are not read)."""
    files: dict[str, bytes] = {}
    for folder, _dirs, names in os.walk(root, followlinks=False):
        for name in names:
            path = os.path.join(folder, name)
            if os.path.isfile(path) and not os.path.islink(path):
                with open(path, "rb") as handle:
                    files[os.path.relpath(path, root)] = handle.read(8 * 1024 * 1024)
    return files


def judge(case: Case, run: Run) -> list[str]:
    """What went wrong, in words (empty: the case passed)."""
    problems = []
    if run.code is None:
        return [f"hung: killed after {case.timeout:g}s"]
    if run.code != case.code:
        problems.append(f"exit {run.code}, expected {case.code}")
    everything = run.stdout + run.stderr
    if "Traceback (most recent call last)" in everything:
        problems.append("a traceback")
    if "internal error" in everything:
        problems.append("an internal error")
    errors = [line for line in run.stderr.splitlines() if ": error: " in line]
    if case.code != 0:
        if len(errors) != 1:
            problems.append(f"{len(errors)} error lines, expected one")
        elif case.reason not in errors[0]:
            problems.append(f"the error line lacks {case.reason!r}: {errors[0]!r}")
    elif errors:
        problems.append(f"unexpected error line {errors[0]!r}")
    if case.detail and case.detail not in run.stderr:
        problems.append(f"stderr lacks {case.detail!r}")
    return problems + leaks(run)


def leaks(run: Run) -> list[str]:
    """Every secret of the environment or a planted file found in the output or a written file."""
    found = []
    for secret in SECRET_VALUES + FILE_SECRETS:
        if secret in run.stdout + run.stderr:
            found.append(f"secret {secret[:12]}... in the output")
        found += [
            f"secret {secret[:12]}... written to {name}"
            for name, data in run.written.items()
            if secret.encode() in data
        ]
    return found
