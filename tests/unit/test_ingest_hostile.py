"""Hostile files in a folder the ingest gate is pointed at: links are never
followed, FIFOs and devices never opened, and the quarantine (which the
ingest action uploads) never holds bytes the gate did not judge safe."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

FAKE_TOKEN = "ghs_" + "Q" * 36  # a GitHub token's form
KEY = "central-secret-for-the-hostile-tests-0123"


def run(cli, tmp_path: Path, *paths: Path, env: dict | None = None):
    code, out, err = cli(
        "ingest",
        *[a for p in paths for a in ("--artifact", p)],
        "--quarantine",
        tmp_path / "quarantine",
        "--out",
        tmp_path / "accepted.jsonl",
        env={"TW_HMAC_KEYS": json.dumps({"k": KEY}), **(env or {})},
    )
    assert "Traceback" not in out + err
    rejected = {}
    for line in out.splitlines():
        if line.startswith("REJECTED "):
            where, reason, message = line[len("REJECTED ") :].split(": ", 2)
            rejected[Path(where).name] = (reason, message)
    return code, out + err, rejected


def quarantine_bytes(tmp_path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted((tmp_path / "quarantine").iterdir()))


def test_a_link_to_a_file_holding_a_token_is_refused_and_nothing_of_it_is_copied(cli, tmp_path):
    secret = tmp_path / "outside" / "credentials.json"
    secret.parent.mkdir()
    secret.write_text(json.dumps({"token": FAKE_TOKEN}))
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "consumer.json").symlink_to(secret)
    code, _out, rejected = run(cli, tmp_path, tmp_path / "in")
    assert code == 2 and rejected["consumer.json"][0] == "not_a_regular_file"
    assert "symbolic link (never followed)" in rejected["consumer.json"][1]
    assert FAKE_TOKEN.encode() not in quarantine_bytes(tmp_path)
    reason = json.loads((tmp_path / "quarantine" / "consumer.json.reason.json").read_text())
    assert reason["copied"] == "nothing" and reason["sha256"] is None


def test_a_link_to_proc_self_environ_is_never_read(cli, tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "environ.json").symlink_to("/proc/self/environ")
    code, _out, rejected = run(cli, tmp_path, tmp_path / "in", env={"GITHUB_TOKEN": FAKE_TOKEN})
    assert code == 2 and rejected["environ.json"][0] == "not_a_regular_file"
    assert FAKE_TOKEN.encode() not in quarantine_bytes(tmp_path) and KEY.encode() not in quarantine_bytes(tmp_path)


def test_proc_self_environ_named_directly_is_judged_but_never_copied(cli, tmp_path):
    # Named on purpose (not found in a folder), it is a regular file to stat: it is read and judged,
    # and its bytes (NUL-separated, not text) are never written anywhere.
    os.environ["TW_TEST_EXTRA_SECRET"] = "not-registered-anywhere-" + "Z" * 20
    try:
        code, _out, rejected = run(cli, tmp_path, Path("/proc/self/environ"), env={"GITHUB_TOKEN": FAKE_TOKEN})
    finally:
        del os.environ["TW_TEST_EXTRA_SECRET"]
    assert code == 2 and rejected["environ"][0] in ("invalid_json", "invalid_utf8")
    written = quarantine_bytes(tmp_path) + (tmp_path / "accepted.jsonl").read_bytes()
    for value in (FAKE_TOKEN, KEY, "not-registered-anywhere-"):
        assert value.encode() not in written
    reason = json.loads((tmp_path / "quarantine" / "environ.reason.json").read_text())
    assert reason["copied"] == "nothing" and reason["size"] > 0 and len(reason["sha256"]) == 64


def test_a_fifo_is_refused_without_blocking(cli, tmp_path):
    (tmp_path / "in").mkdir()
    os.mkfifo(tmp_path / "in" / "pipe.json")
    code, _, rejected = run(cli, tmp_path, tmp_path / "in")
    assert code == 2 and rejected["pipe.json"] == ("not_a_regular_file", "not a regular file: a FIFO (never opened)")


def test_a_device_is_refused_without_being_opened(cli, tmp_path):
    code, _, rejected = run(cli, tmp_path, Path("/dev/zero"))
    assert code == 2 and rejected["zero"][0] == "not_a_regular_file" and "character device" in rejected["zero"][1]


def test_a_rejected_text_artifact_is_copied_with_known_secrets_redacted(cli, tmp_path):
    (tmp_path / "in").mkdir()
    leaked = tmp_path / "in" / "leak.json"
    leaked.write_text(f'{{"schema_version": "1.0", "note": "{KEY} and {FAKE_TOKEN}"}}')
    code, _, rejected = run(cli, tmp_path, tmp_path / "in")
    assert code == 2 and rejected["leak.json"][0] == "schema_violation"
    copy = (tmp_path / "quarantine" / "leak.json").read_bytes()
    assert KEY.encode() not in copy and FAKE_TOKEN.encode() not in copy and b"[REDACTED]" in copy
    reason = json.loads((tmp_path / "quarantine" / "leak.json.reason.json").read_text())
    assert reason["copied"] == "redacted" and reason["sha256"] != ""


@pytest.mark.parametrize("content", [b"\x00\x01binary\xff", b'{"a": "x"}\x00'], ids=["binary", "nul"])
def test_bytes_that_are_not_text_are_never_copied(cli, tmp_path, content):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "bin.json").write_bytes(content)
    code, _, _ = run(cli, tmp_path, tmp_path / "in")
    assert code == 2
    assert (tmp_path / "quarantine" / "bin.json").read_bytes() == b""


def test_a_linked_folder_inside_the_input_is_not_walked(cli, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.json").write_text(json.dumps({"token": FAKE_TOKEN}))
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "linked").symlink_to(outside, target_is_directory=True)
    (tmp_path / "in" / "bad.json").write_text("{")
    code, _, rejected = run(cli, tmp_path, tmp_path / "in")
    assert code == 2 and set(rejected) == {"bad.json"}
    assert FAKE_TOKEN.encode() not in quarantine_bytes(tmp_path)


def test_a_link_planted_in_the_quarantine_is_not_written_through(cli, tmp_path):
    target = tmp_path / "victim.txt"
    target.write_text("untouched")
    (tmp_path / "quarantine").mkdir()
    (tmp_path / "quarantine" / "bad.json").symlink_to(target)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "bad.json").write_text("{")
    code, _, rejected = run(cli, tmp_path, tmp_path / "in")
    assert code == 2 and rejected["bad.json"][0] == "invalid_json"
    assert target.read_text() == "untouched"
    assert (tmp_path / "quarantine" / "bad-1.json").read_bytes() == b"{"
