import hashlib
import hmac
import json

import pytest

from tw_gates.core.errors import UsageError
from tw_gates.core.signing import KeyRing, SignatureError, canonical_bytes, parse_keys_json

DOC = {"b": 1, "a": "é", "n": 1.0e21, "list": [True, None, 0.1], "nested": {"z": 1, "y": "\u2028"}}


def independent_jcs(value) -> bytes:
    """A second RFC 8785 serialiser for the subset used here, written from the
    spec (sorted keys by UTF-16 code units, no whitespace, ES6 numbers)."""
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda kv: kv[0].encode("utf-16-be"))
        return b"{" + b",".join(independent_jcs(k) + b":" + independent_jcs(v) for k, v in items) + b"}"
    if isinstance(value, list):
        return b"[" + b",".join(independent_jcs(v) for v in value) + b"]"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).encode("utf-8")
    if value is True:
        return b"true"
    if value is False:
        return b"false"
    if value is None:
        return b"null"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value)).encode()
    if isinstance(value, float) and abs(value) >= 1e21:
        mantissa, exp = f"{value:e}".split("e")
        mantissa = mantissa.rstrip("0").rstrip(".")
        return f"{mantissa}e+{int(exp)}".encode()
    return repr(value).encode()


def test_canonical_form_matches_the_standard():
    assert canonical_bytes(DOC) == independent_jcs(DOC)
    assert canonical_bytes({"b": 2, "a": 1}) == b'{"a":1,"b":2}'


def test_sign_then_verify_and_signature_covers_everything_but_itself():
    ring = KeyRing(signing_key="s3cret-key-value-0123456789abcdef", signing_kid="k1")
    signed = ring.sign(DOC)
    assert signed["signature"]["alg"] == "HMAC-SHA256" and signed["signature"]["kid"] == "k1"
    expected = hmac.new(b"s3cret-key-value-0123456789abcdef", independent_jcs(DOC), hashlib.sha256).hexdigest()
    assert signed["signature"]["value"] == expected
    assert ring.verify(signed) == "k1"
    tampered = {**signed, "b": 2}
    with pytest.raises(SignatureError) as err:
        ring.verify(tampered)
    assert err.value.reason == "bad_signature"


@pytest.mark.parametrize(
    "mutate, reason",
    [
        (lambda d: d.pop("signature"), "missing_signature"),
        (lambda d: d.__setitem__("signature", "abc"), "malformed_signature"),
        (lambda d: d["signature"].__setitem__("alg", "HMAC-SHA1"), "unsupported_alg"),
        (lambda d: d["signature"].__setitem__("kid", "nope"), "unknown_kid"),
        (lambda d: d["signature"].__setitem__("value", "XYZ"), "malformed_signature"),
    ],
)
def test_each_signature_failure_has_its_reason(mutate, reason):
    ring = KeyRing(signing_key="s3cret-key-value-0123456789abcdef", signing_kid="k1")
    signed = json.loads(json.dumps(ring.sign(DOC)))
    mutate(signed)
    with pytest.raises(SignatureError) as err:
        ring.verify(signed)
    assert err.value.reason == reason


def test_rotation_old_kid_verifies_while_listed():
    old = KeyRing(signing_key="old-secret-123-0123456789abcdefgh", signing_kid="2025")
    signed = old.sign(DOC)
    both = KeyRing(
        {"2025": "old-secret-123-0123456789abcdefgh", "2026": "new-secret-456-0123456789abcdefgh"},
        signing_key="new-secret-456-0123456789abcdefgh",
        signing_kid="2026",
    )
    assert both.verify(signed) == "2025"
    only_new = KeyRing({"2026": "new-secret-456-0123456789abcdefgh"})
    with pytest.raises(SignatureError) as err:
        only_new.verify(signed)
    assert err.value.reason == "unknown_kid"


def test_keys_json_errors_are_clear():
    assert parse_keys_json('{"a": "x"}') == {"a": "x"}
    assert parse_keys_json("") == {}
    with pytest.raises(UsageError, match="not valid JSON"):
        parse_keys_json("{nope")
    with pytest.raises(UsageError, match="JSON object of key id"):
        parse_keys_json('["x"]')


def test_signing_without_key_is_a_usage_error():
    with pytest.raises(UsageError, match="TW_HMAC_KEY"):
        KeyRing({"a": "b" * 32}).sign(DOC)


# -- every signature says what it signs (each document type, its own key ring) ----------------

CONSUMER_KEY = "consumer-held-key-0123456789abcdef"  # a consumer repository holds this one
CENTRAL_KEY = "central-baseline-key-0123456789abcd"


def _capture_document() -> dict:
    return {
        "schema_version": "1.0",
        "captured_at": "2026-01-01T00:00:00Z",
        "tool_version": "3.0.0",
        "target": "builtin:safe",
        "latency_source": "in-process",
        "corpus": "builtin:v1",
        "corpus_sha256": "0" * 64,
        "corpus_documents": 1,
        "corpus_bytes": 10,
        "warmup": 0,
        "runs": 1,
        "latency": {"samples": 1, "p50_ms": 1.0, "p95_ms": 1.0, "p99_ms": 1.0, "mean_ms": 1.0, "max_ms": 1.0},
        "peak_rss_mib": 10.0,
        "host": {"platform": "linux", "python": "3.11", "cpus": 2},
    }


def test_a_baseline_signed_with_a_consumers_key_is_refused(cli, tmp_path):
    """The attack: ingest.yml verified the performance baseline with the consumers'
    TW_HMAC_KEYS, so any consumer could sign a baseline the audit accepted."""
    from tw_gates.schemas.baseline import PerfCapture

    document = _capture_document()
    PerfCapture.model_validate(document)  # a valid capture: only the key is wrong
    forged = KeyRing(signing_key=CONSUMER_KEY, signing_kid="c1").sign(document)
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(forged))
    env = {"TW_HMAC_KEYS": json.dumps({"c1": CONSUMER_KEY}), "TW_BASELINE_KEYS": json.dumps({"perf": CENTRAL_KEY})}
    code, _, err = cli("baseline", "verify", path, env=env)
    assert code == 6, err
    assert "signature rejected (untyped_signature)" in err
    assert "names no document type" in err


def test_short_keys_are_refused_with_a_clear_error():
    with pytest.raises(UsageError, match=r"TW_HMAC_KEY: the key is 16 bytes; an HMAC-SHA256 key must be at least 32"):
        KeyRing(signing_key="s3cret-key-value", signing_kid="k1")
    with pytest.raises(UsageError, match=r"TW_HMAC_KEYS: key 'old' is 5 bytes; .* at least 32 bytes") as err:
        KeyRing({"old": "short", "new": "n" * 32})
    assert "short" not in str(err.value).replace("'old' is 5 bytes", "")
    assert KeyRing({"k": "k" * 32}).kids == ["k"]


def test_a_typed_signature_covers_its_type_and_key_id():
    from tw_gates.core.signing import PHASE_UNLOCK

    key = "phase-key-0123456789abcdef0123456789"
    ring = KeyRing(signing_key=key, signing_kid="p1", doc_type=PHASE_UNLOCK)
    signed = ring.sign(DOC)
    assert {k: v for k, v in signed["signature"].items() if k != "value"} == {
        "alg": "HMAC-SHA256",
        "typ": "phase-unlock",
        "kid": "p1",
    }
    covered = {**DOC, "signature": {"alg": "HMAC-SHA256", "typ": "phase-unlock", "kid": "p1"}}
    assert signed["signature"]["value"] == hmac.new(key.encode(), independent_jcs(covered), hashlib.sha256).hexdigest()
    assert ring.verify(signed) == "p1"
    for member, value, reason in [("typ", "canary-state", "wrong_type"), ("extra", "x", "malformed_signature")]:
        changed = json.loads(json.dumps(signed))
        changed["signature"][member] = value
        with pytest.raises(SignatureError) as err:
            ring.verify(changed)
        assert err.value.reason == reason


def test_one_key_in_two_rings_still_never_verifies_one_type_as_another():
    from tw_gates.core.signing import CANARY_STATE, PERFORMANCE_BASELINE, PHASE_UNLOCK

    key = "one-key-for-everything-0123456789abcd"
    state = KeyRing(signing_key=key, signing_kid="k", doc_type=CANARY_STATE).sign(DOC)
    for doc_type in (PHASE_UNLOCK, PERFORMANCE_BASELINE):
        with pytest.raises(SignatureError) as err:
            KeyRing(signing_key=key, signing_kid="k", doc_type=doc_type).verify(state)
        assert err.value.reason == "wrong_type"
        assert f"the signature is for a canary state, not a {doc_type.title}" in err.value.message
    # And a central document never passes as a consumer artifact.
    with pytest.raises(SignatureError) as err:
        KeyRing({"k": key}).verify(state)
    assert err.value.reason == "wrong_type"


def test_a_central_ring_may_not_share_a_key_with_the_consumers(cli, tmp_path):
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(_capture_document()))
    env = {"TW_HMAC_KEYS": json.dumps({"c1": CONSUMER_KEY}), "TW_BASELINE_KEY": CONSUMER_KEY}
    code, _, err = cli("baseline", "sign", path, env=env)
    assert code == 1
    assert (
        "TW_BASELINE_KEYS/TW_BASELINE_KEY holds a key that is also a consumer key (TW_HMAC_KEYS/TW_HMAC_KEY): "
        "a consumer could sign a performance baseline" in err
    )
    assert CONSUMER_KEY not in err
    code, out, err = cli("baseline", "sign", path, env={**env, "TW_BASELINE_KEY": CENTRAL_KEY})
    assert code == 0, err
    code, out, err = cli("baseline", "verify", path, env={"TW_BASELINE_KEYS": json.dumps({"default": CENTRAL_KEY})})
    assert code == 0 and "signature valid (key 'default')" in out
