"""G4: POLICY_REQUIRE_HMAC is true wherever the ingest gate runs.

Where G1's S1 asks "is there an ingest gate that enforces signatures?", G4
asks the stricter question: is there any place that runs the ingest gate
*without* enforcing them? Every invocation found in the parsed workflows
(actions/ingest, the umbrella with the ingest gate selected,
``tw-gates ingest`` in a ``run:``) must get POLICY_REQUIRE_HMAC=true in the
environment it really runs with: workflow, job and step env, the action's
own inputs and defaults. A value only known at run time (``vars``, secrets)
does not count as true: the policy must be visible in the repository. A
repository where the ingest gate runs nowhere fails too: nothing enforces it."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from tw_gates.chain.invocations import invocations
from tw_gates.chain.verify_nets import hmac_policy_of, runs_command
from tw_gates.chain.workflow_model import RepoConfig
from tw_gates.core.errors import ExitCode
from tw_gates.core.settings import EnvSettings, env


class HmacPolicySettings(EnvSettings):
    repo_dir: Path = Field(Path("."), validation_alias=env("TW_REPO_DIR", "repo_dir"))


class IngestSite(BaseModel):
    where: str
    via: str
    enforced: bool
    detail: str
    file: str
    line: int

    @property
    def text(self) -> str:
        return f"{'ENFORCED' if self.enforced else 'NOT ENFORCED'} {self.where}: {self.detail}"


class HmacPolicyResult(BaseModel):
    sites: list[IngestSite] = Field(default_factory=list)
    parse_errors: list[str] = Field(default_factory=list)

    @property
    def enforced_count(self) -> int:
        return sum(1 for s in self.sites if s.enforced)

    @property
    def score(self) -> str:
        return f"{self.enforced_count}/{len(self.sites)}"

    @property
    def passed(self) -> bool:
        return bool(self.sites) and self.enforced_count == len(self.sites)

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK if self.passed else ExitCode.REJECTED

    @property
    def summary(self) -> str:
        if not self.sites:
            return "the ingest gate runs in no workflow: POLICY_REQUIRE_HMAC is enforced nowhere"
        if self.passed:
            return f"POLICY_REQUIRE_HMAC=true at every ingest gate ({self.score})"
        off = len(self.sites) - self.enforced_count
        return f"POLICY_REQUIRE_HMAC is not true at {off} of {len(self.sites)} ingest gate(s)"


def hmac_policy(settings: HmacPolicySettings) -> HmacPolicyResult:

    repo = RepoConfig(settings.repo_dir)
    result = HmacPolicyResult(parse_errors=list(repo.errors))
    for call in invocations(repo):
        if not runs_command(call, "ingest"):
            continue
        policy = hmac_policy_of(call)
        if policy is None or (policy.known and policy.value in (None, "")):
            enforced, detail = False, "POLICY_REQUIRE_HMAC is not set (the ingest gate then accepts unsigned artifacts)"
        elif not policy.known:
            enforced, detail = False, f"POLICY_REQUIRE_HMAC is not fixed in the repository: {policy.source}"
        elif policy.is_true:
            enforced, detail = True, f"POLICY_REQUIRE_HMAC={policy.value} ({policy.source})"
        else:
            enforced, detail = False, f"POLICY_REQUIRE_HMAC={policy.value!r} ({policy.source})"
        result.sites.append(
            IngestSite(
                where=call.where,
                via=call.via,
                enforced=enforced,
                detail=detail,
                file=call.step.workflow.rel,
                line=call.step.line,
            )
        )
    return result
