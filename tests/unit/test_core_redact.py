import pytest

from tw_gates.core.redact import REDACTED, Redactor, secret_env_values

SECRETS = {
    "classic PAT": "ghp_" + "A1b2C3d4E5" * 4,
    "oauth": "gho_" + "x" * 36,
    "user-to-server": "ghu_" + "Y" * 36,
    "server-to-server": "ghs_" + "7" * 36,
    "refresh": "ghr_" + "Q" * 76,
    "fine-grained": "github_pat_11ABCDEFG0" + "z" * 60,
    "aws key id": "AKIAIOSFODNN7EXAMPLE",
    "slack bot": "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
    "slack webhook": "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXX",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "pem": "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nabc\n-----END RSA PRIVATE KEY-----",
}


@pytest.mark.parametrize("name", sorted(SECRETS))
def test_always_redacted_formats(name):
    text = f"before {SECRETS[name]} after"
    out = Redactor().redact(text)
    assert SECRETS[name] not in out and REDACTED in out
    assert out.startswith("before ") and out.endswith(" after")


def test_aws_secret_assignment():
    out = Redactor().redact("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    assert "wJalr" not in out and out.startswith("aws_secret_access_key = ")


def test_registered_values_and_short_values():
    r = Redactor()
    assert r.register("hmac-key-for-tests", "short", None, "") == ["hmac-key-for-tests"]
    assert r.redact("k=hmac-key-for-tests short") == f"k={REDACTED} short"


def test_hashes_survive_but_heuristics_catch_base64_and_assignments():
    r = Redactor()
    sha = "a" * 40
    digest = "0123456789abcdef" * 4
    text = f"commit {sha} sha256 {digest}"
    assert r.redact(text, heuristics=True) == text
    blob = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlq"
    assert blob not in r.redact(f"data {blob}", heuristics=True)
    assert r.redact('password = "hunter2hunter2"', heuristics=True) == f'password = "{REDACTED}"'
    assert "Bearer " + REDACTED in r.redact("Authorization: Bearer abcdefghijklmnopqrstuvwxyz012345", heuristics=True)
    # Without heuristics our own structured text is left alone.
    assert r.redact("key=some-org-name/some-long-repository-name") == "key=some-org-name/some-long-repository-name"


def test_redact_obj_walks_structures():
    r = Redactor()
    r.register("super-secret-value")
    out = r.redact_obj({"a": ["super-secret-value", 1], "super-secret-value": None})
    assert out == {"a": [REDACTED, 1], REDACTED: None}


def test_secret_env_values_by_name():
    env = {
        "GITHUB_TOKEN": "t0ken-value-1",
        "TW_HMAC_KEYS": '{"k1": "s1-secret-a", "k2": "s2-secret-b"}',
        "HOME": "/root",
        "TW_HMAC_KEY_ID": "k1",
        "SLACK_WEBHOOK_URL": "https://hooks.slack.com/x",
    }
    values = set(secret_env_values(env))
    assert {"t0ken-value-1", "s1-secret-a", "s2-secret-b", "https://hooks.slack.com/x"} <= values
    assert "/root" not in values and "k1" not in values
