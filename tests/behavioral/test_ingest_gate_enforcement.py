"""Behavioral: the S1 ingest gate enforces its policy (4 of the suite's 14 sub-tests).

Each test runs the real command (`tw-gates ingest`) on files, the way the
ingest workflow does, and checks what a user of the gate relies on."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime, timezone
from pathlib import Path

from tw_gates.core.signing import KeyRing

KEYS = {"k2025": "previous-central-secret-0123456789", "k2026": "current-central-secret-01234567890"}
POLICY = {"POLICY_REQUIRE_HMAC": "true", "TW_HMAC_KEYS": json.dumps(KEYS)}


def now_z() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def consumer_artifact(repo: str = "example-org/example-consumer", branch: str = "main") -> dict:
    return {
        "schema_version": "1.0",
        "repo": repo,
        "commit": "89abcdef0123456789abcdef0123456789abcdef",
        "branch": branch,
        "generated_at": now_z(),
        "tool_version": "0.1.0",
        "hits": [
            {"path": "app/views/profile.py", "line": 15, "pattern": "flask-render-template-string"},
            {"path": "web/src/Prévisualisation.jsx", "line": 5, "pattern": "react-dangerously-set-inner-html"},
        ],
    }


# --- an RFC 8785 canonicaliser written from the RFC, independent of ours ------------


def _jcs_string(text: str) -> str:
    # RFC 8785 3.2.2.2: escape '"', '\\' and U+0000..U+001F (short forms where
    # JSON has them, else \u00xx in lowercase); everything else as is.
    short = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}
    return '"' + "".join(short.get(c) or (f"\\u{ord(c):04x}" if ord(c) < 0x20 else c) for c in text) + '"'


def jcs(value) -> str:
    """RFC 8785 for the value types of a consumer artifact (no floats)."""
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _jcs_string(value)
    if isinstance(value, list):
        return "[" + ",".join(jcs(v) for v in value) + "]"
    # 3.2.3: members sorted by the UTF-16 code units of their names.
    ordered = sorted(value.items(), key=lambda item: item[0].encode("utf-16-be"))
    return "{" + ",".join(_jcs_string(k) + ":" + jcs(v) for k, v in ordered) + "}"


def independently_signed(document: dict, kid: str, secret: str) -> dict:
    mac = hmac.new(secret.encode(), jcs(document).encode("utf-8"), hashlib.sha256).hexdigest()
    return {**document, "signature": {"alg": "HMAC-SHA256", "kid": kid, "value": mac}}


def write(folder: Path, name: str, content) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(content if isinstance(content, bytes) else json.dumps(content).encode())
    return path


def run_ingest(cli, tmp_path: Path, *paths: Path):
    code, out, err = cli(
        "ingest",
        *[a for p in paths for a in ("--artifact", p)],
        "--quarantine",
        tmp_path / "quarantine",
        "--out",
        tmp_path / "accepted.jsonl",
        env=POLICY,
    )
    assert "Traceback" not in out + err
    rejected = {}
    for line in out.splitlines():
        if line.startswith("REJECTED "):
            where, reason, _ = line[len("REJECTED ") :].split(": ", 2)
            rejected[Path(where).name] = reason
    accepted = (
        [json.loads(line) for line in (tmp_path / "accepted.jsonl").read_text().splitlines()]
        if (tmp_path / "accepted.jsonl").exists()
        else []
    )
    return code, rejected, accepted


def test_artifact_signed_by_an_independent_rfc8785_hmac_implementation_is_accepted(cli, tmp_path):
    document = independently_signed(
        consumer_artifact(branch='feature/ünïcode-"quoted"\\path\u2028'), "k2026", KEYS["k2026"]
    )
    code, rejected, accepted = run_ingest(cli, tmp_path, write(tmp_path / "in", "consumer.json", document))
    assert (code, rejected) == (0, {})
    assert accepted == [document]


def test_artifact_signed_with_the_previous_key_verifies_while_both_keys_are_listed(cli, tmp_path):
    old = KeyRing(signing_key=KEYS["k2025"], signing_kid="k2025").sign(consumer_artifact("org/still-on-old-key"))
    new = KeyRing(signing_key=KEYS["k2026"], signing_kid="k2026").sign(consumer_artifact("org/rotated"))
    code, rejected, accepted = run_ingest(
        cli, tmp_path, write(tmp_path / "in", "old.json", old), write(tmp_path / "in", "new.json", new)
    )
    assert (code, rejected) == (0, {})
    assert [a["signature"]["kid"] for a in accepted] == ["k2025", "k2026"]


def test_unsigned_or_tampered_artifact_is_rejected_with_exit_2_and_quarantined_never_dropped(cli, tmp_path):
    signer = KeyRing(signing_key=KEYS["k2026"], signing_kid="k2026")
    tampered = signer.sign(consumer_artifact("org/tampered"))
    tampered["hits"].pop(0)  # hide the unregistered renderer
    good = signer.sign(consumer_artifact("org/good"))
    paths = [
        write(tmp_path / "in", "unsigned.json", consumer_artifact("org/unsigned")),
        write(tmp_path / "in", "tampered.json", tampered),
        write(tmp_path / "in", "good.json", good),
    ]
    code, rejected, accepted = run_ingest(cli, tmp_path, *paths)
    assert code == 2
    assert rejected == {"unsigned.json": "missing_signature", "tampered.json": "bad_signature"}
    assert [a["repo"] for a in accepted] == ["org/good"]
    quarantine = tmp_path / "quarantine"
    for path in paths[:2]:
        assert (quarantine / path.name).read_bytes() == path.read_bytes()
        assert json.loads((quarantine / f"{path.name}.reason.json").read_text())["reason"] == rejected[path.name]


HOSTILE = {
    "dup-key.json": (b'{"schema_version":"1.0","repo":"a/b","repo":"evil/b"}', "duplicate_key"),
    "nan.json": (b'{"schema_version":"1.0","hits":[{"path":"a","line":NaN,"pattern":"x"}]}', "non_finite_number"),
    "overflow.json": (b'{"schema_version":"1.0","n":1e400}', "non_finite_number"),
    "latin1.json": (b'{"schema_version":"1.0","branch":"caf\xe9"}', "invalid_utf8"),
    "deep.json": (b"[" * 100_000 + b"]" * 100_000, "nesting_too_deep"),
    "schema-2.json": (b'{"schema_version":"2.0"}', "unknown_schema_version"),
    "not-json.json": (b"<html>", "invalid_json"),
    "array.json": (b"[1, 2]", "schema_violation"),
}


def test_hostile_inputs_are_each_rejected_with_exit_2_and_a_reason_naming_the_problem(cli, tmp_path):
    paths = [write(tmp_path / "in", name, raw) for name, (raw, _) in HOSTILE.items()]
    base = consumer_artifact()
    for name, path_value in (
        ("abs-path.json", "/etc/shadow"),
        ("dotdot.json", "../../.ssh/id_rsa"),
        ("nul-path.json", "a\u0000.py"),
    ):
        hostile = {**base, "hits": [{"path": path_value, "line": 1, "pattern": "x"}]}
        paths.append(
            write(tmp_path / "in", name, KeyRing(signing_key=KEYS["k2026"], signing_kid="k2026").sign(hostile))
        )
    (tmp_path / "in" / "big.json").write_bytes(b" " * (11 * 1024 * 1024))  # over the 10 MiB default
    paths.append(tmp_path / "in" / "big.json")
    code, rejected, accepted = run_ingest(cli, tmp_path, *paths)
    expected = {name: reason for name, (_, reason) in HOSTILE.items()}
    expected.update(
        {
            "abs-path.json": "unsafe_path",
            "dotdot.json": "unsafe_path",
            "nul-path.json": "unsafe_path",
            "big.json": "too_large",
        }
    )
    assert code == 2
    assert rejected == expected
    assert accepted == []
    assert len(list((tmp_path / "quarantine").glob("*.reason.json"))) == len(expected)
