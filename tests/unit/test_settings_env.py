"""EnvSettings reads the environment itself (pydantic-settings cost 0.3 s of
start-up); these tests hold it to pydantic-settings' rules for the options
tw-gates uses, side by side with pydantic-settings where it is installed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Annotated

import pytest
from pydantic import Field, SecretStr, field_validator

from tw_gates.core.errors import UsageError
from tw_gates.core.settings import EnvSettings, NoDecode, env, load_settings


class Ours(EnvSettings):
    name: str = Field("default", validation_alias=env("TW_T_NAME", "TW_T_OLD_NAME", "name"))
    count: int = Field(3, ge=0, validation_alias=env("TW_T_COUNT", "count"))
    flag: bool = Field(False, validation_alias=env("TW_T_FLAG", "flag"))
    token: SecretStr | None = Field(None, validation_alias=env("TW_T_TOKEN", "token"))
    folder: Path | None = Field(None, validation_alias=env("TW_T_FOLDER", "folder"))
    tags: list[str] = Field(default_factory=list, validation_alias=env("TW_T_TAGS", "tags"))
    lines: Annotated[list[str], NoDecode] = Field(default_factory=list, validation_alias=env("TW_T_LINES", "lines"))
    plain: str = "x"  # no alias: the variable is the field name itself


ENVIRONMENTS = [
    {},
    {"TW_T_NAME": "from-env", "TW_T_COUNT": "7", "TW_T_FLAG": "yes"},
    {"TW_T_OLD_NAME": "old"},
    {"TW_T_NAME": "new", "TW_T_OLD_NAME": "old"},  # the first alias set wins
    {"TW_T_NAME": ""},  # empty means unset
    {"TW_T_TOKEN": "tok-123456789", "TW_T_FOLDER": "some/where"},
    {"TW_T_TAGS": '["a", "b"]'},
    {"plain": "lower-case variable"},
    {"PLAIN": "case matters"},
]


def _values(settings) -> dict:
    out = settings.model_dump()
    out["token"] = settings.token.get_secret_value() if settings.token else None
    return out


@pytest.mark.parametrize("environment", ENVIRONMENTS)
@pytest.mark.parametrize("flags", [{}, {"name": "from-flag", "count": 1}])
def test_same_values_as_pydantic_settings(monkeypatch, environment, flags):
    pydantic_settings = pytest.importorskip("pydantic_settings")

    class Theirs(pydantic_settings.BaseSettings):
        model_config = pydantic_settings.SettingsConfigDict(
            extra="ignore", populate_by_name=True, env_ignore_empty=True, case_sensitive=True
        )
        name: str = Field("default", validation_alias=env("TW_T_NAME", "TW_T_OLD_NAME", "name"))
        count: int = Field(3, ge=0, validation_alias=env("TW_T_COUNT", "count"))
        flag: bool = Field(False, validation_alias=env("TW_T_FLAG", "flag"))
        token: SecretStr | None = Field(None, validation_alias=env("TW_T_TOKEN", "token"))
        folder: Path | None = Field(None, validation_alias=env("TW_T_FOLDER", "folder"))
        tags: list[str] = Field(default_factory=list, validation_alias=env("TW_T_TAGS", "tags"))
        lines: Annotated[list[str], pydantic_settings.NoDecode] = Field(
            default_factory=list, validation_alias=env("TW_T_LINES", "lines")
        )
        plain: str = "x"

    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    assert _values(Ours(**flags)) == _values(Theirs(**flags))


def test_no_decode_gives_the_raw_text_to_the_validators(monkeypatch):
    class Lines(EnvSettings):
        lines: Annotated[list[str], NoDecode] = Field(default_factory=list, validation_alias=env("TW_T_LINES"))

        @field_validator("lines", mode="before")
        @classmethod
        def _split(cls, value):
            return value.splitlines() if isinstance(value, str) else value

    monkeypatch.setenv("TW_T_LINES", "a.json\nb/*.json")
    assert Lines().lines == ["a.json", "b/*.json"]


def test_bad_json_and_bad_values_are_one_line_usage_errors(monkeypatch):
    monkeypatch.setenv("TW_T_TAGS", "[not json")
    with pytest.raises(UsageError, match=r"invalid environment: TW_T_TAGS is not valid JSON") as err:
        load_settings(Ours)
    assert "\n" not in str(err.value)
    monkeypatch.delenv("TW_T_TAGS")
    monkeypatch.setenv("TW_T_COUNT", "-2")
    with pytest.raises(
        UsageError, match=r"invalid TW_T_COUNT: Input should be greater than or equal to 0"
    ):  # the variable the user set, never the class
        load_settings(Ours)


def test_without_environment_reads_only_the_values(monkeypatch):
    monkeypatch.setenv("TW_T_NAME", "from-env")
    monkeypatch.setenv("TW_T_COUNT", "9")
    settings = Ours.without_environment(count=2)
    assert (settings.name, settings.count) == ("default", 2)
    assert Ours().name == "from-env"  # and the environment is read again afterwards


def test_settings_do_not_need_pydantic_settings():
    probe = "import sys, tw_gates.core.settings; print('pydantic_settings' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
