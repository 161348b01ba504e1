"""The REST collector against the local GitHub emulator (real HTTP):
which artifact it picks, conditional requests with the ETag cache, safe
extraction, sharding, and the hand-off to the ingest gate."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import time
import zipfile
from pathlib import Path

import pytest

from tw_gates.core.errors import UsageError
from tw_gates.core.signing import KeyRing
from tw_gates.ingest.collect import ConsumerError, extract_artifact_json, in_shard, output_name, parse_shard

TOKEN = "ghs_collector_token_for_tests_0123456789ab"
RING = KeyRing(
    {"k1": "consumer-key-0123456789abcdefghij"}, signing_key="consumer-key-0123456789abcdefghij", signing_kid="k1"
)


def artifact_json(repo: str, marker: int = 1) -> bytes:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    document = {
        "schema_version": "1.0",
        "repo": repo,
        "commit": f"{marker:040x}",
        "branch": "main",
        "generated_at": stamp,
        "tool_version": "0.1.0",
        "hits": [{"path": "app/views.py", "line": marker, "pattern": "jinja2-from-string"}],
    }
    return json.dumps(RING.sign(document), indent=2).encode()


@pytest.fixture
def world(github_emulator, tmp_path):
    """Two consumers with an app token that may read their Actions data."""
    emu = github_emulator
    for repo in ("acme/shop", "acme/blog"):
        emu.add_repo(repo, default_branch="main")
    emu.add_token(TOKEN, kind="app", repo_permissions={r: {"actions": "read"} for r in ("acme/shop", "acme/blog")})
    registry = tmp_path / "consumer_registry.yml"
    registry.write_text(
        "schema_version: '1.0'\nconsumers:\n  - {repo: acme/shop, default_branch: main}\n  - {repo: acme/blog}\n"
    )  # default branch from the API
    return emu, registry


def collect(cli, emu, registry: Path, tmp_path: Path, *extra, env: dict | None = None):
    return cli(
        "collect",
        "--registry",
        registry,
        "--out",
        tmp_path / "collected",
        "--etag-cache",
        tmp_path / "etags.json",
        *extra,
        env={"GITHUB_TOKEN": TOKEN, "GITHUB_API_URL": emu.url, "TW_GITHUB_RETRIES": "0", **(env or {})},
    )


def add(
    emu,
    repo,
    content: bytes | dict,
    *,
    age: float = 0,
    conclusion="success",
    branch="main",
    event="push",
    expired=False,
    name="tw-self-audit",
    file="tw-self-audit.json",
) -> int:
    run = emu.add_workflow_run(repo, conclusion=conclusion, head_branch=branch, event=event)
    files = content if isinstance(content, dict) else {file: content}
    return emu.add_artifact(repo, name, files=files, run_id=run, expired=expired, created_at=time.time() - age)


def test_newest_artifact_of_a_successful_default_branch_run_is_collected(cli, world, tmp_path):
    emu, registry = world
    good = artifact_json("acme/shop", 1)
    add(emu, "acme/shop", artifact_json("acme/shop", 9), age=500)  # older success
    add(emu, "acme/shop", good, age=400)  # the one
    add(emu, "acme/shop", b"{}", age=300, conclusion="failure")  # failed run
    add(emu, "acme/shop", b"{}", age=200, branch="feature/x")  # other branch
    add(emu, "acme/shop", b"{}", age=100, event="pull_request")  # a PR (a fork may call its branch main)
    add(emu, "acme/shop", b"{}", age=50, expired=True)  # expired
    add(emu, "acme/shop", b"{}", age=10, name="other-artifact")  # another name
    add(emu, "acme/blog", artifact_json("acme/blog"), age=10)
    code, out, err = collect(cli, emu, registry, tmp_path)
    assert code == 0, out + err
    assert (tmp_path / "collected" / "acme__shop.json").read_bytes() == good
    assert "DOWNLOADED acme/shop" in out and "DOWNLOADED acme/blog" in out
    assert "2 consumers: 2 downloaded, 0 unchanged, 0 missing, 0 error" in out
    # The token went to the API only, never to the blob host the zip redirects to.
    blob_requests = [r for r in emu.requests if r.path.startswith("/_blobs/")]
    assert blob_requests and not any(r.sent_token for r in blob_requests)


def collected_files(folder: Path) -> dict[str, object]:
    """What collect left in ``folder``: the artifacts byte for byte, their
    provenance records as data without ``collected_at`` (the time of this run)."""
    files: dict[str, object] = {}
    for path in folder.iterdir():
        if path.name.endswith(".provenance"):
            record = json.loads(path.read_text())
            record.pop("collected_at")
            files[path.name] = record
        else:
            files[path.name] = path.read_bytes()
    return files


def test_unchanged_consumers_cost_no_quota_on_the_next_run(cli, world, tmp_path):
    emu, registry = world
    add(emu, "acme/shop", artifact_json("acme/shop"))
    add(emu, "acme/blog", artifact_json("acme/blog"))
    assert collect(cli, emu, registry, tmp_path)[0] == 0
    first = collected_files(tmp_path / "collected")
    remaining = emu.rate_remaining(TOKEN)
    emu.clear_requests()
    code, out, _ = collect(cli, emu, registry, tmp_path)
    assert code == 0
    api = [r for r in emu.requests if not r.path.startswith("/_blobs/")]
    assert api and all(r.status == 304 for r in api), [(r.path, r.status) for r in api]
    assert not [r for r in emu.requests if r.path.startswith("/_blobs/") or r.path.endswith("/zip")]
    assert "2 unchanged" in out and f"{len(api)} answered 304 (no quota)" in out
    assert collected_files(tmp_path / "collected") == first
    assert emu.rate_remaining(TOKEN) == remaining
    prom = (tmp_path / ".metrics" / "tw_gates.prom").read_text()
    assert 'tw_gates_collect_consumers_total{result="unchanged"} 2.0' in prom


def test_a_new_artifact_is_downloaded_on_the_next_run(cli, world, tmp_path):
    emu, registry = world
    add(emu, "acme/shop", artifact_json("acme/shop", 1), age=100)
    add(emu, "acme/blog", artifact_json("acme/blog"), age=100)
    collect(cli, emu, registry, tmp_path)
    newer = artifact_json("acme/shop", 2)
    add(emu, "acme/shop", newer)
    code, out, _ = collect(cli, emu, registry, tmp_path)
    assert code == 0
    assert "DOWNLOADED acme/shop" in out and "UNCHANGED  acme/blog" in out
    assert (tmp_path / "collected" / "acme__shop.json").read_bytes() == newer


def test_consumer_without_artifact_is_missing_and_inaccessible_one_is_an_error(cli, world, tmp_path):
    emu, registry = world
    emu.add_repo("acme/secret", private=True)
    registry.write_text(registry.read_text() + "  - {repo: acme/secret, default_branch: main}\n")
    add(emu, "acme/shop", artifact_json("acme/shop"))
    add(emu, "acme/blog", b"{}", conclusion="failure")
    code, out, err = collect(cli, emu, registry, tmp_path, "--manifest", tmp_path / "manifest.json")
    assert code == 1
    assert (
        "MISSING    acme/blog: none of the 1 unexpired 'tw-self-audit' artifact(s) comes from a successful run" in out
    )
    assert "ERROR      acme/secret: GET /repos/acme/secret/actions/artifacts: GitHub answered 404" in out
    assert "1 consumer(s) could not be collected: acme/secret; the 1 collected are in" in err
    assert (tmp_path / "collected" / "acme__shop.json").exists()  # the others are still collected
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert [o["status"] for o in manifest["outcomes"]] == ["downloaded", "missing", "error"]


def test_bad_credentials_stop_the_run(cli, world, tmp_path):
    emu, registry = world
    code, _, err = collect(cli, emu, registry, tmp_path, env={"GITHUB_TOKEN": "ghs_not_a_known_token_000000000000"})
    assert code == 1 and "401" in err and "Traceback" not in err


def test_unsafe_zip_is_refused_and_reported(cli, world, tmp_path):
    emu, registry = world
    add(emu, "acme/shop", {"../../escape.json": b"{}"})
    add(emu, "acme/blog", {"a.json": b"{}", "b.json": b"{}"})
    code, out, _ = collect(cli, emu, registry, tmp_path)
    assert code == 1
    assert "unsafe member names (zip-slip)" in out and "must hold one *.json file" in out
    assert not list((tmp_path / "collected").iterdir())
    assert not (tmp_path.parent / "escape.json").exists()


def test_collected_artifacts_pass_the_ingest_gate(cli, world, tmp_path):
    emu, registry = world
    add(emu, "acme/shop", artifact_json("acme/shop"))
    add(emu, "acme/blog", artifact_json("acme/blog"))
    assert collect(cli, emu, registry, tmp_path)[0] == 0
    code, out, err = cli(
        "ingest",
        "--artifact",
        tmp_path / "collected",
        "--require-hmac",
        "--out",
        tmp_path / "accepted.jsonl",
        "--quarantine",
        tmp_path / "q",
        env={"TW_HMAC_KEYS": json.dumps({"k1": "consumer-key-0123456789abcdefghij"})},
    )
    assert code == 0, out + err
    repos = sorted(json.loads(line)["repo"] for line in (tmp_path / "accepted.jsonl").read_text().splitlines())
    assert repos == ["acme/blog", "acme/shop"]


def test_shards_partition_the_registry_by_name():
    repos = [f"org/consumer-{i}" for i in range(200)]
    shards = [{r for r in repos if in_shard(r, (i, 4))} for i in range(1, 5)]
    assert set().union(*shards) == set(repos) and sum(len(s) for s in shards) == len(repos)
    assert all(20 < len(s) < 80 for s in shards)
    # Adding a consumer never moves another one.
    assert {r for r in [*repos, "org/new"] if in_shard(r, (1, 4))} - {"org/new"} == shards[0]
    assert parse_shard("2/4") == (2, 4)
    for bad in ("0/4", "5/4", "x", "1/0"):
        with pytest.raises(UsageError):
            parse_shard(bad)


def test_sharded_run_collects_only_its_consumers(cli, world, tmp_path):
    emu, registry = world
    add(emu, "acme/shop", artifact_json("acme/shop"))
    add(emu, "acme/blog", artifact_json("acme/blog"))
    mine = {r for r in ("acme/shop", "acme/blog") if in_shard(r, (1, 2))}
    code, out, _ = collect(cli, emu, registry, tmp_path, "--shard", "1/2")
    assert code == 0 and "(shard 1/2)" in out
    assert {p.name for p in (tmp_path / "collected").iterdir()} == {output_name(r) for r in mine}


def test_corrupt_etag_cache_is_ignored_with_a_warning(cli, world, tmp_path):
    emu, registry = world
    add(emu, "acme/shop", artifact_json("acme/shop"))
    add(emu, "acme/blog", artifact_json("acme/blog"))
    (tmp_path / "etags.json").write_text("{not json")
    code, out, _ = collect(cli, emu, registry, tmp_path)
    assert code == 0 and "ETag cache" in out and "2 downloaded" in out
    assert json.loads((tmp_path / "etags.json").read_text())["version"] == 1


def zip_of(members: dict[str, bytes], *, encrypted: bool = False) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), data)
    data = bytearray(buffer.getvalue())
    if encrypted:  # set bit 0 of the general purpose flags in the local and central headers
        for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
            at = data.find(signature)
            data[at + offset] |= 0x1
    return bytes(data)


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ({"/etc/cron.d/x.json": b"{}"}, "zip-slip"),
        ({"a/../../x.json": b"{}"}, "zip-slip"),
        ({"C:/x.json": b"{}"}, "zip-slip"),
        ({"dir\\x.json": b"{}"}, "zip-slip"),
        ({"report.sarif": b"{}"}, "must hold one *.json"),
        ({"big.json": b" " * 5000}, "more than the limit of 1000"),
    ],
    ids=["absolute", "dotdot", "drive", "backslash", "no-json", "too-big"],
)
def test_extraction_refuses_hostile_zips(members, message):
    with pytest.raises(ConsumerError, match=message.replace("*", r"\*")):
        extract_artifact_json(zip_of(members), 1000)


def test_extraction_refuses_encrypted_and_broken_zips():
    with pytest.raises(ConsumerError, match="encrypted"):
        extract_artifact_json(zip_of({"a.json": b"{}"}, encrypted=True), 1000)
    with pytest.raises(ConsumerError, match="not a valid zip"):
        extract_artifact_json(b"PK\x03\x04 truncated", 1000)


def test_extraction_prefers_the_self_audit_file_next_to_others():
    data = zip_of({"tw-self-audit.json": b'{"a": 1}', "other.json": b"{}", "tw-self-audit.sarif": b"{}"})
    assert extract_artifact_json(data, 1000) == b'{"a": 1}'


# --- the cache is never trusted ---------------------------------------------------------


def _poison(cache_path: Path, repo: str, zip_bytes: bytes, *, fix_sha: bool) -> None:
    cache = json.loads(cache_path.read_text())
    entry = cache["artifacts"][repo]
    entry["zip"] = base64.b64encode(zip_bytes).decode()
    if fix_sha:  # a careful poisoner keeps the entry self-consistent
        entry["sha256"] = hashlib.sha256(zip_bytes).hexdigest()
    cache_path.write_text(json.dumps(cache))


@pytest.mark.parametrize("fix_sha", [False, True], ids=["sha-left-as-is", "sha-rewritten"])
def test_a_poisoned_cache_entry_is_refused_and_downloaded_afresh(cli, world, tmp_path, fix_sha):
    """The replay from the report: the cache's payload swapped for an older,
    cleaner artifact of the same consumer, still inside --max-age."""
    emu, registry = world
    old_clean = artifact_json("acme/shop", 1)
    add(emu, "acme/shop", old_clean, age=3600)
    add(emu, "acme/blog", artifact_json("acme/blog"))
    assert collect(cli, emu, registry, tmp_path)[0] == 0
    current = artifact_json("acme/shop", 2)  # the newer run found something
    add(emu, "acme/shop", current)
    assert collect(cli, emu, registry, tmp_path)[0] == 0
    assert (tmp_path / "collected" / "acme__shop.json").read_bytes() == current
    _poison(tmp_path / "etags.json", "acme/shop", zip_of({"tw-self-audit.json": old_clean}), fix_sha=fix_sha)
    code, out, _ = collect(cli, emu, registry, tmp_path)
    assert code == 0, out
    assert "DOWNLOADED acme/shop" in out and "cache entry refused" in out
    assert ("sha256 recorded" in out) != fix_sha and ("GitHub's digest" in out) == fix_sha
    assert (tmp_path / "collected" / "acme__shop.json").read_bytes() == current
    assert "UNCHANGED  acme/blog" in out  # a sound entry is still used


def test_collect_writes_provenance_from_the_api_and_forgets_a_consumer_gone_missing(cli, world, tmp_path):
    emu, registry = world
    run = emu.add_workflow_run("acme/shop", head_branch="main", event="schedule", path=".github/workflows/tw.yml")
    emu.add_artifact(
        "acme/shop", "tw-self-audit", files={"tw-self-audit.json": artifact_json("evil/other")}, run_id=run
    )
    # acme/blog has no usable artifact this run; a file from an earlier run is still in the folder.
    (tmp_path / "collected").mkdir()
    (tmp_path / "collected" / "acme__blog.json").write_bytes(artifact_json("acme/blog"))
    (tmp_path / "collected" / "acme__blog.json.provenance").write_text("{}")
    code, out, _ = collect(cli, emu, registry, tmp_path, "--manifest", tmp_path / "manifest.json")
    assert code == 0, out
    sidecar = json.loads((tmp_path / "collected" / "acme__shop.json.provenance").read_text())
    # From the REST API, whatever the artifact claims (it claims evil/other).
    assert (sidecar["repo"], sidecar["run_id"], sidecar["event"]) == ("acme/shop", run, "schedule")
    assert sidecar["workflow_path"] == ".github/workflows/tw.yml" and sidecar["head_branch"] == "main"
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["outcomes"][0]["provenance"]["run_id"] == run
    assert "MISSING    acme/blog" in out
    # Last run's file is not left to be ingested again.
    assert sorted(p.name for p in (tmp_path / "collected").iterdir()) == [
        "acme__shop.json",
        "acme__shop.json.provenance",
    ]


def test_an_etag_cache_that_is_a_link_is_not_followed(cli, world, tmp_path):
    emu, registry = world
    add(emu, "acme/shop", artifact_json("acme/shop"))
    add(emu, "acme/blog", artifact_json("acme/blog"))
    secret = tmp_path / "secret.txt"
    secret.write_text('{"version": 1, "responses": {}, "artifacts": {}}')
    (tmp_path / "etags.json").symlink_to(secret)
    code, out, _ = collect(cli, emu, registry, tmp_path)
    assert code == 0 and "ETag cache" in out and "symbolic link" in out
