"""The secret formats the redactor detects, and the engine that finds them fast.

A ``Detector`` names literal *triggers* and a function that returns the spans
of secrets in a short window of text around a trigger (the trigger's line, or
a block for multi-line secrets). The engine finds triggers with str.find (in
an ASCII-lowered copy for case-insensitive ones), so a regex never scans a
whole 18 MB report; the spans of every detector are merged and replaced.

Our own detectors cover the formats whose exact extent we must know; the
detect-secrets plugins (imported on first use) add its keyword detector and
the token formats we do not spell out ourselves. A span a plugin reports is
widened to the whole token it sits in: its regexes detect (``sk_live_`` plus
24 characters), they do not delimit (live keys are longer)."""

from __future__ import annotations

import importlib
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

REDACTED = "[REDACTED]"

Span = tuple[int, int]


@dataclass(frozen=True)
class Detector:
    name: str
    triggers: tuple[str, ...]
    find: Callable[[str], Iterable[Span]]
    lowered: bool = False  # triggers are lowercase, searched case-insensitively
    multiline: bool = False  # the window is a block around the trigger, not its line
    before: int = 512  # how far the window reaches back from the trigger
    after: int = 4096  # ... and forward


# ----------------------------------------------------------------------------- engine


# Texts up to this size (a path, a table cell, a log line: most of what is
# redacted) are first searched once for every trigger at once.
_SMALL = 4096


def find_spans(text: str, detectors: tuple[Detector, ...]) -> list[Span]:
    """Every secret span the detectors find in ``text``, merged and sorted."""
    if len(text) <= _SMALL:
        detectors = _triggered(text, detectors)
        if not detectors:
            return []
    lowered: str | None = None
    spans: list[Span] = []
    for detector in detectors:
        if detector.lowered:
            if lowered is None:
                lowered = text.lower() if text.isascii() else text.translate(_ASCII_LOWER)
            haystack = lowered
        else:
            haystack = text
        for start, end in _windows(text, haystack, detector):
            window = text[start:end]
            spans.extend((start + a, start + b) for a, b in detector.find(window) if b > a)
    return _merge(spans)


_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}


def _triggered(text: str, detectors: tuple[Detector, ...]) -> tuple[Detector, ...]:
    """The detectors with a trigger in ``text`` (and those without triggers):
    a substring test per distinct trigger, cheaper on short text than any regex."""
    exact, folded, always, any_exact, any_folded = _trigger_index(detectors)
    lowered = text.lower()
    # One C-level search each says whether any trigger is there at all (the usual answer: no).
    if not any_exact.search(text) and not any_folded.search(lowered):
        return tuple(detectors[i] for i in always)
    hits = set(always)
    for trigger, which in exact:
        if trigger in text:
            hits.update(which)
    for trigger, which in folded:
        if trigger in lowered:
            hits.update(which)
    return tuple(detectors[i] for i in sorted(hits))


_Triggers = tuple[tuple[str, tuple[int, ...]], ...]
_Index = tuple[_Triggers, _Triggers, tuple[int, ...], re.Pattern[str], re.Pattern[str]]
_NEVER = "(?!)"
# By identity: hashing a tuple of detectors on every call would cost more than the search.
_indexes: dict[int, tuple[tuple[Detector, ...], _Index]] = {}


def _trigger_index(detectors: tuple[Detector, ...]) -> _Index:
    cached = _indexes.get(id(detectors))
    if cached is not None and cached[0] is detectors:
        return cached[1]
    exact: dict[str, list[int]] = {}
    folded: dict[str, list[int]] = {}
    for i, detector in enumerate(detectors):
        for trigger in detector.triggers:
            (folded if detector.lowered else exact).setdefault(trigger, []).append(i)
    index = (
        tuple((t, tuple(w)) for t, w in exact.items()),
        tuple((t, tuple(w)) for t, w in folded.items()),
        tuple(i for i, d in enumerate(detectors) if not d.triggers),
        re.compile("|".join(re.escape(t) for t in exact) or _NEVER),
        re.compile("|".join(re.escape(t) for t in folded) or _NEVER),
    )
    _indexes[id(detectors)] = (detectors, index)
    return index


def _windows(text: str, haystack: str, detector: Detector) -> Iterator[Span]:
    """The windows around each trigger, each once (overlapping ones merged)."""
    if not detector.triggers:  # no trigger: the whole text is one window
        yield 0, len(text)
        return
    hits = sorted(i for trigger in detector.triggers for i in _occurrences(haystack, trigger))
    window_end = -1
    for i in hits:
        if i < window_end:
            continue
        if detector.multiline:
            start, end = max(0, i - detector.before), min(len(text), i + detector.after)
        else:
            line_start = text.rfind("\n", 0, i) + 1
            line_end = text.find("\n", i)
            line_end = len(text) if line_end < 0 else line_end
            start, end = max(line_start, i - detector.before), min(line_end, i + detector.after)
        window_end = end
        yield start, end


def _occurrences(haystack: str, needle: str) -> Iterator[int]:
    i = haystack.find(needle)
    while i >= 0:
        yield i
        i = haystack.find(needle, i + 1)


def _merge(spans: list[Span]) -> list[Span]:
    merged: list[Span] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _regex(*patterns: str, flags: int = 0, group: str | None = None) -> Callable[[str], Iterator[Span]]:
    """Spans of every match (of the named group, when given) of the patterns."""

    # Compiled on first use (re caches them): importing this module, which
    # every command does, costs no regex compilation.
    def find(window: str) -> Iterator[Span]:
        for pattern in patterns:
            for match in re.finditer(pattern, window, flags):
                if group and match.group(group) is not None:
                    yield match.span(group)
                elif not group:
                    yield match.span()

    return find


# ----------------------------------------------------------------------------- our own

_B = r"(?<![A-Za-z0-9_])"  # no letter, digit or underscore before
_E = r"(?![A-Za-z0-9_])"  # ... or after
# A value in an assignment: up to the closing quote, whitespace, comma or semicolon.
_VALUE = r"(?P<v>[^\s\"'`,;&]{8,})"
_PLACEHOLDER = re.compile(
    r"\$\{\{.*|\$\{?[A-Za-z_][A-Za-z0-9_]*\}?|<[^>]*>|\*+|x{4,}|\.{3}|\[REDACTED\].*|(?:true|false|null|none)",
    re.IGNORECASE,
)


def _assignments(*names: str) -> Callable[[str], Iterator[Span]]:
    """``NAME = value`` / ``"name": "value"`` / ``name: value`` where NAME holds
    one of ``names`` anywhere (DB_PASSWORD, GITHUB_TOKEN, x-auth-token): \\b
    would not split at "_", so the name is matched as a whole identifier."""
    pattern = (
        rf"(?i)[A-Za-z0-9_.-]*(?:{'|'.join(names)})[A-Za-z0-9_.-]*[\"'\]]{{0,2}}\s*(?:=>|:=|[=:])\s*[\"'`]?{_VALUE}"
    )

    def find(window: str) -> Iterator[Span]:
        for match in re.finditer(pattern, window):
            if not _PLACEHOLDER.fullmatch(match.group("v")):
                yield match.span("v")

    return find


def _pem(window: str) -> Iterator[Span]:
    """A private key block, or what is left of one (truncated: header and body)."""
    yield from (m.span() for m in _PEM.finditer(window))


_PEM_LABEL = r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
_PEM = re.compile(
    _PEM_LABEL + r"(?:[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|[A-Za-z0-9+/=\s\\:,-]*)"
)

_JWT_HEAD = r"(?:eyJ|eyA|ewo|ew0|ewk)"  # base64url of '{"', '{ ', '{\n', '{\r\n', '{\t'
_URL_USERINFO = re.compile(
    r"[A-Za-z][A-Za-z0-9+.-]{1,30}://(?:(?P<user>[^\s:/?#@\"'<>\\]*):(?P<pw>[^\s/?#@\"'<>\\]+)"
    r"|(?P<tok>[A-Za-z0-9_.~-]{20,}))@"
)


def _url_credentials(window: str) -> Iterator[Span]:
    """``scheme://user:password@host`` (the password) and
    ``https://<token>@github.com`` (a token used as the user name)."""
    for match in _URL_USERINFO.finditer(window):
        yield match.span("pw") if match.group("pw") is not None else match.span("tok")


OWN = (
    Detector("private key", ("-----BEGIN",), _pem, multiline=True, before=0, after=64 * 1024),
    Detector(
        "GitHub token",
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
        _regex(_B + r"gh[pousr]_[A-Za-z0-9_]{30,255}" + _E, _B + r"github_pat_[A-Za-z0-9_]{22,255}" + _E),
    ),
    Detector(
        "AWS access key id",
        ("AKIA", "ASIA", "ABIA", "ACCA", "AGPA", "AIDA", "AROA", "ANPA", "ANVA", "AIPA", "A3T"),
        _regex(
            r"(?<![A-Z0-9])(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}(?![A-Z0-9])"
        ),
    ),
    Detector("AWS secret key", ("aws",), _assignments("aws_?secret", "secret_?access_?key"), lowered=True),
    Detector(
        "Slack token",
        ("xox", "xapp-", "hooks.slack"),
        _regex(
            r"xox[abposr]-[A-Za-z0-9-]{10,}",
            r"xapp-[0-9]-[A-Za-z0-9-]{10,}",
            r"https://hooks\.slack(?:-gov)?\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_\-]+",
        ),
    ),
    Detector(
        "JSON Web Token",
        ("eyJ", "eyA", "ewo", "ew0", "ewk"),
        _regex(
            r"(?<![A-Za-z0-9_-])" + _JWT_HEAD + r"[A-Za-z0-9_-]{5,}={0,2}\.e[wy][A-Za-z0-9_-]{5,}={0,2}"
            r"(?:\.[A-Za-z0-9_-]*={0,2})*"
        ),
    ),
    Detector("Google API key", ("AIza",), _regex(r"AIza[0-9A-Za-z_-]{35,64}(?![0-9A-Za-z_-])")),
    Detector(
        "Stripe key",
        ("k_live_", "k_test_"),
        _regex(_B + r"[sr]k_(?:live|test)_[0-9A-Za-z]{10,247}" + _E),
    ),
    Detector("Twilio API key", ("SK",), _regex(r"(?<![A-Za-z0-9])SK[0-9a-fA-F]{32}(?![A-Za-z0-9])")),
    Detector("credentials in a URL", ("://",), _url_credentials),
    Detector(
        "Authorization value",
        ("token ", "bearer ", "basic "),
        _regex(r"(?i)\b(?:token|bearer|basic)\s+(?P<v>[A-Za-z0-9_.~+/-]{20,}={0,2})", group="v"),
        lowered=True,
    ),
    Detector(
        "token assignment",
        ("token", "credential", "auth", "_pat", "apikey"),
        _assignments("token", "credential", r"auth(?!or)", r"_pat\b", "apikey"),
        lowered=True,
    ),
)


# ----------------------------------------------------------------------------- detect-secrets

_PLUGIN_LOCK = threading.Lock()
_plugins: dict[str, Any] = {}


def _plugin(module: str, name: str, **kwargs: Any) -> Any:
    """A detect-secrets plugin instance, imported once, on first use."""
    key = f"{module}.{name}"
    with _PLUGIN_LOCK:
        plugin = _plugins.get(key)
        if plugin is None:
            plugin = getattr(importlib.import_module(f"detect_secrets.plugins.{module}"), name)(**kwargs)
            _plugins[key] = plugin
    return plugin


_TOKEN_CHAR = re.compile(r"[A-Za-z0-9_\-+/=]")
_STRIP = " \t\"'`=:,;()[]{}"


def _values_to_spans(window: str, values: Iterable[str], *, widen: bool) -> Iterator[Span]:
    for raw in values:
        # A token has no whitespace; a plugin's greedy ".*" may run on to the line's end.
        value = (raw.split() or [""])[0].strip(_STRIP) if widen else raw.strip(_STRIP)
        if len(value) < 4 or _PLACEHOLDER.fullmatch(value):
            continue
        start = window.find(value)
        while start >= 0:
            end = start + len(value)
            if widen:  # to the whole token: a plugin's regex may match only its start
                while start and _TOKEN_CHAR.match(window[start - 1]):
                    start -= 1
                while end < len(window) and _TOKEN_CHAR.match(window[end]):
                    end += 1
            yield start, end
            start = window.find(value, end)


def _plugin_detector(module: str, name: str) -> Callable[[str], Iterator[Span]]:
    def find(window: str) -> Iterator[Span]:
        yield from _values_to_spans(window, _plugin(module, name).analyze_string(window), widen=True)

    return find


# A keyword (within a name: db_password, "api_key") followed by ':' or '=' (also
# ':=', '=>'), or by a quoted value and ';'; or a '==' comparison somewhere.
_BINDS = re.compile(r"(?i)(?:key|pass|pwd|secret|contrase)[\w.\-'\"\[\]]{0,40}\s*(?:[:=]|\"[^\"\n]*\";)|==")


def _keywords(window: str) -> Iterator[Span]:
    """detect-secrets' keyword detector, in both of its grammars: config files
    (``password = value``, quotes optional) and code (quotes required)."""
    # Every grammar of the detector binds the keyword to a value (``_BINDS``;
    # "G2: 1/1 passed" binds nothing): without one there is nothing to find,
    # and no reason to import detect-secrets (0.2 s, and requests with it).
    if not _BINDS.search(window):
        return
    keyword = importlib.import_module("detect_secrets.plugins.keyword")
    plugin = _plugin("keyword", "KeywordDetector")
    quoted = plugin.analyze_string(window, denylist_regex_to_group=keyword.QUOTES_REQUIRED_DENYLIST_REGEX_TO_GROUP)
    yield from _values_to_spans(window, quoted, widen=False)
    # The config grammar (quotes optional) takes the rest of the line as the
    # value: keep its first word, and only if it looks like no word of prose
    # ("secret: GitHub answered 404" names a repository, it assigns nothing).
    unquoted = plugin.analyze_string(window, denylist_regex_to_group=keyword.CONFIG_DENYLIST_REGEX_TO_GROUP)
    words = (v.split()[0] for v in unquoted if v.split())
    yield from _values_to_spans(window, (w for w in words if len(w) >= 12 or not w.isalpha()), widen=False)


# The keyword detector's names (detect_secrets.plugins.keyword.DENYLIST), as
# lowercase substrings to trigger on: api_key, auth_key, db_pass, password...
_KEYWORD_TRIGGERS = ("key", "pass", "pwd", "secret", "contrase")

LIBRARY = (
    Detector("detect-secrets keyword", _KEYWORD_TRIGGERS, _keywords, lowered=True),
    Detector(
        "GitLab token",
        ("glpat-", "gldt-", "glft-", "glsoat-", "glrt-", "GR1348941", "glcbt-", "glimt-", "glptt-", "glagent-"),
        _plugin_detector("gitlab_token", "GitLabTokenDetector"),
    ),
    Detector("SendGrid key", ("SG.",), _plugin_detector("sendgrid", "SendGridDetector")),
    Detector("npm token", ("_authToken", "npm_"), _plugin_detector("npm", "NpmDetector")),
    Detector("PyPI token", ("pypi-Ag",), _plugin_detector("pypi_token", "PypiTokenDetector")),
    Detector("OpenAI key", ("T3BlbkFJ",), _plugin_detector("openai", "OpenAIDetector")),
    Detector("Square OAuth secret", ("sq0csp-",), _plugin_detector("square_oauth", "SquareOAuthDetector")),
    Detector("Azure storage key", ("AccountKey=",), _plugin_detector("azure_storage_key", "AzureStorageKeyDetector")),
    Detector("Mailchimp key", ("-us",), _plugin_detector("mailchimp", "MailchimpDetector")),
    Detector("Artifactory token", ("AKC", "AP"), _plugin_detector("artifactory", "ArtifactoryDetector")),
    Detector("Twilio key", ("AC", "SK"), _plugin_detector("twilio", "TwilioKeyDetector")),
    Detector("Stripe key (detect-secrets)", ("k_live_",), _plugin_detector("stripe", "StripeDetector")),
    Detector("Telegram bot token", (":AA",), _plugin_detector("telegram_token", "TelegramBotTokenDetector")),
)

DETECTORS = OWN + LIBRARY


# ----------------------------------------------------------------------------- heuristics (opt-in)

_HEX = re.compile(r"[0-9a-fA-F]+")
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_\-]{40,}={0,2}")


def _base64_runs(window: str) -> Iterator[Span]:
    # Pure hex runs are hashes (commit ids, sha256 digests, signatures): they
    # identify things, they do not grant access. Keep them.
    for match in _BASE64_RUN.finditer(window):
        if not _HEX.fullmatch(match.group(0)):
            yield match.span()


HEURISTIC_DETECTORS = (
    Detector(
        "key or token assignment",
        ("token", "key", "secret", "password", "passwd", "auth"),
        _assignments("token", "key", "secret", "password", "passwd", "auth"),
        lowered=True,
    ),
    Detector(
        "bearer value",
        ("bearer", "token"),
        _regex(r"(?i)\b(?:bearer|token)\s+(?P<v>[\w\-+/.=]{20,})", group="v"),
        lowered=True,
    ),
    # A long run has no trigger: the whole (short, free) text is the window.
    Detector("long base64-like run", (), _base64_runs),
)
