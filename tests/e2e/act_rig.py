"""Run this repository's workflows and composite actions under nektos/act, offline.

act runs in host mode (``-P ubuntu-latest=-self-hosted``): no Docker, the job's
steps run as processes on this machine. Each test gets its own copy of the
working tree (committed or not, minus .gitignored files) so nothing a
workflow does touches the checkout, and its own act cache folder, which is
where act puts the job's workspace and RUNNER_TEMP: parallel tests
(pytest-xdist) never share a venv or a workspace.

Remote actions cannot be fetched offline. ``actions/checkout`` is emulated
by act (it copies the working tree). ``actions/upload-artifact`` and
``actions/download-artifact`` are replaced by the stand-ins in ``stubs/``
through ``--local-repository``, at whatever ref the workflows pin: the refs
are read from the YAML of the workflow being run, of every local action and
reusable workflow it reaches, and of the repository's own workflows and
actions. ``org/tw-gates/...@<ref>`` (this
repository, referenced the way a consumer would) is mapped to the copy. Any
other remote action fails the run up front, naming it.

Results come from act's ``--json -v`` log: per job the result, the steps
(result, outputs, log, exit status), the job's outputs (act logs the
evaluation of each ``outputs:`` expression at the end of the job),
annotations and the step summary. See docs/e2e.md."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import portalocker
import yaml

from tw_gates.core import proc

REPO_ROOT = Path(__file__).resolve().parents[2]
STUBS_DIR = Path(__file__).resolve().with_name("stubs")
# owner/repo -> folder holding the stand-in's action.yml
STAND_INS: dict[str, Path] = {
    "actions/upload-artifact": STUBS_DIR / "upload-artifact",
    "actions/download-artifact": STUBS_DIR / "download-artifact",
}
# act copies the working tree itself for these (only without `repository:`).
EMULATED = frozenset({"actions/checkout"})
DEFAULT_REPOSITORY = "org/tw-gates"
HOST_LABELS = ("ubuntu-latest", "ubuntu-24.04", "ubuntu-22.04", "self-hosted", "linux")
DEFAULT_TIMEOUT = 180.0
# Inherited variables a job must not see: a developer's or CI's own GitHub/runner
# context, and tw-gates settings (a test passes those explicitly with env=).
_BLOCKED_PREFIXES = ("GITHUB_", "RUNNER_", "ACTIONS_", "INPUT_", "TW_", "PYTEST_", "ACT_")
_BLOCKED_NAMES = frozenset(
    {
        "ACT",
        "CI",
        "VIRTUAL_ENV",
        "POLICY_REQUIRE_HMAC",
        "MAX_ISSUES_PER_RUN",
        "SLACK_WEBHOOK_URL",
        "PIP_FIND_LINKS",
        "PIP_NO_INDEX",
        "PIP_INDEX_URL",
        "PIP_EXTRA_INDEX_URL",
    }
)


class ActRigError(AssertionError):
    """The rig could not run the workflow as asked (a test failure, with the reason)."""


# --------------------------------------------------------------------------- results


@dataclass
class Annotation:
    level: str  # error | warning | notice
    message: str
    properties: dict[str, str] = field(default_factory=dict)  # title, file, line...


@dataclass
class StepResult:
    id: str  # "pg", "pg.setup" for a composite's inner step, "0" for an unnamed step
    name: str
    stage: str = "Main"  # Pre | Main | Post
    result: str | None = None  # success | failure | skipped; None: started, never finished
    outputs: dict[str, str] = field(default_factory=dict)
    exit_code: int | None = None  # from act's "exit status N"; None when it exited 0 or never ran
    seconds: float | None = None
    lines: list[str] = field(default_factory=list)  # its output (and its inner steps')
    annotations: list[Annotation] = field(default_factory=list)

    @property
    def log(self) -> str:
        return "\n".join(self.lines)


@dataclass
class JobResult:
    key: str  # job id; "caller/job" inside a reusable workflow; "job (matrix values)"
    name: str  # act's display name
    result: str | None = None  # success | failure | skipped
    steps: dict[str, StepResult] = field(default_factory=dict)  # Main steps by id; "post:<id>", "pre:<id>"
    outputs: dict[str, str] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    annotations: list[Annotation] = field(default_factory=list)
    summary: str = ""
    matrix: dict[str, Any] = field(default_factory=dict)

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    def step(self, step_id: str) -> StepResult:
        try:
            return self.steps[step_id]
        except KeyError:
            raise KeyError(
                f"job {self.key!r} has no step {step_id!r}; steps: {', '.join(self.steps) or 'none'}"
            ) from None


@dataclass
class ActRun:
    argv: list[str]
    returncode: int
    duration_s: float
    jobs: dict[str, JobResult]
    events: list[dict[str, Any]]  # every JSON line act printed, debug included
    other_output: str  # what act printed that was not JSON ("Error: Job 'a' failed")
    run_dir: Path  # log (act.jsonl), act cache (workspace, RUNNER_TEMP), event file
    repo: Path  # the copy act ran in
    artifacts_dir: Path  # the upload/download stand-ins' store
    leftovers_killed: list[int] = field(default_factory=list)  # step processes alive after act (a timeout)

    @property
    def ok(self) -> bool:
        """act exited 0 and at least one job ran."""
        return self.returncode == 0 and any(j.result == "success" for j in self.jobs.values())

    def job(self, key: str) -> JobResult:
        try:
            return self.jobs[key]
        except KeyError:
            raise KeyError(
                f"act did not run or skip job {key!r} (jobs seen: {', '.join(self.jobs) or 'none'}); "
                f"act stops a run after a failed reusable-workflow call, and never mentions jobs of "
                f"workflows the event does not trigger\n{self.tail()}"
            ) from None

    @property
    def log(self) -> str:
        """The human log (act's info lines, each with its job), as act prints it without --json."""
        return "\n".join(_human_lines(self.events)) + ("\n" + self.other_output if self.other_output else "")

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.splitlines()[-lines:])

    def expect_success(self) -> ActRun:
        if not self.ok:
            raise ActRigError(
                f"act exited {self.returncode}; jobs: { {k: j.result for k, j in self.jobs.items()} }\n{self.tail()}"
            )
        return self

    def artifacts(self) -> dict[str, Path]:
        """Artifacts the upload stand-in stored: name -> folder of files."""
        if not self.artifacts_dir.is_dir():
            return {}
        return {p.name: p for p in sorted(self.artifacts_dir.iterdir()) if p.is_dir() and p.name != ".meta"}


def _human_lines(events: Iterable[dict[str, Any]]) -> Iterable[str]:
    for event in events:
        if event.get("level") == "debug":
            continue
        prefix = f"[{(event.get('job') or '').strip()}] " if event.get("job") else ""
        for line in str(event.get("msg", "")).rstrip("\n").splitlines() or [""]:
            yield prefix + ("  | " + line if event.get("raw_output") else line)


# --------------------------------------------------------------------------- workflow analysis


def load_yaml(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(doc, dict):
        raise ActRigError(f"{path}: not a YAML mapping")
    if True in doc and "on" not in doc:  # YAML 1.1 reads the key `on` as a boolean
        doc["on"] = doc.pop(True)
    return doc


_REMOTE_USES = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(/[^@\s]*)?@[^@\s]+\Z")


@dataclass
class _Usage:
    """What a workflow reaches: files read, and remote actions by owner/repo -> refs."""

    docs: dict[Path, dict[str, Any]] = field(default_factory=dict)
    remote: dict[str, set[str]] = field(default_factory=dict)
    unsupported: set[str] = field(default_factory=set)


_SELF_USES = re.compile(r"^(\s*(?:-\s+)?uses:\s*)(['\"]?)\$/([^\s'\"#]*)\2", re.M)
# The ref act is told (--local-repository) stands for "the running commit", i.e. the copy.
SELF_REF = "e2e-running-commit"


def translate_self_references(path: Path, repository: str) -> None:
    """Rewrite `uses: $/path` (this repository at the running commit) as `owner/repo/path@SELF_REF`.

    act (0.2.89) does not know the `$/` syntax; the rewritten reference, mapped to
    the copy, means the same thing: this repository's files at the commit being
    run, with no checkout needed. Only files inside the copy are ever rewritten."""
    text = path.read_text(encoding="utf-8")
    if "$/" not in text:
        return

    def remote(match: re.Match[str]) -> str:
        sub = match.group(3).strip("/")
        sub = "" if sub in ("", ".") else "/" + sub.removeprefix("./")
        return f"{match.group(1)}{repository}{sub}@{SELF_REF}"

    rewritten = _SELF_USES.sub(remote, text)
    if rewritten != text:
        path.write_text(rewritten, encoding="utf-8")


def analyse_uses(repo: Path, workflow: Path, repository: str) -> _Usage:
    """Walk the workflow, the local actions and reusable workflows it reaches, and collect remote `uses:`.

    A local path that is not in the copy is left to act: a workflow may create it
    at run time (a checkout with `path:`, a link), and act names it if it is missing.
    `$/` self references are rewritten in the copy for act (translate_self_references)."""
    usage = _Usage()
    queue = [workflow]
    while queue:
        path = queue.pop()
        if path in usage.docs or not path.is_file():
            continue
        if repo in path.resolve().parents:
            translate_self_references(path, repository)
        doc = usage.docs[path] = load_yaml(path)
        for uses, step in _uses_of(doc):
            target = _resolve_local(repo, uses, repository)
            if target is not None:
                queue.append(target)
                if uses.startswith(("./", ".\\")):
                    continue
            if uses.startswith("docker://"):
                usage.unsupported.add(f"{uses} (docker actions need Docker; act runs in host mode)")
                continue
            if not _REMOTE_USES.match(uses):
                usage.unsupported.add(f"{uses!r} (malformed: GitHub wants ./path, docker://image or owner/repo@ref)")
                continue
            owner_repo, _, ref = uses.partition("@")
            owner_repo = "/".join(owner_repo.split("/")[:2])
            other_repo = str((step.get("with") or {}).get("repository") or "") if isinstance(step, dict) else ""
            if owner_repo in EMULATED and other_repo and "${{" not in other_repo:
                usage.unsupported.add(
                    f"{uses} with repository: {other_repo} (act emulates checkout of this repository only)"
                )
            usage.remote.setdefault(owner_repo, set()).add(ref)
    return usage


def pinned_refs(repo: Path, owner_repos: Iterable[str]) -> dict[str, set[str]]:
    """Refs of these remote actions pinned anywhere in the repository's workflows and actions.

    Mapping them all costs nothing and covers `uses:` the walk cannot follow (a
    path created at run time). Unreadable YAML (someone's work in progress) is skipped."""
    wanted = set(owner_repos)
    found: dict[str, set[str]] = {}
    files = [*repo.glob(".github/workflows/*.y*ml"), *repo.glob("action.y*ml"), *repo.glob("actions/*/action.y*ml")]
    for path in files:
        try:
            doc = load_yaml(path)
        except (yaml.YAMLError, ActRigError, OSError):
            continue
        for uses, _ in _uses_of(doc):
            owner_repo, _, ref = uses.partition("@")
            owner_repo = "/".join(owner_repo.split("/")[:2])
            if owner_repo in wanted and ref and _REMOTE_USES.match(uses):
                found.setdefault(owner_repo, set()).add(ref)
    return found


def _uses_of(doc: dict[str, Any]) -> Iterable[tuple[str, Any]]:
    for job in (doc.get("jobs") or {}).values():
        if isinstance(job, dict):
            if isinstance(job.get("uses"), str):
                yield job["uses"].strip(), job
            for step in job.get("steps") or []:
                if isinstance(step, dict) and isinstance(step.get("uses"), str):
                    yield step["uses"].strip(), step
    runs = doc.get("runs")
    if isinstance(runs, dict):
        for step in runs.get("steps") or []:
            if isinstance(step, dict) and isinstance(step.get("uses"), str):
                yield step["uses"].strip(), step


def _resolve_local(repo: Path, uses: str, repository: str) -> Path | None:
    """The file a local (or this-repository) `uses:` names, inside the copy."""
    if uses.startswith("./"):
        sub = uses[2:]
    elif uses.lower().startswith(repository.lower() + "/") or uses.lower().startswith(repository.lower() + "@"):
        sub = uses[len(repository) :].partition("@")[0].lstrip("/")
    else:
        return None
    target = (repo / sub).resolve()
    if target.suffix in (".yml", ".yaml"):
        return target
    for name in ("action.yml", "action.yaml"):
        if (target / name).is_file():
            return target / name
    return target / "action.yml"  # reported as missing by the caller


def local_repository_args(repo: Path, usage: _Usage, repository: str, stand_ins: Mapping[str, Path]) -> list[str]:
    args: list[str] = []
    unknown: list[str] = []
    refs_by_repo = {k: set(v) for k, v in usage.remote.items()}
    # The stand-in of a whole repository (tw-gates itself, when the repository under
    # test is a consumer) pins remote actions of its own: map those refs too.
    for root in [repo, *dict.fromkeys(Path(f) for f in stand_ins.values())]:
        for owner_repo, refs in pinned_refs(root, [*stand_ins, repository]).items():
            refs_by_repo.setdefault(owner_repo, set()).update(refs)
    for owner_repo, refs in sorted(refs_by_repo.items()):
        if owner_repo.lower() == repository.lower():
            folder: Path | None = repo
        elif owner_repo in EMULATED:
            continue
        else:
            folder = stand_ins.get(owner_repo)
        if folder is None:
            unknown.extend(f"{owner_repo}@{ref}" for ref in sorted(refs))
            continue
        for ref in sorted(refs):
            args += ["--local-repository", f"{owner_repo}@{ref}={folder}"]
    if unknown:
        raise ActRigError(
            "the workflow uses remote actions that cannot be fetched offline: "
            + "; ".join(unknown)
            + f". Add a stand-in under {STUBS_DIR.relative_to(REPO_ROOT)}/ and register it in STAND_INS "
            "(tests/e2e/act_rig.py), or pass stand_ins= to run()."
        )
    if usage.unsupported:
        raise ActRigError("act cannot run this workflow here: " + "; ".join(sorted(usage.unsupported)))
    return args


# --------------------------------------------------------------------------- log parsing

_REWRITTEN = re.compile(r"expression '(.*)' rewritten to '(.*)'\Z", re.S)
_EVALUATED = re.compile(r"expression '(.*)' evaluated to '(.*)'\Z", re.S)
_EXIT_STATUS = re.compile(r"exit status (\d+)\Z")


def _unwrap(value: str) -> str:
    # act logs string results through Go's %t verb: "%!t(string=hello)".
    match = re.fullmatch(r"%!t\(string=(.*)\)", value, re.S)
    return match.group(1) if match else value


@dataclass
class _Evaluations:
    rewritten: dict[str, str] = field(default_factory=dict)
    evaluated: dict[str, str] = field(default_factory=dict)

    def add(self, message: str) -> None:
        if m := _REWRITTEN.match(message):
            self.rewritten[m.group(1)] = m.group(2)
        elif m := _EVALUATED.match(message):
            self.evaluated[m.group(1)] = _unwrap(m.group(2))

    def value_of(self, expression: str) -> str | None:
        if "${{" not in expression:
            return expression
        rewritten = self.rewritten.get(expression)
        return self.evaluated.get(rewritten) if rewritten is not None else None


class _LogParser:
    def __init__(self, workflow: Path, usage: _Usage, repo: Path, repository: str) -> None:
        self.top = usage.docs[workflow]
        self.jobs: dict[str, JobResult] = {}
        self.job_docs: dict[str, dict[str, Any]] = {}
        self.end_evals: dict[str, _Evaluations] = {}  # per job, at "Complete job": its outputs
        self.after_evals: dict[str, _Evaluations] = {}  # per caller: the reusable workflow's outputs
        # caller job id -> (prefix of its inner jobs' display names, the called workflow)
        self.callers: dict[str, tuple[str, dict[str, Any]]] = {}
        for job_id, job in (self.top.get("jobs") or {}).items():
            if isinstance(job, dict) and isinstance(job.get("uses"), str):
                target = _resolve_local(repo, job["uses"].strip(), repository)
                called = usage.docs.get(target, {}) if target else {}
                display = str(job.get("name") or job_id)
                self.callers[job_id] = (f"{display}/{called.get('name') or ''}/", called)

    def key_and_doc(self, event: dict[str, Any]) -> tuple[str, str | None, dict[str, Any]]:
        job_id = event["jobID"]
        full = str(event.get("job") or "").strip()
        key, caller, doc = job_id, None, (self.top.get("jobs") or {}).get(job_id) or {}
        for caller_id, (prefix, called) in self.callers.items():
            if full.startswith(prefix):
                key, caller = f"{caller_id}/{job_id}", caller_id
                doc = (called.get("jobs") or {}).get(job_id) or {}
                break
        matrix = event.get("matrix") or {}
        if matrix:
            key += " (" + ", ".join(str(v) for v in matrix.values()) + ")"
        return key, caller, doc

    def feed(self, event: dict[str, Any]) -> None:
        if not event.get("jobID"):
            return
        key, caller, doc = self.key_and_doc(event)
        job = self.jobs.get(key)
        if job is None:
            job = self.jobs[key] = JobResult(
                key=key, name=str(event.get("job") or "").strip(), matrix=dict(event.get("matrix") or {})
            )
            self.job_docs[key] = doc
        message = str(event.get("msg", ""))
        if "jobResult" in event:
            job.result = event["jobResult"]
        step_ids = event.get("stepID")
        if event.get("level") == "debug":
            if (event.get("stepid") or [None])[0] == "--complete-job":
                self.end_evals.setdefault(key, _Evaluations()).add(message)
            elif caller and not step_ids and not event.get("stepid"):
                self.after_evals.setdefault(caller, _Evaluations()).add(message)
        if not step_ids:
            return
        stage = str(event.get("stage") or "Main")
        step_id = ".".join(str(s) for s in step_ids)
        step_key = step_id if stage == "Main" else f"{stage.lower()}:{step_id}"
        step = job.steps.get(step_key)
        if step is None:
            step = job.steps[step_key] = StepResult(id=step_id, name=str(event.get("step") or ""), stage=stage)
        started = f"⭐ Run {stage} "
        if message.startswith(started):
            step.name = message[len(started) :]
        if "stepResult" in event:
            step.result = event["stepResult"]
            if event.get("executionTime"):
                step.seconds = event["executionTime"] / 1e9
        command = event.get("command")
        if event.get("raw_output"):
            self._add_line(job, stage, step_ids, message.rstrip("\n"))
        elif command == "set-output":
            step.outputs[str(event.get("name"))] = str(event.get("arg", ""))
        elif command in ("error", "warning", "notice"):
            note = Annotation(command, str(event.get("arg", "")).rstrip("\n"), dict(event.get("kvPairs") or {}))
            job.annotations.append(note)
            for outer in self._step_and_outer(job, stage, step_ids):
                outer.annotations.append(note)
            self._add_line(job, stage, step_ids, f"{command.capitalize()}: {note.message}")
        elif command == "summary":
            job.summary += str(event.get("content", ""))
        elif (m := _EXIT_STATUS.match(message.strip())) and step.exit_code is None:
            step.exit_code = int(m.group(1))

    def _add_line(self, job: JobResult, stage: str, step_ids: list[Any], line: str) -> None:
        job.lines.append(line)
        for step in self._step_and_outer(job, stage, step_ids):
            step.lines.append(line)

    @staticmethod
    def _step_and_outer(job: JobResult, stage: str, step_ids: list[Any]) -> list[StepResult]:
        """The step and the composite steps around it: what an inner step prints, its action printed."""
        found = []
        for depth in range(1, len(step_ids) + 1):
            step_id = ".".join(str(s) for s in step_ids[:depth])
            step = job.steps.get(step_id if stage == "Main" else f"{stage.lower()}:{step_id}")
            if step is not None:
                found.append(step)
        return found

    def finish(self) -> dict[str, JobResult]:
        for key, job in self.jobs.items():
            # act announces a pre/post hook for every action, even one with none to run.
            job.steps = {k: s for k, s in job.steps.items() if s.stage == "Main" or s.result or s.lines}
            evals = self.end_evals.get(key, _Evaluations())
            for name, expression in ((self.job_docs.get(key) or {}).get("outputs") or {}).items():
                value = evals.value_of(str(expression))
                if value is not None:
                    job.outputs[str(name)] = value
        # A reusable-workflow call is a job too: act logs only its inner jobs.
        for caller_id, (_, called) in self.callers.items():
            inner = [j for k, j in self.jobs.items() if k.startswith(caller_id + "/")]
            if not inner:
                continue
            results = {j.result for j in inner}
            caller = self.jobs.setdefault(caller_id, JobResult(key=caller_id, name=caller_id))
            if caller.result is None:
                caller.result = (
                    "failure"
                    if "failure" in results or None in results
                    else "success"
                    if "success" in results
                    else "skipped"
                )
            evals = self.after_evals.get(caller_id, _Evaluations())
            trigger = called.get("on") or {}
            call_outputs = ((trigger.get("workflow_call") or {}) if isinstance(trigger, dict) else {}).get("outputs")
            for name, spec in (call_outputs or {}).items():
                value = evals.value_of(str((spec or {}).get("value", "")))
                if value is not None:
                    caller.outputs[str(name)] = value
        return self.jobs


def parse_act_output(stdout: bytes, stderr: bytes) -> tuple[list[dict[str, Any]], str]:
    events, other = [], []
    for raw in (stdout + b"\n" + stderr).decode("utf-8", "replace").splitlines():
        if not raw.strip():
            continue
        try:
            event = json.loads(raw)
        except ValueError:
            other.append(raw)
            continue
        if isinstance(event, dict):
            events.append(event)
        else:
            other.append(raw)
    return events, "\n".join(other)


# --------------------------------------------------------------------------- environment


def snapshot_working_tree(dest: Path, *, source: Path = REPO_ROOT, repository: str = DEFAULT_REPOSITORY) -> Path:
    """Copy the working tree (tracked and untracked, not ignored) into a fresh git repo at dest.

    act reads the commit, branch and `origin` (-> GITHUB_REPOSITORY) from git."""
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=source,
        check=True,
        capture_output=True,
    ).stdout
    dest.mkdir(parents=True)
    for rel in sorted(set(listing.decode().split("\0")) - {""}):
        src = source / rel
        if not os.path.lexists(src) or (src.is_dir() and not src.is_symlink()):  # deleted, or a submodule
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest / rel, follow_symlinks=False)
    git = ["git", "-c", "user.name=tw-gates e2e", "-c", "user.email=e2e@tw-gates.invalid", "-c", "commit.gpgsign=false"]
    for argv in (
        ["init", "-q", "-b", "main"],
        ["remote", "add", "origin", f"https://github.com/{repository}.git"],
        ["add", "-A"],
        ["commit", "-q", "--no-verify", "-m", "e2e snapshot of the working tree"],
    ):
        subprocess.run(git + argv, cwd=dest, check=True, capture_output=True)
    return dest


def kill_processes_with_env(entry: str, *, passes: int = 5) -> list[int]:
    """SIGKILL every process whose environment holds `entry` (NAME=value); the pids killed.

    act ends a step's processes when the step ends, but when act itself is killed
    (timeout) the steps live on: act starts each in a session of its own, out of
    reach of the kill of act's process group. Several passes: a dying shell may fork."""
    wanted = entry.encode()
    killed: list[int] = []
    for _ in range(passes):
        found = []
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) == os.getpid():
                continue
            try:
                with open(f"/proc/{name}/environ", "rb") as fh:
                    if wanted in fh.read().split(b"\0"):
                        found.append(int(name))
            except OSError:  # gone, or not ours to read
                continue
        if not found:
            break
        for pid in found:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except ProcessLookupError:
                pass
        time.sleep(0.05)
    return sorted(set(killed))


def job_path(environ: Mapping[str, str] | None = None) -> str:
    """PATH for the job: the caller's, without the virtualenv the tests run from.

    A job must find the runner's python3, not the dev venv with tw-gates installed editable."""
    environ = os.environ if environ is None else environ
    venvs = {os.path.join(sys.prefix, "bin")} if sys.prefix != sys.base_prefix else set()
    if environ.get("VIRTUAL_ENV"):
        venvs.add(os.path.join(environ["VIRTUAL_ENV"], "bin"))
    return os.pathsep.join(
        p
        for p in environ.get("PATH", "").split(os.pathsep)
        if p and os.path.normpath(p) not in {os.path.normpath(v) for v in venvs}
    )


def job_python(path: str) -> str:
    python = shutil.which("python3", path=path)
    if not python:
        raise ActRigError("no python3 on PATH for the job (actions/setup/install.sh needs the runner's python3)")
    return python


def build_wheelhouse(lock: Path, python: str, *, cache_root: Path | None = None, timeout: float = 600) -> Path:
    """A folder of the locked wheels for `python`, downloaded once and reused (keyed by lock and interpreter).

    Safe under pytest-xdist: workers wait on a lock file; the folder appears atomically."""
    tag = (
        proc.run(
            [python, "-c", "import sys, sysconfig; print(sys.implementation.cache_tag, sysconfig.get_platform())"],
            timeout=30,
            check=True,
        )
        .text()
        .strip()
    )
    key = hashlib.sha256(lock.read_bytes() + tag.encode()).hexdigest()[:16]
    root = cache_root or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tw-gates-e2e"
    target = root / f"wheelhouse-{key}"
    if (target / ".complete").is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    # NON_BLOCKING: with a blocking flock portalocker never consults the timeout.
    with portalocker.Lock(
        str(root / f"wheelhouse-{key}.lock"),
        mode="a",
        timeout=timeout,
        check_interval=0.05,
        flags=portalocker.LockFlags.EXCLUSIVE | portalocker.LockFlags.NON_BLOCKING,
    ):
        if (target / ".complete").is_file():
            return target
        staging = root / f"wheelhouse-{key}.partial-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        result = proc.run(
            [
                python,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--disable-pip-version-check",
                "--no-deps",
                "--require-hashes",
                "-r",
                str(lock),
                "-d",
                str(staging),
            ],
            timeout=timeout,
        )
        if not result.ok:
            shutil.rmtree(staging, ignore_errors=True)
            raise ActRigError(
                f"could not build the e2e wheelhouse (set TW_E2E_WHEELHOUSE to a folder of the "
                f"locked wheels to skip the download): {result.describe()}"
            )
        (staging / ".complete").write_text(f"{lock}\n{tag}\n", encoding="utf-8")
        shutil.rmtree(target, ignore_errors=True)
        os.rename(staging, target)
    return target


# --------------------------------------------------------------------------- the rig


class ActRig:
    """One test's act runner: a private copy of the repository and one folder per run.

    ``act.repo`` is the copy (created on first use; write files into it with
    ``act.write``); every ``act.run(...)`` gets a fresh act cache, so a fresh
    workspace and RUNNER_TEMP (so a cold tw-gates install) per run."""

    def __init__(
        self,
        *,
        act: str,
        base_dir: Path,
        snapshot: Path,
        wheelhouse: Path | None = None,
        repository: str = DEFAULT_REPOSITORY,
        api_url: str | None = None,
    ) -> None:
        self.act = act
        self.base_dir = base_dir
        self.snapshot = snapshot
        self.wheelhouse = wheelhouse
        self.repository = repository
        self.api_url = api_url
        self._repo: Path | None = None
        self._counter = itertools.count(1)

    @property
    def repo(self) -> Path:
        if self._repo is None:
            self._repo = self.base_dir / "repo"
            shutil.copytree(self.snapshot, self._repo, symlinks=True)
        return self._repo

    def write(self, rel_path: str, content: str | bytes) -> Path:
        """Write a file into the copy (a workflow, a config, a consumer artifact...)."""
        path = self.repo / rel_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        return path

    def run(
        self,
        workflow: str | Path | Mapping[str, Any],
        *,
        event: str = "push",
        job: str | None = None,
        inputs: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None,
        secrets: Mapping[str, str] | None = None,
        vars: Mapping[str, str] | None = None,
        event_payload: Mapping[str, Any] | None = None,
        api_url: str | None = None,
        artifacts_dir: Path | None = None,
        stand_ins: Mapping[str, Path] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> ActRun:
        """Run one workflow under act and return what every job did.

        workflow: a path in the repository (".github/workflows/gates.yml"), YAML text,
        or a mapping (dumped to YAML); text and mappings are written to
        .github/workflows/ in the copy. event: push, workflow_dispatch (with inputs=),
        schedule, pull_request... A workflow_call workflow is run through a caller
        (see caller_workflow()). api_url: GITHUB_API_URL for the job (the GitHub
        emulator's .url). artifacts_dir: share the stand-ins' artifact store
        between runs (default: one per run). A timeout kills act's process group
        and fails with the log tail."""
        number = next(self._counter)
        run_dir = self.base_dir / f"run-{number}"
        run_dir.mkdir(parents=True)
        repo = self.repo
        workflow_path = self._materialise(workflow, number)
        usage = analyse_uses(repo, workflow_path, self.repository)
        all_stand_ins = {**STAND_INS, **(stand_ins or {})}
        artifacts = Path(artifacts_dir) if artifacts_dir else run_dir / "artifacts"
        artifacts.mkdir(parents=True, exist_ok=True)
        empty = run_dir / "empty.env"
        empty.write_text("", encoding="utf-8")

        argv = [
            self.act,
            event,
            "-W",
            str(workflow_path.relative_to(repo)),
            "--json",
            "--verbose",
            "--no-cache-server",
            "--action-cache-path",
            str(run_dir / "act-cache"),
            "--defaultbranch",
            "main",
            "--env-file",
            str(empty),
            "--secret-file",
            str(empty),
            "--var-file",
            str(empty),
            "--input-file",
            str(empty),
        ]
        for label in HOST_LABELS:
            argv += ["-P", f"{label}=-self-hosted"]
        argv += local_repository_args(repo, usage, self.repository, all_stand_ins)
        if job:
            argv += ["--job", job]
        if event_payload is not None:
            (run_dir / "event.json").write_text(json.dumps(event_payload), encoding="utf-8")
            argv += ["--eventpath", str(run_dir / "event.json")]
        job_env = dict(env or {})
        if api_url or self.api_url:
            job_env.setdefault("GITHUB_API_URL", str(api_url or self.api_url))
        for flag, values in (("--input", inputs), ("--env", job_env), ("--secret", secrets), ("--var", vars)):
            for name, value in (values or {}).items():
                argv += [flag, f"{name}={value}"]

        result = proc.run(argv, timeout=timeout, cwd=repo, env=self._process_env(run_dir, artifacts))
        leftovers = kill_processes_with_env(f"TW_E2E_RUN={run_dir}")
        events, other = parse_act_output(result.stdout, result.stderr)
        (run_dir / "act.jsonl").write_bytes(result.stdout)
        if result.stderr:
            (run_dir / "act.stderr").write_bytes(result.stderr)
        parser = _LogParser(workflow_path, usage, repo, self.repository)
        for item in events:
            parser.feed(item)
        run = ActRun(
            argv=argv,
            returncode=result.returncode,
            duration_s=result.duration_s,
            jobs=parser.finish(),
            events=events,
            other_output=other,
            run_dir=run_dir,
            repo=repo,
            artifacts_dir=artifacts,
            leftovers_killed=leftovers,
        )
        if result.timed_out:
            raise ActRigError(
                f"act did not finish within {timeout:g}s and was killed, and killed "
                f"{len(leftovers)} step process(es) left running (log: {run_dir / 'act.jsonl'})"
                f"\n{run.tail()}"
            )
        return run

    def _materialise(self, workflow: str | Path | Mapping[str, Any], number: int) -> Path:
        if isinstance(workflow, Mapping):
            workflow = yaml.safe_dump(dict(workflow), sort_keys=False)
        if isinstance(workflow, str) and "\n" in workflow:
            return self.write(f".github/workflows/e2e-{number}.yml", workflow)
        path = self.repo / workflow
        if not path.is_file():
            raise ActRigError(f"no workflow {workflow} in the repository")
        return path

    def _process_env(self, run_dir: Path, artifacts: Path) -> dict[str, str]:
        # In host mode the job inherits act's environment: this is the runner's.
        env = {k: v for k, v in os.environ.items() if k not in _BLOCKED_NAMES and not k.startswith(_BLOCKED_PREFIXES)}
        env["PATH"] = job_path()
        env["XDG_CACHE_HOME"] = str(run_dir / "xdg-cache")
        env["TW_E2E_ARTIFACT_DIR"] = str(artifacts)
        env["TW_E2E_RUN"] = str(run_dir)  # marks every process of this run, see kill_processes_with_env
        env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
        if self.wheelhouse:
            env["PIP_FIND_LINKS"] = str(self.wheelhouse)
            env["PIP_NO_INDEX"] = "1"
        return env


def caller_workflow(
    uses: str,
    *,
    with_: Mapping[str, Any] | None = None,
    secrets: Mapping[str, str] | str | None = None,
    on: str | Mapping[str, Any] = "push",
    permissions: Mapping[str, str] | None = None,
    job: str = "call",
    name: str = "e2e caller",
) -> str:
    """YAML of a workflow whose one job calls a reusable workflow (`workflow_call` under test)."""
    call: dict[str, Any] = {"uses": uses}
    if permissions is not None:
        call["permissions"] = dict(permissions)
    if with_:
        call["with"] = dict(with_)
    if secrets:
        call["secrets"] = secrets if isinstance(secrets, str) else dict(secrets)
    doc = {"name": name, "on": on if isinstance(on, str) else dict(on), "permissions": {}, "jobs": {job: call}}
    return yaml.safe_dump(doc, sort_keys=False)
