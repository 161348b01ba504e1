"""Redaction of secrets from everything the product writes or prints.

Two layers:

* exact formats that are always secrets (GitHub tokens, AWS access keys, Slack
  tokens and webhook URLs, JWTs, PEM private keys) plus every secret value this
  run knows (registered from settings and the environment) - applied to all
  output;
* the seed's heuristics (long base64-like runs, ``token=...``/``password: ...``
  assignments, bearer tokens) - applied with ``heuristics=True`` to free text
  copied from elsewhere (code snippets, consumer-supplied strings), because on
  our own structured output they would eat commit hashes and signatures.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable

REDACTED = "[REDACTED]"

# Values shorter than this are not redacted by value: masking "k1" or "true"
# everywhere would destroy the output without protecting anything real.
MIN_SECRET_LENGTH = 8

_ALWAYS = [
    # PEM private keys (RSA, EC, OPENSSH, ENCRYPTED, plain PKCS#8), whole block.
    re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----"),
    # GitHub tokens: classic PAT, OAuth, user-to-server, server-to-server, refresh.
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,255}\b"),
    # GitHub fine-grained PAT.
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{22,255}\b"),
    # AWS access key ids (long-term and temporary).
    re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b"),
    # AWS secret access key in an assignment.
    re.compile(r"(?i)(aws_secret_access_key\s*[=:]\s*[\"']?)[A-Za-z0-9/+=]{40}"),
    # Slack tokens (bot, user, app, config, refresh).
    re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b"),
    re.compile(r"\bxapp-[0-9]-[A-Za-z0-9-]{10,}\b"),
    # Slack incoming webhooks / workflow triggers.
    re.compile(r"https://hooks\.slack(?:-gov)?\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_\-]+"),
    # JSON Web Tokens (header.payload.signature, base64url).
    re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
]

# The seed's heuristics (see module docstring for when they apply).
_ASSIGNMENT = re.compile(
    r"(?i)\b(token|key|secret|password|passwd|auth|api_key|api_secret|access_key|private_key|client_secret)"
    r"(\s*[=:]\s*[\"']?)[\w\-+/.=]{12,}([\"']?)"
)
_BEARER = re.compile(r"(?i)\b(bearer|token)(\s+)[\w\-+/.=]{20,}")
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_\-]{40,}={0,2}")
_HEX = re.compile(r"[0-9a-fA-F]+")


def _base64_run(match: re.Match[str]) -> str:
    text = match.group(0)
    # Pure hex runs are hashes (commit ids, sha256 digests, signatures): they
    # identify things, they do not grant access. Keep them.
    if _HEX.fullmatch(text):
        return text
    return REDACTED


class Redactor:
    """Redacts known formats and every registered secret value."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        self._values_re: re.Pattern[str] | None = None

    def register(self, *values: str | None) -> list[str]:
        """Remember secret values; return the ones newly registered."""
        added = []
        with self._lock:
            for value in values:
                if not value:
                    continue
                for candidate in {value, value.strip()}:
                    if len(candidate) >= MIN_SECRET_LENGTH and candidate not in self._values:
                        self._values.add(candidate)
                        added.append(candidate)
            if added:
                # Longest first so a secret that contains another is removed whole.
                ordered = sorted(self._values, key=len, reverse=True)
                self._values_re = re.compile("|".join(re.escape(v) for v in ordered))
        return added

    def known_values(self) -> frozenset[str]:
        return frozenset(self._values)

    def redact(self, text: str, *, heuristics: bool = False) -> str:
        if not text:
            return text
        values_re = self._values_re
        if values_re is not None:
            text = values_re.sub(REDACTED, text)
        for pattern in _ALWAYS:
            if pattern.groups:
                text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
            else:
                text = pattern.sub(REDACTED, text)
        if heuristics:
            text = _ASSIGNMENT.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}{m.group(3)}", text)
            text = _BEARER.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
            text = _BASE64_RUN.sub(_base64_run, text)
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


# Environment variables whose values are secrets even when no setting names them.
_SECRET_ENV_NAME = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSWD|PRIVATE_KEY|WEBHOOK|_KEY$|_KEYS$)")


def secret_env_values(environ: dict[str, str] | None = None) -> Iterable[str]:
    """Values of environment variables that by their name hold secrets."""
    import json

    environ = dict(os.environ if environ is None else environ)
    for name, value in environ.items():
        if not value or not _SECRET_ENV_NAME.search(name.upper()):
            continue
        yield value
        if name.upper().endswith("_KEYS"):
            # TW_HMAC_KEYS is a JSON object of kid -> secret: each secret too.
            try:
                parsed = json.loads(value)
            except ValueError:
                continue
            if isinstance(parsed, dict):
                yield from (str(v) for v in parsed.values() if v)


# One redactor per process: every writer and printer goes through it.
REDACTOR = Redactor()


def redact(text: str, *, heuristics: bool = False) -> str:
    return REDACTOR.redact(text, heuristics=heuristics)
