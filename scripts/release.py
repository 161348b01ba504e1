"""Release tooling of tw-gates (run by .github/workflows/release.yml; standard library only).

    python3 scripts/release.py check --tag v3.0.0 [--notes-out notes.md]
    python3 scripts/release.py major --tag v3.0.0        # prints v3, or nothing when a newer v3.x.y exists
    python3 scripts/release.py publish --tag v3.0.0 --notes notes.md   # GITHUB_TOKEN, GITHUB_REPOSITORY

One version source: ``__version__`` in scripts/tw_gates/__init__.py. A release tag is
``v<that version>`` and CHANGELOG.md has a ``## [<version>] - <date>`` section, which
becomes the release notes. ``major`` names the floating tag (``v3``) the release moves,
only when this is the newest v3.x.y tag (a fix to an older line never moves it back).
``publish`` creates the GitHub release, or updates its notes when it exists (a rerun).
Errors: one line ``release: error: ...`` and exit 1."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VERSION_FILE = ROOT / "scripts" / "tw_gates" / "__init__.py"
CHANGELOG = ROOT / "CHANGELOG.md"
TAG = re.compile(r"v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)")
SECTION = re.compile(r"^## \[(?P<name>[^\]]+)\](?: - (?P<date>\d{4}-\d{2}-\d{2}))?[ \t]*$", re.M)
LINK_DEFINITION = re.compile(r"^\[[^\]]+\]: \S+[ \t]*$", re.M)
API_VERSION = "2022-11-28"


class ReleaseError(Exception):
    """A release that must not happen, with the reason in one line."""


def parse_tag(tag: str) -> tuple[int, int, int]:
    match = TAG.fullmatch(tag)
    if not match:
        raise ReleaseError(f"{tag!r} is not a release tag: v<major>.<minor>.<patch>, e.g. v3.0.0")
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def package_version(path: Path = VERSION_FILE) -> str:
    match = re.search(r'^__version__ = "([^"]+)"$', path.read_text(encoding="utf-8"), re.M)
    if not match:
        raise ReleaseError(f'no __version__ = "..." line in {path}')
    return match.group(1)


def changelog_notes(text: str, version: str) -> str:
    """The body of the ``## [version] - date`` section: the release notes."""
    sections = list(SECTION.finditer(text))
    for index, section in enumerate(sections):
        if section.group("name") != version:
            continue
        if not section.group("date"):
            raise ReleaseError(f"CHANGELOG.md: the [{version}] section has no date (## [{version}] - YYYY-MM-DD)")
        end = sections[index + 1].start() if index + 1 < len(sections) else len(text)
        body = LINK_DEFINITION.sub("", text[section.end() : end]).strip()
        if not body:
            raise ReleaseError(f"CHANGELOG.md: the [{version}] section is empty")
        return body + "\n"
    raise ReleaseError(f"CHANGELOG.md has no section ## [{version}] - YYYY-MM-DD (move the [Unreleased] entries)")


def check(tag: str, *, version_file: Path = VERSION_FILE, changelog: Path = CHANGELOG) -> str:
    """The release notes, once the tag, the package version and the changelog agree."""
    parse_tag(tag)
    version = package_version(version_file)
    if tag != f"v{version}":
        raise ReleaseError(f"tag {tag} does not name the package version {version} (scripts/tw_gates/__init__.py)")
    return changelog_notes(changelog.read_text(encoding="utf-8"), version)


def major_to_move(tag: str, tags: list[str]) -> str | None:
    """``v<major>`` when ``tag`` is the newest release tag of its major line, else None."""
    mine = parse_tag(tag)
    line = [parse_tag(t) for t in tags if TAG.fullmatch(t) and parse_tag(t)[0] == mine[0]]
    return f"v{mine[0]}" if all(other <= mine for other in line) else None


def _git_tags() -> list[str]:
    git = shutil.which("git")
    if git is None:
        raise ReleaseError("git is not on PATH")
    listed = subprocess.run([git, "tag", "--list", "v*"], cwd=ROOT, capture_output=True, text=True, check=False)  # noqa: S603
    if listed.returncode:
        raise ReleaseError(f"git tag --list failed: {listed.stderr.strip()}")
    return listed.stdout.split()


def _api(method: str, url: str, token: str, body: dict | None = None) -> tuple[int, dict]:
    if not url.startswith(("https://", "http://")):
        raise ReleaseError(f"GITHUB_API_URL must start with https:// (got {url!r})")
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
        url,
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={
            "Accept": "application/vnd.github+json",
            "Authorization": f"Bearer {token}",
            "X-GitHub-Api-Version": API_VERSION,
            "Content-Type": "application/json",
            "User-Agent": "tw-gates-release",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
            return answer.status, json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, {}
    except (urllib.error.URLError, TimeoutError) as exc:
        raise ReleaseError(f"{method} {url}: {exc}") from None


def publish(tag: str, notes: str, *, api_url: str, repository: str, token: str) -> str:
    """Create the release of ``tag`` with ``notes``, or update the notes of the one that exists."""
    base = f"{api_url.rstrip('/')}/repos/{repository}/releases"
    release = {"tag_name": tag, "name": f"tw-gates {tag.removeprefix('v')}", "body": notes}
    status, existing = _api("GET", f"{base}/tags/{tag}", token)
    if status == 200 and "id" in existing:
        status, _ = _api("PATCH", f"{base}/{existing['id']}", token, release)
        done = "updated"
    elif status == 404:
        status, _ = _api("POST", base, token, {**release, "draft": False, "prerelease": False})
        done = "created"
    else:
        raise ReleaseError(f"GET {base}/tags/{tag} answered {status}")
    if status not in (200, 201):
        raise ReleaseError(f"the release of {tag} was not {done}: GitHub answered {status}")
    return f"release {tag} {done} in {repository}"


def _environment(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise ReleaseError(f"{name} is not set")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="release", description="Release tooling of tw-gates")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("check", "major", "publish"):
        child = sub.add_parser(name)
        child.add_argument("--tag", required=True)
        if name == "check":
            child.add_argument("--notes-out", type=Path, help="write the release notes here")
        if name == "publish":
            child.add_argument("--notes", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "check":
            notes = check(args.tag)
            if args.notes_out:
                args.notes_out.write_text(notes, encoding="utf-8")
            print(f"{args.tag}: package version and CHANGELOG.md agree ({len(notes.splitlines())} lines of notes)")
        elif args.command == "major":
            major = major_to_move(args.tag, _git_tags())
            print(major or "")
            if major is None:
                print(f"{args.tag} is not the newest v{parse_tag(args.tag)[0]}.x.y tag: no tag moves", file=sys.stderr)
        else:
            api_url = os.environ.get("GITHUB_API_URL") or "https://api.github.com"
            print(
                publish(
                    args.tag,
                    args.notes.read_text(encoding="utf-8"),
                    api_url=api_url,
                    repository=_environment("GITHUB_REPOSITORY"),
                    token=_environment("GITHUB_TOKEN"),
                )
            )
    except (ReleaseError, OSError) as exc:
        print(f"release: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
