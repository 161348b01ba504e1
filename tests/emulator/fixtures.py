"""Pytest fixtures for the GitHub emulator (imported by tests/conftest.py with ``import *``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import github
import pytest

from tests.contract.plugin import (
    github_contract,
    pytest_sessionfinish,
    pytest_terminal_summary,
    pytest_testnodedown,
)

from .server import GitHubEmulator

# The contract check rides along: every test that talks to an emulator is judged by
# GitHub's REST description (tests/contract/plugin.py).
__all__ = [
    "GitHubEmulator",
    "github_contract",
    "github_emulator",
    "pygithub_client",
    "pytest_sessionfinish",
    "pytest_terminal_summary",
    "pytest_testnodedown",
]


@pytest.fixture
def github_emulator() -> Iterator[GitHubEmulator]:
    """A fresh, empty emulator per test (add tokens and repos yourself)."""
    with GitHubEmulator() as emu:
        yield emu


def pygithub_client(
    emu: GitHubEmulator, token: str, *, retry: Any = None, timeout: int = 10, per_page: int = 30, **kwargs: Any
) -> github.Github:
    """A PyGithub client pointed at the emulator.

    Defaults differ from PyGithub's on purpose: no retries (pass ``retry=GithubRetry(...)``) and no
    client-side throttling (PyGithub otherwise sleeps 0.25 s between requests and 1 s between writes).
    """
    kwargs.setdefault("seconds_between_requests", 0)
    kwargs.setdefault("seconds_between_writes", 0)
    return github.Github(
        auth=github.Auth.Token(token), base_url=emu.url, retry=retry, timeout=timeout, per_page=per_page, **kwargs
    )
