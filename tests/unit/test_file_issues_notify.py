"""Slack notification (notify.py), shared by file-issues and the canary: a real
HTTP server on loopback stands in for the webhook."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tw_gates.core.notify import notify, notify_slack, slack_escape
from tw_gates.core.redact import REDACTOR


class _Hook(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.received.append((self.path, json.loads(body)))  # type: ignore[attr-defined]
        if self.server.delay:  # type: ignore[attr-defined]
            self.server.release.wait(self.server.delay)  # type: ignore[attr-defined]
        status = self.server.status  # type: ignore[attr-defined]
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def slack():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    server.received, server.status, server.delay = [], 200, 0.0
    server.release = threading.Event()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}/services/T000/B000/secretpart1234"
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()


def test_text_is_redacted_and_slack_controls_escaped(slack):
    REDACTOR.register("hunter2-password-value")
    assert notify_slack(slack.url, "<!channel> leaked hunter2-password-value & ghp_" + "Q" * 36 + " <@U123>")
    path, payload = slack.received[0]
    assert path.endswith("/secretpart1234")
    text = payload["text"]
    assert "hunter2" not in text and "ghp_" not in text and "<!channel>" not in text and "<@U123>" not in text
    assert text.startswith("&lt;!channel&gt;") and "&amp;" in text
    assert slack_escape("a<b>&c") == "a&lt;b&gt;&amp;c"


def test_failures_are_warnings_never_exceptions(slack, capsys):
    slack.status = 500
    assert notify_slack(slack.url, "x") is False
    assert notify_slack("http://127.0.0.1:9/nothing-listens-here", "x") is False
    assert notify_slack("ftp://example.invalid/hook", "x") is False
    assert notify_slack(None, "x") is False and notify_slack("", "x") is False
    err = capsys.readouterr().err
    assert "HTTP 500" in err and "ConnectionError" in err and "secretpart" not in err


def test_a_hanging_webhook_times_out(slack):
    slack.delay = 5.0
    assert notify_slack(slack.url, "x", timeout=0.3) is False


def test_settings_carry_the_url(slack):
    from tw_gates.core.settings import NotifySettings

    assert notify(NotifySettings(slack_webhook_url=slack.url), "from settings")
    assert notify(NotifySettings(), "no url") is False
    assert [p["text"] for _, p in slack.received] == ["from settings"]
