"""What the canary remembers between runs: its state, kept in the hidden block
of the dashboard issue (or a local file), signed with the canary's key.

The state is a cache. With the Prometheus source it holds no checks at all
(the window is rebuilt from Prometheus on every run); with the metrics-file
source it holds one check per interval bucket (a rerun in the same bucket
replaces it), bounded to the window. What makes it hard to forge or replay:

* it is signed (``typ`` canary-state, ``TW_CANARY_KEY``), so an edited block
  does not verify;
* it names the dashboard issue it was written to, so a block copied from
  another canary's issue is refused;
* it carries a sequence number that grows by one on every save and the time
  it was saved, so a block restored from the issue's edit history is older
  than the rollback recorded where no issue edit reaches (``finality``), and a
  block from the future, or with checks after the time it was saved, is
  refused;
* a ROLLBACK is recorded in it (``rollback``) and, signed on its own, in the
  rollback issue: while that record stands, no run promotes.

A block that fails any of these is not an error: the run warns and starts the
canary over (which can only delay a promotion)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tw_gates.canary.sources import MAX_INPUT_BYTES, Observation
from tw_gates.core import json_text
from tw_gates.core.fsio import FileTooLarge, atomic_write_json, read_bytes_limited
from tw_gates.core.settings import describe_validation_error
from tw_gates.core.signing import CANARY_ROLLBACK, KeyRing, SignatureError
from tw_gates.schemas.canary import ALL_METRICS

# The file source keeps one check per interval in an issue body (65,536 chars at most).
MAX_STATE_CHECKS = 600
STATE_VERSION: Final = "2"
# A state saved this far after the run reading it is from the future (clock skew allowed).
MAX_CLOCK_SKEW_S = 300

# One stored check: [bucket, latency_p50_ms, latency_p95_ms, error_rate_pct,
# baseline_mismatch_rate_pct, parse_count] (ALL_METRICS order). Arrays, not
# objects: 600 of them must fit in an issue body beside the dashboard.
StoredCheck = tuple[int, float | None, float | None, float | None, float | None, float | None]


class RollbackRecord(BaseModel):
    """A ROLLBACK as it was decided: kept in the state and, signed on its own
    (``typ`` canary-rollback), in the rollback issue it filed."""

    model_config = ConfigDict(extra="forbid")

    canary: str
    revision: str | None = None
    key: str = Field(description="decision.rollback_key: the revision and the first breached interval")
    at: int = Field(description="epoch seconds of the run that decided it")
    seq: int = Field(ge=1, description="the state's sequence number that run saved")
    reason: str = Field(max_length=1000)
    issue: int | None = Field(None, description="the rollback issue, once filed")


class CanaryState(BaseModel):
    """What the canary remembers between runs (the hidden block of the dashboard issue)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    state_version: Literal["2"] = STATE_VERSION
    name: str
    revision: str | None = None
    interval_s: int = Field(gt=0)
    started_at: int | None = Field(None, description="bucket of the canary's first check (file source)")
    checks: list[StoredCheck] = Field(default_factory=list, max_length=MAX_STATE_CHECKS)
    issue: str | None = Field(
        None, max_length=300, description="OWNER/REPO#N of the dashboard issue it is written to (None: a state file)"
    )
    seq: int = Field(0, ge=0, description="grows by one on every save")
    saved_at: int | None = Field(None, description="epoch seconds of the run that saved it")
    # Each rollback signal (dispatch, slack, issue) and the rollback
    # (decision.rollback_key) it went out for: the hourly reruns of a failed
    # canary do not dispatch and page again, and retry only what failed.
    rollback_sent: dict[str, str] = Field(default_factory=dict)
    rollback: RollbackRecord | None = None
    decision: Literal["PROMOTE", "HOLD", "ROLLBACK"] | None = None
    signature: dict[str, Any] | None = None

    def observations(self) -> dict[int, Observation]:
        return {int(c[0]): Observation(int(c[0]), dict(zip(ALL_METRICS, c[1:], strict=True))) for c in self.checks}


def fresh_state(name: str, revision: str | None, interval_s: int, *, seq: int = 0) -> CanaryState:
    return CanaryState(name=name, revision=revision, interval_s=interval_s, seq=seq)


def record_check(state: CanaryState, observation: Observation, *, window_s: int, window_end: int) -> CanaryState:
    """Put ``observation`` in its bucket (replacing a check already there) and
    drop checks that fell out of the window ending at ``window_end``."""
    kept = {c[0]: c for c in state.checks if window_end - window_s <= c[0] < window_end}
    if window_end - window_s <= observation.bucket < window_end:
        kept[observation.bucket] = cast(
            StoredCheck, (observation.bucket, *(observation.values.get(m) for m in ALL_METRICS))
        )
    started = state.started_at
    if started is None or observation.bucket < started:
        started = observation.bucket
    return state.model_copy(
        update={"checks": [kept[b] for b in sorted(kept)], "started_at": started, "signature": None}
    )


def state_document(state: CanaryState, ring: KeyRing | None) -> dict[str, Any]:
    """The state as JSON, signed when a signing key is configured."""
    document = state.model_dump(mode="json", exclude={"signature"})
    return ring.sign(document) if ring is not None and ring.can_sign else document


def rollback_document(record: RollbackRecord, ring: KeyRing | None) -> dict[str, Any]:
    """The rollback record as JSON for the rollback issue, signed as a canary-rollback."""
    document = record.model_dump(mode="json", exclude={"issue"})
    return ring.sign(document, CANARY_ROLLBACK) if ring is not None and ring.can_sign else document


def parse_rollback(document: Any, ring: KeyRing | None) -> tuple[RollbackRecord | None, str | None]:
    """The record in a rollback issue and, when it cannot be trusted, why."""
    if not isinstance(document, dict):
        return None, "no rollback record"
    if ring is not None and ring.kids:
        try:
            ring.verify(document, CANARY_ROLLBACK)
        except SignatureError as exc:
            return None, f"its rollback record does not verify ({exc.reason})"
    try:
        return RollbackRecord.model_validate({k: v for k, v in document.items() if k != "signature"}), None
    except ValidationError as exc:
        return None, describe_validation_error(exc, "rollback record")


class Context(BaseModel):
    """Who reads a state block: the canary it must belong to, and where and when it is read."""

    name: str
    revision: str | None
    interval_s: int
    issue: str | None = None  # OWNER/REPO#N of the dashboard issue it was read from
    now: int | None = None


def parse_state(document: Any, context: Context, ring: KeyRing | None) -> tuple[CanaryState, list[str]]:
    """The stored state if it is usable for this canary, else a fresh one and
    the reason (never an exception: a person may have edited the issue). A
    fresh state keeps the sequence of a block that verified, so it keeps growing."""
    start_over = fresh_state(context.name, context.revision, context.interval_s)
    if document is None:
        return start_over, []
    if not isinstance(document, dict):
        return start_over, ["canary state block is damaged (not a JSON object): starting the canary over"]
    if document.get("state_version") == "1":
        return start_over, ["canary state block of an earlier tw-gates (state version 1): starting the canary over"]
    warnings: list[str] = []
    if ring is not None and ring.kids:
        try:
            ring.verify(document)
        except SignatureError as exc:
            return start_over, [
                f"canary state block failed HMAC verification ({exc.reason}: {exc.message}): starting the canary over"
            ]
    elif document.get("signature") is not None:
        warnings.append("canary state block is signed but no TW_CANARY_KEY/TW_CANARY_KEYS is set to verify it")
    try:
        state = CanaryState.model_validate(document)
    except ValidationError as exc:
        return start_over, [f"{describe_validation_error(exc, 'canary state block')}: starting the canary over"]
    problem = _unusable(state, context)
    if problem:
        return start_over.model_copy(update={"seq": state.seq}), [f"{problem}: starting the canary over"]
    return state, warnings


def _unusable(state: CanaryState, context: Context) -> str | None:
    """Why a verified block does not belong to this canary, here, now."""
    if context.issue is not None and state.issue != context.issue:
        written = f"issue {state.issue}" if state.issue is not None else "no issue"
        return f"canary state block was written to {written}, not this dashboard {context.issue}: copied"
    if state.name != context.name:
        return f"canary state block belongs to canary {state.name!r}, not {context.name!r}"
    if context.revision is not None and state.revision != context.revision:
        return f"new canary revision {context.revision} (state was for {state.revision or 'no revision'})"
    if state.interval_s != context.interval_s:
        return f"canary interval changed ({state.interval_s}s -> {context.interval_s}s)"
    buckets = [c[0] for c in state.checks]
    if buckets != sorted(set(buckets)):
        return "canary state block has its checks out of order or twice: reordered"
    if state.saved_at is not None and buckets and buckets[-1] > state.saved_at:
        return "canary state block holds a check after the time it was saved: forged"
    if state.saved_at is not None and context.now is not None and state.saved_at > context.now + MAX_CLOCK_SKEW_S:
        return "canary state block was saved after this run's time: reordered, or a forged clock"
    return None


class FileStateStore:
    """The canary state in a local JSON file (instead of the dashboard issue)."""

    issue_ref: str | None = None

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> tuple[Any, list[str]]:
        if not self.path.exists():
            return None, []
        try:
            return json_text.loads(read_bytes_limited(self.path, MAX_INPUT_BYTES).decode("utf-8")), []
        except (OSError, ValueError, FileTooLarge) as exc:
            return None, [f"canary state file {self.path} is unreadable ({exc}): starting the canary over"]

    def save(self, report: Any, state: CanaryState, ring: KeyRing | None, previous_decision: str | None) -> str:
        atomic_write_json(self.path, state_document(state, ring))
        return f"state saved to {self.path}"
