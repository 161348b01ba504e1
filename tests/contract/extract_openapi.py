"""Extract the part of GitHub's REST description that tw-gates speaks.

GitHub publishes its REST API as an OpenAPI document; the npm package
``@octokit/openapi`` ships it (``generated/api.github.com.json``). This script
downloads one pinned version of that package with ``npm pack``, checks its
integrity against the registry's, and writes ``api.github.com.subset.json``: the
operations listed in ``operations.txt``, everything they reference under
``components`` (schemas, parameters, responses, headers), and where it came from.
Prose (descriptions, examples) is left out; nothing else is changed.

    python tests/contract/extract_openapi.py                 # the pinned version
    python tests/contract/extract_openapi.py --version X.Y.Z # move the pin (edit PINNED too)
    python tests/contract/extract_openapi.py --package DIR   # an unpacked package, no npm

The subset is committed; the test suite reads it and never touches npm.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PACKAGE = "@octokit/openapi"
PINNED = "23.0.2"
DESCRIPTION = "generated/api.github.com.json"
OUTPUT = HERE / "api.github.com.subset.json"
OPERATIONS = HERE / "operations.txt"
_PROSE = {"description", "summary", "examples", "example", "externalDocs", "tags", "x-github"}


def read_operations(path: Path = OPERATIONS) -> list[tuple[str, str]]:
    ops = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            method, template = line.split()
            ops.append((method.lower(), template))
    return ops


def fetch(version: str, workdir: Path) -> tuple[Path, dict[str, str]]:
    """``npm pack`` the package; returns the unpacked folder and the tarball's provenance."""
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm is not installed (the package comes from the npm registry)")
    meta = json.loads(
        subprocess.run(
            [npm, "view", f"{PACKAGE}@{version}", "dist", "--json"],
            check=True,
            capture_output=True,
            text=True,
            timeout=300,
        ).stdout
    )
    subprocess.run(
        [npm, "pack", f"{PACKAGE}@{version}", "--pack-destination", str(workdir)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    [tarball] = workdir.glob("*.tgz")
    data = tarball.read_bytes()
    algo, _, expected = meta["integrity"].partition("-")
    actual = base64.b64encode(hashlib.new(algo, data).digest()).decode()
    if actual != expected:
        raise SystemExit(f"{tarball.name}: integrity {algo}-{actual} does not match the registry's {meta['integrity']}")
    with tarfile.open(tarball) as tar:
        tar.extractall(workdir, filter="data")
    return workdir / "package", {"integrity": meta["integrity"], "sha256": hashlib.sha256(data).hexdigest()}


def _strip(node: Any, *, in_properties: bool = False) -> Any:
    """Drop prose; keep every key of a ``properties`` map (a property may be called ``description``)."""
    if isinstance(node, list):
        return [_strip(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if not in_properties and key in _PROSE:
            continue
        out[key] = _strip(value, in_properties=key == "properties" and not in_properties)
    return out


def _refs(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            found.add(ref)
        for value in node.values():
            found |= _refs(value)
    elif isinstance(node, list):
        for item in node:
            found |= _refs(item)
    return found


def subset(document: dict[str, Any], operations: list[tuple[str, str]]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for method, template in operations:
        item = document["paths"].get(template, {})
        if method not in item:
            raise SystemExit(f"{method.upper()} {template} is not in GitHub's description")
        paths.setdefault(template, {})[method] = _strip(item[method])
    components: dict[str, dict[str, Any]] = {}
    pending = _refs(paths)
    seen: set[str] = set()
    while pending:
        ref = pending.pop()
        if ref in seen:
            continue
        seen.add(ref)
        _, _, section, name = ref.split("/", 3)  # "#/components/<section>/<name>"
        target = _strip(document["components"][section][name])
        components.setdefault(section, {})[name] = target
        pending |= _refs(target) - seen
    return {
        "openapi": document["openapi"],
        "paths": dict(sorted(paths.items())),
        "components": {k: dict(sorted(v.items())) for k, v in sorted(components.items())},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", default=PINNED)
    parser.add_argument("--package", type=Path, help="an unpacked @octokit/openapi folder (no download)")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        if args.package:
            folder, provenance = args.package, {}
        else:
            folder, provenance = fetch(args.version, Path(tmp))
        manifest = json.loads((folder / "package.json").read_text())
        document = json.loads((folder / DESCRIPTION).read_text())
    result = {
        "x-source": {
            "package": manifest["name"],
            "version": manifest["version"],
            "file": DESCRIPTION,
            **provenance,
            "extracted_by": "tests/contract/extract_openapi.py",
        },
        **subset(document, read_operations()),
    }
    args.output.write_text(json.dumps(result, indent=1, sort_keys=False) + "\n")
    ops = sum(len(v) for v in result["paths"].values())
    schemas = len(result["components"].get("schemas", {}))
    print(f"{args.output.name}: {ops} operations, {schemas} schemas from {manifest['name']}@{manifest['version']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
