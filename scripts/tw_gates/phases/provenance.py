"""Where a phase unlock artifact came from, and whether that place may unlock
a phase.

A signature proves who held the key, not which run produced the artifact. An
Actions artifact counts only when the workflow run that uploaded it, as the
REST API describes it (never as the artifact says), is a run of the phase
workflow (its path, ``TW_PHASE_WORKFLOW``), in this repository and not a fork
(its head repository is this repository), on the protected branch (the
default branch, or ``TW_PHASE_BRANCH``), started by ``workflow_dispatch`` or
``workflow_call``, and concluded ``success``. A run that is not is named with
everything about it that did not match."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEFAULT_WORKFLOW = ".github/workflows/phase.yml"
PHASE_EVENTS = ("workflow_dispatch", "workflow_call")


@dataclass(frozen=True)
class RunFacts:
    """What the REST API says about the workflow run that uploaded an artifact."""

    run_id: int
    path: str
    event: str
    head_branch: str
    head_repository: str
    repository: str
    conclusion: str

    @classmethod
    def of(cls, run: Any) -> RunFacts:
        """From a PyGithub WorkflowRun (one GET of the run)."""
        head = run.head_repository
        own = run.repository
        return cls(
            run_id=run.id,
            # A run of a reusable or dynamic workflow may carry "@ref" after the path.
            path=str(run.path or "").split("@", 1)[0],
            event=str(run.event or ""),
            head_branch=str(run.head_branch or ""),
            head_repository=str(head.full_name) if head is not None else "",
            repository=str(own.full_name) if own is not None else "",
            conclusion=str(run.conclusion or "not concluded"),
        )

    def describe(self) -> str:
        return f"{self.path}, {self.event}, {self.head_branch}"


@dataclass(frozen=True)
class Expected:
    """The run a phase unlock must come from."""

    repository: str
    workflow: str
    branch: str
    events: tuple[str, ...] = PHASE_EVENTS

    def describe(self) -> str:
        return f"of {self.workflow} on {self.branch} in {self.repository}"

    def mismatches(self, run: RunFacts) -> list[str]:
        """Everything about ``run`` that does not match, in words; empty: it may unlock."""
        found = []
        if run.conclusion != "success":
            found.append(f"conclusion {run.conclusion} is not success")
        if run.path != self.workflow:
            found.append(f"workflow {run.path or '(none)'} is not {self.workflow}")
        if run.event not in self.events:
            found.append(f"event {run.event or '(none)'} is not {' or '.join(self.events)}")
        if run.head_branch != self.branch:
            found.append(f"branch {run.head_branch or '(none)'} is not {self.branch}")
        if run.repository.lower() != self.repository.lower():
            found.append(f"repository {run.repository or '(none)'} is not {self.repository}")
        if run.head_repository.lower() != self.repository.lower():
            found.append(f"head repository {run.head_repository or '(none)'} is not {self.repository} (a fork)")
        return found
