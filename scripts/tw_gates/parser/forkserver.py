"""A fork server for the builtin targets: one process per job that has
imported the parser once and forks one child per case.

A fresh interpreter per case spent most of the run starting Python and
importing markdown-it (0.1 s of CPU a case, more than the parsing). The
server is started like any target process (its own session, the target's
allowlisted environment, never the gate's memory), builds the parser, warms
it up and freezes its heap; each case is then a ``fork()`` of that state.
The child is isolated like any case process:

- its own process group (``setpgid``), killed as a group;
- RLIMIT_AS (address space) and RLIMIT_CPU (a cut-off past its time budget),
  set in the child before it touches the input;
- its output read by the server with a cap (the child is still drained, so it
  never blocks), stdin on /dev/null;
- a wall-clock deadline (the hang guard); CPU time and peak RSS from
  ``wait4`` of that child alone.

Protocol, over the server's stdin/stdout: a frame is a 4-byte big-endian
length, a JSON header, then the payloads the header announces. Request:
``{"input": n, "wall_s", "cpu_s", "address_space", "max_output"}`` + n bytes.
Reply: ``{"status", "wall_s", "cpu_s", "max_rss_kib", "timed_out",
"stdout", "stderr", "stdout_truncated", "stderr_truncated"}`` + the bytes.
The server's first frame is ``{"ready": true}`` once the parser is built.

Run as ``python -m tw_gates.parser.forkserver MODULE:FUNCTION ARG``:
``FUNCTION(ARG)`` returns the render function (bytes in, bytes out)."""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import os
import queue
import resource
import select
import selectors
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

from tw_gates.core import proc
from tw_gates.core.errors import ExternalServiceError
from tw_gates.parser.target_spec import PARSE_MS_PREFIX

Render = Callable[[bytes], bytes]
_LENGTH = struct.Struct(">I")
_MAX_HEADER = 1024 * 1024
_CHUNK = 65536
READY_TIMEOUT_S = 120.0
# How long past a case's own wall deadline the gate waits for the server's answer.
ANSWER_SLACK_S = 30.0
# After the child is gone, how long its pipes may stay open (a grandchild that left the group).
DRAIN_AFTER_EXIT_S = 2.0


@dataclass(frozen=True)
class CaseLimits:
    wall_s: float
    cpu_s: int | None
    address_space_bytes: int | None
    max_output_bytes: int


# --- framing --------------------------------------------------------------------------------------


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _send(fd: int, header: Mapping[str, Any], *payloads: bytes) -> None:
    body = json.dumps(header).encode("utf-8")
    _write_all(fd, _LENGTH.pack(len(body)) + body)
    for payload in payloads:
        _write_all(fd, payload)


def _read_exact(fd: int, size: int, deadline: float | None = None) -> bytes | None:
    """``size`` bytes, None at end of file before any; TimeoutError past ``deadline``."""
    parts: list[bytes] = []
    got = 0
    while got < size:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                raise TimeoutError
        chunk = os.read(fd, min(size - got, 1024 * 1024))
        if not chunk:
            if got == 0:
                return None
            raise EOFError(f"stream ended after {got} of {size} bytes")
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def _recv_header(fd: int, deadline: float | None = None) -> dict[str, Any] | None:
    raw = _read_exact(fd, _LENGTH.size, deadline)
    if raw is None:
        return None
    (length,) = _LENGTH.unpack(raw)
    if length > _MAX_HEADER:
        raise EOFError(f"frame header of {length} bytes")
    body = _read_exact(fd, length, deadline)
    if body is None:
        raise EOFError("stream ended inside a frame header")
    header = json.loads(body)
    if not isinstance(header, dict):
        raise EOFError("frame header is not an object")
    return header


# --- the server -----------------------------------------------------------------------------------


def serve(factory: str, argument: str) -> int:
    module, _, function = factory.partition(":")
    render: Render = getattr(importlib.import_module(module), function)(argument)
    gc.collect()
    gc.freeze()  # the children inherit the heap; their collections leave it alone (fewer pages copied)
    _send(1, {"ready": True, "pid": os.getpid()})
    while True:
        request = _recv_header(0)
        if request is None:
            return 0
        data = _read_exact(0, int(request["input"])) or b""
        reply, out, err = _run_one(render, data, request)
        _send(1, reply, out, err)


def _run_one(render: Render, data: bytes, request: Mapping[str, Any]) -> tuple[dict[str, Any], bytes, bytes]:
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child; coverage cannot follow it
        _child(render, data, request, out_w, err_w)
    os.close(out_w)
    os.close(err_w)
    with contextlib.suppress(OSError):
        os.setpgid(pid, pid)  # the child does it too; whoever is first wins the race
    collector = _Collector(pid, [out_r, err_r], int(request["max_output"]))
    timed_out = collector.run(started + float(request["wall_s"]))
    _, status, usage = os.wait4(pid, 0)
    reply = {
        "status": status,
        "wall_s": time.monotonic() - started,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "max_rss_kib": int(usage.ru_maxrss),
        "timed_out": timed_out,
        "stdout": len(collector.data[out_r]),
        "stderr": len(collector.data[err_r]),
        "stdout_truncated": collector.truncated[out_r],
        "stderr_truncated": collector.truncated[err_r],
    }
    return reply, collector.data[out_r], collector.data[err_r]


def _child(render: Render, data: bytes, request: Mapping[str, Any], out_w: int, err_w: int) -> NoReturn:
    code = 70
    try:
        os.setpgid(0, 0)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        os.closerange(3, 1 << 16)
        if request.get("address_space"):
            limit = int(request["address_space"])
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        if request.get("cpu_s"):
            seconds = int(request["cpu_s"])
            resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds + 1))
        started = time.perf_counter()
        html = render(data)
        elapsed_ms = (time.perf_counter() - started) * 1000
        _write_all(1, html)
        _write_all(2, f"{PARSE_MS_PREFIX} {elapsed_ms:.1f}\n".encode())
        code = 0
    except MemoryError:
        with contextlib.suppress(BaseException):
            _write_all(2, b"MemoryError: the case went past its address-space limit\n")
        code = 1
    except BaseException:
        with contextlib.suppress(BaseException):
            _write_all(2, traceback.format_exc().encode("utf-8", "replace"))
        code = 1
    finally:
        os._exit(code)


class _Collector:
    """Reads the child's pipes (capped) until they close and the child has
    exited, or until the deadline; kills the child's group either way."""

    def __init__(self, pid: int, fds: list[int], cap: int) -> None:
        self.pid = pid
        self.cap = cap
        self.data = {fd: b"" for fd in fds}
        self.truncated = dict.fromkeys(fds, False)
        self._parts: dict[int, list[bytes]] = {fd: [] for fd in fds}
        self._sizes = dict.fromkeys(fds, 0)
        self._selector = selectors.DefaultSelector()
        for fd in fds:
            self._selector.register(fd, selectors.EVENT_READ)
        self._pidfd = _pidfd(pid)
        if self._pidfd is not None:
            self._selector.register(self._pidfd, selectors.EVENT_READ)
        self._open = set(fds)
        self.exited = False

    def run(self, deadline: float) -> bool:
        """True when the deadline passed before the child exited."""
        try:
            timed_out = self._loop(deadline)
            _kill_group(self.pid)
            # Killed, or exited with something of its group left behind: what is left drains quickly.
            self._loop(time.monotonic() + DRAIN_AFTER_EXIT_S, until_exit=False)
        finally:
            for fd in self._open:
                os.close(fd)
            if self._pidfd is not None:
                os.close(self._pidfd)
            self._selector.close()
        for fd, parts in self._parts.items():
            self.data[fd] = b"".join(parts)
        return timed_out

    def _loop(self, deadline: float, *, until_exit: bool = True) -> bool:
        while self._open or (until_exit and not self.exited):
            if until_exit and not self.exited and self._pidfd is None and _has_exited(self.pid):
                self._exit_seen()
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return until_exit and not self.exited
            wait = remaining if self._pidfd is not None else min(remaining, 0.01)
            for key, _ in self._selector.select(wait):
                if key.fd == self._pidfd:
                    self._exit_seen()
                else:
                    self._read(key.fd)
        return False

    def _exit_seen(self) -> None:
        self.exited = True
        if self._pidfd is not None:
            self._selector.unregister(self._pidfd)
        _kill_group(self.pid)  # whatever the child started in its group would hold the pipes open

    def _read(self, fd: int) -> None:
        chunk = os.read(fd, _CHUNK)
        if not chunk:
            self._selector.unregister(fd)
            self._open.discard(fd)
            os.close(fd)
            return
        room = self.cap - self._sizes[fd]
        if room <= 0:
            self.truncated[fd] = True  # keep reading so the child never blocks on a full pipe
            return
        keep = chunk[:room]
        self._parts[fd].append(keep)
        self._sizes[fd] += len(keep)
        if len(keep) < len(chunk):
            self.truncated[fd] = True


def _pidfd(pid: int) -> int | None:
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        return int(opener(pid))
    except OSError:  # a kernel before 5.3: poll instead
        return None


def _has_exited(pid: int) -> bool:
    # WNOWAIT leaves the child a zombie, so its process group stays ours to kill.
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


# --- the gate's side ------------------------------------------------------------------------------


class ForkServer:
    """One server process; ``run`` one case at a time."""

    def __init__(self, factory: str, argument: str, *, env: Mapping[str, str], label: str) -> None:
        self.label = label
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "tw_gates.parser.forkserver", factory, argument],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=dict(env),
            start_new_session=True,
        )
        self._ready = False

    @property
    def pid(self) -> int:
        return self._process.pid

    def _fds(self) -> tuple[int, int]:
        assert self._process.stdin is not None and self._process.stdout is not None  # noqa: S101 - Popen(PIPE)
        return self._process.stdin.fileno(), self._process.stdout.fileno()

    def _fail(self, what: str) -> ExternalServiceError:
        self._stderr.seek(0)
        lines = self._stderr.read()[-4000:].decode("utf-8", "replace").strip().splitlines()
        tail = f": {lines[-1][:300]}" if lines else ""
        return ExternalServiceError(f"the {self.label} fork server {what}{tail}")

    def wait_ready(self) -> None:
        if self._ready:
            return
        _, reader = self._fds()
        try:
            header = _recv_header(reader, time.monotonic() + READY_TIMEOUT_S)
        except TimeoutError:
            raise self._fail(f"did not start within {READY_TIMEOUT_S:.0f}s") from None
        except (EOFError, ValueError):
            header = None
        if not header or not header.get("ready"):
            raise self._fail("did not start")
        self._ready = True

    def run(self, data: bytes, limits: CaseLimits) -> proc.ProcResult:
        self.wait_ready()
        writer, reader = self._fds()
        request = {
            "input": len(data),
            "wall_s": limits.wall_s,
            "cpu_s": limits.cpu_s,
            "address_space": limits.address_space_bytes,
            "max_output": limits.max_output_bytes,
        }
        try:
            _send(writer, request, data)
            deadline = time.monotonic() + limits.wall_s + ANSWER_SLACK_S
            reply = _recv_header(reader, deadline)
            if reply is None:
                raise EOFError("no answer")
            out = _read_exact(reader, int(reply["stdout"]), deadline) or b""
            err = _read_exact(reader, int(reply["stderr"]), deadline) or b""
        except TimeoutError:
            self.close()
            raise self._fail("stopped answering") from None
        except (OSError, EOFError, ValueError, KeyError) as exc:
            raise self._fail(f"stopped ({exc.__class__.__name__})") from None
        returncode = os.waitstatus_to_exitcode(int(reply["status"]))
        return proc.ProcResult(
            argv=[self.label],
            returncode=returncode,
            stdout=out,
            stderr=err,
            duration_s=float(reply["wall_s"]),
            timed_out=bool(reply["timed_out"]),
            max_rss_kib=int(reply["max_rss_kib"]),
            stdout_truncated=bool(reply["stdout_truncated"]),
            stderr_truncated=bool(reply["stderr_truncated"]),
            signal=-returncode if returncode < 0 else None,
            cpu_s=float(reply["cpu_s"]),
        )

    def close(self) -> None:
        with contextlib.suppress(OSError):
            if self._process.stdin is not None:
                self._process.stdin.close()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            _kill_group(self._process.pid)
            self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()
        self._stderr.close()


class ServerPool:
    """``size`` fork servers started at once; ``run`` takes an idle one."""

    def __init__(self, size: int, factory: str, argument: str, *, env: Mapping[str, str], label: str) -> None:
        self._servers = [ForkServer(factory, argument, env=env, label=label) for _ in range(size)]
        self._idle: queue.SimpleQueue[ForkServer] = queue.SimpleQueue()
        for server in self._servers:
            self._idle.put(server)

    def __call__(self, data: bytes, limits: CaseLimits) -> proc.ProcResult:
        server = self._idle.get()
        try:
            return server.run(data, limits)
        finally:
            self._idle.put(server)

    def close(self) -> None:
        for server in self._servers:
            server.close()

    def __enter__(self) -> ServerPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or ":" not in args[0]:
        print("usage: python -m tw_gates.parser.forkserver MODULE:FUNCTION ARGUMENT", file=sys.stderr)
        return 1
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # the gate went away: end quietly
    return serve(args[0], args[1])


if __name__ == "__main__":
    raise SystemExit(main())
