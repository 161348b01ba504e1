"""S1 ingest gate: one test per rejection rule, plus what every verdict
leaves behind (output line, quarantine, accepted JSON Lines, metrics)."""

from __future__ import annotations

import json
import os
import random
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tw_gates.core.signing import KeyRing
from tw_gates.ingest import pool
from tw_gates.ingest.judge import Policy, judge
from tw_gates.ingest.reasons import REASONS
from tw_gates.ingest.strict_json import nesting_depth
from tw_gates.schemas.consumer import check_relative_path

KEY_ID, KEY = "k2026", "central-secret-2026-0123456789ab"
KEYS_ENV = {"TW_HMAC_KEYS": json.dumps({KEY_ID: KEY})}
RING = KeyRing({KEY_ID: KEY}, signing_key=KEY, signing_kid=KEY_ID)


def stamp(delta: timedelta = timedelta()) -> str:
    moment = datetime.now(timezone.utc) + delta
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def artifact(**overrides) -> dict:
    document = {
        "schema_version": "1.0",
        "repo": "example-org/example-consumer",
        "commit": "0123456789abcdef0123456789abcdef01234567",
        "branch": "main",
        "generated_at": stamp(),
        "tool_version": "0.1.0",
        "hits": [
            {"path": "app/views/profile.py", "line": 15, "pattern": "flask-render-template-string"},
            {"path": "web/src/comments.js", "line": 4, "pattern": "dom-inner-html"},
        ],
    }
    document.update(overrides)
    return document


def signed(**overrides) -> dict:
    return RING.sign(artifact(**overrides))


def write(folder: Path, name: str, content: dict | str | bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if isinstance(content, dict):
        content = json.dumps(content, indent=2)
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


@pytest.fixture
def ingest(cli, tmp_path):
    """Run `tw-gates ingest` on the given files; (code, out, err, rejected lines by file name)."""

    def invoke(*paths: Path, extra: tuple = (), env: dict | None = None):
        args = ["ingest", "--quarantine", tmp_path / "quarantine", "--out", tmp_path / "accepted.jsonl"]
        for path in paths:
            args += ["--artifact", path]
        code, out, err = cli(*args, *extra, env={**KEYS_ENV, **(env or {})})
        assert "Traceback" not in out + err
        lines = {}
        for line in out.splitlines():
            if line.startswith("REJECTED "):
                where, reason, message = line[len("REJECTED ") :].split(": ", 2)
                lines[Path(where).name] = (reason, message)
        return code, out, err, lines

    return invoke


def assert_rejected(result, name: str, reason: str, words: str = "") -> str:
    code, out, err, lines = result
    assert code == 2, out + err
    assert name in lines, out
    assert lines[name][0] == reason, lines[name]
    assert words.lower() in lines[name][1].lower(), lines[name]
    assert reason in REASONS
    return lines[name][1]


# --- accepted ------------------------------------------------------------------------


def test_valid_signed_artifact_is_accepted_and_merged_exactly_as_received(ingest, tmp_path):
    document = signed()
    path = write(tmp_path / "in", "good.json", document)
    code, out, err, lines = ingest(path, extra=("--require-hmac",))
    assert code == 0 and not lines, out + err
    merged = (tmp_path / "accepted.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in merged] == [document]
    assert RING.verify(json.loads(merged[0])) == KEY_ID  # signature kept, still valid
    assert "ingest: 1 accepted, 0 rejected" in out
    assert not list((tmp_path / "quarantine").iterdir())  # ready, and empty


def test_unsigned_artifact_is_accepted_without_the_policy(ingest, tmp_path):
    code, out, _, _ = ingest(write(tmp_path / "in", "unsigned.json", artifact()))
    assert code == 0 and "1 accepted" in out


def test_small_clock_skew_ahead_is_tolerated(ingest, tmp_path):
    code, out, _, _ = ingest(write(tmp_path / "in", "a.json", signed(generated_at=stamp(timedelta(minutes=4)))))
    assert code == 0, out


# --- the file ------------------------------------------------------------------------


def test_fifo_is_rejected_without_being_opened(ingest, tmp_path):
    (tmp_path / "in").mkdir()
    fifo = tmp_path / "in" / "pipe.json"
    os.mkfifo(fifo)  # opening it for reading would block forever
    message = assert_rejected(ingest(fifo), "pipe.json", "not_a_regular_file")
    assert "regular file" in message
    reason = json.loads((tmp_path / "quarantine" / "pipe.json.reason.json").read_text())
    assert reason["copied"] == "nothing"


def test_dangling_symlink_is_not_followed(ingest, tmp_path):
    # Was `unreadable` ("cannot stat"): a link is now refused before anything follows it.
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "gone.json").symlink_to(tmp_path / "nowhere.json")
    assert_rejected(ingest(tmp_path / "in" / "gone.json"), "gone.json", "not_a_regular_file", "symbolic link")


def test_file_larger_than_max_bytes_is_refused_before_reading(ingest, tmp_path):
    (tmp_path / "in").mkdir()
    huge = tmp_path / "in" / "huge.json"
    with open(huge, "wb") as handle:  # sparse: 64 GiB that nobody could read in a test
        handle.truncate(64 * 1024**3)
    message = assert_rejected(ingest(huge, extra=("--max-bytes", "1KiB")), "huge.json", "too_large")
    assert str(64 * 1024**3) in message and "1024" in message
    # Nothing unread is copied (it used to copy the first --max-bytes): bytes never judged are never written.
    quarantined = tmp_path / "quarantine" / "huge.json"
    assert quarantined.stat().st_size == 0
    reason = json.loads((tmp_path / "quarantine" / "huge.json.reason.json").read_text())
    assert reason["copied"] == "nothing" and reason["size"] == 64 * 1024**3 and reason["sha256"] is None


# --- the bytes -----------------------------------------------------------------------


def test_invalid_utf8_is_rejected(ingest, tmp_path):
    raw = json.dumps(artifact()).encode().replace(b'"main"', b'"ma\xffin"')
    assert_rejected(ingest(write(tmp_path / "in", "latin.json", raw)), "latin.json", "invalid_utf8", "byte")


def test_lone_surrogate_escape_is_rejected(ingest, tmp_path):
    text = json.dumps(artifact()).replace('"main"', '"ma\\ud800in"')
    assert_rejected(
        ingest(write(tmp_path / "in", "surrogate.json", text)), "surrogate.json", "invalid_utf8", "surrogate"
    )


@pytest.mark.parametrize("depth", [65, 5000, 1_000_000])
def test_nesting_deeper_than_64_is_rejected(ingest, tmp_path, depth):
    text = "[" * depth + "]" * depth
    assert_rejected(ingest(write(tmp_path / "in", "deep.json", text)), "deep.json", "nesting_too_deep", "deep")


def test_nesting_depth_is_measured_without_recursion():
    value: list = []
    for _ in range(100_000):
        value = [value]
    assert nesting_depth(value) == 100_001
    assert nesting_depth({"a": [{"b": 1}]}) == 3 and nesting_depth("x") == 0


@pytest.mark.parametrize(
    "text",
    ["{", "", "\ufeff{}", '{"a": 1} trailing', "{'a': 1}"],
    ids=["truncated", "empty", "bom", "trailing", "single-quotes"],
)
def test_malformed_json_is_rejected(ingest, tmp_path, text):
    assert_rejected(ingest(write(tmp_path / "in", "bad.json", text)), "bad.json", "invalid_json")


def test_giant_integer_is_rejected_as_invalid_json(ingest, tmp_path):
    text = json.dumps(artifact()).replace('"line": 15', '"line": ' + "9" * 5000)
    assert_rejected(ingest(write(tmp_path / "in", "bigint.json", text)), "bigint.json", "invalid_json")


@pytest.mark.parametrize("where", ["top", "hit"])
def test_duplicate_keys_are_rejected(ingest, tmp_path, where):
    text = json.dumps(signed())
    if where == "top":
        text = text.replace('"branch": "main"', '"branch": "main", "branch": "evil"')
    else:
        text = text.replace('"line": 15', '"line": 15, "line": 1')
    message = assert_rejected(ingest(write(tmp_path / "in", "dup.json", text)), "dup.json", "duplicate_key")
    assert ("branch" if where == "top" else "line") in message


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999", "-1e999"])
def test_non_finite_numbers_are_rejected(ingest, tmp_path, number):
    text = json.dumps(artifact()).replace('"line": 15', f'"line": {number}')
    assert_rejected(ingest(write(tmp_path / "in", "nan.json", text)), "nan.json", "non_finite_number")


# --- the contract --------------------------------------------------------------------


@pytest.mark.parametrize("version", ["2.0", "0.9", 1.0])
def test_unknown_schema_version_is_rejected(ingest, tmp_path, version):
    message = assert_rejected(
        ingest(write(tmp_path / "in", "v.json", signed(schema_version=version))), "v.json", "unknown_schema_version"
    )
    assert "1.0" in message


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda d: d.pop("commit"), "commit"),
        (lambda d: d.update(commit="abc"), "commit"),
        (lambda d: d.update(repo="no-slash"), "repo"),
        (lambda d: d.update(extra_field=1), "extra_field"),
        (lambda d: d.update(generated_at="2026-01-01T00:00:00+02:00"), "utc"),
        (lambda d: d.update(hits=[{"path": "a.py", "line": 0, "pattern": "x"}]), "line"),
        (lambda d: d.update(hits="many"), "hits"),
        (lambda d: d.pop("schema_version"), "schema_version"),
        (lambda d: d.update(hits=[{"path": "a.py", "line": True, "pattern": "x"}]), "line"),
        (lambda d: d.update(hits=[{"path": "a.py", "line": 5.0, "pattern": "x"}]), "line"),
    ],
    ids=[
        "missing-commit",
        "short-commit",
        "bad-repo",
        "extra-field",
        "non-utc",
        "line-zero",
        "hits-not-list",
        "no-schema-version",
        "line-bool",
        "line-float",
    ],
)
def test_schema_violations_are_rejected_naming_the_field(ingest, tmp_path, change, words):
    document = artifact()
    change(document)
    assert_rejected(ingest(write(tmp_path / "in", "s.json", document)), "s.json", "schema_violation", words)


def test_top_level_array_is_a_schema_violation(ingest, tmp_path):
    assert_rejected(ingest(write(tmp_path / "in", "list.json", "[]")), "list.json", "schema_violation", "not an object")


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/etc/passwd", "absolute"),
        ("C:\\Windows\\system.ini", "absolute"),
        ("app/../../etc/passwd", ".."),
        ("..\\secrets.txt", ".."),
        ("app/ok\u0000.py", "nul"),
        ("app/evil\n::error::forged.py", "control"),
    ],
    ids=["absolute", "windows-drive", "dotdot", "backslash-dotdot", "nul", "newline"],
)
def test_unsafe_hit_paths_are_rejected(ingest, tmp_path, path, words):
    document = signed(hits=[{"path": "ok.py", "line": 1, "pattern": "x"}, {"path": path, "line": 2, "pattern": "x"}])
    result = ingest(write(tmp_path / "in", "p.json", document))
    message = assert_rejected(result, "p.json", "unsafe_path", words)
    assert "hit 1" in message
    assert "::error::forged" not in result[1].replace("::error title=", "")  # no forged workflow command


# --- the signature -------------------------------------------------------------------


@pytest.mark.parametrize("how", ["flag", "env"])
def test_missing_signature_is_rejected_under_the_policy(ingest, tmp_path, how):
    path = write(tmp_path / "in", "unsigned.json", artifact())
    result = (
        ingest(path, extra=("--require-hmac",)) if how == "flag" else ingest(path, env={"POLICY_REQUIRE_HMAC": "true"})
    )
    assert_rejected(result, "unsigned.json", "missing_signature")


def test_null_signature_counts_as_missing_under_the_policy(ingest, tmp_path):
    path = write(tmp_path / "in", "null.json", artifact(signature=None))
    assert_rejected(ingest(path, extra=("--require-hmac",)), "null.json", "missing_signature")


def test_tampered_artifact_fails_the_signature(ingest, tmp_path):
    document = signed()
    document["hits"] = document["hits"][1:]  # drop the unregistered hit
    assert_rejected(ingest(write(tmp_path / "in", "t.json", document)), "t.json", "bad_signature", KEY_ID)


def test_signature_from_another_key_with_our_kid_fails(ingest, tmp_path):
    forged = KeyRing(signing_key="attacker-guess-0000-0123456789abcd", signing_kid=KEY_ID).sign(artifact())
    assert_rejected(ingest(write(tmp_path / "in", "f.json", forged)), "f.json", "bad_signature")


def test_unknown_key_id_is_rejected_even_without_the_policy(ingest, tmp_path):
    other = KeyRing(signing_key="another-secret-123-0123456789abcde", signing_kid="k1999").sign(artifact())
    message = assert_rejected(ingest(write(tmp_path / "in", "k.json", other)), "k.json", "unknown_kid", "k1999")
    assert KEY not in message


@pytest.mark.parametrize("alg", ["HS256", "none", "HMAC-SHA1", "hmac-sha256"])
def test_unsupported_alg_is_rejected(ingest, tmp_path, alg):
    document = signed()
    document["signature"]["alg"] = alg
    assert_rejected(ingest(write(tmp_path / "in", "alg.json", document)), "alg.json", "unsupported_alg")


@pytest.mark.parametrize(
    "signature",
    [
        "deadbeef",
        {"alg": "HMAC-SHA256", "kid": KEY_ID, "value": "XYZ"},
        {"alg": "HMAC-SHA256", "kid": KEY_ID, "value": "AB" * 32},
    ],
    ids=["string", "not-hex", "uppercase-hex"],
)
def test_malformed_signature_is_rejected(ingest, tmp_path, signature):
    document = artifact(signature=signature)
    assert_rejected(ingest(write(tmp_path / "in", "m.json", document)), "m.json", "malformed_signature")


def test_signature_with_extra_members_is_malformed(ingest, tmp_path):
    document = signed()
    document["signature"]["note"] = "ignore me"
    assert_rejected(ingest(write(tmp_path / "in", "x.json", document)), "x.json", "malformed_signature")


def test_previous_key_verifies_while_both_keys_are_listed(ingest, tmp_path):
    old = KeyRing(signing_key="previous-secret-2025-0123456789abc", signing_kid="k2025").sign(artifact(repo="org/old"))
    new = signed(repo="org/new")
    both = {"TW_HMAC_KEYS": json.dumps({"k2025": "previous-secret-2025-0123456789abc", KEY_ID: KEY})}
    paths = (write(tmp_path / "in", "old.json", old), write(tmp_path / "in", "new.json", new))
    code, out, _, _ = ingest(*paths, extra=("--require-hmac", "-v"), env=both)
    assert code == 0 and "key id k2025" in out and f"key id {KEY_ID}" in out
    prom = (tmp_path / ".metrics" / "tw_gates.prom").read_text()
    assert 'tw_gates_ingest_verified_total{kid="k2025"} 1.0' in prom
    # Once the old key is retired, its artifacts are refused.
    assert_rejected(ingest(paths[0], extra=("--require-hmac",)), "old.json", "unknown_kid", "k2025")


def test_keys_can_come_from_another_variable(ingest, tmp_path):
    path = write(tmp_path / "in", "a.json", signed())
    code, out, _, _ = ingest(
        path,
        extra=("--require-hmac", "--keys-env", "CONSUMER_KEYS"),
        env={"TW_HMAC_KEYS": "", "CONSUMER_KEYS": json.dumps({KEY_ID: KEY})},
    )
    assert code == 0, out


# --- freshness -----------------------------------------------------------------------


def test_artifact_older_than_max_age_is_rejected(ingest, tmp_path):
    path = write(tmp_path / "in", "old.json", signed(generated_at=stamp(-timedelta(days=8))))
    message = assert_rejected(ingest(path), "old.json", "expired", "older than the max age of 7d")
    assert "8d" in message
    code, _, _, _ = ingest(path, extra=("--max-age", "9d"))
    assert code == 0


def test_artifact_from_the_future_is_rejected_as_replay(ingest, tmp_path):
    path = write(tmp_path / "in", "future.json", signed(generated_at=stamp(timedelta(hours=2))))
    assert_rejected(ingest(path), "future.json", "future_timestamp", "in the future")


# --- many artifacts, outputs, usage --------------------------------------------------


def test_many_artifacts_from_folders_and_globs_in_one_pooled_call(ingest, tmp_path):
    expected = {}
    for index in range(150):  # above the pool threshold: judged by worker processes
        name = f"c{index:03d}.json"
        if index % 10 == 3:
            write(tmp_path / "a", name, signed(hits=[{"path": "/abs", "line": 1, "pattern": "x"}]))
            expected[name] = "unsafe_path"
        elif index % 10 == 7:
            write(tmp_path / "b" / "nested", name, artifact())
            expected[name] = "missing_signature"
        else:
            write(tmp_path / "a", name, signed(repo=f"org/c{index:03d}"))
    code, out, err, lines = ingest(
        tmp_path / "a",
        str(tmp_path / "b" / "**" / "*.json"),
        tmp_path / "a",
        extra=("--require-hmac", "--workers", "2"),
    )
    assert code == 2
    assert {name: reason for name, (reason, _) in lines.items()} == expected
    accepted = [json.loads(line)["repo"] for line in (tmp_path / "accepted.jsonl").read_text().splitlines()]
    assert accepted == [f"org/c{i:03d}" for i in range(150) if i % 10 not in (3, 7)]  # input order, each once
    assert "120 accepted, 30 rejected (missing_signature 15, unsafe_path 15)" in out
    assert "30 of 150 artifacts rejected; quarantined in" in err
    prom = (tmp_path / ".metrics" / "tw_gates.prom").read_text()
    assert 'tw_gates_ingest_artifacts_total{reason="none",result="accepted"} 120.0' in prom
    assert 'tw_gates_ingest_artifacts_total{reason="unsafe_path",result="rejected"} 15.0' in prom


def test_quarantine_keeps_the_bytes_and_never_overwrites(ingest, tmp_path):
    raw = b'{"schema_version": "1.0", "schema_version": "1.0"}'
    first = write(tmp_path / "x", "same.json", raw)
    second = write(tmp_path / "y", "same.json", b"not json")
    ingest(first, second)
    ingest(first)
    quarantine = tmp_path / "quarantine"
    assert sorted(p.name for p in quarantine.iterdir()) == [
        "same-1.json",
        "same-1.json.reason.json",
        "same-2.json",
        "same-2.json.reason.json",
        "same.json",
        "same.json.reason.json",
    ]
    assert (quarantine / "same.json").read_bytes() == raw == (quarantine / "same-2.json").read_bytes()
    reason = json.loads((quarantine / "same-1.json.reason.json").read_text())
    assert reason["reason"] == "invalid_json" and reason["artifact"] == str(second)
    assert reason["sha256"] and reason["size"] == len(b"not json")


def test_hostile_file_name_cannot_forge_output_lines(ingest, tmp_path):
    path = write(tmp_path / "in", "evil\nREJECTED fake.json: ok: forged.json", "{")
    code, out, _, _ = ingest(path)
    assert code == 2
    assert not any(line.startswith("REJECTED fake.json") for line in out.splitlines())
    assert "evil\\nREJECTED" in out


def test_accepted_output_is_replaced_atomically_and_kept_on_usage_error(ingest, tmp_path):
    path = write(tmp_path / "in", "a.json", signed())
    ingest(path)
    before = (tmp_path / "accepted.jsonl").read_bytes()
    code, _, err, _ = ingest(path, extra=("--max-age", "soon"))
    assert code == 1 and "not a duration" in err
    assert (tmp_path / "accepted.jsonl").read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".accepted.jsonl.")]


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (("--artifact", "nope.json"), {}, "artifact not found: nope.json"),
        (("--artifact", "in/*.nothing"), {}, "no artifact matches"),
        ((), {}, "no artifacts given"),
        (("--artifact", "in", "--max-bytes", "lots"), {}, "not a size"),
        (
            ("--artifact", "in"),
            {"POLICY_REQUIRE_HMAC": "maybe"},
            "POLICY_REQUIRE_HMAC: Input should be a valid boolean",
        ),
        (("--artifact", "in", "--require-hmac"), {"TW_HMAC_KEYS": ""}, "no verification keys"),
        (("--artifact", "in"), {"TW_HMAC_KEYS": "{not json"}, "TW_HMAC_KEYS is not valid JSON"),
        (("--artifact", "in", "--out", "in"), {}, "is a folder"),
        (("--artifact", "in", "--quarantine", "in/a.json"), {}, "cannot use --quarantine"),
    ],
    ids=[
        "missing-file",
        "empty-glob",
        "no-artifacts",
        "bad-size",
        "bad-policy",
        "policy-without-keys",
        "bad-keys",
        "out-is-folder",
        "quarantine-is-file",
    ],
)
def test_usage_errors_exit_1_with_one_line(cli, tmp_path, args, env, message):
    write(tmp_path / "in", "a.json", signed())
    code, out, err = cli("ingest", *args, env={**KEYS_ENV, **env}, cwd=tmp_path)
    assert code == 1, out + err
    assert message in err and "Traceback" not in err


def test_the_accepted_line_keeps_every_value_on_one_line(ingest, tmp_path):
    # Was one_line() of the received text; the line is now the artifact's RFC 8785 form (what its
    # signature covers, plus the signature): the same values, on one line for every kind of reader.
    document = signed(branch='a\u2028b\x85c "q" \\ \u00e9\u2029\n\t')
    pretty = json.dumps(document, indent=4, ensure_ascii=False).replace("\n", "\r\n")
    code, out, _, _ = ingest(write(tmp_path / "in", "a.json", pretty), extra=("--require-hmac",))
    assert code == 0, out
    line = (tmp_path / "accepted.jsonl").read_text(encoding="utf-8").removesuffix("\n")
    assert "\n" not in line and "\r" not in line and len(line.splitlines()) == 1
    assert json.loads(line) == document
    assert RING.verify(json.loads(line)) == KEY_ID


def test_runner_outputs_summary_and_annotations(ingest, tmp_path):
    output, summary = tmp_path / "out.txt", tmp_path / "summary.md"
    output.touch()
    summary.touch()
    paths = (write(tmp_path / "in", "good.json", signed()), write(tmp_path / "in", "bad.json", "{"))
    code, out, _, _ = ingest(
        *paths, env={"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary)}
    )
    assert code == 2
    assert "::error title=tw-gates ingest rejected an artifact,file=" in out
    values = output.read_text()
    assert "accepted<<" in values and "rejected<<" in values
    assert "| rejected | invalid_json | 1 |" in summary.read_text()


def test_every_reason_is_documented(repo_root):
    doc = (repo_root / "docs" / "ingest.md").read_text()
    missing = [reason for reason in REASONS if f"`{reason}`" not in doc]
    assert not missing, f"docs/ingest.md does not explain {missing}"


def test_chain_runs_the_ingest_gate_from_the_environment(cli, tmp_path):
    good = write(tmp_path / "in", "good.json", signed())
    bad = write(tmp_path / "in", "bad.json", artifact())
    env = {
        **KEYS_ENV,
        "POLICY_REQUIRE_HMAC": "true",
        "TW_INGEST_ARTIFACTS": f"{good}\n{bad}\n",
        "TW_INGEST_QUARANTINE": str(tmp_path / "q"),
        "TW_INGEST_OUT": str(tmp_path / "acc.jsonl"),
    }
    code, out, _ = cli("gates", "--only", "s1", env=env)
    assert code == 2
    assert "REJECTED" in out and "missing_signature" in out and "1 accepted, 1 rejected" in out
    assert len((tmp_path / "acc.jsonl").read_text().splitlines()) == 1
    code, out, _ = cli("gates", "--list")
    assert "ingest" in out and "(optional)" in out.split("ingest", 1)[1].splitlines()[0]


def test_random_mutations_are_rejected_by_name_or_accepted_only_when_unchanged(tmp_path):
    """Byte flips, cuts and hostile tokens in a signed artifact: never an
    internal error, never an accepted artifact whose values changed."""
    original = signed()
    base = json.dumps(original).encode()
    policy = Policy(ring=RING, require_hmac=True, max_age_s=7 * 86400, max_bytes=1 << 20, quarantine_dir=None)
    tokens = [
        b"NaN",
        b"1e999",
        b"\\u0000",
        b"\\ud800",
        b"[",
        b"]",
        b"{",
        b"}",
        b'"',
        b"\\",
        b",",
        b":",
        b"null",
        b"\xff",
        b"\xc0\xaf",
        b"\x00",
        b'"../x"',
        b'"/etc"',
        b"9" * 30,
        b"0.5",
        b"\xef\xbb\xbf",
    ]
    rng = random.Random(2026)
    path = tmp_path / "mutant.json"
    for _ in range(2000):
        data = bytearray(base)
        for _ in range(rng.randrange(1, 4)):
            at = rng.randrange(max(1, len(data)))
            operation = rng.randrange(4)
            if operation == 0 and data:
                data[at] = rng.randrange(256)
            elif operation == 1:
                del data[at : at + rng.randrange(1, 20)]
            elif operation == 2:
                data[at:at] = rng.choice(tokens)
            else:
                data = data[:at]
        path.write_bytes(bytes(data))
        verdict = judge(str(path), policy)
        assert verdict.reason != "internal_error", (verdict.message, bytes(data))
        if verdict.accepted:
            assert json.loads(bytes(data)) == original
        else:
            assert verdict.reason in REASONS and verdict.message


def test_quarantine_inside_the_input_folder_is_not_ingested_again(cli, tmp_path):
    incoming = tmp_path / "incoming"
    write(incoming, "good.json", signed())
    write(incoming, "bad.json", "{")
    args = ("ingest", "--artifact", incoming, "--quarantine", incoming / "quarantine")
    assert cli(*args, env=KEYS_ENV)[0] == 2
    code, out, _ = cli(*args, env=KEYS_ENV)
    assert code == 2 and "1 accepted, 1 rejected" in out
    assert sorted(p.name for p in (incoming / "quarantine").iterdir()) == [
        "bad-1.json",
        "bad-1.json.reason.json",
        "bad.json",
        "bad.json.reason.json",
    ]


def test_overlapping_glob_judges_each_file_once(ingest, tmp_path):
    write(tmp_path / "in" / "sub", "a.json", signed())
    code, out, _, _ = ingest(str(tmp_path / "in" / "**"))
    assert code == 0 and "1 accepted, 0 rejected" in out


def test_path_check_shortcut_agrees_with_the_detailed_rules():
    def unsafe(path: str) -> bool:  # the rules, spelled out slowly
        return (
            "\x00" in path
            or path.startswith(("/", "\\", "~"))
            or re.match(r"^[A-Za-z]:[\\/]", path) is not None
            or any(part == ".." for part in re.split(r"[\\/]", path))
            or any(ord(c) < 0x20 for c in path)
        )

    alphabet = ["a", ".", "..", "/", "\\", "~", "C:", "\x00", "\n", "\x1f", " ", "é", ":", "x.py"]
    rng = random.Random(7)
    for _ in range(20_000):
        path = "".join(rng.choice(alphabet) for _ in range(rng.randrange(7)))
        try:
            check_relative_path(path)
            refused = False
        except ValueError:
            refused = True
        assert refused == unsafe(path), repr(path)


def test_a_worker_that_dies_ends_the_run_with_one_line_and_nothing_half_written(cli, tmp_path, monkeypatch):
    original = pool.judge

    def dying(path, policy):
        if path.endswith("c070.json"):
            os._exit(3)  # as if killed: no verdict for this batch
        return original(path, policy)

    monkeypatch.setattr(pool, "judge", dying)
    for index in range(150):
        write(tmp_path / "in", f"c{index:03d}.json", signed(repo=f"org/c{index:03d}"))
    code, _out, err = cli(
        "ingest", "--artifact", tmp_path / "in", "--workers", "2", "--out", tmp_path / "accepted.jsonl", env=KEYS_ENV
    )
    assert code == 1 and "Traceback" not in err
    assert "ingest worker 1 stopped (exit code 3)" in err
    assert not (tmp_path / "accepted.jsonl").exists()  # the merge is all or nothing
