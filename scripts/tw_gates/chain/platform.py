"""R2: the gates run on Linux runners only.

The gates rely on Linux behaviour (process groups and RLIMIT_AS for the
adversarial runner, POSIX advisory locks, the runner's bash); on another OS
they would run *differently*, which for a security gate is worse than not at
all. So they refuse, clearly."""

from __future__ import annotations

import sys

from pydantic import BaseModel, Field

from tw_gates.core.errors import ExitCode
from tw_gates.core.settings import EnvSettings, env


class PlatformSettings(EnvSettings):
    # Injectable for tests; defaults to the interpreter's and the runner's view.
    platform: str = Field(default_factory=lambda: sys.platform, validation_alias=env("TW_PLATFORM", "platform"))
    runner_os: str | None = Field(None, validation_alias=env("RUNNER_OS", "runner_os"))


class PlatformResult(BaseModel):
    platform: str
    runner_os: str | None
    linux: bool
    message: str

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK if self.linux else ExitCode.REJECTED


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
