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
    # Short registered secrets are redacted too (as whole words: "shortcut" stays).
    r = Redactor()
    assert r.register("hmac-key-for-tests", "short", None, "") == ["hmac-key-for-tests", "short"]
    assert r.redact("k=hmac-key-for-tests short shortcut") == f"k={REDACTED} {REDACTED} shortcut"


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


# ----------------------------------------------------------------- the formats of issue 14
# Each case: the text and the secret that must not survive (always-on: no
# heuristics, as for every written file).
GH40 = "0123456789abcdef0123456789abcdef01234567"
FORMATS = {
    "legacy GitHub token in a clone URL": (f"git clone https://{GH40}@github.com/acme/web.git", GH40),
    "legacy GitHub token as URL password": (f"https://x-access-token:{GH40}@github.com/acme/web", GH40),
    "legacy GitHub token assigned": (f"GITHUB_TOKEN={GH40}", GH40),
    "legacy GitHub token in YAML": (f"  github_token: '{GH40}'", GH40),
    "legacy GitHub token in a header": (f"Authorization: token {GH40}", GH40),
    "DB_PASSWORD=": ("DB_PASSWORD=hunter2-but-longer", "hunter2-but-longer"),
    "DB_PASSWORD= short": ("export DB_PASSWORD=s3cr3t!", "s3cr3t!"),
    "django SECRET_KEY": ('SECRET_KEY = "django-insecure-7x#k2@m!q9p$w^z&a"', "django-insecure-7x#k2@m!q9p$w^z&a"),
    "DD_API_KEY": ('DD_API_KEY = "0123456789abcdef0123456789abcdef"', "0123456789abcdef0123456789abcdef"),
    "api key in JSON": ('{"stripe_api_key": "pk-but-secret-value-123"}', "pk-but-secret-value-123"),
    "Google API key": ("key=AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7", "AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7"),
    "Stripe live key": ("stripe.api_key = sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc" * 4, "4eC39HqLyjWDarjtT1zdp7dc"),
    "Stripe restricted key": ("rk_live_" + "Ab12" * 10, "Ab12Ab12"),
    "Twilio API key": ("twilio SK" + "0123456789abcdef" * 2, "SK" + "0123456789abcdef" * 2),
    "postgres URL": ("DATABASE_URL=postgres://app_user:Pa55w0rd!@db.internal:5432/app", "Pa55w0rd!"),
    "mysql URL short password": ("mysql://root:pw12@localhost/db", "pw12"),
    "JWT eyJ": (SECRETS["jwt"], SECRETS["jwt"]),
    "JWT eyA header": (
        "Bearer-less eyAiYWxnIjogIkhTMjU2In0.eyAic3ViIjogIjEyMyJ9.c2lnbmF0dXJlLXZhbHVl",
        "c2lnbmF0dXJlLXZhbHVl",
    ),
    "JWT in a cookie": (
        "Cookie: session=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc123def456; path=/",
        "eyJzdWIiOiIxIn0",
    ),
    "GitHub classic PAT": (SECRETS["classic PAT"], SECRETS["classic PAT"]),
    "GitHub fine-grained PAT": (SECRETS["fine-grained"], SECRETS["fine-grained"]),
    "AWS key id": ("aws_access_key_id=AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
    "AWS secret key": ("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI"),
    "Slack bot token": (SECRETS["slack bot"], SECRETS["slack bot"]),
    "Slack webhook": (SECRETS["slack webhook"], "XXXXXXXXXXXXXXXX"),
    "PEM block": (SECRETS["pem"], "MIIEowIBAAKCAQEA"),
    "PEM truncated": ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n", "b3BlbnNzaC1rZXktdjEAAAAA"),
    "PEM in JSON": (
        '{"key": "-----BEGIN EC PRIVATE KEY-----\\nMHcCAQEEIBb\\n-----END EC PRIVATE KEY-----"}',
        "MHcCAQEEIBb",
    ),
    "GitLab token (detect-secrets)": ("token glpat-" + "a1B2c3D4e5F6g7H8i9J0", "a1B2c3D4e5F6g7H8i9J0"),
    "SendGrid key (detect-secrets)": ("SG." + "a" * 22 + "." + "b" * 43, "b" * 43),
    "npm token (detect-secrets)": ("//registry.npmjs.org/:_authToken=npm_" + "Z" * 36, "Z" * 36),
    "private_key in code": ('private_key = "not-a-pem-but-secret"', "not-a-pem-but-secret"),
}


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_issue_14_formats_are_redacted_from_every_written_text(name):
    text, secret = FORMATS[name]
    out = Redactor().redact(f"before {text} after")
    assert secret not in out, out
    assert REDACTED in out and out.startswith("before "), out
    if name != "PEM truncated":  # a key cut short is redacted to where base64 ends, and "after" is base64
        assert out.endswith(" after"), out


@pytest.mark.parametrize(
    "text",
    [
        "commit 0123456789abcdef0123456789abcdef01234567 on main",
        "sha256 " + "ab" * 32,
        '{"signature": {"alg": "HMAC-SHA256", "kid": "k1", "value": "' + "cd" * 32 + '"}}',
        "key=some-org-name/some-long-repository-name",
        "the Token Warehouse parser; tokens_total 12",
        '"hmac_key_ids": ["ci-2026", "ci-2027"], "password_hits": 3, "author": "Jane Q. Developer"',
        "https://github.com/acme/web/actions/runs/1 and git@github.com:acme/web.git",
        "set TW_HMAC_KEY (and TW_HMAC_KEY_ID); no signing key: set TW_HMAC_KEY",
        "GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }} and password: ${DB_PASSWORD}",
        "src/tokenizer.py:12 passport_view.py secret_santa.md",
        "cannot read acme/secret: GitHub answered 404: Not Found (the token cannot see it)",
    ],
)
def test_our_own_structured_output_survives(text):
    assert Redactor().redact(text) == text


def test_written_json_stays_valid_json():
    import json

    r = Redactor()
    r.register("abc", 'quote"in\\side-secret')
    document = {
        "line": 12,
        "ok": True,
        "path": "src/a.py",
        "pw": "DB_PASSWORD=hunter2-longer",
        "q": 'quote"in\\side-secret',
        "k": "abc",
    }
    text = json.dumps(document, indent=2)
    out = json.loads(r.redact(text))
    assert out["line"] == 12 and out["ok"] is True and out["path"] == "src/a.py"
    assert "hunter2" not in out["pw"] and out["q"] == REDACTED and out["k"] == REDACTED


def test_short_values_that_are_numbers_or_literals_are_not_registered():
    r = Redactor()
    assert r.register("1", "true", "42", "off") == []
    assert r.register("tok", min_length=8) == []  # from the environment: 8 characters at least


def test_json_nested_too_deep_is_a_value_error_not_a_recursion_error():
    from tw_gates.core import json_text

    with pytest.raises(ValueError, match="nested too deeply"):
        json_text.loads("[" * 200_000)
    assert json_text.loads('{"a": [1]}') == {"a": [1]}
