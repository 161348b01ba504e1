"""The fork server behind the builtin targets: each case a forked child with
its own limits, the server unharmed by whatever a case does."""

from __future__ import annotations

import os
import signal
import textwrap
import time
from pathlib import Path

import pytest

from tw_gates.parser.cases import builtin_env, target_env
from tw_gates.parser.forkserver import CaseLimits, ForkServer

HELPERS = """
import os, sys, time


def make(kind):
    def render(data):
        if kind == "echo":
            return b"<p>" + data + b"</p>"
        if kind == "hang":
            time.sleep(3600)
        if kind == "burn":
            while True:
                pass
        if kind == "hog":
            chunks = []
            while True:
                chunks.append(bytearray(16 * 1024 * 1024))
        if kind == "flood":
            return b"x" * (8 * 1024 * 1024)
        if kind == "orphan":
            if os.fork() == 0:  # a grandchild that keeps the output pipe open
                time.sleep(3600)
            return b"done"
        if kind == "crash":
            os.kill(os.getpid(), 11)
        if kind == "environ":
            return repr(sorted(os.environ)).encode()
        raise ValueError("unknown kind")
    return render
"""

LIMITS = CaseLimits(wall_s=10.0, cpu_s=2, address_space_bytes=512 * 1024 * 1024, max_output_bytes=1024 * 1024)


@pytest.fixture
def server_for(tmp_path: Path):
    (tmp_path / "fs_helpers.py").write_text(textwrap.dedent(HELPERS))
    started: list[ForkServer] = []

    def start(kind: str) -> ForkServer:
        env = builtin_env(target_env())
        env["PYTHONPATH"] = f"{tmp_path}{os.pathsep}{env['PYTHONPATH']}"
        server = ForkServer("fs_helpers:make", kind, env=env, label=f"test:{kind}")
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


def test_a_case_runs_in_a_child_and_the_server_serves_the_next(server_for):
    server = server_for("echo")
    first = server.run(b"one", LIMITS)
    second = server.run(b"two", LIMITS)
    assert first.stdout == b"<p>one</p>" and second.stdout == b"<p>two</p>"
    assert first.returncode == 0 and first.cpu_s >= 0 and first.max_rss_kib > 0
    assert b"tw-gates-parse-ms:" in first.stderr


def test_a_hanging_case_is_killed_at_its_wall_limit(server_for):
    server = server_for("hang")
    started = time.monotonic()
    result = server.run(b"x", CaseLimits(wall_s=1.0, cpu_s=None, address_space_bytes=None, max_output_bytes=1024))
    assert 1.0 <= time.monotonic() - started < 8
    assert result.timed_out and result.signal == signal.SIGKILL


def test_a_runaway_case_is_cut_by_its_cpu_limit(server_for):
    server = server_for("burn")
    result = server.run(b"x", CaseLimits(wall_s=30.0, cpu_s=1, address_space_bytes=None, max_output_bytes=1024))
    # RLIMIT_CPU counts in scheduler ticks: the cut comes near the limit, not exactly at it.
    assert not result.timed_out and result.signal in (signal.SIGXCPU, signal.SIGKILL) and result.cpu_s >= 0.5


def test_a_case_that_allocates_without_bound_fails_alone(server_for):
    server = server_for("hog")
    result = server.run(
        b"x", CaseLimits(wall_s=30.0, cpu_s=10, address_space_bytes=256 * 1024 * 1024, max_output_bytes=1024)
    )
    assert result.returncode == 1 and b"MemoryError" in result.stderr and result.max_rss_kib < 300 * 1024


def test_output_is_capped_and_the_child_still_finishes(server_for):
    server = server_for("flood")
    result = server.run(b"x", LIMITS)
    assert result.returncode == 0 and len(result.stdout) == LIMITS.max_output_bytes and result.stdout_truncated


def test_what_a_case_leaves_in_its_process_group_is_killed(server_for):
    server = server_for("orphan")
    started = time.monotonic()
    result = server.run(b"x", LIMITS)
    assert result.returncode == 0 and result.stdout == b"done" and not result.timed_out
    assert time.monotonic() - started < 5  # the grandchild holding the pipe was killed, not waited on


def test_a_crash_is_the_case_s_own(server_for):
    server = server_for("crash")
    crashed = server.run(b"x", LIMITS)
    assert crashed.signal == signal.SIGSEGV and "SIGSEGV" in crashed.describe()


def test_the_server_and_its_cases_see_only_the_allowlisted_environment(server_for, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://app:hunter2@db/app")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
    server = server_for("environ")
    seen = server.run(b"x", LIMITS).stdout.decode()
    assert "DATABASE_URL" not in seen and "AWS_ACCESS_KEY_ID" not in seen and "PATH" in seen
    environ = Path(f"/proc/{server.pid}/environ").read_bytes().split(b"\0")
    names = {entry.split(b"=", 1)[0].decode() for entry in environ if entry}
    assert names <= {"PATH", "HOME", "LANG", "TMPDIR", "PYTHONPATH"} | {n for n in names if n.startswith("LC_")}
