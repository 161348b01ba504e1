from datetime import timedelta

import pytest

from tw_gates.core.errors import UsageError
from tw_gates.core.redact import REDACTOR
from tw_gates.core.settings import GitHubSettings, SigningSettings, load_settings
from tw_gates.core.units import parse_duration, parse_size


def test_env_then_flags(monkeypatch):
    monkeypatch.setenv("GITHUB_API_URL", "http://127.0.0.1:9/")
    monkeypatch.setenv("GITHUB_TOKEN", "env-token-value-1")
    s = load_settings(GitHubSettings)
    assert s.github_api_url == "http://127.0.0.1:9" and s.github_token.get_secret_value() == "env-token-value-1"
    assert "env-token-value-1" in REDACTOR.known_values()
    s = load_settings(GitHubSettings, {"github_api_url": "http://x", "github_token": None})
    assert s.github_api_url == "http://x" and s.github_token.get_secret_value() == "env-token-value-1"


def test_empty_env_means_unset_and_errors_are_one_line(monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", "")
    assert load_settings(GitHubSettings).github_token is None
    monkeypatch.setenv("TW_GITHUB_RETRIES", "many")
    with pytest.raises(UsageError) as err:
        load_settings(GitHubSettings)
    assert "github_retries" in str(err.value).lower() or "TW_GITHUB_RETRIES" in str(err.value)
    assert "\n" not in str(err.value)


def test_masks_secrets_on_a_runner(monkeypatch, capsys):
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("TW_HMAC_KEY", "a-fresh-signing-key-9")
    load_settings(SigningSettings)
    assert "::add-mask::a-fresh-signing-key-9" in capsys.readouterr().out


def test_key_ring_from_env(monkeypatch):
    monkeypatch.setenv(
        "TW_HMAC_KEYS", '{"old": "old-secret-xx-0123456789abcdefghij", "new": "new-secret-yy-0123456789abcdefghij"}'
    )
    monkeypatch.setenv("TW_HMAC_KEY", "new-secret-yy-0123456789abcdefghij")
    monkeypatch.setenv("TW_HMAC_KEY_ID", "new")
    ring = load_settings(SigningSettings).key_ring()
    assert ring.kids == ["new", "old"] and ring.signing_kid == "new"
    monkeypatch.setenv("TW_HMAC_KEYS", "{bad")
    with pytest.raises(UsageError, match="TW_HMAC_KEYS is not valid JSON"):
        load_settings(SigningSettings).key_ring()


@pytest.mark.parametrize(
    "text, seconds", [("7d", 604800), ("48h", 172800), ("1h30m", 5400), ("90", 90), ("250ms", 0.25)]
)
def test_durations(text, seconds):
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    "text, size", [("10MiB", 10 * 1024**2), ("500KB", 500_000), ("1024", 1024), ("1.5GiB", int(1.5 * 1024**3))]
)
def test_sizes(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("bad", ["7 days ago", "h", "", "-1d"])
def test_bad_durations(bad):
    with pytest.raises(UsageError, match="not a duration"):
        parse_duration(bad)


def test_bad_size():
    with pytest.raises(UsageError, match="not a size"):
        parse_size("ten megs")
