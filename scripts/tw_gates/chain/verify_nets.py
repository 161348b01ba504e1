"""G1: the five safety nets are configured in a repository.

Checked semantically on the parsed workflows and actions (see
``workflow_model``), never by searching text:

* S1 ingest gate: some step runs the ingest gate (actions/ingest, the
  umbrella with the ingest gate selected, or ``tw-gates ingest``) with
  POLICY_REQUIRE_HMAC true in the environment it really gets, and
  ``.github/workflows/ingest.yml`` exists;
* S2 permission fallback: every step that files issues keeps its fallback:
  the fallback artifact is uploaded by a step that runs on failure;
* R1 digest cap: every issue-filing step has a cap (MAX_ISSUES_PER_RUN or
  --max-issues, else file-issues' default) and its job is serialised by a
  ``concurrency:`` group (job or workflow level);
* R2 Linux-only: every job that runs a tw-gates gate either runs the platform
  guard or runs on Linux runners only;
* C1 telemetry: ``prometheus/rules/audit_rules.yml`` present, parsed, and its
  alerts read the metrics the nets emit (shared with G5).

Each net yields one line, ``VERIFIED <net>: <evidence>`` or
``MISSING <net>: <what is missing and where>``; the gate passes at 5/5 only."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from tw_gates.chain.expressions import Resolved, Scope, resolve
from tw_gates.chain.invocations import Invocation, chain_gates, invocations
from tw_gates.chain.telemetry_check import INGEST_WORKFLOW, REQUIRED_ALERT_METRICS, RULES_FILE, analyse_rules
from tw_gates.chain.workflow_model import RepoConfig, Step
from tw_gates.core import metrics
from tw_gates.core.errors import ExitCode
from tw_gates.core.settings import EnvSettings, env

NETS = ("S1", "S2", "R1", "R2", "C1")
DEFAULT_MAX_ISSUES = 10  # file-issues' own default cap (MAX_ISSUES_PER_RUN unset)
# Commands that are tools rather than gates: they do not make a job a "gate job" for R2.
NON_GATE_COMMANDS = {"schema", "render", "evidence", "demo", "--version", "--help", "-h"}
_LINUX_LABEL = re.compile(r"^(ubuntu(-[\w.]+)?|linux([-_][\w.]+)?)$", re.I)
_OTHER_OS_LABEL = re.compile(r"^(windows|macos|osx|win)([-_][\w.]+)?$", re.I)
_UPLOAD_ARTIFACT = re.compile(r"^actions/upload-artifact@", re.I)
_RUNS_ON_FAILURE = re.compile(r"\b(failure|always)\s*\(\s*\)|!\s*cancelled\s*\(\s*\)")


class VerifyNetsSettings(EnvSettings):
    repo_dir: Path = Field(Path("."), validation_alias=env("TW_REPO_DIR", "repo_dir"))


class NetStatus(BaseModel):
    net: Literal["S1", "S2", "R1", "R2", "C1"]
    verified: bool
    detail: str
    file: str | None = None
    line: int | None = None

    @property
    def text(self) -> str:
        return f"{'VERIFIED' if self.verified else 'MISSING'} {self.net}: {self.detail}"


class VerifyNetsResult(BaseModel):
    repo_dir: str
    nets: list[NetStatus]
    parse_errors: list[str] = Field(default_factory=list)

    @property
    def verified_count(self) -> int:
        return sum(1 for n in self.nets if n.verified)

    @property
    def score(self) -> str:
        return f"{self.verified_count}/{len(NETS)}"

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK if self.verified_count == len(NETS) else ExitCode.REJECTED

    @property
    def missing(self) -> list[str]:
        return [n.net for n in self.nets if not n.verified]


def verify_nets(settings: VerifyNetsSettings) -> VerifyNetsResult:
    repo = RepoConfig(settings.repo_dir)
    calls = invocations(repo)
    nets = [_s1(repo, calls), _s2(calls), _r1(calls), _r2(repo, calls), _c1(repo)]
    result = VerifyNetsResult(repo_dir=str(settings.repo_dir), nets=nets, parse_errors=list(repo.errors))
    _record_metrics(result)
    return result


def _record_metrics(result: VerifyNetsResult) -> None:
    sink = metrics.current()
    sink.gauge("tw_gates_safety_nets_verified").set(result.verified_count)
    per_net = sink.gauge("tw_gates_safety_net_verified")
    for net in result.nets:
        per_net.labels(net=net.net).set(1 if net.verified else 0)


# --------------------------------------------------------------------------- helpers


def runs_command(call: Invocation, command: str) -> bool:
    """True when the invocation runs ``command`` itself or through the chain."""
    if call.command == command:
        return True
    gates = chain_gates(call)
    return gates is not None and command in gates


def _describe(resolved: Resolved) -> str:
    return f"{resolved.value!r} from {resolved.source}" if resolved.known else resolved.source


def hmac_policy_of(call: Invocation) -> Resolved | None:
    """POLICY_REQUIRE_HMAC as the ingest gate sees it at this invocation
    (its --require-hmac flag wins over the environment)."""
    if call.command == "ingest" and "--require-hmac" in call.argv:
        return Resolved("true", True, f"--require-hmac of `tw-gates ingest` in {call.via}")
    return call.setting("POLICY_REQUIRE_HMAC")


# --------------------------------------------------------------------------- S1


def _s1(repo: RepoConfig, calls: list[Invocation]) -> NetStatus:
    ingest_runs = [c for c in calls if runs_command(c, "ingest")]
    workflow = repo.workflow(Path(INGEST_WORKFLOW).name)
    if workflow is None:
        reason = f"{INGEST_WORKFLOW} not found"
        if any(Path(INGEST_WORKFLOW).name in e for e in repo.errors):
            reason = next(e for e in repo.errors if Path(INGEST_WORKFLOW).name in e)
        return NetStatus(
            net="S1",
            verified=False,
            file=INGEST_WORKFLOW,
            detail=(f"{reason}: the ingest workflow must exist (POLICY_REQUIRE_HMAC=true on its ingest gate)"),
        )
    if not ingest_runs:
        return NetStatus(
            net="S1",
            verified=False,
            file=workflow.rel,
            line=workflow.data.line,
            detail=("no workflow step runs the ingest gate (actions/ingest or `tw-gates ingest`)"),
        )
    enforced = [c for c in ingest_runs if (p := hmac_policy_of(c)) is not None and p.is_true]
    if enforced:
        call = next((c for c in enforced if c.step.workflow is workflow), enforced[0])
        policy = hmac_policy_of(call)
        return NetStatus(
            net="S1",
            verified=True,
            file=call.step.workflow.rel,
            line=call.step.line,
            detail=(
                f"{call.where} runs the ingest gate ({call.via}) with POLICY_REQUIRE_HMAC="
                f"{policy.value if policy else None} ({policy.source if policy else 'not set'}); "
                f"{INGEST_WORKFLOW} present"
            ),
        )
    call = ingest_runs[0]
    policy = hmac_policy_of(call)
    if policy is None or (policy.known and not policy.value):
        why = "POLICY_REQUIRE_HMAC is not set"
    elif not policy.known:
        why = f"POLICY_REQUIRE_HMAC comes from {policy.source}"
    else:
        why = f"POLICY_REQUIRE_HMAC is {_describe(policy)}"
    return NetStatus(
        net="S1",
        verified=False,
        file=call.step.workflow.rel,
        line=call.step.line,
        detail=(
            f"the ingest gate runs without HMAC enforcement: {call.where}: {why}; set POLICY_REQUIRE_HMAC: 'true' "
            "in the env of that step, its job or the workflow"
        ),
    )


# --------------------------------------------------------------------------- S2 and R1


def _filing(calls: list[Invocation]) -> list[Invocation]:
    return [c for c in calls if runs_command(c, "file-issues")]


DEFAULT_FALLBACK_DIR = "tw-gates-fallback"  # file-issues' default --fallback-dir


def _fallback_dir(call: Invocation) -> Resolved:
    given = call.setting("TW_FALLBACK_DIR", "--fallback-dir")
    if given is None or (given.known and not given.value):
        return Resolved(DEFAULT_FALLBACK_DIR, True, "file-issues' default")
    return given


def _covers(upload_paths: str, directory: str) -> bool:
    """Does an upload-artifact ``path:`` (one path or glob per line) include the folder?"""

    target = directory.strip().removeprefix("./").rstrip("/")
    for line in upload_paths.splitlines():
        path = line.strip().removeprefix("./").rstrip("/")
        if not path or path.startswith("!"):
            continue
        if (
            target == path
            or target.startswith(path + "/")
            or path.startswith(target + "/")
            or fnmatch.fnmatchcase(target, path)
        ):
            return True
    return False


def _fallback_upload(call: Invocation) -> tuple[str | None, str | None]:
    """(evidence, problem): the step that uploads the fallback on failure."""
    folder = _fallback_dir(call)
    candidates: list[tuple[str, str, str]] = []  # (label, path, condition)
    if call.action is not None and call.action_step_index is not None:
        inputs = call.action.input_scope(call.step.given_inputs())
        for index, step in enumerate(call.action.steps[call.action_step_index + 1 :], call.action_step_index + 2):
            if _is_failure_upload(str(step.get("uses") or ""), str(step.get("if") or "")):
                raw = (step.get("with") or {}).get("path") if isinstance(step.get("with"), dict) else None
                upload = resolve(raw, Scope(env=call.env, inputs=inputs), source="upload path")
                candidates.append(
                    (
                        f"{call.action.rel} step {index}",
                        (upload.value or "") if upload.known else "",
                        str(step.get("if")),
                    )
                )
    for later in call.step.job.steps[call.step.index + 1 :]:
        if _is_failure_upload(later.uses or "", later.if_):
            found = resolve(later.with_.get("path"), later.scope(), source="upload path")
            candidates.append((later.label, (found.value or "") if found.known else "", later.if_ or ""))
    if not candidates:
        return None, None
    for label, path, condition in candidates:
        if not path or not folder.known or _covers(path, folder.value or ""):
            shown = f" {_one_line(path)!r}" if path else ""
            return (
                f"fallback folder {folder.value!r} ({folder.source}); {label} uploads{shown} with `if: {condition}`",
                None,
            )
    label, path, _ = candidates[0]
    return (
        None,
        f"{label} uploads {_one_line(path)!r} on failure, but the fallback goes to {folder.value!r} ({folder.source})",
    )


def _one_line(paths: str) -> str:
    return ", ".join(line.strip() for line in paths.splitlines() if line.strip())


def _is_failure_upload(uses: str, condition: str) -> bool:
    return bool(_UPLOAD_ARTIFACT.match(uses) and _RUNS_ON_FAILURE.search(condition))


def _s2(calls: list[Invocation]) -> NetStatus:
    filing = _filing(calls)
    if not filing:
        return NetStatus(
            net="S2",
            verified=False,
            detail=(
                "no workflow step runs file-issues (actions/file-issues or `tw-gates file-issues`), "
                "so there is no permission fallback"
            ),
        )
    evidence = []
    for call in filing:
        found, problem = _fallback_upload(call)
        if found is None:
            return NetStatus(
                net="S2",
                verified=False,
                file=call.step.workflow.rel,
                line=call.step.line,
                detail=(
                    f"{call.where} files issues but "
                    + (
                        problem
                        or "nothing uploads the fallback artifact on failure: add actions/upload-artifact "
                        "with `if: failure()` after it (or use actions/file-issues, which does)"
                    )
                ),
            )
        evidence.append(f"{call.where}: {found}")
    return NetStatus(
        net="S2", verified=True, file=filing[0].step.workflow.rel, line=filing[0].step.line, detail="; ".join(evidence)
    )


def _cap(call: Invocation) -> tuple[bool, str]:
    cap = call.setting("MAX_ISSUES_PER_RUN", "--max-issues")
    if cap is None or (cap.known and cap.value in (None, "")):
        return True, f"default cap {DEFAULT_MAX_ISSUES} of file-issues"
    if not cap.known:
        return True, f"MAX_ISSUES_PER_RUN {cap.source} (checked by file-issues at run time)"
    if not re.fullmatch(r"\s*\d+\s*", cap.value or ""):
        return False, f"MAX_ISSUES_PER_RUN is {_describe(cap)}: it must be a whole number (0: always one digest)"
    return True, f"MAX_ISSUES_PER_RUN={(cap.value or '').strip()} ({cap.source})"


def _concurrency(step: Step) -> str | None:
    for level, block in (("job", step.job.concurrency), ("workflow", step.workflow.data.get("concurrency"))):
        group = block.get("group") if isinstance(block, dict) else block
        if group not in (None, ""):
            return f"{level} concurrency group {str(group)!r}"
    return None


def _r1(calls: list[Invocation]) -> NetStatus:
    filing = _filing(calls)
    if not filing:
        return NetStatus(
            net="R1",
            verified=False,
            detail=("no workflow step runs file-issues, so no digest cap or idempotent filing is configured"),
        )
    evidence = []
    for call in filing:
        capped, cap_text = _cap(call)
        if not capped:
            return NetStatus(
                net="R1",
                verified=False,
                file=call.step.workflow.rel,
                line=call.step.line,
                detail=f"{call.where}: {cap_text}",
            )
        serialised = _concurrency(call.step)
        if serialised is None:
            return NetStatus(
                net="R1",
                verified=False,
                file=call.step.workflow.rel,
                line=call.step.job.line,
                detail=(
                    f"job {call.step.job.id!r} in {call.step.workflow.rel} files issues without a "
                    "`concurrency:` group: "
                    "two runs at once could both pass the cap or file duplicates"
                ),
            )
        evidence.append(f"{call.where}: {cap_text}, {serialised}")
    return NetStatus(
        net="R1", verified=True, file=filing[0].step.workflow.rel, line=filing[0].step.line, detail="; ".join(evidence)
    )


# --------------------------------------------------------------------------- R2


def _is_gate(call: Invocation) -> bool:
    return call.command not in NON_GATE_COMMANDS


def _linux_runner(step: Step) -> tuple[bool, str]:
    """All of a job's runner labels known, one of them Linux, none another OS."""
    labels = step.job.runs_on_labels()
    if not labels:
        return False, "no runs-on"
    for label in labels:
        if not label.known or label.value is None:
            return False, f"runs-on is not known statically ({label.source})"
        if _OTHER_OS_LABEL.match(label.value):
            return False, f"runs-on {label.value!r} is not a Linux runner"
    names = ", ".join(str(label.value) for label in labels)
    if not any(_LINUX_LABEL.match(label.value or "") for label in labels):
        return False, f"runs-on {names} has no Linux label (ubuntu-* or linux)"
    return True, f"runs-on {names}"


def _r2_jobs(
    gate_jobs: dict[tuple[str, str], list[Invocation]],
) -> tuple[dict[str, list[str]], dict[str, list[str]], list[tuple[Invocation, str]]]:
    """Jobs running gates, by file: guarded by the platform gate, on a Linux
    runner, or neither (with why)."""
    guarded: dict[str, list[str]] = {}
    linux: dict[str, list[str]] = {}
    gaps = []
    for (rel, job_id), job_calls in gate_jobs.items():
        if any(runs_command(c, "platform") for c in job_calls):
            guarded.setdefault(rel, []).append(job_id)
            continue
        ok, why = _linux_runner(job_calls[0].step)
        if ok:
            linux.setdefault(rel, []).append(job_id)
        else:
            gaps.append((job_calls[0], why))
    return guarded, linux, gaps


def _r2(repo: RepoConfig, calls: list[Invocation]) -> NetStatus:
    gate_jobs: dict[tuple[str, str], list[Invocation]] = {}
    for call in calls:
        if _is_gate(call):
            gate_jobs.setdefault((call.step.workflow.rel, call.step.job.id), []).append(call)
    if not gate_jobs:
        return NetStatus(net="R2", verified=False, detail="no workflow job runs a tw-gates gate")
    guarded, linux, gaps = _r2_jobs(gate_jobs)
    if gaps:
        call, why = gaps[0]
        more = f" (and {len(gaps) - 1} more job(s))" if len(gaps) > 1 else ""
        return NetStatus(
            net="R2",
            verified=False,
            file=call.step.workflow.rel,
            line=call.step.job.line,
            detail=(
                f"job {call.step.job.id!r} in {call.step.workflow.rel} runs tw-gates without the platform guard and "
                f"{why}{more}: add actions/platform or run on ubuntu-*"
            ),
        )

    def jobs(by_file: dict[str, list[str]]) -> str:
        return ", ".join(f"{rel} ({', '.join(ids)})" for rel, ids in by_file.items())

    parts = []
    if guarded:
        parts.append(f"platform guard in {jobs(guarded)}")
    if linux:
        parts.append(f"Linux runners (ubuntu-*/linux) for {jobs(linux)}")
    return NetStatus(net="R2", verified=True, detail="; ".join(parts))


# --------------------------------------------------------------------------- C1


def _c1(repo: RepoConfig) -> NetStatus:
    analysis = analyse_rules(repo.root, REQUIRED_ALERT_METRICS)
    if not analysis.valid:
        return NetStatus(net="C1", verified=False, file=RULES_FILE, detail="; ".join(analysis.problems))
    if not analysis.alerts:
        return NetStatus(net="C1", verified=False, file=RULES_FILE, detail=f"{RULES_FILE} defines no alerts")
    if analysis.missing:
        return NetStatus(
            net="C1",
            verified=False,
            file=RULES_FILE,
            detail=(f"{RULES_FILE}: no alert reads {', '.join(analysis.missing)}"),
        )
    return NetStatus(
        net="C1",
        verified=True,
        file=RULES_FILE,
        detail=(
            f"{RULES_FILE}: {len(analysis.alerts)} alert(s) in {analysis.groups} group(s) reading "
            + ", ".join(analysis.covered)
        ),
    )
