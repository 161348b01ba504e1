"""Subprocesses that never hang the gate and always say what ran.

Each child gets its own process group, so a timeout kills the whole tree
(a shell and what it started), not just the first process. Output is read
in threads with a cap, so a child that floods stdout cannot exhaust memory,
and the child is reaped with wait4 so its peak RSS is known."""

from __future__ import annotations

import contextlib
import os
import resource
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO

from tw_gates.core.errors import ExternalServiceError, UsageError

DEFAULT_MAX_OUTPUT = 64 * 1024 * 1024
# The longest wall-clock limit any child may get (a week: longer than any CI
# job). Beyond it threading's waits overflow the platform's time_t.
MAX_TIMEOUT_S = 7 * 24 * 3600.0


@dataclass(frozen=True)
class Limits:
    """Resource limits applied in the child before exec."""

    address_space_bytes: int | None = None  # RLIMIT_AS
    cpu_seconds: int | None = None  # RLIMIT_CPU
    file_size_bytes: int | None = None  # RLIMIT_FSIZE


@dataclass
class ProcResult:
    argv: list[str]
    returncode: int  # negative: killed by that signal
    stdout: bytes
    stderr: bytes
    duration_s: float
    timed_out: bool = False
    max_rss_kib: int = 0
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    signal: int | None = field(default=None)
    cpu_s: float = 0.0  # user + system CPU time of the child (and the children it waited for)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    @property
    def command(self) -> str:
        return shlex.join(self.argv)

    def describe(self) -> str:
        """One line: what ran and how it ended."""
        if self.timed_out:
            how = f"timed out after {self.duration_s:.1f}s and was killed"
        elif self.signal:
            how = f"was killed by {signal.Signals(self.signal).name} after {self.duration_s:.1f}s"
        else:
            how = f"exited {self.returncode} after {self.duration_s:.2f}s"
        tail = self.stderr_tail()
        return f"`{self.command}` {how}" + (f": {tail}" if tail and not self.ok else "")

    def stderr_tail(self, limit: int = 300) -> str:
        lines = self.stderr.decode("utf-8", "replace").strip().splitlines()
        return lines[-1][:limit] if lines else ""

    def text(self) -> str:
        return self.stdout.decode("utf-8", "replace")


def _preexec(limits: Limits | None):  # pragma: no cover - runs in the child
    def apply() -> None:
        if limits is None:
            return
        if limits.address_space_bytes:
            resource.setrlimit(resource.RLIMIT_AS, (limits.address_space_bytes, limits.address_space_bytes))
        if limits.cpu_seconds:
            resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 1))
        if limits.file_size_bytes:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_size_bytes, limits.file_size_bytes))

    return apply if limits else None


def _drain(stream: IO[bytes], sink: list[bytes], cap: int, truncated: list[bool]) -> None:
    size = 0
    while True:
        chunk = stream.read(65536)
        if not chunk:
            break
        if size < cap:
            keep = chunk[: cap - size]
            sink.append(keep)
            size += len(keep)
            if len(keep) < len(chunk):
                truncated.append(True)
        else:
            truncated.append(True)  # keep reading so the child never blocks on a full pipe
    stream.close()


def _feed(stream: IO[bytes], data: bytes) -> None:
    try:
        stream.write(data)
    except (BrokenPipeError, OSError):
        pass  # the child stopped reading; its exit status tells the story
    finally:
        with contextlib.suppress(OSError):
            stream.close()


def _checked(argv: Sequence[str], timeout: float) -> list[str]:
    if not argv:
        raise UsageError("empty command")
    if not 0 < timeout <= MAX_TIMEOUT_S:  # also refuses NaN
        raise UsageError(f"timeout {timeout:g}s is out of range (more than 0, at most {MAX_TIMEOUT_S:g}s)")
    return [str(a) for a in argv]


def run(
    argv: Sequence[str],
    *,
    timeout: float,
    input: bytes | str | None = None,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    limits: Limits | None = None,
    max_output_bytes: int = DEFAULT_MAX_OUTPUT,
    check: bool = False,
) -> ProcResult:
    """Run ``argv`` with a hard wall-clock timeout.

    With ``check=True`` a non-zero exit or a timeout raises
    ExternalServiceError whose message says what ran and how it ended."""
    argv = _checked(argv, timeout)
    data = input.encode("utf-8") if isinstance(input, str) else input
    started = time.monotonic()
    try:
        proc = subprocess.Popen(  # noqa: S603 - argv lists only, never a shell
            argv,
            stdin=subprocess.PIPE if data is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            start_new_session=True,
            preexec_fn=_preexec(limits),
        )
    except FileNotFoundError:
        raise UsageError(f"command not found: {argv[0]}") from None
    except PermissionError:
        raise UsageError(f"command not executable: {argv[0]}") from None

    out: list[bytes] = []
    err: list[bytes] = []
    out_trunc: list[bool] = []
    err_trunc: list[bool] = []
    threads = [
        threading.Thread(target=_drain, args=(proc.stdout, out, max_output_bytes, out_trunc), daemon=True),
        threading.Thread(target=_drain, args=(proc.stderr, err, max_output_bytes, err_trunc), daemon=True),
    ]
    if data is not None:
        threads.append(threading.Thread(target=_feed, args=(proc.stdin, data), daemon=True))
    for thread in threads:
        thread.start()

    def wait_for_exit() -> None:
        # WNOWAIT leaves the child a zombie, so its process-group id stays
        # ours until we have killed the rest of the group.
        with contextlib.suppress(ChildProcessError):
            os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)

    waiter = threading.Thread(target=wait_for_exit, daemon=True)
    waiter.start()
    waiter.join(timeout)
    timed_out = waiter.is_alive()
    # On timeout this stops the child; otherwise it stops whatever the child
    # left running in its group, which would hold our pipes open.
    _kill_group(proc.pid)
    _, status, usage = os.wait4(proc.pid, 0)
    waiter.join(5)
    for thread in threads:
        thread.join(5)
    duration = time.monotonic() - started

    returncode = os.waitstatus_to_exitcode(status)
    sig = -returncode if returncode < 0 else None
    max_rss = int(usage.ru_maxrss)  # KiB on Linux
    proc.returncode = returncode  # already reaped: stop Popen from waiting again

    result = ProcResult(
        argv=argv,
        returncode=returncode,
        stdout=b"".join(out),
        stderr=b"".join(err),
        duration_s=duration,
        timed_out=timed_out,
        max_rss_kib=max_rss,
        stdout_truncated=bool(out_trunc),
        stderr_truncated=bool(err_trunc),
        signal=sig,
        cpu_s=usage.ru_utime + usage.ru_stime,
    )
    if check and not result.ok:
        raise ExternalServiceError(result.describe())
    return result


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
