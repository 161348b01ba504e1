"""Deprecated action paths stay in step with the actions they were renamed to."""

from __future__ import annotations

import yaml

from tests.tools import action_aliases


def test_deprecated_aliases_are_generated_copies():
    assert action_aliases.main([]) == 0


def test_an_alias_warns_then_does_what_the_new_action_does():
    for old, new in action_aliases.ALIASES.items():
        alias = yaml.safe_load((action_aliases.ROOT / "actions" / old / "action.yml").read_text())
        action = yaml.safe_load((action_aliases.ROOT / "actions" / new / "action.yml").read_text())
        first, *rest = alias["runs"]["steps"]
        assert f"actions/{old} is deprecated" in first["run"] and f"use actions/{new}" in first["run"]
        assert rest == action["runs"]["steps"]
        assert alias.get("inputs") == action.get("inputs") and alias.get("outputs") == action.get("outputs")
