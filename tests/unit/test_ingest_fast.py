"""The ingest fast path accepts exactly what the full path accepts, with the
same line; it never rejects and never names a reason (differential tests)."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from tw_gates.core.signing import KeyRing, canonical_bytes
from tw_gates.ingest.fast import FastPath, json_line
from tw_gates.ingest.judge import Policy, judge

KID, KEY = "k2026", "central-secret-2026-0123456789abcdef"
RING = KeyRing({KID: KEY, "other": "another-secret-0123456789abcdef0123"}, signing_key=KEY, signing_kid=KID)


def stamp() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def document(**overrides) -> dict:
    doc = {
        "schema_version": "1.0",
        "repo": "example-org/example-consumer",
        "commit": "0123456789abcdef0123456789abcdef01234567",
        "branch": "feature/ünïcode",
        "generated_at": stamp(),
        "tool_version": "0.1.0",
        "hits": [
            {"path": "app/views/profile.py", "line": 15, "pattern": "flask-render-template-string"},
            {"path": "web/src/Prévisualisation:1.jsx", "line": 4, "pattern": "dom-inner-html"},
        ],
    }
    doc.update(overrides)
    return doc


def policies(require_hmac: bool = True) -> tuple[Policy, Policy]:
    full = Policy(ring=RING, require_hmac=require_hmac, max_age_s=7 * 86400, max_bytes=1 << 20, quarantine_dir=None)
    fast = FastPath.from_ring(RING)
    assert fast is not None
    return full, replace(full, fast=fast)


def test_the_fast_path_proves_it_agrees_with_the_key_ring_and_is_on():
    assert FastPath.from_ring(RING) is not None


def test_the_fast_path_stands_down_when_it_cannot_read_the_ring():
    class Elsewhere(KeyRing):  # a ring that keeps its keys under another name
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._held = self.__dict__.pop("_verify")

        @property
        def kids(self) -> list[str]:
            return sorted(self._held)

    assert FastPath.from_ring(Elsewhere({KID: KEY})) is None


def test_the_fast_path_stands_down_when_signatures_change_and_the_gate_says_so(cli, tmp_path, monkeypatch):
    """If signing ever covers more than the RFC 8785 form (a document type,
    say), the start-up probe fails, the gate warns, and every artifact takes
    the full path: same verdicts, slower."""
    original = KeyRing.sign

    def typed_sign(self, document):
        signed = original(self, {**document, "type": "consumer-artifact"})
        return {**document, "signature": signed["signature"]}

    monkeypatch.setattr(KeyRing, "sign", typed_sign)
    assert FastPath.from_ring(RING) is None
    path = tmp_path / "a.json"
    path.write_text(json.dumps(original(RING, document())))
    code, out, err = cli("ingest", "--artifact", path, "--require-hmac", env={"TW_HMAC_KEYS": json.dumps({KID: KEY})})
    assert code == 0, out + err
    assert "the fast path stands down" in err


def test_the_fast_path_accepts_a_valid_artifact_with_the_same_line_as_the_full_path(tmp_path):
    full, fast = policies()
    path = tmp_path / "a.json"
    path.write_text(json.dumps(RING.sign(document()), indent=2, ensure_ascii=False))
    assert FastPath.from_ring(RING).judge(path.read_bytes(), require_signature=True) is not None
    assert judge(str(path), fast) == judge(str(path), full)
    assert judge(str(path), fast).accepted


@pytest.mark.parametrize(
    "text",
    [
        '{"schema_version":"1.0","repo":"a/b","repo":"a/b"}',  # a duplicate
        '{"branch":"ma\\u0069n"}',  # any \\u escape: the full path looks at it
    ],
)
def test_the_fast_path_steps_aside_rather_than_judge(text):
    signed = RING.sign(document())
    data = json.dumps(signed).replace('"branch": "feature/\\u00fcn\\u00efcode"', text[1:-1]).encode()
    assert FastPath.from_ring(RING).judge(data, require_signature=True) is None


def test_a_duplicate_key_anywhere_makes_the_fast_path_step_aside():
    signed = RING.sign(document())
    base = json.dumps(signed, ensure_ascii=False)
    fast = FastPath.from_ring(RING)
    assert fast.judge(base.encode(), require_signature=True) is not None
    for needle, twice in [
        ('"repo": ', '"repo": "evil/x", "repo": '),
        ('"line": 15', '"line": 99, "line": 15'),
        ('"kid": ', '"kid": "other", "kid": '),
        ('"signature": ', '"signature": null, "signature": '),
        ('"hits": ', '"hits": [], "hits": '),
    ]:
        assert fast.judge(base.replace(needle, twice, 1).encode(), require_signature=True) is None, twice


@pytest.mark.parametrize(
    "path",
    [
        "/etc/passwd",
        "\\\\server\\x",
        "~/x",
        "C:/x",
        "c:\\\\x",
        "a/../b",
        "..",
        "a\\\\..\\\\b",
        "a\\nb",
        "a\\tb",
        "a\\bb",
    ],
)
def test_an_unsafe_hit_path_makes_the_fast_path_step_aside(path):
    # Unsigned, and no ":" in any string but the time: only the path can make it step aside.
    hits = [
        {"path": "app/views/profile.py", "line": 15, "pattern": "p"},
        {"path": "web/é.jsx", "line": 4, "pattern": "q"},
    ]
    unsigned = json.dumps(document(hits=hits), ensure_ascii=False)
    fast = FastPath.from_ring(RING)
    assert fast.judge(unsigned.encode(), require_signature=False) is not None
    for safe in ("app/views/profile.py", "web/é.jsx"):  # the first hit, and one after it
        text = unsigned.replace(safe, path)
        assert fast.judge(text.encode(), require_signature=False) is None, text


def test_the_line_is_the_canonical_form_with_line_breaks_escaped():
    value = document(branch='a\u2028b\x85c \u2029 "q" \\ é')
    line = json_line(canonical_bytes(value))
    assert b"\n" not in line and len(line.decode().splitlines()) == 1
    assert json.loads(line) == value
    assert json_line(canonical_bytes(document())) == canonical_bytes(document())  # nothing to escape


MUTATIONS = [
    b"NaN", b"1e999", b"\\u0000", b"\\ud800", b"\\u003a", b"[", b"]", b"{", b"}", b'"', b"\\", b",", b":",
    b"null", b"true", b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\x00", b"\x7f", b"\t", b"\n", b"\x0c",
    b'"../x"', b'"/etc"', b'"C:\\\\x"', b'"~"', b"9" * 30, b"0.5", b"15.0", b"-1", b"\xef\xbb\xbf",
    b'"signature":null,', b'"hits":[],', b'"x":1,', b'"repo":"evil/x",', b'"line":2,',
    b"+00:00", b".123", b"2020", "é".encode(), "\u2028".encode(), b'"kid":"other",',
    b"\\n", b"\\t", b"\\b", b"\\/", b"\\\\", b"..", b"/", b"C:",
]  # fmt: skip


@pytest.mark.parametrize("require_hmac", [True, False], ids=["policy", "no-policy"])
def test_fast_and_full_paths_give_the_same_verdict_on_random_mutations(tmp_path, require_hmac):
    """The safety property of the fast path: on thousands of byte-level
    mutations of signed and unsigned artifacts, the verdict (reason or
    accepted line) is the same with and without it."""
    full, fast = policies(require_hmac)
    rng = random.Random(20261130)
    signed = RING.sign(document())
    other = KeyRing(signing_key="another-secret-0123456789abcdef0123", signing_kid="other").sign(document(hits=[]))
    unsigned = document(
        generated_at=(datetime.now(timezone.utc) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    )
    bases = [
        json.dumps(signed).encode(),
        json.dumps(signed, indent=2, ensure_ascii=False).encode(),
        json.dumps(other, separators=(",", ":"), ensure_ascii=False).encode(),
        json.dumps(unsigned, ensure_ascii=False).encode(),
    ]
    path = tmp_path / "mutant.json"
    agreed_accepted = 0
    for index in range(3000):
        data = bytearray(rng.choice(bases))
        if index % 4 == 0:  # whitespace between tokens only: still the same artifact
            at = rng.choice([i for i in range(len(data)) if data[i : i + 2] in (b", ", b": ", b",\n")] or [0])
            data[at + 1 : at + 1] = rng.choice([b" ", b"\n", b"\r\n", b"\t"])
        for _ in range(0 if index % 4 == 0 else rng.randrange(1, 4)):
            at = rng.randrange(max(1, len(data)))
            operation = rng.randrange(4)
            if operation == 0 and data:
                data[at] = rng.randrange(256)
            elif operation == 1:
                del data[at : at + rng.randrange(1, 12)]
            elif operation == 2:
                data[at:at] = rng.choice(MUTATIONS)
            else:
                data[at:at] = data[rng.randrange(len(data)) :][: rng.randrange(1, 40)]
        path.write_bytes(bytes(data))
        slow, quick = judge(str(path), full), judge(str(path), fast)
        assert quick == slow, bytes(data)
        agreed_accepted += slow.accepted
    assert agreed_accepted > 200  # the property was exercised on accepted artifacts too
