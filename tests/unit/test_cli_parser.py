"""The CLI builds only the parser a command line needs (start-up); what it
shows and accepts must be what the full parser shows and accepts."""

from __future__ import annotations

import argparse

import pytest

from tw_gates.cli import _first_word, build_parser
from tw_gates.commands import discover, find

NAMES = [command.name for command in discover()]


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices[name]


@pytest.mark.parametrize("name", NAMES)
def test_a_command_alone_has_the_same_help_and_flags(name, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    full, alone = _subparser(build_parser(), name), _subparser(build_parser(name), name)
    assert alone.format_help() == full.format_help()
    assert [a.option_strings for a in alone._actions] == [a.option_strings for a in full._actions]


def test_the_top_level_lists_every_command_without_their_flags(monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    assert build_parser("").format_help() == build_parser().format_help()
    assert build_parser("no-such-command").format_help() == build_parser().format_help()


@pytest.mark.parametrize("name", NAMES)
def test_find_imports_one_command(name):
    command = find(name)
    assert command is not None and command.name == name


def test_first_word():
    assert _first_word(["platform", "--platform", "darwin"]) == "platform"
    assert _first_word(["-h", "platform"]) == ""  # top-level options first: the full listing
    assert _first_word([]) == ""
    assert find("no-such-command") is None
