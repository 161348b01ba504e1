"""core.fsio.locked_read_append: the locked read-check-append the evidence log is built on."""

import multiprocessing
import os

import portalocker
import pytest

from tw_gates.core.fsio import LockTimeout, locked_read_append


def test_reads_only_what_is_new_since_the_cursor(tmp_path):
    path = tmp_path / "log.txt"
    seen = []

    def decide(lines):
        def inner(data, from_start):
            seen.append((data, from_start))
            return lines

        return inner

    cursor = locked_read_append(path, decide(["a"]))
    with open(path, "a") as other_writer:
        other_writer.write("b\n")
    cursor = locked_read_append(path, decide(["c"]), cursor=cursor)
    cursor = locked_read_append(path, decide([]), cursor=cursor)
    assert seen == [(b"", True), (b"b\n", False), (b"", False)]
    assert path.read_text() == "a\nb\nc\n"
    assert cursor.offset == path.stat().st_size


def test_replaced_or_truncated_file_is_read_from_the_start(tmp_path):
    path = tmp_path / "log.txt"
    cursor = locked_read_append(path, lambda data, start: ["one", "two"])
    replacement = tmp_path / "new.txt"
    replacement.write_text("x\n")
    os.replace(replacement, path)
    seen = []
    cursor = locked_read_append(path, lambda data, start: seen.append((data, start)) or [], cursor=cursor)
    path.write_text("")  # same inode, shorter than the cursor
    locked_read_append(path, lambda data, start: seen.append((data, start)) or [], cursor=cursor)
    assert seen == [(b"x\n", True), (b"", True)]


def test_decide_raising_appends_nothing_and_releases_the_lock(tmp_path):
    path = tmp_path / "log.txt"
    locked_read_append(path, lambda data, start: ["keep"])

    def refuse(data, start):
        raise ValueError("no")

    with pytest.raises(ValueError):
        locked_read_append(path, refuse)
    locked_read_append(path, lambda data, start: ["after"], timeout=0.5)
    assert path.read_text() == "keep\nafter\n"


def _hold(path, ready, release):
    with portalocker.Lock(
        str(path), mode="a", flags=portalocker.LockFlags.EXCLUSIVE | portalocker.LockFlags.NON_BLOCKING
    ):
        ready.set()
        release.wait(30)


def test_times_out_when_another_process_holds_the_lock(tmp_path):
    path = tmp_path / "log.txt"
    path.touch()
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold, args=(path, ready, release))
    holder.start()
    try:
        assert ready.wait(10)
        called = []
        with pytest.raises(LockTimeout, match="another writer holds it"):
            locked_read_append(path, lambda data, start: called.append(1) or ["x"], timeout=0.2)
        assert called == []
    finally:
        release.set()
        holder.join(10)
