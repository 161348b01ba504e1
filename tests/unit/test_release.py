"""The release channel: one version source, the CHANGELOG as release notes, the
floating major tag, the GitHub release (against a local stand-in of the REST
API), Dependabot covering every pinned action. The workflow itself runs under
act in tests/e2e/test_release_workflow.py."""

from __future__ import annotations

import importlib.util
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
import yaml

import tw_gates

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("tw_release", ROOT / "scripts" / "release.py")
assert _spec is not None and _spec.loader is not None
release = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(release)

CHANGELOG = """\
# Changelog

## [Unreleased]

- something not released yet

## [3.1.0] - 2026-12-01

### Added

- the new thing

## [3.0.0] - 2026-11-30

- the first release

[Unreleased]: https://github.com/org/tw-gates/compare/v3.1.0...HEAD
[3.1.0]: https://github.com/org/tw-gates/releases/tag/v3.1.0
"""


def test_the_package_version_is_the_one_version_source():
    version = release.package_version()
    assert version == tw_gates.__version__ == "3.0.0"
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject and 'version = { attr = "tw_gates.__version__" }' in pyproject
    assert not re.search(r'^version\s*=\s*"', pyproject, re.M), "a second version in pyproject.toml"
    # The shipped CHANGELOG has the release's section, and it makes notes.
    notes = release.check(f"v{version}")
    assert "### Added" in notes and "[3.0.0]:" not in notes
    assert (ROOT / "LICENSE").read_text().lstrip().startswith("Apache License")


def test_release_notes_are_the_version_section_without_link_definitions(tmp_path):
    notes = release.changelog_notes(CHANGELOG, "3.1.0")
    assert notes == "### Added\n\n- the new thing\n"
    assert release.changelog_notes(CHANGELOG, "3.0.0") == "- the first release\n"
    with pytest.raises(release.ReleaseError, match=r"no section ## \[3\.2\.0\]"):
        release.changelog_notes(CHANGELOG, "3.2.0")
    with pytest.raises(release.ReleaseError, match="has no date"):
        release.changelog_notes("## [3.2.0]\n\n- x\n", "3.2.0")
    with pytest.raises(release.ReleaseError, match="is empty"):
        release.changelog_notes("## [3.2.0] - 2026-12-02\n\n## [3.1.0] - 2026-12-01\n- y\n", "3.2.0")


@pytest.mark.parametrize(
    ("tag", "message"),
    [
        ("v3.0", "is not a release tag"),
        ("3.0.0", "is not a release tag"),
        ("v3.0.0-rc.1", "is not a release tag"),
        ("v03.0.0", "is not a release tag"),
        ("v3.0.1", "does not name the package version 3.0.0"),
    ],
)
def test_a_tag_that_is_not_the_package_version_is_refused(tag, message):
    with pytest.raises(release.ReleaseError, match=message):
        release.check(tag)


def test_the_major_tag_moves_only_to_the_newest_release_of_its_line():
    tags = ["v2.9.0", "v3.0.0", "v3.0.1", "v3.1.0", "v4.0.0", "v3", "phase-0-complete"]
    assert release.major_to_move("v3.1.0", tags) == "v3"
    assert release.major_to_move("v3.0.1", tags) is None  # a fix to an older line: v3 stays on v3.1.0
    assert release.major_to_move("v4.0.0", tags) == "v4"
    assert release.major_to_move("v3.0.0", ["v3.0.0"]) == "v3"  # the first release


class _Releases(BaseHTTPRequestHandler):
    """The three endpoints of GitHub's releases API the release uses."""

    store: ClassVar[dict[str, dict]] = {}
    calls: ClassVar[list[tuple[str, str, dict]]] = []

    def _answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"{}")

    def do_GET(self):
        self.calls.append(("GET", self.path, {}))
        if self.headers.get("Authorization") != "Bearer ghs_release":
            return self._answer(401, {"message": "Bad credentials"})
        tag = self.path.rsplit("/", 1)[-1]
        return self._answer(200, self.store[tag]) if tag in self.store else self._answer(404, {})

    def do_POST(self):
        body = self._body()
        self.calls.append(("POST", self.path, body))
        self.store[body["tag_name"]] = {"id": len(self.store) + 1, **body}
        self._answer(201, self.store[body["tag_name"]])

    def do_PATCH(self):
        body = self._body()
        self.calls.append(("PATCH", self.path, body))
        release_id = int(self.path.rsplit("/", 1)[-1])
        entry = next(e for e in self.store.values() if e["id"] == release_id)
        entry.update(body)
        self._answer(200, entry)

    def log_message(self, *args):
        pass


@pytest.fixture
def releases_api():
    _Releases.store, _Releases.calls = {}, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Releases)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Releases
    server.shutdown()
    server.server_close()


def test_publish_creates_the_release_then_a_rerun_updates_its_notes(releases_api):
    url, api = releases_api
    said = release.publish("v3.0.0", "- first\n", api_url=url, repository="org/tw-gates", token="ghs_release")
    assert said == "release v3.0.0 created in org/tw-gates"
    assert api.calls[-1] == (
        "POST",
        "/repos/org/tw-gates/releases",
        {"tag_name": "v3.0.0", "name": "tw-gates 3.0.0", "body": "- first\n", "draft": False, "prerelease": False},
    )
    said = release.publish("v3.0.0", "- fixed notes\n", api_url=url, repository="org/tw-gates", token="ghs_release")
    assert said == "release v3.0.0 updated in org/tw-gates"
    assert api.calls[-1][0] == "PATCH" and api.store["v3.0.0"]["body"] == "- fixed notes\n"
    assert [c[0] for c in api.calls] == ["GET", "POST", "GET", "PATCH"]


def test_publish_failures_are_one_line_and_exit_1(releases_api, tmp_path, monkeypatch, capsys):
    url, _ = releases_api
    notes = tmp_path / "notes.md"
    notes.write_text("- x\n")
    monkeypatch.setenv("GITHUB_API_URL", url)
    monkeypatch.setenv("GITHUB_REPOSITORY", "org/tw-gates")
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_wrong")
    assert release.main(["publish", "--tag", "v3.0.0", "--notes", str(notes)]) == 1
    assert (
        capsys.readouterr().err
        == "release: error: GET " + url + "/repos/org/tw-gates/releases/tags/v3.0.0 answered 401\n"
    )
    monkeypatch.setenv("GITHUB_API_URL", "ghe.example.com/api/v3")
    assert release.main(["publish", "--tag", "v3.0.0", "--notes", str(notes)]) == 1
    assert "GITHUB_API_URL must start with https://" in capsys.readouterr().err
    monkeypatch.delenv("GITHUB_TOKEN")
    assert release.main(["publish", "--tag", "v3.0.0", "--notes", str(notes)]) == 1
    assert capsys.readouterr().err == "release: error: GITHUB_TOKEN is not set\n"
    assert release.main(["check", "--tag", "v9.9.9"]) == 1
    assert "does not name the package version" in capsys.readouterr().err


def test_dependabot_watches_every_pinned_action_and_the_python_locks():
    config = yaml.safe_load((ROOT / ".github" / "dependabot.yml").read_text())
    by_ecosystem = {u["package-ecosystem"]: u for u in config["updates"]}
    watched = set(by_ecosystem["github-actions"]["directories"])
    actions = {f"/{p.parent.relative_to(ROOT).as_posix()}" for p in ROOT.glob("actions/*/action.yml")}
    assert watched == {"/", *actions}
    assert by_ecosystem["pip"]["directory"] == "/" and (ROOT / "requirements" / "runtime.txt").is_file()
    assert all(u["cooldown"]["default-days"] >= 7 for u in config["updates"])
