"""The ingest gate's rejection reasons (a stable contract: they name the
quarantine reason file, the output line and the metric label) and the
exception that carries one."""

from __future__ import annotations

MAX_DEPTH = 64

# Every rejection reason, in check order. Stable: metric labels and
# quarantine reason files use them; docs/ingest.md explains each.
REASONS: dict[str, str] = {
    "not_a_regular_file": "not a regular file: a symbolic link is never followed, a FIFO, device or socket "
    "never opened",
    "unreadable": "the file could not be read",
    "too_large": "the file is larger than --max-bytes (refused before it is read)",
    "missing_provenance": "no provenance file from collect beside it, and --require-provenance (the central path)",
    "bad_provenance": "the provenance file beside it is unreadable, invalid, or describes other bytes",
    "invalid_utf8": "the bytes are not strict UTF-8, or a string holds an unpaired surrogate escape",
    "nesting_too_deep": f"arrays/objects nested more than {MAX_DEPTH} deep",
    "invalid_json": "not a JSON document",
    "duplicate_key": "an object has the same key twice (parsers disagree on which one wins)",
    "non_finite_number": "NaN, Infinity, or a number that overflows to infinity",
    "unknown_schema_version": "schema_version is not one this gate knows",
    "schema_violation": "the document does not match the consumer artifact schema",
    "unsafe_path": "a hit path is absolute, contains '..', NUL or a control character",
    "repo_mismatch": "the artifact's repo is not the repository it was collected from",
    "missing_signature": "no signature, and POLICY_REQUIRE_HMAC=true or the registry binds the consumer to key ids",
    "malformed_signature": "the signature member is not {alg, kid, value: 64 lowercase hex}",
    "unsupported_alg": "the signature alg is not HMAC-SHA256",
    "unknown_kid": "the signature's key id is not among the verification keys",
    "bad_signature": "the HMAC does not match the artifact (tampered, or signed with another key)",
    "kid_not_allowed": "signed with a key id the registry does not bind to this consumer",
    "expired": "generated_at is older than --max-age",
    "future_timestamp": "generated_at is more than 5 minutes in the future (replay or forged clock)",
    "duplicate": "the same artifact (repo, commit, generated_at) was already accepted in this run: judged once",
    "internal_error": "the gate failed on this artifact (a bug); rejected rather than let through",
}


class Rejection(Exception):
    def __init__(self, reason: str, message: str, *, size: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.size = size  # the file's size, when it was not read (too_large)


def show(text: str, limit: int = 120) -> str:
    """Untrusted text (a consumer's path, a file name) made safe for one log
    line: control characters escaped, length capped."""
    shown = text.encode("unicode_escape", "backslashreplace").decode("ascii") if not text.isprintable() else text
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."
