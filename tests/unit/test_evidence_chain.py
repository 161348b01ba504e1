"""Evidence is tamper-evident: every record chains the hash of the one before
it and carries its own MAC, the head is signed, and `evidence verify` names
an edited, reordered or deleted record by its id. Attacks end to end through
the CLI; each would pass `evidence verify` before the chain existed."""

from __future__ import annotations

import json
import os

import pytest

KEY = {"TW_EVIDENCE_KEY": "evidence-head-signing-key-0123456789", "TW_EVIDENCE_KEY_ID": "ev2026"}
SOURCE = "".join(f"def step_{i}():\n    return {i}\n" for i in range(10))


@pytest.fixture
def repo(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "gate.py").write_text(SOURCE)
    return tmp_path


def add(cli, n: int, env=None):
    code, out, err = cli(
        "evidence",
        "add",
        "--id",
        f"EV-{n}",
        "--phase",
        "1",
        "--file",
        "src/gate.py",
        "--lines",
        f"{2 * n + 1}-{2 * n + 2}",
        "--description",
        f"step {n}",
        env=env if env is not None else KEY,
    )
    assert code == 0, err
    return out


def lines(repo) -> list[str]:
    return (repo / "evidence_blocks.jsonl").read_text().splitlines()


def rewrite(repo, new_lines: list[str]) -> None:
    (repo / "evidence_blocks.jsonl").write_text("".join(line + "\n" for line in new_lines))


def verify(cli, env=None):
    keys = {"TW_EVIDENCE_KEYS": json.dumps({"ev2026": KEY["TW_EVIDENCE_KEY"]})}
    return cli("evidence", "verify", env=env if env is not None else keys)


@pytest.fixture
def log(repo, cli):
    for n in range(4):
        add(cli, n)
    code, out, err = verify(cli)
    assert code == 0, out + err
    assert "4 evidence blocks verified" in out and "chain of 4 records and its signed head (key ev2026)" in out
    return lines(repo)


@pytest.mark.parametrize("field, value", [("code_snippet", "return 0"), ("description", "x"), ("timestamp", None)])
def test_an_edited_record_is_named(repo, cli, log, field, value):
    record = json.loads(log[1])
    record[field] = value or "2020-01-01T00:00:00Z"
    rewrite(repo, [log[0], json.dumps(record, separators=(",", ":")), *log[2:]])
    code, out, err = verify(cli)
    assert code == 2
    assert "EDITED EV-1" in out and "changed after it was written" in out
    assert "do not verify" in err


def test_a_deleted_record_is_named(repo, cli, log):
    rewrite(repo, [log[0], *log[2:]])
    code, out, _ = verify(cli)
    assert code == 2
    assert "DELETED EV-1" in out and "1 record missing before EV-2 (seq 2)" in out


def test_deleting_the_last_record_is_caught_by_the_signed_head(repo, cli, log):
    rewrite(repo, log[:-1])
    code, out, _ = verify(cli)
    assert code == 2
    assert "DELETED EV-3" in out and "the signed head records 4 records, the last EV-3" in out


def test_reordered_records_are_named(repo, cli, log):
    rewrite(repo, [log[0], log[2], log[1], log[3]])
    code, out, _ = verify(cli)
    assert code == 2
    assert "REORDERED EV-1" in out


def test_a_rechained_forgery_without_the_key_fails_every_forged_mac(repo, cli, log):
    """Someone without TW_EVIDENCE_KEY rewrites a record and recomputes the chain after it."""
    import hashlib

    records = [json.loads(line) for line in log]
    records[2]["description"] = "forged"
    out_lines, prev = [], "0" * 64
    for record in records:
        record["prev"] = prev
        line = json.dumps(record, separators=(",", ":"))
        out_lines.append(line)
        prev = hashlib.sha256(line.encode()).hexdigest()
    rewrite(repo, out_lines)
    code, out, _ = verify(cli)
    assert code == 2
    assert "EDITED EV-2" in out


def test_the_head_must_verify(repo, cli, log):
    head = repo / "evidence_blocks.jsonl.head"
    document = json.loads(head.read_text())
    document["seq"] = 3
    head.write_text(json.dumps(document))
    code, out, _ = verify(cli)
    assert code == 2 and "HEAD" in out and "bad_signature" in out
    head.unlink()
    code, out, _ = verify(cli)
    assert code == 2 and "no head" in out


def test_without_a_key_the_chain_is_still_checked_and_the_head_is_not(repo, cli):
    for n in range(3):
        add(cli, n, env={})
    code, out, err = verify(cli, env={})
    assert code == 0, out + err
    assert "the head is not signed" in err  # a warning, not a failure: there is no key to check it with
    log = lines(repo)
    rewrite(repo, [log[0], log[2]])
    code, out, _ = verify(cli, env={})
    assert code == 2 and "DELETED EV-1" in out


def test_verify_never_follows_a_symlink(repo, cli, log, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "evidence.jsonl"
    elsewhere.write_text((repo / "evidence_blocks.jsonl").read_text())
    os.symlink(elsewhere, repo / "linked.jsonl")
    code, _, err = cli("evidence", "verify", "--evidence-file", "linked.jsonl")
    assert code == 1
    assert "evidence file linked.jsonl is a symbolic link: not followed" in err


def test_a_cited_file_that_is_a_symlink_is_never_read(repo, cli, tmp_path_factory):
    secret = tmp_path_factory.mktemp("elsewhere") / "shadow"
    secret.write_text("root:$6$secret-hash:19000:0:99999:7:::\n")
    os.symlink(secret, repo / "src" / "innocent.py")
    code, _, err = cli(
        "evidence",
        "add",
        "--id",
        "EV-L",
        "--phase",
        "1",
        "--file",
        "src/innocent.py",
        "--lines",
        "1-1",
        "--description",
        "d",
    )
    assert code == 1
    assert "src/innocent.py is a symbolic link: not followed" in err
    assert (
        not (repo / "evidence_blocks.jsonl").exists()
        or "secret-hash" not in (repo / "evidence_blocks.jsonl").read_text()
    )


def test_a_log_from_before_the_chain_is_named_then_linked_once(repo, cli):
    from tw_gates.phases.evidence import make_block

    old = [make_block(f"EV-{n}", 1, "src/gate.py", f"{n + 1}-{n + 1}", "old").model_dump_json() for n in range(3)]
    rewrite(repo, old)
    code, out, _ = verify(cli)
    assert code == 2 and out.count("UNCHAINED EV-") == 3 and "`tw-gates evidence chain` links it" in out
    code, out, err = cli("evidence", "chain", env=KEY)
    assert code == 0, err
    assert "3 records linked into a hash chain, signed with key 'ev2026'" in out
    code, out, err = verify(cli)
    assert code == 0, out + err
    code, _, err = cli("evidence", "chain", env=KEY)
    assert code == 1 and "is already a hash chain" in err
    add(cli, 3)  # the chain goes on
    code, out, err = verify(cli)
    assert code == 0 and "chain of 4 records" in out, out + err
