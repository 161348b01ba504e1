"""A repository's GitHub Actions configuration, parsed (YAML, not grep).

The static gates (G1 verify-nets, G4 hmac-policy, G5 telemetry-check) ask
questions such as "which steps run the ingest gate, and with what value of
POLICY_REQUIRE_HMAC?". Answering them needs the structure GitHub itself sees:
workflows, jobs, steps, the env each step really gets (workflow < job < step,
and a composite action's own step env on top), the inputs a step passes to an
action and the defaults the action declares.

YAML is read the way GitHub reads it (YAML 1.2 booleans: only true/false, so
``on:`` stays the string "on"), with line numbers kept for evidence and
annotations. Expressions (``${{ ... }}``) are resolved only where the value is
knowable from the files: literals, ``inputs.X`` (with the caller's ``with:``
or the declared default), ``env.X`` and ``a || b``. Anything else (``vars``,
``secrets``, functions) is reported as not statically known."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tw_gates import DATA_DIR
from tw_gates.core.errors import UsageError
from tw_gates.core.fsio import FileTooLarge, read_bytes_limited

MAX_YAML_BYTES = 1024 * 1024
WORKFLOWS_DIR = ".github/workflows"
TRUTHY = {"true", "1", "yes", "on", "y", "t"}  # what pydantic accepts as True for a bool setting


class YamlError(Exception):
    """A file that is not valid YAML (or too large); message names the file and line."""


class LineDict(dict):
    """A mapping that remembers the line (1-based) it starts on and each key's line."""

    line: int = 0
    key_lines: dict[str, int]

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans and line numbers on mappings."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    result = LineDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        key = key if isinstance(key, str) else str(key).lower() if isinstance(key, bool) else str(key)
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(path: Path) -> Any:
    """Parse one YAML file; YamlError with file and line on failure."""
    try:
        data = read_bytes_limited(path, MAX_YAML_BYTES)
    except FileTooLarge as exc:
        raise YamlError(f"{path}: {exc}") from None
    except OSError as exc:
        raise YamlError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        return yaml.load(data.decode("utf-8"), Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except UnicodeDecodeError:
        raise YamlError(f"{path}: not UTF-8 text") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise YamlError(f"{path}{where}: invalid YAML: {problem}") from None


def _mapping(value: Any) -> LineDict:
    if isinstance(value, LineDict):
        return value
    empty = LineDict()
    empty.line, empty.key_lines = 0, {}
    return empty


def _env_of(value: Any) -> dict[str, str]:
    """An ``env:`` block as strings (YAML true becomes "true", as GitHub does)."""
    if not isinstance(value, dict):
        return {}
    return {str(k): _scalar_text(v) for k, v in value.items()}


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


# --------------------------------------------------------------------------- expressions

_EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}", re.S)
_LITERAL_STRING = re.compile(r"^'((?:[^']|'')*)'$")
_CONTEXT_REF = re.compile(r"^(inputs|env)\.([A-Za-z_][A-Za-z0-9_-]*)$|^(inputs|env)\[\s*'([^']+)'\s*\]$")


@dataclass(frozen=True)
class Resolved:
    """The statically known value of a setting, or why it is not known."""

    value: str | None  # None: not set at all
    known: bool = True
    source: str = ""  # where the value comes from, for evidence

    @property
    def is_true(self) -> bool:
        return self.known and self.value is not None and self.value.strip().lower() in TRUTHY


@dataclass
class Scope:
    """What an expression may refer to at one place: env visible there and the
    inputs of the enclosing workflow_call / workflow_dispatch or composite action."""

    env: dict[str, Resolved] = field(default_factory=dict)
    inputs: dict[str, Resolved] = field(default_factory=dict)


def resolve(raw: Any, scope: Scope, *, source: str) -> Resolved:
    """Resolve a scalar that may be an expression. Only a whole-value
    expression is evaluated; text mixed with an expression is 'not known'."""
    if raw is None:
        return Resolved(None, True, source)
    text = _scalar_text(raw)
    match = _EXPR.fullmatch(text.strip())
    if not match:
        if "${{" in text:
            return Resolved(text, False, f"{source} (mixes text and an expression)")
        return Resolved(text, True, source)
    return _evaluate(match.group(1), scope, source)


def _split_or(expr: str) -> list[str]:
    parts, depth, quote, current = [], 0, False, []
    i = 0
    while i < len(expr):
        ch = expr[i]
        if ch == "'":
            quote = not quote
        elif not quote and ch in "([":
            depth += 1
        elif not quote and ch in ")]":
            depth -= 1
        elif not quote and depth == 0 and expr.startswith("||", i):
            parts.append("".join(current).strip())
            current = []
            i += 2
            continue
        current.append(ch)
        i += 1
    parts.append("".join(current).strip())
    return parts


def _evaluate(expr: str, scope: Scope, source: str) -> Resolved:
    alternatives = _split_or(expr)
    if len(alternatives) > 1:
        # a || b: the first truthy operand (GitHub's falsy: '', false, 0, null).
        for alternative in alternatives:
            value = _evaluate(alternative, scope, source)
            if not value.known:
                return Resolved(None, False, f"{source} (`{expr}` depends on {value.source})")
            if value.value not in (None, "", "false", "0"):
                return value
        return Resolved("", True, source)
    term = expr.strip()
    literal = _LITERAL_STRING.match(term)
    if literal:
        return Resolved(literal.group(1).replace("''", "'"), True, source)
    if term in ("true", "false"):
        return Resolved(term, True, source)
    if re.fullmatch(r"-?\d+(\.\d+)?", term):
        return Resolved(term, True, source)
    if term == "null":
        return Resolved(None, True, source)
    ref = _CONTEXT_REF.match(term)
    if ref:
        context = ref.group(1) or ref.group(3)
        name = ref.group(2) or ref.group(4)
        table = scope.inputs if context == "inputs" else scope.env
        found = table.get(name)
        if found is None:
            # An undeclared input or unset env variable is empty, as on GitHub.
            return Resolved(None, True, f"{source} ({context}.{name} is not set)")
        return Resolved(found.value, found.known, f"{source} via {context}.{name} = {found.source}")
    return Resolved(None, False, f"{source} (`${{{{ {term} }}}}` is only known at run time)")


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
            data = _mapping(load_yaml(path))
            inputs = {
                str(k): ActionInput(
                    str(k),
                    (v or {}).get("default") if isinstance(v, dict) else None,
                    bool((v or {}).get("required")) if isinstance(v, dict) else False,
                )
                for k, v in _mapping(data.get("inputs")).items()
            }
            runs = _mapping(data.get("runs"))
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
        return _mapping(self.data.get("with"))

    @property
    def if_(self) -> str:
        return _scalar_text(self.data.get("if")).strip()

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
            for name, raw in _env_of(block).items():
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
            text = _scalar_text(value)
            matrix = re.fullmatch(r"\$\{\{\s*matrix\.([A-Za-z_][\w-]*)\s*\}\}", text.strip())
            if matrix:
                options = _mapping(_mapping(self.data.get("strategy")).get("matrix")).get(matrix.group(1))
                if isinstance(options, list) and options and all(not isinstance(o, (dict, list)) for o in options):
                    labels += [Resolved(_scalar_text(o), True, "matrix") for o in options]
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
            block = _mapping(_mapping(self.triggers.get(trigger)).get("inputs"))
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
    data = load_yaml(path)
    if not isinstance(data, LineDict):
        raise YamlError(f"{rel}: not a workflow (top level is not a mapping)")
    workflow = Workflow(path, rel, data)
    for job_id, job_data in _mapping(data.get("jobs")).items():
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
        if wf_dir.is_dir():
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
        data = _mapping(load_yaml(action.path))
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


# --------------------------------------------------------------------------- commands in run: scripts


def tw_gates_invocations(script: str) -> list[list[str]]:
    """The ``tw-gates <command> ...`` calls in a ``run:`` script, as argv lists
    starting at the subcommand. Shell syntax is tokenised with shlex; a line we
    cannot tokenise is skipped."""
    calls: list[list[str]] = []
    for line in _logical_lines(script):
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            continue
        for i, word in enumerate(words):
            base = word.rsplit("/", 1)[-1]
            if base == "tw-gates" or (base in ("python", "python3") and words[i + 1 : i + 3] == ["-m", "tw_gates"]):
                start = i + 1 if base == "tw-gates" else i + 3
                argv = []
                for token in words[start:]:
                    if token in ("&&", "||", ";", "|"):
                        break
                    argv.append(token)
                if argv:
                    calls.append(argv)
    return calls


def _logical_lines(script: str) -> Iterator[str]:
    buffer = ""
    for raw in script.splitlines():
        if raw.rstrip().endswith("\\"):
            buffer += raw.rstrip()[:-1] + " "
            continue
        yield buffer + raw
        buffer = ""
    if buffer:
        yield buffer


def flag_value(argv: list[str], *names: str) -> str | None:
    """The value of ``--name VALUE`` or ``--name=VALUE`` in argv."""
    for i, token in enumerate(argv):
        for name in names:
            if token == name and i + 1 < len(argv):
                return argv[i + 1]
            if token.startswith(name + "="):
                return token[len(name) + 1 :]
    return None


# --------------------------------------------------------------------------- where tw-gates runs

_VAR = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


@dataclass
class Invocation:
    """One place a workflow step runs a tw-gates command.

    ``env`` is the environment the command gets there (caller's env chain,
    overridden by the composite action's own step env); ``argv`` is what
    follows the subcommand, with ``$VAR`` expanded where the value is known."""

    step: Step
    command: str
    argv: list[str]
    env: dict[str, Resolved]
    via: str  # "run:", "./actions/ingest", "org/tw-gates@v3 (gates: all)"
    action: CompositeAction | None = None
    action_step_index: int | None = None  # the action step that runs the command
    unknown_args: bool = False

    @property
    def where(self) -> str:
        return self.step.where

    def setting(self, env_name: str, *flags: str) -> Resolved | None:
        """A setting given by flag (wins) or environment variable; None if neither."""
        value = flag_value(self.argv, *flags) if flags else None
        if value is not None:
            return Resolved(value, "$" not in value, f"{' / '.join(flags)} of `tw-gates {self.command}` in {self.via}")
        return self.env.get(env_name)


def _expand(token: str, env: dict[str, Resolved]) -> tuple[str, bool]:
    known = True

    def sub(match: re.Match[str]) -> str:
        nonlocal known
        name = match.group(1) or match.group(2)
        value = env.get(name)
        if value is None or not value.known:
            known = False
            return match.group(0)
        return value.value or ""

    return _VAR.sub(sub, token), known


def _calls_in(script: str, env: dict[str, Resolved]) -> list[tuple[str, list[str], bool]]:
    found = []
    for argv in tw_gates_invocations(script):
        expanded, all_known = [], True
        for token in argv:
            text, known = _expand(token, env)
            expanded.append(text)
            all_known = all_known and known
        found.append((expanded[0], expanded[1:], not all_known))
    return found


def invocations(repo: RepoConfig) -> list[Invocation]:
    """Every tw-gates command the repository's workflows run, in file order."""
    found: list[Invocation] = []
    for workflow in repo.workflows:
        for step in workflow.steps():
            env = step.env_chain()
            if step.run is not None:
                for command, argv, unknown in _calls_in(step.run, env):
                    found.append(Invocation(step, command, argv, env, "run:", unknown_args=unknown))
            elif step.uses:
                ref = repo.action_ref(step.uses)
                if ref.tw_gates_action is None or ref.action is None:
                    continue
                action = ref.action
                inputs = action.input_scope(step.given_inputs())
                for index, action_step in enumerate(action.steps):
                    run = action_step.get("run")
                    if run is None:
                        continue
                    inner_env = dict(env)
                    scope = Scope(env=dict(env), inputs=inputs)
                    for name, raw in _env_of(action_step.get("env")).items():
                        inner_env[name] = resolve(raw, scope, source=f"env of {action.rel} step {index + 1}")
                    via = step.uses
                    for command, argv, unknown in _calls_in(str(run), inner_env):
                        found.append(Invocation(step, command, argv, inner_env, via, action, index, unknown))
    return found


def chain_gates(invocation: Invocation) -> list[str] | None:
    """The gates a ``tw-gates gates`` invocation runs (None: selection not
    known statically, or names tw-gates does not know)."""
    if invocation.command != "gates":
        return None
    selection = flag_value(invocation.argv, "--only", "--select")
    if selection is None:
        selection = "all"
    if "$" in selection:
        return None
    from tw_gates.chain import run as chain
    from tw_gates.core.errors import TwGatesError

    try:
        return [gate.name for gate in chain.select(selection)]
    except TwGatesError:
        return None
