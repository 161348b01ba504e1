"""Where tw-gates runs in a repository: every ``tw-gates <command>`` its
workflows call, directly in a ``run:`` script or through a tw-gates action,
with the environment that call really gets."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass

from tw_gates.chain import run as chain
from tw_gates.chain.expressions import Resolved, Scope, resolve
from tw_gates.chain.workflow_model import CompositeAction, RepoConfig, Step
from tw_gates.core.errors import TwGatesError
from tw_gates.core.yaml_lines import env_of

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
                found += _action_invocations(repo, step, env)
    return found


def _action_invocations(repo: RepoConfig, step: Step, env: dict[str, Resolved]) -> list[Invocation]:
    """The tw-gates calls inside a tw-gates action a step uses, each with the
    env its own step gives it on top of the caller's."""
    ref = repo.action_ref(step.uses or "")
    if ref.tw_gates_action is None or ref.action is None:
        return []
    action = ref.action
    inputs = action.input_scope(step.given_inputs())
    found = []
    for index, action_step in enumerate(action.steps):
        run = action_step.get("run")
        if run is None:
            continue
        inner_env = dict(env)
        scope = Scope(env=dict(env), inputs=inputs)
        for name, raw in env_of(action_step.get("env")).items():
            inner_env[name] = resolve(raw, scope, source=f"env of {action.rel} step {index + 1}")
        for command, argv, unknown in _calls_in(str(run), inner_env):
            found.append(Invocation(step, command, argv, inner_env, step.uses or "", action, index, unknown))
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

    try:
        return [gate.name for gate in chain.select(selection)]
    except TwGatesError:
        return None
