"""Parse-performance capture: what ``tw-gates baseline capture`` writes.

The same document is the *baseline* (captured once, on a known-good parser,
then signed with ``tw-gates baseline sign``) and the *current* measurement the
audit compares against it. Both must come from the same target on the same
corpus (``target`` and ``corpus_sha256`` equal), or the comparison means
nothing and the audit refuses it."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from tw_gates.core.signing import TypedSignature


class LatencyStats(BaseModel):
    """Per-document parse latency over every measured run, in milliseconds."""

    model_config = ConfigDict(extra="forbid")

    samples: int = Field(ge=1)
    p50_ms: float = Field(ge=0)
    p95_ms: float = Field(ge=0)
    p99_ms: float = Field(ge=0)
    mean_ms: float = Field(ge=0)
    max_ms: float = Field(ge=0)


class HostInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    platform: str
    python: str
    cpus: int | None = None


class PerfCapture(BaseModel):
    model_config = ConfigDict(extra="forbid", title="tw-gates parse performance capture 1.0")

    schema_version: Literal["1.0"] = "1.0"
    captured_at: AwareDatetime
    tool_version: str
    target: str = Field(min_length=1, description="builtin:NAME or the command line of the parser")
    latency_source: Literal["in-process", "reported", "wall"] = Field(
        description="in-process: timed around the parse call (builtin targets); reported: the target's own "
        "`tw-gates-parse-ms:` line; wall: the process's wall time (includes start-up)"
    )
    corpus: str = Field(description="builtin:NAME or the corpus folder as given")
    corpus_sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="digest of the documents' paths and contents")
    corpus_documents: int = Field(ge=1)
    corpus_bytes: int = Field(ge=0)
    warmup: int = Field(ge=0, description="unmeasured parses of each document before measuring")
    runs: int = Field(ge=1, description="measured parses of each document")
    latency: LatencyStats
    peak_rss_mib: float = Field(ge=0, description="peak resident set size of the parser process, MiB")
    host: HostInfo
    signature: TypedSignature | None = None
