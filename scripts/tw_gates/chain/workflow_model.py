"""A repository's GitHub Actions configuration, parsed (YAML, not grep).

The static gates (G1 verify-nets, G4 hmac-policy, G5 telemetry-check) ask
questions such as "which steps run the ingest gate, and with what value of
POLICY_REQUIRE_HMAC?". Answering them needs the structure GitHub itself sees:
workflows, jobs, steps, the env each step really gets (workflow < job < step,
and a composite action's own step env on top), the inputs a step passes to an
action and the defaults the action declares.

YAML is read the way GitHub reads it (YAML 1.2 booleans: only true/false, so
``on:`` stays the string "on"), with line numbers kept for evidence and
annotations. Expressions: ``chain.expressions``; where tw-gates runs:
``chain.invocations``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tw_gates import DATA_DIR
from tw_gates.chain.expressions import Resolved, Scope, resolve
from tw_gates.core.errors import UsageError
from tw_gates.core.yaml_lines import (
    LineDict,
    YamlError,
    as_mapping,
    env_of,
    load_yaml,
    scalar_text,
)

WORKFLOWS_DIR = ".github/workflows"

# --------------------------------------------------------------------------- actions


@dataclass
class ActionInput:
    name: str
    default: Any = None
    required: bool = False


@dataclass
class CompositeAction:
    """A composite action's declared inputs and steps."""

    path: Path  # the action.yml
    rel: str  # how evidence names it
    inputs: dict[str, ActionInput]
    steps: list[LineDict]
    kind: str  # runs.using

    def input_scope(self, given: dict[str, Resolved]) -> dict[str, Resolved]:
        """Inputs as the action sees them: what the caller passed, else the default."""
        scope = {}
        for name, spec in self.inputs.items():
            if name in given:
                scope[name] = given[name]
            else:
                scope[name] = resolve(spec.default, Scope(), source=f"default of input {name!r} in {self.rel}")
        return scope


def load_action(action_dir: Path, rel: str) -> CompositeAction | None:
    """The action in ``action_dir`` (action.yml or action.yaml); None if absent."""
    for name in ("action.yml", "action.yaml"):
        path = action_dir / name
        if path.is_file():
            data = as_mapping(load_yaml(path))
            inputs = {
                str(k): ActionInput(
                    str(k),
                    (v or {}).get("default") if isinstance(v, dict) else None,
                    bool((v or {}).get("required")) if isinstance(v, dict) else False,
                )
                for k, v in as_mapping(data.get("inputs")).items()
            }
            runs = as_mapping(data.get("runs"))
            steps = [s for s in runs.get("steps") or [] if isinstance(s, LineDict)]
            return CompositeAction(path, f"{rel}/{name}", inputs, steps, str(runs.get("using", "")))
    return None


# --------------------------------------------------------------------------- workflows


@dataclass
class Step:
    workflow: Workflow
    job: Job
    index: int
    data: LineDict

    @property
    def uses(self) -> str | None:
        value = self.data.get("uses")
        return str(value) if value is not None else None

    @property
    def run(self) -> str | None:
        value = self.data.get("run")
        return str(value) if value is not None else None

    @property
    def with_(self) -> LineDict:
        return as_mapping(self.data.get("with"))

    @property
    def if_(self) -> str:
        return scalar_text(self.data.get("if")).strip()

    @property
    def line(self) -> int:
        return self.data.line

    @property
    def label(self) -> str:
        name = self.data.get("name") or self.data.get("id")
        if name:
            return f"step {str(name)!r}"
        return f"step {self.index + 1}" + (f" ({self.uses})" if self.uses else "")

    @property
    def where(self) -> str:
        return f"{self.workflow.rel} job {self.job.id!r} {self.label}"

    def env_chain(self) -> dict[str, Resolved]:
        """The env this step gets: workflow, then job, then step (later wins)."""
        env: dict[str, Resolved] = {}
        for level, block in (
            ("workflow", self.workflow.data.get("env")),
            ("job", self.job.data.get("env")),
            ("step", self.data.get("env")),
        ):
            scope = Scope(env=dict(env), inputs=self.workflow.inputs)
            for name, raw in env_of(block).items():
                env[name] = resolve(raw, scope, source=f"{level} env of {self.workflow.rel}")
        return env

    def scope(self) -> Scope:
        return Scope(env=self.env_chain(), inputs=self.workflow.inputs)

    def given_inputs(self) -> dict[str, Resolved]:
        scope = self.scope()
        return {str(k): resolve(v, scope, source=f"`with: {k}` of {self.where}") for k, v in self.with_.items()}


@dataclass
class Job:
    workflow: Workflow
    id: str
    data: LineDict
    steps: list[Step] = field(default_factory=list)

    @property
    def line(self) -> int:
        return self.data.line

    @property
    def uses(self) -> str | None:
        value = self.data.get("uses")
        return str(value) if value is not None else None

    @property
    def concurrency(self) -> Any:
        return self.data.get("concurrency")

    def runs_on_labels(self) -> list[Resolved]:
        """Each label of ``runs-on`` (a matrix expression expands to its values)."""
        raw = self.data.get("runs-on")
        if isinstance(raw, dict):
            raw = raw.get("labels", raw.get("group"))
        values = raw if isinstance(raw, list) else [raw]
        labels: list[Resolved] = []
        for value in values:
            text = scalar_text(value)
            matrix = re.fullmatch(r"\$\{\{\s*matrix\.([A-Za-z_][\w-]*)\s*\}\}", text.strip())
            if matrix:
                options = as_mapping(as_mapping(self.data.get("strategy")).get("matrix")).get(matrix.group(1))
                if isinstance(options, list) and options and all(not isinstance(o, (dict, list)) for o in options):
                    labels += [Resolved(scalar_text(o), True, "matrix") for o in options]
                    continue
            labels.append(resolve(value, Scope(inputs=self.workflow.inputs), source=f"runs-on of job {self.id!r}"))
        return labels


@dataclass
class Workflow:
    path: Path
    rel: str
    data: LineDict
    jobs: list[Job] = field(default_factory=list)

    @property
    def triggers(self) -> dict[str, Any]:
        raw = self.data.get("on")
        if isinstance(raw, str):
            return {raw: None}
        if isinstance(raw, list):
            return {str(t): None for t in raw}
        return dict(raw) if isinstance(raw, dict) else {}

    @property
    def inputs(self) -> dict[str, Resolved]:
        """Declared workflow_call / workflow_dispatch inputs at their defaults."""
        found: dict[str, Resolved] = {}
        for trigger in ("workflow_call", "workflow_dispatch"):
            block = as_mapping(as_mapping(self.triggers.get(trigger)).get("inputs"))
            for name, spec in block.items():
                default = spec.get("default") if isinstance(spec, dict) else None
                found.setdefault(
                    str(name), resolve(default, Scope(), source=f"default of {trigger} input {name!r} in {self.rel}")
                )
        return found

    def steps(self) -> Iterator[Step]:
        for job in self.jobs:
            yield from job.steps


def load_workflow(path: Path, rel: str) -> Workflow:
    # A workflow is a regular file of the repository: a link (to /proc/self/environ,
    # to a file outside the checkout) is refused, not followed.
    data = load_yaml(path, follow_symlinks=False)
    if not isinstance(data, LineDict):
        raise YamlError(f"{rel}: not a workflow (top level is not a mapping)")
    workflow = Workflow(path, rel, data)
    for job_id, job_data in as_mapping(data.get("jobs")).items():
        if not isinstance(job_data, LineDict):
            continue
        job = Job(workflow, str(job_id), job_data)
        job.steps = [
            Step(workflow, job, i, s) for i, s in enumerate(job_data.get("steps") or []) if isinstance(s, LineDict)
        ]
        workflow.jobs.append(job)
    return workflow


# --------------------------------------------------------------------------- the repository

# "./path" (the checkout) and "$/path" (GitHub's self-repository syntax: the
# repository of the file that says it), both resolved in the repository checked.
_LOCAL_ACTION = re.compile(r"^(?:\./|\$/)(?P<path>[^@]*?)/?$")
_REMOTE_ACTION = re.compile(r"^(?P<owner>[\w.-]+)/(?P<repo>[\w.-]+)(?:/(?P<path>[^@]+?))?/?@(?P<ref>.+)$")


@dataclass
class ActionRef:
    """Where a ``uses:`` points, as far as tw-gates is concerned."""

    uses: str
    tw_gates_action: str | None  # "ingest" for .../actions/ingest; "" for the umbrella
    action: CompositeAction | None


class RepoConfig:
    """The workflows of one repository plus the composite actions they use.

    ``tw_gates_root`` is the tw-gates checkout whose actions a remote
    ``org/tw-gates/actions/<name>@ref`` is read from (the same actions, at
    this tool's version), since the static check cannot fetch remote code."""

    def __init__(self, repo_dir: str | Path, *, tw_gates_root: Path | None = None) -> None:
        self.root = Path(repo_dir)
        if not self.root.is_dir():
            raise UsageError(f"repository folder not found: {self.root}")
        self.tw_gates_root = tw_gates_root if tw_gates_root is not None else default_tw_gates_root()
        self.workflows: list[Workflow] = []
        self.errors: list[str] = []
        self._actions: dict[Path, CompositeAction | None] = {}
        wf_dir = self.root / WORKFLOWS_DIR
        if wf_dir.is_symlink():
            self.errors.append(f"{WORKFLOWS_DIR} is a symbolic link: not followed, no workflow read")
        elif wf_dir.is_dir():
            for path in sorted(list(wf_dir.glob("*.yml")) + list(wf_dir.glob("*.yaml"))):
                rel = path.relative_to(self.root).as_posix()
                try:
                    self.workflows.append(load_workflow(path, rel))
                except YamlError as exc:
                    self.errors.append(str(exc).replace(str(self.root) + "/", ""))

    def workflow(self, name: str) -> Workflow | None:
        return next((w for w in self.workflows if Path(w.rel).name == name), None)

    def rel(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return path.as_posix()

    def action_ref(self, uses: str) -> ActionRef:
        local = _LOCAL_ACTION.match(uses)
        if local:
            sub = local.group("path") or ""
            sub = "" if sub in (".", "./") else sub  # "./" and "$/." both name the repository root
            target = (self.root / sub).resolve()
            name = _tw_gates_action_name(sub, umbrella=self._is_tw_gates_umbrella(target) if not sub else False)
            action = self._load(target, f"./{sub}" if sub else ".")
            if action is None and name and self.tw_gates_root is not None and not target.exists():
                # A folder the job creates (gates.yml's .tw-gates/): the bundled action of that name.
                action = self._load(self.tw_gates_root / "actions" / name, uses)
            return ActionRef(uses, name, action)
        remote = _REMOTE_ACTION.match(uses)
        # A remote tw-gates action: <owner>/<repo with "tw-gates" in its name>[/actions/<name>]@ref.
        if remote and "tw-gates" in remote.group("repo").lower() and self.tw_gates_root is not None:
            sub = remote.group("path") or ""
            name = _tw_gates_action_name(sub, umbrella=not sub)
            if name is not None:
                return ActionRef(uses, name, self._load(self.tw_gates_root / sub, uses))
        return ActionRef(uses, None, None)

    def _is_tw_gates_umbrella(self, target: Path) -> bool:
        action = self._load(target, ".")
        if action is None:
            return False
        data = as_mapping(load_yaml(action.path))
        return str(data.get("name", "")).strip().lower() == "tw-gates"

    def _load(self, directory: Path, rel: str) -> CompositeAction | None:
        key = directory.resolve()
        if key not in self._actions:
            try:
                self._actions[key] = load_action(directory, rel.rstrip("/"))
            except YamlError as exc:
                self.errors.append(str(exc))
                self._actions[key] = None
        return self._actions[key]


def _tw_gates_action_name(sub: str, *, umbrella: bool) -> str | None:
    if umbrella:
        return ""
    match = re.fullmatch(r"(?:.*/)?actions/([\w.-]+)", sub.strip("/"))
    return match.group(1) if match else None


def default_tw_gates_root() -> Path | None:
    """The tw-gates action definitions this package ships (actions/ and the
    umbrella action.yml, inside its data)."""
    return DATA_DIR if (DATA_DIR / "actions").is_dir() else None
