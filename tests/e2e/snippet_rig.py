"""The README's YAML snippets as tests: extract them, place them, run them.

Every ```yaml block of the README (and of the docs pages that show workflow
snippets) is a ``Snippet``. In the README, an HTML comment right above the block
says where it goes::

    <!-- snippet: consumer workflow -->           a whole workflow of a consumer repository
    <!-- snippet: consumer steps -->              steps after the checkout, in a consumer job
    <!-- snippet: central workflow ingest.yml --> a workflow of the central repository, by file name
    <!-- snippet: central steps -->
    <!-- snippet: central file consumer_registry.yml -->   a file of the central repository

A README block without that comment is an error (the tests say which). In the docs
pages (which do not carry the comments) a block with ``jobs:`` is a central
workflow, anything else a fragment of a configuration file: it must parse.

The scratch repositories are real git repositories that know nothing of tw-gates;
``org/tw-gates@v3`` (and ``org/tw-gates/...@v3``) is mapped to a copy of this
checkout, whose own ``$/`` self references are rewritten the way act_rig does for
the repository under test. Snippets of one role run together: the workflow
snippets' jobs and the wrapped steps become one workflow (job ids prefixed, top
level permissions/env/concurrency moved to the jobs), so a role costs one act run
(the central role three: its baseline, its scheduled work, its phase 0)."""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.e2e.act_rig import STUBS_DIR, ActRig, load_yaml, snapshot_working_tree, translate_self_references

REPO_ROOT = Path(__file__).resolve().parents[2]
TW_GATES = "org/tw-gates"
# Pages whose YAML blocks are tested: the README, and the docs pages that show snippets.
SNIPPET_PAGES = ("README.md", "docs/canary.md", "docs/file-issues.md", "docs/phases.md", "docs/ingest.md")
CHECKOUT_STEP = {
    "uses": "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683",
    "with": {"persist-credentials": False},
}
CODEQL_STAND_IN = STUBS_DIR / "codeql-action"
_ANNOTATION = re.compile(r"<!--\s*snippet:\s*(?P<body>[^>]*?)\s*-->")
_FENCE = re.compile(r"^```(?P<lang>[\w-]*)\s*$")
_KINDS = {"workflow", "steps", "file"}


@dataclass
class Snippet:
    page: str  # README.md, docs/canary.md
    line: int  # of the opening fence, 1-based
    text: str
    role: str | None = None  # consumer | central; None: not annotated (an error in the README)
    kind: str = "fragment"  # workflow | steps | file | fragment
    target: str | None = None  # workflow file name (workflow) or path (file)
    problem: str | None = None  # a malformed annotation

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"

    def data(self) -> Any:
        return yaml.safe_load(self.text)


def _annotation(lines: list[str], fence: int) -> str | None:
    """The snippet comment on the last non-blank line above the fence, if any."""
    index = fence - 1
    while index >= 0 and not lines[index].strip():
        index -= 1
    match = _ANNOTATION.fullmatch(lines[index].strip()) if index >= 0 else None
    return match.group("body") if match else None


def _apply(snippet: Snippet, body: str) -> None:
    words = body.split()
    if len(words) < 2 or words[0] not in ("consumer", "central") or words[1] not in _KINDS:
        snippet.problem = f"bad snippet comment {body!r}: '<role> <kind> [name]', role consumer|central"
        return
    snippet.role, snippet.kind = words[0], words[1]
    snippet.target = words[2] if len(words) > 2 else None
    if snippet.kind == "file" and not snippet.target:
        snippet.problem = "a 'file' snippet names its path"


def extract(page: str, root: Path = REPO_ROOT) -> list[Snippet]:
    """Every ```yaml block of ``page``, with where it goes."""
    lines = (root / page).read_text(encoding="utf-8").splitlines()
    found: list[Snippet] = []
    index = 0
    while index < len(lines):
        match = _FENCE.match(lines[index].strip())
        if not match or match.group("lang") not in ("yaml", "yml"):
            index += 1
            continue
        indent = len(lines[index]) - len(lines[index].lstrip())
        end = index + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        text = "\n".join(line[indent:] for line in lines[index + 1 : end]) + "\n"
        snippet = Snippet(page, index + 1, text)
        body = _annotation(lines, index)
        if body is not None:
            _apply(snippet, body)
        elif page != "README.md":
            _infer(snippet)
        found.append(snippet)
        index = end + 1
    return found


def _infer(snippet: Snippet) -> None:
    """Docs pages: a block with jobs is a workflow of the central repository."""
    try:
        data = snippet.data()
    except yaml.YAMLError:
        return  # reported by the parse test
    if isinstance(data, dict) and "jobs" in data:
        snippet.role, snippet.kind = "central", "workflow"
        snippet.target = f"{Path(snippet.page).stem}-{snippet.line}.yml"


def all_snippets(root: Path = REPO_ROOT) -> list[Snippet]:
    return [s for page in SNIPPET_PAGES if (root / page).is_file() for s in extract(page, root)]


# --------------------------------------------------------------------------- workflows


def as_workflow(snippet: Snippet) -> dict[str, Any]:
    """The snippet as a whole workflow (steps: one job, checked out first)."""
    if snippet.kind == "workflow":
        doc = snippet.data()
        if True in doc and "on" not in doc:  # YAML 1.1 reads `on` as a boolean
            doc["on"] = doc.pop(True)
        return doc
    if snippet.kind == "steps":
        return {
            "name": f"snippet {snippet.where}",
            "on": "push",
            "permissions": {},
            "jobs": {"snippet": steps_job(snippet)},
        }
    raise ValueError(f"{snippet.where}: a {snippet.kind} snippet is not a workflow")


def steps_job(snippet: Snippet) -> dict[str, Any]:
    return {
        "runs-on": "ubuntu-latest",
        "permissions": {"contents": "read"},
        "steps": [copy.deepcopy(CHECKOUT_STEP), *snippet.data()],
    }


def job_id(index: int, name: str) -> str:
    return f"s{index}-{name}"


def merge(snippets: Iterable[Snippet], name: str) -> tuple[str, dict[int, Snippet]]:
    """One push workflow holding every job of the snippets; {index: snippet}.

    A snippet's jobs keep their ids behind a prefix ``s<index>-`` (their `needs:`
    too); its top-level permissions, env and concurrency move to each of its jobs."""
    jobs: dict[str, Any] = {}
    placed: dict[int, Snippet] = {}
    for index, snippet in enumerate(snippets):
        placed[index] = snippet
        doc = as_workflow(snippet)
        for key, job in (doc.get("jobs") or {}).items():
            job = copy.deepcopy(job)
            for field in ("permissions", "concurrency"):
                if field in doc and field not in job:
                    job[field] = copy.deepcopy(doc[field])
            if doc.get("env"):
                job["env"] = {**doc["env"], **(job.get("env") or {})}
            needs = job.get("needs")
            if needs:
                job["needs"] = [job_id(index, n) for n in ([needs] if isinstance(needs, str) else needs)]
            jobs[job_id(index, key)] = job
    workflow = {"name": name, "on": "push", "permissions": {}, "jobs": jobs}
    return yaml.safe_dump(workflow, sort_keys=False, width=200), placed


def actionlint(workflows: dict[str, str], actionlint_bin: str, folder: Path) -> subprocess.CompletedProcess[str]:
    """actionlint on these workflow texts, written as .github/workflows/<name> in a fresh folder."""
    target = folder / ".github" / "workflows"
    target.mkdir(parents=True, exist_ok=True)
    for file_name, text in workflows.items():
        (target / file_name).write_text(text, encoding="utf-8")
    subprocess.run(["git", "init", "-q"], cwd=folder, check=True)
    return subprocess.run(
        [actionlint_bin, "-no-color", *sorted(str(p) for p in target.iterdir())],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
    )


# --------------------------------------------------------------------------- scratch repositories


def git(folder: Path, *args: str) -> str:
    base = [
        "git",
        "-c",
        "user.name=snippets",
        "-c",
        "user.email=snippets@tw-gates.invalid",
        "-c",
        "commit.gpgsign=false",
    ]
    return subprocess.run([*base, *args], cwd=folder, check=True, capture_output=True, text=True).stdout.strip()


def init_repository(folder: Path, repository: str, files: dict[str, str]) -> Path:
    """A git repository at ``folder`` with these files, origin github.com/<repository>."""
    for rel, text in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        if rel.endswith(".sh"):
            path.chmod(0o755)
    git(folder, "init", "-q", "-b", "main")
    git(folder, "remote", "add", "origin", f"https://github.com/{repository}.git")
    git(folder, "add", "-A")
    git(folder, "commit", "-q", "-m", "scratch repository")
    return folder


def commit_all(folder: Path, message: str) -> str:
    git(folder, "add", "-A")
    git(folder, "commit", "-q", "--allow-empty", "-m", message)
    return git(folder, "rev-parse", "HEAD")


def tw_gates_stand_in(dest: Path, source: Path = REPO_ROOT) -> Path:
    """This checkout as a consumer's ``org/tw-gates@<ref>`` sees it, with ``$/`` rewritten."""
    snapshot_working_tree(dest, source=source, repository=TW_GATES)
    for path in [*dest.glob(".github/workflows/*.yml"), dest / "action.yml", *dest.glob("actions/*/action.yml")]:
        if path.is_file():
            translate_self_references(path, TW_GATES)
    return dest


def scratch_rig(
    *,
    act: str,
    base_dir: Path,
    source: Path,
    repository: str,
    wheelhouse: Path | None,
    api_url: str | None = None,
) -> ActRig:
    """An ActRig whose repository under test is the scratch repository at ``source``."""
    return ActRig(
        act=act, base_dir=base_dir, snapshot=source, wheelhouse=wheelhouse, repository=repository, api_url=api_url
    )


def stand_ins(tw_gates: Path) -> dict[str, Path]:
    return {TW_GATES: tw_gates, "github/codeql-action": CODEQL_STAND_IN}


def merged_wheelhouse(dest: Path, *folders: Path) -> Path:
    """One --find-links folder holding the wheels of several wheelhouses (links)."""
    dest.mkdir(parents=True, exist_ok=True)
    for folder in folders:
        for wheel in folder.iterdir():
            if wheel.is_file() and not (dest / wheel.name).exists():
                (dest / wheel.name).symlink_to(wheel)
    return dest


def workflow_doc(path: Path) -> dict[str, Any]:
    return load_yaml(path)


def copy_file(source: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, dest)
