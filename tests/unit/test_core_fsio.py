import json
import multiprocessing
import os
import threading
import time

import portalocker
import pytest

from tw_gates.core.fsio import (
    FileTooLarge, LockTimeout, atomic_write_json, atomic_write_text, file_lock, locked_append_lines,
    read_bytes_limited,
)
from tw_gates.core.redact import REDACTOR


def test_atomic_write_replaces_whole_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "sub" / "out.json"
    atomic_write_json(target, {"a": 1})
    atomic_write_json(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 2}
    assert [p.name for p in target.parent.iterdir()] == ["out.json"]
    assert oct(target.stat().st_mode & 0o777) != "0o600"  # not mkstemp's private mode


def test_atomic_write_failure_keeps_old_content(tmp_path, monkeypatch):
    target = tmp_path / "out.txt"
    atomic_write_text(target, "old")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_write_redacts_known_secrets(tmp_path):
    REDACTOR.register("registered-secret-value-42")
    atomic_write_text(tmp_path / "x", "token is registered-secret-value-42 and ghp_" + "a" * 36)
    text = (tmp_path / "x").read_text()
    assert "registered-secret-value-42" not in text and "ghp_" not in text and "[REDACTED]" in text


def _append_worker(path, worker, count):
    for i in range(count):
        locked_append_lines(path, [json.dumps({"w": worker, "i": i, "pad": "x" * 200})], fsync=False)


def test_concurrent_appends_lose_and_tear_nothing(tmp_path):
    path = tmp_path / "log.jsonl"
    procs = [multiprocessing.Process(target=_append_worker, args=(path, w, 200)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    lines = path.read_text().splitlines()
    assert len(lines) == 800
    seen = {(d["w"], d["i"]) for d in map(json.loads, lines)}
    assert len(seen) == 800


def test_append_times_out_when_lock_is_held(tmp_path):
    path = tmp_path / "log.jsonl"
    path.touch()
    holder = portalocker.Lock(str(path), mode="a", flags=portalocker.LockFlags.EXCLUSIVE | portalocker.LockFlags.NON_BLOCKING)
    holder.acquire()
    try:
        # portalocker's lock is per open file description: another process is the honest test.
        ctx = multiprocessing.get_context("fork")
        result = ctx.Queue()

        def attempt():
            started = time.monotonic()
            try:
                locked_append_lines(path, ["x"], timeout=0.3)
                result.put(("written", 0))
            except LockTimeout as exc:
                result.put((str(exc), time.monotonic() - started))

        proc = ctx.Process(target=attempt)
        proc.start()
        proc.join(10)
        message, waited = result.get(timeout=1)
    finally:
        holder.release()
    assert "could not lock" in message and 0.25 <= waited < 3
    assert path.read_text() == ""


def test_file_lock_is_exclusive_between_threads_of_different_handles(tmp_path):
    order = []

    def worker(n):
        with file_lock(tmp_path / "l.lock", timeout=5):
            order.append(("in", n))
            time.sleep(0.05)
            order.append(("out", n))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # in/out pairs never interleave
    for i in range(0, 6, 2):
        assert order[i][0] == "in" and order[i + 1] == ("out", order[i][1])


def test_read_limited_refuses_before_reading(tmp_path):
    big = tmp_path / "big"
    big.write_bytes(b"x" * 1000)
    assert read_bytes_limited(big, 1000) == b"x" * 1000
    with pytest.raises(FileTooLarge, match="1000 bytes"):
        read_bytes_limited(big, 999)
