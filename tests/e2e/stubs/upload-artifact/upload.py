"""Stand-in for actions/upload-artifact (v4) under nektos/act, offline.

Copies the matched files into ``$TW_E2E_ARTIFACT_DIR/<name>/`` laid out as
the real action lays out its zip (paths relative to the least common ancestor
of the search paths), and records the artifact in ``.meta/`` so the
download stand-in and the test can find it. Runs on the runner's python3
(3.8+), standard library only."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
from pathlib import Path

INVALID_NAME_CHARS = set('":<>|*?\r\n\\/')
GLOB_CHARS = re.compile(r"[*?\[]")


def fail(message: str) -> None:
    print(f"::error title=upload-artifact stand-in::{message}", flush=True)
    sys.exit(1)


def store_dir() -> Path:
    folder = os.environ.get("TW_E2E_ARTIFACT_DIR")
    if not folder:
        fail("TW_E2E_ARTIFACT_DIR is not set: this stand-in only runs under the e2e act rig")
    path = Path(folder)
    (path / ".meta" / "ids").mkdir(parents=True, exist_ok=True)
    return path


def glob_regex(pattern: str) -> re.Pattern[str]:
    """Glob -> regex over '/'-separated paths: ** crosses folders, * and ? do not."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 1 :]:
            end = pattern.index("]", i + 1)
            body = pattern[i + 1 : end].replace("\\", "\\\\")
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def split_pattern(line: str) -> tuple[Path, re.Pattern[str] | None]:
    """(search root, regex over paths below it) for one path line; no glob: regex None."""
    path = os.path.expanduser(line.strip())
    if not os.path.isabs(path):
        path = os.path.join(os.getcwd(), path)
    parts = Path(os.path.normpath(path)).parts
    for index, part in enumerate(parts):
        if GLOB_CHARS.search(part):
            return Path(*parts[:index]), glob_regex("/".join(parts[index:]))
    return Path(*parts), None


def walk(root: Path, include_hidden: bool):
    """Files below root (root itself when it is a file), skipping dot-names unless asked."""
    if not include_hidden and root.name.startswith("."):
        return
    if root.is_file():
        yield root
        return
    for folder, dirs, files in os.walk(root):
        if not include_hidden:
            dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in sorted(files):
            if include_hidden or not name.startswith("."):
                yield Path(folder) / name


def matches(root: Path, regex: re.Pattern[str] | None, file: Path) -> bool:
    if regex is None:
        return file == root or root in file.parents
    rel = file.relative_to(root).as_posix()
    # A pattern that names a folder takes everything below it, as @actions/glob does.
    prefixes = [rel] + ["/".join(rel.split("/")[:n]) for n in range(1, rel.count("/") + 1)]
    return any(regex.match(p) for p in prefixes)


def select_files(lines: list[str], include_hidden: bool) -> tuple[list[Path], list[Path]]:
    includes = [split_pattern(line) for line in lines if not line.strip().startswith("!")]
    excludes = [split_pattern(line.strip()[1:]) for line in lines if line.strip().startswith("!")]
    found: dict[Path, None] = {}
    for root, regex in includes:
        for file in walk(root, include_hidden):
            if matches(root, regex, file):
                found[file] = None
    files = [
        f
        for f in found
        if not any((f == root or root in f.parents) and matches(root, regex, f) for root, regex in excludes)
    ]
    return files, [root for root, _ in includes]


def common_root(search_roots: list[Path], files: list[Path]) -> Path:
    root = search_roots[0] if len(search_roots) == 1 else Path(os.path.commonpath([str(r) for r in search_roots]))
    return root.parent if root in files else root


def allocate_id(store: Path, name: str) -> int:
    ids = store / ".meta" / "ids"
    number = len(list(ids.iterdir())) + 1
    while True:
        try:
            fd = os.open(ids / str(number), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            number += 1
            continue
        os.write(fd, name.encode())
        os.close(fd)
        return number


def set_output(name: str, value: str) -> None:
    with open(os.environ["GITHUB_OUTPUT"], "a", encoding="utf-8") as fh:
        fh.write(f"{name}={value}\n")


def main() -> None:
    name = os.environ.get("STUB_NAME") or "artifact"
    if not name.strip() or set(name) & INVALID_NAME_CHARS or name in (".meta", ".", ".."):
        fail(
            f"The artifact name is not valid: {name!r}. "
            'It cannot contain: double quote ", colon :, <, >, |, *, ?, \\r, \\n, backslash \\, slash /'
        )
    lines = [line for line in (os.environ.get("STUB_PATH") or "").splitlines() if line.strip()]
    if not lines:
        fail("Input required and not supplied: path")
    on_missing = (os.environ.get("STUB_IF_NO_FILES_FOUND") or "warn").lower()
    if on_missing not in ("warn", "error", "ignore"):
        fail(f"Unrecognized if-no-files-found input. Provided: {on_missing}. Available options: warn, error, ignore")
    include_hidden = (os.environ.get("STUB_INCLUDE_HIDDEN_FILES") or "false").lower() == "true"
    overwrite = (os.environ.get("STUB_OVERWRITE") or "false").lower() == "true"

    files, search_roots = select_files(lines, include_hidden)
    if not files:
        message = f"No files were found with the provided path: {chr(10).join(lines)}. No artifacts will be uploaded."
        if on_missing == "error":
            fail(message)
        print(f"::warning::{message}" if on_missing == "warn" else message, flush=True)
        return

    store = store_dir()
    target = store / name
    meta = store / ".meta" / f"{name}.json"
    if target.exists():
        if not overwrite:
            fail(
                "Failed to CreateArtifact: Received non-retryable error: Failed request: (409) Conflict: "
                "an artifact with this name already exists on the workflow run"
            )
        shutil.rmtree(target)
        meta.unlink(missing_ok=True)

    root = common_root(search_roots, files)
    staging = store / ".meta" / f"staging-{os.getpid()}"
    digest = hashlib.sha256()
    stored = []
    for file in sorted(files, key=lambda f: f.relative_to(root).as_posix()):
        rel = file.relative_to(root).as_posix()
        (staging / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(file, staging / rel)
        digest.update(rel.encode() + b"\0" + (staging / rel).read_bytes() + b"\0")
        stored.append(rel)
    try:
        os.rename(staging, target)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        fail("Failed to CreateArtifact: (409) Conflict: an artifact with this name already exists on the workflow run")

    artifact_id = allocate_id(store, name)
    server = os.environ.get("GITHUB_SERVER_URL", "https://github.com")
    url = (
        f"{server}/{os.environ.get('GITHUB_REPOSITORY', '')}/actions/runs/{os.environ.get('GITHUB_RUN_ID', '')}"
        f"/artifacts/{artifact_id}"
    )
    meta.write_text(
        json.dumps({"id": artifact_id, "name": name, "files": stored, "digest": digest.hexdigest()}, indent=2),
        encoding="utf-8",
    )
    print(f"With the provided path, there will be {len(stored)} file(s) uploaded")
    print(
        f"Artifact {name} has been successfully uploaded! Final size is "
        f"{sum((target / r).stat().st_size for r in stored)} bytes. Artifact ID is {artifact_id}"
    )
    set_output("artifact-id", str(artifact_id))
    set_output("artifact-url", url)
    set_output("artifact-digest", digest.hexdigest())


if __name__ == "__main__":
    main()
