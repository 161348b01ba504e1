"""Slack notifications (SLACK_WEBHOOK_URL), for the permission fallback and the
canary rollback.

A notification is a courtesy on top of a gate's verdict, never part of it: the
text is redacted and escaped, the POST has a short timeout, and any failure is
a warning on stderr - ``notify`` never raises into the gate. The webhook URL
is a secret (it grants posting to the channel): it is registered for
redaction and never printed."""

from __future__ import annotations

import re

import requests

from tw_gates.core import runner
from tw_gates.core.redact import REDACTOR

DEFAULT_TIMEOUT_S = 10.0
MAX_TEXT_CHARS = 3000


def slack_escape(text: str) -> str:
    """Slack mrkdwn control characters as entities: ``<!channel>``, ``<@U123>``
    and ``<url|label>`` cannot be smuggled in through the text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def notify_slack(webhook_url: str | None, text: str, *, timeout: float = DEFAULT_TIMEOUT_S) -> bool:
    """Post ``text`` to a Slack incoming webhook. True when Slack accepted it;
    False (with a warning) on any failure; False silently when no URL is set."""
    if not webhook_url:
        return False
    try:
        return _post(webhook_url, text, timeout)
    except Exception as exc:  # a courtesy must never change the gate's verdict
        runner.warn(f"Slack notification not sent: {type(exc).__name__}")
        return False


def _post(webhook_url: str, text: str, timeout: float) -> bool:
    REDACTOR.register(webhook_url)
    if not re.match(r"^https?://", webhook_url):
        runner.warn("Slack notification not sent: SLACK_WEBHOOK_URL is not an http(s) URL")
        return False
    message = slack_escape(REDACTOR.redact(text))
    if len(message) > MAX_TEXT_CHARS:
        message = message[: MAX_TEXT_CHARS - 1] + "…"
    try:
        response = requests.post(webhook_url, json={"text": message}, timeout=timeout, allow_redirects=False)
    except requests.RequestException as exc:
        # The exception text can hold the URL; name the failure, not the request.
        runner.warn(f"Slack notification not sent: {type(exc).__name__}")
        return False
    if response.status_code != 200:
        runner.warn(f"Slack notification not sent: HTTP {response.status_code}")
        return False
    return True


def notify(settings: object, text: str, *, timeout: float = DEFAULT_TIMEOUT_S) -> bool:
    """``notify_slack`` with the URL from ``NotifySettings`` (or a subclass)."""
    secret = getattr(settings, "slack_webhook_url", None)
    return notify_slack(secret.get_secret_value() if secret else None, text, timeout=timeout)
