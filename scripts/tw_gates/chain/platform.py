"""R2: the gates run on Linux runners only.

The gates rely on Linux behaviour (process groups and RLIMIT_AS for the
adversarial runner, POSIX advisory locks, the runner's bash); on another OS
they would run *differently*, which for a security gate is worse than not at
all. So they refuse, clearly.

This is the one gate without pydantic (and without dataclasses, which import
inspect): it runs first, before every other gate, and must answer in a blink
(pydantic alone takes 0.15 s to import). Its settings are two environment
variables, read as ``EnvSettings`` reads them (an empty value means unset; a
value given explicitly wins, None included for runner_os)."""

from __future__ import annotations

import os
import sys

from tw_gates.core.errors import ExitCode


class _FromEnv:
    """The default of a setting not given: read it from the environment."""


_FROM_ENV = _FromEnv()


def _env(name: str) -> str | None:
    return os.environ.get(name) or None


class PlatformSettings:
    """Injectable for tests; by default the interpreter's and the runner's view
    (TW_PLATFORM overrides sys.platform; RUNNER_OS as the runner sets it)."""

    __slots__ = ("platform", "runner_os")

    def __init__(self, platform: str | None = None, runner_os: str | _FromEnv | None = _FROM_ENV) -> None:
        self.platform: str = platform or _env("TW_PLATFORM") or sys.platform
        self.runner_os: str | None = _env("RUNNER_OS") if isinstance(runner_os, _FromEnv) else runner_os

    def __repr__(self) -> str:
        return f"PlatformSettings(platform={self.platform!r}, runner_os={self.runner_os!r})"


class PlatformResult:
    __slots__ = ("linux", "message", "platform", "runner_os")

    def __init__(self, platform: str, runner_os: str | None, linux: bool, message: str) -> None:
        self.platform = platform
        self.runner_os = runner_os
        self.linux = linux
        self.message = message

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK if self.linux else ExitCode.REJECTED

    def __repr__(self) -> str:
        return f"PlatformResult(linux={self.linux!r}, message={self.message!r})"


def platform(settings: PlatformSettings) -> PlatformResult:
    python_linux = settings.platform.lower().startswith("linux")
    # RUNNER_OS is what the workflow's `runs-on` gave us; trust the stricter of the two.
    runner_linux = settings.runner_os is None or settings.runner_os.lower() == "linux"
    linux = python_linux and runner_linux
    seen = settings.platform if not python_linux else (settings.runner_os or settings.platform)
    if linux:
        message = (
            f"R2 platform: Linux ({settings.platform}{', runner ' + settings.runner_os if settings.runner_os else ''})"
        )
    else:
        message = (
            f"R2 platform: tw-gates runs on Linux only, this is {seen!r}; use a Linux runner (runs-on: ubuntu-latest)"
        )
    return PlatformResult(platform=settings.platform, runner_os=settings.runner_os, linux=linux, message=message)
