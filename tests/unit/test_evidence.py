import hashlib
import json
import multiprocessing
import os
import time

import portalocker
import pytest

from tw_gates.core.errors import UsageError
from tw_gates.core.fsio import LockTimeout
from tw_gates.phases import evidence
from tw_gates.phases.evidence import make_block
from tw_gates.phases.evidence_log import EvidenceConflict, EvidenceLog
from tw_gates.phases.evidence_verify import blocks_for_phase, read_log, verify_log
from tw_gates.schemas.evidence import EvidenceRecord

SECRET_LINE = 'api_key = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcd"'


@pytest.fixture
def repo(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "gate.py").write_text("def gate():\n    " + SECRET_LINE + "\n    return 2\n")
    return tmp_path


def test_block_hashes_the_full_snippet_then_redacts_then_truncates(repo):
    long_file = repo / "long.py"
    body = "x = 1\n" + "y = 2; " * 250 + "\n" + SECRET_LINE + "\n"
    long_file.write_text(body)
    block = make_block("EV-1", 1, "long.py", "1-3", "long lines")
    full_snippet = "\n".join(body.split("\n")[0:3])
    assert block.sha256 == hashlib.sha256(full_snippet.encode()).hexdigest()
    assert len(block.code_snippet) == 1000
    small = make_block("EV-2", 1, "src/gate.py", "1-3", "gate")
    assert "AbCdEfGhIj" not in small.code_snippet and "[REDACTED]" in small.code_snippet
    assert small.sha256 == hashlib.sha256(("def gate():\n    " + SECRET_LINE + "\n    return 2").encode()).hexdigest()
    assert small.file == "src/gate.py" and small.lines == "1-3"


def test_secret_cut_by_truncation_is_redacted_first(repo):
    # A secret straddling the 1000-character cut must not leave its first half behind.
    body = "a" * 960 + " token=" + "Z9" * 30 + "\n"
    (repo / "cut.py").write_text(body)
    block = make_block("EV-CUT", 0, "cut.py", "1-1", "cut")
    assert "Z9Z9" not in block.code_snippet


@pytest.mark.parametrize(
    "lines, message", [("0-2", "1 <= A <= B"), ("3-2", "1 <= A <= B"), ("2-9", "past the end"), ("a-b", "not A-B")]
)
def test_bad_line_ranges_are_usage_errors(repo, lines, message):
    with pytest.raises(UsageError, match=message):
        make_block("EV", 1, "src/gate.py", lines, "d")


def test_files_outside_the_root_or_missing_are_refused(repo, tmp_path_factory):
    outside = tmp_path_factory.mktemp("elsewhere") / "x.py"
    outside.write_text("x\n")
    with pytest.raises(UsageError, match="outside the repository root"):
        make_block("EV", 1, str(outside), "1-1", "d")
    with pytest.raises(UsageError, match="outside the repository root"):
        make_block("EV", 1, "../x.py", "1-1", "d")
    with pytest.raises(UsageError, match="not found"):
        make_block("EV", 1, "src/none.py", "1-1", "d")


def test_same_id_same_hash_is_noop_other_hash_is_rejected(repo):
    log = EvidenceLog(repo / "evidence_blocks.jsonl")
    block = make_block("EV-1", 1, "src/gate.py", "1-2", "first")
    assert log.add(block).added is True
    assert log.add(make_block("EV-1", 1, "src/gate.py", "1-2", "again")).added is False
    # A second writer (fresh instance, no cursor) sees the first writer's block too.
    other = EvidenceLog(repo / "evidence_blocks.jsonl")
    assert other.add(make_block("EV-1", 1, "src/gate.py", "1-2", "again")).added is False
    with pytest.raises(EvidenceConflict) as caught:
        other.add(make_block("EV-1", 1, "src/gate.py", "1-3", "other lines"))
    assert caught.value.exit_code == 2
    assert len((repo / "evidence_blocks.jsonl").read_text().splitlines()) == 1


def test_a_torn_tail_is_terminated_not_glued_to_the_next_block(repo):
    path = repo / "evidence_blocks.jsonl"
    log = EvidenceLog(path)
    log.add(make_block("EV-1", 1, "src/gate.py", "1-1", "a"))
    with open(path, "ab") as handle:
        handle.write(b'{"evidence_id": "EV-TORN", "pha')
    log.add(make_block("EV-2", 1, "src/gate.py", "2-2", "b"))
    blocks, problems = read_log(path)
    assert [b.evidence_id for _, b in blocks] == ["EV-1", "EV-2"]
    assert [p.line for p in problems] == [2]


def test_verify_finds_changed_missing_invalid_and_duplicate(repo):
    path = repo / "evidence_blocks.jsonl"
    log = EvidenceLog(path)
    for i, (lines, phase) in enumerate([("1-1", 1), ("2-2", 1), ("3-3", 2)]):
        log.add(make_block(f"EV-{i}", phase, "src/gate.py", lines, "d"))
    (repo / "other.py").write_text("keep\n")
    log.add(make_block("EV-GONE", 2, "other.py", "1-1", "d"))
    assert verify_log(path, root=repo).exit_code == 0

    (repo / "src" / "gate.py").write_text("def gate():\n    changed = True\n    return 2\n")
    (repo / "other.py").unlink()
    with open(path, "a") as handle:
        handle.write("not json\n")
        handle.write(path.read_text().splitlines()[0] + "\n")
    result = verify_log(path, root=repo)
    statuses = {(c.evidence_id, c.status) for c in result.failures}
    # The copy of EV-0's line at the end is out of the chain's order: reordered (it used to say invalid).
    assert statuses == {("EV-1", "changed"), ("EV-GONE", "missing"), ("?", "invalid"), ("EV-0", "reordered")}
    assert result.exit_code == 2
    assert {c.evidence_id for c in verify_log(path, root=repo, phase=1).failures} == {"EV-1", "?", "EV-0"}


def test_a_cited_file_grown_past_the_limit_fails_its_block(repo, monkeypatch):
    path = repo / "evidence_blocks.jsonl"
    EvidenceLog(path).add(make_block("EV-1", 1, "src/gate.py", "1-1", "d"))
    monkeypatch.setattr(evidence, "MAX_SOURCE_BYTES", 10)
    result = verify_log(path, root=repo)
    [check] = result.failures
    assert check.status == "missing" and "gate.py is 82 bytes, larger than the limit of 10 bytes" in check.detail
    assert result.exit_code == 2
    with pytest.raises(UsageError, match="larger than the limit"):
        make_block("EV-2", 1, "src/gate.py", "1-1", "d")


def test_blocks_for_phase_filters_and_tolerates_no_file(repo):
    path = repo / "evidence_blocks.jsonl"
    assert blocks_for_phase(path, 1) == []
    log = EvidenceLog(path)
    log.add(make_block("EV-A", 1, "src/gate.py", "1-1", "d"))
    log.add(make_block("EV-B", 2, "src/gate.py", "1-1", "d"))
    assert [b.evidence_id for b in blocks_for_phase(path, 2)] == ["EV-B"]


def _writer(path, root, worker, count):
    os.chdir(root)
    log = EvidenceLog(path)
    for i in range(count):
        log.add(make_block(f"W{worker}-{i}", worker % 5, "src/gate.py", "1-3", f"worker {worker}"))
        # Every worker also re-adds one shared id: exactly one copy may survive.
        log.add(make_block("SHARED", 0, "src/gate.py", "1-1", "shared"))


def test_concurrent_writers_lose_tear_and_duplicate_nothing(repo):
    path = repo / "evidence_blocks.jsonl"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(path, repo, w, 100)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b""
    records = [EvidenceRecord.model_validate_json(line) for line in lines[:-1]]
    ids = [r.evidence_id for r in records]
    assert len(ids) == 401 and len(set(ids)) == 401
    assert ids.count("SHARED") == 1
    # One chain, in file order, whoever wrote each line.
    assert [r.seq for r in records] == list(range(1, 402))
    assert verify_log(path, root=repo).exit_code == 0


def _hold_lock(path, ready, release):
    with portalocker.Lock(
        str(path), mode="a", flags=portalocker.LockFlags.EXCLUSIVE | portalocker.LockFlags.NON_BLOCKING
    ):
        ready.set()
        release.wait(30)


def test_writer_that_cannot_get_the_lock_fails_with_a_message(repo, cli):
    path = repo / "evidence_blocks.jsonl"
    path.touch()
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(path, ready, release))
    holder.start()
    try:
        assert ready.wait(10)
        started = time.monotonic()
        with pytest.raises(LockTimeout, match=r"within 0\.3s"):
            EvidenceLog(path, lock_timeout=0.3).add(make_block("EV-1", 1, "src/gate.py", "1-1", "d"))
        assert time.monotonic() - started < 10  # it gave up instead of blocking on the holder
        code, _, err = cli(
            "evidence",
            "add",
            "--id",
            "EV-1",
            "--phase",
            "1",
            "--file",
            "src/gate.py",
            "--lines",
            "1-1",
            "--description",
            "d",
            "--lock-timeout",
            "0.2",
        )
        assert code == 1
        assert "could not lock" in err and "another writer holds it" in err
    finally:
        release.set()
        holder.join(10)
    assert path.read_text() == ""


def test_cli_add_by_flags_and_stdin_and_verify(repo, cli, monkeypatch):
    import io
    import sys

    code, out, err = cli(
        "evidence",
        "add",
        "--id",
        "EV-1",
        "--phase",
        "1",
        "--file",
        "src/gate.py",
        "--lines",
        "1-2",
        "--description",
        "the gate",
    )
    assert code == 0, err
    assert "EV-1 recorded" in out
    given = {"evidence_id": "EV-2", "phase": 2, "file": "src/gate.py", "lines": "3-3", "description": "given on stdin"}
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(given)))
    code, out, err = cli("evidence", "add", "--evidence-file", "out/ev.jsonl")
    assert code == 0, err
    lines = (repo / "out" / "ev.jsonl").read_text().splitlines()
    assert [json.loads(line)["evidence_id"] for line in lines] == ["EV-2"]
    code, out, _ = cli("evidence", "verify")
    assert code == 0 and "1 evidence blocks verified" in out

    (repo / "src" / "gate.py").write_text("changed\n\n\n")
    code, out, err = cli("evidence", "verify")
    assert code == 2
    assert "CHANGED EV-1" in out and "1 of 1 evidence blocks do not verify" in err


def test_cli_add_usage_errors(repo, cli, monkeypatch):
    import io
    import sys

    code, _, err = cli("evidence", "add", "--id", "EV-1", "--phase", "1")
    assert code == 1 and "missing --file, --lines, --description" in err
    monkeypatch.setattr(sys, "stdin", io.StringIO('{"evidence_id": "EV-1", "phase": 9}'))
    code, _, err = cli("evidence", "add")
    assert code == 1 and "missing file, lines, description" in err
    code, _, err = cli("evidence", "verify", "--evidence-file", "nope.jsonl")
    assert code == 1 and "evidence file not found: nope.jsonl" in err
