"""``tw-gates file-issues`` as the behavioral tests run it: in-process, against
the GitHub emulator, on ``tmp_path/audit.json`` with ``tmp_path/fallback``.

Retries back off 10 ms and writes are paced 10 ms apart instead of GitHub's
1 s: pacing itself is the client's unit tests' concern, and at 1 s these
tests took ten times as long."""

from __future__ import annotations

from pathlib import Path

CENTRAL = "sec/central"


def file_issues(cli, emu, tmp_path: Path, *extra: str, token: str, repo: str = CENTRAL, **env: str):
    return cli(
        "file-issues",
        "--audit",
        tmp_path / "audit.json",
        "--central-repo",
        repo,
        "--fallback-dir",
        tmp_path / "fallback",
        *extra,
        env={
            "GITHUB_TOKEN": token,
            "GITHUB_API_URL": emu.url,
            "TW_GITHUB_BACKOFF": "0.01",
            "TW_GITHUB_WRITE_INTERVAL": "0.01",
            **env,
        },
    )
