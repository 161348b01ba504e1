"""An artifact speaks only for where it came from (issue: trust bound to
identity). collect records, from the REST API, where each artifact came from;
ingest binds the artifact's ``repo`` to it, and the registry's ``keys`` bind a
consumer to its key ids; the audit keys on the collected repository."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest

from tw_gates.core.signing import KeyRing

TOKEN = "ghs_provenance_token_for_tests_0123456789"
SHARED = {"shared": "one-key-every-consumer-holds-0123456789"}


def stamp(offset_s: float = 0) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + offset_s))


def artifact(
    repo: str, hits: list[tuple[str, int, str]], *, key: dict[str, str] = SHARED, offset_s: float = 0
) -> bytes:
    kid, secret = next(iter(key.items()))
    document = {
        "schema_version": "1.0",
        "repo": repo,
        "commit": "ab" * 20,
        "branch": "main",
        "generated_at": stamp(offset_s),
        "tool_version": "0.1.0",
        "hits": [{"path": p, "line": n, "pattern": k} for p, n, k in hits],
    }
    return json.dumps(KeyRing(signing_key=secret, signing_kid=kid).sign(document), indent=2).encode()


@pytest.fixture
def world(github_emulator, tmp_path):
    emu = github_emulator
    repos = ("victim/app", "evil/tool")
    for repo in repos:
        emu.add_repo(repo, default_branch="main")
    emu.add_token(TOKEN, kind="app", repo_permissions={r: {"actions": "read"} for r in repos})
    registry = tmp_path / "consumer_registry.yml"
    registry.write_text(
        "schema_version: '1.0'\nconsumers:\n"
        "  - {repo: victim/app, default_branch: main, code_paths: ['safe/**']}\n"
        "  - {repo: evil/tool, default_branch: main}\n"
    )
    return emu, registry


def upload(emu, repo: str, content: bytes, *, age: float = 0, path: str = ".github/workflows/ci.yml") -> int:
    run = emu.add_workflow_run(repo, head_branch="main", event="push", path=path)
    return emu.add_artifact(
        repo, "tw-self-audit", files={"tw-self-audit.json": content}, run_id=run, created_at=time.time() - age
    )


def collect(cli, emu, registry: Path, out: Path, *extra):
    return cli(
        "collect",
        "--registry",
        registry,
        "--out",
        out,
        *extra,
        env={"GITHUB_TOKEN": TOKEN, "GITHUB_API_URL": emu.url, "TW_GITHUB_RETRIES": "0"},
    )


def ingest(cli, tmp_path: Path, *args, keys: dict[str, str] = SHARED):
    code, out, err = cli(
        "ingest",
        *args,
        "--require-hmac",
        "--quarantine",
        tmp_path / "quarantine",
        "--out",
        tmp_path / "accepted.jsonl",
        env={"TW_HMAC_KEYS": json.dumps(keys)},
    )
    assert "Traceback" not in out + err
    rejected = {}
    for line in out.splitlines():
        if line.startswith("REJECTED "):
            where, reason, _ = line[len("REJECTED ") :].split(": ", 2)
            rejected[Path(where).name] = reason
    return code, out + err, rejected


def audit_hits(cli, tmp_path: Path, registry: Path) -> list[tuple[str, str]]:
    report = tmp_path / "audit.json"
    cli(
        "audit",
        "--report",
        report,
        "--registry",
        registry,
        "--artifacts",
        tmp_path / "accepted.jsonl",
        env={"GITHUB_TOKEN": TOKEN, "GITHUB_API_URL": "http://127.0.0.1:9", "TW_HMAC_KEYS": json.dumps(SHARED)},
    )
    return [(h["repo"], h["path"]) for h in json.loads(report.read_text())["unregistered_hits"]]


def test_a_consumer_cannot_erase_another_repositorys_findings_end_to_end(cli, world, tmp_path):
    """The attack as reported: evil/tool's own run uploads an artifact claiming
    victim/app with no hits, signed with the key every consumer holds, dated a
    few minutes ahead so it is the newest. It must not reach the audit."""
    emu, registry = world
    upload(emu, "victim/app", artifact("victim/app", [("app/views.py", 7, "dom-inner-html")], offset_s=-600), age=600)
    upload(emu, "evil/tool", artifact("victim/app", [], offset_s=240))
    code, out, _ = collect(cli, emu, registry, tmp_path / "collected")
    assert code == 0, out
    code, out, rejected = ingest(cli, tmp_path, "--artifact", tmp_path / "collected")
    assert code == 2, out
    assert rejected == {"evil__tool.json": "repo_mismatch"}
    assert "claims victim/app but was collected from evil/tool" in out
    accepted = [json.loads(line) for line in (tmp_path / "accepted.jsonl").read_text().splitlines()]
    assert [(a["repo"], a["provenance"]["repo"]) for a in accepted] == [("victim/app", "victim/app")]
    assert audit_hits(cli, tmp_path, registry) == [("victim/app", "app/views.py")]


def test_the_accepted_record_carries_where_it_came_from(cli, world, tmp_path):
    emu, registry = world
    run = emu.add_workflow_run("victim/app", head_branch="main", event="push", path=".github/workflows/tw.yml")
    artifact_id = emu.add_artifact(
        "victim/app", "tw-self-audit", files={"a.json": artifact("victim/app", [])}, run_id=run
    )
    assert collect(cli, emu, registry, tmp_path / "collected")[0] == 0
    sidecar = json.loads((tmp_path / "collected" / "victim__app.json.provenance").read_text())
    assert sidecar["file"] == "victim__app.json"
    code, out, _ = ingest(cli, tmp_path, "--artifact", tmp_path / "collected", "--require-provenance")
    assert code == 0, out
    (record,) = [json.loads(line) for line in (tmp_path / "accepted.jsonl").read_text().splitlines()]
    provenance = record.pop("provenance")
    assert provenance["repo"] == "victim/app" and provenance["run_id"] == run
    assert provenance["workflow_path"] == ".github/workflows/tw.yml" and provenance["event"] == "push"
    assert provenance["head_branch"] == "main" and provenance["artifact_id"] == artifact_id
    assert provenance["artifact_digest"].startswith("sha256:") and len(provenance["sha256"]) == 64
    assert "file" not in provenance
    # The artifact itself is as received: the signature still verifies without provenance.
    assert KeyRing(SHARED).verify(record) == "shared"


def test_the_central_path_refuses_what_collect_did_not_record(cli, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "direct.json").write_bytes(artifact("victim/app", []))
    # A consumer's own CI: no collection source, nothing to bind to; accepted as it claims.
    code, out, _ = ingest(cli, tmp_path, "--artifact", folder)
    assert code == 0, out
    assert "provenance" not in json.loads((tmp_path / "accepted.jsonl").read_text())
    # The central path requires it.
    code, out, rejected = ingest(cli, tmp_path, "--artifact", folder, "--require-provenance")
    assert code == 2 and rejected == {"direct.json": "missing_provenance"}, out


def _sidecar(path: Path, **changes) -> None:
    record = {
        "file": path.name,
        "repo": "victim/app",
        "run_id": 7,
        "artifact_id": 9,
        "artifact_name": "tw-self-audit",
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "collected_at": stamp(),
        **changes,
    }
    Path(f"{path}.provenance").write_text(json.dumps(record))


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"sha256": "0" * 64}, "changed after it was collected"),
        ({"file": "other.json"}, "describes other.json, not this file"),
        ({"repo": "not a repo"}, "repo"),
        ({"extra": 1}, "extra"),
    ],
    ids=["other-bytes", "other-file", "bad-repo", "unknown-field"],
)
def test_a_provenance_file_that_does_not_describe_the_bytes_is_refused(cli, tmp_path, changes, words):
    folder = tmp_path / "in"
    folder.mkdir()
    path = folder / "victim__app.json"
    path.write_bytes(artifact("victim/app", []))
    _sidecar(path, **changes)
    code, out, rejected = ingest(cli, tmp_path, "--artifact", folder, "--require-provenance")
    assert code == 2 and rejected == {"victim__app.json": "bad_provenance"}, out
    assert words in out


def test_a_provenance_file_that_is_a_link_is_not_followed(cli, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    path = folder / "victim__app.json"
    path.write_bytes(artifact("victim/app", []))
    real = tmp_path / "real.provenance"
    _sidecar(path)
    Path(f"{path}.provenance").rename(real)
    Path(f"{path}.provenance").symlink_to(real)
    _code, out, rejected = ingest(cli, tmp_path, "--artifact", folder, "--require-provenance")
    assert rejected == {"victim__app.json": "bad_provenance"} and "symbolic link" in out


# --- keys bound to consumers ----------------------------------------------------------

VICTIM_KEY = {"victim-2026": "victim-app-own-key-0123456789abcdef01"}
EVIL_KEY = {"evil-2026": "evil-tool-own-key-0123456789abcdef012"}
BOTH = {**VICTIM_KEY, **EVIL_KEY}


def bound_registry(tmp_path: Path, extra: str = "") -> Path:
    registry = tmp_path / "bound.yml"
    registry.write_text(
        "schema_version: '1.0'\n" + extra + "consumers:\n"
        "  - {repo: victim/app, keys: [victim-2026]}\n"
        "  - {repo: evil/tool, keys: [evil-2026]}\n"
        "  - {repo: loose/one}\n"
    )
    return registry


def write_in(tmp_path: Path, name: str, content: bytes) -> Path:
    (tmp_path / "in").mkdir(exist_ok=True)
    path = tmp_path / "in" / name
    path.write_bytes(content)
    return path


def test_a_consumer_signs_only_with_the_keys_the_registry_binds_to_it(cli, tmp_path):
    registry = bound_registry(tmp_path)
    write_in(tmp_path, "genuine.json", artifact("victim/app", [("a.py", 1, "x")], key=VICTIM_KEY))
    write_in(tmp_path, "spoof.json", artifact("victim/app", [], key=EVIL_KEY))  # no provenance: the claim is bound
    write_in(tmp_path, "borrowed.json", artifact("loose/one", [], key=EVIL_KEY))  # evil's key, for another
    write_in(tmp_path, "own.json", artifact("evil/tool", [], key=EVIL_KEY))
    code, out, rejected = ingest(cli, tmp_path, "--artifact", tmp_path / "in", "--registry", registry, keys=BOTH)
    assert code == 2
    assert rejected == {"spoof.json": "kid_not_allowed", "borrowed.json": "kid_not_allowed"}, out
    assert "the registry binds victim/app to victim-2026" in out
    assert "which the registry binds to evil/tool, not loose/one" in out
    assert "1 consumer(s) in" in out and "are not bound to key ids (loose/one)" in out  # said, not refused
    accepted = sorted(json.loads(line)["repo"] for line in (tmp_path / "accepted.jsonl").read_text().splitlines())
    assert accepted == ["evil/tool", "victim/app"]


def test_a_bound_consumer_must_sign_even_without_the_policy(cli, tmp_path):
    registry = bound_registry(tmp_path)
    unsigned = json.loads(artifact("victim/app", [], key=VICTIM_KEY))
    del unsigned["signature"]
    write_in(tmp_path, "unsigned.json", json.dumps(unsigned).encode())
    code, out, _err = cli(
        "ingest",
        "--artifact",
        tmp_path / "in",
        "--registry",
        registry,
        "--quarantine",
        tmp_path / "q",
        env={"TW_HMAC_KEYS": json.dumps(BOTH)},
    )
    assert code == 2 and "REJECTED" in out and ": missing_signature: unsigned, but the registry binds victim/app" in out


def test_a_shared_key_is_an_explicit_choice_and_is_warned_about(cli, tmp_path):
    registry = tmp_path / "shared.yml"
    body = "consumers:\n  - {repo: victim/app, keys: [shared]}\n  - {repo: evil/tool, keys: [shared]}\n"
    registry.write_text("schema_version: '1.0'\n" + body)
    write_in(tmp_path, "a.json", artifact("victim/app", []))
    code, _, err = cli("ingest", "--artifact", tmp_path / "in", "--registry", registry, env={"TW_HMAC_KEYS": "{}"})
    assert code == 1 and "key id 'shared' is listed for 2 consumers" in err and "shared_keys" in err
    registry.write_text("schema_version: '1.0'\nshared_keys: [shared]\n" + body)
    code, out, _ = ingest(cli, tmp_path, "--artifact", tmp_path / "in", "--registry", registry)
    assert code == 0, out
    assert "key id shared is shared by 2 consumers" in out


# --- judged once ----------------------------------------------------------------------


def test_the_same_artifact_arriving_twice_is_judged_once(cli, tmp_path):
    data = artifact("victim/app", [("a.py", 1, "x")])
    write_in(tmp_path, "first.json", data)
    write_in(tmp_path, "second.json", data)
    other = json.loads(data)  # same repo, commit and generated_at, other content: the same artifact, twice
    other["hits"] = []
    write_in(
        tmp_path,
        "third.json",
        json.dumps(KeyRing(SHARED, signing_key=SHARED["shared"], signing_kid="shared").sign(other)).encode(),
    )
    code, out, rejected = ingest(cli, tmp_path, "--artifact", tmp_path / "in")
    assert code == 2
    assert rejected == {"second.json": "duplicate", "third.json": "duplicate"}, out
    assert len((tmp_path / "accepted.jsonl").read_text().splitlines()) == 1
    reason = json.loads((tmp_path / "quarantine" / "second.json.reason.json").read_text())
    assert reason["reason"] == "duplicate" and reason["sha256"]


# --- the audit ------------------------------------------------------------------------


def test_the_audit_keeps_the_newest_artifact_per_collected_repository(cli, tmp_path):
    """Defence in depth: even a record that claims victim/app but was collected
    from evil/tool (an accepted file from elsewhere) cannot replace victim/app's."""
    registry = tmp_path / "reg.yml"
    registry.write_text("schema_version: '1.0'\nconsumers:\n  - {repo: victim/app}\n  - {repo: evil/tool}\n")

    def record(claims: str, collected: str, hits, offset_s: float) -> str:
        document = json.loads(artifact(claims, hits, offset_s=offset_s))
        document["provenance"] = {
            "repo": collected,
            "run_id": 1,
            "artifact_id": 1,
            "artifact_name": "tw-self-audit",
            "sha256": "0" * 64,
            "collected_at": stamp(),
        }
        return json.dumps(document)

    (tmp_path / "accepted.jsonl").write_text(
        record("victim/app", "victim/app", [("app/views.py", 7, "dom-inner-html")], -600)
        + "\n"
        + record("victim/app", "evil/tool", [], 240)
        + "\n"
    )
    assert audit_hits(cli, tmp_path, registry) == [("victim/app", "app/views.py")]
