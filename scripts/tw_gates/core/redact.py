"""Redaction of secrets from everything the product writes or prints.

Three layers, applied to all output:

* every secret value this run knows (registered from settings, key rings and
  the environment). Values of 8 characters or more are removed wherever they
  appear; shorter ones (an HMAC key "s3cr3t") wherever they stand as a whole
  word, so a short key never leaks and yet "k1" inside "k10" survives;
* secret *formats*, found by detectors (``core.redact_formats``): our own for
  the formats whose whole extent we must know (GitHub, AWS, Slack, Google,
  Stripe, Twilio, PEM blocks, JWTs including ``eyA``-headed ones, credentials
  in URLs, ``Authorization`` values, ``*_TOKEN=`` assignments), and
  detect-secrets' plugins (Yelp's maintained detector set: its keyword
  detector for ``DB_PASSWORD=``, ``SECRET_KEY = "..."``, ``DD_API_KEY: ...``
  in every quoting style it knows, and its regex plugins for GitLab,
  SendGrid, npm, PyPI, OpenAI, Square, Azure, Mailchimp, Artifactory...);
* with ``heuristics=True``, for free text copied from elsewhere (code
  snippets, consumer-supplied strings): long base64-like runs and any
  ``key=``/``token ...`` value. On our own structured output these would eat
  commit hashes and signatures, so they stay opt-in.

Speed: redaction runs on every written file (an audit report of 100,000 hits
is ~18 MB of JSON). A detector never scans the whole text with a regex: each
names literal *triggers* ("ghp_", "AKIA", "://", "password"...), found with
str.find, and its regex runs only on the line (or block) around a trigger.
Text without triggers costs a few substring searches. detect-secrets itself is
imported the first time one of its triggers shows up (its import takes a few
hundred milliseconds, which ``tw-gates --help`` should not pay).
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterable

from tw_gates.core import json_text
from tw_gates.core.redact_formats import DETECTORS, HEURISTIC_DETECTORS, REDACTED, Detector, find_spans

__all__ = ["MIN_SECRET_LENGTH", "REDACTED", "REDACTOR", "Redactor", "redact", "secret_env_values"]

# Registered values shorter than this are redacted as whole words only (see
# the module docstring); values guessed from the environment by their
# variable's name must be at least this long to be registered at all.
MIN_SECRET_LENGTH = 8

_WORD_CHAR = re.compile(r"[A-Za-z0-9]")
# Short values that no one can tell apart from numbers and literals in our
# own structured output ("1", "true"): redacting those as words would break
# every JSON file written; such a value is no secret worth the name.
_NOT_A_SECRET = re.compile(r"\d{1,7}|true|false|null|yes|no|on|off|none", re.IGNORECASE)


class Redactor:
    """Redacts registered secret values and every secret format it detects."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        # Longest first, so a secret that contains another is removed whole.
        self._long: tuple[str, ...] = ()
        self._short: tuple[tuple[str, re.Pattern[str]], ...] = ()

    def register(self, *values: str | None, min_length: int = 1) -> list[str]:
        """Remember secret values; return the ones newly registered. Values
        from settings and key rings are registered whatever their length;
        callers guessing from variable names pass ``min_length``."""
        added = []
        with self._lock:
            for value in values:
                if not value:
                    continue
                for candidate in _forms(value):
                    if len(candidate) < min_length or _NOT_A_SECRET.fullmatch(candidate):
                        continue
                    if candidate not in self._values:
                        self._values.add(candidate)
                        added.append(candidate)
            if added:
                ordered = sorted(self._values, key=len, reverse=True)
                self._long = tuple(v for v in ordered if len(v) >= MIN_SECRET_LENGTH)
                self._short = tuple((v, _whole_word(v)) for v in ordered if len(v) < MIN_SECRET_LENGTH)
        return added

    def known_values(self) -> frozenset[str]:
        return frozenset(self._values)

    def redact(self, text: str, *, heuristics: bool = False) -> str:
        if not text:
            return text
        text = self._redact_values(text)
        text = _redact_detected(text, DETECTORS)
        if heuristics:
            text = _redact_detected(text, HEURISTIC_DETECTORS)
        return text

    def _redact_values(self, text: str) -> str:
        for value in self._long:
            if value in text:
                text = text.replace(value, REDACTED)
        for value, pattern in self._short:
            if value in text:
                text = pattern.sub(REDACTED, text)
        return text

    def redact_obj(self, obj: object, *, heuristics: bool = False) -> object:
        """Redact every string inside a JSON-like structure (keys included)."""
        if isinstance(obj, str):
            return self.redact(obj, heuristics=heuristics)
        if isinstance(obj, dict):
            return {
                self.redact(str(k), heuristics=heuristics): self.redact_obj(v, heuristics=heuristics)
                for k, v in obj.items()
            }
        if isinstance(obj, (list, tuple)):
            return [self.redact_obj(v, heuristics=heuristics) for v in obj]
        return obj


def _forms(value: str) -> set[str]:
    """The value, stripped, and as it appears inside a JSON string (quotes,
    backslashes and control characters escaped): written JSON must lose it too."""
    forms = {value, value.strip()}
    forms |= {json.dumps(form, ensure_ascii=False)[1:-1] for form in list(forms)}
    return {form for form in forms if form}


def _whole_word(value: str) -> re.Pattern[str]:
    # The lookbehind sits after the literal so the regex engine can search for
    # the literal first (a leading lookaround disables that).
    before = r"(?<![A-Za-z0-9])" if _WORD_CHAR.match(value[0]) else ""
    after = r"(?![A-Za-z0-9])" if _WORD_CHAR.match(value[-1]) else ""
    if not before:
        return re.compile(re.escape(value) + after)
    return re.compile(re.escape(value) + rf"(?<![A-Za-z0-9]{re.escape(value)})" + after)


def _redact_detected(text: str, detectors: tuple[Detector, ...]) -> str:
    spans = find_spans(text, detectors)
    if not spans:
        return text
    out, pos = [], 0
    for start, end in spans:
        out.append(text[pos:start])
        out.append(REDACTED)
        pos = end
    out.append(text[pos:])
    return "".join(out)


# Environment variables whose values are secrets even when no setting names them.
_SECRET_ENV_NAME = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSWD|PRIVATE_KEY|WEBHOOK|_KEY$|_KEYS$)")


def secret_env_values(environ: dict[str, str] | None = None) -> Iterable[str]:
    """Values of environment variables that by their name hold secrets."""
    environ = dict(os.environ if environ is None else environ)
    for name, value in environ.items():
        if not value or not _SECRET_ENV_NAME.search(name.upper()):
            continue
        yield value
        if name.upper().endswith("_KEYS"):
            # TW_HMAC_KEYS is a JSON object of kid -> secret: each secret too.
            try:
                parsed = json_text.loads(value)
            except ValueError:
                continue
            if isinstance(parsed, dict):
                yield from (str(v) for v in parsed.values() if v)


# One redactor per process: every writer and printer goes through it.
REDACTOR = Redactor()


def redact(text: str, *, heuristics: bool = False) -> str:
    return REDACTOR.redact(text, heuristics=heuristics)
