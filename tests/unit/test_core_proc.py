import sys
import time

import pytest

from tw_gates.core.errors import ExternalServiceError, UsageError
from tw_gates.core.proc import Limits, run

PY = sys.executable


def test_runs_and_reports():
    result = run([PY, "-c", "import sys; print('hi'); sys.stderr.write('err\\n'); sys.exit(3)"], timeout=10)
    assert result.returncode == 3 and result.stdout == b"hi\n" and not result.ok
    assert "exited 3" in result.describe() and "err" in result.describe()
    assert result.max_rss_kib > 1000


def test_timeout_kills_the_whole_process_group_quickly():
    started = time.monotonic()
    # The shell starts a grandchild that would keep the pipes open forever.
    result = run(["sh", "-c", "sleep 60 & sleep 60"], timeout=0.5)
    assert result.timed_out and time.monotonic() - started < 5
    assert "timed out after" in result.describe()


def test_background_child_left_behind_does_not_hang_us():
    started = time.monotonic()
    result = run(["sh", "-c", "sleep 60 & echo done"], timeout=10)
    assert result.ok and result.stdout == b"done\n" and time.monotonic() - started < 5


def test_stdin_and_output_cap():
    result = run(
        [PY, "-c", "import sys; d=sys.stdin.read(); sys.stdout.write(d*1000)"],
        timeout=10,
        input="abc",
        max_output_bytes=100,
    )
    assert result.stdout == b"abc" * 33 + b"a" and result.stdout_truncated


def test_address_space_limit_stops_a_hog():
    hog = "x = bytearray(2 * 1024 ** 3)"
    result = run([PY, "-c", hog], timeout=20, limits=Limits(address_space_bytes=512 * 1024**2))
    assert result.returncode != 0 and b"MemoryError" in result.stderr


def test_killed_by_signal_is_described():
    result = run([PY, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"], timeout=10)
    assert result.signal == 11 and "SIGSEGV" in result.describe()


def test_check_and_missing_command():
    with pytest.raises(ExternalServiceError, match="exited 1"):
        run([PY, "-c", "raise SystemExit(1)"], timeout=10, check=True)
    with pytest.raises(UsageError, match="command not found"):
        run(["definitely-not-a-command-xyz"], timeout=5)


@pytest.mark.parametrize("timeout", [float("inf"), float("nan"), 1e308, 0, -1, 8 * 24 * 3600])
def test_a_timeout_out_of_range_is_a_usage_error_not_an_overflow(timeout):
    with pytest.raises(UsageError, match="out of range"):
        run(["true"], timeout=timeout)
