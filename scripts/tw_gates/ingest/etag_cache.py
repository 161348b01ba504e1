"""Conditional REST requests for collect: the ETag and body of every answer,
and each consumer's last extracted artifact, kept in one JSON file between
runs. GitHub does not count a 304 against the quota."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from tw_gates.core import json_text
from tw_gates.core.errors import ExternalServiceError, TwGatesError
from tw_gates.core.fsio import atomic_write_bytes
from tw_gates.core.github_client import describe_github_error
from tw_gates.ingest.artifact_zip import ConsumerError
from tw_gates.ingest.safe_read import NotRegular, TooLarge, read_no_follow

CACHE_VERSION = 1
MAX_CACHE_BYTES = 1 << 30


class ETagCache:
    """ETags and bodies of earlier answers, plus each consumer's last
    artifact zip with its sha256 and GitHub's digest, in one JSON file (read
    without following a link). Entries not used by a run are dropped when it
    saves, so the file tracks the registry."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.responses: dict[str, dict[str, Any]] = {}
        self.artifacts: dict[str, dict[str, Any]] = {}
        self._used_responses: set[str] = set()
        self._used_artifacts: set[str] = set()
        self.warning: str | None = None
        if path is not None and os.path.lexists(path):
            try:
                data = json_text.loads(read_no_follow(str(path), MAX_CACHE_BYTES))
                if data.get("version") != CACHE_VERSION:
                    raise ValueError(f"version {data.get('version')!r}")
                self.responses = dict(data.get("responses") or {})
                self.artifacts = dict(data.get("artifacts") or {})
            except (OSError, ValueError, AttributeError, TypeError, NotRegular, TooLarge) as exc:
                # A bad cache costs quota, never correctness: start afresh.
                self.warning = f"ETag cache {path} ignored ({exc}); every consumer is fetched afresh"
                self.responses, self.artifacts = {}, {}

    def response(self, key: str) -> dict[str, Any] | None:
        self._used_responses.add(key)
        return self.responses.get(key)

    def remember(self, key: str, etag: str, body: Any) -> None:
        self._used_responses.add(key)
        self.responses[key] = {"etag": etag, "body": body}

    def cached_zip(self, repo: str, artifact_id: int, digest: str | None) -> tuple[bytes | None, str]:
        """The zip of ``artifact_id`` kept from an earlier run, only if its
        bytes still have the sha256 recorded when it was downloaded and, where
        GitHub gives the artifact's ``digest``, that digest: (zip, "") or
        (None, why not). The cache is a file anyone who can write the cache
        storage can edit; it saves quota, it is never trusted."""
        self._used_artifacts.add(repo)
        entry = self.artifacts.get(repo)
        if not isinstance(entry, dict) or entry.get("artifact_id") != artifact_id:
            return None, ""
        if not isinstance(entry.get("zip"), str) or not isinstance(entry.get("sha256"), str):
            return None, "the cache entry is from an older version"
        try:
            blob = base64.b64decode(entry["zip"], validate=True)
        except ValueError:
            return None, "the cache entry is not base64"
        actual = hashlib.sha256(blob).hexdigest()
        if not hmac.compare_digest(actual, entry["sha256"]):
            return None, "the cached zip does not match the sha256 recorded at its download (poisoned or corrupt)"
        if digest is not None and not hmac.compare_digest(f"sha256:{actual}", digest):
            return None, f"the cached zip does not match GitHub's digest {digest[:23]}... (poisoned or stale)"
        return blob, ""

    def remember_artifact(self, repo: str, artifact_id: int, digest: str | None, zip_bytes: bytes) -> None:
        self._used_artifacts.add(repo)
        self.artifacts[repo] = {
            "artifact_id": artifact_id,
            "digest": digest,
            "sha256": hashlib.sha256(zip_bytes).hexdigest(),
            "zip": base64.b64encode(zip_bytes).decode("ascii"),
        }

    def save(self, *, keep_unused: bool = False) -> None:
        if self.path is None:
            return
        responses = (
            self.responses if keep_unused else {k: v for k, v in self.responses.items() if k in self._used_responses}
        )
        artifacts = (
            self.artifacts if keep_unused else {k: v for k, v in self.artifacts.items() if k in self._used_artifacts}
        )
        data = {"version": CACHE_VERSION, "responses": responses, "artifacts": artifacts}
        atomic_write_bytes(self.path, json.dumps(data, separators=(",", ":"), sort_keys=True).encode("utf-8"))


class ConditionalGitHub:
    """GETs through the core client's PyGithub requester (auth, retries,
    counting), with If-None-Match from the cache."""

    def __init__(self, client, cache: ETagCache) -> None:
        self.client = client
        self.cache = cache
        self.not_modified = 0

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        key = path + ("?" + urlencode(sorted((params or {}).items())) if params else "")
        cached = self.cache.response(key)
        headers = {"If-None-Match": cached["etag"]} if cached else {}
        url = f"{self.client.api_url}{path}"
        try:
            status, response_headers, body = self.client.gh.requester.requestJson(
                "GET", url, parameters=params, headers=headers
            )
        except TwGatesError:
            raise
        except Exception as exc:  # requests/urllib3 errors after retries
            raise ConsumerError(describe_github_error(exc)) from None
        if status == 304 and cached:
            self.not_modified += 1
            return cached["body"]
        if status == 401:
            raise ExternalServiceError("GitHub answered 401 Bad credentials: check GITHUB_TOKEN")
        if status >= 400:
            raise ConsumerError(_describe_status(status, body, path))
        try:
            data = json_text.loads(body) if body else None
        except ValueError:
            raise ConsumerError(f"GET {path}: GitHub answered {status} with a body that is not JSON") from None
        etag = response_headers.get("etag")
        if etag:
            self.cache.remember(key, etag, data)
        return data


def _describe_status(status: int, body: str, path: str) -> str:
    try:
        message = (json_text.loads(body) or {}).get("message", "")
    except (ValueError, AttributeError):
        message = ""
    hint = ""
    if status == 404:
        hint = " (missing, or the token cannot see it: GitHub answers 404 for a private repository without access)"
    elif status == 403:
        hint = " (the token needs actions: read on the consumer repository)"
    return f"GET {path}: GitHub answered {status} {message}".rstrip() + hint
