"""Collect the newest self-audit artifact of every registered consumer
through the GitHub REST API, for the ingest gate.

For each consumer in the registry (or in this shard of it): list its Actions
artifacts with the registry's name, take the newest one that has not expired
and comes from a successful run of the consumer's own default branch (not a
pull request: a fork can name its branch ``main`` too), download its zip and
extract the one JSON file in it, safely (names checked, sizes capped before
and while reading; the zip must match GitHub's ``digest``). Beside each file
goes its provenance (``<file>.provenance``): the repository, run, workflow,
event, branch and artifact it came from, from the REST API only, never from
the artifact. The collector carries bytes and says where they came from;
judging them is the ingest gate's job.

Every GET is conditional: the ETag and body of each answer are kept in the
``--etag-cache`` file between runs, and GitHub does not count a 304 against
the quota, so a consumer whose artifacts did not change costs no quota and
no download. The cache is never trusted: a cached zip is used only while it
matches the sha256 recorded at its download and GitHub's digest."""

from __future__ import annotations

import contextlib
import hashlib
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from tw_gates.core import metrics
from tw_gates.core.errors import ExternalServiceError, UsageError
from tw_gates.core.fsio import atomic_write_bytes
from tw_gates.core.github_client import client_from_settings
from tw_gates.core.settings import GitHubSettings, env
from tw_gates.core.units import parse_size
from tw_gates.ingest.artifact_zip import ConsumerError, extract_artifact_json
from tw_gates.ingest.etag_cache import ConditionalGitHub, ETagCache
from tw_gates.ingest.provenance import sidecar_path
from tw_gates.schemas.consumer import ProvenanceSidecar, utc_now_iso
from tw_gates.schemas.registry import Consumer, load_registry

__all__ = ["CollectSettings", "ConsumerError", "ConsumerOutcome", "collect", "extract_artifact_json"]

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
# A run's zip may also hold the SARIF file; what is taken out of it is capped separately.
ZIP_FACTOR = 4
# Newest artifacts looked at per consumer before giving up (one page).
ARTIFACTS_PER_PAGE = 100
MAX_RUNS_CHECKED = 10
PULL_REQUEST_EVENTS = frozenset({"pull_request", "pull_request_target"})

Status = Literal["downloaded", "unchanged", "missing", "error"]


class CollectSettings(GitHubSettings):
    registry: Path = Field(Path("consumer_registry.yml"), validation_alias=env("TW_REGISTRY", "registry"))
    out: Path = Field(Path("collected"), validation_alias=env("TW_COLLECT_OUT", "out"))
    shard: str | None = Field(None, validation_alias=env("TW_COLLECT_SHARD", "shard"))
    etag_cache: Path | None = Field(None, validation_alias=env("TW_ETAG_CACHE", "etag_cache"))
    max_bytes: int = Field(DEFAULT_MAX_BYTES, gt=0, validation_alias=env("TW_COLLECT_MAX_BYTES", "max_bytes"))
    manifest: Path | None = Field(None, validation_alias=env("TW_COLLECT_MANIFEST", "manifest"))

    @field_validator("max_bytes", mode="before")
    @classmethod
    def _size(cls, value: object) -> object:
        return parse_size(value) if isinstance(value, str) else value

    @field_validator("shard")
    @classmethod
    def _shard(cls, value: str | None) -> str | None:
        if value is not None:
            parse_shard(value)
        return value


def parse_shard(text: str) -> tuple[int, int]:
    """'2/4' -> (2, 4): the second of four shards (1-based)."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise UsageError(f"not a shard: {text!r} (use I/N with 1 <= I <= N, e.g. 1/4)")
    return int(match.group(1)), int(match.group(2))


def in_shard(repo: str, shard: tuple[int, int] | None) -> bool:
    """A consumer's shard depends on its name only: adding a consumer never
    moves the others (their ETag caches stay warm)."""
    if shard is None:
        return True
    index, count = shard
    return int(hashlib.sha256(repo.lower().encode()).hexdigest(), 16) % count == index - 1


class ConsumerOutcome(BaseModel):
    repo: str
    status: Status
    detail: str
    artifact_id: int | None = None
    run_id: int | None = None
    file: str | None = None
    # Where the artifact came from (the REST API's answers), as written beside the file.
    provenance: dict | None = None


class CollectResult(BaseModel):
    outcomes: list[ConsumerOutcome] = Field(default_factory=list)
    requests: int = 0
    not_modified: int = 0
    shard: str | None = None

    def count(self, status: Status) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    def describe(self) -> str:
        parts = ", ".join(f"{self.count(s)} {s}" for s in ("downloaded", "unchanged", "missing", "error"))
        shard = f" (shard {self.shard})" if self.shard else ""
        return (
            f"collect: {len(self.outcomes)} consumers{shard}: {parts}; {self.requests} API requests, "
            f"{self.not_modified} answered 304 (no quota)"
        )


def output_name(repo: str) -> str:
    """``owner__name.json``: repository names are [A-Za-z0-9._-], safe as a file name."""
    owner, _, name = repo.partition("/")
    return f"{owner}__{name}.json"


def _choose(api: ConditionalGitHub, consumer: Consumer, branch: str) -> tuple[dict, dict] | str:
    """(artifact, run) of the newest usable artifact, or why there is none."""
    repo = consumer.repo
    listing = api.get(f"/repos/{repo}/actions/artifacts", {"name": consumer.artifact, "per_page": ARTIFACTS_PER_PAGE})
    artifacts = (listing or {}).get("artifacts") or []
    checked, seen = 0, 0
    for artifact in artifacts:
        run_info = artifact.get("workflow_run") or {}
        if artifact.get("name") != consumer.artifact or artifact.get("expired"):
            continue
        seen += 1
        if run_info.get("head_branch") != branch or run_info.get("head_repository_id") != run_info.get("repository_id"):
            continue
        if checked >= MAX_RUNS_CHECKED:
            break
        checked += 1
        run = api.get(f"/repos/{repo}/actions/runs/{int(run_info['id'])}") or {}
        if (
            run.get("status") == "completed"
            and run.get("conclusion") == "success"
            and run.get("event") not in PULL_REQUEST_EVENTS
            and run.get("head_branch") == branch
        ):
            return artifact, run
    if not seen:
        return f"no {consumer.artifact!r} artifact"
    return f"none of the {seen} unexpired {consumer.artifact!r} artifact(s) comes from a successful run on {branch}"


def _run_repository(repo: str, run: dict) -> str:
    """The repository the run belongs to, as the API says: it must be the one asked about."""
    full_name = (run.get("repository") or {}).get("full_name") or repo
    if full_name.lower() != repo.lower():
        raise ConsumerError(
            f"run {run.get('id')} belongs to {full_name}, not {repo} (renamed or transferred? update the registry)"
        )
    return repo


def _payload(
    api: ConditionalGitHub, cache: ETagCache, repo: str, artifact: dict, settings: CollectSettings
) -> tuple[bytes, Status, str]:
    """The artifact JSON, from the cache when its zip checks out, else downloaded."""
    artifact_id = int(artifact["id"])
    digest = artifact.get("digest") if isinstance(artifact.get("digest"), str) else None
    cached, refused = cache.cached_zip(repo, artifact_id, digest)
    if cached is not None:
        return (
            extract_artifact_json(cached, settings.max_bytes),
            "unchanged",
            "as last time (from the cache, no download)",
        )
    zip_bytes = api.client.download(artifact["archive_download_url"], max_bytes=settings.max_bytes * ZIP_FACTOR)
    actual = "sha256:" + hashlib.sha256(zip_bytes).hexdigest()
    if digest is not None and actual != digest:
        raise ConsumerError(f"the download of artifact {artifact_id} does not match GitHub's digest {digest}")
    payload = extract_artifact_json(zip_bytes, settings.max_bytes)
    cache.remember_artifact(repo, artifact_id, digest, zip_bytes)
    note = f"cache entry refused: {refused}; downloaded afresh" if refused else "downloaded"
    return payload, "downloaded", note


def provenance_of(repo: str, artifact: dict, run: dict, payload: bytes, file: str) -> ProvenanceSidecar:
    """Where the payload came from, from the REST API's answers only."""
    return ProvenanceSidecar(
        file=file,
        repo=_run_repository(repo, run),
        run_id=int(run["id"]),
        run_attempt=run.get("run_attempt") if isinstance(run.get("run_attempt"), int) else None,
        workflow_path=run.get("path") if isinstance(run.get("path"), str) else None,
        event=run.get("event") if isinstance(run.get("event"), str) else None,
        head_branch=run.get("head_branch") if isinstance(run.get("head_branch"), str) else None,
        head_sha=run.get("head_sha") if isinstance(run.get("head_sha"), str) else None,
        artifact_id=int(artifact["id"]),
        artifact_name=str(artifact.get("name")),
        artifact_digest=artifact.get("digest") if isinstance(artifact.get("digest"), str) else None,
        sha256=hashlib.sha256(payload).hexdigest(),
        collected_at=utc_now_iso(),
    )


def _forget(target: Path) -> None:
    """A consumer with nothing collected this run leaves no file from an earlier one."""
    for stale in (target, Path(sidecar_path(str(target)))):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()


def collect_consumer(
    api: ConditionalGitHub, consumer: Consumer, settings: CollectSettings, cache: ETagCache
) -> ConsumerOutcome:
    repo = consumer.repo
    target = settings.out / output_name(repo)
    _forget(target)
    branch = consumer.default_branch or (api.get(f"/repos/{repo}") or {}).get("default_branch")
    if not branch:
        raise ConsumerError(f"cannot tell the default branch of {repo}")
    chosen = _choose(api, consumer, branch)
    if isinstance(chosen, str):
        return ConsumerOutcome(repo=repo, status="missing", detail=chosen)
    artifact, run = chosen
    payload, status, how = _payload(api, cache, repo, artifact, settings)
    origin = provenance_of(repo, artifact, run, payload, target.name)
    atomic_write_bytes(target, payload)
    atomic_write_bytes(sidecar_path(str(target)), origin.model_dump_json(indent=2).encode("utf-8"))
    detail = (
        f"artifact {origin.artifact_id} from run {origin.run_id} ({origin.workflow_path}, {origin.event}, "
        f"{(origin.head_sha or '')[:12]}): {how}"
    )
    return ConsumerOutcome(
        repo=repo,
        status=status,
        detail=detail,
        artifact_id=origin.artifact_id,
        run_id=origin.run_id,
        file=str(target),
        provenance=origin.model_dump(mode="json", exclude={"file"}),
    )


def collect(
    settings: CollectSettings,
    *,
    on_outcome: Callable[[ConsumerOutcome], None] | None = None,
    progress: Callable[[str], None] | None = None,
) -> CollectResult:
    """Collect every consumer of the registry (this shard of it) into
    ``settings.out``; per-consumer failures are outcomes, not exceptions."""
    registry = load_registry(settings.registry)
    shard = parse_shard(settings.shard) if settings.shard else None
    consumers = [c for c in registry.consumers if in_shard(c.repo, shard)]
    settings.out.mkdir(parents=True, exist_ok=True)
    cache = ETagCache(settings.etag_cache)
    if cache.warning and progress:
        progress(f"warning: {cache.warning}")
    client = client_from_settings(settings)
    api = ConditionalGitHub(client, cache)
    result = CollectResult(shard=settings.shard)
    last_progress = time.monotonic()
    try:
        for index, consumer in enumerate(consumers, 1):
            try:
                outcome = collect_consumer(api, consumer, settings, cache)
            except ConsumerError as exc:
                outcome = ConsumerOutcome(repo=consumer.repo, status="error", detail=str(exc))
            except ExternalServiceError as exc:
                if "401" in str(exc):
                    raise  # bad credentials: every other consumer would fail the same way
                outcome = ConsumerOutcome(repo=consumer.repo, status="error", detail=str(exc))
            result.outcomes.append(outcome)
            if on_outcome:
                on_outcome(outcome)
            if progress and time.monotonic() - last_progress >= 5.0:
                last_progress = time.monotonic()
                progress(f"collect: {index}/{len(consumers)} consumers")
    finally:
        # What was learnt stays learnt, even when a later consumer aborted the run.
        cache.save(keep_unused=len(result.outcomes) < len(consumers))
        result.requests, result.not_modified = client.calls.total, api.not_modified
        _record_metrics(result, client)
        client.close()
    return result


def _record_metrics(result: CollectResult, client) -> None:
    sink = metrics.current()
    consumers = sink.counter("tw_gates_collect_consumers_total")
    for status in ("downloaded", "unchanged", "missing", "error"):
        if result.count(status):
            consumers.labels(result=status).inc(result.count(status))
    conditional = sink.counter("tw_gates_collect_conditional_requests_total")
    if result.not_modified:
        conditional.labels(result="not_modified").inc(result.not_modified)
    client.publish_metrics()
