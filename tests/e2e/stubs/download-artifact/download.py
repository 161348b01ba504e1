"""Stand-in for actions/download-artifact (v4) under nektos/act, offline.

Copies artifacts that the upload stand-in stored in ``$TW_E2E_ARTIFACT_DIR``
back into the workspace, with the real action's layout: one named artifact
goes into ``path`` itself; several go into ``path/<name>/`` unless
merge-multiple. Downloads from another run (run-id) are refused: the test
should give those to the GitHub emulator instead. Runs on the runner's
python3, standard library only."""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import sys
from pathlib import Path


def fail(message: str) -> None:
    print(f"::error title=download-artifact stand-in::{message}", flush=True)
    sys.exit(1)


def set_output(name: str, value: str) -> None:
    with open(os.environ["GITHUB_OUTPUT"], "a", encoding="utf-8") as fh:
        fh.write(f"{name}={value}\n")


def load_artifacts(store: Path) -> list[dict]:
    meta = store / ".meta"
    if not meta.is_dir():
        return []
    return sorted((json.loads(p.read_text(encoding="utf-8")) for p in meta.glob("*.json")), key=lambda a: a["id"])


def copy_artifact(store: Path, artifact: dict, dest: Path) -> None:
    for rel in artifact["files"]:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(store / artifact["name"] / rel, dest / rel)


def main() -> None:
    folder = os.environ.get("TW_E2E_ARTIFACT_DIR")
    if not folder:
        fail("TW_E2E_ARTIFACT_DIR is not set: this stand-in only runs under the e2e act rig")
    store = Path(folder)
    run_id = os.environ.get("STUB_RUN_ID") or ""
    if run_id and run_id != os.environ.get("GITHUB_RUN_ID", ""):
        fail(
            f"run-id {run_id}: the stand-in holds only this act run's artifacts; "
            "serve another run's artifacts from the GitHub emulator"
        )
    name = (os.environ.get("STUB_NAME") or "").strip()
    ids = [i.strip() for i in (os.environ.get("STUB_ARTIFACT_IDS") or "").split(",") if i.strip()]
    if name and ids:
        fail("Inputs 'name' and 'artifact-ids' cannot be used together. Please specify only one.")
    dest = Path(os.path.expanduser(os.environ.get("STUB_PATH") or os.environ.get("GITHUB_WORKSPACE") or "."))
    dest = (Path.cwd() / dest).resolve()
    merge = (os.environ.get("STUB_MERGE_MULTIPLE") or "false").lower() == "true"
    artifacts = load_artifacts(store)

    if name:
        match = [a for a in artifacts if a["name"] == name]
        if not match:
            fail(
                f"Unable to download artifact(s): Artifact not found for name: {name}\n"
                "        Please ensure that your artifact is not expired and the artifact was uploaded using a "
                "compatible version of toolkit/upload-artifact."
            )
        copy_artifact(store, match[0], dest)
        print(f"Artifact download completed successfully. ({name} -> {dest})")
    else:
        if ids:
            wanted = set(ids)
            chosen = [a for a in artifacts if str(a["id"]) in wanted]
            missing = wanted - {str(a["id"]) for a in chosen}
            if missing:
                fail(f"Unable to download artifact(s): Artifacts not found for ids: {', '.join(sorted(missing))}")
        else:
            pattern = os.environ.get("STUB_PATTERN") or ""
            chosen = [a for a in artifacts if not pattern or fnmatch.fnmatchcase(a["name"], pattern)]
        # One artifact picked by id lands in path itself, as with name.
        single = len(ids) == 1 and len(chosen) == 1
        for artifact in chosen:
            copy_artifact(store, artifact, dest if merge or single else dest / artifact["name"])
        print(f"Total of {len(chosen)} artifact(s) downloaded")
    set_output("download-path", str(dest))


if __name__ == "__main__":
    main()
