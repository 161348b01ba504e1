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
    ring = KeyRing(signing_key="s3cret-key-value", signing_kid="k1")
    signed = ring.sign(DOC)
    assert signed["signature"]["alg"] == "HMAC-SHA256" and signed["signature"]["kid"] == "k1"
    expected = hmac.new(b"s3cret-key-value", independent_jcs(DOC), hashlib.sha256).hexdigest()
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
    ring = KeyRing(signing_key="s3cret-key-value", signing_kid="k1")
    signed = json.loads(json.dumps(ring.sign(DOC)))
    mutate(signed)
    with pytest.raises(SignatureError) as err:
        ring.verify(signed)
    assert err.value.reason == reason


def test_rotation_old_kid_verifies_while_listed():
    old = KeyRing(signing_key="old-secret-123", signing_kid="2025")
    signed = old.sign(DOC)
    both = KeyRing(
        {"2025": "old-secret-123", "2026": "new-secret-456"}, signing_key="new-secret-456", signing_kid="2026"
    )
    assert both.verify(signed) == "2025"
    only_new = KeyRing({"2026": "new-secret-456"})
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
        KeyRing({"a": "b"}).sign(DOC)
