"""release.yml under act against a local bare remote: a v3.0.0 tag is verified,
its release published with the CHANGELOG section as notes (a local stand-in of
GitHub's releases API), and the floating tag v3 moved to it; then a consumer's
`uses: org/tw-gates@v3`, resolved from that remote, runs the released version."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import tw_gates
from tests.conftest import REPO_ROOT
from tests.e2e.act_rig import ActRig, build_wheelhouse, job_path, job_python, snapshot_working_tree
from tests.e2e.snippet_rig import git, init_repository, merged_wheelhouse, tw_gates_stand_in
from tests.unit.test_release import _Releases, release

pytestmark = pytest.mark.e2e

VERSION = tw_gates.__version__
TAG, MAJOR = f"v{VERSION}", f"v{VERSION.split('.')[0]}"
TOKEN = "ghs_release"  # what the releases stand-in accepts


@pytest.fixture
def releases_api():
    from http.server import ThreadingHTTPServer
    from threading import Thread

    _Releases.store, _Releases.calls = {}, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Releases)
    Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Releases
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory) -> Path:
    """Runtime and test wheels: the release's fast tests install pytest offline."""
    python = job_python(job_path())
    return merged_wheelhouse(
        tmp_path_factory.mktemp("wheels"),
        build_wheelhouse(REPO_ROOT / "requirements" / "runtime.txt", python),
        build_wheelhouse(REPO_ROOT / "requirements" / "test.txt", python),
    )


def test_a_v3_tag_publishes_the_notes_and_moves_v3(act_binary, wheelhouse, releases_api, tmp_path):
    api_url, api = releases_api
    rig = ActRig(
        act=act_binary,
        base_dir=tmp_path / "act",
        snapshot=snapshot_working_tree(tmp_path / "tw-gates"),
        wheelhouse=wheelhouse,
    )
    repo = rig.repo
    # History: v3 points at an earlier commit (as after an earlier release); the new
    # release commit is tagged v3.0.0 and pushed with its tag, as a maintainer does.
    remote = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "set-url", "--push", "origin", str(remote))
    earlier = git(repo, "rev-parse", "HEAD")
    git(repo, "tag", MAJOR, earlier)
    git(repo, "commit", "-q", "--allow-empty", "-m", f"Release {VERSION}")
    head = git(repo, "rev-parse", "HEAD")
    git(repo, "tag", TAG, head)
    git(repo, "push", "-q", "origin", "HEAD:refs/heads/main", f"refs/tags/{TAG}", f"refs/tags/{MAJOR}")
    assert git(remote, "rev-parse", f"refs/tags/{MAJOR}^{{commit}}") == earlier

    started = time.monotonic()
    run = rig.run(
        ".github/workflows/release.yml",
        event="push",
        event_payload={"ref": f"refs/tags/{TAG}", "ref_name": TAG, "after": head, "head_commit": {"id": head}},
        api_url=api_url,
        secrets={"GITHUB_TOKEN": TOKEN},
        timeout=900,
    )
    print(f"release workflow: {time.monotonic() - started:.0f}s")
    run.expect_success()
    assert {k: j.result for k, j in run.jobs.items()} == {"verify": "success", "publish": "success"}, run.tail()
    verify = run.job("verify")
    assert f"{TAG}: package version and CHANGELOG.md agree" in verify.log
    assert f"tw-gates {VERSION}" in verify.log and " passed" in verify.log

    # The release notes are the CHANGELOG section.
    notes = release.check(TAG)
    assert api.store[TAG]["body"] == notes and api.store[TAG]["name"] == f"tw-gates {VERSION}"
    assert [c[0] for c in api.calls] == ["GET", "POST"]
    # v3 and v3.0.0 are the same commit on the remote.
    tagged = git(remote, "rev-parse", f"refs/tags/{TAG}^{{commit}}")
    assert git(remote, "rev-parse", f"refs/tags/{MAJOR}^{{commit}}") == tagged == head
    assert f"{MAJOR} -> {TAG} ({head})" in run.job("publish").summary

    # A consumer's `uses: org/tw-gates@v3`, resolved from the remote, runs the release.
    resolved = tmp_path / "resolved"
    git(tmp_path, "clone", "-q", "--branch", MAJOR, str(remote), str(resolved))
    assert git(resolved, "rev-parse", "HEAD") == head
    consumer = init_repository(tmp_path / "shop", "acme/shop", {"app/view.py": "html = Markup(body)\n"})
    consumer_rig = ActRig(
        act=act_binary,
        base_dir=tmp_path / "act-consumer",
        snapshot=consumer,
        wheelhouse=wheelhouse,
        repository="acme/shop",
    )
    used = consumer_rig.run(
        "name: tw-gates\non: push\npermissions: {contents: read}\njobs:\n  self-audit:\n    runs-on: ubuntu-latest\n"
        "    steps:\n      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2\n"
        "        with: {persist-credentials: false}\n      - id: tw\n        uses: org/tw-gates@v3\n",
        stand_ins={"org/tw-gates": tw_gates_stand_in(tmp_path / "released", source=resolved)},
        timeout=600,
    )
    job = used.expect_success().job("self-audit")
    assert f"tw-gates {VERSION} installed in" in job.log
    assert "org/tw-gates@v3" in " ".join(used.argv) and job.step("tw").outputs["role"] == "consumer"
