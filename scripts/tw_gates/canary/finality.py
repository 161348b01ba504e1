"""A ROLLBACK is final until a person acts.

When the canary decides ROLLBACK it records it twice: in its state (signed)
and in the rollback issue it files (a separate issue, holding the record
signed as a ``canary-rollback``). Editing the dashboard issue, restoring its
body from the edit history included, reaches neither the rollback issue nor
the repository_dispatch already sent. While the record stands, every run of
that canary (same name and revision) says ROLLBACK, whatever the window says
now. It stands until a person acts:

* closes the rollback issue (GitHub records who), or
* canaries a new revision (``--revision``), which starts a new canary, or
* when no rollback issue could be filed (MAX_ISSUES_PER_RUN 0, a state
  file), removes the state.

A rollback issue whose record does not verify (edited) still stands: only
closing it ends it. A state block older than the rollback record (a lower
sequence number) is a replayed or restored block: it is dropped."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from tw_gates.canary.dashboard import CanaryIssues, extract_rollback_record
from tw_gates.canary.state import CanaryState, RollbackRecord, fresh_state, parse_rollback
from tw_gates.core.signing import KeyRing
from tw_gates.schemas.canary import CanaryReport


@dataclass(frozen=True)
class Standing:
    """A rollback that stands, and where it is recorded."""

    record: RollbackRecord
    where: str  # "rollback issue #3" or "the canary state"
    issue: int | None = None

    @property
    def act(self) -> str:
        if self.issue is not None:
            return "close that issue once a person has dealt with the rollback (or canary a new revision)"
        return "canary a new revision (or remove the canary state) once a person has dealt with the rollback"


def standing_rollback(
    state: CanaryState, issues: CanaryIssues | None, ring: KeyRing | None, revision: str | None
) -> tuple[Standing | None, list[str]]:
    """The rollback of this canary that stands, if any, and notes on what was found."""
    record = state.rollback if state.rollback is not None and state.rollback.revision == revision else None
    if issues is not None:
        hint = state.rollback.issue if state.rollback is not None else None
        found = issues.rollback_issue(hint)
        if found is not None and not found.open:
            return None, [f"rollback issue #{found.number} is closed: the rollback no longer stands"]
        if found is not None:
            return _from_issue(found.number, found.body, record, state, ring, revision)
    if record is not None and record.issue is None:
        return Standing(record, "the canary state"), []
    return None, []


def _from_issue(
    number: int, body: str, record: RollbackRecord | None, state: CanaryState, ring: KeyRing | None, rev: str | None
) -> tuple[Standing | None, list[str]]:
    where = f"rollback issue #{number}"
    recorded, problem = parse_rollback(extract_rollback_record(body), ring)
    if recorded is not None and recorded.revision != rev:
        return None, []  # another revision's rollback: closed when this one promotes
    if recorded is None:
        # Edited, or filed before records were signed: it stands until a person closes it.
        recorded = record or RollbackRecord(
            canary=state.name,
            revision=rev,
            key=f"issue-{number}",
            at=0,
            seq=max(state.seq, 1),
            reason=f"the rollback recorded in {where}",
        )
        note = f"{where}: {problem}: the rollback stands until a person closes the issue"
        return Standing(recorded.model_copy(update={"issue": number}), where, number), [note]
    return Standing(recorded.model_copy(update={"issue": number}), where, number), []


def drop_replayed(state: CanaryState, standing: Standing | None) -> tuple[CanaryState, list[str]]:
    """A state block older than the rollback record was saved before it: replayed or restored."""
    if standing is None or state.seq >= standing.record.seq:
        return state, []
    warning = (
        f"canary state block #{state.seq} is older than the rollback recorded in {standing.where} "
        f"(#{standing.record.seq}): a replayed or restored block; starting the canary over"
    )
    return fresh_state(state.name, state.revision, state.interval_s, seq=standing.record.seq), [warning]


def hold(report: CanaryReport, standing: Standing | None) -> CanaryReport:
    """The report with the standing rollback's decision, when the window alone says otherwise."""
    if standing is None or report.decision == "ROLLBACK":
        return report
    at = datetime.fromtimestamp(standing.record.at, tz=timezone.utc) if standing.record.at else None
    when = f" decided {at:%Y-%m-%d %H:%M} UTC" if at is not None else ""
    reason = f"ROLLBACK stands ({standing.where}){when}: {standing.act}. The window alone now says: {report.reason}"
    return report.model_copy(update={"decision": "ROLLBACK", "exit_code": 2, "reason": reason})
